/**
 * Bias correction: the corrected float biases of the quantized layers for a set of simulated weights
 * (biasShift with the calibration means), from the biases the loaded model found for its weights
 * (model.node.ts). Used by `mixq quantize` (every evaluation and the written model) and `mixq apply`.
 */
import type { LayerStats } from '../../analysis/sensitivity/proxies.ts';
import { biasShift, correctBias } from '../../quant/algorithms/bias-correction.ts';
import { type RowLayout, toRows } from '../../quant/layout.ts';
import type { ModelBiases } from '../model.node.ts';

export interface BiasCorrector {
  /** Weight -> its bias constant (only weights whose bias can be corrected). */
  readonly biases: ReadonlyMap<string, string>;
  /** Corrected biases (by bias name) for quantized weights given in tensor layout, by weight name. */
  corrections(quantized: ReadonlyMap<string, Float32Array>): Map<string, Float32Array>;
}

/**
 * The corrector for the biases of `found` whose layer has calibration means and one bias value per
 * output channel (broadcast or scalar biases are left alone).
 */
export function biasCorrector(
  found: ModelBiases,
  layouts: ReadonlyMap<string, RowLayout>,
  stats: ReadonlyMap<string, LayerStats>,
  original: (weight: string) => Float32Array,
): BiasCorrector {
  const biases = new Map<string, string>();
  for (const [w, b] of found.names) {
    const L = layouts.get(w);
    const mean = stats.get(w)?.mean;
    if (!L || !mean || mean.length !== L.groups * L.inPerGroup) continue;
    if (found.values.get(b)!.length !== L.rows) continue;
    biases.set(w, b);
  }
  return {
    biases,
    corrections(quantized) {
      const out = new Map<string, Float32Array>();
      for (const [w, q] of quantized) {
        const b = biases.get(w);
        if (!b) continue;
        const L = layouts.get(w)!;
        const shift = biasShift(toRows(original(w), L), toRows(q, L), L, stats.get(w)!.mean!);
        out.set(b, correctBias(found.values.get(b)!, shift));
      }
      return out;
    },
  };
}

/**
 * Bias correction for a model file: which float bias belongs to each quantized weight (findBiases) and
 * its original values (readBiases, one read of the file), then the corrected biases for a set of
 * simulated weights (biasShift with the calibration means). Used by `mixq quantize` (every evaluation
 * and the exported file) and `mixq apply`.
 */
import type { RowLayout } from '../analysis/sensitivity/layout.ts';
import { toRows } from '../analysis/sensitivity/layout.ts';
import type { LayerStats } from '../analysis/sensitivity/proxies.ts';
import { findBiases } from '../export/onnx/bias.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import { listWeights, loadWeightFloat32 } from '../io/onnx/weights.ts';
import { biasShift, correctBias } from '../quant/algorithms/bias-correction.ts';

/** The dense float bias each weight's layer owns, with its original values. */
export interface ModelBiases {
  /** Weight -> its bias constant. */
  readonly names: ReadonlyMap<string, string>;
  /** Bias name -> original values. */
  readonly values: ReadonlyMap<string, Float32Array>;
}

export async function readBiases(modelPath: string, weights: Iterable<string>): Promise<ModelBiases> {
  const file = await readOnnxFile(modelPath);
  const names = new Map<string, string>();
  const values = new Map<string, Float32Array>();
  try {
    const dense = new Map(listWeights(file).map((w) => [w.name, w] as const));
    for (const [w, b] of findBiases(file.proto.graph!, weights)) {
      const bw = dense.get(b);
      if (!bw || bw.sparse) continue;
      names.set(w, b);
      values.set(b, Float32Array.from(await loadWeightFloat32(file, bw)));
    }
  } finally {
    await file.close();
  }
  return { names, values };
}

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

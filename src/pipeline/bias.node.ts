/**
 * Bias correction for a model file: which float bias belongs to each quantized weight (findBiases), its
 * original values, and the corrected biases for a set of simulated weights (biasShift with the
 * calibration means). Used by `mixq quantize` (every evaluation and the exported file) and `mixq apply`.
 */
import type { RowLayout } from '../analysis/sensitivity/layout.ts';
import { toRows } from '../analysis/sensitivity/layout.ts';
import type { LayerStats } from '../analysis/sensitivity/proxies.ts';
import { findBiases } from '../export/onnx/bias.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import { listWeights, loadWeightFloat32 } from '../io/onnx/weights.ts';
import { biasShift, correctBias } from '../quant/algorithms/bias-correction.ts';

export interface BiasCorrector {
  /** Weight -> its bias initializer (only weights whose bias can be corrected). */
  readonly biases: ReadonlyMap<string, string>;
  /** Corrected biases (by bias name) for quantized weights given in tensor layout, by weight name. */
  corrections(quantized: ReadonlyMap<string, Float32Array>): Map<string, Float32Array>;
}

export async function biasCorrector(
  modelPath: string,
  layouts: ReadonlyMap<string, RowLayout>,
  stats: ReadonlyMap<string, LayerStats>,
  original: (weight: string) => Float32Array,
): Promise<BiasCorrector> {
  const file = await readOnnxFile(modelPath);
  const biases = new Map<string, string>();
  const values = new Map<string, Float32Array>();
  try {
    const found = findBiases(file.proto.graph!, layouts.keys());
    const dense = new Map(listWeights(file).map((w) => [w.name, w] as const));
    for (const [w, b] of found) {
      const L = layouts.get(w)!;
      const mean = stats.get(w)?.mean;
      const bw = dense.get(b);
      if (!mean || !bw || bw.sparse || mean.length !== L.groups * L.inPerGroup) continue;
      const v = await loadWeightFloat32(file, bw);
      if (v.length !== L.rows) continue; // broadcast or scalar bias: not per output channel
      biases.set(w, b);
      values.set(b, Float32Array.from(v));
    }
  } finally {
    await file.close();
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
        out.set(b, correctBias(values.get(b)!, shift));
      }
      return out;
    },
  };
}

/** The weights among `names` whose layer owns a bias constant (candidates for bias correction). */
export async function correctableWeights(modelPath: string, names: Iterable<string>): Promise<Set<string>> {
  const file = await readOnnxFile(modelPath);
  try {
    return new Set(findBiases(file.proto.graph!, names).keys());
  } finally {
    await file.close();
  }
}

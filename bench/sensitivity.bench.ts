/**
 * Sensitivity-analysis kernels against their original straightforward loops, measured in the same run:
 * - outputError trace(E G E^T) on a 192 x 768 error matrix with a 768 x 768 Gram (the old per-row
 *   quadratic form over the full G vs the symmetrized, 8-vectors-at-a-time kernel);
 * - Gram capture X^T X of 512 activation rows x 768 channels (one rank-1 update of all C^2 entries per
 *   row, with absMax / sumSquares, vs captureActivationStats' blocked upper-triangle update).
 */
import * as ort from 'onnxruntime-node';
import { outputError } from '../src/analysis/sensitivity/index.ts';
import { rowLayout } from '../src/quant/layout.ts';
import { Rng } from '../src/core/rng.ts';
import { captureActivationStats } from '../src/runtime/calibration.node.ts';
import type { WeightFedModel } from '../src/runtime/weights.node.ts';
import { printTable, timeBest } from './util.ts';

/** The original outputError for a matrix layout (groups = 1, kernel = 1). */
function naiveOutputError(E: ArrayLike<number>, rows: number, I: number, gram: ArrayLike<number>): number {
  const v = new Float64Array(I);
  let s = 0;
  for (let r = 0; r < rows; r++) {
    const off = r * I;
    for (let i = 0; i < I; i++) v[i] = E[off + i]!;
    for (let i = 0; i < I; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const g = i * I;
      let t = 0;
      for (let j = 0; j < I; j++) t += gram[g + j]! * v[j]!;
      s += vi * t;
    }
  }
  return s;
}

/** The original capture loop: per row, absMax / sumSquares and a rank-1 update of the whole Gram. */
function naiveGram(data: Float32Array, c: number): Float64Array {
  const absMax = new Float32Array(c);
  const sumSquares = new Float64Array(c);
  const g = new Float64Array(c * c);
  const row = new Float64Array(c);
  for (let r = 0; r < data.length / c; r++) {
    for (let ch = 0; ch < c; ch++) row[ch] = data[r * c + ch]!;
    for (let ch = 0; ch < c; ch++) {
      const v = row[ch]!;
      const a = Math.abs(v);
      if (a > absMax[ch]!) absMax[ch] = a;
      sumSquares[ch]! += v * v;
    }
    for (let i = 0; i < c; i++) {
      const vi = row[i]!;
      if (vi === 0) continue;
      const base = i * c;
      for (let j = 0; j < c; j++) g[base + j]! += vi * row[j]!;
    }
  }
  return g;
}

export default async function (): Promise<void> {
  const rng = new Rng(1);
  const I = 768;
  const rows = 192;
  const X = Float64Array.from({ length: 64 * I }, () => rng.nextNormal());
  const G = new Float64Array(I * I);
  for (let t = 0; t < 64; t++)
    for (let i = 0; i < I; i++)
      for (let j = 0; j < I; j++) G[i * I + j]! += (X[t * I + i]! * X[t * I + j]!) / 64;
  const E = Float64Array.from({ length: rows * I }, () => rng.nextNormal());
  const L = rowLayout([I, rows], 1);
  const tOldOut = timeBest(() => naiveOutputError(E, rows, I, G), 1000);
  const tNewOut = timeBest(() => outputError(E, L, G), 1000);
  const diff = Math.abs(outputError(E, L, G) / naiveOutputError(E, rows, I, G) - 1);

  const n = 512;
  const data = Float32Array.from({ length: n * I }, () => rng.nextNormal());
  const tensor = new ort.Tensor('float32', data, [1, n, I]);
  const model = {
    captures: [{ weight: 'w', activation: 'a', op: 'MatMul', node: 'n' }],
    baseline: { run: () => Promise.resolve({ a: tensor }) },
  } as unknown as WeightFedModel;
  const tOldGram = timeBest(() => naiveGram(data, I), 1000);
  let t0 = 0;
  let tNewGram = Infinity;
  for (let k = 0; k < 4; k++) {
    t0 = performance.now();
    await captureActivationStats(model, [{}], { maxGram: I });
    tNewGram = Math.min(tNewGram, performance.now() - t0);
  }

  const mac = (m: number, ms: number) => (m / ms / 1e3).toFixed(0);
  printTable(
    ['kernel', 'old ms', 'new ms', 'speedup', 'old M MAC/s (full)'],
    [
      [
        `outputError I=${I} rows=${rows} (rel diff ${diff.toExponential(1)})`,
        tOldOut.toFixed(1),
        tNewOut.toFixed(1),
        (tOldOut / tNewOut).toFixed(2),
        mac(rows * I * I, tOldOut),
      ],
      [
        `Gram ${n} rows x C=${I}`,
        tOldGram.toFixed(1),
        tNewGram.toFixed(1),
        (tOldGram / tNewGram).toFixed(2),
        mac(n * I * I, tOldGram),
      ],
    ],
  );
}

/** A synthetic linear layer with injected activation outliers, shared by the algorithm tests and bench. */
import { Rng } from '../../src/core/rng.ts';

export interface Layer {
  rows: number;
  cols: number;
  n: number;
  W: Float32Array;
  X: Float32Array;
  outlierChannels: number[];
}

/** W [rows, cols] ~ N(0, 0.05^2); X [n, cols] ~ N(0,1) with channels scaled by `boost` (default x20). */
export function outlierLayer(rows = 64, cols = 128, n = 512, seed = 1, boost = 20): Layer {
  const r = new Rng(seed);
  const outlierChannels = [3, 17, 64, 101].filter((c) => c < cols);
  const W = Float32Array.from({ length: rows * cols }, () => 0.05 * r.nextNormal());
  const chanScale = Float32Array.from({ length: cols }, (_, j) =>
    outlierChannels.includes(j) ? boost : 0.5 + r.nextFloat(),
  );
  const X = new Float32Array(n * cols);
  for (let t = 0; t < n; t++) for (let j = 0; j < cols; j++) X[t * cols + j] = r.nextNormal() * chanScale[j]!;
  return { rows, cols, n, W, X, outlierChannels };
}

export function channelStats(X: Float32Array, n: number, cols: number) {
  const meanAbs = new Float32Array(cols);
  const absMax = new Float32Array(cols);
  const meanSq = new Float32Array(cols);
  for (let t = 0; t < n; t++)
    for (let j = 0; j < cols; j++) {
      const v = X[t * cols + j]!;
      meanAbs[j]! += Math.abs(v) / n;
      meanSq[j]! += (v * v) / n;
      absMax[j] = Math.max(absMax[j]!, Math.abs(v));
    }
  return { meanAbs, absMax, meanSq };
}

/**
 * Cheap damage proxies of quantizing one weight, computed from the error E = W - Q in row-matrix layout
 * (layout.ts) and the calibration statistics of the weight's input activation:
 *
 * - weight:   ||E||_F^2 (and weightRel = ||E||^2 / ||W||^2);
 * - imatrix:  sum_j d_j sum_i E_ij^2 with d = diag(X^T X) / n, the mean square of each input channel
 *             (llama.cpp's importance matrix); exact E[||x E^T||^2] when the channels are uncorrelated;
 * - output:   trace(E H E^T) with H = X^T X / n: the mean squared error of the layer's output over the
 *             calibration rows, exactly, for a matrix. For a convolution with a kh x kw kernel, H is only
 *             known per channel (C x C, from the activation at one position), so cross-position terms
 *             are dropped: sum over kernel positions k of e_k^T G e_k (exact for 1 x 1 and depthwise
 *             kernels up to the boundary padding).
 * - noise-calibrated: output error scaled by the layer's measured end-to-end sensitivity:
 *             KL_noise * output(E) / output(E_noise), where KL_noise is the model's measured KL when
 *             Gaussian noise E_noise of known size is injected into this weight alone (one evaluation
 *             per weight, not per candidate). The KL of small perturbations is quadratic in the output
 *             perturbation, so this is a first-order-accurate transfer of one measurement to every
 *             candidate. (HAWQ-V2's Hutchinson trace needs Hessian-vector products, i.e. gradients, which
 *             an inference runtime such as onnxruntime does not provide.)
 *
 * Browser-safe.
 */
import { MixqError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { groupBase, type RowLayout } from './layout.ts';

/** Calibration statistics of a weight's input activation (per channel of the activation). */
export interface LayerStats {
  readonly channels: number;
  /** E[x_c^2] per channel: diag(X^T X) / n. */
  readonly meanSquare: ArrayLike<number>;
  /** X^T X / n, channels x channels row-major, when kept. */
  readonly gram?: ArrayLike<number>;
}

export type ProxyName = 'weight' | 'weightRel' | 'imatrix' | 'output' | 'noiseCalibrated';
export const PROXY_NAMES: readonly ProxyName[] = [
  'weight',
  'weightRel',
  'imatrix',
  'output',
  'noiseCalibrated',
];

function checkLen(a: ArrayLike<number>, n: number, field: string): void {
  if (a.length !== n) throw new MixqError(`${field} has ${a.length} values`, { field, expected: `${n}` });
}

/** E = W - Q (float64 to keep the proxies' sums exact for float32 inputs). */
export function errorMatrix(W: Float32Array, Q: Float32Array): Float64Array {
  checkLen(Q, W.length, 'Q');
  const E = new Float64Array(W.length);
  for (let i = 0; i < W.length; i++) E[i] = W[i]! - Q[i]!;
  return E;
}

/** ||E||_F^2. */
export function weightError(E: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < E.length; i++) s += E[i]! * E[i]!;
  return s;
}

/** sum_{r,c} d[channel(r, c)] E_rc^2. */
export function imatrixError(E: ArrayLike<number>, L: RowLayout, meanSquare: ArrayLike<number>): number {
  checkLen(E, L.rows * L.cols, 'E');
  checkLen(meanSquare, L.groups * L.inPerGroup, 'meanSquare');
  let s = 0;
  for (let r = 0; r < L.rows; r++) {
    const base = groupBase(L, r);
    const off = r * L.cols;
    for (let c = 0; c < L.cols; c++) {
      const e = E[off + c]!;
      s += meanSquare[base + Math.floor(c / L.kernel)]! * e * e;
    }
  }
  return s;
}

/** sum_r sum_k e_{r,k}^T G[group(r)] e_{r,k}, with e_{r,k} the row's errors at kernel position k. */
export function outputError(E: ArrayLike<number>, L: RowLayout, gram: ArrayLike<number>): number {
  const C = L.groups * L.inPerGroup;
  checkLen(E, L.rows * L.cols, 'E');
  checkLen(gram, C * C, 'gram');
  const I = L.inPerGroup;
  const K = L.kernel;
  const v = new Float64Array(I);
  let s = 0;
  for (let r = 0; r < L.rows; r++) {
    const base = groupBase(L, r);
    const off = r * L.cols;
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < I; i++) v[i] = E[off + i * K + k]!;
      for (let i = 0; i < I; i++) {
        const vi = v[i]!;
        if (vi === 0) continue;
        const g = (base + i) * C + base;
        let t = 0;
        for (let j = 0; j < I; j++) t += gram[g + j]! * v[j]!;
        s += vi * t;
      }
    }
  }
  return s;
}

/** The output-error estimate the noise calibration uses: trace(E H E^T) when H is known, else the imatrix. */
export function bestOutputError(E: ArrayLike<number>, L: RowLayout, stats: LayerStats): number {
  return stats.gram ? outputError(E, L, stats.gram) : imatrixError(E, L, stats.meanSquare);
}

/** KL_noise * outErr / outErrNoise (0 when the candidate's output error is 0). */
export function noiseCalibrated(klNoise: number, outErrNoise: number, outErr: number): number {
  if (outErr === 0) return 0;
  if (!(outErrNoise > 0))
    throw new MixqError('injected noise produced no output error', { field: 'outErrNoise', expected: '> 0' });
  return (klNoise * outErr) / outErrNoise;
}

/**
 * W (row matrix) plus Gaussian noise with standard deviation relStd * rms(row) in every row (so the
 * noise follows the per-channel scale of the weight, like a per-channel quantizer's error). Seeded.
 */
export function injectNoise(W: Float32Array, L: RowLayout, relStd: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(W.length);
  for (let r = 0; r < L.rows; r++) {
    const off = r * L.cols;
    let ss = 0;
    for (let c = 0; c < L.cols; c++) ss += W[off + c]! * W[off + c]!;
    // An all-zero row still gets noise (relative to the tensor's scale would be nicer; 1e-3 absolute is
    // enough to keep the calibration defined).
    const sigma = relStd * (ss > 0 ? Math.sqrt(ss / L.cols) : 1e-3);
    for (let c = 0; c < L.cols; c++) out[off + c] = W[off + c]! + sigma * rng.nextNormal();
  }
  return out;
}

export interface ProxyValues {
  readonly weight: number;
  readonly weightRel: number;
  readonly imatrix: number;
  /** undefined when X^T X was not kept for this layer. */
  readonly output?: number;
}

/** All per-candidate proxies (everything but the noise calibration, which needs one measurement). */
export function computeProxies(
  W: Float32Array,
  Q: Float32Array,
  L: RowLayout,
  stats: LayerStats,
): ProxyValues {
  const E = errorMatrix(W, Q);
  const we = weightError(E);
  let ww = 0;
  for (let i = 0; i < W.length; i++) ww += W[i]! * W[i]!;
  return {
    weight: we,
    weightRel: ww > 0 ? we / ww : 0,
    imatrix: imatrixError(E, L, stats.meanSquare),
    ...(stats.gram ? { output: outputError(E, L, stats.gram) } : {}),
  };
}

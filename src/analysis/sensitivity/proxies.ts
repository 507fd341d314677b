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
import { groupBase, type RowLayout } from '../../quant/layout.ts';

/** Calibration statistics of a weight's input activation (per channel of the activation). */
export interface LayerStats {
  readonly channels: number;
  /** E[x_c^2] per channel: diag(X^T X) / n. */
  readonly meanSquare: ArrayLike<number>;
  /** E[x_c] per channel, when captured (bias correction). */
  readonly mean?: ArrayLike<number>;
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

/** Error vectors processed together by outputError: each loaded Gram entry serves this many of them. */
const LANES = 8;

/**
 * Packs the symmetric part of one group's I x I diagonal block of the C x C gram (first channel `base`)
 * as a lower triangle: row i (offset i (i + 1) / 2) holds G_ij + G_ji for j < i, then G_ii. Then
 * v^T G v = sum_i v_i (P_ii v_i + sum_{j<i} P_ij v_j) for any G, symmetric or not. Tiled so the
 * transposed reads stay in cache.
 */
function packSymmetric(gram: Float64Array, C: number, base: number, I: number, P: Float64Array): void {
  const T = 32;
  for (let i0 = 0; i0 < I; i0 += T) {
    const i1 = Math.min(I, i0 + T);
    for (let j0 = 0; j0 <= i0; j0 += T) {
      for (let i = i0; i < i1; i++) {
        const pi = (i * (i + 1)) / 2;
        const gi = (base + i) * C + base;
        const j1 = Math.min(i, j0 + T);
        for (let j = j0; j < j1; j++) P[pi + j] = gram[gi + j]! + gram[(base + j) * C + base + i]!;
      }
    }
    for (let i = i0; i < i1; i++) P[(i * (i + 1)) / 2 + i] = gram[(base + i) * (C + 1)]!;
  }
}

/**
 * sum over the LANES vectors stored interleaved in V (V[i * LANES + q] = v_q[i]) of v_q^T G v_q, with G
 * packed by packSymmetric. Half the multiply-adds of the full quadratic form, and each packed entry is
 * loaded once for all lanes.
 */
function quadFormLanes(P: Float64Array, V: Float64Array, I: number): number {
  let s = 0;
  // pi = i (i + 1) / 2, the offset of packed row i.
  for (let i = 0, pi = 0; i < I; pi += ++i) {
    let t0 = 0;
    let t1 = 0;
    let t2 = 0;
    let t3 = 0;
    let t4 = 0;
    let t5 = 0;
    let t6 = 0;
    let t7 = 0;
    for (let j = 0, jv = 0; j < i; j++, jv += LANES) {
      const p = P[pi + j]!;
      t0 += p * V[jv]!;
      t1 += p * V[jv + 1]!;
      t2 += p * V[jv + 2]!;
      t3 += p * V[jv + 3]!;
      t4 += p * V[jv + 4]!;
      t5 += p * V[jv + 5]!;
      t6 += p * V[jv + 6]!;
      t7 += p * V[jv + 7]!;
    }
    const d = P[pi + i]!;
    const iv = i * LANES;
    const a0 = V[iv]!;
    const a1 = V[iv + 1]!;
    const a2 = V[iv + 2]!;
    const a3 = V[iv + 3]!;
    const a4 = V[iv + 4]!;
    const a5 = V[iv + 5]!;
    const a6 = V[iv + 6]!;
    const a7 = V[iv + 7]!;
    s +=
      a0 * (d * a0 + t0) +
      a1 * (d * a1 + t1) +
      a2 * (d * a2 + t2) +
      a3 * (d * a3 + t3) +
      a4 * (d * a4 + t4) +
      a5 * (d * a5 + t5) +
      a6 * (d * a6 + t6) +
      a7 * (d * a7 + t7);
  }
  return s;
}

/**
 * sum_r sum_k e_{r,k}^T G[group(r)] e_{r,k}, with e_{r,k} the row's errors at kernel position k and
 * G[group] the diagonal block of `gram` at the row's group's channels. Only the symmetric part of G
 * contributes, so each group's block is packed once as a symmetrized lower triangle, and the vectors
 * e_{r,k} of a group are evaluated LANES at a time (the last batch zero-padded).
 */
export function outputError(E: ArrayLike<number>, L: RowLayout, gram: ArrayLike<number>): number {
  const C = L.groups * L.inPerGroup;
  checkLen(E, L.rows * L.cols, 'E');
  checkLen(gram, C * C, 'gram');
  const I = L.inPerGroup;
  const K = L.kernel;
  const cols = L.cols;
  const e = E instanceof Float64Array ? E : Float64Array.from(E);
  const g = gram instanceof Float64Array ? gram : Float64Array.from(gram);
  const P = new Float64Array((I * (I + 1)) / 2);
  const V = new Float64Array(I * LANES);
  let s = 0;
  let r0 = 0;
  while (r0 < L.rows) {
    // Rows r0 .. r1 - 1 share a group (groups are contiguous runs of rows).
    const base = groupBase(L, r0);
    let r1 = r0 + 1;
    while (r1 < L.rows && groupBase(L, r1) === base) r1++;
    packSymmetric(g, C, base, I, P);
    const count = (r1 - r0) * K; // vectors t = (r - r0) * K + k
    for (let t0 = 0; t0 < count; t0 += LANES) {
      const lanes = Math.min(LANES, count - t0);
      if (lanes < LANES) V.fill(0);
      for (let q = 0; q < lanes; q++) {
        const t = t0 + q;
        const r = r0 + Math.floor(t / K);
        const off = r * cols + (t % K);
        for (let i = 0; i < I; i++) V[i * LANES + q] = e[off + i * K]!;
      }
      s += quadFormLanes(P, V, I);
    }
    r0 = r1;
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

/** One injected-noise measurement: its KL and its output error (the proxy's scale). */
export interface NoisePoint {
  readonly kl: number;
  readonly outputError: number;
}

/**
 * The noise-calibrated proxy from two (or more) noise levels: KL grows like a power of the output error
 * (exponent 1 for small errors, where KL is quadratic in the output change, more once outputs saturate),
 * so the exponent is fitted between the two measured levels (clamped to [1, 3]) and the candidate's
 * damage is read off that curve from the nearer level. With one level it is `noiseCalibrated`.
 */
export function noiseCalibratedCurve(points: readonly NoisePoint[], outErr: number): number {
  const pts = points
    .filter((p) => p.outputError > 0 && p.kl > 0)
    .sort((a, b) => a.outputError - b.outputError);
  if (pts.length < 2) {
    const p = points[0];
    if (!p) throw new MixqError('no noise measurement', { field: 'points', expected: 'at least one' });
    return noiseCalibrated(p.kl, p.outputError, outErr);
  }
  if (outErr === 0) return 0;
  const a = pts[0]!;
  const b = pts[pts.length - 1]!;
  const fitted = Math.log(b.kl / a.kl) / Math.log(b.outputError / a.outputError);
  const exponent = Number.isFinite(fitted) ? Math.min(3, Math.max(1, fitted)) : 1;
  const ref = outErr * outErr > a.outputError * b.outputError ? b : a;
  return ref.kl * (outErr / ref.outputError) ** exponent;
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
/**
 * The statistics of x - E[x] (variance instead of E[x^2], covariance instead of X^T X / n): the error a
 * layer keeps once its bias absorbs the mean shift (bias correction), so proxies computed with them rank
 * candidates by their damage after correction. Without captured means the statistics are returned as is.
 */
export function centeredStats(stats: LayerStats): LayerStats {
  const mu = stats.mean;
  if (!mu) return stats;
  const C = stats.channels;
  const meanSquare = Float64Array.from({ length: C }, (_, c) =>
    Math.max(stats.meanSquare[c]! - mu[c]! * mu[c]!, 0),
  );
  let gram: Float64Array | undefined;
  if (stats.gram) {
    gram = new Float64Array(C * C);
    for (let i = 0; i < C; i++)
      for (let j = 0; j < C; j++) gram[i * C + j] = stats.gram[i * C + j]! - mu[i]! * mu[j]!;
  }
  return { channels: C, meanSquare, mean: mu, ...(gram ? { gram } : {}) };
}

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

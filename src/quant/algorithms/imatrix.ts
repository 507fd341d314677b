/**
 * Importance-weighted scale / rounding search for block formats — the "imatrix" idea of llama.cpp's
 * K-quants (ggml-quants.c make_qx_quants / make_qkx2_quants with quant_weights): per group, minimise
 *     sum_i w_i (x_i - x^_i)^2,   w_i = imatrix[column of i]          ('imatrix')
 *                                 w_i = imatrix[col] * sqrt(sigma2 + x_i^2)  ('imatrix-sigma', ggml's
 *                                 weighting; sigma2 = 2 * mean x^2 of the row)
 * where imatrix[j] = mean over calibration tokens of x_j^2 (diag of X^T X / n).
 *
 * Symmetric: candidate inverse scales (qmax + step * k) / amax for k = -steps..steps; each candidate's
 * codes are rounded, then the scale is refit by weighted least squares, s = sum w x g / sum w g^2, and
 * the codes are rounded again with the refit scale; the best weighted error wins.
 * Asymmetric: weighted grid search over clipping ratios of both range ends (no refit).
 */
import { MixqError } from '../../core/errors.ts';
import type { ElementGrid } from '../element.ts';
import { groupLayout, groupMembers } from '../granularity.ts';
import {
  chooseQParamsWithLayout,
  fakeQuantValue,
  gridValue,
  paramsFromRange,
  type QParams,
  type QuantizerConfig,
  quantizerGrid,
  qparamsFromScales,
} from '../qparams.ts';
import { dequantize, type QuantizedTensor, quantize } from '../quantizer.ts';
import { isIndependent, roundScaleIndependent } from '../scale-format.ts';

export interface ImatrixConfig {
  readonly quantizer: QuantizerConfig;
  /** Candidate steps on each side (default 9, as ggml's -9..9) and step size in grid units (default 0.1). */
  readonly steps?: number;
  readonly stepSize?: number;
  /** Default 'imatrix'. */
  readonly weighting?: 'imatrix' | 'imatrix-sigma';
}

export interface ImatrixResult {
  readonly params: QParams;
  readonly quantized: QuantizedTensor;
  /** Dequantized weight. */
  readonly Q: Float32Array;
  /** Per-element weights used by the search. */
  readonly weights: Float32Array;
}

/** Per-element weights of W [rows, cols] from per-column importance. */
export function importanceWeights(
  W: Float32Array,
  rows: number,
  cols: number,
  importance: Float32Array,
  weighting: 'imatrix' | 'imatrix-sigma' = 'imatrix',
): Float32Array {
  if (importance.length !== cols)
    throw new MixqError('importance length does not match the columns', {
      field: 'importance',
      expected: String(cols),
    });
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let sigma2 = 0;
    if (weighting === 'imatrix-sigma') {
      for (let j = 0; j < cols; j++) sigma2 += W[r * cols + j]! ** 2;
      sigma2 = (2 * sigma2) / cols;
    }
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j;
      w[i] = weighting === 'imatrix' ? importance[j]! : importance[j]! * Math.sqrt(sigma2 + W[i]! ** 2);
    }
  }
  return w;
}

function weightedErr(
  grid: ElementGrid,
  s: number,
  z: number,
  o: number,
  x: Float64Array,
  w: Float64Array,
): number {
  let e = 0;
  for (let k = 0; k < x.length; k++) {
    const d = x[k]! - fakeQuantValue(grid, s, z, o, x[k]!);
    e += w[k]! * d * d;
  }
  return e;
}

/** Importance-weighted quantization of a weight W [rows, cols] (any granularity of the quantizer). */
export function importanceQuantize(
  W: Float32Array,
  rows: number,
  cols: number,
  importance: Float32Array,
  cfg: ImatrixConfig,
): ImatrixResult {
  const shape = [rows, cols];
  const q = cfg.quantizer;
  const weights = importanceWeights(W, rows, cols, importance, cfg.weighting);
  const layout = groupLayout(shape, q.granularity);
  if (!q.symmetric) {
    const params = chooseQParamsWithLayout(
      W,
      shape,
      { ...q, scaleRule: { kind: 'mse', grid: 40, minRatio: 0.5 } },
      layout,
      {
        weights,
      },
    );
    const quantized = quantize(W, params);
    return { params, quantized, Q: dequantize(quantized), weights };
  }
  const grid = quantizerGrid(q);
  const sf = q.scaleFormat ?? 'fp32';
  const roundScale = isIndependent(sf) ? (v: number) => roundScaleIndependent(sf, v) : (v: number) => v;
  const steps = cfg.steps ?? 9;
  const step = cfg.stepSize ?? 0.1;
  const { offsets, members } = groupMembers(layout);
  const raw = new Float64Array(layout.nGroups);
  const maxLen = layout.maxSize;
  const x = new Float64Array(maxLen);
  const w = new Float64Array(maxLen);
  for (let g = 0; g < layout.nGroups; g++) {
    const a0 = offsets[g]!;
    const n = offsets[g + 1]! - a0;
    let amax = 0;
    for (let k = 0; k < n; k++) {
      x[k] = W[members[a0 + k]!]!;
      w[k] = weights[members[a0 + k]!]!;
      amax = Math.max(amax, Math.abs(x[k]!));
    }
    const xs = x.subarray(0, n);
    const ws = w.subarray(0, n);
    // the min-max parameters are always a candidate, so the result is never worse than RTN on this objective
    const base = paramsFromRange(grid, true, -amax, amax, roundScale);
    let bestS = base.scale;
    let bestE = weightedErr(grid, base.scale, base.zero, 0, xs, ws);
    if (amax > 0) {
      for (let t = -steps; t <= steps; t++) {
        const s0 = amax / (amax / base.scale + step * t); // ggml: iscale = (nmax + 0.1 t) / amax
        if (!(s0 > 0)) continue;
        // round with the candidate, then refit by weighted least squares on centred grid values
        let sxg = 0;
        let sgg = 0;
        for (let k = 0; k < n; k++) {
          const gv = gridValue(grid, s0, base.zero, 0, xs[k]!) - base.zero;
          sxg += ws[k]! * xs[k]! * gv;
          sgg += ws[k]! * gv * gv;
        }
        for (const cand of [s0, sgg > 0 ? sxg / sgg : 0]) {
          if (!(cand > 0)) continue;
          const sc = roundScale(cand);
          const e = weightedErr(grid, sc, base.zero, 0, xs, ws);
          if (e < bestE) {
            bestE = e;
            bestS = sc;
          }
        }
      }
    }
    raw[g] = bestS;
  }
  const params = qparamsFromScales(shape, q, layout, raw);
  const quantized = quantize(W, params);
  return { params, quantized, Q: dequantize(quantized), weights };
}

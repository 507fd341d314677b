/**
 * AWQ-style activation-aware weight quantization (Lin et al., "AWQ: Activation-aware Weight Quantization
 * for LLM Compression and Acceleration", 2023; llm-awq auto_scale / auto_clip):
 *
 *  1. scale search: s_j = mean|x_j|^alpha per input channel, normalised by sqrt(max s * min s); alpha on a
 *     grid 0, 1/n, ..., (n-1)/n. The weight is quantized as Q(W diag(s)) and used as Q(W diag(s)) diag(s)^-1;
 *     the alpha with the smallest layer output error ||X W^T - X Q_eff^T||^2 wins. The error is computed
 *     from the Gram matrix G = X^T X, so the raw activations are not needed.
 *  2. clip search: for every quantization group, shrink its range by a ratio on a grid and keep the ratio
 *     with the smallest output error of that group, d_g^T G[g,g] d_g (cross-group terms ignored, as AWQ).
 *
 * Deployment: either fold 1/s into the previous op (LayerNorm gain, previous linear's rows) and store
 * Q(W diag(s)) — `scaledWeight` — or keep s as an explicit per-input-channel multiply; `Q` is the effective
 * weight in the original space for simulation.
 */
import { MixqError } from '../../core/errors.ts';
import { groupLayout, groupMembers } from '../granularity.ts';
import { outputErrorFromGram } from '../linalg.ts';
import {
  chooseQParamsWithLayout,
  fakeQuantValue,
  paramsFromRange,
  type QuantizerConfig,
  quantizerGrid,
} from '../qparams.ts';
import { fakeQuantWith, type QuantizedTensor, quantize } from '../quantizer.ts';
import { isIndependent, roundScaleIndependent } from '../scale-format.ts';

export interface AwqConfig {
  readonly quantizer: QuantizerConfig;
  /** Number of alpha values tried (0, 1/n, ..). Default 20. */
  readonly grid?: number;
  /** Search the clipping ratio per group. Default true. */
  readonly clip?: boolean;
  /** Clip ratios 1, 1 - (1 - minRatio)/clipGrid, ... minRatio. Defaults 20 and 0.5. */
  readonly clipGrid?: number;
  readonly clipMinRatio?: number;
}

export interface AwqStats {
  /** mean |x_j| per input channel over the calibration tokens. */
  readonly actMeanAbs: Float32Array;
  /** Gram matrix X^T X [cols, cols] of the calibration inputs. */
  readonly gram: Float64Array;
}

export interface AwqResult {
  /** Per-input-channel scale s: deploy x / s (fold into the previous op) with W diag(s) quantized. */
  readonly inputScale: Float32Array;
  readonly alpha: number;
  /** Effective dequantized weight Q(W diag(s)) diag(s)^-1, [rows, cols]. */
  readonly Q: Float32Array;
  /** The quantized W diag(s) (with the clipped ranges), as stored when s is folded away. */
  readonly scaledWeight: QuantizedTensor;
  /** Chosen clipping ratio of every group (1 when clip search is off). */
  readonly clipRatio: Float32Array;
  /** Layer output error ||X W^T - X Q^T||^2 for each alpha tried, and of the final result. */
  readonly alphaErrors: Float64Array;
  readonly error: number;
}

function awqScales(actMeanAbs: Float32Array, alpha: number): Float32Array {
  const n = actMeanAbs.length;
  const s = new Float32Array(n);
  let mx = 0;
  let mn = Infinity;
  for (let j = 0; j < n; j++) {
    const v = Math.max(actMeanAbs[j]!, 1e-8) ** alpha;
    s[j] = Math.max(v, 1e-4);
    mx = Math.max(mx, s[j]!);
    mn = Math.min(mn, s[j]!);
  }
  const norm = Math.sqrt(mx * mn);
  for (let j = 0; j < n; j++) s[j] = s[j]! / norm;
  return s;
}

/** AWQ scale + clip search on W [rows, cols]. */
export function awq(W: Float32Array, rows: number, cols: number, stats: AwqStats, cfg: AwqConfig): AwqResult {
  if (W.length !== rows * cols)
    throw new MixqError('W has the wrong length', { field: 'W', expected: `${rows}x${cols}` });
  if (stats.actMeanAbs.length !== cols || stats.gram.length !== cols * cols)
    throw new MixqError('statistics do not match the weight', {
      field: 'stats',
      expected: `${cols} channels`,
    });
  const shape = [rows, cols];
  const layout = groupLayout(shape, cfg.quantizer.granularity);
  const nAlpha = cfg.grid ?? 20;
  const G = stats.gram;
  const Ws = new Float32Array(W.length);
  const Qe = new Float32Array(W.length);
  const alphaErrors = new Float64Array(nAlpha);
  let best = Infinity;
  let bestAlpha = 0;
  const effective = (s: Float32Array, scaledQ: Float32Array): Float32Array => {
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < cols; j++) Qe[r * cols + j] = scaledQ[r * cols + j]! / s[j]!;
    return Qe;
  };
  const scaleWeight = (s: Float32Array) => {
    for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) Ws[r * cols + j] = W[r * cols + j]! * s[j]!;
  };
  for (let a = 0; a < nAlpha; a++) {
    const alpha = a / nAlpha;
    const s = awqScales(stats.actMeanAbs, alpha);
    scaleWeight(s);
    const p = chooseQParamsWithLayout(Ws, shape, cfg.quantizer, layout);
    const err = outputErrorFromGram(W, effective(s, fakeQuantWith(Ws, p)), rows, cols, G);
    alphaErrors[a] = err;
    if (err < best) {
      best = err;
      bestAlpha = alpha;
    }
  }
  const s = awqScales(stats.actMeanAbs, bestAlpha);
  scaleWeight(s);

  // clip search per group, then the final parameters from the clipped weight (min-max of the clamped
  // weight is exactly the clipped range)
  const clipRatio = new Float32Array(layout.nGroups).fill(1);
  const Wc = Float32Array.from(Ws);
  if (cfg.clip ?? true) {
    const grid = quantizerGrid(cfg.quantizer);
    const sf = cfg.quantizer.scaleFormat ?? 'fp32';
    const roundScale = isIndependent(sf) ? (v: number) => roundScaleIndependent(sf, v) : (v: number) => v;
    const { offsets, members } = groupMembers(layout);
    const steps = cfg.clipGrid ?? 20;
    const minRatio = cfg.clipMinRatio ?? 0.5;
    const d = new Float64Array(layout.maxSize);
    for (let g = 0; g < layout.nGroups; g++) {
      const a0 = offsets[g]!;
      const n = offsets[g + 1]! - a0;
      let xmin = 0;
      let xmax = 0;
      for (let k = 0; k < n; k++) {
        const v = Ws[members[a0 + k]!]!;
        xmin = Math.min(xmin, v);
        xmax = Math.max(xmax, v);
      }
      let bestE = Infinity;
      let bestR = 1;
      for (let t = 0; t <= steps; t++) {
        const ratio = 1 - ((1 - minRatio) * t) / steps;
        const p = paramsFromRange(grid, cfg.quantizer.symmetric, xmin * ratio, xmax * ratio, roundScale);
        // error of the group's output contribution, in the original space (divide by s)
        for (let k = 0; k < n; k++) {
          const e = members[a0 + k]!;
          const j = e % cols;
          d[k] = (Ws[e]! - fakeQuantValue(grid, p.scale, p.zero, p.offset, Ws[e]!)) / s[j]!;
        }
        // sum over the rows the group touches of d_r^T G[C, C] d_r; members are ascending, so the
        // elements of one row form a contiguous segment
        let err = 0;
        for (let s0 = 0; s0 < n;) {
          const row = Math.floor(members[a0 + s0]! / cols);
          let s1 = s0 + 1;
          while (s1 < n && Math.floor(members[a0 + s1]! / cols) === row) s1++;
          for (let k = s0; k < s1; k++) {
            const gk = (members[a0 + k]! % cols) * cols;
            let acc = 0;
            for (let l = s0; l < s1; l++) acc += G[gk + (members[a0 + l]! % cols)]! * d[l]!;
            err += d[k]! * acc;
          }
          s0 = s1;
        }
        if (err < bestE) {
          bestE = err;
          bestR = ratio;
        }
      }
      clipRatio[g] = bestR;
      for (let k = 0; k < n; k++) {
        const e = members[a0 + k]!;
        Wc[e] = Math.min(xmax * bestR, Math.max(xmin * bestR, Ws[e]!));
      }
    }
  }
  const params = chooseQParamsWithLayout(
    Wc,
    shape,
    { ...cfg.quantizer, scaleRule: { kind: 'minmax' } },
    layout,
  );
  const scaledWeight = quantize(Ws, params);
  const Q = Float32Array.from(effective(s, fakeQuantWith(Ws, params)));
  const error = outputErrorFromGram(W, Q, rows, cols, G);
  return { inputScale: s, alpha: bestAlpha, Q, scaledWeight, clipRatio, alphaErrors, error };
}

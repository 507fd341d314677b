/**
 * HQQ-style data-free optimisation of the zero point (Badri & Shaji, "Half-Quadratic Quantization of
 * Large Machine Learning Models", 2023; mobiusml/hqq optimize_weights_proximal_legacy). No calibration
 * data: per group, minimise sum |w - w^|^p (p < 1, robust to outliers) by half-quadratic splitting:
 *
 *   repeat: q = clamp(round(w / s + z));  w^ = s (q - z);
 *           e = shrink_p(w - w^, beta)            (generalised soft threshold for the l_p norm)
 *           z = mean(q - (w - e) / s);  beta *= kappa
 *   until the mean |w - w^| stops improving.
 *
 * The scale stays the min-max scale; the zero point becomes a real number stored as fp16 (as in HQQ), so
 * the result is returned as values + codes rather than a QuantizedTensor (whose int zero points are
 * integers). Asymmetric integer grids only.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../core/bits.ts';
import { MixqError } from '../../core/errors.ts';
import { nearestEvenInt } from '../../formats/index.ts';
import { gridToCode } from '../element.ts';
import { groupMembers } from '../granularity.ts';
import { chooseQParams, type QuantizerConfig } from '../qparams.ts';
import { scaleBitsPerGroup, sharedScaleBits } from '../scale-format.ts';

export interface HqqConfig {
  readonly quantizer: QuantizerConfig;
  /** l_p norm of the error (default 0.7), initial beta (10), its growth kappa (1.01), iterations (20). */
  readonly lpNorm?: number;
  readonly beta?: number;
  readonly kappa?: number;
  readonly iters?: number;
}

export interface HqqResult {
  /** Dequantized weight. */
  readonly Q: Float32Array;
  /** Grid value of every element (0..2^bits-1 for an unsigned grid). */
  readonly codes: Uint16Array;
  readonly scale: Float32Array;
  /** fp16-rounded real zero point per group. */
  readonly zero: Float32Array;
  readonly bits: number;
  readonly bitsPerWeight: number;
}

const f16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

/** HQQ zero-point optimisation of x (any shape) under an asymmetric integer quantizer. */
export function hqq(x: Float32Array, shape: readonly number[], cfg: HqqConfig): HqqResult {
  const q = cfg.quantizer;
  if (q.symmetric || q.element.kind !== 'int')
    throw new MixqError('HQQ optimises the zero point of an asymmetric integer quantizer', {
      field: 'quantizer',
      expected: 'an int element with symmetric: false',
    });
  const p0 = chooseQParams(x, shape, { ...q, scaleRule: { kind: 'minmax' } });
  const { grid, layout, scale } = p0;
  const lo = grid.qmin;
  const hi = grid.qmax;
  const p = cfg.lpNorm ?? 0.7;
  const iters = cfg.iters ?? 20;
  const kappa = cfg.kappa ?? 1.01;
  const zero = Float32Array.from(p0.zero);
  const { offsets, members } = groupMembers(layout);
  const shrink = (v: number, beta: number) => {
    const a = Math.abs(v);
    return a === 0 ? 0 : Math.sign(v) * Math.max(0, a - a ** (p - 1) / beta);
  };
  for (let g = 0; g < layout.nGroups; g++) {
    const a0 = offsets[g]!;
    const n = offsets[g + 1]! - a0;
    const s = scale[g]!;
    let z = zero[g]!;
    let beta = cfg.beta ?? 10;
    let best = Infinity;
    let bestZ = z;
    for (let it = 0; it < iters; it++) {
      let err = 0;
      let zSum = 0;
      for (let k = 0; k < n; k++) {
        const w = x[members[a0 + k]!]!;
        const qv = Math.min(hi, Math.max(lo, nearestEvenInt(w / s + z)));
        const r = s * (qv - z);
        err += Math.abs(w - r);
        const e = shrink(w - r, beta);
        zSum += qv - (w - e) / s;
      }
      err /= n;
      if (err < best) {
        best = err;
        bestZ = z; // the zero point that produced this error
      } else break;
      z = zSum / n;
      beta *= kappa;
    }
    zero[g] = f16(bestZ);
  }
  const Q = new Float32Array(x.length);
  const codes = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const g = layout.index[i]!;
    const qv = Math.min(hi, Math.max(lo, nearestEvenInt(x[i]! / scale[g]! + zero[g]!)));
    codes[i] = gridToCode(grid, qv);
    Q[i] = Math.fround(scale[g]! * (qv - zero[g]!));
  }
  const sf = q.scaleFormat ?? 'fp32';
  const nG = layout.nGroups;
  const bits = x.length * grid.bits + nG * (scaleBitsPerGroup(sf) + 16) + sharedScaleBits(sf, nG);
  return { Q, codes, scale, zero, bits, bitsPerWeight: bits / x.length };
}

/**
 * How the per-group scales are stored. The stored (rounded) scale is the one dequantization uses, so the
 * error of storing it is part of every result.
 *
 * - fp32 / fp16 / bf16: round to nearest even (src/core/bits.ts).
 * - e8m0: a power of two 2^(code-127), code 0..254 (OCP MX E8M0; 255 = NaN unused). A quantizer that is an
 *   MX format (an MX element in groups of 32, symmetric, min-max) takes its scales from the block-format
 *   table (src/blocks: the spec's floor rule, qparams.ts blockOf); any other e8m0 quantizer rounds each
 *   scale UP to the next power of two, so that the group's largest value never clips.
 * - fp8_e4m3fn: likewise NVFP4 (E2M1 in groups of 16) takes the block-format table's scales (ModelOpt's
 *   per-tensor scale, E4M3 block scales, a zero scale for a negligible block); other quantizers use the
 *   two-level rule below.
 * - fp8_e4m3fn (other quantizers): two-level as in NVFP4: a per-tensor fp32 "global" scale = max(scale) / 448 (e4m3fn max:
 *   1.75 * 2^(15-7) = 448), and per-group e4m3fn codes of scale / global, round-to-nearest-even, saturating.
 * - none: no scale is stored; every group's scale is 1, so the element format holds the value itself (a plain
 *   cast: FP16 / BF16 weights). Symmetric only.
 * - double (K-quant style, llama.cpp Q4_K/Q5_K): consecutive runs of `superGroup` group scales share one fp16
 *   super-scale d = max(scale) / (2^subBits - 1); each group stores round(scale / d) in `subBits` bits
 *   (at least 1 when the scale is non-zero). Differences from ggml: ggml also double-quantizes the mins;
 *   here an asymmetric integer zero point is stored as an integer in element bits.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import { decode, encoderOf, getFormat, roundToInteger } from '../formats/index.ts';
import { elementGrid, roundToGrid, type TableGrid } from './element.ts';

export type ScaleFormat =
  | 'fp32'
  | 'fp16'
  | 'bf16'
  | 'e8m0'
  | 'fp8_e4m3fn'
  | 'none'
  | { readonly kind: 'double'; readonly subBits: number; readonly superGroup: number };

const E4M3FN_MAX = 448;
const E8M0 = getFormat('e8m0fnu');
/** A scale's E8M0 code rounded up (the smallest power of two >= s), saturating at the largest finite. */
const e8m0Up = encoderOf(E8M0, { rounding: 'up', overflow: 'saturate' });
let e4m3Grid: TableGrid | undefined;
function e4m3(): TableGrid {
  e4m3Grid ??= elementGrid(getFormat('fp8_e4m3fn')) as TableGrid;
  return e4m3Grid;
}

/** Bits one group's scale occupies (without shared per-tensor / per-super-group parts). */
export function scaleBitsPerGroup(f: ScaleFormat): number {
  if (typeof f === 'object') return f.subBits;
  return f === 'fp32' ? 32 : f === 'fp16' || f === 'bf16' ? 16 : f === 'none' ? 0 : 8;
}

/** Bits of shared scale parts for nGroups groups: fp32 global (e4m3) or fp16 super-scales (double). */
export function sharedScaleBits(f: ScaleFormat, nGroups: number): number {
  if (f === 'fp8_e4m3fn') return 32;
  if (typeof f === 'object') return 16 * Math.ceil(nGroups / f.superGroup);
  return 0;
}

export function checkScaleFormat(f: ScaleFormat): void {
  if (typeof f === 'object') {
    if (f.kind !== 'double' || !(f.subBits >= 2 && f.subBits <= 16) || !(f.superGroup >= 1))
      throw new MixqError('bad double-quantized scale format', {
        field: 'scaleFormat',
        expected: '{kind:"double", subBits 2..16, superGroup >= 1}',
      });
    return;
  }
  if (!['fp32', 'fp16', 'bf16', 'e8m0', 'fp8_e4m3fn', 'none'].includes(f))
    throw new MixqError(`unknown scale format '${String(f)}'`, {
      field: 'scaleFormat',
      expected: 'fp32|fp16|bf16|e8m0|fp8_e4m3fn|none|{kind:"double"}',
    });
}

/** Smallest positive value of each independent storage format (its smallest subnormal). */
const MIN_SCALE = { fp32: 2 ** -149, fp16: 2 ** -24, bf16: 2 ** -133, e8m0: 2 ** -127 } as const;

/**
 * Stored form of a single scale for the formats that round each scale independently. A scale never
 * underflows to 0 (that would make x / scale NaN): tiny scales become the format's smallest positive value.
 */
export function roundScaleIndependent(f: IndependentScaleFormat, s: number): number {
  if (f === 'none') return 1;
  s = Math.max(s, MIN_SCALE[f]);
  if (f === 'fp32') return Math.fround(s);
  if (f === 'fp16') return f16BitsToF32(f32ToF16Bits(s));
  if (f === 'bf16') return bf16BitsToF32(f32ToBf16Bits(s));
  // e8m0 has no zero; chooseQParams never asks for a zero scale (all-zero groups use the range [-1, 1]);
  // rounded up to a power of two (the codec's 'up'), within 2^-127..2^127 (code 254 is the largest kept)
  return Math.min(2 ** 127, Math.max(2 ** -127, decode(E8M0, e8m0Up(s))));
}

export type IndependentScaleFormat = 'fp32' | 'fp16' | 'bf16' | 'e8m0' | 'none';

/** Whether a scale format rounds each group's scale on its own (so searches can round inside the loop). */
export function isIndependent(f: ScaleFormat): f is IndependentScaleFormat {
  return typeof f === 'string' && f !== 'fp8_e4m3fn';
}

export interface StoredScales {
  /** The scale each group dequantizes with. */
  readonly scale: Float32Array;
  /** Per-group stored codes (fp16 bits, e8m0 exponent codes, e4m3 codes, sub-scale integers, or fp32 bits). */
  readonly codes: Uint32Array;
  /** Shared values: [global] for fp8_e4m3fn, the fp16 super-scales for double, else empty. */
  readonly shared: Float32Array;
}

/** Rounds a whole vector of scales to their stored form. */
export function storeScales(f: ScaleFormat, raw: Float32Array | Float64Array): StoredScales {
  const n = raw.length;
  const scale = new Float32Array(n);
  const codes = new Uint32Array(n);
  if (typeof f === 'string' && f !== 'fp8_e4m3fn') {
    const u = new Uint32Array(scale.buffer);
    for (let i = 0; i < n; i++) scale[i] = roundScaleIndependent(f, raw[i]!);
    for (let i = 0; i < n; i++) {
      const s = scale[i]!;
      if (f === 'fp32') codes[i] = u[i]!;
      else if (f === 'fp16') codes[i] = f32ToF16Bits(s);
      else if (f === 'bf16') codes[i] = f32ToBf16Bits(s);
      else if (f === 'none') codes[i] = 0;
      else codes[i] = Math.log2(s) + 127;
    }
    return { scale, codes, shared: new Float32Array(0) };
  }
  if (f === 'fp8_e4m3fn') {
    let mx = 0;
    for (let i = 0; i < n; i++) mx = Math.max(mx, raw[i]!);
    const global = Math.max(Math.fround(mx > 0 ? mx / E4M3FN_MAX : 1), 2 ** -140); // stays > 0 times 2^-9
    const g = e4m3();
    for (let i = 0; i < n; i++) {
      let v = roundToGrid(g, raw[i]! / global);
      if (v === 0 && raw[i]! > 0) v = 2 ** -9; // smallest e4m3fn subnormal: a scale is never 0
      codes[i] = g.codes[indexOf(g, v)]!;
      scale[i] = Math.fround(v * global);
    }
    return { scale, codes, shared: Float32Array.of(global) };
  }
  const nSuper = Math.ceil(n / f.superGroup);
  const shared = new Float32Array(nSuper);
  const top = 2 ** f.subBits - 1;
  for (let b = 0; b < nSuper; b++) {
    const lo = b * f.superGroup;
    const hi = Math.min(n, lo + f.superGroup);
    let mx = 0;
    for (let i = lo; i < hi; i++) mx = Math.max(mx, raw[i]!);
    const d = f16BitsToF32(f32ToF16Bits(Math.max(mx / top, 2 ** -24))); // never 0 (see MIN_SCALE)
    shared[b] = d;
    for (let i = lo; i < hi; i++) {
      let c = d > 0 ? roundToInteger(raw[i]! / d, 'nearest-away', 0, 0) : 0;
      if (c > top) c = top;
      if (c === 0 && raw[i]! > 0 && d > 0) c = 1;
      codes[i] = c;
      scale[i] = Math.fround(d * c);
    }
  }
  return { scale, codes, shared };
}

function indexOf(g: TableGrid, v: number): number {
  let lo = 0;
  let hi = g.values.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (g.values[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Scale of each group from stored codes (the inverse of storeScales, used by the unpacker). */
export function loadScales(f: ScaleFormat, codes: Uint32Array, shared: Float32Array): Float32Array {
  const n = codes.length;
  const out = new Float32Array(n);
  if (f === 'fp32') out.set(new Float32Array(Uint32Array.from(codes).buffer));
  else if (f === 'fp16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32(codes[i]!);
  else if (f === 'bf16') for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(codes[i]!);
  else if (f === 'e8m0') for (let i = 0; i < n; i++) out[i] = 2 ** (codes[i]! - 127);
  else if (f === 'none') out.fill(1);
  else if (f === 'fp8_e4m3fn') {
    const g = e4m3();
    for (let i = 0; i < n; i++) out[i] = Math.fround(g.codeValues[codes[i]!]! * shared[0]!);
  } else for (let i = 0; i < n; i++) out[i] = Math.fround(shared[Math.floor(i / f.superGroup)]! * codes[i]!);
  return out;
}

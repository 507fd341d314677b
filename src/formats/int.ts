/**
 * Integer element formats: int1..int16 (two's complement), uint1..uint16, the symmetric "narrow" ranges
 * (int8_narrow = [-127, 127], as in ONNX/TensorRT symmetric quantization) and ternary (= int2_narrow).
 *
 * Encoding rounds the real value to an integer in the chosen mode and saturates to the range: integer
 * formats have no inf/NaN, so +-inf saturate and NaN encodes as 0. Codes are the value's two's complement
 * bits (int4 -1 = 0b1111). The one unused code of a narrow format (1000..0) decodes to the narrow minimum.
 */
import { MixqError } from '../core/errors.ts';
import { roundsUp } from './rounding.ts';
import type { IntSpec, Rounding } from './spec.ts';

export interface IntLayout {
  readonly spec: IntSpec;
  readonly bits: number;
  readonly min: number;
  readonly max: number;
  /** 2^bits: codes are 0..modulus-1. */
  readonly modulus: number;
}

const layouts = new WeakMap<IntSpec, IntLayout>();

export function intLayout(spec: IntSpec): IntLayout {
  const cached = layouts.get(spec);
  if (cached) return cached;
  const { bits, signed, narrow } = spec;
  const source = `format ${spec.name}`;
  if (!Number.isInteger(bits) || bits < 1 || bits > 16)
    throw new MixqError(`integer width ${bits}`, { source, field: 'bits', expected: '1..16' });
  if (narrow && (!signed || bits < 2))
    throw new MixqError('a narrow range needs a signed format of at least 2 bits', {
      source,
      field: 'narrow',
    });
  const half = 2 ** (bits - 1);
  const L: IntLayout = {
    spec,
    bits,
    min: signed ? (narrow ? -(half - 1) : -half) : 0,
    max: signed ? half - 1 : 2 ** bits - 1,
    modulus: 2 ** bits,
  };
  layouts.set(spec, L);
  return L;
}

/** Reference cast of one number to a code (round in `mode`, then saturate). */
export function encodeIntWith(
  L: IntLayout,
  x: number,
  mode: Rounding,
  u32: number,
  randomBits: number,
): number {
  if (Number.isNaN(x)) return 0;
  const neg = x < 0;
  const a = Math.abs(x);
  let v: number;
  if (a >= 2 ** 31) {
    v = neg ? L.min : L.max; // far outside every range (and inf): saturate without floor() of huge values
  } else {
    let n = Math.floor(a);
    if (roundsUp(mode, n, a - n, neg, u32, randomBits)) n += 1;
    v = neg ? -n : n;
    if (v < L.min) v = L.min;
    else if (v > L.max) v = L.max;
  }
  return v < 0 ? v + L.modulus : v + 0; // + 0 turns -0 into 0
}

export function decodeInt(L: IntLayout, code: number): number {
  if (!L.spec.signed) return code;
  const v = code >= L.modulus / 2 ? code - L.modulus : code;
  return Math.max(v, L.min); // the unused code 100..0 of a narrow format reads as the narrow minimum
}

// 1.5 * 2^52: adding and subtracting it rounds a double of magnitude < 2^51 to an integer, ties to even,
// in the FPU (the classic magic-number trick).
const RNE_MAGIC = 1.5 * 2 ** 52;

/** x rounded to the nearest integer (ties to even) and clamped to [lo, hi]; NaN gives 0. */
function roundIntNearestEven(x: number, lo: number, hi: number): number {
  if (x >= hi) return hi;
  if (x <= lo) return lo;
  if (Number.isNaN(x)) return 0;
  return x + RNE_MAGIC - RNE_MAGIC; // +0 for -0 and -0.4: ints have no -0
}

/** Fast chop for nearest-even: same results as encode/decode (tested against chopReference). */
export function chopIntNearestEven(L: IntLayout, src: Float32Array, dst: Float32Array): void {
  const lo = L.min;
  const hi = L.max;
  for (let i = 0; i < src.length; i++) {
    dst[i] = roundIntNearestEven(src[i]!, lo, hi);
  }
}

/** Fast encodeArray for nearest-even: the same codes as encodeIntWith (tested against it). */
export function encodeIntNearestEven(
  L: IntLayout,
  src: Float32Array,
  dst: Uint8Array | Uint16Array | Uint32Array,
): void {
  const lo = L.min;
  const hi = L.max;
  const mod = L.modulus;
  for (let i = 0; i < src.length; i++) {
    const r = roundIntNearestEven(src[i]!, lo, hi);
    dst[i] = r < 0 ? r + mod : r;
  }
}

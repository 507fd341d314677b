/**
 * Rounding float64 data (a Float64Array or plain numbers) to any element format with exactly ONE rounding.
 *
 * JavaScript numbers are doubles; putting them in a Float32Array first rounds them to float32, and rounding
 * that again to fp16 can land on the wrong side of a tie (1 + 2^-11 + 2^-40 -> float32 1 + 2^-11, a tie,
 * -> fp16 1; the right answer is 1 + 2^-10). Here the double itself is rounded: with q the target's step at
 * the value's binade (a power of two), m = |x| / q is exact, so n = floor(m) and frac = m - n are exact and
 * the shared decision of rounding.ts sees the true residual. This holds for every float format of up to 11
 * exponent and 52 mantissa bits (E11M52 is binary64 itself) and every mode, incl. stochastic (the draw is
 * compared with the exact residual) and `nearest-odd`. Integer and codebook formats compare the double
 * directly (int.ts, lut.ts), so they too round once.
 *
 * `round64Value` is the plain per-value reference; `chop64` adds a typed-array kernel for the target's
 * ordinary range (table of steps by double exponent, nearest-even by the 1.5 * 2^52 trick) that falls back
 * to the reference per element and makes the same random draws, so both agree bit for bit
 * (test/formats/round64.test.ts). Codes of formats wider than 53 bits (fp64 itself) are BigInts.
 */
import { MixqError } from '../core/errors.ts';
import { decodeInt, encodeIntWith, intLayout } from './int.ts';
import { decodeLut, encodeLutWith, lutLayout } from './lut.ts';
import {
  decodeFloat,
  encodeFloatWith,
  exponentOf,
  type FloatLayout,
  finishMagnitude,
  floatLayout64,
  pow2,
  stepExponent,
} from './minifloat.ts';
import { type ResolvedCast, resolveRounding, roundsUp } from './rounding.ts';
import type { CastOptions, FloatSpec, FormatSpec, OverflowPolicy, Rounding } from './spec.ts';

/** Index of the high word (sign, exponent) of a double in a Uint32Array view; 1 on little-endian machines. */
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** The value of code 0 when a cast has no better answer (NaN input in a format without NaN, etc.). */
function nanValue(L: FloatLayout): number {
  return L.nanCode >= 0 ? Number.NaN : L.hasZero ? 0 : L.minNormal;
}

/** A rounded magnitude from finishMagnitude with the input's sign (signed zero where the format has -0). */
function withSign(L: FloatLayout, v: number, neg: boolean): number {
  if (!neg || !L.signed) return v;
  if (v === 0) return L.spec.nan === 'neg-zero' ? 0 : -0;
  return -v;
}

/**
 * Reference: one double rounded to a value of the format (what decode(encode(x)) gives, for any width).
 * `u32` is this element's random draw (stochastic modes), `flush` drops subnormals from the target set.
 */
export function round64Value(
  L: FloatLayout,
  x: number,
  mode: Rounding,
  u32: number,
  randomBits: number,
  policy: OverflowPolicy,
  flush: boolean,
): number {
  if (x !== x) return nanValue(L);
  const neg = x < 0 || (x === 0 && 1 / x < 0);
  if (neg && !L.signed && x !== 0) return nanValue(L); // unsigned formats: no negative values
  const a = Math.abs(x);
  if (a === Infinity) {
    if (L.infMag >= 0) return x;
    return policy !== 'saturate' && L.nanCode >= 0 ? Number.NaN : withSign(L, L.maxFinite, neg);
  }
  if (a === 0) return L.hasZero ? withSign(L, 0, neg) : nanValue(L);
  const q = pow2(stepExponent(L, exponentOf(a), L.subnormals && !flush));
  let m = a / q; // exact (a power-of-two scaling) unless it underflows:
  if (m === 0) m = Number.MIN_VALUE; // any m < 2^-33 decides alike in every mode (see encodeFloatWith)
  const n = Math.floor(m);
  return withSign(L, finishMagnitude(L, n, m - n, q, mode, neg, u32, randomBits, policy), neg);
}

/** Everything a float64 cast of one spec needs, resolved once per call. */
export interface Cast64 {
  readonly L: FloatLayout;
  readonly r: ResolvedCast;
  readonly policy: OverflowPolicy;
  readonly flush: boolean;
}

/** Layout, rounding, overflow policy and subnormal flush of a float64 cast into a float format. */
export function cast64(spec: FloatSpec, opts: CastOptions | undefined): Cast64 {
  return {
    L: floatLayout64(spec),
    r: resolveRounding(opts),
    policy: opts?.overflow ?? spec.overflow,
    flush: opts?.flushSubnormals ?? false,
  };
}

/** The value of one number in `spec` (one rounding; `u32` is its random draw for stochastic modes). */
function roundOne(
  spec: FormatSpec,
  x: number,
  r: ResolvedCast,
  opts: CastOptions | undefined,
  u32: number,
): number {
  if (spec.kind === 'float') {
    const L = floatLayout64(spec);
    const policy = opts?.overflow ?? spec.overflow;
    return round64Value(L, x, r.rounding, u32, r.randomBits, policy, opts?.flushSubnormals ?? false);
  }
  if (spec.kind === 'int') {
    const L = intLayout(spec);
    return decodeInt(L, encodeIntWith(L, x, r.rounding, u32, r.randomBits));
  }
  const L = lutLayout(spec);
  return decodeLut(L, encodeLutWith(L, x, r.rounding, u32, r.randomBits));
}

/**
 * One number rounded to `spec`, exactly once (Pychop's chop on a scalar). Stochastic modes draw one 32-bit
 * number from `opts.rng`, or from a fresh `Rng(opts.seed ?? 0)`.
 * `chopNumber(getFormat('fp16'), 1.0004882812509095) === 1.0009765625`.
 */
export function chopNumber(spec: FormatSpec, x: number, opts?: CastOptions): number {
  const r = resolveRounding(opts);
  return roundOne(spec, x, r, opts, r.rng ? r.rng.nextU32() : 0);
}

function checkOut(out: Float64Array | undefined, n: number, what: string): Float64Array {
  if (out === undefined) return new Float64Array(n);
  if (!(out instanceof Float64Array))
    throw new MixqError('output of a float64 chop must be a Float64Array', { source: what, field: 'out' });
  if (out.length < n)
    throw new MixqError(`output holds ${out.length} elements`, {
      source: what,
      field: 'out',
      expected: `>= ${n}`,
    });
  return out;
}

/** Reference chop of float64 data: round64Value element by element (ints and codebooks: decode(encode)). */
export function chop64Reference(
  spec: FormatSpec,
  src: Float64Array,
  opts?: CastOptions,
  out?: Float64Array,
): Float64Array {
  const dst = checkOut(out, src.length, 'chop64Reference');
  const r = resolveRounding(opts);
  const rng = r.rng;
  for (let i = 0; i < src.length; i++) dst[i] = roundOne(spec, src[i]!, r, opts, rng ? rng.nextU32() : 0);
  return dst;
}

/**
 * Rounds every element of float64 data to `spec`, exactly once, and returns the values as doubles. `out`
 * may be `src` (in place). Stochastic modes draw one 32-bit number per element, in order (the same draws
 * as the float32 chop). Works for formats wider than float32 (custom eXmY up to e11m52, fp64).
 * `chop64(getFormat('fp16'), Float64Array.of(1 + 2 ** -11 + 2 ** -40))` -> [1.0009765625].
 */
export function chop64(
  spec: FormatSpec,
  src: Float64Array,
  opts?: CastOptions,
  out?: Float64Array,
): Float64Array {
  const dst = checkOut(out, src.length, 'chop');
  if (spec.kind !== 'float') return chop64Reference(spec, src, opts, dst);
  chop64Float(cast64(spec, opts), src, dst);
  return dst;
}

/**
 * Per layout and subnormal setting: the step 2^k and its inverse for every biased double exponent of the
 * fast window, and the window [beLo, beHi). Inside it the result can neither overflow (|x| < 2^emax) nor
 * need an inverse step beyond the double range, the input is a normal double, and zero is a value.
 */
export interface StepTable {
  readonly q: Float64Array;
  readonly iq: Float64Array;
  readonly beLo: number;
  readonly beHi: number;
}

const stepTables = new WeakMap<FloatLayout, (StepTable | undefined)[]>();

export function stepTable(L: FloatLayout, sub: boolean): StepTable {
  let pair = stepTables.get(L);
  if (!pair) stepTables.set(L, (pair = [undefined, undefined]));
  const hit = pair[sub ? 1 : 0];
  if (hit) return hit;
  const q = new Float64Array(2048);
  const iq = new Float64Array(2048);
  let beLo = 2048;
  const emax = exponentOf(L.maxFinite);
  const beHi = L.hasZero ? Math.min(emax + 1023, 2047) : 0;
  for (let be = beHi - 1; be >= 1; be--) {
    const k = stepExponent(L, be - 1023, sub);
    if (k < -1022) break; // 1 / 2^k would overflow
    q[be] = pow2(k);
    iq[be] = pow2(-k);
    beLo = be;
  }
  const t: StepTable = { q, iq, beLo, beHi: Math.max(beHi, beLo) };
  pair[sub ? 1 : 0] = t;
  return t;
}

// 1.5 * 2^52: (m + RNE_MAGIC) - RNE_MAGIC rounds a double m in (-2^51, 2^51) to an integer, ties to even.
const RNE_MAGIC = 1.5 * 2 ** 52;

const one = new Float64Array(1);
const oneWords = new Uint32Array(one.buffer);

/**
 * x rounded to nearest even through a step table (a format of <= 49 mantissa bits with zero), or NaN when x
 * is outside the table's window (the caller then takes the reference). A zero result of a negative x is
 * `negZero` (-0, or +0 in formats without -0). The arithmetic context and its kernels use this.
 */
export function roundInTable(T: StepTable, x: number, negZero: number): number {
  one[0] = x;
  const be = (oneWords[HI]! >>> 20) & 0x7ff;
  if ((be - T.beLo) >>> 0 >= T.beHi - T.beLo) return Number.NaN;
  const r = (x * T.iq[be]! + RNE_MAGIC - RNE_MAGIC) * T.q[be]!;
  return r !== 0 ? r : x < 0 ? negZero : 0;
}

/** The float64 chop of a float format: the fast window in typed-array code, the rest by the reference. */
function chop64Float(c: Cast64, src: Float64Array, dst: Float64Array): void {
  const { L, r, policy, flush } = c;
  const mode = r.rounding;
  const rb = r.randomBits;
  const rng = r.rng;
  const sub = L.subnormals && !flush;
  const T = stepTable(L, sub);
  const { q, iq, beLo, beHi } = T;
  const words = new Int32Array(src.buffer, src.byteOffset, src.length * 2);
  const signed = L.signed;
  const negZero = L.spec.nan === 'neg-zero' ? 0 : -0;
  const n = src.length;
  // In place is safe: element i is read before it is written and never read again.
  if (mode === 'nearest-even' && L.M <= 49) {
    // (x / q + 1.5 * 2^52) - 1.5 * 2^52 rounds x / q to an integer, ties to even, for either sign; one
    // unsigned comparison tests the window; a zero result takes the sign rule of the format
    const span = beHi - beLo;
    for (let i = 0; i < n; i++) {
      const hw = words[2 * i + HI]!;
      const be = (hw >>> 20) & 0x7ff;
      const x = src[i]!;
      if ((be - beLo) >>> 0 < span && (hw >= 0 || signed)) {
        const k = (x * iq[be]! + RNE_MAGIC - RNE_MAGIC) * q[be]!;
        dst[i] = k !== 0 ? k : hw < 0 ? negZero : 0;
      } else {
        dst[i] = round64Value(L, x, mode, 0, 0, policy, flush);
      }
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const u = rng ? rng.nextU32() : 0;
    const hw = words[2 * i + HI]!;
    const be = (hw >>> 20) & 0x7ff;
    const x = src[i]!;
    if (be >= beLo && be < beHi && (signed || hw >= 0)) {
      const m = Math.abs(x) * iq[be]!;
      let k = Math.floor(m);
      if (roundsUp(mode, k, m - k, hw < 0, u, rb)) k += 1;
      const y = k * q[be]!;
      dst[i] = hw >= 0 ? y : y === 0 ? negZero : -y;
    } else {
      dst[i] = round64Value(L, x, mode, u, rb, policy, flush);
    }
  }
}

/** The layout of a float format whose codes must fit a JS number exactly (<= 53 bits). */
function numberCodeLayout(spec: FloatSpec, what: string): FloatLayout {
  const L = floatLayout64(spec);
  if (L.bits > 53)
    throw new MixqError(`codes of ${spec.name} have ${L.bits} bits`, {
      source: what,
      expected: 'a format of <= 53 bits (use encodeBig / decodeBig for wider codes)',
    });
  return L;
}

/** Scalar code of a double in a float format of <= 53 bits (codec.ts `encode`). */
export function encodeFloat64(spec: FloatSpec, x: number, opts: CastOptions | undefined): number {
  const L = numberCodeLayout(spec, 'encode');
  const r = resolveRounding(opts);
  const u = r.rng ? r.rng.nextU32() : 0;
  return encodeFloatWith(
    L,
    x,
    r.rounding,
    u,
    r.randomBits,
    opts?.overflow ?? spec.overflow,
    !!opts?.flushSubnormals,
  );
}

/** Value of a code of a float format of <= 53 bits (codec.ts `decode`). */
export function decodeFloat64(spec: FloatSpec, code: number): number {
  return decodeFloat(numberCodeLayout(spec, 'decode'), code);
}

/** Codes of float64 data (formats of <= 32 bits; one random draw per element, in order). */
export function encodeFloat64Array(
  spec: FloatSpec,
  src: Float64Array,
  opts: CastOptions | undefined,
  dst: Uint8Array | Uint16Array | Uint32Array,
): void {
  const { L, r, policy, flush } = cast64(spec, opts);
  const rng = r.rng;
  for (let i = 0; i < src.length; i++)
    dst[i] = encodeFloatWith(L, src[i]!, r.rounding, rng ? rng.nextU32() : 0, r.randomBits, policy, flush);
}

/**
 * The code of a number in a float format of any width as a BigInt (fp64: the double's own bits; NaN
 * inputs give the format's positive NaN code). `encodeBig(parseFormat('fp64'), 1) === 0x3ff0000000000000n`.
 */
export function encodeBig(spec: FloatSpec, x: number, opts?: CastOptions): bigint {
  const { L, r, policy, flush } = cast64(spec, opts);
  const v = round64Value(L, x, r.rounding, r.rng ? r.rng.nextU32() : 0, r.randomBits, policy, flush);
  const neg = x < 0 || Object.is(x, -0);
  const signBit = 1n << BigInt(L.bits - 1);
  if (v !== v) {
    // NaN from an overflow keeps the sign (as encodeFloatWith); NaN inputs and unsigned negatives do not
    const signedNaN = x === x && neg && L.signed && L.spec.nan !== 'neg-zero';
    const nan =
      L.spec.nan === 'ieee'
        ? (BigInt(L.expMax) << BigInt(L.M)) | (1n << BigInt(L.M - 1))
        : L.spec.nan === 'all-ones'
          ? (1n << BigInt(L.E + L.M)) - 1n
          : signBit;
    return signedNaN ? nan | signBit : nan;
  }
  const vneg = v < 0 || Object.is(v, -0);
  const a = Math.abs(v);
  let mag: bigint;
  if (a === Infinity) mag = BigInt(L.expMax) << BigInt(L.M);
  else if (a === 0) mag = 0n;
  else if (L.hasZero && a < L.minNormal) mag = BigInt(a / pow2(L.emin - L.M));
  else {
    const e = exponentOf(a);
    mag = (BigInt(e + L.bias) << BigInt(L.M)) | BigInt(a / pow2(e - L.M) - pow2(L.M));
  }
  return vneg && L.signed ? mag | signBit : mag;
}

/** The value of a BigInt code of a float format of any width. `decodeBig(fp64, 0x7ff0000000000000n) === Infinity`. */
export function decodeBig(spec: FloatSpec, code: bigint): number {
  const L = floatLayout64(spec);
  if (code < 0n || code >= 1n << BigInt(L.bits))
    throw new MixqError(`code ${code} out of range`, {
      source: `format ${spec.name}`,
      field: 'code',
      expected: `0..2^${L.bits} - 1`,
    });
  const signBit = L.signed ? 1n << BigInt(L.bits - 1) : 0n;
  const neg = L.signed && code >= signBit;
  const mag = neg ? code - signBit : code;
  const nan = L.spec.nan;
  if (nan === 'neg-zero' && neg && mag === 0n) return Number.NaN;
  if (nan === 'all-ones' && mag === (1n << BigInt(L.E + L.M)) - 1n) return Number.NaN;
  const ef = Number(mag >> BigInt(L.M));
  const mf = Number(mag & ((1n << BigInt(L.M)) - 1n));
  let v: number;
  if (ef === L.expMax && nan === 'ieee') v = mf === 0 && L.spec.inf ? Infinity : Number.NaN;
  else if (ef === 0 && L.hasZero) v = L.subnormals ? mf * pow2(L.emin - L.M) : 0;
  else v = (pow2(L.M) + mf) * pow2(ef - L.bias - L.M);
  return neg ? -v : v;
}

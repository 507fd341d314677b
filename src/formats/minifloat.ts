/**
 * The one generic codec for every binary floating-point element format: any (exponent bits, mantissa bits,
 * bias, signed/unsigned, subnormals, inf, NaN encoding, zero or no zero). Modelled on ml_dtypes'
 * float8_base.h: a format is a record of traits, one routine serves them all.
 *
 * Layout of a code (bits = sign + E + M):   [ S | exponent field (E) | mantissa field (M) ]
 * value = (-1)^S * (1 + man / 2^M) * 2^(exp - bias)          exponent field >= 1 (or >= 0 without zero)
 *       = (-1)^S * (man / 2^M) * 2^(1 - bias)                 exponent field 0: subnormal (if enabled)
 *
 * This file is the plain reference: it works on JS doubles with exact power-of-two arithmetic. Formats have
 * up to 11 exponent and 52 mantissa bits (every value is a double, so it is exact in a double, and an input
 * double rounds once). The float32 APIs (chop on a Float32Array, value tables) take only formats whose values
 * are all float32 (`floatLayout`); wider ones (up to E11M52 = binary64) round float64 data (`floatLayout64`,
 * round64.ts). Fast float32 bit-twiddling paths live in chop-fast.ts and are tested against this.
 *
 * Special values, per NaN encoding:
 * - `ieee`: the whole top binade is special: mantissa 0 is inf (NaN when the format has no inf), others NaN.
 * - `all-ones`: only S.1..1.1..1 is NaN (OCP e4m3fn, e8m0fnu).
 * - `neg-zero`: the code 1.0..0 (negative zero) is NaN; there is no -0 (the 'fnuz' formats).
 * - `none`: no NaN; NaN inputs encode as +0 (code 0).
 */
import { MixqError } from '../core/errors.ts';
import { roundsUp } from './rounding.ts';
import type { FloatSpec, OverflowPolicy, Rounding } from './spec.ts';

/** Everything derived from a FloatSpec once (cached per spec object). */
export interface FloatLayout {
  readonly spec: FloatSpec;
  readonly bits: number;
  readonly E: number;
  readonly M: number;
  readonly bias: number;
  readonly signed: boolean;
  /** 2^(bits-1) for signed formats, else 0. */
  readonly signBit: number;
  readonly magMask: number;
  readonly manMask: number;
  readonly expMax: number;
  readonly hasZero: boolean;
  /** Subnormals exist (spec.subnormals, a zero binade, and at least one mantissa bit). */
  readonly subnormals: boolean;
  /** Exponent (unbiased) of the lowest normal binade. */
  readonly emin: number;
  readonly minNormal: number;
  /** Smallest positive value (= minNormal without subnormals). */
  readonly minSubnormal: number;
  readonly maxFinite: number;
  /** Magnitude code of maxFinite. */
  readonly maxMag: number;
  /** Magnitude code of inf, or -1. */
  readonly infMag: number;
  /** Positive NaN code, or -1. For 'neg-zero' this is the sign bit alone. */
  readonly nanCode: number;
  /** Every value is a float32 (M <= 23, 2^emax <= 2^127, finest step >= 2^-149): the float32 APIs apply. */
  readonly float32: boolean;
}

const layouts = new WeakMap<FloatSpec, FloatLayout>();

/**
 * Validates a float spec of up to 11 exponent and 52 mantissa bits whose values are all doubles, and derives
 * its constants. Throws MixqError naming the bad field. Used by the float64 paths (round64.ts, encode).
 */
export function floatLayout64(spec: FloatSpec): FloatLayout {
  const cached = layouts.get(spec);
  if (cached) return cached;
  const L = deriveLayout(spec);
  layouts.set(spec, L);
  return L;
}

/**
 * The layout of a format whose values are all float32 (the float32 codec: chop on a Float32Array, value
 * tables, encodeArray of float32 data). Throws MixqError for wider formats, pointing at float64 data.
 */
export function floatLayout(spec: FloatSpec): FloatLayout {
  const L = floatLayout64(spec);
  if (!L.float32) {
    const why =
      L.M > 23
        ? `${L.M} mantissa bits`
        : L.maxFinite > 3.4028234663852886e38
          ? `values up to ${L.maxFinite.toPrecision(3)}`
          : `steps down to 2^${L.emin - L.M}`;
    throw new MixqError(`values of ${spec.name} are not all float32 (${why})`, {
      source: `format ${spec.name}`,
      expected: 'float64 data for this format: chop on a Float64Array or a number',
    });
  }
  return L;
}

function bad(spec: FloatSpec, field: string, message: string, expected: string): MixqError {
  return new MixqError(message, { source: `format ${spec.name}`, field, expected });
}

function deriveLayout(spec: FloatSpec): FloatLayout {
  const { expBits: E, manBits: M, bias, signed } = spec;
  if (!Number.isInteger(E) || E < 1 || E > 11) throw bad(spec, 'expBits', `exponent bits ${E}`, '1..11');
  if (!Number.isInteger(M) || M < 0 || M > 52) throw bad(spec, 'manBits', `mantissa bits ${M}`, '0..52');
  if (!Number.isInteger(bias)) throw bad(spec, 'bias', `bias ${bias}`, 'an integer');
  const hasZero = spec.zero !== false;
  if (spec.inf && spec.nan !== 'ieee')
    throw bad(spec, 'inf', 'inf needs the ieee NaN encoding', "nan 'ieee'");
  if (spec.nan === 'ieee' && M === 0)
    throw bad(spec, 'nan', 'ieee NaN needs a mantissa bit', "manBits >= 1 or nan 'all-ones'/'none'");
  if (spec.nan === 'ieee' && E < 2) throw bad(spec, 'nan', 'ieee NaN needs 2 exponent bits', 'expBits >= 2');
  if (spec.nan === 'neg-zero' && (!signed || !hasZero))
    throw bad(spec, 'nan', 'neg-zero NaN needs a signed format with zero', 'signed: true');
  const bits = (signed ? 1 : 0) + E + M;
  const expMax = 2 ** E - 1;
  const manMask = 2 ** M - 1;
  const magMask = 2 ** (E + M) - 1;
  const subnormals = spec.subnormals && hasZero && M > 0;
  const eminField = hasZero ? 1 : 0;
  const emin = eminField - bias;
  // Top of the range: which (exponent field, mantissa field) is the largest finite code.
  let maxExp = expMax;
  let maxMan = manMask;
  if (spec.nan === 'ieee') maxExp = expMax - 1;
  else if (spec.nan === 'all-ones') {
    if (M > 0) maxMan = manMask - 1;
    else maxExp = expMax - 1;
  }
  if (maxExp < eminField) throw bad(spec, 'expBits', 'no finite normal values', 'more exponent bits');
  const emax = maxExp - bias;
  // Every value must be a double (exact in a JS number); float32 also holds them when `float32` is set.
  if (emax > 1023)
    throw bad(spec, 'bias', `largest exponent 2^${emax} exceeds float64`, `bias >= ${maxExp - 1023}`);
  if (emin - M < -1074)
    throw bad(spec, 'bias', `step 2^${emin - M} is below float64's 2^-1074`, 'a smaller bias');
  const maxFinite = (1 + maxMan / 2 ** M) * pow2(emax);
  const minNormal = pow2(emin);
  let nanCode = -1;
  if (spec.nan === 'ieee') nanCode = expMax * 2 ** M + 2 ** (M - 1);
  else if (spec.nan === 'all-ones') nanCode = magMask;
  else if (spec.nan === 'neg-zero') nanCode = 2 ** (bits - 1);
  return {
    spec,
    bits,
    E,
    M,
    bias,
    signed,
    signBit: signed ? 2 ** (bits - 1) : 0,
    magMask,
    manMask,
    expMax,
    hasZero,
    subnormals,
    emin,
    minNormal,
    minSubnormal: subnormals ? pow2(emin - M) : minNormal,
    maxFinite,
    maxMag: maxExp * 2 ** M + maxMan,
    infMag: spec.inf ? expMax * 2 ** M : -1,
    nanCode,
    float32: M <= 23 && emax <= 127 && emin - M >= -149,
  };
}

// 2 ** e with a variable e is a slow Math.pow call in V8 (hundreds of ns); a table of every double power
// of two is exact and fast. POW2[e + 1074] = 2^e for e in [-1074, 1023].
const POW2 = /* @__PURE__ */ (() => {
  const t = new Float64Array(2098);
  t[1074] = 1;
  for (let e = 1; e <= 1023; e++) t[1074 + e] = t[1073 + e]! * 2;
  for (let e = -1; e >= -1074; e--) t[1074 + e] = t[1075 + e]! / 2;
  return t;
})();

/** 2^e, exact, for integer e in [-1074, 1023] (0 below, Infinity above). */
export function pow2(e: number): number {
  return e < -1074 ? 0 : e > 1023 ? Infinity : POW2[e + 1074]!;
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
// Index of the high word (sign, exponent) of a double in memory order; 1 on little-endian machines.
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** floor(log2(a)) for a finite a > 0, exactly, from the double's exponent field. */
export function exponentOf(a: number): number {
  f64[0] = a;
  const biased = (f64Words[HI]! >>> 20) & 0x7ff;
  if (biased !== 0) return biased - 1023;
  return exponentOf(a * 2 ** 64) - 64; // double subnormal: scale up (exact) and retry
}

/** Value of a code. Subnormal codes of a format without subnormals decode as (signed) zero. */
export function decodeFloat(L: FloatLayout, code: number): number {
  const neg = L.signBit !== 0 && code >= L.signBit;
  const mag = neg ? code - L.signBit : code;
  const nan = L.spec.nan;
  if (nan === 'neg-zero' && neg && mag === 0) return Number.NaN;
  if (nan === 'all-ones' && mag === L.magMask) return Number.NaN;
  const ef = Math.floor(mag / pow2(L.M));
  const mf = mag - ef * pow2(L.M);
  let v: number;
  if (ef === L.expMax && nan === 'ieee') {
    v = mf === 0 && L.spec.inf ? Infinity : Number.NaN;
  } else if (ef === 0 && L.hasZero) {
    v = L.subnormals ? mf * pow2(L.emin - L.M) : 0;
  } else {
    v = (pow2(L.M) + mf) * pow2(ef - L.bias - L.M);
  }
  return neg ? -v : v;
}

/** The NaN code, or 0 (+0 / the smallest value) for formats without NaN (nanCode is -1 there). */
function nanOrZero(L: FloatLayout): number {
  return Math.max(L.nanCode, 0);
}

/** The code for an overflowed magnitude under a policy (sign bits already computed). */
function overflowCode(L: FloatLayout, signBits: number, policy: OverflowPolicy): number {
  if (policy === 'ieee' && L.infMag >= 0) return signBits + L.infMag;
  if (policy !== 'saturate' && L.nanCode >= 0) return nanWithSign(L, signBits);
  return signBits + L.maxMag;
}

function nanWithSign(L: FloatLayout, signBits: number): number {
  return L.spec.nan === 'neg-zero' ? L.nanCode : signBits + L.nanCode;
}

/** The code of a magnitude v that is exactly representable (0 < v <= maxFinite). */
function magnitudeCode(L: FloatLayout, v: number): number {
  if (v < L.minNormal) return v / pow2(L.emin - L.M); // subnormal: exponent field 0
  const e = exponentOf(v);
  return (e + L.bias) * pow2(L.M) + (v / pow2(e - L.M) - pow2(L.M));
}

/** Does rounding in `mode` move a value of sign `neg` toward smaller magnitude (so it never overflows)? */
function towardSmaller(mode: Rounding, neg: boolean): boolean {
  return (
    mode === 'toward-zero' || mode === 'nearest-odd' || (mode === 'down' && !neg) || (mode === 'up' && neg)
  );
}

/**
 * The shared end of every float rounding: the magnitude (n + frac) * q (n integer >= 0, 0 <= frac < 1, q the
 * step at the value's binade) rounded in `mode` and put through the format's range rules. Returns the
 * rounded magnitude (a value of the format in [0, maxFinite]), Infinity (overflow to inf) or NaN (overflow
 * to NaN). For formats without zero an underflow returns minNormal (code 0, the smallest value).
 * Used by the code path below and by the float64 value paths of round64.ts, so they decide alike.
 */
export function finishMagnitude(
  L: FloatLayout,
  n: number,
  frac: number,
  q: number,
  mode: Rounding,
  neg: boolean,
  u32: number,
  randomBits: number,
  policy: OverflowPolicy,
): number {
  // Ties-to-even looks at n, the significand with its hidden bit. With no mantissa bits n is the hidden 1,
  // always odd, so ties round up in magnitude: e8m0fnu(1.5) = 2, e8m0fnu(0.1875) = 0.25, as ml_dtypes.
  if (roundsUp(mode, n, frac, neg, u32, randomBits)) n += 1;
  const v = n * q;
  if (v > L.maxFinite) {
    // IEEE 754 7.4: rounding toward smaller magnitude never overflows past max finite.
    if (towardSmaller(mode, neg) || policy === 'saturate') return L.maxFinite;
    if (policy === 'ieee' && L.infMag >= 0) return Infinity;
    return L.nanCode >= 0 ? Number.NaN : L.maxFinite;
  }
  if (!L.hasZero && v < L.minNormal) return L.minNormal; // no zero: the smallest value (code 0)
  return v;
}

/** Step (quantum) of a magnitude a > 0 with exponent e: emin - M below minNormal (emin without subnormals). */
export function stepExponent(L: FloatLayout, e: number, subnormals: boolean): number {
  return e < L.emin ? (subnormals ? L.emin - L.M : L.emin) : e - L.M;
}

/**
 * Reference cast of one number to a code. `u32` is this element's random draw (used only by stochastic
 * modes), `flush` removes subnormals from the target set (results round to 0 or the min normal).
 * Codes are exact for formats of up to 53 bits (callers check).
 */
export function encodeFloatWith(
  L: FloatLayout,
  x: number,
  mode: Rounding,
  u32: number,
  randomBits: number,
  policy: OverflowPolicy,
  flush: boolean,
): number {
  if (Number.isNaN(x)) return nanOrZero(L);
  const neg = x < 0 || (x === 0 && 1 / x < 0);
  if (neg && !L.signed) {
    // Unsigned formats: -0 is +0; negative values have no representation.
    if (x !== 0) return nanOrZero(L);
  }
  const signBits = neg && L.signed ? L.signBit : 0;
  const a = Math.abs(x);
  if (a === Infinity) {
    if (L.infMag >= 0) return signBits + L.infMag;
    return overflowCode(L, signBits, policy === 'saturate' ? 'saturate' : 'nan');
  }
  if (a === 0) {
    if (!L.hasZero) return nanOrZero(L); // as ml_dtypes: e8m0fnu(0) is NaN
    return L.spec.nan === 'neg-zero' ? 0 : signBits;
  }
  const qexp = stepExponent(L, exponentOf(a), L.subnormals && !flush);
  const q = pow2(qexp);
  let m = a / q; // exact: division by a power of two (unless it underflows, see below)
  // A step above 1 can push a/q below 2^-1074 (only for tiny doubles and formats whose grid is coarser than
  // 1 there): any positive m < 2^-33 makes the same decision in every mode, so keep it positive.
  if (m === 0) m = Number.MIN_VALUE;
  const n = Math.floor(m);
  const v = finishMagnitude(L, n, m - n, q, mode, neg, u32, randomBits, policy);
  if (v !== v) return nanWithSign(L, signBits);
  if (v === Infinity) return signBits + L.infMag;
  if (v === 0) return L.spec.nan === 'neg-zero' ? 0 : signBits;
  return signBits + magnitudeCode(L, v);
}

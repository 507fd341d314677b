/**
 * The exact fallback of the arithmetic context: results that neither are a double nor can be compressed
 * into one without changing a rounding decision (target.ts) are formed as BigInt fractions and rounded once.
 *
 * A fraction num/den is rounded by finding the step 2^k at its binade, n = floor(|v| / 2^k) and the
 * residual; the residual is then rounded to odd in 53 fraction bits (floor(frac * 2^53), last bit set when
 * inexact). Every decision boundary of every mode lies on a multiple of 2^-32 in units of the step (ties at
 * 1/2, stochastic thresholds u / 2^32), so that stand-in decides exactly like the true residual, and the
 * shared decision and range rules of src/formats (roundsUp, finishMagnitude) finish the job. Slow (about a
 * microsecond) and only taken for wide formats, extreme exponents and three-term results (fma of doubles).
 */
import { type FloatLayout, finishMagnitude, pow2, stepExponent } from '../formats/minifloat.ts';
import type { IntLayout } from '../formats/int.ts';
import { roundsUp } from '../formats/rounding.ts';
import type { OverflowPolicy, Rounding } from '../formats/spec.ts';

/** An exact real num / den (den > 0). */
export interface Fraction {
  readonly num: bigint;
  readonly den: bigint;
}

const view = new DataView(new ArrayBuffer(8));

/** A finite double as an exact fraction. */
export function fractionOf(x: number): Fraction {
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const field = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & 0xfffffffffffffn;
  let m = field === 0 ? frac : frac | 0x10000000000000n;
  if (bits >> 63n === 1n) m = -m;
  const e = (field === 0 ? 1 : field) - 1075;
  return e >= 0 ? { num: m << BigInt(e), den: 1n } : { num: m, den: 1n << BigInt(-e) };
}

export function addF(a: Fraction, b: Fraction): Fraction {
  return a.den === b.den
    ? { num: a.num + b.num, den: a.den }
    : { num: a.num * b.den + b.num * a.den, den: a.den * b.den };
}

export function mulF(a: Fraction, b: Fraction): Fraction {
  return { num: a.num * b.num, den: a.den * b.den };
}

/** a / b for b != 0. */
export function divF(a: Fraction, b: Fraction): Fraction {
  const num = a.num * b.den;
  const den = a.den * b.num;
  return den < 0n ? { num: -num, den: -den } : { num, den };
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((n.toString(2).length >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/**
 * sqrt of a non-negative dyadic fraction (a double's), in units of 2^-1200 with a sticky half unit when
 * inexact: every boundary is a multiple of 2^-1106 (steps >= 2^-1074, stochastic thresholds step * 2^-32),
 * so no boundary lies strictly between the stand-in and the true root.
 */
export function sqrtF(a: Fraction): Fraction {
  const scaled = (a.num << 2400n) / a.den; // exact: den is a power of two <= 2^1074
  const s = isqrt(scaled);
  return s * s === scaled ? { num: s, den: 1n << 1200n } : { num: 2n * s + 1n, den: 1n << 1201n };
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** floor(log2(num / den)) for num, den > 0. */
function floorLog2(num: bigint, den: bigint): number {
  const e = bitLength(num) - bitLength(den);
  return (e >= 0 ? num < den << BigInt(e) : num << BigInt(-e) < den) ? e - 1 : e;
}

/** |v| / 2^k as n + frac: n, and frac rounded to odd in 53 bits (see the header). */
function split(num: bigint, den: bigint, k: number): { n: bigint; frac: number } {
  const P = k >= 0 ? num : num << BigInt(-k);
  const Q = k >= 0 ? den << BigInt(k) : den;
  const n = P / Q;
  const rem = (P - n * Q) << 53n;
  let f = rem / Q;
  if (rem % Q !== 0n) f |= 1n;
  return { n, frac: Number(f) * 2 ** -53 };
}

/** An exact fraction rounded once to a float format (the value decode(encode(v)) would give). */
export function roundFractionFloat(
  L: FloatLayout,
  v: Fraction,
  mode: Rounding,
  u32: number,
  randomBits: number,
  policy: OverflowPolicy,
  flush: boolean,
): number {
  const neg = v.num < 0n;
  const num = neg ? -v.num : v.num;
  if (num === 0n) return L.hasZero ? 0 : L.minNormal; // an exact zero sum is +0 (IEEE 754 6.3, nearest)
  if (neg && !L.signed) return L.nanCode >= 0 ? Number.NaN : L.hasZero ? 0 : L.minNormal;
  const k = stepExponent(L, floorLog2(num, v.den), L.subnormals && !flush);
  const { n, frac } = split(num, v.den, k);
  // n < 2^(M+1) <= 2^53 is exact as a number; a step beyond the double range means overflow
  const q = k > 1023 ? Infinity : pow2(k);
  const mag = finishMagnitude(L, Number(n), frac, q, mode, neg, u32, randomBits, policy);
  if (!neg || !L.signed) return mag;
  return mag === 0 ? (L.spec.nan === 'neg-zero' ? 0 : -0) : -mag;
}

/** An exact fraction rounded once to an integer format (round, then saturate). */
export function roundFractionInt(
  L: IntLayout,
  v: Fraction,
  mode: Rounding,
  u32: number,
  randomBits: number,
): number {
  const neg = v.num < 0n;
  const num = neg ? -v.num : v.num;
  const { n, frac } = split(num, v.den, 0);
  let m = n > 1n << 40n ? 2 ** 40 : Number(n); // far beyond every integer format: saturates below
  if (roundsUp(mode, m, frac, neg, u32, randomBits)) m += 1;
  const s = neg ? -m : m;
  return Math.min(L.max, Math.max(L.min, s)) + 0;
}

/**
 * Exact rational-arithmetic rounding oracle (BigInt), written apart from the codec: it shares no code with
 * src/formats or src/numerics, only the definitions (spec fields, rounding modes, overflow policies). A real
 * number is a fraction num/den of BigInts; rounding it to a float format finds the grid step 2^k at its
 * binade, n = floor(|x| / 2^k) and the exact remainder, and decides with integer comparisons only. Every
 * result is a value of the format, hence a double, and is returned as a JS number.
 *
 * Exact inputs: doubles (`ratOfDouble`), sums / products / fma of doubles (dyadic), quotients (any den),
 * and square roots via `sqrtRat`, which returns a dyadic number with 1200 extra fraction bits and a sticky
 * half-unit: every decision boundary of every format (steps >= 2^-1074, stochastic thresholds >= 2^-1106)
 * is a multiple of 2^-1200, so the stand-in decides exactly like the irrational root.
 */
import type { FloatSpec, OverflowPolicy, Rounding } from '../../src/formats/index.ts';

/** An exact real: num / den with den > 0, or a special. */
export type Real =
  { kind: 'rat'; num: bigint; den: bigint } | { kind: 'nan' } | { kind: 'inf'; neg: boolean };

export function rat(num: bigint, den = 1n): Real {
  if (den < 0n) return { kind: 'rat', num: -num, den: -den };
  return { kind: 'rat', num, den };
}

const bitsView = new DataView(new ArrayBuffer(8));

/** A double as an exact fraction (-0 keeps its sign in `negZero`). */
export function ratOfDouble(x: number): Real & { negZero?: boolean } {
  if (Number.isNaN(x)) return { kind: 'nan' };
  if (x === Infinity || x === -Infinity) return { kind: 'inf', neg: x < 0 };
  bitsView.setFloat64(0, x);
  const bits = bitsView.getBigUint64(0);
  const neg = bits >> 63n === 1n;
  const field = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  const mant = field === 0 ? frac : frac | (1n << 52n);
  const exp = (field === 0 ? 1 : field) - 1075; // value = mant * 2^exp
  const num = neg ? -mant : mant;
  const r =
    exp >= 0
      ? { kind: 'rat' as const, num: num << BigInt(exp), den: 1n }
      : { kind: 'rat' as const, num, den: 1n << BigInt(-exp) };
  return x === 0 && neg ? { ...r, negZero: true } : r;
}

export function addRat(a: Real, b: Real): Real {
  if (a.kind !== 'rat' || b.kind !== 'rat') throw new Error('oracle: finite operands only');
  return rat(a.num * b.den + b.num * a.den, a.den * b.den);
}
export function mulRat(a: Real, b: Real): Real {
  if (a.kind !== 'rat' || b.kind !== 'rat') throw new Error('oracle: finite operands only');
  return rat(a.num * b.num, a.den * b.den);
}
export function divRat(a: Real, b: Real): Real {
  if (a.kind !== 'rat' || b.kind !== 'rat' || b.num === 0n) throw new Error('oracle: finite, b != 0');
  return rat(a.num * b.den, a.den * b.num);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** sqrt of a non-negative dyadic fraction as described in the header (exact when the root is dyadic). */
export function sqrtRat(a: Real): Real {
  if (a.kind !== 'rat' || a.num < 0n) throw new Error('oracle: sqrt of a non-negative finite');
  // a = num / den; scale by 2^2400 so the root is in units of 2^-1200
  const scaled = (a.num << 2400n) / a.den;
  if ((a.num << 2400n) % a.den !== 0n) throw new Error('oracle: sqrt needs den | num * 2^2400');
  const s = isqrt(scaled);
  if (s * s === scaled) return rat(s, 1n << 1200n);
  return rat(2n * s + 1n, 1n << 1201n);
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** floor(log2(num/den)) for num, den > 0. */
function floorLog2(num: bigint, den: bigint): number {
  let e = bitLength(num) - bitLength(den);
  // 2^e <= num/den < 2^(e+1) after at most one correction
  if (e >= 0 ? num < den << BigInt(e) : num << BigInt(-e) < den) e -= 1;
  return e;
}

const powers = new Map<number, number>();

/** Exact power of two as a double (k in [-1074, 1023]), built by halving/doubling without Math.pow. */
function twoTo(k: number): number {
  const hit = powers.get(k);
  if (hit !== undefined) return hit;
  let v = 1;
  if (k >= 0) for (let i = 0; i < k; i++) v *= 2;
  else for (let i = 0; i < -k; i++) v /= 2; // exact down to 2^-1074 (the subnormals are powers of two too)
  powers.set(k, v);
  return v;
}

/** The derived constants of a spec, re-derived here from the definitions. */
interface Grid {
  M: number;
  emin: number;
  hasZero: boolean;
  hasNaN: boolean;
  /** max finite = maxSig * 2^maxExp (maxSig an integer). */
  maxSig: bigint;
  maxExp: number;
}

function gridOf(spec: FloatSpec): Grid {
  const E = spec.expBits;
  const M = spec.manBits;
  const hasZero = spec.zero !== false;
  const topField = 2 ** E - 1;
  let maxField = topField;
  let maxMan = (1n << BigInt(M)) - 1n;
  if (spec.nan === 'ieee') maxField = topField - 1;
  else if (spec.nan === 'all-ones') {
    if (M > 0) maxMan -= 1n;
    else maxField = topField - 1;
  }
  return {
    M,
    emin: (hasZero ? 1 : 0) - spec.bias,
    hasZero,
    hasNaN: spec.nan !== 'none',
    maxSig: (1n << BigInt(M)) + maxMan,
    maxExp: maxField - spec.bias - M,
  };
}

export interface OracleOptions {
  rounding: Rounding;
  /** The element's 32-bit random draw (stochastic modes). */
  u32?: number;
  randomBits?: number;
  overflow?: OverflowPolicy;
  flushSubnormals?: boolean;
}

/** Does |x| = (n + rem/den') * step round up, by the definitions of the modes? (rem/step given as p/q). */
function up(mode: Rounding, n: bigint, p: bigint, q: bigint, neg: boolean, u32: number, rb: number): boolean {
  if (p === 0n) return false; // exact
  switch (mode) {
    case 'nearest-even':
      return 2n * p > q || (2n * p === q && n % 2n === 1n);
    case 'nearest-away':
      return 2n * p >= q;
    case 'toward-zero':
      return false;
    case 'up':
      return !neg;
    case 'down':
      return neg;
    case 'stochastic':
      if (rb > 0 && rb < 32) return BigInt(u32 >>> (32 - rb)) < (p << BigInt(rb)) / q;
      return BigInt(u32) * q < p << 32n;
    case 'stochastic-equal':
      return u32 >>> 31 === 1;
    case 'nearest-odd':
      return n % 2n === 0n;
  }
}

/** The oracle: an exact real rounded once to a float format, as a double. `neg0` marks an input of -0. */
export function oracleRound(spec: FloatSpec, x: Real, o: OracleOptions, neg0 = false): number {
  const g = gridOf(spec);
  const policy = o.overflow ?? spec.overflow;
  const zeroValue = (neg: boolean): number => (neg && spec.signed && spec.nan !== 'neg-zero' ? -0 : 0);
  const minNormal = twoTo(g.emin);
  const noValue = g.hasNaN ? Number.NaN : g.hasZero ? 0 : minNormal; // the value of code 0 / NaN
  const maxFinite = Number(g.maxSig) * twoTo(g.maxExp);
  const signed = (v: number, neg: boolean): number => (neg && spec.signed ? -v : v);
  if (x.kind === 'nan') return noValue;
  if (x.kind === 'inf') {
    if (x.neg && !spec.signed) return noValue;
    if (spec.inf) return x.neg ? -Infinity : Infinity;
    return policy !== 'saturate' && g.hasNaN ? Number.NaN : signed(maxFinite, x.neg);
  }
  const neg = x.num < 0n;
  const num = neg ? -x.num : x.num;
  if (neg && !spec.signed) return noValue;
  if (num === 0n) return g.hasZero ? zeroValue(neg0) : noValue;
  const sub = spec.subnormals && g.hasZero && g.M > 0 && !o.flushSubnormals;
  const e = floorLog2(num, x.den);
  const k = e >= g.emin ? e - g.M : sub ? g.emin - g.M : g.emin; // the step is 2^k
  // |x| / 2^k = num / (den * 2^k) = P / Q
  const P = k >= 0 ? num : num << BigInt(-k);
  const Q = k >= 0 ? x.den << BigInt(k) : x.den;
  let n = P / Q;
  const rem = P - n * Q; // remainder / Q = frac
  if (up(o.rounding, n, rem, Q, neg, o.u32 ?? 0, o.randomBits ?? 0)) n += 1n;
  // overflow: n * 2^k > maxSig * 2^maxExp ?
  const over = k >= g.maxExp ? n << BigInt(k - g.maxExp) > g.maxSig : n > g.maxSig << BigInt(g.maxExp - k);
  if (over) {
    const m = o.rounding;
    const smaller =
      m === 'toward-zero' || m === 'nearest-odd' || (m === 'down' && !neg) || (m === 'up' && neg);
    if (smaller || policy === 'saturate') return signed(maxFinite, neg);
    if (policy === 'ieee' && spec.inf) return neg ? -Infinity : Infinity;
    return g.hasNaN ? Number.NaN : signed(maxFinite, neg);
  }
  if (n === 0n) return g.hasZero ? zeroValue(neg) : signed(minNormal, neg);
  const v = Number(n) * twoTo(k); // n < 2^54 and the product is a value of the format: exact
  if (!g.hasZero && v < minNormal) return signed(minNormal, neg);
  return signed(v, neg);
}

/** Same on a double input. */
export function oracleRoundDouble(spec: FloatSpec, x: number, o: OracleOptions): number {
  const r = ratOfDouble(x);
  return oracleRound(spec, r, o, r.kind === 'rat' && r.negZero === true);
}

/** floor(frac * 2^32) of an exact real's residual at its step (to aim stochastic draws at the threshold). */
export function residual32(spec: FloatSpec, x: number | Real, flush = false): number {
  const r = typeof x === 'number' ? ratOfDouble(x) : x;
  if (r.kind !== 'rat' || r.num === 0n) return 0;
  const g = gridOf(spec);
  const num = r.num < 0n ? -r.num : r.num;
  const sub = spec.subnormals && g.hasZero && g.M > 0 && !flush;
  const e = floorLog2(num, r.den);
  const k = e >= g.emin ? e - g.M : sub ? g.emin - g.M : g.emin;
  const P = k >= 0 ? num : num << BigInt(-k);
  const Q = k >= 0 ? r.den << BigInt(k) : r.den;
  return Number(((P % Q) << 32n) / Q);
}

/** Integer formats: round to an integer in the mode, then saturate (NaN -> 0). */
export function oracleRoundInt(
  spec: { bits: number; signed: boolean; narrow: boolean },
  x: number | Real,
  o: OracleOptions,
): number {
  const half = 2 ** (spec.bits - 1);
  const lo = spec.signed ? (spec.narrow ? -(half - 1) : -half) : 0;
  const hi = spec.signed ? half - 1 : 2 ** spec.bits - 1;
  const r = typeof x === 'number' ? ratOfDouble(x) : x;
  if (r.kind === 'nan') return 0;
  if (r.kind === 'inf') return r.neg ? lo : hi;
  const neg = r.num < 0n;
  const num = neg ? -r.num : r.num;
  let n = num / r.den;
  if (up(o.rounding, n, num - n * r.den, r.den, neg, o.u32 ?? 0, o.randomBits ?? 0)) n += 1n;
  const v = neg ? -Number(n) : Number(n);
  return Math.min(hi, Math.max(lo, v)) + 0;
}

/**
 * Error-free transformations of doubles (Knuth's TwoSum, Dekker's TwoProduct with Veltkamp's split) and the
 * exact residual signs of a correctly rounded quotient and square root. They let an operation on doubles
 * report its exact result as `hi + lo` (or `hi` and the side the exact value lies on), which is what a
 * correctly rounded operation in another format needs (rounding.ts in this folder).
 *
 * Conditions (IEEE binary64, round to nearest even, which JavaScript guarantees):
 * - twoSumErr: exact for all finite a, b whose sum does not overflow (Knuth 1969, TAOCP 4.2.2).
 * - twoProductErr: exact when |a|, |b| <= 2^995 (the split a * (2^27 + 1) does not overflow) and the
 *   exponents satisfy e_a + e_b >= -969 (the error term, a multiple of 2^(e_a + e_b - 105), is not below
 *   2^-1074) (Dekker 1971; Boldo 2006 for the split). `productIsSafe` checks both.
 * - divResidualSign / sqrtResidualSign: q = fl(a / b) and s = fl(sqrt(a)) are correctly rounded, their
 *   remainders a - q*b and a - s*s are doubles and are computed exactly from TwoProduct under the same
 *   range conditions (Bohlender, Walter, Kornerup & Matula 1991; Boldo & Daumas 2003).
 */

/** Error of fl(a + b) = s: a + b = s + twoSumErr(a, b, s) exactly. */
export function twoSumErr(a: number, b: number, s: number): number {
  const bb = s - a;
  return a - (s - bb) + (b - bb);
}

// Veltkamp's constant for binary64: 2^27 + 1 splits a double into two 26-bit halves.
const SPLIT = 134217729;

/** Error of fl(a * b) = p: a * b = p + twoProductErr(a, b, p) exactly (see productIsSafe). */
export function twoProductErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return al * bl - (p - ah * bh - al * bh - ah * bl);
}

const BIG = 2 ** 995;
const TINY = 2 ** -969;

/**
 * Whether TwoProduct of a and b is exact: both in [-2^995, 2^995] and |a| * |b| is either 0 or at least
 * 2^-969 (checked on the exponents via the product itself, which is then far from underflow).
 */
export function productIsSafe(a: number, b: number): boolean {
  const aa = Math.abs(a);
  const ab = Math.abs(b);
  if (aa > BIG || ab > BIG) return false;
  const p = aa * ab;
  return p === 0 ? aa === 0 || ab === 0 : p >= TINY;
}

/**
 * The side of q = fl(a / b) on which the exact quotient lies: sign(a/b - q) in {-1, 0, 1}, or NaN when the
 * range conditions do not hold (the caller then uses exact arithmetic).
 */
export function divResidualSign(a: number, b: number, q: number): number {
  if (!Number.isFinite(q) || q === 0 || !productIsSafe(q, b)) return Number.NaN;
  const h = q * b;
  const r = a - h - twoProductErr(q, b, h); // a - h is exact (Sterbenz), and so is the remainder
  return Math.sign(r) * Math.sign(b);
}

/** sign(sqrt(a) - s) for s = fl(sqrt(a)), or NaN outside the range conditions. */
export function sqrtResidualSign(a: number, s: number): number {
  if (!Number.isFinite(s) || s === 0 || !productIsSafe(s, s)) return Number.NaN;
  const h = s * s;
  return Math.sign(a - h - twoProductErr(s, s, h));
}

/**
 * The correctly rounded operations of a Target: each computes what doubles can say about the exact result
 * (the result itself, an exact pair from TwoSum / TwoProduct, or the side of the exact value) and hands it
 * to the target, which rounds once (target.ts). Exact BigInt fractions are built only when that fails
 * (a three-term fma, extreme exponents, or a format too wide for the round-to-odd compression).
 *
 * IEEE 754 conventions kept: inf / NaN operands give what binary64 gives, rounded; an exact zero sum of
 * operands of opposite sign is +0, or -0 when rounding down (6.3).
 */
import { divResidualSign, productIsSafe, sqrtResidualSign, twoProductErr, twoSumErr } from './eft.ts';
import { exactFraction, type Target } from './target.ts';

/** The zero of an exact cancellation a + b = 0 (a, b not both zero-signed alike). */
function zeroSum(t: Target, a: number, b: number): number {
  if (a === 0 && b === 0 && Object.is(a, b)) return a; // -0 + -0 = -0, 0 + 0 = 0
  return t.rounding === 'down' ? t.value(-0, 0) : 0;
}

/** round(a + b). */
export function addT(t: Target, a: number, b: number, u: number): number {
  const s = a + b;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return t.value(s, u);
  if (s === 0) return zeroSum(t, a, b);
  const e = Number.isFinite(s) ? twoSumErr(a, b, s) : Number.NaN;
  return t.near(s, e, u, 'sum', a, b, 0);
}

/** round(a * b). */
export function mulT(t: Target, a: number, b: number, u: number): number {
  const p = a * b;
  if (!Number.isFinite(a) || !Number.isFinite(b) || p === 0) {
    if (p === 0 && a !== 0 && b !== 0) return t.fraction(exactFraction('product', a, b, 0), u); // underflow
    return t.value(p, u);
  }
  const e = productIsSafe(a, b) ? twoProductErr(a, b, p) : Number.NaN;
  if (e !== e) return t.fraction(exactFraction('product', a, b, 0), u);
  return t.near(p, e, u, 'product', a, b, 0);
}

/** round(a * b + c), one rounding. */
export function fmaT(t: Target, a: number, b: number, c: number, u: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(c)) return t.value(a * b + c, u);
  if (a === 0 || b === 0) return c === 0 ? t.value(a * b + c, u) : t.value(c, u);
  if (!productIsSafe(a, b)) return t.fraction(exactFraction('fma', a, b, c), u);
  const p = a * b;
  const pe = twoProductErr(a, b, p);
  if (pe === 0) return addT(t, p, c, u); // the product is a double: a two-term sum
  const s = p + c;
  if (!Number.isFinite(s)) return t.fraction(exactFraction('fma', a, b, c), u);
  const e1 = twoSumErr(p, c, s);
  if (e1 !== 0) return t.fraction(exactFraction('fma', a, b, c), u); // three terms
  // a*b + c = s + pe exactly; renormalise so that the head is the rounded sum
  const h = s + pe;
  if (h === 0) return t.fraction(exactFraction('fma', a, b, c), u);
  return t.near(h, twoSumErr(s, pe, h), u, 'fma', a, b, c);
}

/** round(a / b). */
export function divT(t: Target, a: number, b: number, u: number): number {
  const q = a / b;
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0 || b === 0) return t.value(q, u);
  const dir = divResidualSign(a, b, q);
  if (dir !== dir) return t.fraction(exactFraction('quotient', a, b, 0), u);
  return t.near(q, dir, u, 'quotient', a, b, 0);
}

/** round(sqrt(a)). */
export function sqrtT(t: Target, a: number, u: number): number {
  const s = Math.sqrt(a);
  if (!(a > 0) || a === Infinity) return t.value(s, u);
  const dir = sqrtResidualSign(a, s);
  if (dir !== dir) return t.fraction(exactFraction('root', a, 0, 0), u);
  return t.near(s, dir, u, 'root', a, 0, 0);
}

/**
 * Rounding a real number to an integer, in any rounding mode: what integer-grid quantizers (src/quant)
 * need before their zero point and clamp, with the decision of rounding.ts (roundsUp), so that quant and
 * the formats codecs share one vocabulary of modes and one implementation of each.
 */
import { roundsUp } from './rounding.ts';
import type { Rounding } from './spec.ts';

// 1.5 * 2^52: adding and subtracting it rounds a double of magnitude < 2^51 to an integer, ties to even,
// in the FPU (the classic magic-number trick); beyond 2^51 the result stays within 1 of x, on x's side
// of every integer range a quantizer clamps to.
const RNE_MAGIC = 1.5 * 2 ** 52;

/**
 * x rounded to the nearest integer, ties to even (numpy.round, torch.round, IEEE roundTiesToEven); -0.4
 * gives +0. The hot path of every nearest-even integer quantizer.
 * @example nearestEvenInt(2.5) // 2
 */
export function nearestEvenInt(x: number): number {
  return x + RNE_MAGIC - RNE_MAGIC;
}

/**
 * x rounded to an integer in `mode`; stochastic modes use the 32-bit draw `u32` (and `randomBits`) as
 * roundsUp defines them. Non-finite x is returned as is.
 * @example roundToInteger(-2.5, 'nearest-away', 0, 0) // -3
 */
export function roundToInteger(x: number, mode: Rounding, u32: number, randomBits: number): number {
  if (!Number.isFinite(x)) return x;
  const neg = x < 0;
  const a = Math.abs(x);
  let n = Math.floor(a);
  if (roundsUp(mode, n, a - n, neg, u32, randomBits)) n += 1;
  return neg ? -n : n;
}

/**
 * Rounding for quantizers (src/quant), with the formats codecs' own decisions so that quant keeps no
 * rounding of its own: a real number to an integer in any mode (integer grids round before their zero
 * point and clamp; roundsUp decides), and a fast nearest-even encoder for the many values of a small
 * format (its reference is the codec itself).
 */
import { encoderOf, valueTable } from './codec.ts';
import { roundsUp } from './rounding.ts';
import type { FormatSpec, Rounding } from './spec.ts';

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

/**
 * The nearest-even, saturating encoder of a float or codebook format of at most 16 bits (encode with
 * { overflow: 'saturate' }) for many values: a binary search over the format's finite values decides every input that has one
 * nearest value, and the codec itself (the reference) every other: an exact tie, a zero result (whose
 * sign the codec keeps), a value outside the finite range, NaN. Same codes as the codec for every input
 * (test/formats/round.test.ts ties them), at a fraction of its per-value cost.
 * @example nearestEvenEncoder(getFormat('fp4_e2m1fn'))(2.4) // 4 (the code of 2)
 */
export function nearestEvenEncoder(spec: FormatSpec): (x: number) => number {
  const reference = encoderOf(spec, { rounding: 'nearest-even', overflow: 'saturate' });
  if (spec.kind === 'int') return reference; // integers: the codec is already arithmetic (int.ts)
  const table = valueTable(spec);
  const pairs: [number, number][] = [];
  for (let c = 0; c < table.length; c++) {
    const v = table[c]!;
    if (Number.isFinite(v) && v !== 0) pairs.push([v, c]);
  }
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  // one code per value (a codebook may repeat one): the first, as the codec's own tables keep it
  const kept = pairs.filter((p, i) => i === 0 || p[0] !== pairs[i - 1]![0]);
  const hasZero = Array.from(table).some((v) => v === 0);
  const values = Float64Array.from(kept, (p) => p[0]);
  const codes = Uint32Array.from(kept, (p) => p[1]);
  const n = values.length;
  const lowest = values[0]!;
  const highest = values[n - 1]!;
  return (x: number): number => {
    if (!(x > lowest && x < highest)) return reference(x); // outside, at an end, or NaN
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (values[mid]! <= x) lo = mid;
      else hi = mid;
    }
    let a = values[lo]!;
    let b = values[hi]!;
    // zero lies between a negative and a positive value: it is a neighbour too
    if (hasZero && a < 0 && b > 0) {
      if (x < 0) b = 0;
      else a = 0;
    }
    // exact: adjacent values are within a factor of two (Sterbenz), or the codec computes the same
    const da = x - a;
    const db = b - x;
    if (da === db) return reference(x);
    if (da < db) return a === 0 ? reference(x) : codes[lo]!;
    return b === 0 ? reference(x) : codes[hi]!;
  };
}

/**
 * The fast dot-product kernel behind dot / matvec / matmul: the plan's common cases in one typed-array
 * loop. It applies when the order is sequential and the accumulator (the products' rounding, and the outer
 * sum if blocked) rounds to nearest-even in a float format with a fast window (target.ts), or is an
 * integer accumulator; the caller guarantees that every product x_i * y_i is a double (operands are values
 * of a format whose products fit binary64). Each step forms s = acc + p and its TwoSum error inline; an
 * exact s inside the window is rounded by the 1.5 * 2^52 trick, anything else by the reference operation
 * (fmaT / addT), so the results equal accumulate.ts's dotReference bit for bit
 * (test/numerics/context.test.ts).
 */
import type { Rng } from '../core/rng.ts';
import type { AccumulationPlan } from './accumulate.ts';
import { IntAccumulator } from './accumulate.ts';
import { roundInTable } from '../formats/round64.ts';
import { addT, fmaT } from './target-ops.ts';
import type { Target } from './target.ts';

/** Whether dotFast applies to a plan (the caller also guarantees exact products). */
export function fastPlan(plan: AccumulationPlan): boolean {
  const A = plan.acc;
  if (A instanceof IntAccumulator)
    return plan.order === 'sequential' && (plan.blockSize === 0 || plan.outer instanceof IntAccumulator);
  if (plan.order !== 'sequential' || !A.fastWindow()) return false;
  if (plan.products && !plan.products.fastWindow()) return false;
  return (
    plan.blockSize === 0 || plan.outer instanceof IntAccumulator || plan.outer.fastWindow() !== undefined
  );
}

/**
 * Sequential accumulation of x[xo + i] * y[yo + i], i in [lo, hi), into a fast-window target: fused, or
 * with each product first rounded by P (also fast-window).
 */
function runFloat(
  A: Target,
  P: Target | undefined,
  x: Float64Array,
  xo: number,
  y: Float64Array,
  yo: number,
  lo: number,
  hi: number,
): number {
  const W = A.fastWindow()!;
  const PW = P ? P.fastWindow() : undefined;
  let acc = 0;
  for (let i = lo; i < hi; i++) {
    const a = x[xo + i]!;
    const b = y[yo + i]!;
    let p = a * b;
    if (P && PW) {
      const r = roundInTable(PW.table, p, PW.negZero);
      p = r === r ? r : P.value(p, 0);
    }
    const s = acc + p;
    const bb = s - acc;
    const e = acc - (s - bb) + (p - bb);
    if (e === 0) {
      const r = roundInTable(W.table, s, W.negZero);
      if (r === r) {
        acc = r;
        continue;
      }
    }
    // the product is a double (the caller's guarantee): round the exact pair s + e directly
    acc =
      s === 0 || !Number.isFinite(s)
        ? P
          ? addT(A, acc, p, 0)
          : fmaT(A, a, b, acc, 0)
        : A.near(s, e, 0, 'sum', acc, p, 0);
  }
  return acc;
}

function runInt(
  A: IntAccumulator,
  x: Float64Array,
  xo: number,
  y: Float64Array,
  yo: number,
  lo: number,
  hi: number,
): number {
  let acc = 0;
  const { min, max } = A;
  for (let i = lo; i < hi; i++) {
    const s = acc + x[xo + i]! * y[yo + i]!;
    acc = s >= min && s <= max ? s : A.add(acc, x[xo + i]! * y[yo + i]!);
  }
  return acc;
}

/** dotReference for a fastPlan, on contiguous vectors (x from xo, y from yo, n elements). */
export function dotFast(
  plan: AccumulationPlan,
  x: Float64Array,
  xo: number,
  y: Float64Array,
  yo: number,
  n: number,
  rng: Rng,
): number {
  const A = plan.acc;
  const P = plan.products;
  let total: number;
  if (plan.blockSize > 0) {
    const O = plan.outer;
    total = 0;
    for (let b = 0; b < n; b += plan.blockSize) {
      const hi = Math.min(n, b + plan.blockSize);
      const part =
        A instanceof IntAccumulator ? runInt(A, x, xo, y, yo, b, hi) : runFloat(A, P, x, xo, y, yo, b, hi);
      total = O instanceof IntAccumulator ? O.add(total, part) : addT(O, total, part, O.draw(rng));
    }
  } else {
    total = A instanceof IntAccumulator ? runInt(A, x, xo, y, yo, 0, n) : runFloat(A, P, x, xo, y, yo, 0, n);
  }
  const Out = plan.output;
  return Out ? Out.value(total, Out.draw(rng)) : total;
}

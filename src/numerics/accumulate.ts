/**
 * How dot products (and so matvec, matmul, norm) accumulate: the hardware forms as data.
 *
 * A dot product of n pairs is, with p_i = x_i * y_i:
 *   products  'exact': p_i enters the accumulator unrounded, so each step is one fused rounding
 *             acc = round_A(acc + x_i * y_i) (tensor cores, FMA units); 'rounded': p_i = round_F(x_i * y_i)
 *             first (separate multiply and add, as scalar low-precision code does).
 *   order     'sequential': acc_0 = 0, acc_{i+1} = round_A(acc_i + p_i), i = 0..n-1.
 *             'pairwise': a balanced tree, each node round_A(left + right), leaves round_A(p_i).
 *   blockSize b > 0: the n products are cut into blocks of b consecutive ones (the last may be shorter);
 *             each block is summed as above in A, and the block sums are added in order into an outer
 *             sum in `outer` (default A): total_0 = 0, total = round_O(total + block). This is chunked accumulation:
 *             e.g. FP8 GEMM partial sums of 128 products in a ~14-bit accumulator promoted to FP32
 *             (DeepSeek-V3 report, section 3.3.2), or an int32 accumulator flushed to fp32.
 *   output    the result rounded once more to `output` (default: the accumulator's format).
 * Integer accumulators (`int32`, any intN up to 53 bits) add exactly and then saturate (default) or wrap
 * modulo 2^N, as int8 x int8 -> int32 instructions do.
 *
 * Random draws (stochastic modes) are taken in evaluation order from the context's one generator: per
 * step the product's draw (if rounded) before the accumulation's.
 */
import type { Rng } from '../core/rng.ts';
import { addT, fmaT, mulT } from './target-ops.ts';
import type { Target } from './target.ts';

/** An integer accumulator of `bits` bits (two's complement), saturating or wrapping. */
export class IntAccumulator {
  readonly bits: number;
  readonly wrap: boolean;
  readonly min: number;
  readonly max: number;
  constructor(bits: number, wrap: boolean) {
    this.bits = bits;
    this.wrap = wrap;
    this.min = -(2 ** (bits - 1));
    this.max = 2 ** (bits - 1) - 1;
  }

  /** The integer a + b kept in range (a, b integers, |a + b| < 2^53). */
  add(a: number, b: number): number {
    const s = a + b;
    if (s >= this.min && s <= this.max) return s;
    if (!this.wrap) return s < this.min ? this.min : this.max;
    const m = 2 ** this.bits;
    const r = s - Math.floor((s - this.min) / m) * m;
    return r;
  }
}

export type Accumulator = Target | IntAccumulator;

/** The resolved accumulation plan of a context (see the header). */
export interface AccumulationPlan {
  /** Rounds products to the context format ('rounded' products); undefined: exact products. */
  readonly products: Target | undefined;
  readonly acc: Accumulator;
  readonly order: 'sequential' | 'pairwise';
  readonly blockSize: number;
  readonly outer: Accumulator;
  /** undefined: the accumulator's value is the result. */
  readonly output: Target | undefined;
}

/** One accumulation step acc + x*y in the plan's accumulator. */
function step(plan: AccumulationPlan, acc: number, x: number, y: number, rng: Rng): number {
  const A = plan.acc;
  if (A instanceof IntAccumulator) return A.add(acc, x * y); // integer products are exact
  const P = plan.products;
  if (P) {
    const p = mulT(P, x, y, P.draw(rng));
    return addT(A, acc, p, A.draw(rng));
  }
  return fmaT(A, x, y, acc, A.draw(rng));
}

function leaf(plan: AccumulationPlan, x: number, y: number, rng: Rng): number {
  const A = plan.acc;
  if (A instanceof IntAccumulator) return A.add(0, x * y);
  const P = plan.products;
  const p = P ? mulT(P, x, y, P.draw(rng)) : x * y;
  return P ? A.value(p, A.draw(rng)) : mulT(A, x, y, A.draw(rng));
}

function addIn(A: Accumulator, a: number, b: number, rng: Rng): number {
  return A instanceof IntAccumulator ? A.add(a, b) : addT(A, a, b, A.draw(rng));
}

/** Sum of products i in [lo, hi) of the strided vectors, in the plan's order. */
function partial(
  plan: AccumulationPlan,
  x: ArrayLike<number>,
  xo: number,
  xs: number,
  y: ArrayLike<number>,
  yo: number,
  ys: number,
  lo: number,
  hi: number,
  rng: Rng,
): number {
  if (plan.order === 'sequential') {
    let acc = 0;
    for (let i = lo; i < hi; i++) acc = step(plan, acc, x[xo + i * xs]!, y[yo + i * ys]!, rng);
    return acc;
  }
  if (hi - lo === 1) return leaf(plan, x[xo + lo * xs]!, y[yo + lo * ys]!, rng);
  if (hi === lo) return 0;
  const mid = lo + ((hi - lo) >> 1);
  const l = partial(plan, x, xo, xs, y, yo, ys, lo, mid, rng);
  const r = partial(plan, x, xo, xs, y, yo, ys, mid, hi, rng);
  return addIn(plan.acc, l, r, rng);
}

/**
 * Reference dot product of n elements of strided vectors under a plan (plain, per-step code; the fast
 * kernels of kernels.ts are tested against it).
 */
export function dotReference(
  plan: AccumulationPlan,
  x: ArrayLike<number>,
  xo: number,
  xs: number,
  y: ArrayLike<number>,
  yo: number,
  ys: number,
  n: number,
  rng: Rng,
): number {
  let total: number;
  if (plan.blockSize > 0) {
    total = 0;
    for (let b = 0; b < n; b += plan.blockSize) {
      const part = partial(plan, x, xo, xs, y, yo, ys, b, Math.min(n, b + plan.blockSize), rng);
      total = addIn(plan.outer, total, part, rng);
    }
  } else {
    total = partial(plan, x, xo, xs, y, yo, ys, 0, n, rng);
  }
  const O = plan.output;
  return O ? O.value(total, O.draw(rng)) : total;
}

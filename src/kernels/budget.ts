/**
 * Error budgets of the kernels against their references (reference.ts: float64 sums of exactly decoded
 * weights). A kernel rounds each product and each partial sum to float32 in its own order (lanes, tiles,
 * blocks), so it cannot match a sequential sum bit for bit; these bounds are what the differential tests
 * hold every kernel to. u = 2^-24 (float32 unit roundoff), mag = sum_k |w_k x_k| of the row.
 *
 *   'f32'   |y - ref| <= (kp / 4 + 16) u mag     products rounded once; four lanes of kp / 4 additions
 *                                                each (a tile row's longest chain), then a 4-way tree.
 *   'q8'    |y - ref(x_q)| <= (kp / 16 + 16) u mag    exact integer sums per 16 / 32 weights; each block
 *                                                term takes <= 4 roundings (scale products, the
 *                                                conversion of sums past 2^24) and one addition per block.
 *   'q8k'   the 'q8' bound (exact integer sums per super-block of 256, <= 4 roundings per super-block).
 *   'lut8'  against lutRowReference (the same int8 tables): the 'q8' bound.
 *
 * Against the exact product of the float32 activations, the int8 paths add their activation error:
 *   'q8'    sum over blocks of 32 of 0.5001 d_b sum_{k in b} |w_k|     (|x - d q| <= 0.5001 d, activations.ts)
 *           ggml weights (scale stored in fp16, as llama.cpp): 0.5625 d_b + 127 * 2^-25 (the fp16 rounding of
 *           d moves every d q by at most 127 |d - fp16(d)| <= 127 * 2^-11 d, or 127 * 2^-25 for subnormal d)
 *   'q8k'   the same with d_b the Q8_K scale of the 256-block holding b (|d|: ggml's d may be negative)
 *   'lut8'  lutRowReference's tableError: every table entry is off by at most dt / 2.
 * The factors are worst cases (first order in u, which is 2^-24: second-order terms are below 1e-6 of them);
 * typical errors are far smaller.
 */
import type { ActivationMode } from './registry.ts';

export const UNIT_ROUNDOFF = 2 ** -24;

/** Relative bound (times mag) of a product against its reference, for a mode and padded length kp. */
export function roundingBudget(mode: ActivationMode, kp: number): number {
  return (mode === 'f32' ? kp / 4 + 16 : kp / 16 + 16) * UNIT_ROUNDOFF;
}

/**
 * The int8 activations' error bound for one row: sum over blocks of 32 of 0.5001 * d_b * sum |w| in the
 * block (blockAbs from reference.ts rowBlockAbs, d the activation block scales); scale 'f16': the scales
 * stored in fp16 (ggml weights' 'q8' activations, see the header).
 */
export function q8ActivationBudget(
  blockAbs: ArrayLike<number>,
  d: ArrayLike<number>,
  scale: 'f32' | 'f16' = 'f32',
): number {
  const [f, abs] = scale === 'f16' ? [0.5625, 127 * 2 ** -25] : [0.5001, 0];
  let e = 0;
  for (let b = 0; b < d.length; b++) e += (f * Math.abs(d[b]!) + abs) * blockAbs[b]!;
  return e;
}

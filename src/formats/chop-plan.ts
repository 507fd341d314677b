/**
 * The constants of a fast float chop: everything the TypeScript fast path (chop-fast.ts) and the
 * WebAssembly kernel (native/formats/chop.c, struct ChopParams) need, derived once per call from the
 * format's layout and the cast options. A plan describes the two-path algorithm both implement:
 *
 * - integer path, magnitudes in [lo, hi): the float32 bits with D = 23 - M dropped mantissa bits;
 *   truncation is `bits & keep`, rounding up adds `ulp`; a carry out of the mantissa bumps the exponent.
 *   When the target's emin is float32's (bf16, tf32) the same grid continues through float32's
 *   subnormals, so the integer path covers [0, hi) (`floatPath` false).
 * - float path, magnitudes below lo (target subnormals, or 0 / min normal without them): m = |x| / q
 *   exactly, k = trunc(m), and the shared decision of rounding.ts on (k, m - k).
 * - special lanes: results past max finite (per mode: modes toward smaller magnitude give max finite),
 *   inf and NaN inputs, negative inputs to unsigned formats, zeros of formats without -0.
 *
 * Formats without zero (e8m0fnu) take the plan when unsigned: results below min normal are min
 * normal (`floor`), zero inputs give `zeroOut` (NaN), and every group with a lane outside the integer
 * path's window takes the kernel's full path. e8m0fnu's min normal 2^-127 is a float32 subnormal: its
 * binade [2^-127, 2^-126) takes the float path (step q = 2^-127, as below it), the integer path starts
 * at float32's min normal. Formats outside the plan (signed without zero; normal binades further below
 * float32's min normal) and rounding modes without a kernel row get no plan: the caller runs the
 * reference. A new rounding mode therefore works at once, through the reference, until it gets a row in
 * KERNEL_MODES and a case in both implementations.
 */
import { f32ToBits } from '../core/bits.ts';
import { type FloatLayout, pow2 } from './minifloat.ts';
import type { OverflowPolicy, Rounding } from './spec.ts';

/** Modes with a fast path; the index is the kernel's mode number (enum in native/formats/chop.c). */
export const KERNEL_MODES: readonly Rounding[] = [
  'nearest-even',
  'nearest-away',
  'toward-zero',
  'up',
  'down',
  'stochastic',
  'stochastic-equal',
];

const F32_INF = 0x7f800000;
const F32_NAN = 0x7fc00000;

export interface ChopPlan {
  /** Row of KERNEL_MODES. */
  readonly mode: number;
  /**
   * The WebAssembly kernel is exact for this plan: its float path scales |x| by 1 / q in float32, exact
   * while q <= 1 (a larger q scales float32 subnormals down, where they underflow: a custom format whose
   * smallest step exceeds 1 then runs the TypeScript fast path, which scales in float64).
   */
  readonly kernel: boolean;
  readonly rounding: Rounding;
  /** r-bit stochastic rounding (0: a full 32-bit comparison). */
  readonly randomBits: number;
  readonly stochastic: boolean;
  /** Lanes below lo take the float path (false: the integer path covers [0, hi)). */
  readonly floatPath: boolean;
  /** 0x7fffffff, or -1 (all bits) for unsigned formats, whose negative inputs are then special lanes. */
  readonly absMask: number;
  /**
   * Lowest magnitude bits of the integer path (min normal's, at least float32's min normal; 0 without the
   * float path), and max finite's bits.
   */
  readonly lo: number;
  readonly hi: number;
  /**
   * The integer path alone is exact for magnitudes [lo, window): window is hi, or just past inf where
   * its carry into float32's exponent is exactly the format's overflow (float32's exponent range with
   * inf and the ieee policy: bf16, tf32), so data at their limits stays on the fast path.
   */
  readonly window: number;
  /** Kernel: groups whose magnitudes stay below it skip the full special-value path (0: never). */
  readonly finiteLimit: number;
  readonly keep: number;
  readonly drop: number;
  readonly half: number;
  /** The kept mantissa's lsb, or 0 where it is always odd (M = 0) or nothing is dropped (D = 0). */
  readonly lsb: number;
  /**
   * Stochastic rounding adds R = ((~u) >>> srShift) & srDrop to the residual and truncates: the
   * complement of the draw's top D bits (r-bit: its top r bits, the rest 0), so that it rounds up iff
   * (u >>> (32 - D)) < residual (r-bit: the top r bits of each), the rule of rounding.ts.
   */
  readonly srDrop: number;
  readonly srShift: number;
  /** Float path: the step q below lo and 1 / q = invQ1 * invQ2 (each factor a float32). */
  readonly q: number;
  readonly invQ1: number;
  readonly invQ2: number;
  /** Float path, kernel's stochastic threshold floor(frac * srScale) * srUnscale (see chop.c). */
  readonly srScale: number;
  readonly srUnscale: number;
  /** Result bits (magnitude) past max finite for a positive and a negative value, in this mode. */
  readonly ovfPos: number;
  readonly ovfNeg: number;
  /** Magnitude bits for an infinite input. */
  readonly infOut: number;
  /** Bits for a NaN input, and a negative non-zero input to an unsigned format: NaN, or +0 without NaN. */
  readonly nanOut: number;
  /** Sign bit kept on zero results: 0x80000000, or 0 for formats without -0. */
  readonly zeroSign: number;
  /** Smallest result magnitude (bits): 0, or min normal's for formats without zero. */
  readonly floor: number;
  /** Bits for a zero input (either sign for unsigned formats, +0 else): 0, or nanOut without zero. */
  readonly zeroOut: number;
}

const POLICIES: readonly OverflowPolicy[] = ['ieee', 'saturate', 'nan'];
// Plans by layout and options (deriving one costs far more than rounding a short array).
const plans = new WeakMap<FloatLayout, Map<number, ChopPlan | undefined>>();

/** The plan for a float format and options, or undefined where no fast path applies (cached). */
export function chopPlan(
  L: FloatLayout,
  rounding: Rounding,
  randomBits: number,
  policy: OverflowPolicy,
  flush: boolean,
): ChopPlan | undefined {
  // randomBits 0..32, 3 policies, flush: the key is exact for every valid combination of options
  const key =
    (((KERNEL_MODES.indexOf(rounding) + 1) * 33 + randomBits) * 3 + POLICIES.indexOf(policy)) * 2 + +flush;
  let byOptions = plans.get(L);
  if (!byOptions) plans.set(L, (byOptions = new Map()));
  if (byOptions.has(key)) return byOptions.get(key);
  const plan = derivePlan(L, rounding, randomBits, policy, flush);
  byOptions.set(key, plan);
  return plan;
}

function derivePlan(
  L: FloatLayout,
  rounding: Rounding,
  randomBits: number,
  policy: OverflowPolicy,
  flush: boolean,
): ChopPlan | undefined {
  const mode = KERNEL_MODES.indexOf(rounding);
  if (mode < 0 || (!L.hasZero && L.signed)) return undefined;
  // below float32's min normal the plan knows one step: a format's normal binade there only when it is
  // [2^-127, 2^-126) with M = 0, where the step 2^-127 is the one below it too (e8m0fnu, no zero)
  if (L.emin < -126 && !(L.emin === -127 && L.M === 0 && !L.hasZero)) return undefined;
  const D = 23 - L.M;
  const drop = D > 0 ? (1 << D) - 1 : 0;
  const subnormals = L.subnormals && !flush;
  const negZeroNan = L.spec.nan === 'neg-zero';
  // formats without -0 keep the float path: its lanes and the full path give their zeros no sign
  const floatPath = !(subnormals && L.emin === -126) || negZeroNan;
  // r-bit stochastic compares the top r residual bits (all D when r >= D or r is 0 / 32).
  const rb = randomBits > 0 && randomBits < 32 ? Math.min(randomBits, D) : D;
  const q = subnormals ? pow2(L.emin - L.M) : pow2(L.emin);
  const e = -Math.log2(q); // integer: q is a power of two
  const e1 = Math.floor(e / 2);
  const maxBits = f32ToBits(L.maxFinite);
  const nanOut = L.nanCode >= 0 ? F32_NAN : L.hasZero ? 0 : f32ToBits(L.minNormal);
  const over = (p: OverflowPolicy): number => {
    if (p === 'ieee' && L.infMag >= 0) return F32_INF;
    if (p !== 'saturate' && L.nanCode >= 0) return F32_NAN;
    return maxBits;
  };
  const ovf = over(policy);
  // IEEE 754 7.4: rounding toward smaller magnitude never overflows past max finite.
  const smallerPos = rounding === 'toward-zero' || rounding === 'down';
  const smallerNeg = rounding === 'toward-zero' || rounding === 'up';
  const fullDraw = !(randomBits > 0 && randomBits < 32);
  // past max finite the integer path carries into 0x7f800000 (inf) or truncates to 0x7f7fffff & keep
  const carriesToInf = L.spec.inf && policy === 'ieee' && (0x7f7fffff & ~drop) === maxBits;
  return {
    mode,
    kernel: !floatPath || q <= 1,
    rounding,
    randomBits,
    stochastic: rounding === 'stochastic' || rounding === 'stochastic-equal',
    floatPath,
    absMask: L.signed ? 0x7fffffff : -1,
    lo: floatPath ? Math.max(f32ToBits(L.minNormal), 0x00800000) | 0 : 0,
    hi: maxBits | 0,
    window: carriesToInf ? F32_INF + 1 : maxBits | 0,
    finiteLimit: negZeroNan || !L.hasZero ? 0 : F32_INF,
    keep: ~drop,
    drop,
    half: D > 0 ? 1 << (D - 1) : 0,
    lsb: L.M === 0 || D === 0 ? 0 : 1 << D,
    srDrop: drop & ~((1 << (D - rb)) - 1),
    srShift: 32 - D,
    q,
    invQ1: pow2(e1),
    invQ2: pow2(e - e1),
    srScale: fullDraw ? -(2 ** 32) : pow2(randomBits),
    srUnscale: fullDraw ? -1 : pow2(32 - randomBits),
    ovfPos: smallerPos ? maxBits : ovf,
    ovfNeg: smallerNeg ? maxBits : ovf,
    infOut: L.infMag >= 0 ? F32_INF : over(policy === 'saturate' ? 'saturate' : 'nan'),
    nanOut,
    zeroSign: negZeroNan ? 0 : 0x80000000 | 0,
    floor: L.hasZero ? 0 : f32ToBits(L.minNormal),
    zeroOut: L.hasZero ? 0 : nanOut,
  };
}

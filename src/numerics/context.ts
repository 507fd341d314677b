/**
 * `withPrecision`: an arithmetic context in which every result is rounded to a chosen format in a chosen
 * mode, exactly once (Pychop / CPFloat style, but correctly rounded also for formats close to binary64:
 * target.ts, target-ops.ts). Scalar operations take doubles and round the exact result; vector operations
 * first round their operands to the context format (as hardware loads them) and then accumulate as the
 * accumulator options say (accumulate.ts): in the context format by default, or in a wider / integer
 * accumulator with a stated order and block size, as tensor cores and int8 dot-product instructions do.
 *
 * Stochastic modes draw from one seeded generator per context, one 32-bit number per rounding, in
 * evaluation order, so a computation gives the same numbers on every run and platform.
 */
import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import {
  type FormatSpec,
  formatInfo,
  type OverflowPolicy,
  parseFormat,
  ROUNDINGS,
  type Rounding,
} from '../formats/index.ts';
import { type AccumulationPlan, type Accumulator, dotReference, IntAccumulator } from './accumulate.ts';
import { dotFast, fastPlan } from './kernels.ts';
import { addT, divT, fmaT, mulT, sqrtT } from './target-ops.ts';
import { Target } from './target.ts';

/** Where and how dot products (dot, matvec, matmul, norm) accumulate. See accumulate.ts. */
export interface AccumulatorOptions {
  /** Accumulator format: a float format (e.g. 'fp32', 'fp16', 'e8m13') or an integer 'intN' (N <= 53). */
  format: FormatSpec | string;
  /** Rounding of accumulation steps (default nearest-even, as hardware accumulators). */
  rounding?: Rounding;
  /** 'exact' (default): products enter unrounded (one rounding per step); 'rounded': products are first
   *  rounded to the context format. */
  products?: 'exact' | 'rounded';
  /** 'sequential' (default, i = 0..n-1) or 'pairwise' (balanced tree). */
  order?: 'sequential' | 'pairwise';
  /** Sum blocks of this many products, then add the block sums into `outer` (default 0: no blocks). */
  blockSize?: number;
  /** Format of the sum across blocks (default: the accumulator's). */
  outer?: FormatSpec | string;
  /** Format the result is rounded to (default: the accumulator's, i.e. no further rounding). */
  output?: FormatSpec | string;
  /** Integer accumulators: 'saturate' (default) or 'wrap' (two's complement). */
  overflow?: 'saturate' | 'wrap';
}

export interface PrecisionOptions {
  /** The context format: registered name, alias, custom eXmY (up to e11m52), or a spec. */
  format: FormatSpec | string;
  rounding?: Rounding;
  /** Seed of the stochastic modes (default 0). */
  seed?: number;
  /** r-bit stochastic rounding. */
  randomBits?: number;
  overflow?: OverflowPolicy;
  flushSubnormals?: boolean;
  /** Accumulation of dot products; default: in the context format with its rounding. */
  accumulator?: AccumulatorOptions;
  /** Without an accumulator: dot products use one fused rounding per step (fma) instead of mul + add. */
  fused?: boolean;
}

function specOf(f: FormatSpec | string, field: string): FormatSpec {
  if (typeof f !== 'string') return f;
  try {
    return parseFormat(f);
  } catch (e) {
    if (e instanceof MixqError)
      throw new MixqError(`unknown format '${f}'`, {
        source: 'withPrecision',
        field,
        expected: 'a format name, alias or custom eXmY',
      });
    throw e;
  }
}

function checkRounding(r: Rounding | undefined, field: string): void {
  if (r !== undefined && !ROUNDINGS.includes(r))
    throw new MixqError(`unknown rounding '${String(r)}'`, {
      source: 'withPrecision',
      field,
      expected: ROUNDINGS.join(', '),
    });
}

const INT_ACC = /^int(\d+)$/;

function accumulatorOf(
  f: FormatSpec | string,
  rounding: Rounding | undefined,
  o: AccumulatorOptions,
  field: string,
): Accumulator {
  const m = typeof f === 'string' ? INT_ACC.exec(f.trim().toLowerCase()) : null;
  const bits = m ? Number(m[1]) : typeof f !== 'string' && f.kind === 'int' && f.signed ? f.bits : 0;
  if (bits > 0) {
    if (bits < 2 || bits > 53)
      throw new MixqError(`integer accumulator of ${bits} bits`, {
        source: 'withPrecision',
        field,
        expected: 'int2 .. int53',
      });
    return new IntAccumulator(bits, o.overflow === 'wrap');
  }
  return new Target(specOf(f, field), { rounding: rounding ?? 'nearest-even' });
}

/** Operands of the format multiply to doubles exactly (so the fast kernels need no TwoProduct). */
function productsExact(spec: FormatSpec): boolean {
  if (spec.kind === 'int') return true;
  if (spec.kind !== 'float') return false;
  const i = formatInfo(spec);
  return spec.manBits <= 25 && i.minSubnormal >= 2 ** -537 && i.maxFinite < 2 ** 511;
}

/**
 * An arithmetic context. `withPrecision({ format: 'bf16', rounding: 'stochastic', seed: 1 }).add(1, 2 ** -9)`
 * rounds 1 + 2^-9 to bf16 once, stochastically.
 */
export class Precision {
  readonly format: FormatSpec;
  readonly rounding: Rounding;
  readonly target: Target;
  readonly plan: AccumulationPlan;
  private readonly rng: Rng;
  private readonly exactProducts: boolean;

  constructor(opts: PrecisionOptions) {
    checkRounding(opts.rounding, 'rounding');
    this.format = specOf(opts.format, 'format');
    this.target = new Target(this.format, {
      rounding: opts.rounding,
      randomBits: opts.randomBits,
      overflow: opts.overflow,
      flushSubnormals: opts.flushSubnormals,
    });
    this.rounding = this.target.rounding;
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)
      throw new MixqError(`seed ${seed}`, { source: 'withPrecision', field: 'seed', expected: '0..2^32-1' });
    this.rng = new Rng(seed);
    this.exactProducts = productsExact(this.format);
    const a = opts.accumulator;
    if (!a) {
      this.plan = {
        products: opts.fused ? undefined : this.target,
        acc: this.target,
        order: 'sequential',
        blockSize: 0,
        outer: this.target,
        output: undefined,
      };
      return;
    }
    checkRounding(a.rounding, 'accumulator.rounding');
    const blockSize = a.blockSize ?? 0;
    if (!Number.isInteger(blockSize) || blockSize < 0)
      throw new MixqError(`blockSize ${blockSize}`, {
        source: 'withPrecision',
        field: 'accumulator.blockSize',
        expected: 'an integer >= 0',
      });
    if (a.order !== undefined && a.order !== 'sequential' && a.order !== 'pairwise')
      throw new MixqError(`order '${String(a.order)}'`, {
        source: 'withPrecision',
        field: 'accumulator.order',
        expected: 'sequential or pairwise',
      });
    const acc = accumulatorOf(a.format, a.rounding, a, 'accumulator.format');
    if (acc instanceof IntAccumulator && this.format.kind !== 'int')
      throw new MixqError(`an integer accumulator needs an integer context format, got ${this.format.name}`, {
        source: 'withPrecision',
        field: 'accumulator.format',
      });
    this.plan = {
      products: a.products === 'rounded' ? this.target : undefined,
      acc,
      order: a.order ?? 'sequential',
      blockSize,
      outer: a.outer === undefined ? acc : accumulatorOf(a.outer, a.rounding, a, 'accumulator.outer'),
      output: a.output === undefined ? undefined : new Target(specOf(a.output, 'accumulator.output')),
    };
  }

  private u(t: Target = this.target): number {
    return t.draw(this.rng);
  }

  /** x rounded to the context format. */
  round(x: number): number {
    return this.target.value(x, this.u());
  }

  /** Every element rounded (one draw each in stochastic modes). `out` may be `x`. */
  roundArray(x: ArrayLike<number>, out?: Float64Array): Float64Array {
    const dst = out ?? new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) dst[i] = this.target.value(x[i]!, this.u());
    return dst;
  }

  add(a: number, b: number): number {
    return addT(this.target, a, b, this.u());
  }

  sub(a: number, b: number): number {
    return addT(this.target, a, -b, this.u());
  }

  mul(a: number, b: number): number {
    return mulT(this.target, a, b, this.u());
  }

  div(a: number, b: number): number {
    return divT(this.target, a, b, this.u());
  }

  /** a * b + c with one rounding. */
  fma(a: number, b: number, c: number): number {
    return fmaT(this.target, a, b, c, this.u());
  }

  sqrt(a: number): number {
    return sqrtT(this.target, a, this.u());
  }

  /** Dot product of operands rounded to the context format, accumulated as the context says. */
  dot(x: ArrayLike<number>, y: ArrayLike<number>): number {
    const n = sameLength(x.length, y.length, 'dot');
    const xr = this.roundArray(x);
    const yr = this.roundArray(y);
    return this.dotRounded(xr, 0, yr, 0, n);
  }

  private dotRounded(x: Float64Array, xo: number, y: Float64Array, yo: number, n: number): number {
    if (this.exactProducts && fastPlan(this.plan)) return dotFast(this.plan, x, xo, y, yo, n, this.rng);
    return dotReference(this.plan, x, xo, 1, y, yo, 1, n, this.rng);
  }

  /** y <- alpha * x + y elementwise, each element mul then add (fma when the context is `fused`). */
  axpy(alpha: number, x: ArrayLike<number>, y: ArrayLike<number>, out?: Float64Array): Float64Array {
    const n = sameLength(x.length, y.length, 'axpy');
    const dst = out ?? new Float64Array(n);
    const fused = this.plan.products === undefined && this.plan.acc === this.target;
    for (let i = 0; i < n; i++) {
      dst[i] = fused ? this.fma(alpha, x[i]!, y[i]!) : this.add(this.mul(alpha, x[i]!), y[i]!);
    }
    return dst;
  }

  /** Euclidean norm: sqrt of dot(x, x), the square root rounded in the context format. */
  norm(x: ArrayLike<number>): number {
    return this.sqrt(this.dot(x, x));
  }

  /** y = A x for a row-major m x n matrix A. */
  matvec(A: ArrayLike<number>, x: ArrayLike<number>, m: number, n: number, out?: Float64Array): Float64Array {
    checkShape(A.length, m * n, 'matvec', 'A');
    sameLength(x.length, n, 'matvec');
    const Ar = this.roundArray(A);
    const xr = this.roundArray(x);
    const y = out ?? new Float64Array(m);
    for (let i = 0; i < m; i++) y[i] = this.dotRounded(Ar, i * n, xr, 0, n);
    return y;
  }

  /**
   * C = A B for row-major A (m x k) and B (k x n): C[i][j] is the dot product of row i of A and column j of
   * B, accumulated over k = 0..k-1 in the context's order. Operands are rounded to the context format first.
   */
  matmul(
    A: ArrayLike<number>,
    B: ArrayLike<number>,
    m: number,
    k: number,
    n: number,
    out?: Float64Array,
  ): Float64Array {
    checkShape(A.length, m * k, 'matmul', 'A');
    checkShape(B.length, k * n, 'matmul', 'B');
    const Ar = this.roundArray(A);
    const Br = this.roundArray(B);
    const Bt = new Float64Array(k * n);
    for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) Bt[j * k + t] = Br[t * n + j]!;
    const C = out ?? new Float64Array(m * n);
    checkShape(C.length, m * n, 'matmul', 'out');
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) C[i * n + j] = this.dotRounded(Ar, i * k, Bt, j * k, k);
    return C;
  }
}

function sameLength(a: number, b: number, op: string): number {
  if (a !== b)
    throw new MixqError(`operand lengths ${a} and ${b} differ`, { source: op, expected: 'equal lengths' });
  return a;
}

function checkShape(got: number, want: number, op: string, field: string): void {
  if (got !== want) throw new MixqError(`${got} elements`, { source: op, field, expected: String(want) });
}

/**
 * An arithmetic context: every result rounded to `format` in `rounding` (once), dot products accumulated
 * as `accumulator` says. `withPrecision({ format: 'fp8_e4m3fn', accumulator: { format: 'fp32' } }).matmul(...)`
 * is an FP8 GEMM with exact products and FP32 accumulation.
 */
export function withPrecision(opts: PrecisionOptions): Precision {
  return new Precision(opts);
}

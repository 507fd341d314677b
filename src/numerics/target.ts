/**
 * A rounding target: a format plus rounding options, able to round an exact result ONCE from whatever an
 * operation could compute about it:
 * - a double (the exact result was a double): round64Value, or a fast inline path for nearest-even;
 * - an exact pair hi + lo (TwoSum / TwoProduct), or hi = fl(v) with the side `dir` of the exact v (quotient,
 *   square root): compressed into one double by rounding to odd in 53 bits, RO(v) (hi if its last bit is odd,
 *   else its neighbour toward v). Boldo & Melquiond (2008): no decision boundary of a format with p
 *   significant bits lies strictly between v and RO_53(v) when 53 >= p + 2, so rounding RO_53(v) decides
 *   exactly like rounding v. Stochastic rounding compares the residual with 2^-32 steps, so it needs
 *   53 >= p + 34 (p <= 19: fp16, bf16, fp8, ...), r-bit stochastic 53 >= p + r + 2. Near the double
 *   underflow threshold the same holds when the format's smallest step is >= 4 (or 2^34) double ulps.
 * - otherwise the exact BigInt fraction (exact.ts), built only when needed.
 */
import { MixqError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import type { FloatSpec, FormatSpec, OverflowPolicy, Rounding } from '../formats/index.ts';
import { decodeInt, encodeIntWith, type IntLayout, intLayout } from '../formats/int.ts';
import { type FloatLayout, floatLayout64 } from '../formats/minifloat.ts';
import { round64Value, roundInTable, type StepTable, stepTable } from '../formats/round64.ts';
import { isStochastic, resolveRounding } from '../formats/rounding.ts';
import {
  addF,
  divF,
  type Fraction,
  fractionOf,
  mulF,
  roundFractionFloat,
  roundFractionInt,
  sqrtF,
} from './exact.ts';

/** Which exact result `near` must build when it cannot compress (no closures in the hot path). */
export type Exact = 'sum' | 'product' | 'fma' | 'quotient' | 'root';

/** The exact result of an operation on doubles as a fraction. */
export function exactFraction(kind: Exact, a: number, b: number, c: number): Fraction {
  switch (kind) {
    case 'sum': // a + b
      return addF(fractionOf(a), fractionOf(b));
    case 'product':
      return mulF(fractionOf(a), fractionOf(b));
    case 'fma': // a * b + c
      return addF(mulF(fractionOf(a), fractionOf(b)), fractionOf(c));
    case 'quotient':
      return divF(fractionOf(a), fractionOf(b));
    case 'root':
      return sqrtF(fractionOf(a));
  }
}

/** Rounding options of a target. */
export interface TargetOptions {
  rounding?: Rounding;
  randomBits?: number;
  overflow?: OverflowPolicy;
  flushSubnormals?: boolean;
}

const f64 = new Float64Array(1);
const w32 = new Uint32Array(f64.buffer);
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

/** Round to odd in 53 bits of v = s + (something of sign dir, smaller than half an ulp of s). */
export function roundToOdd53(s: number, dir: number): number {
  if (dir === 0) return s;
  if (s === Infinity || s === -Infinity) return s > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE;
  f64[0] = s;
  if ((w32[LO]! & 1) === 1) return s;
  // even: step one ulp toward v (the bit pattern +-1; zero steps to the smallest subnormal)
  if (s === 0) return dir > 0 ? Number.MIN_VALUE : -Number.MIN_VALUE;
  const away = s > 0 === dir > 0;
  let lo = w32[LO]!;
  let hi = w32[HI]!;
  if (away) {
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi += 1;
  } else {
    if (lo === 0) hi -= 1;
    lo = (lo - 1) >>> 0;
  }
  w32[LO] = lo;
  w32[HI] = hi;
  return f64[0]!;
}

/** The nearest-even fast path of a target: its step table, and the zero a negative value rounds to. */
export interface FastWindow {
  readonly table: StepTable;
  readonly negZero: number;
}

/** A format and rounding options, ready to round exact results once. */
export class Target {
  readonly spec: FormatSpec;
  readonly rounding: Rounding;
  readonly randomBits: number;
  readonly stochastic: boolean;
  /** Float formats only. */
  readonly L: FloatLayout | undefined;
  readonly IL: IntLayout | undefined;
  readonly policy: OverflowPolicy;
  readonly flush: boolean;
  /** Whether rounding RO_53(v) decides like rounding v (see the header). */
  readonly oddCompressionExact: boolean;
  private readonly negZero: number;
  /** binary64 itself in nearest-even: JavaScript's own result is the answer. */
  private readonly binary64Rne: boolean;
  private readonly window: FastWindow | undefined;
  private readonly table: StepTable | undefined;

  constructor(spec: FormatSpec, opts: TargetOptions = {}) {
    if (spec.kind === 'lut')
      throw new MixqError(`codebook format ${spec.name} cannot be an arithmetic format`, {
        source: 'withPrecision',
        field: 'format',
        expected: 'a float or integer format',
      });
    const r = resolveRounding({ rounding: opts.rounding, randomBits: opts.randomBits });
    this.spec = spec;
    this.rounding = r.rounding;
    this.randomBits = r.randomBits;
    this.stochastic = isStochastic(r.rounding);
    this.flush = opts.flushSubnormals ?? false;
    this.policy = opts.overflow ?? (spec.kind === 'float' ? spec.overflow : 'saturate');
    const extra = this.rounding === 'stochastic' ? (this.randomBits > 0 ? this.randomBits + 2 : 34) : 2;
    if (spec.kind === 'float') {
      const L = floatLayout64(spec as FloatSpec);
      this.L = L;
      this.IL = undefined;
      const p = L.M + 1;
      this.oddCompressionExact = 53 >= p + extra && L.emin - L.M - extra >= -1074;
      this.negZero = L.spec.nan === 'neg-zero' || !L.signed ? 0 : -0;
    } else {
      this.L = undefined;
      this.IL = intLayout(spec);
      // steps of 1: for |v| < 2^(51 - extra) a double ulp is at most 2^-extra of a step; larger values
      // saturate whatever the residual (integer formats have at most 16 bits)
      this.oddCompressionExact = true;
      this.negZero = 0;
    }
    // nearest-even fast path for signed floats of <= 49 mantissa bits with zero (the 1.5 * 2^52 trick)
    const L = this.L;
    this.table =
      L && this.rounding === 'nearest-even' && L.M <= 49 && L.hasZero && L.signed
        ? stepTable(L, L.subnormals && !this.flush)
        : undefined;
    this.window = this.table ? { table: this.table, negZero: this.negZero } : undefined;
    this.binary64Rne =
      !!L &&
      this.rounding === 'nearest-even' &&
      L.E === 11 &&
      L.M === 52 &&
      L.bias === 1023 &&
      L.subnormals &&
      !this.flush &&
      L.spec.inf &&
      L.spec.nan === 'ieee' &&
      this.policy === 'ieee';
  }

  /** The nearest-even fast window (for kernels that inline it), if this target has one. */
  fastWindow(): FastWindow | undefined {
    return this.window;
  }

  /** One double rounded (u: this rounding's random draw, ignored by deterministic modes). */
  value(x: number, u: number): number {
    if (this.table) {
      const y = roundInTable(this.table, x, this.negZero);
      if (y === y) return y;
    }
    return this.slowValue(x, u);
  }

  private slowValue(x: number, u: number): number {
    if (this.L) return round64Value(this.L, x, this.rounding, u, this.randomBits, this.policy, this.flush);
    const IL = this.IL!;
    return decodeInt(IL, encodeIntWith(IL, x, this.rounding, u, this.randomBits));
  }

  /**
   * The exact result v of an operation (`kind` on a, b, c) rounded once, given s = fl(v) and e, which is
   * v - s exactly or only has its sign (e = 0: v = s; NaN: s overflowed). The exact fraction is built only
   * when the round-to-odd compression does not apply.
   */
  near(s: number, e: number, u: number, kind: Exact, a: number, b: number, c: number): number {
    if (this.binary64Rne) return s; // s = fl(v) is the nearest-even rounding of v in binary64
    if (e === 0 && Number.isFinite(s)) return this.value(s, u);
    if (this.oddCompressionExact && (e === e || !Number.isFinite(s))) {
      const ro = roundToOdd53(s, e === e ? Math.sign(e) : Math.sign(s));
      return this.slowValue(ro, u);
    }
    return this.fraction(exactFraction(kind, a, b, c), u);
  }

  /** An exact fraction rounded once. */
  fraction(v: Fraction, u: number): number {
    if (this.L)
      return roundFractionFloat(this.L, v, this.rounding, u, this.randomBits, this.policy, this.flush);
    return roundFractionInt(this.IL!, v, this.rounding, u, this.randomBits);
  }

  /** The random draw for one rounding: a number from rng in stochastic modes, else 0 (no draw). */
  draw(rng: Rng): number {
    return this.stochastic ? rng.nextU32() : 0;
  }
}

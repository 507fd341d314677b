import type { Rng } from '../core/rng.ts';

/**
 * Element formats as data. One record per format; one generic codec (minifloat.ts, int.ts, lut.ts)
 * serves them all. Block formats (MX, NVFP4, ggml) live in src/blocks and are built from these.
 */

/**
 * Rounding modes. `stochastic`: P(up) = distance to the lower neighbour / gap. `stochastic-equal`: P = 1/2.
 * `nearest-odd` is round-to-odd (Pychop's `nearest_odd`, CPFloat's CPFLOAT_RND_OD): an exact value stays, any
 * other goes to the neighbour whose last significand bit is 1, and overflow stops at max finite. Rounding to
 * odd with 2 or more extra bits first and then to nearest gives the correctly rounded result (Boldo &
 * Melquiond 2008), which makes chained conversions exact.
 */
export type Rounding =
  | 'nearest-even'
  | 'nearest-away'
  | 'toward-zero'
  | 'up'
  | 'down'
  | 'stochastic'
  | 'stochastic-equal'
  | 'nearest-odd';

/** What happens to finite values beyond max finite. `ieee`: inf, or NaN where the format has no inf. */
export type OverflowPolicy = 'ieee' | 'saturate' | 'nan';

/**
 * How NaN is encoded. `ieee`: exponent all ones with a non-zero mantissa (and all-ones exponent with zero
 * mantissa is inf). `all-ones`: only S.1111.111 (OCP e4m3fn). `neg-zero`: the code of -0 is NaN
 * (the 'fnuz' formats: no negative zero). `none`: no NaN code.
 */
export type NanEncoding = 'ieee' | 'all-ones' | 'neg-zero' | 'none';

export interface FloatSpec {
  readonly kind: 'float';
  readonly name: string;
  /** Exponent field width. */
  readonly expBits: number;
  /** Stored mantissa (fraction) bits, excluding the hidden bit. */
  readonly manBits: number;
  readonly bias: number;
  readonly signed: boolean;
  readonly subnormals: boolean;
  readonly inf: boolean;
  readonly nan: NanEncoding;
  /**
   * Whether exponent field 0 encodes zero and subnormals (default true). `false`: exponent field 0 is an
   * ordinary binade 2^(0-bias) and the format has no zero at all (e8m0fnu).
   */
  readonly zero?: boolean;
  /** Default overflow behaviour for casts into this format. */
  readonly overflow: OverflowPolicy;
  readonly description?: string;
}

export interface IntSpec {
  readonly kind: 'int';
  readonly name: string;
  readonly bits: number;
  readonly signed: boolean;
  /** Symmetric range [-(2^(b-1)-1), 2^(b-1)-1] instead of two's complement's extra negative value. */
  readonly narrow: boolean;
  readonly description?: string;
}

/** Codebook format: code i means values[i]. Values sorted ascending (codes keep the published order). */
export interface LutSpec {
  readonly kind: 'lut';
  readonly name: string;
  readonly bits: number;
  readonly values: readonly number[];
  readonly description?: string;
}

export type FormatSpec = FloatSpec | IntSpec | LutSpec;

export interface CastOptions {
  rounding?: Rounding;
  /** Overrides the format's default overflow policy. */
  overflow?: OverflowPolicy;
  /**
   * Treat the format as having no subnormals: results round (in the chosen mode) to 0 or the min normal,
   * never to a subnormal, and subnormal codes decode as zero.
   */
  flushSubnormals?: boolean;
  /** Seed for the stochastic modes (default 0). A fresh generator is seeded per call. */
  seed?: number;
  /** Draw stochastic-rounding bits from this generator instead (it advances); overrides `seed`. */
  rng?: Rng;
  /** r-bit stochastic rounding: use r random bits per value (hardware style) instead of a full-precision draw. */
  randomBits?: number;
}

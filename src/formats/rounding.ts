/**
 * The one rounding decision every codec (minifloat, int, lut) and every fast path shares.
 *
 * Codecs reduce a cast to "magnitude = (n + frac) * quantum" with n an integer and frac in [0, 1), and ask
 * whether the magnitude goes up to n + 1. Working on magnitudes keeps signed zero and makes stochastic
 * rounding unbiased for both signs.
 *
 * Stochastic modes consume exactly one 32-bit draw per element (even for exact values), so a fast path and
 * the reference make identical decisions from the same generator state:
 * - `stochastic`: up iff u32 < frac * 2^32, i.e. P(up) = frac (to 2^-32).
 * - r-bit stochastic (`randomBits` r, hardware style): the residual is truncated to r bits first;
 *   up iff (u32 >>> (32 - r)) < floor(frac * 2^r), so P(up) = floor(frac * 2^r) / 2^r.
 * - `stochastic-equal`: up iff the top bit of u32 is set, P = 1/2 for any inexact value.
 * `nearest-odd` (round-to-odd) goes up iff the value is inexact and n is even.
 */
import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import type { CastOptions, Rounding } from './spec.ts';

export const ROUNDINGS: readonly Rounding[] = [
  'nearest-even',
  'nearest-away',
  'toward-zero',
  'up',
  'down',
  'stochastic',
  'stochastic-equal',
  'nearest-odd',
];

const TWO32 = 2 ** 32;
// 2^r for r = 0..32 (a variable `2 ** r` is a slow Math.pow call in V8).
const POW2_R = Float64Array.from({ length: 33 }, (_, r) => 2 ** r);

/**
 * Does a magnitude n + frac (n integer >= 0, 0 <= frac < 1) round up to n + 1?
 * `negative` is the sign of the value (directed modes `up`/`down` are about values, not magnitudes).
 */
export function roundsUp(
  mode: Rounding,
  n: number,
  frac: number,
  negative: boolean,
  u32: number,
  randomBits: number,
): boolean {
  if (frac === 0) return false;
  switch (mode) {
    case 'nearest-even':
      return frac > 0.5 || (frac === 0.5 && n % 2 === 1);
    case 'nearest-away':
      return frac >= 0.5;
    case 'toward-zero':
      return false;
    case 'up':
      return !negative;
    case 'down':
      return negative;
    case 'stochastic':
      if (randomBits > 0 && randomBits < 32)
        return u32 >>> (32 - randomBits) < Math.floor(frac * POW2_R[randomBits]!);
      return u32 < frac * TWO32;
    case 'stochastic-equal':
      return u32 >>> 31 === 1;
    case 'nearest-odd':
      return n % 2 === 0; // inexact: to the odd neighbour
  }
}

/** True for the modes that draw random numbers. */
export function isStochastic(mode: Rounding): boolean {
  return mode === 'stochastic' || mode === 'stochastic-equal';
}

/** Options after validation, with defaults filled in. */
export interface ResolvedCast {
  readonly rounding: Rounding;
  readonly randomBits: number;
  /** Present only for stochastic modes. */
  readonly rng: Rng | undefined;
}

/** Validates rounding options and creates the generator for stochastic modes (one per call). */
export function resolveRounding(opts: CastOptions | undefined): ResolvedCast {
  const rounding = opts?.rounding ?? 'nearest-even';
  if (!ROUNDINGS.includes(rounding)) {
    throw new MixqError(`unknown rounding '${String(rounding)}'`, {
      source: 'CastOptions',
      field: 'rounding',
      expected: ROUNDINGS.join(', '),
    });
  }
  const randomBits = opts?.randomBits ?? 0;
  if (!Number.isInteger(randomBits) || randomBits < 0 || randomBits > 32) {
    throw new MixqError(`randomBits ${randomBits} out of range`, {
      source: 'CastOptions',
      field: 'randomBits',
      expected: 'an integer 1..32',
    });
  }
  if (randomBits > 0 && rounding !== 'stochastic') {
    throw new MixqError(`randomBits needs rounding 'stochastic', got '${rounding}'`, {
      source: 'CastOptions',
      field: 'randomBits',
    });
  }
  const rng = isStochastic(rounding) ? (opts?.rng ?? new Rng(opts?.seed ?? 0)) : undefined;
  return { rounding, randomBits, rng };
}

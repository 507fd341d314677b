/**
 * FP6 and FP4 element formats of the OCP Microscaling Formats (MX) Specification v1.0 (2023), section 5.3.
 * No inf, no NaN; every code is a finite number, so casts always saturate to max finite.
 *
 * fp6_e3m2fn  S EEE MM   bias 3  max 1.75 * 2^(7-3) = 28      min subnormal 0.25 * 2^(1-3) = 0.0625
 * fp6_e2m3fn  S EE MMM   bias 1  max 1.875 * 2^(3-1) = 7.5    min subnormal 0.125 * 2^0 = 0.125
 * fp4_e2m1fn  S EE M     bias 1  max 1.5 * 2^(3-1) = 6        values 0, 0.5, 1, 1.5, 2, 3, 4, 6
 */
import type { FloatSpec } from '../spec.ts';

const base = {
  kind: 'float',
  signed: true,
  subnormals: true,
  inf: false,
  nan: 'none',
  overflow: 'saturate',
} as const;

export const fp6_e3m2fn: FloatSpec = {
  ...base,
  name: 'fp6_e3m2fn',
  expBits: 3,
  manBits: 2,
  bias: 3,
  description: 'OCP MX FP6 E3M2',
};

export const fp6_e2m3fn: FloatSpec = {
  ...base,
  name: 'fp6_e2m3fn',
  expBits: 2,
  manBits: 3,
  bias: 1,
  description: 'OCP MX FP6 E2M3',
};

export const fp4_e2m1fn: FloatSpec = {
  ...base,
  name: 'fp4_e2m1fn',
  expBits: 2,
  manBits: 1,
  bias: 1,
  description: 'OCP MX FP4 E2M1',
};

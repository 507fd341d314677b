/**
 * 8-bit floats. Sources: OCP 8-bit Floating Point Specification (OFP8) rev 1.0 (2023) for e4m3fn/e5m2;
 * Graphcore/AMD "fnuz" variants as named by ml_dtypes / LLVM APFloat (Float8E4M3FNUZ, Float8E5M2FNUZ);
 * IEEE-like e4m3 as ml_dtypes float8_e4m3 (IEEE P3109-style, with inf).
 *
 * fp8_e4m3fn    S EEEE MMM  bias 7   no inf, NaN = S.1111.111        max 1.75 * 2^(15-7) = 448
 * fp8_e4m3      S EEEE MMM  bias 7   inf = S.1111.000, NaN = S.1111.xxx max 1.875 * 2^(14-7) = 240
 * fp8_e5m2      S EEEEE MM  bias 15  IEEE: inf, NaN                  max 1.75 * 2^(30-15) = 57344
 * fp8_e4m3fnuz  S EEEE MMM  bias 8   no inf, no -0, NaN = 1.0000.000 max 1.875 * 2^(15-8) = 240
 * fp8_e5m2fnuz  S EEEEE MM  bias 16  no inf, no -0, NaN = 1.00000.00 max 1.75 * 2^(31-16) = 57344
 *
 * Casts default to non-saturating (overflow -> inf, or NaN where there is no inf), like ml_dtypes and
 * ONNX Cast with saturate=0. Pass `overflow: 'saturate'` for the OCP/ONNX saturating conversion.
 */
import type { FloatSpec } from '../spec.ts';

const base = { kind: 'float', signed: true, subnormals: true, overflow: 'ieee' } as const;

export const fp8_e4m3fn: FloatSpec = {
  ...base,
  name: 'fp8_e4m3fn',
  expBits: 4,
  manBits: 3,
  bias: 7,
  inf: false,
  nan: 'all-ones',
  description: 'OCP FP8 E4M3: no inf, NaN = S.1111.111',
};

export const fp8_e4m3: FloatSpec = {
  ...base,
  name: 'fp8_e4m3',
  expBits: 4,
  manBits: 3,
  bias: 7,
  inf: true,
  nan: 'ieee',
  description: 'IEEE-like E4M3 with inf and NaN',
};

export const fp8_e5m2: FloatSpec = {
  ...base,
  name: 'fp8_e5m2',
  expBits: 5,
  manBits: 2,
  bias: 15,
  inf: true,
  nan: 'ieee',
  description: 'OCP FP8 E5M2 (IEEE-like)',
};

export const fp8_e4m3fnuz: FloatSpec = {
  ...base,
  name: 'fp8_e4m3fnuz',
  expBits: 4,
  manBits: 3,
  bias: 8,
  inf: false,
  nan: 'neg-zero',
  description: 'E4M3 bias 8, no inf, no -0 (its code is NaN)',
};

export const fp8_e5m2fnuz: FloatSpec = {
  ...base,
  name: 'fp8_e5m2fnuz',
  expBits: 5,
  manBits: 2,
  bias: 16,
  inf: false,
  nan: 'neg-zero',
  description: 'E5M2 bias 16, no inf, no -0 (its code is NaN)',
};

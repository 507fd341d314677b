/**
 * Scale formats. e8m0fnu: the shared block scale of OCP MX v1.0 (section 5.4), ml_dtypes float8_e8m0fnu.
 *
 * e8m0fnu  EEEEEEEE (unsigned, 8 bits)  value 2^(code - 127), code 0xFF = NaN; no zero, no sign, no inf.
 *          range 2^-127 .. 2^127; casts of 0, negatives and overflow give NaN (as ml_dtypes);
 *          positive values below 2^-127 round up to 2^-127 (there is no zero to round to).
 */
import type { FloatSpec } from '../spec.ts';

export const e8m0fnu: FloatSpec = {
  kind: 'float',
  name: 'e8m0fnu',
  expBits: 8,
  manBits: 0,
  bias: 127,
  signed: false,
  subnormals: false,
  zero: false,
  inf: false,
  nan: 'all-ones',
  overflow: 'ieee',
  description: 'OCP MX E8M0 scale: 2^(c-127), 0xFF = NaN',
};

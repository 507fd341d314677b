/**
 * IEEE 754 binary formats and their truncated relatives used for training and inference.
 *
 * fp32  IEEE 754-2008 binary32   S EEEEEEEE MMMMMMMMMMMMMMMMMMMMMMM   max (2 - 2^-23) * 2^127
 * tf32  NVIDIA TensorFloat-32    S EEEEEEEE MMMMMMMMMM (19 bits)      max (2 - 2^-10) * 2^127
 *       (A100 whitepaper: fp32 range, fp16 precision; stored in a 32-bit container in hardware)
 * fp16  IEEE 754-2008 binary16   S EEEEE MMMMMMMMMM                   max (2 - 2^-10) * 2^15 = 65504
 * bf16  Google brain float       S EEEEEEEE MMMMMMM                   max (2 - 2^-7) * 2^127
 * fp64  IEEE 754-2008 binary64   S E(11) M(52)                        max (2 - 2^-52) * 2^1023
 *       (a target for float64 data only: its values are not float32; see round64.ts)
 *
 * All have inf, IEEE NaN (exponent all ones, mantissa != 0), subnormals; casts overflow to inf.
 */
import type { FloatSpec } from '../spec.ts';

const ieeeLike = {
  kind: 'float',
  signed: true,
  subnormals: true,
  inf: true,
  nan: 'ieee',
  overflow: 'ieee',
} as const;

export const fp32: FloatSpec = {
  ...ieeeLike,
  name: 'fp32',
  expBits: 8,
  manBits: 23,
  bias: 127,
  description: 'IEEE 754 binary32',
};

export const tf32: FloatSpec = {
  ...ieeeLike,
  name: 'tf32',
  expBits: 8,
  manBits: 10,
  bias: 127,
  description: 'NVIDIA TensorFloat-32: fp32 range, 10-bit mantissa',
};

export const fp16: FloatSpec = {
  ...ieeeLike,
  name: 'fp16',
  expBits: 5,
  manBits: 10,
  bias: 15,
  description: 'IEEE 754 binary16 (half)',
};

export const bf16: FloatSpec = {
  ...ieeeLike,
  name: 'bf16',
  expBits: 8,
  manBits: 7,
  bias: 127,
  description: 'bfloat16: fp32 range, 7-bit mantissa',
};

export const fp64: FloatSpec = {
  ...ieeeLike,
  name: 'fp64',
  expBits: 11,
  manBits: 52,
  bias: 1023,
  description: 'IEEE 754 binary64 (double; float64 data only)',
};

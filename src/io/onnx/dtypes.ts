/**
 * ONNX TensorProto data types: one static table row per code (onnx.proto `TensorProto.DataType`), with the
 * mixq dtype id, bits per element and the typed field that may hold the values instead of raw_data, plus
 * the little decoders that turn stored codes into float32.
 *
 * Storage rules (onnx.proto comments on `int32_data` and `raw_data`, IR version 11):
 * - raw_data is fixed-width little-endian; bool is one byte per element.
 * - int32_data holds one element per int32 for 8/16-bit types (fp16/bf16/fp8 as their unsigned bit
 *   pattern), one *byte* of two 4-bit elements per int32 for uint4/int4/float4e2m1, and one byte of four
 *   2-bit elements for uint2/int2. Sub-byte elements pack low bits first (first element in the LSBs).
 * - complex64 uses float_data pairs (real, imaginary); complex128 double_data pairs; uint32/uint64 use
 *   uint64_data.
 *
 * Minifloat decoding (the FNUZ variants: Graphcore/AMD, arXiv 2206.02915; the FN/E5M2 pair: OCP 8-bit FP,
 * arXiv 2209.05433; E2M1 and E8M0: OCP MX v1.0):
 *   e4m3fn    bias 7,  no inf, NaN = S.1111.111, max 1.75 * 2^(15-7) = 448
 *   e4m3fnuz  bias 8,  no inf, NaN = 0x80 (the would-be -0), max 1.75 * 2^(15-8) = 240
 *   e5m2      bias 15, IEEE inf/NaN, max 1.75 * 2^(30-15) = 57344
 *   e5m2fnuz  bias 16, no inf, NaN = 0x80, max 1.75 * 2^(31-16) = 57344
 *   e2m1      bias 1,  no inf/NaN, values 0 0.5 1 1.5 2 3 4 6
 *   e8m0      2^(e-127), 0xff = NaN, no sign, no zero
 */
import { bf16BitsToF32, f16BitsToF32 } from '../../core/bits.ts';
import { DATA_TYPE_CODES } from './schema.ts';

export type TypedField =
  'float_data' | 'int32_data' | 'int64_data' | 'double_data' | 'uint64_data' | 'string_data';

export interface OnnxDTypeInfo {
  /** TensorProto.DataType code. */
  readonly code: number;
  /** The onnx.proto enum name, e.g. 'FLOAT8E4M3FN'. */
  readonly onnxName: string;
  /** mixq dtype id (ml_dtypes-style names for the narrow floats), e.g. 'f32', 'fp8_e4m3fn'. */
  readonly dtype: string;
  /** Bits per element (0 for string: variable length). */
  readonly bits: number;
  /** The typed field that may hold the data instead of raw_data. */
  readonly typedField: TypedField;
  /** Elements stored in one entry of the typed field (2 for 4-bit in int32_data; 1/2 for complex pairs). */
  readonly perTypedEntry: number;
  /** Typed entries per element (2 for complex: real and imaginary). */
  readonly entriesPerElement: number;
  readonly isFloat: boolean;
}

const C = DATA_TYPE_CODES;
const row = (
  code: number,
  onnxName: string,
  dtype: string,
  bits: number,
  typedField: TypedField,
  isFloat: boolean,
  perTypedEntry = 1,
  entriesPerElement = 1,
): OnnxDTypeInfo => ({ code, onnxName, dtype, bits, typedField, perTypedEntry, entriesPerElement, isFloat });

/** Every data type ONNX defines, by code. */
export const ONNX_DTYPES: readonly OnnxDTypeInfo[] = [
  row(C.FLOAT, 'FLOAT', 'f32', 32, 'float_data', true),
  row(C.UINT8, 'UINT8', 'u8', 8, 'int32_data', false),
  row(C.INT8, 'INT8', 'i8', 8, 'int32_data', false),
  row(C.UINT16, 'UINT16', 'u16', 16, 'int32_data', false),
  row(C.INT16, 'INT16', 'i16', 16, 'int32_data', false),
  row(C.INT32, 'INT32', 'i32', 32, 'int32_data', false),
  row(C.INT64, 'INT64', 'i64', 64, 'int64_data', false),
  row(C.STRING, 'STRING', 'string', 0, 'string_data', false),
  row(C.BOOL, 'BOOL', 'bool', 8, 'int32_data', false),
  row(C.FLOAT16, 'FLOAT16', 'f16', 16, 'int32_data', true),
  row(C.DOUBLE, 'DOUBLE', 'f64', 64, 'double_data', true),
  row(C.UINT32, 'UINT32', 'u32', 32, 'uint64_data', false),
  row(C.UINT64, 'UINT64', 'u64', 64, 'uint64_data', false),
  row(C.COMPLEX64, 'COMPLEX64', 'c64', 64, 'float_data', false, 1, 2),
  row(C.COMPLEX128, 'COMPLEX128', 'c128', 128, 'double_data', false, 1, 2),
  row(C.BFLOAT16, 'BFLOAT16', 'bf16', 16, 'int32_data', true),
  row(C.FLOAT8E4M3FN, 'FLOAT8E4M3FN', 'fp8_e4m3fn', 8, 'int32_data', true),
  row(C.FLOAT8E4M3FNUZ, 'FLOAT8E4M3FNUZ', 'fp8_e4m3fnuz', 8, 'int32_data', true),
  row(C.FLOAT8E5M2, 'FLOAT8E5M2', 'fp8_e5m2', 8, 'int32_data', true),
  row(C.FLOAT8E5M2FNUZ, 'FLOAT8E5M2FNUZ', 'fp8_e5m2fnuz', 8, 'int32_data', true),
  row(C.UINT4, 'UINT4', 'u4', 4, 'int32_data', false, 2),
  row(C.INT4, 'INT4', 'i4', 4, 'int32_data', false, 2),
  row(C.FLOAT4E2M1, 'FLOAT4E2M1', 'fp4_e2m1fn', 4, 'int32_data', true, 2),
  row(C.FLOAT8E8M0, 'FLOAT8E8M0', 'e8m0fnu', 8, 'int32_data', true),
  row(C.UINT2, 'UINT2', 'u2', 2, 'int32_data', false, 4),
  row(C.INT2, 'INT2', 'i2', 2, 'int32_data', false, 4),
];

const BY_CODE = new Map(ONNX_DTYPES.map((d) => [d.code, d]));

/** The table row for a data type code, or undefined for UNDEFINED / codes from a newer ONNX. */
export function onnxDType(code: number): OnnxDTypeInfo | undefined {
  return BY_CODE.get(code);
}

/** mixq dtype id for a code; unknown codes give 'onnx_type_<code>' so a view can still list the tensor. */
export function onnxDTypeName(code: number): string {
  return BY_CODE.get(code)?.dtype ?? `onnx_type_${code}`;
}

/** Bytes of `count` elements in raw_data (sub-byte types round up to whole bytes). */
export function rawByteLength(info: OnnxDTypeInfo, count: number): number {
  return Math.ceil((count * info.bits) / 8);
}

/** Generic minifloat decode for the FP8 family (expBits + manBits = 7, one sign bit). */
function minifloat8(
  code: number,
  manBits: number,
  bias: number,
  nan: 'ieee' | 'all-ones' | 'neg-zero',
): number {
  const sign = code & 0x80 ? -1 : 1;
  const expBits = 7 - manBits;
  const expMax = (1 << expBits) - 1;
  const e = (code >> manBits) & expMax;
  const m = code & ((1 << manBits) - 1);
  if (nan === 'neg-zero' && code === 0x80) return Number.NaN;
  if (nan === 'all-ones' && (code & 0x7f) === 0x7f) return Number.NaN;
  if (nan === 'ieee' && e === expMax) return m === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  if (e === 0) return sign * m * 2 ** (1 - bias - manBits); // subnormal
  return sign * (1 + m / (1 << manBits)) * 2 ** (e - bias);
}

const E2M1_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** Decodes one stored element code (already extracted, unsigned) of a narrow float type to a number. */
export function decodeNarrowFloat(code: number, dataType: number): number {
  switch (dataType) {
    case C.FLOAT16:
      return f16BitsToF32(code);
    case C.BFLOAT16:
      return bf16BitsToF32(code);
    case C.FLOAT8E4M3FN:
      return minifloat8(code, 3, 7, 'all-ones');
    case C.FLOAT8E4M3FNUZ:
      return minifloat8(code, 3, 8, 'neg-zero');
    case C.FLOAT8E5M2:
      return minifloat8(code, 2, 15, 'ieee');
    case C.FLOAT8E5M2FNUZ:
      return minifloat8(code, 2, 16, 'neg-zero');
    case C.FLOAT4E2M1: {
      const v = E2M1_VALUES[code & 7] ?? 0;
      return code & 8 ? -v : v;
    }
    case C.FLOAT8E8M0:
      return code === 0xff ? Number.NaN : 2 ** (code - 127);
    default:
      throw new Error(`not a narrow float type: ${dataType}`);
  }
}

/**
 * safetensors element types (huggingface/safetensors, safetensors/src/tensor.rs `Dtype`) with their
 * sizes, and conversions to/from float32 used by `mixq convert`.
 *
 * F8_E4M3 is the OCP/NVIDIA 'e4m3fn' (bias 7, no infinities, NaN = S.1111.111, max 1.75*2^8 = 448);
 * F8_E5M2 is IEEE-like (bias 15, inf = S.11111.00, NaN = S.11111.xx). Sub-byte types (F4, F6_*) that newer
 * safetensors versions know are refused with a clear error.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../core/bits.ts';

export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I8'
  | 'U8'
  | 'I16'
  | 'U16'
  | 'I32'
  | 'U32'
  | 'I64'
  | 'U64'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

/** Bytes per element. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I8: 1,
  U8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function isSafetensorsDtype(s: string): s is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPE_BYTES, s);
}

/** Float dtypes whose values convert to float32 (exactly, except F64 which is rounded). */
export const SAFETENSORS_FLOAT_DTYPES: readonly SafetensorsDtype[] = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'F8_E4M3',
  'F8_E5M2',
];

function decodeE4m3fn(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 0xf;
  const m = c & 7;
  if (e === 15 && m === 7) return Number.NaN;
  return s * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7)); // subnormal step 2^(1-7-3)
}

function decodeE5m2(c: number): number {
  return f16BitsToF32(c << 8); // e5m2 is the top byte of an IEEE binary16
}

/** Decodes little-endian `bytes` of a float dtype to float32 values. */
export function floatBytesToF32(dtype: SafetensorsDtype, bytes: Uint8Array): Float32Array {
  const n = bytes.length / SAFETENSORS_DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(2 * i, true));
      return out;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(2 * i, true));
      return out;
    case 'F8_E4M3':
      for (let i = 0; i < n; i++) out[i] = decodeE4m3fn(bytes[i]!);
      return out;
    case 'F8_E5M2':
      for (let i = 0; i < n; i++) out[i] = decodeE5m2(bytes[i]!);
      return out;
    default:
      throw new Error(`floatBytesToF32: ${dtype} is not a float dtype`);
  }
}

/** Encodes float32 values as F32, F16 or BF16 little-endian bytes (round to nearest even). */
export function f32ToFloatBytes(dtype: 'F32' | 'F16' | 'BF16', x: Float32Array): Uint8Array {
  if (dtype === 'F32') {
    const out = new Uint8Array(x.length * 4);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i]!, true);
    return out;
  }
  const out = new Uint8Array(x.length * 2);
  const dv = new DataView(out.buffer);
  const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < x.length; i++) dv.setUint16(2 * i, conv(x[i]!), true);
  return out;
}

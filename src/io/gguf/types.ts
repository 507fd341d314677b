/**
 * GGUF value types and ggml tensor types as static tables.
 *
 * Sources: ggml/include/gguf.h (enum gguf_type), ggml/include/ggml.h (enum ggml_type) and the
 * type_traits table in ggml/src/ggml.c (block size, bytes per block) at ggml-org/ggml d99724f. Ids that
 * ggml has removed (4, 5: Q4_2/Q4_3; 31..33: Q4_0_4_4..; 36..38: IQ4_NL_4_4..) are absent on purpose:
 * a file using them is refused.
 */

import { BLOCK_TYPES } from '../../blocks/registry.ts';

/** GGUF metadata value types, named like ggml's short names (gguf_type_name). */
export type GgufScalarType =
  'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'str' | 'u64' | 'i64' | 'f64';
export type GgufValueType = GgufScalarType | 'arr';

/** enum gguf_type, index = id. */
export const GGUF_VALUE_TYPES: readonly GgufValueType[] = [
  'u8', // 0 GGUF_TYPE_UINT8
  'i8', // 1
  'u16', // 2
  'i16', // 3
  'u32', // 4
  'i32', // 5
  'f32', // 6
  'bool', // 7 (one byte, 0 or 1)
  'str', // 8 (u64 length + UTF-8)
  'arr', // 9 (u32 element type + u64 count + elements)
  'u64', // 10
  'i64', // 11
  'f64', // 12
];

export function ggufValueTypeId(t: GgufValueType): number {
  return GGUF_VALUE_TYPES.indexOf(t);
}

/** Bytes of a fixed-size value, or the minimum bytes of a variable one (str: 8, arr: 12). */
export const GGUF_VALUE_MIN_BYTES: Readonly<Record<GgufValueType, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  str: 8,
  arr: 12,
  u64: 8,
  i64: 8,
  f64: 8,
};

export interface GgmlTypeTraits {
  readonly id: number;
  /** ggml's name (ggml_type_name), e.g. 'q4_K'. */
  readonly name: string;
  /** Elements per block (1 for plain types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** True for plain element types (f32, f16, bf16, f64, i8..i64). */
  readonly plain: boolean;
}

function t(id: number, name: string, blockSize: number, typeSize: number): GgmlTypeTraits {
  return { id, name, blockSize, typeSize, plain: blockSize === 1 };
}

/**
 * Types mixq can read and copy but not encode/decode (no codec in src/blocks): sizes from ggml's
 * type_traits. QK_K = 256.
 */
const SIZE_ONLY_TYPES: readonly GgmlTypeTraits[] = [
  t(9, 'q8_1', 32, 36), // f16 d, s + 32 int8
  t(15, 'q8_K', 256, 292), // f32 d + 256 qs + 16 i16 bsums
  t(16, 'iq2_xxs', 256, 66),
  t(17, 'iq2_xs', 256, 74),
  t(18, 'iq3_xxs', 256, 98),
  t(19, 'iq1_s', 256, 50),
  t(21, 'iq3_s', 256, 110),
  t(22, 'iq2_s', 256, 82),
  t(23, 'iq4_xs', 256, 136),
  t(24, 'i8', 1, 1),
  t(25, 'i16', 1, 2),
  t(26, 'i32', 1, 4),
  t(27, 'i64', 1, 8),
  t(28, 'f64', 1, 8),
  t(29, 'iq1_m', 256, 56),
  t(34, 'tq1_0', 256, 54),
  t(35, 'tq2_0', 256, 66),
];

/** ggml's spelling of the registry's upper-case names ('Q4_K' -> 'q4_K', 'IQ4_NL' -> 'iq4_nl'). */
function ggmlName(registryName: string): string {
  return registryName.toLowerCase().replace(/_k$/, '_K');
}

/**
 * Every ggml tensor type mixq knows, by id: the encodable ones from the blocks registry
 * (src/blocks/registry.ts: F32, F16, BF16, Q4_0..Q6_K, IQ4_NL, MXFP4), the rest from SIZE_ONLY_TYPES.
 */
export const GGML_TYPES: readonly GgmlTypeTraits[] = [
  ...Object.values(BLOCK_TYPES).map((b) => t(b.ggmlTypeId, ggmlName(b.name), b.blockSize, b.bytesPerBlock)),
  ...SIZE_ONLY_TYPES,
].sort((a, b) => a.id - b.id);

const byId = new Map(GGML_TYPES.map((x) => [x.id, x]));
const byName = new Map(GGML_TYPES.map((x) => [x.name.toLowerCase(), x]));

/** Traits of a ggml type id, or undefined for an unknown/removed id. */
export function ggmlTypeById(id: number): GgmlTypeTraits | undefined {
  return byId.get(id);
}

/** Traits by name, case-insensitive ('Q4_K', 'q4_k', 'q4_K'). */
export function ggmlTypeByName(name: string): GgmlTypeTraits | undefined {
  return byName.get(name.toLowerCase());
}

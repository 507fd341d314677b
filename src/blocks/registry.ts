/**
 * The block-type traits table: every tensor type mixq can store in a GGUF file, keyed by ggml's name,
 * with its GGUF/ggml type id, geometry, bits per weight, and whole-row encoder/decoder. An explicit static
 * table (no registration by import side effects); GGUF I/O uses it for every tensor type it supports.
 *
 * Type ids and sizes are ggml's (ggml.h enum ggml_type, ggml.c type_traits; ggml-org/ggml d99724f).
 * `encode` follows ggml's `quantize_<t>` (what llama-quantize runs): with an imatrix, the row length is
 * imatrix.length; without one it is the ref quantizer, except IQ4_NL, which still runs its scale search.
 * F32/F16/BF16 are little-endian element arrays (block size 1); F16/BF16 round to nearest even as ggml.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import { GGML_CODECS, type GgmlCodec, type GgmlTypeName } from './ggml/index.ts';

/** Traits of one storable tensor type. */
export interface BlockTypeTraits {
  readonly name: BlockTypeName;
  /** enum ggml_type value = GGUF tensor type id. */
  readonly ggmlTypeId: number;
  /** Weights per block (1 for the plain float types). */
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  /** 8 * bytesPerBlock / blockSize, scales included (Q4_K: 4.5). */
  readonly bitsPerWeight: number;
  /**
   * Encodes whole rows; `x.length` a positive multiple of blockSize. With `imatrix`, rows are
   * imatrix.length long and x.length must be a multiple of it.
   * `BLOCK_TYPES.Q8_0.encode(new Float32Array(32)).length === 34`.
   */
  encode(x: Float32Array, imatrix?: Float32Array): Uint8Array;
  /** Decodes `n` values from exactly n / blockSize blocks; MixqError otherwise. */
  decode(bytes: Uint8Array, n: number): Float32Array;
}

export type BlockTypeName = 'F32' | 'F16' | 'BF16' | GgmlTypeName;

function checkPlain(name: string, bytesPer: number, bytes: Uint8Array, n: number): void {
  if (!Number.isInteger(n) || n <= 0) {
    throw new MixqError(`cannot decode ${n} values`, {
      source: name,
      field: 'n',
      expected: 'a positive integer',
    });
  }
  if (bytes.length !== n * bytesPer) {
    throw new MixqError(`got ${bytes.length} bytes for ${n} values`, {
      source: name,
      field: 'bytes.length',
      expected: String(n * bytesPer),
    });
  }
}

function checkPlainEncode(name: string, x: Float32Array): void {
  if (x.length === 0) {
    throw new MixqError('cannot encode 0 values', {
      source: name,
      field: 'x.length',
      expected: 'at least 1',
    });
  }
}

const F32: BlockTypeTraits = {
  name: 'F32',
  ggmlTypeId: 0,
  blockSize: 1,
  bytesPerBlock: 4,
  bitsPerWeight: 32,
  encode(x) {
    checkPlainEncode('F32', x);
    const out = new Uint8Array(x.length * 4);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i]!, true);
    return out;
  },
  decode(bytes, n) {
    checkPlain('F32', 4, bytes, n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) y[i] = dv.getFloat32(4 * i, true);
    return y;
  },
};

/** A 16-bit float type stored little-endian, from its bit conversions. */
function half(
  name: 'F16' | 'BF16',
  ggmlTypeId: number,
  toBits: (x: number) => number,
  fromBits: (h: number) => number,
): BlockTypeTraits {
  return {
    name,
    ggmlTypeId,
    blockSize: 1,
    bytesPerBlock: 2,
    bitsPerWeight: 16,
    encode(x) {
      checkPlainEncode(name, x);
      const out = new Uint8Array(x.length * 2);
      for (let i = 0; i < x.length; i++) {
        const h = toBits(x[i]!);
        out[2 * i] = h & 0xff;
        out[2 * i + 1] = h >>> 8;
      }
      return out;
    },
    decode(bytes, n) {
      checkPlain(name, 2, bytes, n);
      const y = new Float32Array(n);
      for (let i = 0; i < n; i++) y[i] = fromBits(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
      return y;
    },
  };
}

function fromGgml(name: GgmlTypeName): BlockTypeTraits {
  const c: GgmlCodec = GGML_CODECS[name];
  const { typeId, blockSize, bytesPerBlock } = c.info;
  return {
    name,
    ggmlTypeId: typeId,
    blockSize,
    bytesPerBlock,
    bitsPerWeight: (8 * bytesPerBlock) / blockSize,
    encode: (x, imatrix) =>
      imatrix ? c.quantize(x, imatrix.length, imatrix) : c.quantize(x, x.length, null),
    decode: (bytes, n) => c.dequantize(bytes, n),
  };
}

/** Every storable type, by ggml name. */
export const BLOCK_TYPES: Readonly<Record<BlockTypeName, BlockTypeTraits>> = {
  F32,
  F16: half('F16', 1, f32ToF16Bits, f16BitsToF32),
  BF16: half('BF16', 30, f32ToBf16Bits, bf16BitsToF32),
  Q4_0: fromGgml('Q4_0'),
  Q4_1: fromGgml('Q4_1'),
  Q5_0: fromGgml('Q5_0'),
  Q5_1: fromGgml('Q5_1'),
  Q8_0: fromGgml('Q8_0'),
  Q2_K: fromGgml('Q2_K'),
  Q3_K: fromGgml('Q3_K'),
  Q4_K: fromGgml('Q4_K'),
  Q5_K: fromGgml('Q5_K'),
  Q6_K: fromGgml('Q6_K'),
  IQ4_NL: fromGgml('IQ4_NL'),
  MXFP4: fromGgml('MXFP4'),
};

const BY_ID: ReadonlyMap<number, BlockTypeTraits> = new Map(
  Object.values(BLOCK_TYPES).map((t) => [t.ggmlTypeId, t] as const),
);

/** Traits by name (case-insensitive: 'q4_k' works); MixqError naming the known types otherwise. */
export function getBlockType(name: string): BlockTypeTraits {
  const t = (BLOCK_TYPES as Readonly<Record<string, BlockTypeTraits>>)[name.toUpperCase()];
  if (!t) {
    throw new MixqError(`unknown block type '${name}'`, {
      source: 'blocks',
      field: 'name',
      expected: Object.keys(BLOCK_TYPES).join(', '),
    });
  }
  return t;
}

/** Traits by GGUF/ggml type id, or undefined for a type mixq cannot encode/decode. */
export function blockTypeById(ggmlTypeId: number): BlockTypeTraits | undefined {
  return BY_ID.get(ggmlTypeId);
}

/** Bytes of a row of `n` values (ggml_row_size); MixqError if n is not a multiple of the block size. */
export function rowBytes(t: BlockTypeTraits, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n % t.blockSize !== 0) {
    throw new MixqError(`row of ${n} values`, {
      source: t.name,
      field: 'n',
      expected: `a multiple of ${t.blockSize}`,
    });
  }
  return (n / t.blockSize) * t.bytesPerBlock;
}

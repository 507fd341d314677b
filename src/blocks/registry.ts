/**
 * The block formats, one table (BLOCK_FORMATS): every ggml tensor type GGUF files store (BLOCK_TYPES, keyed
 * by ggml's name, with its GGUF/ggml type id), the OCP MX formats under each of their four scale rules,
 * and NVFP4; each row with its geometry, bits per weight, and whole-row encoder/decoder, and for the
 * scaled formats (MX, NVFP4) how a block's scale is chosen and applied (BlockScaling), which src/quant's
 * scaled-group quantizer uses, so that a scheme called MXFP4 or NVFP4 is exactly this table's format.
 * An explicit static table (no registration by import side effects).
 *
 * Type ids and sizes are ggml's (ggml.h enum ggml_type, ggml.c type_traits; ggml-org/ggml d99724f).
 * `encode` follows ggml's `quantize_<t>` (what llama-quantize runs): with an imatrix, the row length is
 * imatrix.length; without one it is the ref quantizer, except IQ4_NL, which still runs its scale search.
 * F32/F16/BF16 are little-endian element arrays (block size 1); F16/BF16 round to nearest even as ggml.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import type { FormatSpec } from '../formats/spec.ts';
import { GGML_CODECS, type GgmlCodec, type GgmlTypeName } from './ggml/index.ts';
import {
  MX_FORMATS,
  mxBlockScale,
  mxDecode,
  mxEncode,
  type MxFormat,
  type MxFormatName,
  type MxScaleRule,
} from './mx.ts';
import {
  NVFP4,
  nvfp4AutoTensorScale,
  nvfp4BlockScale,
  nvfp4Decode,
  nvfp4Encode,
  nvfp4Quotient,
} from './nvfp4.ts';

/** Traits of one tensor type a GGUF file stores (a row of BLOCK_FORMATS with a ggml type id). */
export interface BlockTypeTraits extends BlockFormat {
  readonly name: BlockTypeName;
  readonly family: 'float' | 'ggml';
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
  family: 'float',
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
    family: 'float',
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
    family: 'ggml',
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

/**
 * How a scaled block format chooses and applies its scales: MX, one E8M0 power of two per block by its
 * shared-exponent rule; NVFP4, one E4M3 scale per block times an FP32 per-tensor scale.
 */
export interface BlockScaling {
  /** The element format of the codes. */
  readonly element: FormatSpec;
  /** How each block's scale is stored (src/quant's scale format names). */
  readonly scaleFormat: 'e8m0' | 'fp8_e4m3fn';
  /** MX: the shared-exponent rule. */
  readonly rule?: MxScaleRule;
  /** The per-tensor scale of `x` (NVFP4: ModelOpt's amax / (6 * 448); MX: 1). */
  tensorScale(x: Float32Array): number;
  /** A block's scale code and the scale its elements are divided by, from its max |x| (finite, >= 0). */
  blockScale(amax: number, tensorScale: number): { readonly code: number; readonly scale: number };
  /** An element's quotient x / scale as the format computes it (what is rounded to an element code). */
  quotient(x: number, scale: number): number;
}

/** A row of the block-format table. */
export interface BlockFormat {
  readonly name: string;
  readonly family: 'float' | 'ggml' | 'mx' | 'nvfp4';
  /** enum ggml_type value = GGUF tensor type id, for the types GGUF files store. */
  readonly ggmlTypeId?: number;
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  readonly bitsPerWeight: number;
  /** Encodes whole rows (`x.length` a positive multiple of blockSize); NVFP4 rows with tensor scale 1. */
  encode(x: Float32Array, imatrix?: Float32Array): Uint8Array;
  decode(bytes: Uint8Array, n: number): Float32Array;
  /** MX and NVFP4: how the scales are chosen and applied. */
  readonly scaling?: BlockScaling;
}

const MX_RULES: readonly MxScaleRule[] = ['floor', 'ceil', 'even', 'rceil'];

/** The quotient of a power-of-two scale: exact, as float32 (mx.ts scales by the inverse). */
const mxQuotient = (x: number, scale: number): number => Math.fround(x / scale);

/** An MX format under one scale rule: 'mxfp4_e2m1' (the spec's floor rule), 'mxfp4_e2m1-rceil', ... */
function mxRow(fmt: MxFormat, rule: MxScaleRule): BlockFormat {
  const opts = { scaleRule: rule };
  return {
    name: rule === 'floor' ? fmt.name : `${fmt.name}-${rule}`,
    family: 'mx',
    blockSize: fmt.blockSize,
    bytesPerBlock: fmt.bytesPerBlock,
    bitsPerWeight: fmt.bitsPerElement,
    encode: (x) => mxEncode(fmt, x, opts),
    decode: (bytes, n) => mxDecode(fmt, bytes, n),
    scaling: {
      element: fmt.element,
      scaleFormat: 'e8m0',
      rule,
      tensorScale: () => 1,
      blockScale: (amax) => mxBlockScale(fmt, amax, rule),
      quotient: mxQuotient,
    },
  };
}

const NVFP4_ROW: BlockFormat = {
  name: NVFP4.name,
  family: 'nvfp4',
  blockSize: NVFP4.blockSize,
  bytesPerBlock: NVFP4.bytesPerBlock,
  bitsPerWeight: NVFP4.bitsPerElement,
  encode: (x) => nvfp4Encode(x).bytes,
  decode: (bytes, n) => nvfp4Decode(bytes, n),
  scaling: {
    element: MX_FORMATS.mxfp4_e2m1.element,
    scaleFormat: 'fp8_e4m3fn',
    tensorScale: nvfp4AutoTensorScale,
    blockScale: nvfp4BlockScale,
    quotient: nvfp4Quotient,
  },
};

/** Every block format: the GGUF types, each MX format under each scale rule, NVFP4. */
export const BLOCK_FORMATS: Readonly<Record<string, BlockFormat>> = Object.fromEntries([
  ...Object.values(BLOCK_TYPES).map((t) => [t.name, t] as const),
  ...(Object.keys(MX_FORMATS) as MxFormatName[]).flatMap((n) =>
    MX_RULES.map((rule) => {
      const row = mxRow(MX_FORMATS[n], rule);
      return [row.name, row] as const;
    }),
  ),
  [NVFP4_ROW.name, NVFP4_ROW] as const,
]);

/** A block format by name ('Q4_K', 'mxfp4_e2m1', 'mxfp4_e2m1-rceil', 'nvfp4'); MixqError naming the rows otherwise. */
export function getBlockFormat(name: string): BlockFormat {
  const f = BLOCK_FORMATS[name] ?? BLOCK_FORMATS[name.toUpperCase()];
  if (!f)
    throw new MixqError(`unknown block format '${name}'`, {
      source: 'blocks',
      field: 'name',
      expected: Object.keys(BLOCK_FORMATS).join(', '),
    });
  return f;
}

/**
 * The scaled block format a group quantizer is, if any: the row whose element, scale storage and block
 * size it has (MX formats under the spec's floor rule for 'e8m0'; NVFP4 for E2M1 with 'fp8_e4m3fn' scales
 * in groups of 16).
 */
export function blockScalingFor(
  element: FormatSpec,
  scaleFormat: string,
  groupSize: number,
): BlockScaling | undefined {
  for (const f of Object.values(BLOCK_FORMATS)) {
    const s = f.scaling;
    if (!s || f.blockSize !== groupSize || s.scaleFormat !== scaleFormat || s.element.name !== element.name)
      continue;
    if (s.rule === undefined || s.rule === 'floor') return s;
  }
  return undefined;
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

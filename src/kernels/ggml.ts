/**
 * ggml's block types read as GGUF stores them: rows of K / blockSize blocks, prepared in place (no copy
 * when the bytes are already in kernel memory). The reference decoder is mixq's own bit-exact codec
 * (src/blocks/ggml, tested against llama.cpp), row by row; native/kernels/ggml.h has the kernels, on
 * float32 activations and on int8 activation blocks as llama.cpp runs them.
 *
 * Q4_0, IQ4_NL and Q8_0 are repacked at load into 4-row interleaved tiles of the same size, as llama.cpp's
 * CPU backend repacks them (ggml.h "4-row interleaved tiles" has the layout): the four rows' fp16 scales of
 * a block side by side and their codes in 4-byte pieces, so that one integer dot serves four rows and one
 * float scaling four blocks' worth of rows. Bytes already in kernel memory are repacked where they are
 * (prepare takes them over, as it uses them in place); others are copied first, the input untouched. A last
 * tile of fewer than four rows stays as stored. decodeGgmlRow undoes the layout for the reference.
 *
 * Q8_0 codes of -128 (never written by ggml's quantizers, possible in a hand-made file) would break the
 * relaxed-SIMD sign trick; such a weight is marked and takes the widening dot (desc.dotClass).
 */
import { MixqError } from '../core/errors.ts';
import { BLOCK_TYPES, type BlockTypeName } from '../blocks/registry.ts';
import { DOT, type Desc, emptyDesc, LAYOUT } from './layout.ts';
import type { KernelMemory } from './memory.ts';
import type { KernelExports } from './module.ts';
import { checkShape, type GgmlSource } from './source.ts';

/** The quantized ggml types the kernels run (F32 / F16 / BF16 go to the dense layouts). */
export const GGML_KERNEL_TYPES = [
  'Q8_0',
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q2_K',
  'Q3_K',
  'Q4_K',
  'Q5_K',
  'Q6_K',
  'IQ4_NL',
  'MXFP4',
] as const satisfies readonly BlockTypeName[];
export type GgmlKernelType = (typeof GGML_KERNEL_TYPES)[number];

/** Prepares a GGUF tensor of a quantized ggml type (bytes in kernel memory are used in place). */
export function prepareGgml(
  mem: KernelMemory,
  src: GgmlSource,
  exports: Pick<KernelExports, 'ggml_interleave'>,
): { desc: Desc; allocations: number[]; bytes: number } {
  const source = `kernels: ${src.type} weight`;
  checkShape(source, src.rows, src.cols);
  const type = src.type.toUpperCase() as GgmlKernelType;
  if (!(GGML_KERNEL_TYPES as readonly string[]).includes(type))
    throw new MixqError(`ggml type '${src.type}'`, {
      source,
      field: 'type',
      expected: ['F32', 'F16', 'BF16', ...GGML_KERNEL_TYPES].join(', '),
    });
  const t = BLOCK_TYPES[type];
  if (src.cols % t.blockSize !== 0)
    throw new MixqError(`rows of ${src.cols} values`, {
      source,
      field: 'cols',
      expected: `a multiple of ${t.blockSize}`,
    });
  const rowBytes = (src.cols / t.blockSize) * t.bytesPerBlock;
  if (src.data.length !== src.rows * rowBytes)
    throw new MixqError(`${src.data.length} bytes`, {
      source,
      field: 'data.length',
      expected: String(src.rows * rowBytes),
    });
  const dot = type === 'Q8_0' && hasQ8Code128(src.data) ? DOT.full8 : DOT.u6;
  let data: number;
  const allocations: number[] = [];
  if (src.data.buffer === mem.memory.buffer) data = src.data.byteOffset;
  else {
    data = mem.alloc(src.data.length);
    allocations.push(data);
    mem.u8(data, src.data.length).set(src.data);
  }
  const tiles = INTERLEAVED.has(type) ? Math.floor(src.rows / ROWS_PER_TILE) : 0;
  if (tiles > 0) {
    const tmp = mem.alloc(ROWS_PER_TILE * rowBytes);
    try {
      exports.ggml_interleave(t.ggmlTypeId, data, rowBytes, tiles, tmp);
    } finally {
      mem.release(tmp);
    }
  }
  const desc = emptyDesc();
  Object.assign(desc, {
    layout: LAYOUT.ggml,
    rows: src.rows,
    cols: src.cols,
    kp: src.cols,
    data,
    rowBytes,
    bits: t.ggmlTypeId,
    group: t.blockSize,
    ngroups: src.cols / t.blockSize,
    dotClass: dot,
    aux: tiles > 0 ? ROWS_PER_TILE : 0,
  });
  return { desc, allocations, bytes: allocations.length ? src.data.length : 0 };
}

/**
 * Whether Q8_0 blocks hold a code of -128 (byte 0x80 at offsets 2..33 of a 34-byte block). Native
 * indexOf jumps between 0x80 bytes (a 1B-parameter file was a 4-second byte loop in JavaScript); a hit
 * in a scale (offsets 0, 1) is skipped.
 */
export function hasQ8Code128(data: Uint8Array): boolean {
  for (let i = data.indexOf(0x80); i >= 0; i = data.indexOf(0x80, i + 1)) if (i % 34 >= 2) return true;
  return false;
}

const BY_ID = new Map(GGML_KERNEL_TYPES.map((n) => [BLOCK_TYPES[n].ggmlTypeId, n] as const));

/** The ggml type of a ggml descriptor. */
export function ggmlTypeOf(d: Desc): GgmlKernelType {
  const t = BY_ID.get(d.bits);
  if (!t) throw new Error(`internal: ggml type id ${d.bits}`);
  return t;
}

/** Types repacked at load into 4-row interleaved tiles (ggml.h ggml_il_type). */
const INTERLEAVED = new Set<GgmlKernelType>(['Q4_0', 'IQ4_NL', 'Q8_0']);
const ROWS_PER_TILE = 4;

/**
 * Row r as GGUF stores it. In an interleaved tile (desc.aux = 4, rows r0 .. r0+3 with r0 = r - r % 4 and
 * r0 + 4 <= rows) block b of the tile is a group of 4 * bb bytes: the four rows' fp16 d (2 bytes each, row
 * order), then the code bytes in 4-byte pieces, piece t of row i at 8 + 16 t + 4 i.
 */
export function storedGgmlRow(bytes: Uint8Array, d: Desc, r: number): Uint8Array {
  const r0 = r - (r % ROWS_PER_TILE);
  if (d.aux !== ROWS_PER_TILE || r0 + ROWS_PER_TILE > d.rows)
    return bytes.subarray(d.data + r * d.rowBytes, d.data + (r + 1) * d.rowBytes);
  const bb = BLOCK_TYPES[ggmlTypeOf(d)].bytesPerBlock;
  const i = r - r0;
  const row = new Uint8Array(d.rowBytes);
  for (let b = 0; b < d.rowBytes / bb; b++) {
    const g = d.data + r0 * d.rowBytes + b * ROWS_PER_TILE * bb;
    row[b * bb] = bytes[g + 2 * i]!;
    row[b * bb + 1] = bytes[g + 2 * i + 1]!;
    for (let t = 0; t < (bb - 2) / 4; t++)
      for (let u = 0; u < 4; u++) row[b * bb + 2 + 4 * t + u] = bytes[g + 8 + 16 * t + 4 * i + u]!;
  }
  return row;
}

/** Reference decoder of row r: mixq's ggml codec on the row's blocks. */
export function decodeGgmlRow(bytes: Uint8Array, d: Desc, r: number, out: Float64Array): void {
  out.set(BLOCK_TYPES[ggmlTypeOf(d)].decode(storedGgmlRow(bytes, d, r), d.cols));
}

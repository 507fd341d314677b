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
 * Q6_K and Q4_K are repacked the same way into layouts of their own (ggml.h "Q6_K in 4-row
 * interleaved tiles", "Q4_K in ..."): per super-block the four rows' fp16 d (and dmin) side by side, their sub-scales
 * (and mins) by pairs of sub-blocks so that one widening gives each row's scale pair, and 16-byte vectors
 * of four consecutive codes of each row (Q6_K: 6 bits in one byte, the fourth code's bits spread over the
 * top bits of three bytes), so the Q8_K kernels (ggml-k.h) end a super-block as one i32x4 of four rows.
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

/**
 * Prepares a GGUF tensor of a quantized ggml type (bytes in kernel memory are used in place), in 4-row
 * interleaved tiles where the type has them unless `interleave` is false.
 */
export function prepareGgml(
  mem: KernelMemory,
  src: GgmlSource,
  exports: Pick<KernelExports, 'ggml_interleave'>,
  interleave = true,
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
  const tiles = interleave && INTERLEAVED.has(type) ? Math.floor(src.rows / ROWS_PER_TILE) : 0;
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

/** Types repacked at load into 4-row interleaved tiles (ggml.h ggml_il_type and ggml_il_k). */
const INTERLEAVED = new Set<GgmlKernelType>(['Q4_0', 'IQ4_NL', 'Q8_0', 'Q6_K', 'Q4_K']);
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
  const type = ggmlTypeOf(d);
  const bb = BLOCK_TYPES[type].bytesPerBlock;
  const i = r - r0;
  const row = new Uint8Array(d.rowBytes);
  if (type === 'Q6_K' || type === 'Q4_K') {
    for (let b = 0; b < d.rowBytes / bb; b++) {
      const g = d.data + r0 * d.rowBytes + b * ROWS_PER_TILE * bb;
      if (type === 'Q6_K') q6kUnpack(bytes, g, i, row, b * bb);
      else q4kUnpack(bytes, g, i, row, b * bb);
    }
    return row;
  }
  for (let b = 0; b < d.rowBytes / bb; b++) {
    const g = d.data + r0 * d.rowBytes + b * ROWS_PER_TILE * bb;
    row[b * bb] = bytes[g + 2 * i]!;
    row[b * bb + 1] = bytes[g + 2 * i + 1]!;
    for (let t = 0; t < (bb - 2) / 4; t++)
      for (let u = 0; u < 4; u++) row[b * bb + 2 + 4 * t + u] = bytes[g + 8 + 16 * t + 4 * i + u]!;
  }
  return row;
}

/**
 * Row i's Q6_K block from the interleaved group at g (ggml.h "Q6_K in 4-row interleaved tiles"), written as
 * stored at out[o ..]: bytes 0..7 the four rows' fp16 d; 8 + 8P + 2i + e row i's scale of sub-block 2P + e;
 * per sub-block j three 16-byte vectors at 72 + 48j + 16v whose byte 4i + u holds in bits 0..5 row i's code
 * of weight 16j + 4v + u, and in bits 6..7 two bits of its code of weight 16j + 12 + u (v = 0: bits 4..5,
 * v = 1: bits 2..3, v = 2: bits 0..1).
 */
function q6kUnpack(bytes: Uint8Array, g: number, i: number, out: Uint8Array, o: number): void {
  out.fill(0, o, o + 192);
  for (let w = 0; w < 256; w++) {
    const at = g + 72 + 48 * (w >> 4) + 4 * i + (w & 3);
    const v = (w >> 2) & 3;
    const c =
      v < 3
        ? bytes[at + 16 * v]! & 63
        : ((bytes[at]! >> 6) << 4) | ((bytes[at + 16]! >> 6) << 2) | (bytes[at + 32]! >> 6);
    // ggml's Q6_K: ql nibble (weights 32 apart share a byte's halves) and 2 bits of qh per weight
    const h = w >> 7;
    const l = w & 31;
    const part = (w >> 5) & 3;
    out[o + 64 * h + 32 * (part & 1) + l]! |= (c & 15) << (4 * (part >> 1));
    out[o + 128 + 32 * h + l]! |= (c >> 4) << (2 * part);
  }
  for (let j = 0; j < 16; j++) out[o + 192 + j] = bytes[g + 8 + 8 * (j >> 1) + 2 * i + (j & 1)]!;
  out[o + 208] = bytes[g + 2 * i]!;
  out[o + 209] = bytes[g + 2 * i + 1]!;
}

/**
 * Row i's Q4_K block from the interleaved group at g (ggml.h "Q4_K in 4-row interleaved tiles"), written as
 * stored at out[o ..]: bytes 0..7 the four rows' fp16 d, 8..15 their dmin; byte 16 + 8P + 2i + e holds
 * sub-block j = 2P + e's 6-bit scale (bits 0..5) and bits 4..5 of its min (bits 6..7); byte
 * 48 + 8(P & 1) + 2i + e the min's bits 0..3 (low nibble for P < 2, high for P >= 2); per sub-block j four
 * 16-byte vectors at 64 + 64j + 16t whose byte 4i + u holds row i's codes of weights 32j + 4t + u (low
 * nibble) and 32j + 16 + 4t + u (high nibble).
 */
function q4kUnpack(bytes: Uint8Array, g: number, i: number, out: Uint8Array, o: number): void {
  out.fill(0, o + 4, o + 144);
  out[o] = bytes[g + 2 * i]!;
  out[o + 1] = bytes[g + 2 * i + 1]!;
  out[o + 2] = bytes[g + 8 + 2 * i]!;
  out[o + 3] = bytes[g + 8 + 2 * i + 1]!;
  const q = o + 4; // the 12 scale bytes, as ggml's get_scale_min_k4 reads them
  for (let j = 0; j < 8; j++) {
    const s = bytes[g + 16 + 8 * (j >> 1) + 2 * i + (j & 1)]!;
    const sc = s & 63;
    const m =
      ((bytes[g + 48 + 8 * ((j >> 1) & 1) + 2 * i + (j & 1)]! >> (4 * (j >> 2))) & 15) | ((s >> 6) << 4);
    if (j < 4) {
      out[q + j]! |= sc;
      out[q + j + 4]! |= m;
    } else {
      out[q + j + 4] = (sc & 15) | ((m & 15) << 4);
      out[q + j - 4]! |= (sc >> 4) << 6;
      out[q + j]! |= (m >> 4) << 6;
    }
  }
  for (let w = 0; w < 256; w++) {
    const at = g + 64 + 64 * (w >> 5) + 16 * ((w >> 2) & 3) + 4 * i + (w & 3);
    const c = (bytes[at]! >> (4 * ((w >> 4) & 1))) & 15;
    out[o + 16 + 32 * (w >> 6) + (w & 31)]! |= c << (4 * ((w >> 5) & 1));
  }
}

/** Reference decoder of row r: mixq's ggml codec on the row's blocks. */
export function decodeGgmlRow(bytes: Uint8Array, d: Desc, r: number, out: Float64Array): void {
  out.set(BLOCK_TYPES[ggmlTypeOf(d)].decode(storedGgmlRow(bytes, d, r), d.cols));
}

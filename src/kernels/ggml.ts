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
 * The K-quants (Q2_K .. Q6_K) are repacked the same way into layouts of their own (ggml.h "Q6_K in 4-row
 * interleaved tiles", "Q4_K in ...", "Q3_K, Q2_K and Q5_K in ..."): per super-block the four rows' fp16 d
 * (and dmin) side by side, their sub-scales (and mins) by pairs of sub-blocks so that one widening gives each
 * row's scale pair, and 16-byte vectors of four consecutive codes of each row (3-, 5- and 6-bit codes packed
 * whole in bytes, the spare top bits holding further codes), so the Q8_K kernels (ggml-k.h) end a
 * super-block as one i32x4 of four rows.
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
const INTERLEAVED = new Set<GgmlKernelType>([
  'Q4_0',
  'IQ4_NL',
  'Q8_0',
  'Q2_K',
  'Q3_K',
  'Q4_K',
  'Q5_K',
  'Q6_K',
]);
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
  if (type === 'Q2_K' || type === 'Q3_K' || type === 'Q4_K' || type === 'Q5_K' || type === 'Q6_K') {
    for (let b = 0; b < d.rowBytes / bb; b++) {
      const g = d.data + r0 * d.rowBytes + b * ROWS_PER_TILE * bb;
      if (type === 'Q6_K') q6kUnpack(bytes, g, i, row, b * bb);
      else if (type === 'Q4_K') q4kUnpack(bytes, g, i, row, b * bb);
      else kUnpack(type, bytes, g, i, row, b * bb);
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
  const { a, m } = k6Get(bytes, g + 16, i);
  putScaleMinK4(out, o + 4, a, m);
  for (let w = 0; w < 256; w++) {
    const at = g + 64 + 64 * (w >> 5) + 16 * ((w >> 2) & 3) + 4 * i + (w & 3);
    const c = (bytes[at]! >> (4 * ((w >> 4) & 1))) & 15;
    out[o + 16 + 32 * (w >> 6) + (w & 31)]! |= c << (4 * ((w >> 5) & 1));
  }
}

/**
 * Row i's 8 pairs of 6-bit values (a_j, m_j) in the scale section at s of an interleaved Q4_K / Q5_K / Q3_K
 * group (ggml.h k6il_put): byte 8 (j >> 1) + 2i + (j & 1) holds a_j and, in bits 6..7, m_j's bits 4..5; byte
 * 32 + 8 ((j >> 1) & 1) + 2i + (j & 1) m_j's bits 0..3 at shift 4 (j >> 2).
 */
function k6Get(bytes: Uint8Array, s: number, i: number): { a: number[]; m: number[] } {
  const a: number[] = [];
  const m: number[] = [];
  for (let j = 0; j < 8; j++) {
    const v = bytes[s + 8 * (j >> 1) + 2 * i + (j & 1)]!;
    a.push(v & 63);
    m.push(
      ((bytes[s + 32 + 8 * ((j >> 1) & 1) + 2 * i + (j & 1)]! >> (4 * (j >> 2))) & 15) | ((v >> 6) << 4),
    );
  }
  return { a, m };
}

/** Q4_K / Q5_K: 8 scales and mins written as the 12 scale bytes at out[q ..] (ggml's get_scale_min_k4 reads them). */
function putScaleMinK4(out: Uint8Array, q: number, sc: readonly number[], m: readonly number[]): void {
  out.fill(0, q, q + 12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[q + j]! |= sc[j]!;
      out[q + j + 4]! |= m[j]!;
    } else {
      out[q + j + 4] = (sc[j]! & 15) | ((m[j]! & 15) << 4);
      out[q + j - 4]! |= (sc[j]! >> 4) << 6;
      out[q + j]! |= (m[j]! >> 4) << 6;
    }
  }
}

/**
 * Code of (row i, weight w) in the code section at c of an interleaved Q2_K / Q3_K / Q5_K group (ggml.h
 * "Q3_K, Q2_K and Q5_K in 4-row interleaved tiles"): code vector t = (w >> 2) & 7 of the 32 weights from
 * 32 (w >> 5), byte 4i + (w & 3) of each 16-byte vector. Q2_K: two vectors, bits 2 (t & 3) of vector t >> 2.
 * Q3_K: three vectors B0..B2, bits 0..2 / 3..5 of B(t >> 1) for t < 6; t = 6: B0 bits 6..7 and B2 bit 6;
 * t = 7: B1 bits 6..7 and B2 bit 7. Q5_K: five vectors, bits 0..4 of Bt for t < 5; t = 5 (6): bits 5..7 of
 * B0 (B2) and bits 5..6 of B1 (B3); t = 7: bit 7 of B1, bit 7 of B3, bits 5..7 of B4.
 */
function kCode(type: 'Q2_K' | 'Q3_K' | 'Q5_K', bytes: Uint8Array, c: number, i: number, w: number): number {
  const t = (w >> 2) & 7;
  const q = 4 * i + (w & 3);
  if (type === 'Q2_K') return (bytes[c + 32 * (w >> 5) + 16 * (t >> 2) + q]! >> (2 * (t & 3))) & 3;
  if (type === 'Q3_K') {
    const B = c + 48 * (w >> 5) + q;
    if (t < 6) return (bytes[B + 16 * (t >> 1)]! >> (3 * (t & 1))) & 7;
    return (bytes[B + 16 * (t - 6)]! >> 6) | (((bytes[B + 32]! >> (t === 6 ? 6 : 7)) & 1) << 2);
  }
  const B = c + 80 * (w >> 5) + q;
  if (t < 5) return bytes[B + 16 * t]! & 31;
  if (t < 7) return (bytes[B + 32 * (t - 5)]! >> 5) | (((bytes[B + 32 * (t - 5) + 16]! >> 5) & 3) << 3);
  return (bytes[B + 16]! >> 7) | ((bytes[B + 48]! >> 7) << 1) | ((bytes[B + 64]! >> 5) << 2);
}

/**
 * Row i's Q2_K / Q3_K / Q5_K block from the interleaved group at g, written as stored at out[o ..]. Group:
 * bytes 0..7 the four rows' fp16 d (Q2_K, Q5_K: 8..15 their dmin); Q2_K: byte 16 + 8P + 2i + e row i's
 * scale byte of sub-block 2P + e; Q3_K: its 16 6-bit scales in the scale section at 8 (a_j = scale j, m_j =
 * scale j + 8); Q5_K: scales and mins as Q4_K at 16; then the codes (kCode) at 80 / 56 / 64.
 */
function kUnpack(
  type: 'Q2_K' | 'Q3_K' | 'Q5_K',
  bytes: Uint8Array,
  g: number,
  i: number,
  out: Uint8Array,
  o: number,
): void {
  const bb = BLOCK_TYPES[type].bytesPerBlock;
  out.fill(0, o, o + bb);
  const dof = type === 'Q2_K' ? 80 : type === 'Q3_K' ? 108 : 0;
  out[o + dof] = bytes[g + 2 * i]!;
  out[o + dof + 1] = bytes[g + 2 * i + 1]!;
  if (type !== 'Q3_K') {
    out[o + dof + 2] = bytes[g + 8 + 2 * i]!;
    out[o + dof + 3] = bytes[g + 8 + 2 * i + 1]!;
  }
  const codes = g + (type === 'Q2_K' ? 80 : type === 'Q3_K' ? 56 : 64);
  for (let w = 0; w < 256; w++) {
    const c = kCode(type, bytes, codes, i, w);
    const h = w >> 7;
    const part = (w >> 5) & 3;
    const l = w & 31;
    // ggml's layouts: Q2_K / Q3_K 2 bits at shift 2 part of qs[32 h + l] (Q3_K's third bit: hmask[l] bit 4 h +
    // part); Q5_K a nibble at shift 4 ((w >> 5) & 1) of qs[32 (w >> 6) + l] and the fifth bit: qh[l] bit w >> 5
    if (type === 'Q2_K') out[o + 16 + 32 * h + l]! |= c << (2 * part);
    else if (type === 'Q3_K') {
      out[o + 32 + 32 * h + l]! |= (c & 3) << (2 * part);
      out[o + l]! |= (c >> 2) << (4 * h + part);
    } else {
      out[o + 48 + 32 * (w >> 6) + l]! |= (c & 15) << (4 * ((w >> 5) & 1));
      out[o + 16 + l]! |= (c >> 4) << (w >> 5);
    }
  }
  if (type === 'Q2_K') {
    for (let j = 0; j < 16; j++) out[o + j] = bytes[g + 16 + 8 * (j >> 1) + 2 * i + (j & 1)]!;
    return;
  }
  const { a, m } = k6Get(bytes, g + (type === 'Q3_K' ? 8 : 16), i);
  if (type === 'Q5_K') return putScaleMinK4(out, o + 4, a, m);
  // Q3_K: 16 6-bit scales in 12 bytes at 96: low nibbles in bytes j & 7 (high nibble for j >= 8), the top two
  // bits in byte 8 + (j & 3) at shift 2 (j >> 2)
  const v = [...a, ...m];
  for (let j = 0; j < 16; j++) {
    out[o + 96 + (j & 7)]! |= (v[j]! & 15) << (4 * (j >> 3));
    out[o + 104 + (j & 3)]! |= (v[j]! >> 4) << (2 * (j >> 2));
  }
}

/** Reference decoder of row r: mixq's ggml codec on the row's blocks. */
export function decodeGgmlRow(bytes: Uint8Array, d: Desc, r: number, out: Float64Array): void {
  out.set(BLOCK_TYPES[ggmlTypeOf(d)].decode(storedGgmlRow(bytes, d, r), d.cols));
}

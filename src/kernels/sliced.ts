/**
 * mixq's own formats in the kernels' "sliced" layout (native/kernels/sliced.h has the bit diagram): b-bit
 * codes (b = 1..8) of integer, float or codebook elements, one scale per row, per tensor or per group of
 * 16 / 32k weights along K, zero codes (asymmetric integers) or float16 offsets (asymmetric tables).
 *
 * Repacking happens once, at load: a row of the stored stream (safetensors W.qweight) or of the ONNX bit
 * planes becomes kp / 128 blocks of 16 * b bytes (kp = K rounded up to 128; the same bytes as stored when
 * K is a multiple of 128). Scales keep their stored type (fp32, fp16, bf16, E8M0, E4M3 codes) except
 * double-quantized ones, which become float32 (4 bytes per group instead of sub_bits / 8 + shared), and a
 * per-tensor scale or zero code, which is repeated per row. Zero codes take a nibble (b <= 4) or a byte per
 * group: (8 - b) more bits per group for b = 5..7, nothing more for b = 4.
 *
 * Weights with an int8 path ('q8') then have their full 4-row tiles interleaved in place, same size
 * (native/kernels/sliced.h "4-row interleaved tiles"; desc.interleave = 4): the int8 matrix x vector
 * reads one stream and gets the four rows' sums in separate lanes. PrepareOptions.layout 'stored' keeps the
 * rows (what the float32 path reads without a transpose).
 *
 * The reference decoder (decodeSlicedRow) reads the same bytes with plain loops (storedSlicedRow undoes
 * the tiles): it is what every sliced kernel is tested against, and it is tested against src/quant's
 * dequantization.
 */
import { bf16BitsToF32, f16BitsToF32 } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import { getFormat, parseFormat } from '../formats/index.ts';
import type { FormatSpec } from '../formats/spec.ts';
import { type ElementPlan, elementPlan, floatBitDecode, lut4Planes } from './elements.ts';
import { DOT, type Desc, ELEM, emptyDesc, LAYOUT, SCALE_KIND, ZERO_KIND } from './layout.ts';
import type { KernelMemory } from './memory.ts';
import { checkShape, type MixqSource } from './source.ts';

const SRC = 'kernels: mixq weight';
const fr = Math.fround;

function fail(message: string, field: string, expected: string): never {
  throw new MixqError(message, { source: SRC, field, expected });
}

/** Element spec by name (registered names and aliases, then custom eXmY) or as given. */
export function resolveElement(e: string | FormatSpec): FormatSpec {
  if (typeof e !== 'string') return e;
  try {
    return getFormat(e);
  } catch {
    return parseFormat(e);
  }
}

/** Bytes of one row of b-bit codes in the sliced layout, padded to kp. */
export function slicedRowBytes(kp: number, bits: number): number {
  return (kp / 128) * 16 * bits;
}

/** Writes the code of weight w (0..127) of a block at byte offset o. */
function putCode(out: Uint8Array, o: number, w: number, c: number, bits: number): void {
  if (bits === 8) {
    out[o + w] = c;
    return;
  }
  const t = w >> 4;
  const i = w & 15;
  const nib = bits >= 4;
  const crumb = bits === 2 || bits === 3 || bits === 6 || bits === 7;
  if (nib) out[o + 16 * (t >> 1) + i]! |= (c & 15) << (4 * (t & 1));
  const pc = o + (nib ? 64 : 0);
  if (crumb) out[pc + 16 * (t >> 2) + i]! |= ((c >> (nib ? 4 : 0)) & 3) << (2 * (t & 3));
  if (bits & 1) out[pc + (crumb ? 32 : 0) + i]! |= ((c >> (bits - 1)) & 1) << t;
}

/** Reads the code of weight w of a block at byte offset o (inverse of putCode). */
export function getSlicedCode(bytes: Uint8Array, o: number, w: number, bits: number): number {
  if (bits === 8) return bytes[o + w]!;
  const t = w >> 4;
  const i = w & 15;
  const nib = bits >= 4;
  const crumb = bits === 2 || bits === 3 || bits === 6 || bits === 7;
  let c = 0;
  let pos = 0;
  if (nib) {
    c = (bytes[o + 16 * (t >> 1) + i]! >> (4 * (t & 1))) & 15;
    pos = 4;
  }
  const pc = o + (nib ? 64 : 0);
  if (crumb) {
    c |= ((bytes[pc + 16 * (t >> 2) + i]! >> (2 * (t & 3))) & 3) << pos;
    pos += 2;
  }
  if (bits & 1) c |= ((bytes[pc + (crumb ? 32 : 0) + i]! >> t) & 1) << pos;
  return c;
}

/** A reader of the codes of element i .. i + n of the source into out. */
type CodeReader = (start: number, n: number, out: Uint8Array) => void;

function codeReader(src: MixqSource, bits: number): CodeReader {
  const N = src.rows * src.cols;
  const data = src.codes;
  if ((src.codeLayout ?? 'stream') === 'planes') {
    const P = Math.ceil(N / 8);
    const need = bits === 8 ? N : bits * P;
    if (data.length < need) fail(`${data.length} bytes of bit planes`, 'codes.length', `>= ${need}`);
    if (bits === 8) return (s, n, out) => out.set(data.subarray(s, s + n));
    return (s, n, out) => {
      for (let j = 0; j < n; j++) {
        const i = s + j;
        let c = 0;
        for (let b = 0; b < bits; b++) c |= ((data[b * P + (i >> 3)]! >> (i & 7)) & 1) << b;
        out[j] = c;
      }
    };
  }
  const need = Math.ceil((N * bits) / 8);
  if (data.length < need) fail(`${data.length} bytes of codes`, 'codes.length', `>= ${need}`);
  if (bits === 8) return (s, n, out) => out.set(data.subarray(s, s + n));
  const mask = (1 << bits) - 1;
  return (s, n, out) => {
    let bit = s * bits;
    for (let j = 0; j < n; j++, bit += bits) {
      const byte = bit >> 3;
      const sh = bit & 7;
      const v = data[byte]! | ((data[byte + 1] ?? 0) << 8);
      out[j] = (v >> sh) & mask;
    }
  };
}

/** Reads `count` codes of `bits` from a packed LSB-first stream. */
function unpackStream(data: Uint8Array, bits: number, count: number, field: string): Uint8Array {
  const need = Math.ceil((count * bits) / 8);
  if (data.length < need) fail(`${data.length} bytes`, field, `>= ${need}`);
  const out = new Uint8Array(count);
  const mask = (1 << bits) - 1;
  for (let j = 0, bit = 0; j < count; j++, bit += bits) {
    const v = data[bit >> 3]! | ((data[(bit >> 3) + 1] ?? 0) << 8);
    out[j] = (v >> (bit & 7)) & mask;
  }
  return out;
}

/** Groups along K: the kernel's group size and groups per row. */
export function slicedGroups(groups: MixqSource['groups'], cols: number, kp: number): [number, number] {
  if (groups === 'row' || groups === 'tensor') return [kp, 1];
  if (!Number.isInteger(groups) || groups <= 0) fail(`group size ${groups}`, 'groups', 'a positive integer');
  if (groups >= cols) return [kp, 1];
  if (groups !== 16 && groups % 32 !== 0)
    fail(`group size ${groups}`, 'groups', "16, a multiple of 32, or 'row' (the kernels' group granularity)");
  return [groups, Math.ceil(cols / groups)];
}

/** Stored scales -> the kernel's [rows][ngroups] in the kernel's scale kind. */
function convertScales(
  src: MixqSource,
  nStored: number,
  rows: number,
  ngroups: number,
): { kind: number; bytes: Uint8Array | null; tensorScale: number } {
  const sf = src.scaleFormat;
  const s = src.scales;
  const rep = src.groups === 'tensor' ? rows * ngroups : 1; // a per-tensor scale repeats per row
  const expand = (width: number, data: Uint8Array): Uint8Array => {
    if (data.length !== nStored * width)
      fail(`${data.length} bytes of scales`, 'scales.length', String(nStored * width));
    if (rep === 1) return data.slice();
    const out = new Uint8Array(rep * width);
    for (let i = 0; i < rep; i++) out.set(data.subarray(0, width), i * width);
    return out;
  };
  if (sf === 'none') return { kind: SCALE_KIND.one, bytes: null, tensorScale: 1 };
  if (!s) return fail('no scales', 'scales', `the stored scales (${JSON.stringify(sf)})`);
  if (sf === 'fp32') return { kind: SCALE_KIND.f32, bytes: expand(4, s), tensorScale: 1 };
  if (sf === 'fp16' || sf === 'bf16') {
    const b = expand(2, s);
    const dec = sf === 'fp16' ? f16BitsToF32 : bf16BitsToF32;
    for (let i = 0; i < b.length; i += 2)
      if (!Number.isFinite(dec(b[i]! | (b[i + 1]! << 8))))
        fail(`scale ${i / 2} is not finite`, 'scales', `finite ${sf} scales`);
    return { kind: sf === 'fp16' ? SCALE_KIND.f16 : SCALE_KIND.bf16, bytes: b, tensorScale: 1 };
  }
  if (sf === 'e8m0') {
    const b = expand(1, s);
    const bad = b.indexOf(255);
    if (bad >= 0) fail(`scale ${bad} is the E8M0 NaN code 255`, 'scales', 'codes 0..254');
    return { kind: SCALE_KIND.e8m0, bytes: b, tensorScale: 1 };
  }
  if (sf === 'fp8_e4m3fn') {
    const b = expand(1, s);
    for (let i = 0; i < b.length; i++)
      if ((b[i]! & 0x7f) === 0x7f) fail(`scale ${i} is an E4M3 NaN code`, 'scales', 'finite e4m3fn codes');
    const g = src.globalScale;
    if (g === undefined || !Number.isFinite(g))
      fail(`global scale ${g}`, 'globalScale', 'the finite float32 W.global_scale');
    return { kind: SCALE_KIND.e4m3, bytes: b, tensorScale: fr(g) };
  }
  // double: scale of group g = fp32(super[floor(g / superGroup)] * c[g]); stored as float32 here
  const { subBits, superGroup } = sf;
  const c = unpackStream(s, subBits, nStored, 'scales');
  const sup = src.superScales;
  const nSup = Math.ceil(nStored / superGroup);
  if (!sup || sup.length !== 2 * nSup)
    fail(`${sup?.length ?? 0} bytes of super scales`, 'superScales', String(2 * nSup));
  const f = new Float32Array(rep === 1 ? nStored : rep);
  for (let g = 0; g < f.length; g++) {
    const gi = rep === 1 ? g : 0;
    const j = Math.floor(gi / superGroup);
    f[g] = fr(f16BitsToF32(sup[2 * j]! | (sup[2 * j + 1]! << 8)) * c[gi]!);
  }
  return { kind: SCALE_KIND.f32, bytes: new Uint8Array(f.buffer), tensorScale: 1 };
}

/**
 * Row-major [rows][ngroups] entries of `width` bytes -> tiled [ceil(rows / T)][ngroups][T] (rows beyond the
 * last are zero: a finite value of every scale type).
 */
export function tileParams(
  rowMajor: Uint8Array,
  width: number,
  rows: number,
  ngroups: number,
  T: number,
): Uint8Array {
  const out = new Uint8Array(Math.ceil(rows / T) * T * ngroups * width);
  for (let r = 0; r < rows; r++)
    for (let g = 0; g < ngroups; g++) {
      const i = ((Math.floor(r / T) * ngroups + g) * T + (r % T)) * width;
      out.set(rowMajor.subarray((r * ngroups + g) * width, (r * ngroups + g + 1) * width), i);
    }
  return out;
}

/** Entry index of (row r, group g) in tiled parameters (T = d.aux rows per tile; 0 or 1: row-major). */
export function paramIndex(d: Desc, r: number, g: number): number {
  const T = d.aux > 1 ? d.aux : 1;
  return (Math.floor(r / T) * d.ngroups + g) * T + (r % T);
}

/** Everything a prepared sliced weight holds, before it is written to kernel memory. */
export interface SlicedParts {
  readonly desc: Desc;
  readonly plan: ElementPlan;
  /** Named byte regions: the descriptor's address fields point at them once placed. */
  readonly regions: ReadonlyMap<'data' | 'scales' | 'zeros' | 'offsets' | 'table' | 'qtable', Uint8Array>;
  readonly modes: readonly ('f32' | 'q8')[];
}

/**
 * Repacks a mixq weight into the sliced layout (not yet placed in memory: placeParts does that).
 * `writeRows(r, bytes)` receives each repacked row, so the codes never exist twice in full.
 */
export function repackSliced(
  src: MixqSource,
  writeRows: (r: number, bytes: Uint8Array) => void,
  paramTile = 4,
  zeroBytes = false,
): Omit<SlicedParts, 'regions'> & {
  regions: Map<'scales' | 'zeros' | 'offsets' | 'table' | 'qtable', Uint8Array>;
} {
  checkShape(SRC, src.rows, src.cols);
  const spec = resolveElement(src.element);
  const plan = elementPlan(spec);
  const bits = plan.bits;
  if (bits < 1 || bits > 8)
    fail(
      `${spec.name} has ${bits}-bit codes`,
      'element',
      '1..8 bits (16-bit floats go to the dense layouts)',
    );
  const { rows, cols } = src;
  const kp = Math.ceil(cols / 128) * 128;
  const [group, ngroups] = slicedGroups(src.groups, cols, kp);
  const nStored = src.groups === 'tensor' ? 1 : rows * ngroups;
  const isInt = spec.kind === 'int';
  // codes, row by row
  const read = codeReader(src, bits);
  const rowCodes = new Uint8Array(kp);
  const rowBytes = slicedRowBytes(kp, bits);
  let minCode = 255;
  for (let r = 0; r < rows; r++) {
    rowCodes.fill(0);
    read(r * cols, cols, rowCodes);
    const out = new Uint8Array(rowBytes);
    for (let k = 0; k < cols; k++) {
      const c = rowCodes[k]!;
      if (!isInt && !Number.isFinite(plan.values[c]!))
        fail(
          `code ${c} at row ${r}, column ${k} is not a finite ${spec.name} value`,
          'codes',
          'finite element codes',
        );
      if (c < minCode) minCode = c;
    }
    for (let b = 0; b < kp / 128; b++)
      for (let w = 0; w < 128; w++) putCode(out, b * 16 * bits, w, rowCodes[b * 128 + w]!, bits);
    writeRows(r, out);
  }
  const regions = new Map<'scales' | 'zeros' | 'offsets' | 'table' | 'qtable', Uint8Array>();
  const desc = emptyDesc();
  Object.assign(desc, {
    layout: LAYOUT.sliced,
    rows,
    cols,
    kp,
    rowBytes,
    bits,
    group,
    ngroups,
    elem: plan.elem,
    fbits: plan.fbits,
    fmul: plan.fmul,
    fsign: plan.fsign,
  });
  // group parameters, tiled: entry (r, g) at ((r / T) * ngroups + g) * T + r % T (native/kernels/common.h)
  const T = paramTile;
  desc.aux = T;
  const tile = (rowMajor: Uint8Array, width: number): Uint8Array =>
    tileParams(rowMajor, width, rows, ngroups, T);
  const sc = convertScales(src, nStored, rows, ngroups);
  desc.scaleKind = sc.kind;
  desc.tensorScale = sc.tensorScale;
  if (sc.bytes) regions.set('scales', tile(sc.bytes, sc.bytes.length / (rows * ngroups)));
  const modes: ('f32' | 'q8')[] = ['f32'];
  if (isInt) {
    const top = 2 ** bits;
    if (src.symmetric) {
      desc.zeroKind = ZERO_KIND.const;
      desc.zc = spec.signed ? -plan.codeBase : top / 2;
    } else {
      if (!src.zeros) fail('no zero codes', 'zeros', 'W.zeros of an asymmetric integer weight');
      const z = unpackStream(src.zeros, bits, nStored, 'zeros');
      if (src.groups === 'tensor') {
        desc.zeroKind = ZERO_KIND.const;
        desc.zc = z[0]!;
      } else {
        const zt = tile(z, 1);
        if (bits <= 4 && !zeroBytes) {
          desc.zeroKind = ZERO_KIND.nibble;
          const zb = new Uint8Array(Math.ceil(zt.length / 2));
          for (let i = 0; i < zt.length; i++) zb[i >> 1]! |= zt[i]! << (4 * (i & 1));
          regions.set('zeros', zb);
        } else {
          desc.zeroKind = ZERO_KIND.byte;
          regions.set('zeros', zt);
        }
      }
    }
    desc.dotClass = bits < 8 ? plan.dotClass : minCode >= 1 ? DOT.s8 : DOT.full8;
    modes.push('q8');
  } else {
    if (!src.symmetric) {
      if (!src.offsets) fail('no offsets', 'offsets', 'W.offsets of an asymmetric table weight');
      const n = rows * ngroups;
      const o = src.offsets;
      if (o.length !== 2 * nStored) fail(`${o.length} bytes of offsets`, 'offsets', String(2 * nStored));
      const ob = new Uint8Array(2 * n);
      for (let i = 0; i < n; i++) {
        const j = src.groups === 'tensor' ? 0 : i;
        ob[2 * i] = o[2 * j]!;
        ob[2 * i + 1] = o[2 * j + 1]!;
        if (!Number.isFinite(f16BitsToF32(ob[2 * i]! | (ob[2 * i + 1]! << 8))))
          fail(`offset ${j} is not finite`, 'offsets', 'finite float16 offsets');
      }
      regions.set('offsets', tile(ob, 2));
    }
    if (plan.elem === ELEM.lut4) regions.set('table', lut4Planes(plan.values));
    else if (plan.elem === ELEM.table) {
      const t = Float32Array.from(plan.values, (v) => (Number.isFinite(v) ? v : 0));
      regions.set('table', new Uint8Array(t.buffer));
    }
    if (plan.qtable && bits >= 4 && bits <= 6) {
      const q = new Uint8Array(64);
      q.set(new Uint8Array(plan.qtable.buffer, plan.qtable.byteOffset, plan.qtable.length));
      regions.set('qtable', q);
      desc.qunit = plan.qunit;
      desc.qoffset = plan.qoffset;
      desc.dotClass = plan.dotClass;
      modes.push('q8');
    }
  }
  return { desc, plan, regions, modes };
}

/** Rows of an interleaved tile (native/kernels/sliced.h "4-row interleaved tiles"). */
export const SLICED_TILE_ROWS = 4;

/**
 * Byte offset, in a full interleaved tile, of byte `o` (0 .. rowBytes - 1) of row i's stored bytes: block
 * blk = o / (16 b), vector v, piece j, byte e of the block go to 64 b blk + 64 v + 16 j + 4 i + e.
 */
function interleavedOffset(o: number, i: number, bits: number): number {
  const bb = 16 * bits;
  const blk = Math.floor(o / bb);
  const w = o - blk * bb;
  return 4 * bb * blk + 64 * (w >> 4) + 16 * ((w >> 2) & 3) + 4 * i + (w & 3);
}

/**
 * The stored rows r0 .. r0+3 (4 * rowBytes bytes, row after row) rewritten in place as an interleaved tile
 * (same size). Four-byte pieces move together.
 */
export function interleaveSlicedTile(tile: Uint8Array, rowBytes: number, bits: number): void {
  const rowsCopy = tile.slice(0, SLICED_TILE_ROWS * rowBytes);
  for (let i = 0; i < SLICED_TILE_ROWS; i++)
    for (let o = 0; o < rowBytes; o += 4) {
      const t = interleavedOffset(o, i, bits);
      const s = i * rowBytes + o;
      tile[t] = rowsCopy[s]!;
      tile[t + 1] = rowsCopy[s + 1]!;
      tile[t + 2] = rowsCopy[s + 2]!;
      tile[t + 3] = rowsCopy[s + 3]!;
    }
}

/**
 * Row r of a sliced weight as stored (rowBytes bytes): a view of kernel memory, or, in an interleaved
 * tile (desc.interleave = 4, r in a full tile), the row gathered back. What the reference decodes.
 */
export function storedSlicedRow(bytes: Uint8Array, d: Desc, r: number): Uint8Array {
  const r0 = r - (r % SLICED_TILE_ROWS);
  if (d.interleave !== SLICED_TILE_ROWS || r0 + SLICED_TILE_ROWS > d.rows)
    return bytes.subarray(d.data + r * d.rowBytes, d.data + (r + 1) * d.rowBytes);
  const tile = d.data + r0 * d.rowBytes;
  const out = new Uint8Array(d.rowBytes);
  for (let o = 0; o < d.rowBytes; o++) out[o] = bytes[tile + interleavedOffset(o, r - r0, d.bits)]!;
  return out;
}

/**
 * Prepares a mixq weight in kernel memory: its descriptor fields and the allocations it owns. Full 4-row
 * tiles are interleaved (the int8 path's layout) unless `interleave` is false (rows as stored: what the
 * float32 path reads without rebuilding blocks).
 */
export function prepareSliced(
  mem: KernelMemory,
  src: MixqSource,
  interleave = true,
): { desc: Desc; allocations: number[]; bytes: number; modes: readonly ('f32' | 'q8')[] } {
  checkShape(SRC, src.rows, src.cols);
  const kp = Math.ceil(src.cols / 128) * 128;
  const bits = elementPlan(resolveElement(src.element)).bits;
  const rowBytes = bits >= 1 && bits <= 8 ? slicedRowBytes(kp, bits) : 0;
  const data = mem.alloc(src.rows * rowBytes);
  const allocations = [data];
  try {
    const parts = repackSliced(src, (r, b) => mem.u8(data + r * rowBytes, rowBytes).set(b));
    const desc = parts.desc;
    desc.data = data;
    // the int8 path is what interleaving serves: weights without one keep their rows as stored
    if (interleave && parts.modes.includes('q8')) {
      const tiles = Math.floor(src.rows / SLICED_TILE_ROWS);
      const tb = SLICED_TILE_ROWS * rowBytes;
      for (let t = 0; t < tiles; t++) interleaveSlicedTile(mem.u8(data + t * tb, tb), rowBytes, bits);
      desc.interleave = tiles > 0 ? SLICED_TILE_ROWS : 0;
    }
    let bytes = src.rows * rowBytes;
    for (const [name, b] of parts.regions) {
      const p = mem.alloc(b.length);
      allocations.push(p);
      mem.u8(p, b.length).set(b);
      bytes += b.length;
      desc[name] = p;
    }
    return { desc, allocations, bytes, modes: parts.modes };
  } catch (e) {
    for (const p of allocations) mem.release(p);
    throw e;
  }
}

/** Reference: the scale of group g of row r (kernel memory bytes, descriptor). */
export function scaleOf(bytes: Uint8Array, d: Desc, r: number, g: number): number {
  const i = paramIndex(d, r, g);
  const p = d.scales;
  switch (d.scaleKind) {
    case SCALE_KIND.f32:
      return new DataView(bytes.buffer, bytes.byteOffset).getFloat32(p + 4 * i, true);
    case SCALE_KIND.f16:
      return f16BitsToF32(bytes[p + 2 * i]! | (bytes[p + 2 * i + 1]! << 8));
    case SCALE_KIND.bf16:
      return bf16BitsToF32(bytes[p + 2 * i]! | (bytes[p + 2 * i + 1]! << 8));
    case SCALE_KIND.e8m0:
      return 2 ** (bytes[p + i]! - 127);
    case SCALE_KIND.e4m3:
      return fr(floatBitDecode(bytes[p + i]!, 20, 2 ** 120, 7, 8) * d.tensorScale);
    default:
      return 1;
  }
}

/** Reference: the zero code of group g of row r. */
export function zeroOf(bytes: Uint8Array, d: Desc, r: number, g: number): number {
  if (d.zeroKind === ZERO_KIND.const) return d.zc;
  const i = paramIndex(d, r, g);
  return d.zeroKind === ZERO_KIND.byte
    ? bytes[d.zeros + i]!
    : (bytes[d.zeros + (i >> 1)]! >> (4 * (i & 1))) & 15;
}

/**
 * Reference decoder of row r of a sliced weight: out[k] = the weight's value, float32-rounded exactly as
 * src/quant dequantizes: s * (c - z) for integers, s * T[c] (+ offset, a second rounding) otherwise.
 */
export function decodeSlicedRow(
  bytes: Uint8Array,
  d: Desc,
  values: Float32Array,
  r: number,
  out: Float64Array,
): void {
  const row = storedSlicedRow(bytes, d, r);
  for (let k = 0; k < d.kp; k++) {
    const g = Math.min(Math.floor(k / d.group), d.ngroups - 1);
    const c = getSlicedCode(row, (k >> 7) * 16 * d.bits, k & 127, d.bits);
    const s = scaleOf(bytes, d, r, g);
    if (d.elem === ELEM.int) out[k] = fr((c - zeroOf(bytes, d, r, g)) * s);
    else {
      const v = fr(values[c]! * s);
      const o = d.offsets + 2 * paramIndex(d, r, g);
      out[k] = d.offsets ? fr(v + f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8))) : v;
    }
  }
}

/**
 * Bit-plane lookup-table layout (T-MAC) for integer weights of 1..4 bits: native/kernels/lut.h has the
 * byte diagram and the kernels. Rows come in tiles of 16 (a matrix whose rows are not a multiple of 16 is
 * padded with zero rows: at most 15 rows more), K in blocks of 32; scales and zero codes are stored
 * [tile][group][16 rows] in their stored type (zero codes one byte each).
 *
 * Activation mode 'lut8' quantizes, per block of 32 activations, the eight 16-entry tables of sums of four
 * activations to int8 with one scale dt (T-MAC's table quantization, as onnxruntime's LUT path does);
 * `lutActivationsReference` computes the same tables bit for bit, and the error every looked-up entry
 * carries is at most dt / 2 (budget.ts). Mode 'q8' runs the exact int8 dot on the same weights.
 */
import { MixqError } from '../core/errors.ts';
import { roundTiesToEven } from './activations.ts';
import { elementPlan } from './elements.ts';
import { type Desc, emptyDesc, LAYOUT, SCALE_KIND, ZERO_KIND } from './layout.ts';
import type { KernelMemory } from './memory.ts';
import { getSlicedCode, repackSliced, resolveElement, scaleOf, zeroOf } from './sliced.ts';
import { checkShape, type MixqSource } from './source.ts';

const fr = Math.fround;

/** Bytes of one 16-row tile of b-bit codes, K padded to kp (a multiple of 32). */
export function lutTileBytes(kp: number, bits: number): number {
  return (kp / 32) * 64 * bits;
}

/** Byte offset and bit of plane p of (row i of the tile, column k) in a tile. */
function lutBit(i: number, k: number, p: number, bits: number): [number, number] {
  const blk = k >> 5;
  const quad = (k >> 2) & 7;
  const t = k & 3;
  const jj = quad >> 1;
  const sh = (quad & 1) * 4 + t;
  const base = blk * 64 * bits;
  if (p < 2 * (bits >> 1)) {
    const pair = p >> 1;
    return [base + 128 * pair + 64 * (i >> 3) + 16 * jj + 2 * (i & 7) + (p & 1), sh];
  }
  return [base + 128 * (bits >> 1) + 16 * jj + i, sh];
}

/**
 * Why a weight cannot take the lookup-table layout, or undefined when it can: integer elements of 1..4
 * bits, scaled per row or per group of a multiple of 32 weights (the kernels scale blocks of 32).
 */
export function lutMisfit(
  src: Pick<MixqSource, 'element' | 'groups' | 'cols'>,
): { field: string; got: string; expected: string } | undefined {
  const spec = resolveElement(src.element);
  if (spec.kind !== 'int' || elementPlan(spec).bits > 4)
    return {
      field: 'element',
      got: spec.name,
      expected: 'an integer format of 1..4 bits (the lookup-table kernels)',
    };
  if (typeof src.groups === 'number' && src.groups < src.cols && src.groups % 32 !== 0)
    return {
      field: 'groups',
      got: `group size ${src.groups}`,
      expected: "a multiple of 32 or 'row' (the lookup-table kernels scale blocks of 32)",
    };
  return undefined;
}

/**
 * Prepares an int1..int4 mixq weight for the lookup-table kernels. The sliced repacking validates the
 * source and decodes scales and zero codes; codes are then moved into bit planes tile by tile.
 */
export function prepareLut(
  mem: KernelMemory,
  src: MixqSource,
): { desc: Desc; allocations: number[]; bytes: number; modes: readonly ('lut8' | 'q8')[] } {
  const source = 'kernels: lookup-table weight';
  checkShape(source, src.rows, src.cols);
  const misfit = lutMisfit(src);
  if (misfit) throw new MixqError(misfit.got, { source, field: misfit.field, expected: misfit.expected });
  const spec = resolveElement(src.element);
  const bits = elementPlan(spec).bits;
  const rows = src.rows;
  const tiles = Math.ceil(rows / 16);
  // the sliced repack gives codes (kp = K rounded to 128), scales and zero codes in row layout
  const kpS = Math.ceil(src.cols / 128) * 128;
  const kp = Math.ceil(src.cols / 32) * 32;
  const tileBytes = lutTileBytes(kp, bits);
  const data = mem.calloc(tiles * tileBytes);
  const allocations = [data];
  try {
    const parts = repackSliced(
      src,
      (r, row) => {
        const t = r >> 4;
        const i = r & 15;
        const out = mem.u8(data + t * tileBytes, tileBytes);
        for (let k = 0; k < src.cols; k++) {
          const c = getSlicedCode(row, (k >> 7) * 16 * bits, k & 127, bits);
          for (let p = 0; p < bits; p++)
            if ((c >> p) & 1) {
              const [o, sh] = lutBit(i, k, p, bits);
              out[o]! |= 1 << sh;
            }
        }
      },
      16,
      true,
    );
    const sd = parts.desc;
    const ngroups = sd.ngroups;
    const group = sd.group >= kpS ? kp : sd.group;
    // scales and zero codes come tiled [tile][group][16] (zero codes one byte each) from the repack
    const scales = parts.regions.get('scales') ?? null;
    const zeros = parts.regions.get('zeros') ?? null;
    // fp16 scales all with a clear sign bit (native/kernels/lut.h lut_tile_g32 converts only those)
    let scaleNonneg = 0;
    if (scales && sd.scaleKind === SCALE_KIND.f16) {
      scaleNonneg = 1;
      for (let i = 1; i < scales.length; i += 2) if (scales[i]! & 0x80) scaleNonneg = 0;
    }
    const desc = emptyDesc();
    Object.assign(desc, {
      layout: LAYOUT.lut,
      rows,
      cols: src.cols,
      kp,
      rowBytes: tileBytes,
      bits,
      group,
      ngroups,
      scaleKind: sd.scaleKind,
      tensorScale: sd.tensorScale,
      zeroKind: zeros ? ZERO_KIND.byte : ZERO_KIND.const,
      zc: sd.zc,
      aux: 16,
      scaleNonneg,
      elem: sd.elem,
      data,
    });
    let bytes = tiles * tileBytes;
    for (const [name, b] of [
      ['scales', scales],
      ['zeros', zeros],
    ] as const) {
      if (!b) continue;
      const p = mem.alloc(b.length);
      allocations.push(p);
      mem.u8(p, b.length).set(b);
      desc[name] = p;
      bytes += b.length;
    }
    return { desc, allocations, bytes, modes: ['lut8', 'q8'] };
  } catch (e) {
    for (const p of allocations) mem.release(p);
    throw e;
  }
}

/** Scale and zero code of group g of row r (tiled [tile][group][16], desc.aux = 16). */
function lutParam(bytes: Uint8Array, d: Desc, r: number, g: number): { s: number; z: number } {
  return { s: scaleOf(bytes, d, r, g), z: zeroOf(bytes, d, r, g) };
}

/** Code of row r, column k of a LUT weight. */
export function lutCode(bytes: Uint8Array, d: Desc, r: number, k: number): number {
  const base = d.data + (r >> 4) * d.rowBytes;
  let c = 0;
  for (let p = 0; p < d.bits; p++) {
    const [o, sh] = lutBit(r & 15, k, p, d.bits);
    c |= ((bytes[base + o]! >> sh) & 1) << p;
  }
  return c;
}

/** Reference decoder of row r: s * (c - z), float32. */
export function decodeLutRow(bytes: Uint8Array, d: Desc, r: number, out: Float64Array): void {
  for (let k = 0; k < d.kp; k++) {
    const g = Math.min(Math.floor(k / d.group), d.ngroups - 1);
    const { s, z } = lutParam(bytes, d, r, g);
    out[k] = fr((lutCode(bytes, d, r, k) - z) * s);
  }
}

/** The int8 tables of act_lut for kp float32 activations (bit for bit). */
export interface LutActivations {
  /** [kp/32][8][16] int8 tables. */
  readonly tables: Int8Array;
  /** Table scale per block of 32. */
  readonly dt: Float32Array;
  /** Sum over the block's 8 quads of entry 15. */
  readonly s15: Int32Array;
}

export function lutActivationsReference(x: Float32Array): LutActivations {
  const nb = x.length / 32;
  const tables = new Int8Array(nb * 128);
  const dt = new Float32Array(nb);
  const s15 = new Int32Array(nb);
  const T = new Float32Array(128);
  for (let b = 0; b < nb; b++) {
    let m = 0;
    for (let j = 0; j < 8; j++) {
      const q = 32 * b + 4 * j;
      const s01 = [0, x[q]!, x[q + 1]!, fr(x[q]! + x[q + 1]!)];
      const s23 = [0, x[q + 2]!, x[q + 3]!, fr(x[q + 2]! + x[q + 3]!)];
      for (let idx = 0; idx < 16; idx++) {
        const v = fr(s01[idx & 3]! + s23[idx >> 2]!);
        T[16 * j + idx] = v;
        const a = Math.abs(v);
        m = Number.isNaN(a) || Number.isNaN(m) ? Number.NaN : Math.max(m, a);
      }
    }
    const d = fr(m / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    dt[b] = d;
    for (let e = 0; e < 128; e++) {
      const v = fr(T[e]! * id);
      const q = Number.isNaN(v) ? 0 : Math.max(-127, Math.min(127, roundTiesToEven(v)));
      tables[128 * b + e] = q;
      if ((e & 15) === 15) s15[b]! += q;
    }
  }
  return { tables, dt, s15 };
}

/**
 * Reference of the 'lut8' product of one row: sum over blocks of s * dt * (sum_p 2^p sum_j Tq[idx] - z * S15),
 * in float64 (the kernel sums in float32: budget.ts), with the bound of the table quantization error.
 */
export function lutRowReference(
  bytes: Uint8Array,
  d: Desc,
  a: LutActivations,
  r: number,
): { y: number; mag: number; tableError: number } {
  let y = 0;
  let mag = 0;
  let err = 0;
  for (let b = 0; b < d.kp / 32; b++) {
    const g = Math.min(Math.floor((32 * b) / d.group), d.ngroups - 1);
    const { s, z } = lutParam(bytes, d, r, g);
    let L = 0;
    for (let j = 0; j < 8; j++) {
      for (let p = 0; p < d.bits; p++) {
        let idx = 0;
        for (let t = 0; t < 4; t++) idx |= ((lutCode(bytes, d, r, 32 * b + 4 * j + t) >> p) & 1) << t;
        L += 2 ** p * a.tables[128 * b + 16 * j + idx]!;
      }
    }
    L -= z * a.s15[b]!;
    const term = s * a.dt[b]! * L;
    y += term;
    mag += Math.abs(term);
    // every entry off by <= dt / 2: 8 quads x (sum of plane weights + |z|)
    err += Math.abs(s) * a.dt[b]! * 0.5 * 8 * (2 ** d.bits - 1 + Math.abs(z));
  }
  return { y, mag, tableError: err };
}

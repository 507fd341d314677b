/**
 * The weight descriptor: 32 little-endian 32-bit fields in kernel memory that tell a kernel where a
 * prepared weight lives and how to decode it. Field for field the C struct `wdesc` of
 * native/kernels/common.h (a change here is a change there).
 */

/** Kernel layouts (common.h LAYOUT_*). */
export const LAYOUT = { f32: 1, f16: 2, bf16: 3, sliced: 4, ggml: 5, lut: 6 } as const;
export type LayoutName = keyof typeof LAYOUT;
/** How a group scale is stored (common.h SCALE_*). */
export const SCALE_KIND = { one: 0, f32: 1, f16: 2, bf16: 3, e8m0: 4, e4m3: 5 } as const;
export type ScaleKind = keyof typeof SCALE_KIND;
/** How zero codes are stored (common.h ZERO_*). */
export const ZERO_KIND = { const: 0, nibble: 1, byte: 2 } as const;
/** How element codes become values (common.h ELEM_*). */
export const ELEM = { int: 0, float: 1, lut4: 2, table: 3 } as const;
/** How the int8 path multiplies codes (common.h DOT_*): 0..63, 0..127, |c| <= 127 signed, any byte. */
export const DOT = { u6: 0, u7: 1, s8: 2, full8: 3 } as const;

/** Bytes of one descriptor. */
export const DESC_BYTES = 128;

export interface Desc {
  layout: number;
  rows: number;
  cols: number;
  kp: number;
  data: number;
  rowBytes: number;
  bits: number;
  group: number;
  ngroups: number;
  scales: number;
  scaleKind: number;
  tensorScale: number;
  zeros: number;
  zeroKind: number;
  zc: number;
  elem: number;
  table: number;
  qtable: number;
  qunit: number;
  qoffset: number;
  offsets: number;
  fbits: number;
  fmul: number;
  fsign: number;
  dotClass: number;
  aux: number;
  /** Sliced: 4 when the full 4-row tiles of `data` are interleaved (native/kernels/sliced.h), else 0. */
  interleave: number;
  /** Lookup-table layout: 1 when every fp16 scale's sign bit is clear (native/kernels/lut.h lut_tile_g32), else 0. */
  scaleNonneg: number;
}

/** Field order of the C struct; the float fields are float32. */
const FIELDS: readonly (keyof Desc)[] = [
  'layout',
  'rows',
  'cols',
  'kp',
  'data',
  'rowBytes',
  'bits',
  'group',
  'ngroups',
  'scales',
  'scaleKind',
  'tensorScale',
  'zeros',
  'zeroKind',
  'zc',
  'elem',
  'table',
  'qtable',
  'qunit',
  'qoffset',
  'offsets',
  'fbits',
  'fmul',
  'fsign',
  'dotClass',
  'aux',
  'interleave',
  'scaleNonneg',
];
const FLOAT_FIELDS = new Set<keyof Desc>(['tensorScale', 'qunit', 'fmul']);

/** A descriptor with every field at its neutral value. */
export function emptyDesc(): Desc {
  return {
    layout: 0,
    rows: 0,
    cols: 0,
    kp: 0,
    data: 0,
    rowBytes: 0,
    bits: 0,
    group: 0,
    ngroups: 1,
    scales: 0,
    scaleKind: SCALE_KIND.one,
    tensorScale: 1,
    zeros: 0,
    zeroKind: ZERO_KIND.const,
    zc: 0,
    elem: ELEM.int,
    table: 0,
    qtable: 0,
    qunit: 1,
    qoffset: 0,
    offsets: 0,
    fbits: 0,
    fmul: 1,
    fsign: -1,
    dotClass: DOT.u6,
    aux: 0,
    interleave: 0,
    scaleNonneg: 0,
  };
}

/** Writes a descriptor at byte address p of `buffer`. */
export function writeDesc(buffer: ArrayBufferLike, p: number, d: Desc): void {
  const v = new DataView(buffer, p, DESC_BYTES);
  for (let i = 0; i < DESC_BYTES; i += 4) v.setInt32(i, 0, true);
  FIELDS.forEach((f, i) => {
    if (FLOAT_FIELDS.has(f)) v.setFloat32(4 * i, d[f], true);
    else v.setInt32(4 * i, d[f], true);
  });
}

/** Reads a descriptor back (the references read what the kernels read). */
export function readDesc(buffer: ArrayBufferLike, p: number): Desc {
  const v = new DataView(buffer, p, DESC_BYTES);
  const d = emptyDesc();
  FIELDS.forEach((f, i) => {
    d[f] = FLOAT_FIELDS.has(f) ? v.getFloat32(4 * i, true) : v.getInt32(4 * i, true);
  });
  return d;
}

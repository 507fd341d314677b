/**
 * How the kernels turn an element code into its value, chosen once per format and checked against the
 * formats library (valueTable) over every code, so a kernel can never decode a code differently from
 * mixq's own codec:
 *
 * - 'int'   grid value c - z: integer formats (codes are offset binary, src/quant/element.ts).
 * - 'float' minifloats: the code's magnitude shifted into float32's exponent and mantissa fields, times
 *           2^(127 - bias), sign OR-ed in. Exact for normals and subnormals (a float32 subnormal times a
 *           power of two is exact while the result is representable, which every value of a <= 8-bit
 *           format is). Used when it equals valueTable on every finite code.
 * - 'lut4'  codebooks of <= 4 bits (nf4, ...): the float32 table as four 16-byte planes, one swizzle each.
 * - 'table' anything else: the float32 table read one code at a time.
 *
 * int8 path of table formats: when every value is an integer multiple of a power of two `qunit` and the
 * multiples span at most 127 (fp4_e2m1fn: 2 * value in -12..12; fp6_e2m3fn: 8 * value in -60..60), the
 * kernel looks codes up in an int8 table of (value / qunit + qoffset) >= 0 and runs the integer dot.
 */
import { formatBits, valueTable } from '../formats/index.ts';
import type { FormatSpec } from '../formats/spec.ts';
import { DOT, ELEM } from './layout.ts';

export interface ElementPlan {
  readonly spec: FormatSpec;
  readonly bits: number;
  readonly elem: number;
  /** Value of every code (NaN where the code is not a finite value). */
  readonly values: Float32Array;
  /** Integer formats: grid value of code 0 (codes are offset binary). */
  readonly codeBase: number;
  /** float: shift of the magnitude into float32's fields, 2^(127 - bias), sign bit (-1: unsigned). */
  readonly fbits: number;
  readonly fmul: number;
  readonly fsign: number;
  /** int8 path of tables: int8 table (value / qunit + qoffset), or undefined when the format has none. */
  readonly qtable?: Int8Array;
  readonly qunit: number;
  readonly qoffset: number;
  /** int8 path: DOT.u6 / u7 for codes (or table entries) up to 63 / 127. */
  readonly dotClass: number;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bitsF32(u: number): number {
  u32[0] = u >>> 0;
  return f32[0]!;
}

/** The kernel's float decoding of code c (see the header), in float32 steps. */
export function floatBitDecode(c: number, fbits: number, fmul: number, fsign: number, bits: number): number {
  const magMask = fsign >= 0 ? (1 << fsign) - 1 : (1 << bits) - 1;
  const mag = Math.fround(bitsF32((c & magMask) << fbits) * fmul);
  return fsign >= 0 && (c >> fsign) & 1 ? -mag : mag;
}

/** The decoding plan of an element format of at most 8 bits. */
export function elementPlan(spec: FormatSpec): ElementPlan {
  const bits = formatBits(spec);
  const values = valueTable(spec);
  if (spec.kind === 'int') {
    const qmax = 2 ** (bits - 1) - 1;
    const codeBase = spec.signed ? (spec.narrow ? -qmax : -qmax - 1) : 0;
    return {
      spec,
      bits,
      elem: ELEM.int,
      values,
      codeBase,
      fbits: 0,
      fmul: 1,
      fsign: -1,
      qunit: 1,
      qoffset: 0,
      dotClass: bits <= 6 ? DOT.u6 : bits === 7 ? DOT.u7 : DOT.s8,
    };
  }
  let elem: number = bits <= 4 ? ELEM.lut4 : ELEM.table;
  let fbits = 0;
  let fmul = 1;
  let fsign = -1;
  if (spec.kind === 'float') {
    const M = spec.manBits;
    fbits = 23 - M;
    fmul = 2 ** (127 - spec.bias);
    fsign = spec.signed ? bits - 1 : -1;
    let same = Number.isFinite(fmul) && fmul > 0 && spec.expBits + M <= 8;
    for (let c = 0; same && c < values.length; c++) {
      const v = values[c]!;
      if (Number.isFinite(v) && !Object.is(floatBitDecode(c, fbits, fmul, fsign, bits), v)) same = false;
    }
    if (same) elem = ELEM.float;
  }
  const q = int8Table(values, bits);
  return {
    spec,
    bits,
    elem,
    values,
    codeBase: 0,
    fbits,
    fmul,
    fsign,
    ...(q ? { qtable: q.table } : {}),
    qunit: q?.unit ?? 1,
    qoffset: q?.offset ?? 0,
    dotClass: q && q.max <= 63 ? DOT.u6 : DOT.u7,
  };
}

/** The int8 table of a 4..6-bit table format, when its values allow one (see the header). */
function int8Table(
  values: Float32Array,
  bits: number,
): { table: Int8Array; unit: number; offset: number; max: number } | undefined {
  if (bits < 4 || bits > 6) return undefined;
  const finite = Array.from(values).filter((v) => Number.isFinite(v));
  for (let e = 0; e <= 24; e++) {
    const unit = 2 ** -e;
    const ints = finite.map((v) => v / unit);
    if (!ints.every((v) => Number.isInteger(v))) continue;
    const lo = Math.min(...ints);
    const hi = Math.max(...ints);
    const offset = lo < 0 ? -lo : 0;
    if (hi + offset > 127) return undefined;
    const table = new Int8Array(2 ** bits);
    for (let c = 0; c < table.length; c++) {
      const v = values[c]!;
      table[c] = Number.isFinite(v) ? v / unit + offset : offset;
    }
    return { table, unit, offset, max: hi + offset };
  }
  return undefined;
}

/** The four 16-byte planes of a <= 4-bit format's float32 table (byte k of the value of code c at 16k + c). */
export function lut4Planes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(64);
  const b = new Uint8Array(new Float32Array(Array.from(values, (v) => (Number.isFinite(v) ? v : 0))).buffer);
  for (let c = 0; c < values.length; c++) for (let k = 0; k < 4; k++) out[16 * k + c] = b[4 * c + k]!;
  return out;
}

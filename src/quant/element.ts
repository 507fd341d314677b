/**
 * Element grids: the set of values a quantized element can take, in "grid units" (before the scale).
 *
 * A quantizer maps x -> g = nearest grid value of (x / scale + zero) and back to scale * (g - zero).
 * Two grid kinds cover every element format of src/formats/spec.ts:
 * - 'int': the integers qmin..qmax (IntSpec). Rounding is round-half-to-even then clamp, the convention of
 *   torch.round / numpy.round that the GPTQ reference uses.
 * - 'table': a sorted list of representable values (FloatSpec minifloats, LutSpec codebooks such as nf4).
 *   Rounding is to the nearest table value, saturating at the ends (a quantizer never produces inf/NaN);
 *   ties go to the even code for signed minifloats (= IEEE round-to-nearest-even), else to the lower value.
 *
 * Float and codebook value tables come from the formats library (src/formats: valueTable, formatBits),
 * so every format of its registry (getFormat('fp4_e2m1fn'), 'nf4', custom 'e3m4', ...) can be an element.
 */
import { MixqError } from '../core/errors.ts';
import { formatBits, valueTable } from '../formats/index.ts';
import type { FormatSpec, IntSpec } from '../formats/spec.ts';

export interface IntGrid {
  readonly kind: 'int';
  readonly spec: FormatSpec;
  /** Bits per stored code. */
  readonly bits: number;
  /** Clamp range of grid values (a symmetric quantizer narrows [-2^(b-1), 2^(b-1)-1] to +-qmax). */
  readonly qmin: number;
  readonly qmax: number;
  /** Grid value of code 0 (codes are offset binary: g - codeBase). */
  readonly codeBase: number;
}

export interface TableGrid {
  readonly kind: 'table';
  readonly spec: FormatSpec;
  readonly bits: number;
  /** Representable finite values, ascending, -0 merged with +0. */
  readonly values: Float64Array;
  /** codes[i] = storage code of values[i]. */
  readonly codes: Uint32Array;
  /** Decoded value of each storage code (NaN for codes that are not finite values). */
  readonly codeValues: Float64Array;
  /** Ties to the even code (minifloat RNE) instead of to the lower value. */
  readonly tiesToEven: boolean;
  readonly qmin: number;
  readonly qmax: number;
}

export type ElementGrid = IntGrid | TableGrid;

/** Round half to even (torch.round, numpy.round, IEEE roundTiesToEven). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +inf
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Builds the grid of an element format. `elementGrid(getFormat('int4'))`, `elementGrid(getFormat('nf4'))`. */
export function elementGrid(spec: FormatSpec): ElementGrid {
  if (spec.kind === 'int') return intGrid(spec);
  const bits = formatBits(spec);
  if (bits > 16)
    throw new MixqError('element formats wider than 16 bits are not quantizer targets', {
      source: spec.name,
      field: 'bits',
      expected: '<= 16',
    });
  // signed minifloats round ties to the even code, like the formats library's nearest-even
  return tableGrid(spec, bits, Float64Array.from(valueTable(spec)), spec.kind === 'float' && spec.signed);
}

function intGrid(spec: IntSpec): IntGrid {
  if (!(spec.bits >= 1 && spec.bits <= 16))
    throw new MixqError('integer element width out of range', {
      source: spec.name,
      field: 'bits',
      expected: '1..16',
    });
  let qmin: number;
  let qmax: number;
  if (spec.signed) {
    qmax = 2 ** (spec.bits - 1) - 1;
    qmin = spec.narrow ? -qmax : -qmax - 1;
  } else {
    qmin = 0;
    qmax = 2 ** spec.bits - 1;
  }
  return { kind: 'int', spec, bits: spec.bits, qmin, qmax, codeBase: qmin };
}

function tableGrid(spec: FormatSpec, bits: number, codeValues: Float64Array, tiesToEven: boolean): TableGrid {
  const pairs: [number, number][] = [];
  const seen = new Set<number>();
  for (let c = 0; c < codeValues.length; c++) {
    const v = codeValues[c]!;
    if (!Number.isFinite(v)) continue;
    const key = v === 0 ? 0 : v; // merge -0 into +0; the +0 code (the lower one) is kept
    if (seen.has(key)) continue;
    seen.add(key);
    pairs.push([key, c]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const values = Float64Array.from(pairs, (p) => p[0]);
  const codes = Uint32Array.from(pairs, (p) => p[1]);
  return {
    kind: 'table',
    spec,
    bits,
    values,
    codes,
    codeValues,
    tiesToEven,
    qmin: values[0]!,
    qmax: values[values.length - 1]!,
  };
}

/** Nearest grid value to v (in grid units), saturating at the grid ends. */
export function roundToGrid(grid: ElementGrid, v: number): number {
  if (grid.kind === 'int') {
    const r = roundHalfEven(v);
    return Math.min(grid.qmax, Math.max(grid.qmin, r));
  }
  return grid.values[nearestIndex(grid, v)]!;
}

/** Index into grid.values of the value nearest to v (ties as documented at the top of this file). */
export function nearestIndex(grid: TableGrid, v: number): number {
  const vals = grid.values;
  const n = vals.length;
  if (!(v > vals[0]!)) return 0; // also catches NaN -> lowest value is not meaningful, but never inf
  if (v >= vals[n - 1]!) return n - 1;
  // binary search: vals[lo] <= v < vals[hi]
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (vals[mid]! <= v) lo = mid;
    else hi = mid;
  }
  const dLo = v - vals[lo]!;
  const dHi = vals[hi]! - v;
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  if (!grid.tiesToEven) return lo;
  // minifloat RNE: the magnitude whose code has an even mantissa LSB wins
  return (grid.codes[lo]! & 1) === 0 ? lo : hi;
}

/** Storage code of grid value g (g must be a grid value). */
export function gridToCode(grid: ElementGrid, g: number): number {
  if (grid.kind === 'int') return g - grid.codeBase; // offset binary: 0..2^bits-1
  return grid.codes[nearestIndex(grid, g)]!;
}

/** Grid value of storage code c. */
export function codeToGrid(grid: ElementGrid, c: number): number {
  if (grid.kind === 'int') return c + grid.codeBase;
  const v = grid.codeValues[c]!;
  return v === 0 ? 0 : v;
}

/**
 * The grid a symmetric quantizer uses: a two's-complement range loses its extra negative value so that
 * quantization is an odd function (x -> -x gives -q). Other grids are returned unchanged.
 */
export function symmetricGrid(grid: ElementGrid): ElementGrid {
  if (grid.kind === 'int' && grid.qmin < -grid.qmax) return { ...grid, qmin: -grid.qmax };
  return grid;
}

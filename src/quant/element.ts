/**
 * Element grids: the set of values a quantized element can take, in "grid units" (before the scale).
 *
 * A quantizer maps x -> g = nearest grid value of (x / scale + zero) and back to scale * (g - zero).
 * Two grid kinds cover every element format of src/formats/spec.ts:
 * - 'int': the integers qmin..qmax (IntSpec), with the zero point added after rounding, then clamped.
 * - 'table': the representable values of a float format or codebook (FloatSpec minifloats, LutSpec
 *   codebooks such as nf4), saturating at the ends (a quantizer never produces inf/NaN).
 * Rounding is the formats library's (src/formats: its codecs and rounding modes; nearest-even by default:
 * round-half-to-even for integers, as torch.round / numpy.round and the GPTQ reference, IEEE
 * round-to-nearest-even for minifloats, the even code for codebooks); quant keeps no rounding of its own.
 * A table grid's +0 and -0 are one value (grid values are signed zeros' +0; codes of zero are the +0 code).
 *
 * Float and codebook value tables come from the formats library (valueTable, formatBits), so every format
 * of its registry (getFormat('fp4_e2m1fn'), 'nf4', custom 'e3m4', ...) can be an element.
 */
import { MixqError } from '../core/errors.ts';
import { formatBits, nearestEvenEncoder, nearestEvenInt, valueTable } from '../formats/index.ts';
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
  readonly qmin: number;
  readonly qmax: number;
  /** The format's code nearest to v (formats' nearest-even, saturating); may be a -0 or NaN code. */
  readonly nearest: (v: number) => number;
  /** The grid value of each code: -0 as 0, a NaN code as the lowest value. */
  readonly codeGrid: Float64Array;
  /** The code of each code's grid value (a -0 code's is the +0 code). */
  readonly canonical: Uint32Array;
}

export type ElementGrid = IntGrid | TableGrid;

const grids = new WeakMap<FormatSpec, ElementGrid>();

/** The grid of an element format (built once per spec). `elementGrid(getFormat('int4'))`, `elementGrid(getFormat('nf4'))`. */
export function elementGrid(spec: FormatSpec): ElementGrid {
  let g = grids.get(spec);
  if (!g) grids.set(spec, (g = buildGrid(spec)));
  return g;
}

function buildGrid(spec: FormatSpec): ElementGrid {
  if (spec.kind === 'int') return intGrid(spec);
  const bits = formatBits(spec);
  if (bits > 16)
    throw new MixqError('element formats wider than 16 bits are not quantizer targets', {
      source: spec.name,
      field: 'bits',
      expected: '<= 16',
    });
  return tableGrid(spec, bits, Float64Array.from(valueTable(spec)));
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

function tableGrid(spec: FormatSpec, bits: number, codeValues: Float64Array): TableGrid {
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
  const codeOf = new Map(pairs.map(([v, c]) => [v, c] as const));
  const codeGrid = Float64Array.from(codeValues, (v) => (v === 0 ? 0 : v === v ? v : values[0]!));
  const canonical = Uint32Array.from(codeGrid, (v) => codeOf.get(v)!);
  return {
    kind: 'table',
    spec,
    bits,
    values,
    codes,
    codeValues,
    qmin: values[0]!,
    qmax: values[values.length - 1]!,
    nearest: nearestEvenEncoder(spec),
    codeGrid,
    canonical,
  };
}

/** Nearest grid value to v (in grid units), saturating at the grid ends. */
export function roundToGrid(grid: ElementGrid, v: number): number {
  if (grid.kind === 'int') return Math.min(grid.qmax, Math.max(grid.qmin, nearestEvenInt(v)));
  return tableValue(grid, grid.nearest(v));
}

/** The grid value of a table code: -0 as 0, a NaN code (a NaN input) as the lowest value. */
export function tableValue(grid: TableGrid, c: number): number {
  return grid.codeGrid[c]!;
}

/** Storage code of grid value g (g must be a grid value; zero's code is the +0 code). */
export function gridToCode(grid: ElementGrid, g: number): number {
  if (grid.kind === 'int') return g - grid.codeBase; // offset binary: 0..2^bits-1
  return grid.canonical[grid.nearest(g)]!;
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

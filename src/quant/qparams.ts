/**
 * Quantizer configuration and the choice of per-group parameters (scale, zero point).
 *
 * A quantizer = element format + granularity + symmetric/asymmetric + scale rule + scale storage format.
 * Dequantized value:  int grid:   x^ = scale * (g - zero)       (zero an integer grid value)
 *                     table grid: x^ = scale * g + offset        (offset 0 when symmetric, stored as fp16)
 *
 * Range conventions (as in GPTQ's quant.py, so its reference is reproduced bit for bit):
 * - the quantized range always contains 0: xmin = min(min x, 0), xmax = max(max x, 0);
 * - symmetric: [-amax, amax]. On an unsigned int grid 0..qmax this uses the mid zero point
 *   (qmax + 1) / 2 and scale = 2 amax / qmax (GPTQ "sym"); on a signed grid zero = 0, scale = amax / qmax;
 *   on a table grid scale = amax / max(qmax, -qmin);
 *   a symmetric signed int grid is clamped to +-qmax (see element.symmetricGrid) so it is an odd function;
 * - asymmetric int: scale = (xmax - xmin) / (qmax - qmin), zero = qmin + round(-xmin / scale);
 * - a group that is all zero uses the range [-1, 1] (GPTQ) so no scale is ever 0;
 * - int arithmetic is float32 step by step (fround) and round-half-even, like torch on float32.
 *
 * Scale rules: 'minmax'; 'percentile' (clip at the p-th percentile); 'mse' (GPTQ's grid over the clipping
 * ratio 1, 1 - 1/grid, ... down to minRatio, minimising sum w |x - x^|^norm); 'float-max' (LLM-FP4, Liu et
 * al. 2023: search the maximum value, optionally restricted to powers of two = the exponent-bias search).
 */
import { type BlockScaling, blockScalingFor } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import { nearestEvenInt, ROUNDINGS } from '../formats/index.ts';
import type { FormatSpec, Rounding } from '../formats/spec.ts';
import { type ElementGrid, elementGrid, roundToGrid, symmetricGrid } from './element.ts';
import { type Granularity, type GroupLayout, groupLayout, groupMembers } from './granularity.ts';
import {
  checkScaleFormat,
  isIndependent,
  roundScaleIndependent,
  type ScaleFormat,
  type StoredScales,
  storeScales,
} from './scale-format.ts';
import { f16BitsToF32, f32ToF16Bits } from '../core/bits.ts';

export type ScaleRule =
  | { readonly kind: 'minmax' }
  /** Clip at the p-th percentile of |x| (symmetric) or at the (100-p)/p percentiles of x. p in (0, 100]. */
  | { readonly kind: 'percentile'; readonly p: number }
  /** Grid over clipping ratios 1 - i/grid down to minRatio; error sum w |x - x^|^norm (default 100, 0.2, 2). */
  | { readonly kind: 'mse'; readonly grid?: number; readonly minRatio?: number; readonly norm?: number }
  /**
   * LLM-FP4 maximum search: candidate maxima amax * r, r in linspace(minRatio, maxRatio, grid) (defaults
   * 0.3, 1.0, 50); with `powerOfTwo` the scale is 2^k (exponent-bias search), k around log2(amax / qmax).
   */
  | {
      readonly kind: 'float-max';
      readonly grid?: number;
      readonly minRatio?: number;
      readonly maxRatio?: number;
      readonly powerOfTwo?: boolean;
    };

export interface QuantizerConfig {
  /** Element format (an IntSpec, FloatSpec or LutSpec record from src/formats). */
  readonly element: FormatSpec;
  readonly granularity: Granularity;
  readonly symmetric: boolean;
  /** Default 'minmax'. */
  readonly scaleRule?: ScaleRule;
  /** Default 'fp32'. */
  readonly scaleFormat?: ScaleFormat;
  /**
   * Rounding of elements to the grid in quantize / fakeQuant, in the formats library's vocabulary and
   * semantics (src/formats/rounding.ts: nearest-even, nearest-away, toward-zero, up, down, stochastic,
   * r-bit stochastic with `randomBits`, stochastic-equal); stochastic modes draw one 32-bit number per
   * element, in element order, from a generator seeded with `seed` (default 0). Parameter searches always
   * round to nearest-even. Default 'nearest-even'.
   */
  readonly rounding?: Rounding;
  readonly randomBits?: number;
  readonly seed?: number;
}

export interface QParams {
  readonly config: QuantizerConfig;
  readonly shape: readonly number[];
  readonly grid: ElementGrid;
  readonly layout: GroupLayout;
  /** Stored scale per group (what dequantization uses). */
  readonly scale: Float32Array;
  /** Integer grids: zero point per group in grid units (mid point or 0 when symmetric). */
  readonly zero: Float32Array;
  /** Table grids: additive offset per group (0 when symmetric). */
  readonly offset: Float32Array;
  /** Storage form of the scales (see scale-format.ts). */
  readonly scaleCodes: Uint32Array;
  readonly scaleShared: Float32Array;
  /**
   * The block format (src/blocks: MX, NVFP4) the configuration is, if any: its scales are that format's
   * and elements are divided as it divides them.
   */
  readonly block?: BlockScaling;
}

/**
 * The QParams record from its stored parts (the one place one is built): `stored` is what the scales are
 * stored as (storeScales' result, or codes read from a file with loadScales' values), `zero` / `offset`
 * per group. The grid and group layout follow from the configuration and shape.
 */
export function qparamsOf(
  cfg: QuantizerConfig,
  shape: readonly number[],
  stored: StoredScales,
  zero: Float32Array,
  offset: Float32Array,
  layout: GroupLayout = groupLayout(shape, cfg.granularity),
  grid: ElementGrid = quantizerGrid(cfg),
): QParams {
  const block = blockOf(cfg);
  return {
    config: cfg,
    shape: [...shape],
    grid,
    layout,
    scale: stored.scale,
    zero,
    offset,
    scaleCodes: stored.codes,
    scaleShared: stored.shared,
    ...(block ? { block } : {}),
  };
}

/**
 * The block format a quantizer is (blocks/registry.ts blockScalingFor): a symmetric quantizer in groups
 * with the min-max rule whose element, scale storage and group size are an MX format's (E8M0, the spec's
 * floor rule) or NVFP4's.
 */
export function blockOf(cfg: QuantizerConfig): BlockScaling | undefined {
  const g = cfg.granularity;
  const rule = cfg.scaleRule?.kind ?? 'minmax';
  if (g.kind !== 'group' || !cfg.symmetric || rule !== 'minmax') return undefined;
  return blockScalingFor(cfg.element, typeof cfg.scaleFormat === 'string' ? cfg.scaleFormat : '', g.size);
}

export interface ChooseOptions {
  /** Per-element importance weights for the 'mse' / 'float-max' searches (same length as x). */
  readonly weights?: Float32Array;
}

const f16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

/** The element grid a quantizer configuration uses (narrowed to +-qmax when symmetric). */
export function quantizerGrid(cfg: QuantizerConfig): ElementGrid {
  const g = elementGrid(cfg.element);
  if (!cfg.symmetric) return g;
  const sg = symmetricGrid(g);
  if (!(sg.qmax > 0))
    throw new MixqError(`format ${cfg.element.name} has no positive values for a symmetric quantizer`, {
      field: 'symmetric',
      expected: 'false, or a format with positive values',
    });
  return sg;
}

/** Parameters of one group from a clipped range; `roundScale` turns a raw scale into its stored value. */
export function paramsFromRange(
  grid: ElementGrid,
  symmetric: boolean,
  xmin: number,
  xmax: number,
  roundScale: (s: number) => number,
): { scale: number; zero: number; offset: number } {
  const fr = Math.fround;
  xmin = Math.min(xmin, 0);
  xmax = Math.max(xmax, 0);
  if (symmetric) {
    const amax = Math.max(-xmin, xmax);
    xmax = amax;
    xmin = -amax;
  }
  if (xmin === 0 && xmax === 0) {
    xmin = -1;
    xmax = 1;
  }
  if (grid.kind === 'int') {
    if (symmetric) {
      if (grid.qmin === 0) {
        const scale = roundScale(fr(fr(xmax - xmin) / grid.qmax));
        return { scale, zero: (grid.qmax + 1) / 2, offset: 0 };
      }
      return { scale: roundScale(fr(xmax / grid.qmax)), zero: 0, offset: 0 };
    }
    const scale = roundScale(fr(fr(xmax - xmin) / (grid.qmax - grid.qmin)));
    let zero = grid.qmin + nearestEvenInt(fr(-xmin / scale));
    if (zero > grid.qmax) zero = grid.qmax; // only when the stored scale rounded far down
    return { scale, zero, offset: 0 };
  }
  if (symmetric) {
    const top = Math.max(grid.qmax, -grid.qmin);
    return { scale: roundScale(fr(xmax / top)), zero: 0, offset: 0 };
  }
  const scale = roundScale(fr((xmax - xmin) / (grid.qmax - grid.qmin)));
  return { scale, zero: 0, offset: f16(xmin - scale * grid.qmin) };
}

/** Fake-quantizes one value with group parameters (the single definition every path uses). */
export function fakeQuantValue(
  grid: ElementGrid,
  scale: number,
  zero: number,
  offset: number,
  x: number,
): number {
  const fr = Math.fround;
  if (grid.kind === 'int') {
    let q = nearestEvenInt(fr(x / scale)) + zero;
    q = Math.min(grid.qmax, Math.max(grid.qmin, q));
    return fr(scale * (q - zero));
  }
  const g = roundToGrid(grid, (x - offset) / scale);
  return fr(fr(scale * g) + offset);
}

/** Dequantized value of grid value g with group parameters. */
export function gridToValue(
  grid: ElementGrid,
  scale: number,
  zero: number,
  offset: number,
  g: number,
): number {
  const fr = Math.fround;
  return grid.kind === 'int' ? fr(scale * (g - zero)) : fr(fr(scale * g) + offset);
}

/** Grid value (before the scale) of x with group parameters. */
export function gridValue(grid: ElementGrid, scale: number, zero: number, offset: number, x: number): number {
  if (grid.kind === 'int') {
    const q = nearestEvenInt(Math.fround(x / scale)) + zero;
    return Math.min(grid.qmax, Math.max(grid.qmin, q));
  }
  return roundToGrid(grid, (x - offset) / scale);
}

function validate(cfg: QuantizerConfig, x: Float32Array, shape: readonly number[]): void {
  const n = shape.reduce((p, d) => p * d, 1);
  if (n !== x.length)
    throw new MixqError(`data length ${x.length} does not match shape [${shape}]`, {
      field: 'shape',
      expected: String(x.length),
    });
  checkScaleFormat(cfg.scaleFormat ?? 'fp32');
  if (cfg.scaleFormat === 'none' && !cfg.symmetric)
    throw new MixqError('scale format none (no stored scale) with an asymmetric quantizer', {
      field: 'symmetric',
      expected: "true with scaleFormat 'none'",
    });
  const r = cfg.scaleRule;
  if (r?.kind === 'percentile' && !(r.p > 0 && r.p <= 100))
    throw new MixqError('percentile out of range', { field: 'scaleRule.p', expected: '(0, 100]' });
  if (cfg.rounding !== undefined && !ROUNDINGS.includes(cfg.rounding))
    throw new MixqError(`unknown rounding '${String(cfg.rounding)}'`, {
      field: 'rounding',
      expected: ROUNDINGS.join(', '),
    });
}

/**
 * Chooses scale / zero point of every group of x.
 * Example: `chooseQParams(w, [64, 128], { element: intSpec(4, false), granularity: { kind: 'group', axis: 1,
 * size: 32 }, symmetric: false })`.
 */
export function chooseQParams(
  x: Float32Array,
  shape: readonly number[],
  cfg: QuantizerConfig,
  opts: ChooseOptions = {},
): QParams {
  validate(cfg, x, shape);
  const layout = groupLayout(shape, cfg.granularity);
  return chooseQParamsWithLayout(x, shape, cfg, layout, opts);
}

/** chooseQParams with a precomputed layout (callers that quantize many tensors of one shape). */
export function chooseQParamsWithLayout(
  x: Float32Array,
  shape: readonly number[],
  cfg: QuantizerConfig,
  layout: GroupLayout,
  opts: ChooseOptions = {},
): QParams {
  const grid = quantizerGrid(cfg);
  const block = blockOf(cfg);
  if (block) return blockQParams(x, shape, cfg, layout, grid, block);
  const sf = cfg.scaleFormat ?? 'fp32';
  const roundScale = isIndependent(sf) ? (s: number) => roundScaleIndependent(sf, s) : (s: number) => s;
  const rule = cfg.scaleRule ?? { kind: 'minmax' };
  const nG = layout.nGroups;
  // the chosen (clipped) range of each group
  const lo = new Float64Array(nG);
  const hi = new Float64Array(nG);
  if (rule.kind === 'minmax') {
    lo.fill(0);
    hi.fill(0);
    const idx = layout.index;
    const run = layout.run;
    if (run > 0) {
      for (let g = 0, i0 = 0; i0 < x.length; g++, i0 += run) {
        let a = 0;
        let b = 0;
        for (let i = i0; i < i0 + run; i++) {
          const v = x[i]!;
          if (v < a) a = v;
          if (v > b) b = v;
        }
        lo[g] = a;
        hi[g] = b;
      }
    } else
      for (let i = 0; i < x.length; i++) {
        const g = idx[i]!;
        const v = x[i]!;
        if (v < lo[g]!) lo[g] = v;
        if (v > hi[g]!) hi[g] = v;
      }
  } else {
    const { offsets, members } = groupMembers(layout);
    const vals = new Float64Array(layout.maxSize);
    const wts = new Float64Array(vals.length);
    for (let g = 0; g < nG; g++) {
      const a = offsets[g]!;
      const n = offsets[g + 1]! - a;
      for (let k = 0; k < n; k++) {
        const e = members[a + k]!;
        vals[k] = x[e]!;
        wts[k] = opts.weights ? opts.weights[e]! : 1;
      }
      const r = chooseRange(grid, cfg.symmetric, rule, vals.subarray(0, n), wts.subarray(0, n), roundScale);
      lo[g] = r[0];
      hi[g] = r[1];
    }
  }
  // raw parameters, then the stored scale, then zero / offset recomputed from the stored scale
  const raw = new Float64Array(nG);
  for (let g = 0; g < nG; g++)
    raw[g] = paramsFromRange(grid, cfg.symmetric, lo[g]!, hi[g]!, roundScale).scale;
  const stored = storeScales(sf, raw);
  const zero = new Float32Array(nG);
  const offset = new Float32Array(nG);
  for (let g = 0; g < nG; g++) {
    const s = stored.scale[g]!;
    const p = paramsFromRange(grid, cfg.symmetric, lo[g]!, hi[g]!, () => (s > 0 ? s : 1));
    stored.scale[g] = p.scale;
    zero[g] = p.zero;
    offset[g] = p.offset;
  }
  return qparamsOf(cfg, shape, stored, zero, offset, layout, grid);
}

/** Max |x| of every group (finite values). */
function groupAbsMax(x: Float32Array, layout: GroupLayout): Float64Array {
  const amax = new Float64Array(layout.nGroups);
  const run = layout.run;
  const idx = layout.index;
  for (let i = 0; i < x.length; i++) {
    const g = run > 0 ? Math.floor(i / run) : idx[i]!;
    const a = Math.abs(x[i]!);
    if (a > amax[g]! && a <= 3.4028234663852886e38) amax[g] = a;
  }
  return amax;
}

/**
 * The parameters of a block-format quantizer (MX, NVFP4): every group's scale code and scale by the block
 * format's own rule (blocks/registry.ts), the tensor scale shared (NVFP4), no zero point.
 */
function blockQParams(
  x: Float32Array,
  shape: readonly number[],
  cfg: QuantizerConfig,
  layout: GroupLayout,
  grid: ElementGrid,
  block: BlockScaling,
): QParams {
  const t = block.tensorScale(x);
  const amax = groupAbsMax(x, layout);
  const nG = layout.nGroups;
  const scale = new Float32Array(nG);
  const codes = new Uint32Array(nG);
  for (let g = 0; g < nG; g++) {
    const b = block.blockScale(amax[g]!, t);
    scale[g] = b.scale;
    codes[g] = b.code;
  }
  const shared = block.scaleFormat === 'fp8_e4m3fn' ? Float32Array.of(t) : new Float32Array(0);
  return qparamsOf(
    cfg,
    shape,
    { scale, codes, shared },
    new Float32Array(nG),
    new Float32Array(nG),
    layout,
    grid,
  );
}

/** Weighted error sum w |x - fq(x)|^norm of one group for a candidate range. */
function rangeError(
  grid: ElementGrid,
  sym: boolean,
  vals: Float64Array,
  wts: Float64Array,
  xmin: number,
  xmax: number,
  norm: number,
  roundScale: (s: number) => number,
  scaleOverride?: number,
  /** Stop summing once the error reaches this (the caller only keeps errors below its best). */
  bound = Infinity,
): number {
  const p = paramsFromRange(
    grid,
    sym,
    xmin,
    xmax,
    scaleOverride === undefined ? roundScale : () => scaleOverride,
  );
  let err = 0;
  if (grid.kind === 'int' && norm === 2) {
    // fakeQuantValue's integer branch, inlined (the searches spend most of their time here)
    const fr = Math.fround;
    const { qmin, qmax } = grid;
    const { scale, zero } = p;
    for (let k = 0; k < vals.length; k++) {
      const v = vals[k]!;
      let q = nearestEvenInt(fr(v / scale)) + zero;
      q = q < qmin ? qmin : q > qmax ? qmax : q;
      const d = v - fr(scale * (q - zero));
      err += wts[k]! * d * d;
      if (err >= bound) return err;
    }
    return err;
  }
  for (let k = 0; k < vals.length; k++) {
    const d = Math.abs(vals[k]! - fakeQuantValue(grid, p.scale, p.zero, p.offset, vals[k]!));
    err += wts[k]! * (norm === 2 ? d * d : d ** norm);
    if (err >= bound) return err;
  }
  return err;
}

function chooseRange(
  grid: ElementGrid,
  sym: boolean,
  rule: ScaleRule,
  vals: Float64Array,
  wts: Float64Array,
  roundScale: (s: number) => number,
): [number, number] {
  let xmin = 0;
  let xmax = 0;
  for (const v of vals) {
    if (v < xmin) xmin = v;
    if (v > xmax) xmax = v;
  }
  if (rule.kind === 'percentile') {
    const sorted = Float64Array.from(sym ? vals.map(Math.abs) : vals).sort();
    const at = (q: number): number => {
      const pos = (q / 100) * (sorted.length - 1);
      const i = Math.floor(pos);
      const f = pos - i;
      return sorted[i]! + f * ((sorted[Math.min(i + 1, sorted.length - 1)] ?? 0) - sorted[i]!);
    };
    if (sorted.length === 0) return [0, 0];
    if (sym) {
      const a = at(rule.p);
      return [-a, a];
    }
    return [Math.min(0, at(100 - rule.p)), Math.max(0, at(rule.p))];
  }
  if (rule.kind === 'mse') {
    const grd = rule.grid ?? 100;
    const minRatio = rule.minRatio ?? 0.2;
    const norm = rule.norm ?? 2;
    let best = Infinity;
    let bl = xmin;
    let bh = xmax;
    for (let i = 0; 1 - i / grd >= minRatio - 1e-12; i++) {
      const r = 1 - i / grd;
      const e = rangeError(grid, sym, vals, wts, xmin * r, xmax * r, norm, roundScale, undefined, best);
      if (e < best) {
        best = e;
        bl = xmin * r;
        bh = xmax * r;
      }
    }
    return [bl, bh];
  }
  if (rule.kind === 'float-max') {
    const grd = rule.grid ?? 50;
    const minRatio = rule.minRatio ?? 0.3;
    const maxRatio = rule.maxRatio ?? 1;
    const amax = Math.max(-xmin, xmax);
    if (amax === 0) return [0, 0];
    let best = Infinity;
    let bl = xmin;
    let bh = xmax;
    if (rule.powerOfTwo) {
      if (!sym)
        throw new MixqError('the power-of-two (exponent bias) search needs a symmetric quantizer', {
          field: 'scaleRule.powerOfTwo',
          expected: 'symmetric: true',
        });
      // exponent-bias search: scale 2^k; the range reported back is the one that scale covers exactly
      const top =
        grid.kind === 'int' && grid.qmin === 0 && sym ? grid.qmax / 2 : Math.max(grid.qmax, -grid.qmin);
      const k0 = Math.ceil(Math.log2(amax / top));
      for (let k = k0 - 4; k <= k0; k++) {
        const s = 2 ** k;
        const e = rangeError(grid, sym, vals, wts, xmin, xmax, 2, roundScale, s, best);
        if (e < best) {
          best = e;
          bl = -s * top; // the symmetric range whose scale is exactly s
          bh = s * top;
        }
      }
      return [bl, bh];
    }
    for (let i = 0; i < grd; i++) {
      const r = grd === 1 ? maxRatio : minRatio + ((maxRatio - minRatio) * i) / (grd - 1);
      const e = rangeError(grid, sym, vals, wts, xmin * r, xmax * r, 2, roundScale, undefined, best);
      if (e < best) {
        best = e;
        bl = xmin * r;
        bh = xmax * r;
      }
    }
    return [bl, bh];
  }
  return [xmin, xmax];
}

/**
 * QParams from raw per-group scales chosen by an algorithm (not from a range): the scales are rounded to
 * their storage format; `zero` (int grids, asymmetric) / `offset` (table grids, asymmetric) are taken as
 * given, and the symmetric conventions above fill them otherwise.
 */
export function qparamsFromScales(
  shape: readonly number[],
  cfg: QuantizerConfig,
  layout: GroupLayout,
  rawScale: Float64Array | Float32Array,
  zeroIn?: Float32Array,
  offsetIn?: Float32Array,
): QParams {
  const grid = quantizerGrid(cfg);
  const stored = storeScales(cfg.scaleFormat ?? 'fp32', rawScale);
  const nG = layout.nGroups;
  const zero = new Float32Array(nG);
  const offset = new Float32Array(nG);
  for (let g = 0; g < nG; g++) {
    if (grid.kind === 'int') {
      if (cfg.symmetric) zero[g] = grid.qmin === 0 ? (grid.qmax + 1) / 2 : 0;
      else zero[g] = Math.min(grid.qmax, Math.max(grid.qmin, zeroIn?.[g] ?? 0));
    } else if (!cfg.symmetric) offset[g] = f16(offsetIn?.[g] ?? 0);
  }
  return qparamsOf(cfg, shape, stored, zero, offset, layout, grid);
}

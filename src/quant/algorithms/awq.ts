/**
 * AWQ-style activation-aware weight quantization (Lin et al., "AWQ: Activation-aware Weight Quantization
 * for LLM Compression and Acceleration", 2023; llm-awq auto_scale / auto_clip):
 *
 *  1. scale search: s_j = mean|x_j|^alpha per input channel, normalised by sqrt(max s * min s); alpha on a
 *     grid 0, 1/n, ..., (n-1)/n. The weight is quantized as Q(W diag(s)) and used as Q(W diag(s)) diag(s)^-1;
 *     the alpha with the smallest layer output error ||X W^T - X Q_eff^T||^2 wins. The error is computed
 *     from the Gram matrix G = X^T X, so the raw activations are not needed.
 *  2. clip search: for every quantization group, shrink its range by a ratio on a grid and keep the ratio
 *     with the smallest output error of that group, d_g^T G[g,g] d_g (cross-group terms ignored, as AWQ).
 *
 * The quadratic forms run on the matrix engine (matrix/quad-form.ts, float64): tr(D G D^T) for each alpha,
 * and for groups that are column runs of a row (per-row and per-group quantizers) one product per run and
 * clip ratio covering all rows at once. Other layouts (2-D blocks, per-tensor) use the scalar loop.
 *
 * Deployment: either fold 1/s into the previous op (LayerNorm gain, previous linear's rows) and store
 * Q(W diag(s)) — `scaledWeight` — or keep s as an explicit per-input-channel multiply; `Q` is the effective
 * weight in the original space for simulation.
 */
import { MixqError } from '../../core/errors.ts';
import { type GroupLayout, groupLayout, groupMembers } from '../granularity.ts';
import type { ElementGrid } from '../element.ts';
import { difference } from '../linalg.ts';
import { inlineEngine, type MatrixEngine } from '../matrix/engine.ts';
import { quadFormEachRow, quadFormTotal } from '../matrix/quad-form.ts';
import {
  chooseQParamsWithLayout,
  fakeQuantValue,
  paramsFromRange,
  type QuantizerConfig,
  quantizerGrid,
} from '../qparams.ts';
import { fakeQuantWith, type QuantizedTensor, quantize } from '../quantizer.ts';
import { isIndependent, roundScaleIndependent } from '../scale-format.ts';

export interface AwqConfig {
  readonly quantizer: QuantizerConfig;
  /** Number of alpha values tried (0, 1/n, ..). Default 20. */
  readonly grid?: number;
  /** Search the clipping ratio per group. Default true. */
  readonly clip?: boolean;
  /** Clip ratios 1, 1 - (1 - minRatio)/clipGrid, ... minRatio. Defaults 20 and 0.5. */
  readonly clipGrid?: number;
  readonly clipMinRatio?: number;
  /** Where the quadratic forms run (default: the one-thread inline engine). */
  readonly engine?: MatrixEngine;
}

export interface AwqStats {
  /** mean |x_j| per input channel over the calibration tokens. */
  readonly actMeanAbs: Float32Array;
  /** Gram matrix X^T X [cols, cols] of the calibration inputs. */
  readonly gram: Float64Array;
}

export interface AwqResult {
  /** Per-input-channel scale s: deploy x / s (fold into the previous op) with W diag(s) quantized. */
  readonly inputScale: Float32Array;
  readonly alpha: number;
  /** Effective dequantized weight Q(W diag(s)) diag(s)^-1, [rows, cols]. */
  readonly Q: Float32Array;
  /** The quantized W diag(s) (with the clipped ranges), as stored when s is folded away. */
  readonly scaledWeight: QuantizedTensor;
  /** Chosen clipping ratio of every group (1 when clip search is off). */
  readonly clipRatio: Float32Array;
  /** Layer output error ||X W^T - X Q^T||^2 for each alpha tried, and of the final result. */
  readonly alphaErrors: Float64Array;
  readonly error: number;
}

function awqScales(actMeanAbs: Float32Array, alpha: number): Float32Array {
  const n = actMeanAbs.length;
  const s = new Float32Array(n);
  let mx = 0;
  let mn = Infinity;
  for (let j = 0; j < n; j++) {
    const v = Math.max(actMeanAbs[j]!, 1e-8) ** alpha;
    s[j] = Math.max(v, 1e-4);
    mx = Math.max(mx, s[j]!);
    mn = Math.min(mn, s[j]!);
  }
  const norm = Math.sqrt(mx * mn);
  for (let j = 0; j < n; j++) s[j] = s[j]! / norm;
  return s;
}

/** ||X W^T - X Q^T||^2 from G = X^T X on the engine. */
function outputError(
  engine: MatrixEngine,
  W: Float32Array,
  Q: Float32Array,
  rows: number,
  cols: number,
  G: Float64Array,
): number {
  return quadFormTotal(engine, difference(W, Q), rows, cols, G);
}

/**
 * The column runs [c0, c1) that every row's groups cover, when each group is one run inside a row with the
 * same runs in every row (per-row and per-group quantizers on a 2-D weight); group of (row r, run k) is
 * r * runs.length + k. undefined for other layouts.
 */
function rowRuns(
  cfg: QuantizerConfig,
  rows: number,
  cols: number,
  layout: GroupLayout,
): [number, number][] | undefined {
  const g = cfg.granularity;
  let size = 0;
  if (g.kind === 'axis' && (g.axis === 0 || g.axis === -2)) size = cols;
  else if (g.kind === 'group' && (g.axis === 1 || g.axis === -1)) size = g.size;
  else return undefined;
  const runs: [number, number][] = [];
  for (let c = 0; c < cols; c += size) runs.push([c, Math.min(cols, c + size)]);
  return layout.nGroups === rows * runs.length ? runs : undefined;
}

/** AWQ scale + clip search on W [rows, cols]. */
export function awq(W: Float32Array, rows: number, cols: number, stats: AwqStats, cfg: AwqConfig): AwqResult {
  if (W.length !== rows * cols)
    throw new MixqError('W has the wrong length', { field: 'W', expected: `${rows}x${cols}` });
  if (stats.actMeanAbs.length !== cols || stats.gram.length !== cols * cols)
    throw new MixqError('statistics do not match the weight', {
      field: 'stats',
      expected: `${cols} channels`,
    });
  const shape = [rows, cols];
  const layout = groupLayout(shape, cfg.quantizer.granularity);
  const nAlpha = cfg.grid ?? 20;
  const G = stats.gram;
  const engine = cfg.engine ?? inlineEngine();
  const Ws = new Float32Array(W.length);
  const Qe = new Float32Array(W.length);
  const alphaErrors = new Float64Array(nAlpha);
  let best = Infinity;
  let bestAlpha = 0;
  const effective = (s: Float32Array, scaledQ: Float32Array): Float32Array => {
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < cols; j++) Qe[r * cols + j] = scaledQ[r * cols + j]! / s[j]!;
    return Qe;
  };
  const scaleWeight = (s: Float32Array) => {
    for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) Ws[r * cols + j] = W[r * cols + j]! * s[j]!;
  };
  for (let a = 0; a < nAlpha; a++) {
    const alpha = a / nAlpha;
    const s = awqScales(stats.actMeanAbs, alpha);
    scaleWeight(s);
    const p = chooseQParamsWithLayout(Ws, shape, cfg.quantizer, layout);
    const err = outputError(engine, W, effective(s, fakeQuantWith(Ws, p)), rows, cols, G);
    alphaErrors[a] = err;
    if (err < best) {
      best = err;
      bestAlpha = alpha;
    }
  }
  const s = awqScales(stats.actMeanAbs, bestAlpha);
  scaleWeight(s);

  // clip search per group, then the final parameters from the clipped weight (min-max of the clamped
  // weight is exactly the clipped range)
  const clipRatio = new Float32Array(layout.nGroups).fill(1);
  const Wc = Float32Array.from(Ws);
  if (cfg.clip ?? true) {
    const grid = quantizerGrid(cfg.quantizer);
    const sf = cfg.quantizer.scaleFormat ?? 'fp32';
    const roundScale = isIndependent(sf) ? (v: number) => roundScaleIndependent(sf, v) : (v: number) => v;
    const steps = cfg.clipGrid ?? 20;
    const minRatio = cfg.clipMinRatio ?? 0.5;
    const search = { grid, symmetric: cfg.quantizer.symmetric, roundScale, steps, minRatio };
    const runs = rowRuns(cfg.quantizer, rows, cols, layout);
    if (runs) clipRuns(engine, Ws, s, rows, cols, runs, G, search, clipRatio, Wc);
    else clipGroups(Ws, s, cols, layout, G, search, clipRatio, Wc);
  }
  const params = chooseQParamsWithLayout(
    Wc,
    shape,
    { ...cfg.quantizer, scaleRule: { kind: 'minmax' } },
    layout,
  );
  const scaledWeight = quantize(Ws, params);
  const Q = Float32Array.from(effective(s, fakeQuantWith(Ws, params)));
  const error = outputError(engine, W, Q, rows, cols, G);
  return { inputScale: s, alpha: bestAlpha, Q, scaledWeight, clipRatio, alphaErrors, error };
}

interface ClipSearch {
  readonly grid: ElementGrid;
  readonly symmetric: boolean;
  readonly roundScale: (v: number) => number;
  readonly steps: number;
  readonly minRatio: number;
}

const ratioOf = (c: ClipSearch, t: number) => 1 - ((1 - c.minRatio) * t) / c.steps;

/**
 * Clip search when groups are column runs of rows: for each run and ratio, the errors of all rows (in the
 * original space, divided by s) go through one engine product with G's diagonal block of the run.
 */
function clipRuns(
  engine: MatrixEngine,
  Ws: Float32Array,
  s: Float32Array,
  rows: number,
  cols: number,
  runs: readonly [number, number][],
  G: Float64Array,
  c: ClipSearch,
  clipRatio: Float32Array,
  Wc: Float32Array,
): void {
  for (const [k, [c0, c1]] of runs.entries()) {
    const n = c1 - c0;
    const lo = new Float64Array(rows);
    const hi = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let a = 0;
      let b = 0;
      for (let j = r * cols + c0; j < r * cols + c1; j++) {
        a = Math.min(a, Ws[j]!);
        b = Math.max(b, Ws[j]!);
      }
      lo[r] = a;
      hi[r] = b;
    }
    const bestE = new Float64Array(rows).fill(Infinity);
    const bestR = new Float64Array(rows).fill(1);
    const D = new Float64Array(rows * n);
    for (let t = 0; t <= c.steps; t++) {
      const ratio = ratioOf(c, t);
      for (let r = 0; r < rows; r++) {
        const p = paramsFromRange(c.grid, c.symmetric, lo[r]! * ratio, hi[r]! * ratio, c.roundScale);
        for (let j = 0; j < n; j++) {
          const w = Ws[r * cols + c0 + j]!;
          D[r * n + j] = (w - fakeQuantValue(c.grid, p.scale, p.zero, p.offset, w)) / s[c0 + j]!;
        }
      }
      const err = quadFormEachRow(engine, D, rows, n, G, { ldg: cols, base: c0 });
      for (let r = 0; r < rows; r++)
        if (err[r]! < bestE[r]!) {
          bestE[r] = err[r]!;
          bestR[r] = ratio;
        }
    }
    for (let r = 0; r < rows; r++) {
      clipRatio[r * runs.length + k] = bestR[r]!;
      const a = lo[r]! * bestR[r]!;
      const b = hi[r]! * bestR[r]!;
      for (let j = r * cols + c0; j < r * cols + c1; j++) Wc[j] = Math.min(b, Math.max(a, Ws[j]!));
    }
  }
}

/** Clip search for any layout, group by group (scalar quadratic forms over the group's members). */
function clipGroups(
  Ws: Float32Array,
  s: Float32Array,
  cols: number,
  layout: GroupLayout,
  G: Float64Array,
  c: ClipSearch,
  clipRatio: Float32Array,
  Wc: Float32Array,
): void {
  const { offsets, members } = groupMembers(layout);
  const d = new Float64Array(layout.maxSize);
  for (let g = 0; g < layout.nGroups; g++) {
    const a0 = offsets[g]!;
    const n = offsets[g + 1]! - a0;
    let xmin = 0;
    let xmax = 0;
    for (let k = 0; k < n; k++) {
      const v = Ws[members[a0 + k]!]!;
      xmin = Math.min(xmin, v);
      xmax = Math.max(xmax, v);
    }
    let bestE = Infinity;
    let bestR = 1;
    for (let t = 0; t <= c.steps; t++) {
      const ratio = ratioOf(c, t);
      const p = paramsFromRange(c.grid, c.symmetric, xmin * ratio, xmax * ratio, c.roundScale);
      // error of the group's output contribution, in the original space (divide by s)
      for (let k = 0; k < n; k++) {
        const e = members[a0 + k]!;
        d[k] = (Ws[e]! - fakeQuantValue(c.grid, p.scale, p.zero, p.offset, Ws[e]!)) / s[e % cols]!;
      }
      // sum over the rows the group touches of d_r^T G[C, C] d_r; members are ascending, so the
      // elements of one row form a contiguous segment
      let err = 0;
      for (let s0 = 0; s0 < n;) {
        const row = Math.floor(members[a0 + s0]! / cols);
        let s1 = s0 + 1;
        while (s1 < n && Math.floor(members[a0 + s1]! / cols) === row) s1++;
        for (let k = s0; k < s1; k++) {
          const gk = (members[a0 + k]! % cols) * cols;
          let acc = 0;
          for (let l = s0; l < s1; l++) acc += G[gk + (members[a0 + l]! % cols)]! * d[l]!;
          err += d[k]! * acc;
        }
        s0 = s1;
      }
      if (err < bestE) {
        bestE = err;
        bestR = ratio;
      }
    }
    clipRatio[g] = bestR;
    for (let k = 0; k < n; k++) {
      const e = members[a0 + k]!;
      Wc[e] = Math.min(xmax * bestR, Math.max(xmin * bestR, Ws[e]!));
    }
  }
}

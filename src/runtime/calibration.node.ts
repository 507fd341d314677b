/**
 * Calibration capture: activation statistics at the input of every quantizable weight's op, gathered by
 * running the model with those activations exposed as extra graph outputs (weights.node.ts,
 * `captureInputs`). Memory is bounded: per capture point we keep O(channels) running sums, plus an
 * optional channels x channels Gram matrix X^T X (GPTQ's Hessian proxy) only when channels <= `maxGram`.
 *
 * Channel axis: the last axis for MatMul / Gemm inputs ([..., K] times W[K, N]), axis 1 for Conv
 * ([N, C, H, W...]). Gemm with transA=1 (rare for activations) is not distinguished: its stats are per row.
 */

import { MixqError } from '../core/errors.ts';
import type { Feeds } from './ort.node.ts';
import type { CapturePoint, WeightFedModel } from './weights.node.ts';

export interface ActivationStats {
  readonly weight: string;
  readonly activation: string;
  readonly op: string;
  readonly channels: number;
  /** Rows (vectors of `channels` values) seen. */
  rows: number;
  /** Per-channel max |x|. */
  readonly absMax: Float32Array;
  /** Per-channel running sum of x^2 (divide by rows for E[x^2]; see meanSquare()). */
  readonly sumSquares: Float64Array;
  /** Row-major channels x channels sum of x x^T, when kept. */
  readonly gram?: Float64Array;
}

export interface CalibrationOptions {
  /** Keep X^T X for capture points with at most this many channels (0 = never). Default 0. */
  readonly maxGram?: number;
}

export function meanSquare(s: ActivationStats): Float64Array {
  return s.sumSquares.map((v) => (s.rows ? v / s.rows : 0));
}

/** Activation rows buffered per Gram update (each update streams the C^2 / 2 upper triangle once). */
const GRAM_BLOCK = 32;

function accumulate(s: ActivationStats, data: Float32Array, dims: readonly number[], op: string): void {
  const c = s.channels;
  const conv = op === 'Conv';
  // Conv rows are (batch, position) pairs, gathered along the strided channel axis.
  const spatial = conv ? dims.slice(2).reduce((a, b) => a * b, 1) : 1;
  const rows = conv ? dims[0]! * spatial : data.length / c;
  const row = new Float64Array(c);
  const g = s.gram;
  // The block's rows transposed: xt[ch * GRAM_BLOCK + r] = x_r[ch].
  const xt = g ? new Float64Array(c * GRAM_BLOCK) : undefined;
  let nb = 0;
  for (let r = 0; r < rows; r++) {
    if (conv) {
      const b = Math.floor(r / spatial);
      const off = b * c * spatial + (r - b * spatial);
      for (let ch = 0; ch < c; ch++) row[ch] = data[off + ch * spatial]!;
    } else {
      const off = r * c;
      for (let ch = 0; ch < c; ch++) row[ch] = data[off + ch]!;
    }
    addRow(s, row);
    if (xt) {
      for (let ch = 0; ch < c; ch++) xt[ch * GRAM_BLOCK + nb] = row[ch]!;
      if (++nb === GRAM_BLOCK) {
        gramUpperUpdate(g!, xt, nb, c);
        nb = 0;
      }
    }
  }
  if (xt && nb > 0) gramUpperUpdate(g!, xt, nb, c);
}

/** absMax, sumSquares and the row count of one row (the Gram is updated per block). */
function addRow(s: ActivationStats, row: Float64Array): void {
  const c = s.channels;
  for (let ch = 0; ch < c; ch++) {
    const v = row[ch]!;
    const a = Math.abs(v);
    if (a > s.absMax[ch]!) s.absMax[ch] = a;
    s.sumSquares[ch]! += v * v;
  }
  s.rows++;
}

/**
 * g[i][j] += sum_{r < n} x_r[i] x_r[j] for j >= i (upper triangle; mirrorGram completes it), with
 * xt[ch * GRAM_BLOCK + r] = x_r[ch]. 4 x 2 tiles of (i, j) keep 8 sums in registers per pass over the
 * block's rows. Tiles touching the diagonal also write a few entries below it, which mirrorGram overwrites.
 */
function gramUpperUpdate(g: Float64Array, xt: Float64Array, n: number, c: number): void {
  const B = GRAM_BLOCK;
  const c4 = c - (c % 4);
  for (let i0 = 0; i0 < c4; i0 += 4) {
    const a0 = i0 * B;
    const a1 = a0 + B;
    const a2 = a1 + B;
    const a3 = a2 + B;
    let j = i0;
    for (; j + 1 < c; j += 2) {
      const b0 = j * B;
      const b1 = b0 + B;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      let s20 = 0;
      let s21 = 0;
      let s30 = 0;
      let s31 = 0;
      for (let r = 0; r < n; r++) {
        const y0 = xt[b0 + r]!;
        const y1 = xt[b1 + r]!;
        const x0 = xt[a0 + r]!;
        const x1 = xt[a1 + r]!;
        const x2 = xt[a2 + r]!;
        const x3 = xt[a3 + r]!;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s20 += x2 * y0;
        s21 += x2 * y1;
        s30 += x3 * y0;
        s31 += x3 * y1;
      }
      const o = i0 * c + j;
      g[o]! += s00;
      g[o + 1]! += s01;
      g[o + c]! += s10;
      g[o + c + 1]! += s11;
      g[o + 2 * c]! += s20;
      g[o + 2 * c + 1]! += s21;
      g[o + 3 * c]! += s30;
      g[o + 3 * c + 1]! += s31;
    }
    if (j < c) for (let i = i0; i < i0 + 4; i++) g[i * c + j]! += dotRows(xt, i * B, j * B, n);
  }
  for (let i = c4; i < c; i++) for (let j = i; j < c; j++) g[i * c + j]! += dotRows(xt, i * B, j * B, n);
}

function dotRows(xt: Float64Array, a: number, b: number, n: number): number {
  let t = 0;
  for (let r = 0; r < n; r++) t += xt[a + r]! * xt[b + r]!;
  return t;
}

/** Copies the upper triangle of the c x c gram onto the lower one. */
function mirrorGram(g: Float64Array, c: number): void {
  for (let i = 1; i < c; i++) for (let j = 0; j < i; j++) g[i * c + j] = g[j * c + i]!;
}

/**
 * Run `samples` through a model loaded with `captureInputs: true` and return statistics per capture point
 * (keyed by weight name). Deterministic: samples are processed in order, sums in float64.
 */
export async function captureActivationStats(
  model: WeightFedModel,
  samples: Iterable<Feeds> | AsyncIterable<Feeds>,
  opts: CalibrationOptions = {},
): Promise<Map<string, ActivationStats>> {
  if (model.captures.length === 0) {
    throw new MixqError('the model exposes no activations', {
      field: 'captureInputs',
      expected: 'loadWeightFedModel(path, { captureInputs: true })',
    });
  }
  const stats = new Map<string, ActivationStats>();
  const byActivation = new Map<string, CapturePoint[]>();
  for (const c of model.captures) {
    const list = byActivation.get(c.activation) ?? [];
    list.push(c);
    byActivation.set(c.activation, list);
  }
  const names = [...byActivation.keys()];
  for await (const feeds of samples) {
    const out = await model.baseline.run(feeds, names);
    for (const [act, points] of byActivation) {
      const t = out[act];
      if (t?.type !== 'float32') continue;
      const dims = t.dims;
      for (const p of points) {
        const channels = p.op === 'Conv' ? dims[1]! : dims[dims.length - 1]!;
        let s = stats.get(p.weight);
        if (!s) {
          const keepGram = (opts.maxGram ?? 0) >= channels;
          s = {
            weight: p.weight,
            activation: act,
            op: p.op,
            channels,
            rows: 0,
            absMax: new Float32Array(channels),
            sumSquares: new Float64Array(channels),
            ...(keepGram ? { gram: new Float64Array(channels * channels) } : {}),
          };
          stats.set(p.weight, s);
        }
        accumulate(s, t.data as Float32Array, dims, p.op);
      }
    }
  }
  for (const s of stats.values()) if (s.gram) mirrorGram(s.gram, s.channels);
  return stats;
}

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
import { mirrorUpper } from '../quant/linalg.ts';
import { inlineEngine } from '../quant/matrix/engine.ts';
import { gramUpperAccumulateF64 } from '../quant/matrix/gram.ts';
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
  /** Per-channel running sum of x (divide by rows for E[x]: bias correction). */
  readonly sums: Float64Array;
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

/** Activation rows buffered per Gram update (a float64 product on the matrix engine). */
const GRAM_BLOCK = 512;

function accumulate(s: ActivationStats, data: Float32Array, dims: readonly number[], op: string): void {
  const c = s.channels;
  const conv = op === 'Conv';
  // Conv rows are (batch, position) pairs, gathered along the strided channel axis.
  const spatial = conv ? dims.slice(2).reduce((a, b) => a * b, 1) : 1;
  const rows = conv ? dims[0]! * spatial : data.length / c;
  const row = new Float64Array(c);
  const g = s.gram;
  // The block's rows, row-major: xb[r * c + ch] = x_r[ch].
  const xb = g ? new Float64Array(c * Math.min(GRAM_BLOCK, rows)) : undefined;
  let nb = 0;
  const flush = () => {
    if (g && nb > 0) gramUpperAccumulateF64(inlineEngine(), g, xb!, nb, c);
    nb = 0;
  };
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
    if (xb) {
      xb.set(row, nb * c);
      if (++nb === GRAM_BLOCK) flush();
    }
  }
  flush();
}

/** absMax, sumSquares and the row count of one row (the Gram is updated per block). */
function addRow(s: ActivationStats, row: Float64Array): void {
  const c = s.channels;
  for (let ch = 0; ch < c; ch++) {
    const v = row[ch]!;
    const a = Math.abs(v);
    if (a > s.absMax[ch]!) s.absMax[ch] = a;
    s.sums[ch]! += v;
    s.sumSquares[ch]! += v * v;
  }
  s.rows++;
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
            sums: new Float64Array(channels),
            sumSquares: new Float64Array(channels),
            ...(keepGram ? { gram: new Float64Array(channels * channels) } : {}),
          };
          stats.set(p.weight, s);
        }
        accumulate(s, t.data as Float32Array, dims, p.op);
      }
    }
  }
  for (const s of stats.values()) if (s.gram) mirrorUpper(s.gram, s.channels);
  return stats;
}

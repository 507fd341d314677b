/**
 * Evaluation metrics, pure functions on typed arrays (no runtime needed, so they are testable against
 * brute force): next-token cross-entropy, distribution fidelity (KL divergence, top-1 agreement, SQNR),
 * edit distance for OCR, and a seeded bootstrap for the standard error of a mean.
 *
 * All accumulation is in float64 in a fixed order, so the same inputs give bit-identical numbers.
 * Sources: KL(P||Q) = sum p (log p - log q) with P the fp32 reference (Kullback & Leibler 1951);
 * SQNR = 10 log10(sum ref^2 / sum (ref - x)^2) dB; Levenshtein distance by the two-row Wagner-Fischer DP.
 */

import { Rng } from '../core/rng.ts';
import { MixqError } from '../core/errors.ts';

/** log(sum(exp(row))) of `row = x[off .. off+n)`, computed stably by subtracting the maximum. */
export function logSumExp(x: ArrayLike<number>, off: number, n: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) m = Math.max(m, x[off + i]!);
  if (m === Number.NEGATIVE_INFINITY) return m;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(x[off + i]! - m);
  return m + Math.log(s);
}

/** -log softmax(row)[target] in nats, for logits `row = x[off .. off+n)`. */
export function crossEntropyAt(x: ArrayLike<number>, off: number, n: number, target: number): number {
  return logSumExp(x, off, n) - x[off + target]!;
}

/** Index of the largest value in `x[off .. off+n)`; ties go to the lowest index (deterministic). */
export function argmax(x: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  let bv = x[off]!;
  for (let i = 1; i < n; i++) {
    const v = x[off + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** How the last axis of a model output is to be read when comparing distributions. */
export type OutputKind = 'logits' | 'probabilities';

/**
 * Guess whether rows are already probabilities (PaddleOCR ends in Softmax) or logits (GPT): probabilities
 * are non-negative and each row sums to 1 within 1e-3.
 */
export function detectOutputKind(x: ArrayLike<number>, rowLength: number): OutputKind {
  const rows = Math.floor(x.length / rowLength);
  if (rows === 0) return 'logits';
  for (let r = 0; r < Math.min(rows, 8); r++) {
    let s = 0;
    for (let i = 0; i < rowLength; i++) {
      const v = x[r * rowLength + i]!;
      if (v < 0) return 'logits';
      s += v;
    }
    if (Math.abs(s - 1) > 1e-3) return 'logits';
  }
  return 'probabilities';
}

/** Write log-probabilities of one row into `out[0..n)`. Probabilities are clamped at 1e-30 before the log. */
function logProbRow(x: ArrayLike<number>, off: number, n: number, kind: OutputKind, out: Float64Array): void {
  if (kind === 'logits') {
    const lse = logSumExp(x, off, n);
    for (let i = 0; i < n; i++) out[i] = x[off + i]! - lse;
  } else {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.max(x[off + i]!, 0);
    for (let i = 0; i < n; i++) out[i] = Math.log(Math.max(Math.max(x[off + i]!, 0) / s, 1e-30));
  }
}

/** Running sums for fidelity of a candidate model's outputs to a reference model's outputs. */
export interface FidelityAccumulator {
  rows: number;
  klSum: number;
  klMax: number;
  top1Agree: number;
  signal: number;
  noise: number;
}

export function newFidelityAccumulator(): FidelityAccumulator {
  return { rows: 0, klSum: 0, klMax: 0, top1Agree: 0, signal: 0, noise: 0 };
}

/**
 * Add one output tensor pair: rows of length `rowLength` along the last axis (classes/vocabulary).
 * KL(ref || cand) per row, top-1 agreement per row, and SQNR energy over the raw values.
 */
export function accumulateFidelity(
  acc: FidelityAccumulator,
  ref: ArrayLike<number>,
  cand: ArrayLike<number>,
  rowLength: number,
  kind: OutputKind,
): void {
  if (ref.length !== cand.length)
    throw new RangeError(`output length ${cand.length} != reference ${ref.length}`);
  const rows = Math.floor(ref.length / rowLength);
  const lp = new Float64Array(rowLength);
  const lq = new Float64Array(rowLength);
  for (let r = 0; r < rows; r++) {
    const off = r * rowLength;
    logProbRow(ref, off, rowLength, kind, lp);
    logProbRow(cand, off, rowLength, kind, lq);
    let kl = 0;
    for (let i = 0; i < rowLength; i++) {
      const p = Math.exp(lp[i]!);
      if (p > 0) kl += p * (lp[i]! - lq[i]!);
    }
    // Rounding can make an exact match come out as -1e-17; KL is non-negative by definition.
    kl = Math.max(kl, 0);
    acc.klSum += kl;
    acc.klMax = Math.max(acc.klMax, kl);
    if (argmax(ref, off, rowLength) === argmax(cand, off, rowLength)) acc.top1Agree++;
    acc.rows++;
  }
  for (let i = 0; i < ref.length; i++) {
    const a = ref[i]!;
    const d = a - cand[i]!;
    acc.signal += a * a;
    acc.noise += d * d;
  }
}

export interface FidelityResult {
  /** Mean KL(reference || candidate) per output row, nats. */
  readonly klMean: number;
  readonly klMax: number;
  /** Fraction of rows whose argmax matches the reference's. */
  readonly top1Agreement: number;
  /** Output signal-to-quantization-noise ratio in dB; Infinity when identical. */
  readonly sqnrDb: number;
  readonly rows: number;
}

export function finishFidelity(acc: FidelityAccumulator): FidelityResult {
  return {
    klMean: acc.rows ? acc.klSum / acc.rows : 0,
    klMax: acc.klMax,
    top1Agreement: acc.rows ? acc.top1Agree / acc.rows : 1,
    sqnrDb: acc.noise === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(acc.signal / acc.noise),
    rows: acc.rows,
  };
}

/**
 * A reference's k most probable classes per row of probabilities, with their probabilities: enough to
 * score a candidate's KL on the coarsened distribution (these k classes + one bucket for the rest)
 * without keeping whole rows (PP-OCRv4: 6,625 classes per frame).
 */
export interface TopKRows {
  readonly k: number;
  readonly rows: number;
  /** rows x k class indices, most probable first. */
  readonly index: Int32Array;
  /** rows x k probabilities, matching `index`. */
  readonly prob: Float64Array;
  /** Per row, the probability of all other classes (summed, not 1 - top: float32 rows do not sum to 1). */
  readonly rest: Float64Array;
}

export function topKRows(probs: ArrayLike<number>, rowLength: number, k: number): TopKRows {
  const kk = Math.min(k, rowLength);
  const rows = Math.floor(probs.length / rowLength);
  const index = new Int32Array(rows * kk);
  const prob = new Float64Array(rows * kk);
  const rest = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const off = r * rowLength;
    const o = r * kk;
    let n = 0; // kept so far, sorted descending by probability (insertion into a short list)
    let total = 0;
    for (let i = 0; i < rowLength; i++) {
      const v = probs[off + i]!;
      total += v;
      if (n === kk && v <= prob[o + kk - 1]!) continue;
      let j = n < kk ? n++ : kk - 1;
      while (j > 0 && prob[o + j - 1]! < v) {
        prob[o + j] = prob[o + j - 1]!;
        index[o + j] = index[o + j - 1]!;
        j--;
      }
      prob[o + j] = v;
      index[o + j] = i;
    }
    let top = 0;
    for (let t = 0; t < kk; t++) top += prob[o + t]!;
    rest[r] = Math.max(total - top, 0);
  }
  return { k: kk, rows, index, prob, rest };
}

/**
 * Sum over rows of KL(ref || cand) on the coarsened distribution of each row: the reference's top-k classes
 * and one bucket for all others. A lower bound of the full KL (coarsening never increases it), equal to it
 * when the reference puts all its mass on its top k. Probabilities are floored at 1e-12; the buckets are
 * summed from the rows, so rows that sum to 1 only within float32 rounding add no error of their own.
 */
export function coarseKlSum(ref: TopKRows, cand: ArrayLike<number>, rowLength: number): number {
  if (ref.rows * rowLength !== cand.length)
    throw new RangeError(`output length ${cand.length} != reference ${ref.rows} x ${rowLength}`);
  const tiny = 1e-12;
  let sum = 0;
  for (let r = 0; r < ref.rows; r++) {
    const o = r * ref.k;
    const off = r * rowLength;
    let qAll = 0;
    for (let i = 0; i < rowLength; i++) qAll += cand[off + i]!;
    let qTop = 0;
    let kl = 0;
    for (let t = 0; t < ref.k; t++) {
      const p = ref.prob[o + t]!;
      const qRaw = cand[off + ref.index[o + t]!]!;
      qTop += qRaw;
      if (p > 0) kl += p * Math.log(p / Math.max(qRaw, tiny));
    }
    const pRest = ref.rest[r]!;
    if (pRest > 0) kl += pRest * Math.log(pRest / Math.max(qAll - qTop, tiny));
    sum += Math.max(kl, 0);
  }
  return sum;
}

/** Levenshtein distance between two strings, by Unicode code point (insert, delete, substitute cost 1). */
export function levenshtein(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  let prev = new Int32Array(y.length + 1);
  let cur = new Int32Array(y.length + 1);
  for (let j = 0; j <= y.length; j++) prev[j] = j;
  for (let i = 1; i <= x.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const sub = prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[y.length]!;
}

/**
 * Bootstrap standard error of a ratio of sums, sum(num) / sum(den), resampling the units (windows, lines)
 * with replacement. Seeded, so it is reproducible. With den all 1 it is the standard error of a mean.
 */
export function bootstrapStdError(
  num: ArrayLike<number>,
  den: ArrayLike<number>,
  resamples = 1000,
  seed = 12345,
): number {
  const n = num.length;
  if (n < 2) return Number.NaN;
  const rng = new Rng(seed);
  let s1 = 0;
  let s2 = 0;
  for (let b = 0; b < resamples; b++) {
    let a = 0;
    let d = 0;
    for (let k = 0; k < n; k++) {
      const i = Math.floor(rng.nextFloat() * n);
      a += num[i]!;
      d += den[i]!;
    }
    const v = a / d;
    s1 += v;
    s2 += v * v;
  }
  const mean = s1 / resamples;
  return Math.sqrt(Math.max(0, s2 / resamples - mean * mean));
}

/** A metric as a ratio of per-item sums: scale * sum(num) / sum(den) (CER: edits / characters per line). */
export interface MetricItems {
  readonly num: ArrayLike<number>;
  readonly den: ArrayLike<number>;
  readonly scale: number;
}

/**
 * 95% paired-bootstrap interval of the change of a ratio metric from `ref` to `x` on the same items:
 * items are resampled together (both models scored on each drawn line / window), so the interval shows
 * whether a change is larger than the evaluation data's noise. Percentiles 2.5 and 97.5 of `resamples`
 * seeded resamples.
 */
export function pairedChangeInterval(
  ref: MetricItems,
  x: MetricItems,
  resamples = 2000,
  seed = 12345,
): [number, number] {
  const n = ref.num.length;
  if (x.num.length !== n || ref.den.length !== n || x.den.length !== n || n < 2)
    throw new MixqError(`paired items differ: ${n} vs ${x.num.length}`, {
      field: 'items',
      expected: 'the same items (at least 2) for both models',
    });
  const rng = new Rng(seed);
  const d = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let a = 0;
    let c = 0;
    let dr = 0;
    let dx = 0;
    for (let k = 0; k < n; k++) {
      const i = Math.floor(rng.nextFloat() * n);
      a += ref.num[i]!;
      dr += ref.den[i]!;
      c += x.num[i]!;
      dx += x.den[i]!;
    }
    d[b] = x.scale * (c / dx) - ref.scale * (a / dr);
  }
  d.sort();
  const at = (q: number) => d[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))]!;
  return [at(0.025), at(0.975)];
}

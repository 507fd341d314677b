/**
 * Next-token choice from a logit row: greedy (argmax), or a seeded draw after top-k, top-p (nucleus) and
 * temperature, in llama.cpp's default sampler order (top-k, then top-p on the softmax of the remaining
 * logits, then temperature, then the draw). The draw uses mixq's seeded xoshiro128** (core/rng.ts), so a
 * seed gives the same text on every platform.
 */
import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';

export interface SamplingOptions {
  /** 0 (default) = greedy: the most likely token, ties to the lowest id. */
  readonly temperature?: number;
  /** Keep the k most likely tokens (0 = all; default 40 when sampling). */
  readonly topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all; default 0.95). */
  readonly topP?: number;
  /** Seed of the draw (default 0). */
  readonly seed?: number;
}

const SRC = 'sampling';

/** Index of the largest value (the first one on ties). */
export function argmaxRow(x: ArrayLike<number>, off = 0, n = x.length - off): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[off + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/**
 * A sampler: `next(logits)` picks a token id.
 * @example const s = new Sampler({ temperature: 0.8, seed: 1 }); const id = s.next(logits);
 */
export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  private readonly rng: Rng;

  constructor(opts: SamplingOptions = {}) {
    const t = opts.temperature ?? 0;
    if (!(t >= 0) || !Number.isFinite(t))
      throw new MixqError(`temperature ${t}`, { source: SRC, field: 'temperature', expected: '>= 0' });
    const k = opts.topK ?? 40;
    if (!Number.isInteger(k) || k < 0)
      throw new MixqError(`top-k ${k}`, { source: SRC, field: 'topK', expected: 'an integer >= 0' });
    const p = opts.topP ?? 0.95;
    if (!(p > 0 && p <= 1))
      throw new MixqError(`top-p ${p}`, { source: SRC, field: 'topP', expected: 'in (0, 1]' });
    this.temperature = t;
    this.topK = k;
    this.topP = p;
    this.rng = new Rng(opts.seed ?? 0);
  }

  /** The next token id from a logit row. */
  next(logits: ArrayLike<number>): number {
    if (this.temperature === 0) return argmaxRow(logits);
    const n = logits.length;
    // candidates sorted by logit (descending, then id), cut to top-k
    let ids =
      this.topK > 0 && this.topK < n ? topKIds(logits, this.topK) : Array.from({ length: n }, (_, i) => i);
    ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
    // top-p on the softmax of the kept logits
    const max = logits[ids[0]!]!;
    if (this.topP < 1) {
      let z = 0;
      for (const i of ids) z += Math.exp(logits[i]! - max);
      let cum = 0;
      let keep = ids.length;
      for (let j = 0; j < ids.length; j++) {
        cum += Math.exp(logits[ids[j]!]! - max) / z;
        if (cum >= this.topP) {
          keep = j + 1;
          break;
        }
      }
      ids = ids.slice(0, keep);
    }
    // temperature, then the draw
    const w = ids.map((i) => Math.exp((logits[i]! - max) / this.temperature));
    let total = 0;
    for (const v of w) total += v;
    let u = this.rng.nextFloat() * total;
    for (let j = 0; j < ids.length; j++) {
      u -= w[j]!;
      if (u < 0) return ids[j]!;
    }
    return ids[ids.length - 1]!;
  }
}

/** Ids of the k largest values (ties: lower ids first), unordered: a min-heap of size k over one pass. */
function topKIds(x: ArrayLike<number>, k: number): number[] {
  const heap: number[] = [];
  // a before b in the heap order when a is "worse": smaller value, or equal value and larger id
  const worse = (a: number, b: number) => x[a]! < x[b]! || (x[a] === x[b] && a > b);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < x.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0;) {
        const p = (j - 1) >> 1;
        if (!worse(heap[j]!, heap[p]!)) break;
        [heap[j], heap[p]] = [heap[p]!, heap[j]!];
        j = p;
      }
    } else if (worse(heap[0]!, i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap;
}

/**
 * Exact multiple-choice knapsack by dynamic programming over quantised cost: a cross-check for the MILP
 * and a fast way to get the optimum for every budget at once.
 *
 *   best_k(c) = min over options o of item k with w_o <= c of best_{k-1}(c - w_o) + damage_o,
 *   best_0(c) = 0,  with w_o = ceil(cost_o / q) and capacity floor(capacity / q).
 *
 * With q = 1 this is exact (Dudzinski & Walukiewicz 1987, "Exact methods for the knapsack problem and its
 * generalizations"). With q > 1 rounding costs up keeps every answer feasible for the real budget, but it
 * may miss assignments that fit only by less than q per item: exact again when q divides every cost.
 * Time O(options * capacity / q), memory items * capacity / q bytes (the choice table).
 * Latency bounds are not supported here (use the MILP).
 */
import { MixqError } from '../../core/errors.ts';
import {
  type Allocation,
  type AllocationProblem,
  buildAllocation,
  nowMs,
  type ReducedProblem,
  reduceProblem,
} from './problem.ts';

export interface DpOptions {
  /** Cost quantum q (bytes or bits, the budget's unit). Default: 1 when it fits maxCells, else the smallest that does. */
  readonly quantum?: number;
  /** Largest items * (capacity / q + 1) table allowed (default 50 million). */
  readonly maxCells?: number;
}

/** The DP table for one reduced problem: read off optimal assignments for any capacity up to its own. */
export interface DpTable {
  readonly quantum: number;
  /** best[c] = minimum damage with quantised cost <= c, for c = 0..capacity / quantum. */
  readonly best: Float64Array;
  /** Optimal assignment (option per item) for a capacity in cost units, or undefined when none fits. */
  assignment(capacity: number): number[] | undefined;
}

/** Builds the DP over capacities 0..r.capacity. */
export function buildDpTable(r: ReducedProblem, opts: DpOptions = {}): DpTable {
  if (r.maxLatency !== undefined)
    throw new MixqError('the DP solver does not handle latency bounds', {
      source: 'allocation problem',
      field: 'maxLatency',
      expected: 'the MILP solver',
    });
  const maxCells = opts.maxCells ?? 50_000_000;
  const nItems = r.items.length;
  const q = opts.quantum ?? Math.max(1, Math.ceil(((r.capacity + 1) * nItems) / maxCells));
  if (!(Number.isInteger(q) && q >= 1))
    throw new MixqError(`bad quantum ${q}`, { source: 'dp', field: 'quantum', expected: 'an integer >= 1' });
  const cap = Math.floor(r.capacity / q);
  const width = cap + 1;
  if (width * nItems > maxCells)
    throw new MixqError(`DP table of ${width * nItems} cells is too large`, {
      source: 'dp',
      field: 'quantum',
      expected: `a quantum >= ${Math.ceil(((r.capacity + 1) * nItems) / maxCells)}`,
    });
  const maxOptions = Math.max(...r.items.map((it) => it.options.length));
  const pick = maxOptions <= 255 ? new Uint8Array(width * nItems) : new Uint16Array(width * nItems);
  let prev = new Float64Array(width); // best_0 = 0 everywhere
  let next = new Float64Array(width);
  r.items.forEach((it, k) => {
    next.fill(Number.POSITIVE_INFINITY);
    const base = k * width;
    it.options.forEach((o, oi) => {
      const w = Math.ceil(o.cost / q);
      for (let c = w; c < width; c++) {
        const v = prev[c - w]! + o.damage;
        if (v < next[c]!) {
          next[c] = v;
          pick[base + c] = oi;
        }
      }
    });
    [prev, next] = [next, prev];
  });
  const best = prev;
  return {
    quantum: q,
    best,
    assignment(capacity: number): number[] | undefined {
      let c = Math.min(cap, Math.floor(capacity / q));
      if (c < 0 || !Number.isFinite(best[c]!)) return undefined;
      const out = new Array<number>(nItems);
      for (let k = nItems - 1; k >= 0; k--) {
        const oi = pick[k * width + c]!;
        out[k] = oi;
        c -= Math.ceil(r.items[k]!.options[oi]!.cost / q);
      }
      return out;
    },
  };
}

/** Solves one reduced problem by DP; status 'optimal' when the quantum is 1. */
export function solveReducedDp(r: ReducedProblem, opts: DpOptions = {}): Allocation {
  const t0 = nowMs();
  const table = buildDpTable(r, opts);
  const a = table.assignment(r.capacity);
  if (!a)
    throw new MixqError(`no assignment fits with cost quantum ${table.quantum}`, {
      source: 'dp',
      field: 'quantum',
      expected: 'a smaller quantum',
    });
  return buildAllocation(r, a, {
    status: table.quantum === 1 ? 'optimal' : 'heuristic',
    solver: 'dp',
    timeMs: nowMs() - t0,
  });
}

/**
 * Exact (quantum 1) or cost-quantised DP allocation.
 * @example solveDp({ weights, budget: { kind: 'bytes', bytes: 4096 } }).damage
 */
export function solveDp(problem: AllocationProblem, opts: DpOptions = {}): Allocation {
  return solveReducedDp(reduceProblem(problem), opts);
}

/**
 * Greedy allocation on each weight's lower convex hull: the fast fallback, and the LP lower bound.
 *
 * Per item (a weight or tied group), the options that are not dominated form a staircase in (cost,
 * damage); its lower convex hull is a chain of "upgrades" with decreasing damage reduction per extra
 * cost unit. Start every item at its cheapest hull point, then take upgrades in order of that ratio
 * across all items (an item's own upgrades come out in hull order because their ratios decrease), and
 * skip an item for good once its next upgrade does not fit.
 *
 * Approximation: options off the hull are never chosen, and the knapsack's integrality is ignored when an
 * upgrade does not fit, so greedy can miss the optimum by up to one upgrade's damage reduction per item
 * left stuck. It is exact when every item's hull upgrades all cost the same unit and the hull is the
 * whole staircase (equal-step convex instances: the marginal-analysis theorem for separable convex
 * resource allocation, Gross 1956 / Fox 1966), and whenever the budget lands exactly on a hull vertex.
 *
 * The same sorted upgrades give the LP relaxation's optimum (Sinha & Zoltners 1979): take whole upgrades
 * until one does not fit and a fraction of that one. It is a valid lower bound on the integer optimum, so
 * greedy results carry a certified gap. With a latency bound, greedy skips upgrades that break it (and
 * the bound ignores latency, which only loosens it).
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

interface Upgrade {
  readonly item: number;
  /** Option index the upgrade moves the item to. */
  readonly to: number;
  readonly extraCost: number;
  readonly damageDrop: number;
  readonly ratio: number;
}

/**
 * Indices of an item's options on the lower convex hull of (cost, damage), cheapest first.
 * Dominated options (no cheaper and no better than another) are dropped first.
 */
export function lowerHull(options: readonly { cost: number; damage: number }[]): number[] {
  const order = options.map((_, i) => i);
  order.sort((a, b) => options[a]!.cost - options[b]!.cost || options[a]!.damage - options[b]!.damage);
  // Staircase: strictly more cost must buy strictly less damage.
  const stair: number[] = [];
  for (const i of order) {
    const last = stair[stair.length - 1];
    if (last === undefined || options[i]!.damage < options[last]!.damage) {
      if (last !== undefined && options[i]!.cost === options[last]!.cost) continue;
      stair.push(i);
    }
  }
  // Monotone chain: drop the middle point while it lies on or above the segment of its neighbours.
  const hull: number[] = [];
  for (const i of stair) {
    while (hull.length >= 2) {
      const a = options[hull[hull.length - 2]!]!;
      const b = options[hull[hull.length - 1]!]!;
      const c = options[i]!;
      const cross = (b.cost - a.cost) * (c.damage - a.damage) - (b.damage - a.damage) * (c.cost - a.cost);
      if (cross <= 0) hull.pop();
      else break;
    }
    hull.push(i);
  }
  return hull;
}

export interface GreedyResult {
  readonly allocation: Allocation;
  /** Optimum of the LP relaxation: a lower bound on the exact optimum. */
  readonly lpBound: number;
  /** Chosen option per item of the reduced problem. */
  readonly options: readonly number[];
}

/** Greedy on an already reduced problem. */
export function solveReducedGreedy(r: ReducedProblem): GreedyResult {
  const t0 = nowMs();
  const current: number[] = [];
  const upgrades: Upgrade[] = [];
  let cost = 0;
  let latency = 0;
  let damage = 0;
  r.items.forEach((it, k) => {
    const hull = lowerHull(it.options);
    const start = it.options[hull[0]!]!;
    current.push(hull[0]!);
    cost += start.cost;
    latency += start.latency;
    damage += start.damage;
    for (let t = 1; t < hull.length; t++) {
      const a = it.options[hull[t - 1]!]!;
      const b = it.options[hull[t]!]!;
      const extraCost = b.cost - a.cost;
      const damageDrop = a.damage - b.damage;
      upgrades.push({ item: k, to: hull[t]!, extraCost, damageDrop, ratio: damageDrop / extraCost });
    }
  });
  if (r.maxLatency !== undefined && latency > r.maxLatency)
    throw new MixqError(
      'greedy starts from the smallest schemes, which break the latency bound; use the exact solver',
      { source: 'allocation problem', field: 'maxLatency' },
    );
  // Stable order: best ratio first; within an item the hull order already has decreasing ratios.
  upgrades.sort((u, v) => v.ratio - u.ratio || u.item - v.item);

  let lpBound = damage;
  let lpRoom = r.capacity - cost;
  let lpDone = false;
  const blocked = new Uint8Array(r.items.length);
  for (const u of upgrades) {
    if (!lpDone) {
      if (u.extraCost <= lpRoom) {
        lpRoom -= u.extraCost;
        lpBound -= u.damageDrop;
      } else {
        lpBound -= (u.damageDrop * lpRoom) / u.extraCost;
        lpDone = true;
      }
    }
    if (blocked[u.item]) continue;
    const opt = r.items[u.item]!.options[u.to]!;
    const prev = r.items[u.item]!.options[current[u.item]!]!;
    const newLatency = latency - prev.latency + opt.latency;
    if (cost + u.extraCost > r.capacity || (r.maxLatency !== undefined && newLatency > r.maxLatency)) {
      blocked[u.item] = 1;
      continue;
    }
    cost += u.extraCost;
    latency = newLatency;
    current[u.item] = u.to;
  }
  const allocation = buildAllocation(r, current, {
    status: 'heuristic',
    solver: 'greedy',
    timeMs: nowMs() - t0,
    lowerBound: lpBound,
  });
  return { allocation, lpBound, options: current };
}

/**
 * Greedy allocation (fast, feasible, never better than the exact optimum; see the file header for when it
 * is exact). The result's lowerBound / gap come from the LP relaxation.
 * @example solveGreedy({ weights, budget: { kind: 'bytes', bytes: 1_500_000 } }).damage
 */
export function solveGreedy(problem: AllocationProblem): Allocation {
  return solveReducedGreedy(reduceProblem(problem)).allocation;
}

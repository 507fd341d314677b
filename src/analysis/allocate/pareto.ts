/**
 * Pareto sweep (size vs predicted damage), as HAWQ-V2 plots it: the optimal allocation for a list of
 * budgets, or for evenly spaced budgets from the smallest to the largest achievable size, and the
 * frontier (the points no other point beats in both size and damage).
 *
 * Optimal damage cannot increase with the budget (a bigger budget admits every smaller solution). Solvers
 * stop at a tolerance, so the sweep also carries the best solution found at a smaller budget forward when
 * it beats the one found for a larger budget: the reported damage is then non-increasing by construction,
 * and every reported allocation is feasible for its budget.
 */
import { MixqError } from '../../core/errors.ts';
import { buildDpTable, type DpOptions } from './dp.ts';
import { solveReducedGreedy } from './greedy.ts';
import { loadHighs, type MilpOptions, solveReducedMilp } from './milp.ts';
import {
  type AllocBudget,
  type Allocation,
  type AllocationProblem,
  buildAllocation,
  costRange,
  exactBitsCapacity,
  isInfeasible,
  nowMs,
  type ReducedProblem,
  reduceProblem,
} from './problem.ts';

export interface ParetoOptions extends MilpOptions, DpOptions {
  /** Budgets in the problem's budget unit (bytes, or bits per weight); default: `points` spanning min..max. */
  readonly budgets?: readonly number[];
  /** Number of automatic budgets (default 16). */
  readonly points?: number;
  /** Default 'highs'. 'dp' builds one table for all budgets; 'greedy' is the fast fallback. */
  readonly solver?: 'highs' | 'dp' | 'greedy';
}

export interface ParetoPoint {
  /** The budget, in the problem's unit (bytes or bits per weight). */
  readonly budget: number;
  readonly allocation: Allocation;
}

export interface ParetoResult {
  /** One point per feasible budget, in increasing budget order. */
  readonly points: readonly ParetoPoint[];
  /** Distinct non-dominated allocations, in increasing size. */
  readonly frontier: readonly Allocation[];
  /** Requested budgets below the smallest achievable size. */
  readonly infeasibleBudgets: readonly number[];
}

function capacityOf(r: ReducedProblem, kind: AllocBudget['kind'], budget: number): number {
  return kind === 'bytes' ? Math.floor(budget) : exactBitsCapacity(budget, r.totalElements);
}

/**
 * Optimal damage for each budget and the frontier.
 * @example
 * const { points, frontier } = await paretoSweep(problem, { points: 12 });
 * points.map((p) => [p.allocation.bitsPerWeight, p.allocation.damage])
 */
export async function paretoSweep(
  problem: AllocationProblem,
  opts: ParetoOptions = {},
): Promise<ParetoResult> {
  const kind = problem.budget.kind;
  // Reduce once at an unbounded budget; each sweep point only changes the capacity.
  const unbounded: AllocBudget =
    kind === 'bytes' ? { kind, bytes: Number.MAX_SAFE_INTEGER } : { kind, bits: 1e9 };
  const base = reduceProblem({ ...problem, budget: unbounded });
  const { min, max } = costRange(base);
  const unit = kind === 'bytes' ? 1 : base.totalElements;
  let budgets: number[];
  if (opts.budgets) budgets = [...opts.budgets].sort((a, b) => a - b);
  else {
    const n = Math.max(2, opts.points ?? 16);
    budgets = Array.from({ length: n }, (_, t) => (min + ((max - min) * t) / (n - 1)) / unit);
    // Evenly spaced in cost; expressed back in the budget's unit, rounded down to stay exact.
    if (kind === 'bytes') budgets = budgets.map(Math.floor);
    else budgets = budgets.map((b, t) => (t === n - 1 ? max / unit : b));
  }
  const solver = opts.solver ?? 'highs';
  const highs = solver === 'highs' ? await loadHighs() : undefined;
  const dpTable = solver === 'dp' ? buildDpTable({ ...base, capacity: max }, opts) : undefined;

  const points: ParetoPoint[] = [];
  const infeasibleBudgets: number[] = [];
  let carried: Allocation | undefined;
  for (const budget of budgets) {
    const capacity = capacityOf(base, kind, budget);
    if (capacity < min) {
      infeasibleBudgets.push(budget);
      continue;
    }
    const r: ReducedProblem = { ...base, capacity, problem: { ...problem, budget: budgetOf(kind, budget) } };
    let a: Allocation;
    if (highs) {
      try {
        a = solveReducedMilp(highs, r, opts);
      } catch (e) {
        // with a latency bound a budget can be jointly infeasible though large enough alone
        if (!isInfeasible(e)) throw e;
        infeasibleBudgets.push(budget);
        continue;
      }
    } else if (dpTable) {
      const t0 = nowMs();
      const choice = dpTable.assignment(capacity);
      if (!choice) {
        infeasibleBudgets.push(budget);
        continue;
      }
      a = buildAllocation(r, choice, {
        status: dpTable.quantum === 1 ? 'optimal' : 'heuristic',
        solver: 'dp',
        timeMs: nowMs() - t0,
      });
    } else a = solveReducedGreedy(r).allocation;
    if (carried && carried.damage < a.damage) a = { ...carried, timeMs: a.timeMs };
    carried = a;
    points.push({ budget, allocation: a });
  }
  if (points.length === 0 && budgets.length > 0)
    throw new MixqError(`every budget is below the smallest achievable size (${min} ${base.costUnit})`, {
      source: 'allocation problem',
      field: 'budgets',
    });
  return { points, frontier: frontierOf(points.map((p) => p.allocation)), infeasibleBudgets };
}

function budgetOf(kind: AllocBudget['kind'], v: number): AllocBudget {
  return kind === 'bytes' ? { kind, bytes: v } : { kind, bits: v };
}

/** Distinct allocations not dominated in (bits, damage), by increasing size. */
export function frontierOf(all: readonly Allocation[]): Allocation[] {
  const sorted = [...all].sort((a, b) => a.bits - b.bits || a.damage - b.damage);
  const out: Allocation[] = [];
  for (const a of sorted) {
    const last = out[out.length - 1];
    if (!last || a.damage < last.damage) {
      if (last && last.bits === a.bits) out.pop();
      out.push(a);
    }
  }
  return out;
}

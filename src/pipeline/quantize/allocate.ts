/**
 * Stage 3, allocate: budgeted allocations of the sensitivity stage's options (HiGHS MILP, greedy when
 * HiGHS fails), over the report's Pareto sweep and at the run's budget; a --max-loss budget bisects the
 * predicted-damage frontier with real evaluations on the validation split. Every plan kept at a budget
 * goes through select.ts and is scored (evaluate.ts) onto the mixq curve.
 *
 *   takes  the run context, the evaluator, the selector, the allocation weights, the budget and sweep
 *   gives  Allocated: the chosen allocation and its metric, the sweep's plans, the mixq curve
 */
import {
  type AllocationProblem,
  type AllocBudget,
  type Allocation,
  type AllocWeight,
  isInfeasible,
} from '../../analysis/allocate/problem.ts';
import { solveGreedy } from '../../analysis/allocate/greedy.ts';
import { solveMilp } from '../../analysis/allocate/milp.ts';
import { paretoSweep } from '../../analysis/allocate/pareto.ts';
import { MixqError } from '../../core/errors.ts';
import { formatMetric } from '../../report/summary.ts';
import type { ReportPoint, ReportSelection } from '../../report/types.ts';
import type { RunContext } from './context.ts';
import type { Evaluator } from './evaluate.ts';
import type { QuantizeBudget } from './options.ts';
import type { Selector } from './select.ts';

/** The allocation for one budget: HiGHS, or greedy when HiGHS fails. */
export async function allocate(problem: AllocationProblem, timeLimitSec: number): Promise<Allocation> {
  try {
    return await solveMilp(problem, { timeLimitSec });
  } catch (e) {
    if (isInfeasible(e) || (e instanceof MixqError && /infeasible|below the smallest/i.test(e.message)))
      throw e;
    return solveGreedy(problem);
  }
}

/** The budget as the command line wrote it (with the latency bound of a size or loss budget, if any). */
export function budgetLabel(b: QuantizeBudget, maxLatency?: number): string {
  const lat = maxLatency === undefined || b.kind === 'latency' ? '' : ` --latency ${maxLatency}`;
  if (b.kind === 'bitsPerWeight') return `--bits ${b.bits}${lat}`;
  if (b.kind === 'bytes') return `--size ${b.bytes} B${lat}`;
  if (b.kind === 'latency') return `--latency ${b.msPerToken} ms/token`;
  return `--max-loss ${100 * b.relative}%${lat}`;
}

/** The mixq curve of the report: one point per plan kept at a budget. */
export interface Curve {
  readonly points: ReportPoint[];
  add(a: Allocation, metric: number, budget: string): void;
}

export function curve(ev: Evaluator, sel: Selector): Curve {
  const points: ReportPoint[] = [];
  return {
    points,
    add: (a, metric, budget) =>
      points.push({
        ...ev.allocationDetails(a),
        ...sel.selectionOf(a),
        bitsPerWeight: a.bitsPerWeight,
        bytes: a.bytes,
        metric,
        budget,
        predictedDamage: a.damage,
      }),
  };
}

/**
 * What one solve needs: the problem's weights, the solver's time limit and the latency bound (ms per
 * token; the weights' candidates then carry their latency).
 */
export interface Solver {
  readonly weights: readonly AllocWeight[];
  readonly timeLimitSec: number;
  readonly maxLatency?: number;
}

/** A solver's problem at a budget. */
function problemAt(solver: Solver, budget: AllocBudget): AllocationProblem {
  return {
    weights: solver.weights,
    budget,
    ...(solver.maxLatency !== undefined ? { maxLatency: solver.maxLatency } : {}),
  };
}

export interface Allocated {
  readonly chosen: Allocation;
  readonly chosenMetric: number;
}

/** The Pareto sweep of the report: the plan kept at each bits-per-weight budget, scored onto the curve. */
export async function sweepPlans(
  ctx: RunContext,
  ev: Evaluator,
  sel: Selector,
  solver: Solver,
  budgets: readonly number[],
  points: Curve,
): Promise<Map<number, Allocation>> {
  const pareto = await paretoSweep(problemAt(solver, { kind: 'bitsPerWeight', bits: 8 }), {
    budgets,
    timeLimitSec: solver.timeLimitSec,
  });
  let done = 0;
  const plans = new Map<number, Allocation>();
  for (const p of pareto.points) {
    ctx.progress('sweep', done++, pareto.points.length);
    const a = await sel.chooseAt(p.allocation, { kind: 'bitsPerWeight', bits: p.budget });
    plans.set(p.budget, a);
    const m = (await ev.scoreAllocation(a)).value;
    points.add(a, m, `${p.budget} b/w`);
    ctx.log(`mixq at ${p.budget} b/w: ${ctx.task.metric.name} ${formatMetric(m)}`);
  }
  for (const b of pareto.infeasibleBudgets)
    ctx.log(
      `budget ${b} b/w is below the smallest plan for --emit ${ctx.target.name}${solver.maxLatency !== undefined ? ` within ${solver.maxLatency} ms/token` : ''}`,
    );
  return plans;
}

/** The plan at the run's budget (a sweep point's when the budget is one), scored onto the curve. */
export async function chosenPlan(
  ctx: RunContext,
  ev: Evaluator,
  sel: Selector,
  solver: Solver,
  budget: QuantizeBudget,
  sweep: ReadonlyMap<number, Allocation>,
  points: Curve,
): Promise<Allocated> {
  if (budget.kind === 'maxLoss') return searchMaxLoss(ctx, ev, sel, solver, budget.relative, points);
  // a latency budget bounds no size: the whole candidate range
  const b: AllocBudget =
    budget.kind === 'bitsPerWeight'
      ? budget
      : { kind: 'bytes', bytes: budget.kind === 'bytes' ? budget.bytes : Number.MAX_SAFE_INTEGER };
  const chosen =
    (budget.kind === 'bitsPerWeight' ? sweep.get(budget.bits) : undefined) ??
    (await sel.chooseAt(await allocate(problemAt(solver, b), solver.timeLimitSec), b));
  const chosenMetric = (await ev.scoreAllocation(chosen)).value;
  // a --bits budget that is also a sweep point is already on the curve
  if (!(budget.kind === 'bitsPerWeight' && sweep.has(budget.bits)))
    points.add(chosen, chosenMetric, budgetLabel(budget, solver.maxLatency));
  return { chosen, chosenMetric };
}

/**
 * The smallest plan within `relative` of fp32 by the real metric, not the proxy: bisection over the
 * predicted-damage frontier with evaluations on the validation split (the evaluation split only reports
 * the plan found, so the target is not checked on the numbers it is reported with).
 */
async function searchMaxLoss(
  ctx: RunContext,
  ev: Evaluator,
  sel: Selector,
  solver: Solver,
  relative: number,
  points: Curve,
): Promise<Allocated> {
  const { task } = ctx;
  const front = await paretoSweep(problemAt(solver, { kind: 'bitsPerWeight', bits: 8 }), {
    points: 24,
    timeLimitSec: solver.timeLimitSec,
  });
  const allocs = front.points.map((p) => p.allocation);
  const fp32Val = await ev.validate('fp32', 'task');
  const within = (m: number, ref: number) =>
    task.metric.direction === 'lower' ? m <= ref * (1 + relative) : m >= ref * (1 - relative);
  let lo = 0;
  let hi = allocs.length - 1;
  let best: Allocation | undefined;
  const tried: ReportSelection['tried'][number][] = [];
  const label = (a: Allocation) => `frontier ${a.bitsPerWeight.toFixed(2)} b/w`;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const a = allocs[mid]!;
    const m = await ev.validate(a, 'task');
    tried.push({ label: label(a), bitsPerWeight: a.bitsPerWeight, bytes: a.bytes, validation: m });
    const ok = within(m, fp32Val);
    ctx.log(
      `max-loss search: ${a.bitsPerWeight.toFixed(3)} b/w -> validation ${formatMetric(m)} (fp32 ${formatMetric(fp32Val)}, ${ok ? 'within' : 'outside'} target)`,
    );
    if (ok) {
      best = a;
      hi = mid - 1;
    } else lo = mid + 1;
  }
  if (!best)
    throw new MixqError(
      `no plan up to ${allocs[allocs.length - 1]!.bitsPerWeight.toFixed(2)} b/w stays within ${100 * relative}% of fp32 on the validation split`,
      { source: 'budget', expected: 'a larger --max-loss, or --emit none for more formats' },
    );
  sel.record(best, {
    chosen: label(best),
    metric: `${task.metric.name} on validation`,
    ...(task.metric.unit ? { unit: task.metric.unit } : {}),
    tried,
    fp32: fp32Val,
  });
  const chosenMetric = (await ev.scoreAllocation(best)).value;
  points.add(best, chosenMetric, budgetLabel({ kind: 'maxLoss', relative }, solver.maxLatency));
  const fp32 = ev.fp32.value;
  ctx.log(
    `max-loss plan: ${best.bitsPerWeight.toFixed(3)} b/w, ${task.metric.name} ${formatMetric(chosenMetric)} on the evaluation split (${within(chosenMetric, fp32) ? 'within' : 'OUTSIDE'} ${100 * relative}% of fp32 ${formatMetric(fp32)})`,
  );
  return { chosen: best, chosenMetric };
}

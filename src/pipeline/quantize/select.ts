/**
 * Stage 4 (part), select: the plan kept at a budget. The solver's plan competes with the uniform plans of
 * the candidate set within 10% below the budget (and within the latency bound, if any; a latency budget
 * alone: within 10% below it), on the task's validation split (never the evaluation split the plan is
 * reported on); the best one is kept and how it was chosen goes into the report.
 *
 *   takes  the evaluator, the allocation weights, whether to select, the latency bound
 *   gives  Selector: chooseAt(solver plan, budget) -> the kept plan; the recorded selections
 */
import {
  type AllocBudget,
  type Allocation,
  type AllocWeight,
  exactBitsCapacity,
  uniformAllocations,
} from '../../analysis/allocate/problem.ts';
import type { ReportSelection } from '../../report/types.ts';
import type { RunContext } from './context.ts';
import { allocationKey, type Evaluator } from './evaluate.ts';

export interface Selector {
  /** The solver's plan at `b`, or the alternative with the best validation metric. */
  chooseAt(proxy: Allocation, b: AllocBudget): Promise<Allocation>;
  /** Records how a plan was chosen (the --max-loss search records its own). */
  record(a: Allocation, s: ReportSelection): void;
  /** How a plan was chosen, if it was. */
  selectionOf(a: Allocation): { selection?: ReportSelection };
}

export function selector(
  ctx: RunContext,
  ev: Evaluator,
  weights: readonly AllocWeight[],
  select: boolean,
  maxLatency?: number,
): Selector {
  const { task } = ctx;
  const elements = weights.reduce((s, w) => s + w.elements, 0);
  const uniforms = uniformAllocations({
    weights,
    budget: { kind: 'bytes', bytes: Number.MAX_SAFE_INTEGER },
    ...(maxLatency !== undefined ? { maxLatency } : {}),
  });
  const costOf = (a: Allocation, b: AllocBudget) => (b.kind === 'bytes' ? a.bytes : a.bits);
  const capacityOf = (b: AllocBudget) => (b.kind === 'bytes' ? b.bytes : exactBitsCapacity(b.bits, elements));
  const fits = (u: Allocation, b: AllocBudget, cap: number): boolean => {
    if (costOf(u, b) > cap) return false;
    if (maxLatency === undefined) return costOf(u, b) >= 0.9 * cap;
    const lat = u.latency ?? Infinity;
    if (lat > maxLatency) return false;
    // a size budget: near it; no size bound (a latency budget): near the latency bound
    return cap < Number.MAX_SAFE_INTEGER ? costOf(u, b) >= 0.9 * cap : lat >= 0.9 * maxLatency;
  };
  const selections = new Map<string, ReportSelection>(); // allocation key -> how it was chosen
  return {
    async chooseAt(proxy, b) {
      if (!select) return proxy;
      const cap = capacityOf(b);
      const tried: { label: string; a: Allocation }[] = [{ label: 'proxy', a: proxy }];
      const fitting = uniforms.filter((u) => fits(u, b, cap));
      for (const u of fitting.slice(-2)) tried.push({ label: `uniform ${u.schemes[0]}`, a: u });
      const unique: typeof tried = [];
      for (const t of tried)
        if (!unique.some((u) => allocationKey(u.a) === allocationKey(t.a))) unique.push(t);
      if (unique.length === 1) return proxy;
      let best = unique[0]!;
      let bestM = await ev.validate(best.a, 'choice');
      const scored = [{ ...best, m: bestM }];
      for (const t of unique.slice(1)) {
        const m = await ev.validate(t.a, 'choice');
        scored.push({ ...t, m });
        if (ev.choiceBetter(m, bestM)) ({ best, bestM } = { best: t, bestM: m });
      }
      selections.set(allocationKey(best.a), {
        chosen: best.label,
        metric: ev.choice.name,
        ...(task.choice || !task.metric.unit ? {} : { unit: task.metric.unit }),
        tried: scored.map((t) => ({
          label: t.label,
          bitsPerWeight: t.a.bitsPerWeight,
          bytes: t.a.bytes,
          validation: t.m,
        })),
      });
      return best.a;
    },
    record: (a, s) => selections.set(allocationKey(a), s),
    selectionOf(a) {
      const sel = selections.get(allocationKey(a));
      return sel ? { selection: sel } : {};
    },
  };
}

/**
 * Stage 4, evaluate: scoring plans with onnxruntime on the task's data. An allocation's simulated weights
 * (simulate.ts, cached per weight and scheme) with the corrected biases are written into the loaded
 * model's bytes (a copy, model.node.ts) and run: on the evaluation split (`score`, what is reported) or on
 * the validation split (`validate`, what chooses between plans). Scores are cached per allocation.
 *
 *   takes  the run context, the sensitivity stage's weights, the bias corrector
 *   gives  Evaluator: fp32's score, cached scores of allocations, validation values, change intervals
 */
import type { Allocation } from '../../analysis/allocate/problem.ts';
import { schemeId } from '../../analysis/sensitivity/candidates.ts';
import { better } from '../../report/summary.ts';
import type { ReportMetric, ReportPoint } from '../../report/types.ts';
import { pairedChangeInterval } from '../../runtime/metrics.ts';
import type { Scheme } from '../../quant/scheme.ts';
import type { ChoiceMetric, TaskScore } from '../tasks.node.ts';
import type { BiasCorrector } from './bias.ts';
import type { RunContext } from './context.ts';
import type { AnalysedWeight } from './sensitivity.ts';
import { type Simulated, simulateWeight } from './simulate.ts';

export type Replacements = ReadonlyMap<string, Float32Array>;

export type PointDetails = Pick<ReportPoint, 'metricChangeCi' | 'outputs'>;

export interface Evaluator {
  readonly metric: ReportMetric;
  readonly fp32: TaskScore;
  /** A weight under a scheme (cached). */
  simulate(w: AnalysedWeight, s: Scheme): Simulated;
  /** The simulated weights of an allocation of the sensitivity stage's weights. */
  replacements(a: Allocation): Map<string, Float32Array>;
  /** The task metric on the evaluation split of a model with these weights (and corrected biases). */
  score(rep: Replacements): Promise<TaskScore>;
  /** `score` of an allocation, cached. */
  scoreAllocation(a: Allocation): Promise<TaskScore>;
  /** The choice metric ('choice') or the task metric ('task') on the validation split, cached. */
  validate(a: Allocation | 'fp32', what: 'choice' | 'task'): Promise<number>;
  /** The choice metric: the task's own, or its metric on the validation split. */
  readonly choice: ChoiceMetric;
  /** Whether choice value a is better than b. */
  choiceBetter(a: number, b: number): boolean;
  /**
   * What a report point shows of a score besides its value: the 95% paired-bootstrap interval of its
   * change from fp32 (same lines / windows) and each measured output's statistics.
   */
  details(s: TaskScore): PointDetails;
  /** details of an allocation already scored. */
  allocationDetails(a: Allocation): PointDetails;
  /** Evaluations run and milliseconds spent in them. */
  readonly counts: { evaluations: number; ms: number };
}

/** An allocation's key: its scheme ids in weight order. */
export const allocationKey = (a: Allocation): string => a.schemes.join('|');

export async function evaluator(
  ctx: RunContext,
  weights: readonly AnalysedWeight[],
  bias: BiasCorrector | undefined,
): Promise<Evaluator> {
  const { task, model } = ctx;
  const cache = new Map<string, Simulated>();
  const simulate = (w: AnalysedWeight, s: Scheme): Simulated => {
    const key = `${w.name}\u0000${schemeId(s)}`;
    let q = cache.get(key);
    if (!q) {
      q = simulateWeight(model.original(w.name), w.layout, s, w.stats, ctx.target.needsCodes(s), ctx.matrix);
      cache.set(key, q);
    }
    return q;
  };
  const withBias = (rep: Replacements): Replacements =>
    bias ? new Map([...rep, ...bias.corrections(rep)]) : rep;
  const counts = { evaluations: 0, ms: 0 };
  const timed = async <T>(f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await f();
    counts.evaluations++;
    counts.ms += performance.now() - t;
    return r;
  };
  const score = (rep: Replacements) => timed(() => model.variants.run(withBias(rep), (r) => task.score(r)));
  const replacements = (a: Allocation) =>
    new Map(weights.map((w, i) => [w.name, simulate(w, w.options[a.choice[i]!]!.scheme).Q] as const));
  const fp32 = await score(new Map());
  const details = (s: TaskScore): PointDetails => ({
    ...(s.items && fp32.items ? { metricChangeCi: pairedChangeInterval(fp32.items, s.items) } : {}),
    ...(s.outputs ? { outputs: s.outputs } : {}),
  });
  const scored = new Map<string, TaskScore>();
  const metric: ReportMetric = {
    name: task.metric.name,
    fp32: fp32.value,
    direction: task.metric.direction,
    ...(task.metric.unit ? { unit: task.metric.unit } : {}),
  };
  // what ranks plans on the validation split: the task's choice metric, else the task metric there
  const choice: ChoiceMetric = task.choice ?? {
    name: `${task.metric.name} on validation`,
    score: async (r) => (await task.validate(r)).value,
  };
  const validated = new Map<string, number>(); // 'choice' | 'task', allocation key -> validation value
  return {
    metric,
    fp32,
    simulate,
    replacements,
    score,
    async scoreAllocation(a) {
      const key = allocationKey(a);
      let m = scored.get(key);
      if (m === undefined) {
        m = await score(replacements(a));
        scored.set(key, m);
      }
      return m;
    },
    async validate(a, what) {
      const key = `${what}\u0000${a === 'fp32' ? '' : allocationKey(a)}`;
      const known = validated.get(key);
      if (known !== undefined) return known;
      const rep = withBias(a === 'fp32' ? new Map() : replacements(a));
      const m = await timed(() =>
        model.variants.run(rep, async (r) =>
          what === 'choice' ? choice.score(r) : (await task.validate(r)).value,
        ),
      );
      validated.set(key, m);
      return m;
    },
    choice,
    choiceBetter: (a, b) => (task.choice ? a < b : better(metric, a, b)),
    details,
    allocationDetails(a) {
      const sc = scored.get(allocationKey(a));
      return sc ? details(sc) : {};
    },
    counts,
  };
}

/**
 * Stage 5, baselines: what a user would otherwise run, scored on the same evaluation data: one scheme
 * everywhere (UNIFORM_BASELINES, targets.ts) and llama.cpp's Q4_K_M rule with ggml's own block quantizers;
 * then mixq's plan at each baseline's exact size, and the paired difference of the two.
 *
 *   takes  the run context, the evaluator, the selector, the sensitivity stage's weights, the mixq curve
 *   gives  Baselines: the report's baseline series and the equal-size comparisons
 */
import type { AllocBudget, Allocation, AllocWeight } from '../../analysis/allocate/problem.ts';
import { GGML_SHAPE_FALLBACK, Q4_K_M_SCHEMES, ruleMix } from '../../analysis/allocate/rule-mix.ts';
import { intScheme, schemeCost, schemeId } from '../../analysis/sensitivity/candidates.ts';
import { importanceOf } from '../../analysis/sensitivity/apply-scheme.ts';
import { getBlockType } from '../../blocks/registry.ts';
import { fromRows, toRows } from '../../quant/layout.ts';
import { better, equalSizeBudget, formatMetric } from '../../report/summary.ts';
import type { ReportSeries } from '../../report/types.ts';
import { pairedChangeInterval } from '../../runtime/metrics.ts';
import { withEvalRunner } from '../../runtime/session-pool.node.ts';
import type { TaskBaseline, TaskScore } from '../tasks.node.ts';
import { evalRow, type LmEvalRow } from '../llm/evaluate.ts';
import { allocate, type Curve } from './allocate.ts';
import type { RunContext } from './context.ts';
import type { Evaluator } from './evaluate.ts';
import type { Selector } from './select.ts';
import type { AnalysedWeight } from './sensitivity.ts';
import { UNIFORM_BASELINES } from './targets.ts';

export interface Comparison {
  readonly baseline: string;
  readonly bytes: number;
  readonly bitsPerWeight: number;
  readonly baselineMetric: number;
  /** mixq's plan at a size budget equal to the baseline's bytes. */
  readonly mixqMetric: number;
  readonly mixqBytes: number;
  /** mixq is better (strictly) on the metric. */
  readonly better: boolean;
  /** mixq's plan is the baseline's own (validation kept the uniform plan of the baseline's scheme). */
  readonly samePlan?: boolean;
  /**
   * 95% paired-bootstrap interval of mixq's metric minus the baseline's (same lines / windows): when it
   * holds 0 the two differ by less than the evaluation data can tell.
   */
  readonly differenceCi?: readonly [number, number];
  /**
   * Language models: both rows as the GGUF flow reports them (KL, top-1 and perplexity with their paired
   * intervals against fp32; llm/evaluate.ts evalRow).
   */
  readonly lm?: { readonly baseline: LmEvalRow; readonly mixq: LmEvalRow };
}

export interface Baselines {
  readonly series: ReportSeries[];
  readonly comparisons: Comparison[];
}

interface Job {
  readonly label: string;
  readonly kind: 'uniform' | 'rule';
  /** The uniform baseline's candidate id. */
  readonly id?: string;
  readonly rep: Map<string, Float32Array>;
  readonly bytes: number;
  readonly bits: number;
  /** The baseline's own file, scored instead of `rep` (TaskBaseline.file). */
  readonly file?: () => Promise<Uint8Array>;
}

/**
 * llama.cpp's Q4_K_M rule on the model's weights, with ggml's own block quantizers (importance matrix =
 * the calibration E[x^2]) along each weight's reduction axis; K-quants fall back as llama.cpp does when a
 * row is not a multiple of 256, and weights whose rows are not a multiple of 32 stay at Q8_0's cost in
 * int8 per channel.
 */
function ruleMixBaseline(ctx: RunContext, ev: Evaluator, weights: readonly AnalysedWeight[]): Job {
  const mix = ruleMix(
    weights.map((w) => ({
      name: w.name,
      ...(w.role ? { role: w.role } : {}),
      ...(w.layer !== undefined ? { layer: w.layer } : {}),
    })),
    Q4_K_M_SCHEMES,
  );
  const int8 = intScheme(8, 'pc');
  const rep = new Map<string, Float32Array>();
  let bytes = 0;
  let bits = 0;
  for (const w of weights) {
    let type = mix.get(w.name)!;
    const cols = w.layout.cols;
    if (cols % 256 !== 0) type = GGML_SHAPE_FALLBACK[type] ?? type;
    const bt = getBlockType(type);
    if (cols % bt.blockSize !== 0) {
      rep.set(w.name, ev.simulate(w, int8).Q);
      const c = schemeCost(int8, w.layout);
      bytes += c.bytes;
      bits += c.bits;
      continue;
    }
    const Wr = toRows(ctx.model.original(w.name), w.layout);
    const enc = bt.encode(Wr, importanceOf(w.layout, w.stats));
    rep.set(w.name, fromRows(bt.decode(enc, Wr.length), w.layout));
    bytes += enc.length;
    bits += 8 * enc.length;
  }
  return { label: 'Q4_K_M rule (ggml blocks)', kind: 'rule', rep, bytes, bits };
}

/** A task's own baselines (tasks.node.ts TaskBaseline): weights a baseline leaves alone stay float32. */
function taskBaselines(
  ctx: RunContext,
  ev: Evaluator,
  weights: readonly AnalysedWeight[],
  baselines: readonly TaskBaseline[],
): Job[] {
  return baselines.map((b) => {
    const rep = new Map<string, Float32Array>();
    let bytes = 0;
    for (const w of weights) {
      const q = b.quantize({
        name: w.name,
        consumer: w.consumer,
        layout: w.layout,
        original: () => ctx.model.original(w.name),
        simulate: (s) => ev.simulate(w, s).Q,
      });
      if (q) rep.set(w.name, q.Q);
      bytes += q ? q.bytes : 4 * w.elements;
    }
    const file = b.file?.bind(b);
    return {
      label: b.label,
      kind: 'uniform' as const,
      rep,
      bytes,
      bits: 8 * bytes,
      ...(file ? { file: () => file(ctx.model.onnx.model) } : {}),
    };
  });
}

/** A language model's row of a score (KL, top-1, perplexity against fp32's windows). */
export function lmRow(
  label: string,
  kind: LmEvalRow['kind'],
  bytes: number,
  bitsPerWeight: number,
  fp32: TaskScore,
  s: TaskScore,
): LmEvalRow | undefined {
  if (!fp32.lm || !s.lm) return undefined;
  return evalRow(
    { label, kind: kind === 'input' ? 'uniform' : kind, fileBytes: bytes, bitsPerWeight, weightBytes: bytes },
    fp32.lm,
    s.lm,
  );
}

function uniformBaselines(ev: Evaluator, weights: readonly AnalysedWeight[]): Job[] {
  return UNIFORM_BASELINES.map((b) => {
    const rep = new Map<string, Float32Array>();
    let bytes = 0;
    let bits = 0;
    for (const w of weights) {
      rep.set(w.name, ev.simulate(w, b.scheme).Q);
      const cost = schemeCost(b.scheme, w.layout);
      bytes += cost.bytes;
      bits += cost.bits;
    }
    return { label: b.label, kind: 'uniform' as const, id: schemeId(b.scheme), rep, bytes, bits };
  });
}

export async function runBaselines(
  ctx: RunContext,
  ev: Evaluator,
  sel: Selector,
  weights: readonly AnalysedWeight[],
  allocWeights: readonly AllocWeight[],
  timeLimitSec: number,
  points: Curve,
): Promise<Baselines> {
  const { task } = ctx;
  const elements = weights.reduce((s, w) => s + w.elements, 0);
  const jobs = task.baselines
    ? taskBaselines(ctx, ev, weights, task.baselines)
    : [...uniformBaselines(ev, weights), ruleMixBaseline(ctx, ev, weights)];
  ctx.log(`baseline weights quantized (${(ctx.sinceLap() / 1000).toFixed(1)} s)`);
  const series: ReportSeries[] = [];
  const comparisons: Comparison[] = [];
  let k = 0;
  for (const j of jobs) {
    ctx.progress('baselines', k++, jobs.length);
    const tj = performance.now();
    const jScore = j.file
      ? await withEvalRunner(await j.file(), (r) => task.score(r))
      : await ev.score(j.rep);
    const metric = jScore.value;
    const bpw = j.bits / elements;
    ctx.log(
      `baseline ${j.label}: ${bpw.toFixed(3)} b/w, ${task.metric.name} ${formatMetric(metric)} (${((performance.now() - tj) / 1000).toFixed(1)} s)`,
    );
    series.push({
      name: j.label,
      kind: j.kind,
      points: [{ bitsPerWeight: bpw, bytes: j.bytes, metric, ...ev.details(jScore) }],
    });
    // mixq at the same size
    let a: Allocation;
    try {
      const b: AllocBudget = { kind: 'bytes', bytes: j.bytes };
      a = await sel.chooseAt(await allocate({ weights: allocWeights, budget: b }, timeLimitSec), b);
    } catch (e) {
      ctx.log(
        `no mixq plan fits ${j.label}'s ${j.bytes} bytes (${e instanceof Error ? e.message : String(e)})`,
      );
      continue;
    }
    const mScore = await ev.scoreAllocation(a);
    const m = mScore.value;
    points.add(a, m, equalSizeBudget(j.label));
    const lmB = lmRow(j.label, 'uniform', j.bytes, bpw, ev.fp32, jScore);
    const lmM = lmRow(`mixq = ${j.label}`, 'mixq', a.bytes, a.bitsPerWeight, ev.fp32, mScore);
    comparisons.push({
      ...(lmB && lmM ? { lm: { baseline: lmB, mixq: lmM } } : {}),
      ...(jScore.items && mScore.items
        ? { differenceCi: pairedChangeInterval(jScore.items, mScore.items) }
        : {}),
      baseline: j.label,
      bytes: j.bytes,
      bitsPerWeight: bpw,
      baselineMetric: metric,
      mixqMetric: m,
      mixqBytes: a.bytes,
      better: better(ev.metric, m, metric),
      ...(j.id !== undefined && a.solver === 'uniform' && a.schemes[0] === j.id ? { samePlan: true } : {}),
    });
  }
  return { series, comparisons };
}

/**
 * The main job, `mixq quantize`, as a row of stages over one loaded model (docs/architecture.md):
 *
 *   load        model.node.ts     read and parse the input once
 *   calibrate   calibrate.ts      weight-fed session, probe, activation statistics
 *   sensitivity sensitivity.ts    damage per (weight, candidate); options per weight on the target
 *   latency     latency.node.ts   targets mixq's engine runs: each option's measured product time (cost table)
 *   evaluate    evaluate.ts       fp32 and every plan scored with onnxruntime on the task's data
 *   allocate    allocate.ts       Pareto sweep and the plan at the budget (select.ts keeps the best)
 *   baselines   baselines.ts      uniform schemes and the Q4_K_M rule, mixq at each one's size
 *   write       write.ts          the target's file and its check against the simulation
 *   report      report.ts         the plan file and the report
 *
 * Everything measured is measured with onnxruntime on the task's evaluation data (tasks.node.ts); a plan
 * is chosen on the validation split. Bits per weight and sizes count the quantized weights only (codes +
 * scales + zero points); the float parts (norms, biases, embeddings without an input activation) are
 * reported separately.
 */
import { schemeId } from '../../analysis/sensitivity/candidates.ts';
import type { DamageSource } from '../../analysis/sensitivity/table.ts';
import { MixqError } from '../../core/errors.ts';
import type { Plan } from '../../plan/schema.ts';
import type { Scheme } from '../../quant/scheme.ts';
import type { MatrixEngine } from '../../quant/matrix/engine.ts';
import type { ReportData } from '../../report/types.ts';
import { formatMetric } from '../../report/summary.ts';
import type { SensitivityAnalysis } from '../../runtime/sensitivity.node.ts';
import { type LoadedModel, loadModel } from '../model.node.ts';
import { type QuantTask, resolveTask } from '../tasks.node.ts';
import { type Allocated, chosenPlan, curve, sweepPlans } from './allocate.ts';
import type { LmEvalRow } from '../llm/evaluate.ts';
import { type Comparison, lmRow, runBaselines } from './baselines.ts';
import { type BiasCorrector, biasCorrector } from './bias.ts';
import { calibrate } from './calibrate.ts';
import { openMatrixEngine, type RunContext, runContext } from './context.ts';
import { type Evaluator, evaluator } from './evaluate.ts';
import type { QuantizeOptions } from './options.ts';
import { buildPlan, buildReport, chosenOptions } from './report.ts';
import { selector } from './select.ts';
import { latencyStage, predictedMsPerToken } from './latency.node.ts';
import { measureSensitivity, type Sensitivity } from './sensitivity.ts';
import { type OutputTarget, TARGETS } from './targets.ts';
import { type QuantizeOutput, writeStage } from './write.ts';
import type { PlannedWeight } from './writers.node.ts';

export type { Comparison } from './baselines.ts';
export type * from './options.ts';
export { TARGETS, type OutputTarget, type TargetName } from './targets.ts';
export type { QuantizeOutput } from './write.ts';

export interface QuantizeResult {
  readonly task: QuantTask;
  readonly plan: Plan;
  readonly report: ReportData;
  /** Metric of the fp32 model and of the chosen plan (simulated). */
  readonly fp32: number;
  readonly metric: number;
  readonly comparisons: readonly Comparison[];
  /** The output model (unless the target is 'none' or writing was off). */
  readonly output?: QuantizeOutput;
  readonly sensitivity: SensitivityAnalysis;
  /** Elements of the weights left in float. */
  readonly floatElements: number;
  /**
   * Language models: fp32 and the chosen plan (simulated) on the evaluation windows, KL / top-1 /
   * perplexity with paired intervals (the baselines' rows are in `comparisons[i].lm`).
   */
  readonly lm?: { readonly input: LmEvalRow; readonly mixq: LmEvalRow };
}

/** The latency bound of a run (ms per token of the weight products), if any. */
function latencyBound(opts: QuantizeOptions): number | undefined {
  return opts.budget.kind === 'latency' ? opts.budget.msPerToken : opts.latency?.msPerToken;
}

/** The checks that need no model: refuse a budget, bias correction or target the task cannot take. */
function checkOptions(opts: QuantizeOptions, task: QuantTask, target: OutputTarget): void {
  target.accept(task, []); // the task (the candidates are checked once known)
  const bound = latencyBound(opts);
  if (bound !== undefined && !(bound > 0 && Number.isFinite(bound)))
    throw new MixqError(`latency ${bound}`, { source: '--latency', expected: 'a positive ms per token' });
  if ((bound !== undefined || opts.latency?.costTable !== undefined) && !target.costFormat)
    throw new MixqError(`--emit ${target.name} has no latency model`, {
      source: '--latency',
      expected: "--emit runtime (mixq's engine, whose kernels the cost table times)",
    });
  if (opts.latency?.activations === 'lut8' && !target.costFormat)
    throw new MixqError(`--emit ${target.name} is not run by mixq's engine`, {
      source: '--activations',
      expected: "--emit runtime (the engine's lookup-table mode is what the plan is made for)",
    });
  if (opts.candidates?.biasCorrection && !target.biasCorrection)
    throw new MixqError(`bias correction is not written to ${target.name} outputs`, {
      source: '--bias-correction',
      expected: '--emit onnx or none (or --no-bias-correction)',
    });
  if (opts.budget.kind === 'maxLoss' && !task.metric.relative)
    throw new MixqError(`--max-loss needs a task metric with a nonzero fp32 value; ${task.name} has none`, {
      source: 'budget',
      expected: '--bits or --size for this model (or the bundled gpt / ocr)',
    });
}

/** Runs the whole job. Writes nothing: the caller (the CLI) writes the returned files. */
export async function quantizeModel(opts: QuantizeOptions): Promise<QuantizeResult> {
  const start = performance.now();
  const target = TARGETS[opts.output?.target ?? 'onnx'];
  const candidates = opts.candidates?.schemes ?? target.candidates();
  const matrix = await openMatrixEngine(candidates, opts.matrixThreads);
  try {
    return await runStages(opts, start, target, candidates, matrix.engine);
  } finally {
    await matrix.close();
  }
}

async function runStages(
  opts: QuantizeOptions,
  start: number,
  target: OutputTarget,
  candidates: readonly Scheme[],
  matrix: MatrixEngine,
): Promise<QuantizeResult> {
  let loaded: LoadedModel | undefined;
  const task = resolveTask(
    opts.model ?? 'gpt',
    opts.task,
    () => loaded?.fp32 ?? task.modelPath,
    () => loaded?.onnx.model.proto,
  );
  try {
    checkOptions(opts, task, target);
    const model = (loaded = await loadModel(task.modelPath));
    const ctx = runContext(
      task,
      model,
      target,
      opts.log ?? (() => {}),
      opts.onProgress ?? (() => {}),
      start,
      matrix,
    );
    ctx.lap('load');
    if (task.prepare) {
      await task.prepare();
      ctx.log(`data: calibration ${task.calibration}; evaluation ${task.evaluation}`);
      if (task.warning) ctx.log(`WARNING: every plan of this run is ${task.warning}`);
      ctx.lap('data');
    }
    target.accept(task, candidates);
    const damage: DamageSource = opts.candidates?.damage ?? 'noiseCalibrated';
    const cal = await calibrate(ctx, candidates, opts.candidates?.biasCorrection ?? target.biasCorrection);
    const sens = await measureSensitivity(ctx, cal, candidates, damage);
    ctx.lap('calibration + sensitivity');
    const bias = cal.biasCorrected
      ? biasCorrector(
          model.biases,
          new Map(sens.weights.map((w) => [w.name, w.layout] as const)),
          sens.analysis.stats,
          (n) => model.original(n),
        )
      : undefined;
    if (bias)
      ctx.log(
        `bias correction: ${bias.biases.size} of ${sens.weights.length} quantized layers have a float bias to correct`,
      );
    const bound = latencyBound(opts);
    const speed = ctx.target.costFormat
      ? await latencyStage(ctx, sens, ctx.target.costFormat, opts.latency ?? {})
      : undefined;
    if (speed) ctx.lap('cost table');
    const ev = await evaluator(ctx, sens.weights, bias);
    ctx.lap('fp32 evaluation');
    ctx.log(
      `fp32 ${task.metric.name}: ${formatMetric(ev.fp32.value)}${task.metric.unit ?? ''} (${task.evaluation})`,
    );
    const evaluation = opts.evaluation ?? {};
    const select = evaluation.select ?? true;
    const weights = speed?.allocWeights ?? sens.allocWeights;
    const sel = selector(ctx, ev, weights, select, bound);
    const solver = {
      weights,
      timeLimitSec: evaluation.timeLimitSec ?? 20,
      ...(bound !== undefined ? { maxLatency: bound } : {}),
    };
    const sweep = evaluation.sweep ?? [3, 3.5, 4, 5];
    const points = curve(ev, sel);
    const sweepPlan = await sweepPlans(ctx, ev, sel, solver, sweep, points);
    ctx.lap('pareto sweep');
    const allocated = await chosenPlan(ctx, ev, sel, solver, opts.budget, sweepPlan, points);
    ctx.lap('allocation');
    const baselines =
      (evaluation.baselines ?? true)
        ? await runBaselines(ctx, ev, sel, sens.weights, sens.allocWeights, solver.timeLimitSec, points)
        : { series: [], comparisons: [] };
    if (evaluation.baselines ?? true) {
      ctx.lap('baselines');
      ctx.log(
        `${ev.counts.evaluations} evaluations so far, ${(ev.counts.ms / 1000).toFixed(0)} s in evaluation`,
      );
    }
    points.points.sort((a, b) => a.bytes - b.bytes);
    const lm = await lmRows(ev, sens, allocated);
    const predictedMs = speed ? predictedMsPerToken(weights, allocated.chosen) : undefined;
    const plan = {
      ...buildPlan(
        ctx,
        sens,
        allocated.chosen,
        opts.budget,
        damage,
        bias !== undefined && bias.biases.size > 0,
      ),
      ...(speed && predictedMs !== undefined
        ? {
            latency: {
              predictedMsPerToken: predictedMs,
              ...(bound !== undefined ? { maxMsPerToken: bound } : {}),
              threads: speed.model.threads,
              ...(speed.model.activations === 'lut8' ? { activations: 'lut8' as const } : {}),
            },
          }
        : {}),
    };
    if (predictedMs !== undefined)
      ctx.log(
        `predicted decode time of the weight products in mixq's engine: ${predictedMs.toFixed(3)} ms/token${bound !== undefined ? ` (bound ${bound})` : ''}`,
      );
    const output =
      opts.output?.write === false ? undefined : await writePlan(ctx, sens, ev, bias, plan, allocated);
    if (output) ctx.lap(`export (${target.name})`);
    const report = buildReport(ctx, {
      sens,
      ev,
      sel,
      plan,
      allocated,
      sweep,
      select,
      damage,
      series: [{ name: 'mixq', kind: 'mixq', points: points.points }, ...baselines.series],
      notes: [
        ...reportNotes(ctx, sens, plan, output, speed?.model.source),
        ...(lm ? lmNotes(lm, baselines.comparisons) : []),
      ],
    });
    return {
      task,
      plan,
      report,
      fp32: ev.fp32.value,
      metric: allocated.chosenMetric,
      comparisons: baselines.comparisons,
      ...(output ? { output } : {}),
      sensitivity: sens.analysis,
      floatElements: sens.floatElements,
      ...(lm ? { lm } : {}),
    };
  } finally {
    await task.dispose?.();
  }
}

/** fp32's and the chosen plan's language-model rows, when the task scores windows of text. */
async function lmRows(ev: Evaluator, sens: Sensitivity, allocated: Allocated): Promise<QuantizeResult['lm']> {
  if (!ev.fp32.lm) return undefined;
  const a = allocated.chosen;
  const input = lmRow('fp32 (input)', 'input', 4 * sens.elements, 32, ev.fp32, ev.fp32);
  const mixq = lmRow('mixq', 'mixq', a.bytes, a.bitsPerWeight, ev.fp32, await ev.scoreAllocation(a));
  return input && mixq ? { input, mixq } : undefined;
}

/** One line per language-model row: KL, top-1 and perplexity with their intervals, and the size. */
export function lmRowLine(r: LmEvalRow): string {
  const f = (x: number) => x.toPrecision(4);
  return `${r.label}: KL ${f(r.kl)} [${f(r.klCi[0])}, ${f(r.klCi[1])}] nats/token, top-1 ${f(r.top1)} [${f(r.top1Ci[0])}, ${f(r.top1Ci[1])}], perplexity ${f(r.perplexity)} (x${f(r.perplexityRatioCi[0])}..${f(r.perplexityRatioCi[1])} of fp32's), ${r.weightBytes} bytes of weights (${r.bitsPerWeight.toFixed(3)} b/w)`;
}

function lmNotes(lm: NonNullable<QuantizeResult['lm']>, comparisons: readonly Comparison[]): string[] {
  return [
    `Evaluation of the language model (${lm.input.windows} windows, ${lm.input.tokens} tokens; intervals: 95% paired bootstrap over windows):`,
    lmRowLine(lm.input),
    lmRowLine(lm.mixq),
    ...comparisons.flatMap((c) => (c.lm ? [lmRowLine(c.lm.baseline), lmRowLine(c.lm.mixq)] : [])),
  ];
}

/** The write stage of a quantize run: the chosen plan's simulated weights (and codes) to the target's writer. */
async function writePlan(
  ctx: RunContext,
  sens: Sensitivity,
  ev: Evaluator,
  bias: BiasCorrector | undefined,
  plan: Plan,
  allocated: Allocated,
): Promise<QuantizeOutput | undefined> {
  if (!ctx.target.write) return undefined;
  const weights = new Map<string, PlannedWeight>();
  const sims = new Map<string, Float32Array>();
  for (const { w, o } of chosenOptions(sens, allocated.chosen)) {
    const q = ev.simulate(w, o.scheme);
    sims.set(w.name, q.Q);
    weights.set(w.name, {
      layout: w.layout,
      consumer: w.consumer,
      sim: q.Q,
      stats: w.stats,
      ...(q.codes ? { codes: q.codes } : {}),
    });
  }
  const biases = bias && ctx.target.biasCorrection ? bias.corrections(sims) : new Map<string, Float32Array>();
  const input = { model: ctx.model, task: ctx.task, plan, weights, biases };
  return writeStage(ctx.target, input, { run: true, simulated: allocated.chosenMetric });
}

/** The report's notes: data, output target, what the sizes count, weights left in float, the file's check. */
function reportNotes(
  ctx: RunContext,
  sens: Sensitivity,
  plan: Plan,
  output: QuantizeOutput | undefined,
  costTable: string | undefined,
): string[] {
  const { task, target } = ctx;
  const lat = plan.latency;
  return [
    ...(task.warning ? [`WARNING: this plan is ${task.warning}.`] : []),
    ...(lat
      ? [
          `Speed in mixq's engine (${lat.threads} thread${lat.threads > 1 ? 's' : ''}): predicted ${lat.predictedMsPerToken.toFixed(3)} ms per decode token in weight products${lat.maxMsPerToken !== undefined ? ` (bound ${lat.maxMsPerToken})` : ''}, from the cost table ${costTable ?? ''}${output?.msPerToken !== undefined ? `; measured ${output.msPerToken.toFixed(3)} ms/token, ${output.productsMsPerToken!.toFixed(3)} of it in weight products` : ''}.`,
        ]
      : []),
    `Calibration: ${task.calibration}. Evaluation: ${task.evaluation}.`,
    `Output ${target.name}: ${target.note}; candidates ${sens.candidates.map(schemeId).join(', ')}.`,
    `Sizes and bits per weight count the ${plan.weights.length} quantized weights (${sens.elements} elements, scales and zero points included); ${sens.floatElements} elements stay in float.`,
    ...(sens.unplaced.length
      ? [
          `${sens.unplaced.length} weights stay in float, no candidate fits them: ${sens.unplaced.map((u) => `${u.name} (${u.why})`).join(', ')}.`,
        ]
      : []),
    ...(output ? [`Output ${output.fileName} (${output.size} bytes): ${output.check}.`] : []),
  ];
}

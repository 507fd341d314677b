/**
 * `mixq apply <model> <plan>`: a plan file (written by `mixq plan` / `mixq quantize`, possibly edited by
 * hand) applied to its model, through the same stages as `mixq quantize`: the model is loaded once
 * (model.node.ts), calibrated when a scheme needs statistics (GPTQ codes, ggml's importance matrix, bias
 * correction; from the plan's calibration size, so the result is bit-identical to the one `mixq quantize`
 * writes), every planned weight simulated (quantize/simulate.ts), and the output target's writer and
 * read-back check run (quantize/write.ts).
 */
import { applicable, checkApplied } from '../analysis/sensitivity/apply-scheme.ts';
import { MixqError } from '../core/errors.ts';
import type { ExportedWeight } from '../export/onnx/quantize.ts';
import { concatBytes } from '../io/gguf/write.ts';
import type { Plan } from '../plan/schema.ts';
import { type RowLayout, rowLayout } from '../quant/layout.ts';
import { type Scheme, salientOf, schemeOnRows } from '../quant/scheme.ts';
import { captureLayerStats } from '../runtime/sensitivity.node.ts';
import { type LoadedModel, loadModel } from './model.node.ts';
import { biasCorrector } from './quantize/bias.ts';
import { openMatrixEngine } from './quantize/context.ts';
import { simulateWeight } from './quantize/simulate.ts';
import { TARGETS, type TargetName } from './quantize/targets.ts';
import { writeStage } from './quantize/write.ts';
import type { PlannedWeight } from './quantize/writers.node.ts';
import { resolveTask, type TaskOptions } from './tasks.node.ts';

export interface ApplyResult {
  readonly bytes: Uint8Array;
  readonly fileName: string;
  readonly weights: readonly ExportedWeight[];
  readonly notes: readonly string[];
  /** Task metric of the written model, when `evaluate` was asked for. */
  readonly metric?: number;
  readonly metricName: string;
}

export interface ApplyOptions {
  readonly force?: boolean;
  readonly evaluate?: boolean;
  readonly planSource?: string;
  /** Calibration size of the task; default the plan's objective.calibration.size. */
  readonly calibrationSize?: number;
  /** A user model's data (--calibration folder, --synthetic, --metric, --output), as at planning. */
  readonly data?: TaskOptions;
  /**
   * Output target; default gguf for ggml block plans, onnx when every scheme can be stored in ONNX
   * (natively or packed), else safetensors.
   */
  readonly target?: Exclude<TargetName, 'none'>;
  /** Threads of GPTQ / AWQ matrix work (default the machine's parallelism); the same bytes for any count. */
  readonly matrixThreads?: number;
}

/** Refuses a plan made for another file (its sha256 or size differs). */
function checkIdentity(model: LoadedModel, plan: Plan, source: string): void {
  const id = model.identity;
  if (plan.model.sha256 !== undefined && plan.model.sha256 !== id.sha256)
    throw new MixqError(`the plan was made for another file (${plan.model.file})`, {
      source,
      field: 'model.sha256',
      expected: `${id.sha256} (the sha256 of ${model.path}); pass --force to apply anyway`,
    });
  if (plan.model.sha256 === undefined && plan.model.size !== undefined && plan.model.size !== id.size)
    throw new MixqError(`the plan was made for a file of ${plan.model.size} bytes`, {
      source,
      field: 'model.size',
      expected: `${id.size}; pass --force to apply anyway`,
    });
}

/** Row layout and first consumer of every weight a plan can name (read by a linear op, known output axis). */
function weightLayouts(model: LoadedModel): Map<string, { layout: RowLayout; consumer: string }> {
  const layouts = new Map<string, { layout: RowLayout; consumer: string }>();
  for (const t of model.tensors.values()) {
    const c = t.consumers[0];
    if (t.outputAxis === undefined || !c || t.shape.length < 2) continue;
    if (t.outputAxis !== 0 && !(t.outputAxis === 1 && t.shape.length === 2)) continue;
    layouts.set(t.name, { layout: rowLayout(t.shape, t.outputAxis), consumer: `${c.op}:${c.inputIndex}` });
  }
  return layouts;
}

/** The target a plan goes to when none is given. */
function defaultTarget(
  plan: Plan,
  layouts: ReadonlyMap<string, { layout: RowLayout; consumer: string }>,
  model: LoadedModel,
): Exclude<TargetName, 'none'> {
  if (plan.weights.some((w) => w.scheme.blockType !== undefined)) return 'gguf';
  const storable = (s: Scheme, w: { layout: RowLayout; consumer: string }): boolean => {
    try {
      return TARGETS.onnx.cost(schemeOnRows(s, w.layout), w, model) !== undefined;
    } catch {
      return false;
    }
  };
  return plan.weights.every((w) => {
    const l = layouts.get(w.name);
    return l !== undefined && storable(w.scheme, l);
  })
    ? 'onnx'
    : 'safetensors';
}

/**
 * Applies `plan` to `model` ('gpt', 'ocr' or an .onnx path). Refuses a plan made for another file (its
 * sha256 or size differs) unless `force`.
 */
export async function applyPlan(modelArg: string, plan: Plan, opts: ApplyOptions = {}): Promise<ApplyResult> {
  // the plan's own calibration size unless overridden (GPTQ and imatrix weights depend on it)
  const calibrationSize = opts.calibrationSize ?? plan.objective.calibration?.size;
  let loaded: LoadedModel | undefined;
  const task = resolveTask(
    modelArg,
    { ...(calibrationSize ? { calibrationSize } : {}), ...opts.data },
    () => loaded?.fp32 ?? task.modelPath,
    () => loaded?.onnx.model.proto,
  );
  const source = opts.planSource ?? 'plan';
  const model = (loaded = await loadModel(task.modelPath));
  if (!opts.force) checkIdentity(model, plan, source);
  const layouts = weightLayouts(model);
  const target = TARGETS[opts.target ?? defaultTarget(plan, layouts, model)];
  // calibration statistics: GPTQ codes, ggml's importance matrix, bias correction
  const correctBiases = plan.objective.biasCorrection === true;
  const needStats =
    correctBiases ||
    plan.weights.some(
      (w) =>
        w.scheme.algorithm === 'gptq' || w.scheme.blockType !== undefined || w.scheme.outliers !== undefined,
    );
  const stats = needStats
    ? await (async () => {
        const fed = await model.fed({ captureInputs: true });
        return captureLayerStats(fed, (await task.probe(fed)).feeds, 1024);
      })()
    : new Map();
  const weights = new Map<string, PlannedWeight>();
  const sims = new Map<string, Float32Array>();
  const rows = new Map<string, RowLayout>();
  const matrix = await openMatrixEngine(
    plan.weights.map((w) => w.scheme),
    opts.matrixThreads,
  );
  try {
    for (const pw of plan.weights) {
      const base = layouts.get(pw.name);
      if (!base)
        throw new MixqError(`plan weight '${pw.name}' is not a quantizable weight of the model`, {
          source,
          field: pw.name,
        });
      const st = stats.get(pw.name);
      const L = st ? rowLayout(base.layout.dims, base.layout.outputAxis, st.channels) : base.layout;
      const s = schemeOnRows(
        checkApplied(pw.scheme, `weights['${pw.name}'].scheme`),
        L,
        `weights['${pw.name}'].scheme`,
      );
      if ((s.algorithm === 'gptq' || s.algorithm === 'awq' || salientOf(s)) && !applicable(s, L, st))
        throw new MixqError(`no calibration statistics for weight '${pw.name}'`, {
          source,
          field: pw.name,
          expected: 'a MatMul / Gemm / 1x1 Conv weight with a captured input',
        });
      const q = simulateWeight(model.original(pw.name), L, s, st, target.needsCodes(s), matrix.engine);
      sims.set(pw.name, q.Q);
      rows.set(pw.name, L);
      weights.set(pw.name, {
        layout: L,
        consumer: base.consumer,
        sim: q.Q,
        ...(st ? { stats: st } : {}),
        ...(q.codes ? { codes: q.codes } : {}),
      });
    }
  } finally {
    await matrix.close();
  }
  const carried = correctBiases && target.biasCorrection;
  const biases = carried
    ? biasCorrector(model.biases, rows, stats, (n) => model.original(n)).corrections(sims)
    : new Map<string, Float32Array>();
  const out = await writeStage(
    target,
    { model, task, plan, weights, biases },
    { run: opts.evaluate === true },
  );
  if (!out) throw new MixqError(`target ${target.name} writes no file`, { source: 'apply', field: 'target' });
  return {
    bytes: concatBytes(out.chunks),
    fileName: out.fileName,
    weights: out.weights ?? [],
    notes: [
      ...(out.check !== undefined ? [out.check] : []),
      ...out.notes,
      ...(correctBiases && !carried
        ? [`the plan's bias correction is not carried by ${target.name} output: biases are fp32 originals`]
        : []),
    ],
    ...(out.metric !== undefined ? { metric: out.metric } : {}),
    metricName: task.metric.name,
  };
}

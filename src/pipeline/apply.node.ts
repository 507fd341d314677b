/**
 * `mixq apply <model> <plan>`: a plan file (written by `mixq plan` / `mixq quantize`, possibly edited by
 * hand) applied to its model, giving the deployable ONNX model. RTN weights need nothing but the model;
 * GPTQ weights are re-quantized from the task's calibration data (the same data `mixq plan` used), so the
 * result is bit-identical to the one `mixq quantize` writes.
 */
import { fromRows, type RowLayout, rowLayout, toRows } from '../analysis/sensitivity/layout.ts';
import { gptqCandidate, quantizeCandidate } from '../analysis/sensitivity/quantize.ts';
import { MixqError } from '../core/errors.ts';
import type { ExportedWeight, PrequantizedBlocks } from '../export/onnx/quantize.ts';
import type { Plan } from '../plan/schema.ts';
import { withEvalRunner } from '../runtime/session-pool.node.ts';
import { captureLayerStats } from '../runtime/sensitivity.node.ts';
import { loadWeightFedModel } from '../runtime/weights.node.ts';
import { concatBytes } from '../io/gguf/write.ts';
import { biasCorrector, readBiases } from './bias.node.ts';
import {
  exportGguf,
  exportOnnx,
  exportSafetensors,
  fileIdentity,
  modelInfo,
  type QuantizeEmit,
} from './quantize.node.ts';
import {
  hasScaleSearch,
  onnxAssignment,
  prequantizedBlocks,
  rowCandidate,
  rtnWithBlocks,
} from './schemes.ts';
import { resolveTask } from './tasks.node.ts';

export interface ApplyResult {
  readonly bytes: Uint8Array;
  readonly fileName: string;
  readonly weights: readonly ExportedWeight[];
  readonly notes: readonly string[];
  /** Task metric of the written model, when `evaluate` was asked for. */
  readonly metric?: number;
  readonly metricName: string;
}

/**
 * Applies `plan` to `model` ('gpt', 'ocr' or an .onnx path). Refuses a plan made for another file (its
 * sha256 or size differs) unless `force`.
 */
export async function applyPlan(
  model: string,
  plan: Plan,
  opts: {
    force?: boolean;
    evaluate?: boolean;
    planSource?: string;
    /** Calibration size of the task; default the plan's objective.calibration.size. */
    calibrationSize?: number;
    /** Output format; default GGUF for ggml block plans, ONNX when every scheme can be stored in ONNX (natively or packed), else safetensors. */
    emit?: Exclude<QuantizeEmit, 'none'>;
  } = {},
): Promise<ApplyResult> {
  // the plan's own calibration size unless overridden (GPTQ and imatrix weights depend on it)
  const calibrationSize = opts.calibrationSize ?? plan.objective.calibration?.size;
  const task = resolveTask(model, calibrationSize ? { calibrationSize } : {});
  const source = opts.planSource ?? 'plan';
  if (!opts.force) {
    const id = await fileIdentity(task.modelPath);
    if (plan.model.sha256 !== undefined && plan.model.sha256 !== id.sha256)
      throw new MixqError(`the plan was made for another file (${plan.model.file})`, {
        source,
        field: 'model.sha256',
        expected: `${id.sha256} (the sha256 of ${task.modelPath}); pass --force to apply anyway`,
      });
    if (plan.model.sha256 === undefined && plan.model.size !== undefined && plan.model.size !== id.size)
      throw new MixqError(`the plan was made for a file of ${plan.model.size} bytes`, {
        source,
        field: 'model.size',
        expected: `${id.size}; pass --force to apply anyway`,
      });
  }
  const info = await modelInfo(task.modelPath);
  const layouts = new Map<string, { L: RowLayout; consumer: string }>();
  for (const t of info.tensors.values()) {
    const c = t.consumers[0];
    if (t.outputAxis === undefined || !c || t.shape.length < 2) continue;
    if (t.outputAxis !== 0 && !(t.outputAxis === 1 && t.shape.length === 2)) continue;
    layouts.set(t.name, { L: rowLayout(t.shape, t.outputAxis), consumer: `${c.op}:${c.inputIndex}` });
  }
  const opset = info.opset;
  const emit: Exclude<QuantizeEmit, 'none'> =
    opts.emit ??
    (plan.weights.some((w) => w.scheme.blockType !== undefined)
      ? 'gguf'
      : plan.weights.every((w) => {
            const l = layouts.get(w.name);
            return l !== undefined && onnxAssignment(w.scheme, l.L, l.consumer, opset) !== undefined;
          })
        ? 'onnx'
        : 'safetensors');
  // calibration statistics: GPTQ codes, and ggml's importance matrix
  const correctBiases = plan.objective.biasCorrection === true;
  const needStats =
    correctBiases ||
    plan.weights.some(
      (w) =>
        w.scheme.algorithm === 'gptq' || w.scheme.blockType !== undefined || w.scheme.outliers !== undefined,
    );
  const fed = await loadWeightFedModel(task.modelPath, { captureInputs: needStats });
  const stats = needStats ? await captureLayerStats(fed, (await task.probe(fed)).feeds, 1024) : new Map();
  const rowsOf = (name: string): RowLayout => {
    const base = layouts.get(name);
    if (!base)
      throw new MixqError(`plan weight '${name}' is not a quantizable weight of the model`, {
        source,
        field: name,
      });
    const st = stats.get(name);
    return st ? rowLayout(base.L.dims, base.L.outputAxis, st.channels) : base.L;
  };
  const fail = (name: string): never => {
    throw new MixqError(`no calibration statistics for weight '${name}'`, {
      source,
      field: name,
      expected: 'a MatMul / Gemm / 1x1 Conv weight with a captured input',
    });
  };
  // simulated weights: every one for GGUF / safetensors and for bias correction; ONNX also takes GPTQ's
  // codes (other schemes it quantizes itself)
  const quantized = new Map<string, PrequantizedBlocks>();
  const sims = new Map<string, Float32Array>();
  for (const pw of plan.weights) {
    const L = rowsOf(pw.name);
    const c = rowCandidate(pw.scheme, L, `weights['${pw.name}'].scheme`);
    const W = toRows(fed.original(pw.name), L);
    if (emit === 'onnx' && pw.scheme.algorithm === 'gptq') {
      const g = gptqCandidate(W, L, c, stats.get(pw.name) ?? fail(pw.name));
      quantized.set(pw.name, prequantizedBlocks(g, c.quantizer));
      sims.set(pw.name, fromRows(g.Q, L));
    } else if (emit === 'onnx' && hasScaleSearch(c)) {
      const r = rtnWithBlocks(W, L, c);
      quantized.set(pw.name, r.blocks);
      sims.set(pw.name, fromRows(r.Q, L));
    } else if (emit !== 'onnx' || correctBiases)
      sims.set(pw.name, fromRows(quantizeCandidate(W, L, c, stats.get(pw.name)), L));
  }
  if (emit !== 'onnx') {
    const out =
      emit === 'gguf' ? await exportGguf(plan, sims, stats) : await exportSafetensors(fed, plan, sims);
    return {
      bytes: concatBytes(out.chunks),
      fileName: out.fileName,
      weights: [],
      notes: [
        out.check,
        ...(correctBiases
          ? [`the plan's bias correction is not carried by ${emit} output: biases are fp32 originals`]
          : []),
      ],
      metricName: task.metric.name,
    };
  }
  let floats: Map<string, Float32Array> | undefined;
  if (correctBiases) {
    const rows = new Map(plan.weights.map((w) => [w.name, rowsOf(w.name)] as const));
    const found = await readBiases(
      task.modelPath,
      plan.weights.map((w) => w.name),
    );
    const bias = biasCorrector(found, rows, stats, (n) => fed.original(n));
    floats = bias.corrections(sims);
  }
  const built = await exportOnnx(task.modelPath, plan, layouts, quantized, opset, floats);
  let metric: number | undefined;
  if (opts.evaluate) metric = await withEvalRunner(built.bytes, (r) => task.evaluate(r));
  return { ...built, ...(metric !== undefined ? { metric } : {}), metricName: task.metric.name };
}

/**
 * `mixq apply <model> <plan>`: a plan file (written by `mixq plan` / `mixq quantize`, possibly edited by
 * hand) applied to its model, giving the deployable ONNX model. RTN weights need nothing but the model;
 * GPTQ weights are re-quantized from the task's calibration data (the same data `mixq plan` used), so the
 * result is bit-identical to the one `mixq quantize` writes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type RowLayout, rowLayout, toRows } from '../analysis/sensitivity/layout.ts';
import { gptqCandidate } from '../analysis/sensitivity/quantize.ts';
import { MixqError } from '../core/errors.ts';
import type { ExportedWeight, PrequantizedBlocks } from '../export/onnx/quantize.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import { onnxModelView } from '../io/onnx/view.ts';
import type { Plan } from '../plan/schema.ts';
import { openRunner } from '../runtime/runner.node.ts';
import { captureLayerStats } from '../runtime/sensitivity.node.ts';
import { loadWeightFedModel } from '../runtime/weights.node.ts';
import { exportOnnx } from './quantize.node.ts';
import { gptqBlocks, rowCandidate } from './schemes.ts';
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
  opts: { force?: boolean; evaluate?: boolean; planSource?: string } = {},
): Promise<ApplyResult> {
  const task = resolveTask(model);
  const source = opts.planSource ?? 'plan';
  const data = await readFile(task.modelPath);
  if (!opts.force) {
    const sha = createHash('sha256').update(data).digest('hex');
    if (plan.model.sha256 !== undefined && plan.model.sha256 !== sha)
      throw new MixqError(`the plan was made for another file (${plan.model.file})`, {
        source,
        field: 'model.sha256',
        expected: `${sha} (the sha256 of ${task.modelPath}); pass --force to apply anyway`,
      });
    if (plan.model.sha256 === undefined && plan.model.size !== undefined && plan.model.size !== data.length)
      throw new MixqError(`the plan was made for a file of ${plan.model.size} bytes`, {
        source,
        field: 'model.size',
        expected: `${data.length}; pass --force to apply anyway`,
      });
  }
  const layouts = new Map<string, { L: RowLayout; consumer: string }>();
  const file = await readOnnxFile(task.modelPath);
  try {
    for (const t of onnxModelView(file).tensors) {
      const c = t.consumers[0];
      if (t.outputAxis === undefined || !c || t.shape.length < 2) continue;
      if (t.outputAxis !== 0 && !(t.outputAxis === 1 && t.shape.length === 2)) continue;
      layouts.set(t.name, { L: rowLayout(t.shape, t.outputAxis), consumer: `${c.op}:${c.inputIndex}` });
    }
  } finally {
    await file.close();
  }
  const quantized = new Map<string, PrequantizedBlocks>();
  const gptqWeights = plan.weights.filter((w) => w.scheme.algorithm === 'gptq');
  if (gptqWeights.length > 0) {
    const fed = await loadWeightFedModel(task.modelPath, { captureInputs: true });
    const probe = await task.probe(fed);
    const stats = await captureLayerStats(fed, probe.feeds, 1024);
    for (const pw of gptqWeights) {
      const st = stats.get(pw.name);
      const base = layouts.get(pw.name);
      if (!st || !base)
        throw new MixqError(`no calibration statistics for GPTQ weight '${pw.name}'`, {
          source,
          field: pw.name,
          expected: 'a MatMul / Gemm / 1x1 Conv weight with a captured input',
        });
      const L = rowLayout(base.L.dims, base.L.outputAxis, st.channels);
      const c = rowCandidate(pw.scheme, L, `weights['${pw.name}'].scheme`);
      const g = gptqCandidate(toRows(fed.original(pw.name), L), L, c, st);
      quantized.set(pw.name, gptqBlocks(g, c.quantizer));
    }
  }
  const built = await exportOnnx(task.modelPath, plan, layouts, quantized);
  let metric: number | undefined;
  if (opts.evaluate) metric = await task.evaluate(await openRunner(built.bytes));
  return { ...built, ...(metric !== undefined ? { metric } : {}), metricName: task.metric.name };
}

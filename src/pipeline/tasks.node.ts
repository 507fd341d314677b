/**
 * What `mixq quantize` calibrates on and evaluates with, per model: a calibration probe (sensitivity and
 * activation statistics) and an evaluation on DIFFERENT data (the task metric of every plan and baseline).
 *
 * - gpt: calibration = the first 8 windows of 128 characters of the held-out KJV text; evaluation = bits
 *   per character on 16,384 characters starting at character 16,384 (non-overlapping windows).
 * - ocr: calibration = the first 2 clean and 2 degraded line images; evaluation = CER on all other lines.
 * - any other ONNX model: seeded synthetic inputs; the metric is the mean KL divergence of its first
 *   output from the fp32 model's on other synthetic inputs (no labels needed).
 */
import { basename } from 'node:path';
import { MixqError } from '../core/errors.ts';
import {
  bundledModelPath,
  encodeChars,
  loadGptBundle,
  loadOcrCharset,
  loadOcrLines,
} from '../runtime/bundled.node.ts';
import { evaluateLm } from '../runtime/eval-lm.node.ts';
import { evaluateOcr } from '../runtime/eval-ocr.node.ts';
import { syntheticFeeds } from '../runtime/fidelity.node.ts';
import {
  type MetricItems,
  accumulateFidelity,
  detectOutputKind,
  finishFidelity,
  newFidelityAccumulator,
} from '../runtime/metrics.ts';
import type { Feeds } from '../runtime/ort.node.ts';
import { concurrencyOf, forEachInOrder, type ModelRunner } from '../runtime/runner.node.ts';
import { withEvalRunner } from '../runtime/session-pool.node.ts';
import { type DamageProbe, gptProbe, ocrProbe, syntheticProbe } from '../runtime/sensitivity.node.ts';
import type { WeightFedModel } from '../runtime/weights.node.ts';

export interface TaskMetric {
  readonly name: string;
  readonly direction: 'lower' | 'higher';
  /** Shown after values; values are stored in this unit (CER in percent). */
  readonly unit?: string;
  /** Whether "within X% of fp32" is meaningful (false when fp32 scores 0 by definition, as KL). */
  readonly relative: boolean;
}

export interface QuantTask {
  /** 'gpt', 'ocr' or the model's file name. */
  readonly name: string;
  readonly displayName: string;
  readonly modelPath: string;
  readonly metric: TaskMetric;
  readonly calibration: string;
  /** The calibration size in the unit of `--calibration` (gpt: windows, ocr: lines per variant, other: samples). */
  readonly calibrationSize: number;
  readonly evaluation: string;
  probe(model: WeightFedModel): DamageProbe | Promise<DamageProbe>;
  /** The task metric of a model (the weight-fed runner of a variant, or a session on an exported file). */
  evaluate(runner: ModelRunner): Promise<number>;
  /** The task metric with its per-item sums where it has them (paired intervals between models). */
  score(runner: ModelRunner): Promise<TaskScore>;
}

export interface TaskScore {
  readonly value: number;
  /** value = items.scale * sum(num) / sum(den) over lines (ocr) or windows (gpt). */
  readonly items?: MetricItems;
}

/** A task as each model defines it: its score; `evaluate` is that score's value (withEvaluate). */
type TaskDefinition = Omit<QuantTask, 'evaluate'>;

function withEvaluate(t: TaskDefinition): QuantTask {
  return { ...t, evaluate: async (runner) => (await t.score(runner)).value };
}

export interface TaskOptions {
  /** GPT: calibration windows of 128 characters (default 8). OCR: calibration lines per variant (default 2). */
  readonly calibrationSize?: number;
  /** GPT: characters scored per evaluation (default 16384). OCR: lines evaluated (default all but calibration). */
  readonly evalSize?: number;
}

function gptTask(opts: TaskOptions): TaskDefinition {
  const b = loadGptBundle();
  const ctx = b.context;
  const calWindows = opts.calibrationSize ?? 8;
  const start = 16384;
  const n = opts.evalSize ?? 16384;
  const chars = Array.from(b.heldout);
  if (chars.length < start + n + 1)
    throw new MixqError(`held-out text has ${chars.length} characters`, {
      source: 'models/gpt/heldout.txt',
      expected: `at least ${start + n + 1} for evaluation`,
    });
  const ids = encodeChars(chars.slice(start, start + n + 1).join(''), b.chars, 'heldout.txt');
  return {
    name: 'gpt',
    displayName: 'bundled KJV char GPT',
    modelPath: bundledModelPath('gpt')!,
    metric: { name: 'bits/char', direction: 'lower', relative: true },
    calibration: `held-out text characters 0..${calWindows * ctx} (${calWindows} windows of ${ctx})`,
    calibrationSize: calWindows,
    evaluation: `bits per character on held-out characters ${start}..${start + n} (windows of ${ctx}, no overlap)`,
    probe: (m) => gptProbe(m, { windows: calWindows }),
    async score(runner) {
      const r = await evaluateLm(runner, ids, { context: ctx, stride: ctx });
      const { nats, count } = r.perWindow;
      return { value: r.bitsPerChar, items: { num: nats, den: count, scale: 1 / Math.LN2 } };
    },
  };
}

function ocrTask(opts: TaskOptions): TaskDefinition {
  const cal = opts.calibrationSize ?? 2;
  const all = loadOcrLines();
  const used = new Set([
    ...all.filter((l) => l.variant === 'clean').slice(0, cal),
    ...all.filter((l) => l.variant === 'degraded').slice(0, cal),
  ]);
  const evalLines = all.filter((l) => !used.has(l)).slice(0, opts.evalSize ?? Number.MAX_SAFE_INTEGER);
  const charset = loadOcrCharset();
  return {
    name: 'ocr',
    displayName: 'PP-OCRv4 rec',
    modelPath: bundledModelPath('ocr')!,
    metric: { name: 'CER', direction: 'lower', unit: '%', relative: true },
    calibration: `${cal} clean + ${cal} degraded line images`,
    calibrationSize: cal,
    evaluation: `character error rate on the other ${evalLines.length} line images (clean and degraded)`,
    probe: (m) => ocrProbe(m, { clean: cal, degraded: cal }),
    async score(runner) {
      const r = await evaluateOcr(runner, evalLines, charset);
      return { value: 100 * r.cer, items: { num: r.perLine.edits, den: r.perLine.chars, scale: 100 } };
    },
  };
}

function genericTask(path: string, opts: TaskOptions): TaskDefinition {
  const samples = opts.evalSize ?? 8;
  const outputs = async (runner: ModelRunner, feeds: readonly Feeds[]) => {
    const output = runner.outputNames[0]!;
    const outs: { data: Float32Array; dims: readonly number[] }[] = [];
    await forEachInOrder(
      feeds.length,
      concurrencyOf(runner),
      (i) => runner.run(feeds[i]!, [output]),
      (res) => {
        const t = res[output];
        if (t?.type !== 'float32')
          throw new MixqError('first output is not float32', { source: path, field: output });
        outs.push({ data: t.data as Float32Array, dims: t.dims });
      },
    );
    return outs;
  };
  // inputs from the fp32 file's own input metadata and its outputs on them, computed once, so that
  // every variant (and a rebuilt file in `mixq apply`) is scored on the same inputs
  let reference:
    Promise<{ feeds: Feeds[]; outs: { data: Float32Array; dims: readonly number[] }[] }> | undefined;
  return {
    name: basename(path),
    displayName: basename(path),
    modelPath: path,
    metric: { name: 'KL vs fp32', direction: 'lower', relative: false },
    calibration: '4 seeded synthetic inputs',
    calibrationSize: 4,
    evaluation: `mean KL divergence of the first output from fp32 on ${samples} other synthetic inputs`,
    probe: (m) => syntheticProbe(m, 4),
    async score(runner) {
      reference ??= withEvalRunner(path, async (fp32) => {
        const feeds = syntheticFeeds(fp32.inputMetadata, samples, { seed: 7 });
        return { feeds, outs: await outputs(fp32, feeds) };
      });
      const { feeds, outs: ref } = await reference;
      const outs = await outputs(runner, feeds);
      const acc = newFidelityAccumulator();
      outs.forEach((o, i) => {
        const r = ref[i]!;
        const row = r.dims[r.dims.length - 1]!;
        accumulateFidelity(acc, r.data, o.data, row, detectOutputKind(r.data, row));
      });
      return { value: finishFidelity(acc).klMean };
    },
  };
}

/** The task of a model argument: 'gpt' / 'ocr' (bundled) or a path to an .onnx file. */
export function resolveTask(model: string, opts: TaskOptions = {}): QuantTask {
  if (model === 'gpt') return withEvaluate(gptTask(opts));
  if (model === 'ocr') return withEvaluate(ocrTask(opts));
  if (!model.endsWith('.onnx'))
    throw new MixqError(`'${model}' is neither a bundled model nor an .onnx file`, {
      source: 'model argument',
      expected: "'gpt', 'ocr' or a path ending in .onnx",
    });
  return withEvaluate(genericTask(model, opts));
}

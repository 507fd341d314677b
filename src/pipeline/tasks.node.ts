/**
 * What `mixq quantize` calibrates on, chooses with and evaluates with, per model: a calibration probe
 * (sensitivity and activation statistics), a validation split (the task metric that chooses between
 * candidate plans and checks `--max-loss`) and an evaluation on data disjoint from both (the task metric
 * reported for every plan and baseline).
 *
 * - gpt: calibration = the first 8 windows of 128 characters of the held-out KJV text; validation = bits
 *   per character on characters 196,608..204,800; evaluation = bits per character on 16,384 characters
 *   starting at character 16,384 (non-overlapping windows).
 * - ocr: calibration = the first 2 clean and 2 degraded line images; validation = CER on the 100 lines of
 *   the validation split (other texts, models/ocr/validation.*); evaluation = CER on all other test lines.
 * - a transformers.js language model folder: the user's text (--calibration <text file>, --eval) in
 *   calibration / validation / evaluation windows; KL of next-token distributions to fp32, top-1 agreement
 *   and perplexity (lm-task.node.ts).
 * - any other ONNX model: the user's inputs (--calibration <folder>) or, only when asked, seeded random
 *   ones (--synthetic); the metric is the damage of its outputs vs fp32, each output measured as what it
 *   is (user-task.node.ts).
 */
import { MixqError } from '../core/errors.ts';
import {
  bundledModelPath,
  encodeChars,
  loadGptBundle,
  loadOcrCharset,
  loadOcrLines,
  type OcrLine,
} from '../runtime/bundled.node.ts';
import { evaluateLm } from '../runtime/eval-lm.node.ts';
import { evaluateOcr, runOcrLine } from '../runtime/eval-ocr.node.ts';
import { type MetricItems, coarseKlSum, topKRows, type TopKRows } from '../runtime/metrics.ts';
import { concurrencyOf, forEachInOrder, type ModelRunner } from '../runtime/runner.node.ts';
import { withEvalRunner } from '../runtime/session-pool.node.ts';
import { type DamageProbe, gptProbe, ocrProbe } from '../runtime/sensitivity.node.ts';
import type { WeightFedModel } from '../runtime/weights.node.ts';
import type { ModelProto } from '../io/onnx/proto-types.ts';
import type { OnnxModel } from '../io/onnx/read.ts';
import type { MeasureResult } from '../analysis/output-measures.ts';
import type { RowLayout } from '../quant/layout.ts';
import type { Scheme } from '../quant/scheme.ts';
import type { LmScore } from '../runtime/lm-windows.ts';
import { isLmFolder, lmFolderDecoder, lmTask } from './lm-task.node.ts';
import type { LmSplitCounts } from './llm/text-split.ts';
import { type UserDataOptions, userTask } from './user-task.node.ts';

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
  /** The data of `validate`, disjoint from calibration and evaluation. */
  readonly validation: string;
  /** Reads the task's data and chooses its measures (once; the descriptions are final after it). */
  prepare?(): Promise<void>;
  /** Releases what the task's data holds (a language model's reference file); quantizeModel calls it. */
  dispose?(): Promise<void>;
  /** Said with every plan made on this task (e.g. synthetic inputs). */
  readonly warning?: string;
  probe(model: WeightFedModel): DamageProbe | Promise<DamageProbe>;
  /** The task metric of a model (the weight-fed runner of a variant, or a session on an exported file). */
  evaluate(runner: ModelRunner): Promise<number>;
  /** The task metric with its per-item sums where it has them (paired intervals between models). */
  score(runner: ModelRunner): Promise<TaskScore>;
  /**
   * The task metric on the validation split: what chooses between candidate plans and checks a
   * `--max-loss` target, so that the reported `score` is never the number a choice was made on.
   */
  validate(runner: ModelRunner): Promise<TaskScore>;
  /**
   * What chooses between candidate plans on the validation split when the task metric is too coarse to
   * rank them (lower is better); default: `validate`'s task metric.
   */
  readonly choice?: ChoiceMetric;
  /**
   * What users of this kind of model ship instead of mixq's plan (default: the uniform schemes and the
   * Q4_K_M rule of quantize/baselines.ts).
   */
  readonly baselines?: readonly TaskBaseline[];
  /** A language model in a transformers.js folder: the output is that folder's layout. */
  readonly lm?: { readonly folder: string };
}

/** A weight as a task's baseline quantizes it. */
export interface BaselineWeight {
  readonly name: string;
  /** First consumer, e.g. 'MatMul:1', 'Gather:0'. */
  readonly consumer: string;
  readonly layout: RowLayout;
  /** The original values (a copy, the weight's own layout). */
  original(): Float32Array;
  /** The weight under a row-frame scheme as the pipeline simulates it (own layout). */
  simulate(s: Scheme): Float32Array;
}

/** A baseline as a task defines it: each weight's values and stored bytes. */
export interface TaskBaseline {
  readonly label: string;
  /** undefined: the weight stays float32 (4 bytes per value). */
  quantize(w: BaselineWeight): { readonly Q: Float32Array; readonly bytes: number } | undefined;
  /**
   * The baseline's own model file, when running it differs from running its weights' values (transformers.js
   * q8: activations quantized at run time): scored as that file; `quantize` still gives its bytes.
   */
  file?(model: OnnxModel): Promise<Uint8Array>;
}

export interface ChoiceMetric {
  readonly name: string;
  score(runner: ModelRunner): Promise<number>;
}

export interface TaskScore {
  readonly value: number;
  /** value = items.scale * sum(num) / sum(den) over lines (ocr) or windows (gpt). */
  readonly items?: MetricItems;
  /** Each measured output's statistics vs fp32 (user models: mask agreement, top-1, cosine, SQNR). */
  readonly outputs?: readonly MeasureResult[];
  /** A language model's scores per window (KL, top-1, perplexity; lm-task.node.ts). */
  readonly lm?: LmScore;
}

/** A task as each model defines it: its score; `evaluate` is that score's value (withEvaluate). */
export type TaskDefinition = Omit<QuantTask, 'evaluate'>;

// Object.assign keeps the getters of a task whose descriptions are known once its data is read
function withEvaluate(t: TaskDefinition): QuantTask {
  return Object.assign(t, { evaluate: async (runner: ModelRunner) => (await t.score(runner)).value });
}

export interface TaskOptions extends Omit<UserDataOptions, 'evalSize' | 'calibrationSize'> {
  /** GPT: calibration windows of 128 characters (default 8). OCR: calibration lines per variant (default 2). */
  readonly calibrationSize?: number;
  /** GPT: characters scored per evaluation (default 16384). OCR: lines evaluated (default all but calibration). */
  readonly evalSize?: number;
  /** GPT: characters scored per validation (default 8192). OCR: validation lines (default all 100). */
  readonly validationSize?: number;
  /** A language model folder: a separate evaluation text file (--eval). */
  readonly evalText?: string;
  /** A language model folder: calibration / validation / evaluation windows (--windows). */
  readonly windows?: Partial<LmSplitCounts>;
}

function gptTask(opts: TaskOptions): TaskDefinition {
  const b = loadGptBundle();
  const ctx = b.context;
  const calWindows = opts.calibrationSize ?? 8;
  const chars = Array.from(b.heldout);
  // [start, start + n) of the held-out text, as ids (one more character: the last target)
  const span = (start: number, n: number, what: string) => {
    if (chars.length < start + n + 1)
      throw new MixqError(`held-out text has ${chars.length} characters`, {
        source: 'models/gpt/heldout.txt',
        expected: `at least ${start + n + 1} for ${what}`,
      });
    return encodeChars(chars.slice(start, start + n + 1).join(''), b.chars, 'heldout.txt');
  };
  const start = 16384;
  const n = opts.evalSize ?? 16384;
  // validation: the end of the held-out text, so that --eval-size can grow up to 180,224 characters
  const vStart = 196608;
  const vn = opts.validationSize ?? 8192;
  if (n > vStart - start)
    throw new MixqError(`--eval-size ${n} would overlap the validation characters`, {
      source: '--eval-size',
      expected: `at most ${vStart - start} characters for gpt`,
    });
  const ids = span(start, n, 'evaluation');
  const vIds = span(vStart, vn, 'validation');
  const bitsPerChar = async (runner: ModelRunner, x: Int32Array): Promise<TaskScore> => {
    const r = await evaluateLm(runner, x, { context: ctx, stride: ctx });
    const { nats, count } = r.perWindow;
    return { value: r.bitsPerChar, items: { num: nats, den: count, scale: 1 / Math.LN2 } };
  };
  return {
    name: 'gpt',
    displayName: 'bundled KJV char GPT',
    modelPath: taskModelPath('gpt'),
    metric: { name: 'bits/char', direction: 'lower', relative: true },
    calibration: `held-out text characters 0..${calWindows * ctx} (${calWindows} windows of ${ctx})`,
    calibrationSize: calWindows,
    evaluation: `bits per character on held-out characters ${start}..${start + n} (windows of ${ctx}, no overlap)`,
    validation: `bits per character on held-out characters ${vStart}..${vStart + vn}`,
    probe: (m) => gptProbe(m, { windows: calWindows }),
    score: (runner) => bitsPerChar(runner, ids),
    validate: (runner) => bitsPerChar(runner, vIds),
  };
}

/** The fp32 model the task's references run: the loaded model's bytes, or the file. */
type Fp32Source = () => string | Uint8Array;

function ocrTask(opts: TaskOptions, fp32: Fp32Source): TaskDefinition {
  const cal = opts.calibrationSize ?? 2;
  const all = loadOcrLines();
  const used = new Set([
    ...all.filter((l) => l.variant === 'clean').slice(0, cal),
    ...all.filter((l) => l.variant === 'degraded').slice(0, cal),
  ]);
  const evalLines = all.filter((l) => !used.has(l)).slice(0, opts.evalSize ?? Number.MAX_SAFE_INTEGER);
  const valLines = loadOcrLines(undefined, 'validation').slice(
    0,
    opts.validationSize ?? Number.MAX_SAFE_INTEGER,
  );
  const charset = loadOcrCharset();
  const cer = async (runner: ModelRunner, lines: readonly OcrLine[]): Promise<TaskScore> => {
    const r = await evaluateOcr(runner, lines, charset);
    return { value: 100 * r.cer, items: { num: r.perLine.edits, den: r.perLine.chars, scale: 100 } };
  };
  return {
    name: 'ocr',
    displayName: 'PP-OCRv4 rec',
    modelPath: taskModelPath('ocr'),
    metric: { name: 'CER', direction: 'lower', unit: '%', relative: true },
    calibration: `${cal} clean + ${cal} degraded line images`,
    calibrationSize: cal,
    evaluation: `character error rate on the other ${evalLines.length} line images (clean and degraded)`,
    validation: `character error rate on the ${valLines.length} line images of the validation split (other texts)`,
    probe: (m) => ocrProbe(m, { clean: cal, degraded: cal }),
    score: (runner) => cer(runner, evalLines),
    validate: (runner) => cer(runner, valLines),
    // CER ranks plans poorly: on the 296 test lines plans of the same KL to fp32 score 1.08%..2.29%, and
    // two hopeless validation lines hold 36 of fp32's 78 errors. The KL of the frame distributions is smooth.
    choice: ocrKlChoice(fp32, valLines),
  };
}

/**
 * Mean KL(fp32 || candidate) per output frame on `lines`, on each frame's fp32 top-8 classes plus one bucket
 * for the rest (metrics.ts coarseKlSum): fp32's outputs are run once and kept as top-8 lists, not whole
 * 6,625-class rows.
 */
function ocrKlChoice(fp32Model: Fp32Source, lines: readonly OcrLine[]): ChoiceMetric {
  let reference: Promise<TopKRows[]> | undefined;
  return {
    name: `KL to fp32 per frame (nats) on the ${lines.length} validation lines`,
    async score(runner) {
      reference ??= withEvalRunner(fp32Model(), async (fp32) => {
        const refs: TopKRows[] = [];
        await forEachInOrder(
          lines.length,
          concurrencyOf(fp32),
          (i) => runOcrLine(fp32, lines[i]!),
          (r) => refs.push(topKRows(r.data, r.classes, 8)),
        );
        return refs;
      });
      const refs = await reference;
      let sum = 0;
      let frames = 0;
      await forEachInOrder(
        lines.length,
        concurrencyOf(runner),
        (i) => runOcrLine(runner, lines[i]!),
        (r, i) => {
          const ref = refs[i]!;
          sum += coarseKlSum(ref, r.data, r.classes);
          frames += ref.rows;
        },
      );
      return frames ? sum / frames : 0;
    },
  };
}

/** The model file of a model argument: the bundled 'gpt' / 'ocr', or a path to an .onnx file. */
export function taskModelPath(model: string): string {
  if (model === 'gpt' || model === 'ocr') return bundledModelPath(model)!;
  if (isLmFolder(model)) return lmFolderDecoder(model);
  if (!model.endsWith('.onnx'))
    throw new MixqError(`'${model}' is neither a bundled model nor an .onnx file`, {
      source: 'model argument',
      expected: "'gpt', 'ocr', a path ending in .onnx or a transformers.js folder",
    });
  return model;
}

/**
 * The task of a model argument: 'gpt' / 'ocr' (bundled) or a path to an .onnx file. `fp32` gives the model
 * the task's fp32 references run (the loaded model's bytes, so that the file is not opened again);
 * default the file; `graph` its parsed form when loaded (a user model's output producers).
 */
export function resolveTask(
  model: string,
  opts: TaskOptions = {},
  fp32?: Fp32Source,
  graph: () => ModelProto | undefined = () => undefined,
): QuantTask {
  const path = taskModelPath(model);
  const source = fp32 ?? (() => path);
  const bundled = model === 'gpt' || model === 'ocr';
  if (bundled && (opts.calibrationData || opts.synthetic || opts.metrics?.length || opts.outputs?.length))
    throw new MixqError(`the bundled '${model}' brings its own data and task metric`, {
      source: opts.calibrationData ? '--calibration' : opts.synthetic ? '--synthetic' : '--metric / --output',
      expected: 'these options only with a path to an .onnx model',
    });
  if (isLmFolder(model)) {
    if (opts.synthetic || opts.metrics?.length || opts.outputs?.length)
      throw new MixqError('a language model is measured on its text', {
        source: opts.synthetic ? '--synthetic' : '--metric / --output',
        expected: '--calibration <text file> [--eval <text file>] [--windows c,v,e]',
      });
    return withEvaluate(
      lmTask(
        model,
        {
          ...(opts.calibrationData !== undefined ? { calibrationText: opts.calibrationData } : {}),
          ...(opts.evalText !== undefined ? { evalText: opts.evalText } : {}),
          ...(opts.windows ? { windows: opts.windows } : {}),
        },
        source,
      ),
    );
  }
  if (model === 'gpt') return withEvaluate(gptTask(opts));
  if (model === 'ocr') return withEvaluate(ocrTask(opts, source));
  return withEvaluate(userTask(model, opts, source, graph));
}

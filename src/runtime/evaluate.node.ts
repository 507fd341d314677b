/**
 * One entry point for "evaluate this model": picks the metric and data from the model (bundled names
 * 'gpt' and 'ocr', or a path), runs it, and returns a plain JSON-able report. `mixq eval` is a thin layer
 * over this.
 *
 * Defaults: 'gpt' -> bits per character on models/gpt/heldout.txt; 'ocr' -> CER on models/ocr (clean and
 * degraded lines); any other model -> fidelity to `reference`. Fidelity inputs follow the reference: a
 * model shaped like the bundled GPT (int64 [batch, seq] in, [batch, seq, vocab] out) gets held-out text
 * windows, one shaped like PP-OCRv4 rec ([N, 3, 48, W] in) gets the OCR lines, anything else gets seeded
 * synthetic inputs.
 */

import { basename, dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { MixqError } from '../core/errors.ts';
import {
  bundledModelPath,
  encodeChars,
  loadGptBundle,
  loadOcrCharset,
  loadOcrLines,
  OCR_DATA_DIR,
} from './bundled.node.ts';
import { evaluateLm, type LmResult, lmFidelity } from './eval-lm.node.ts';
import { evaluateOcr, ocrFidelity, type OcrScore } from './eval-ocr.node.ts';
import { accumulateFeedsFidelity, syntheticFeeds } from './fidelity.node.ts';
import { type FidelityResult, finishFidelity, newFidelityAccumulator } from './metrics.ts';
import type { ModelRunner } from './runner.node.ts';
import { withEvalRunner } from './session-pool.node.ts';

export type EvalMetric = 'bpc' | 'cer' | 'fidelity';
export const EVAL_METRICS: readonly EvalMetric[] = ['bpc', 'cer', 'fidelity'];

export interface EvalRequest {
  /** 'gpt', 'ocr', or a path to an ONNX model. */
  readonly model: string;
  readonly metric?: EvalMetric;
  /**
   * bpc: a UTF-8 text file; cer: a folder in the models/ocr layout (its lines.*), or its lines.json or
   * validation.json (that split).
   */
  readonly data?: string;
  /** Reference model for fidelity ('gpt', 'ocr' or a path). */
  readonly reference?: string;
  /** bpc: evaluate only the first `limit` characters; cer / fidelity on lines: the first `limit` lines. */
  readonly limit?: number;
  /** bpc window stride (default context / 2). */
  readonly stride?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export type FidelityInputs = 'lm' | 'ocr' | 'synthetic';

export type EvalReport =
  | { readonly metric: 'bpc'; readonly model: string; readonly data: string; readonly result: LmResult }
  | {
      readonly metric: 'cer';
      readonly model: string;
      readonly data: string;
      readonly result: OcrScore & { readonly byVariant: Readonly<Record<string, OcrScore>> };
    }
  | {
      readonly metric: 'fidelity';
      readonly model: string;
      readonly reference: string;
      readonly inputs: FidelityInputs;
      readonly result: FidelityResult;
    };

function resolveModel(name: string): string {
  return bundledModelPath(name) ?? name;
}

function defaultMetric(model: string): EvalMetric {
  if (model === 'gpt') return 'bpc';
  if (model === 'ocr') return 'cer';
  return 'fidelity';
}

function loadText(path: string | undefined, limit: number | undefined): { text: string; source: string } {
  const source = path ?? 'models/gpt/heldout.txt';
  const text = path ? readFileSync(path, 'utf8') : loadGptBundle().heldout;
  return { text: limit ? Array.from(text).slice(0, limit).join('') : text, source };
}

function loadLines(path: string | undefined, limit: number | undefined) {
  const dir = path ? (path.endsWith('.json') ? dirname(path) : path) : OCR_DATA_DIR;
  // A path to validation.json reads that split; any other path reads lines.*.
  const lines = loadOcrLines(dir, path && basename(path) === 'validation.json' ? 'validation' : 'test');
  return { lines: limit ? lines.slice(0, limit) : lines, source: path ?? 'models/ocr' };
}

/** Which bundled data a model's signature matches. */
export function inputsFor(runner: ModelRunner): FidelityInputs {
  const m = runner.inputMetadata[0];
  if (runner.inputMetadata.length === 1 && m) {
    if (m.type === 'int64' && m.shape.length === 2) return 'lm';
    if (m.type === 'float32' && m.shape.length === 4 && m.shape[1] === 3 && m.shape[2] === 48) return 'ocr';
  }
  return 'synthetic';
}

/** Evaluate as requested; see the file comment for defaults. */
export async function evaluateModel(req: EvalRequest): Promise<EvalReport> {
  const metric = req.metric ?? defaultMetric(req.model);
  if (!EVAL_METRICS.includes(metric)) {
    throw new MixqError(`unknown metric '${metric}'`, {
      source: 'argument --metric',
      expected: EVAL_METRICS.join('|'),
    });
  }
  if (metric === 'fidelity' && !req.reference) {
    throw new MixqError('fidelity needs a reference model', {
      source: 'argument --reference',
      expected: "the fp32 model: 'gpt', 'ocr' or a path",
    });
  }
  return withEvalRunner(resolveModel(req.model), async (runner): Promise<EvalReport> => {
    if (metric === 'bpc') {
      const gpt = loadGptBundle();
      const { text, source } = loadText(req.data, req.limit);
      const ids = encodeChars(text, gpt.chars, source);
      const result = await evaluateLm(runner, ids, {
        context: gpt.context,
        ...(req.stride ? { stride: req.stride } : {}),
        ...(req.onProgress ? { onProgress: req.onProgress } : {}),
      });
      return { metric, model: req.model, data: source, result };
    }
    if (metric === 'cer') {
      const { lines, source } = loadLines(req.data, req.limit);
      const r = await evaluateOcr(runner, lines, loadOcrCharset(), req.onProgress);
      const { predictions: _p, ...result } = r;
      return { metric, model: req.model, data: source, result };
    }
    return withEvalRunner(resolveModel(req.reference as string), async (reference) => {
      const inputs = inputsFor(reference);
      const acc = newFidelityAccumulator();
      if (inputs === 'lm') {
        const gpt = loadGptBundle();
        // Fidelity needs far fewer tokens than a label metric: default 16 Ki characters of held-out text.
        const { text } = loadText(req.data, req.limit ?? 16384);
        await lmFidelity(runner, reference, encodeChars(text, gpt.chars), { context: gpt.context }, acc);
      } else if (inputs === 'ocr') {
        const { lines } = loadLines(req.data, req.limit ?? 60);
        await ocrFidelity(runner, reference, lines, acc, req.onProgress);
      } else {
        await accumulateFeedsFidelity(
          runner,
          reference,
          syntheticFeeds(reference.inputMetadata, req.limit ?? 8),
          acc,
        );
      }
      return {
        metric,
        model: req.model,
        reference: req.reference as string,
        inputs,
        result: finishFidelity(acc),
      };
    });
  });
}

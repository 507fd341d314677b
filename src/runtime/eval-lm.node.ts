/**
 * Language-model evaluation: bits per character (and perplexity) of a causal LM on a token stream, by
 * strided windows (the Hugging Face "perplexity of fixed-length models" scheme): windows of `context`
 * tokens advance by `stride`; the first window scores every position, each later one scores only the
 * targets not yet scored, so every scored target (except the first `context`) sees at least
 * `context - stride` tokens of history. Exactly N-1 targets are scored once each.
 *
 * The noise floor is the bootstrap standard error over windows (seeded, so reproducible). Adjacent
 * windows are correlated through shared text, so it is an estimate of the order of magnitude, not a bound.
 *
 * Batches run `runner.concurrency` at a time (a session pool) and are consumed in window order, so every
 * number is the one a single session gives.
 */

import { MixqError } from '../core/errors.ts';
import {
  accumulateFidelity,
  bootstrapStdError,
  crossEntropyAt,
  type FidelityAccumulator,
} from './metrics.ts';
import { int64Tensor } from './ort.node.ts';
import { concurrencyOf, forEachInOrder, type ModelRunner } from './runner.node.ts';

export interface LmWindow {
  /** First input token of the window. */
  readonly start: number;
  /** Score predictions at window positions [firstScored, context): target = ids[start + pos + 1]. */
  readonly firstScored: number;
}

/** The strided windows over `n` tokens (needs n > context). */
export function lmWindows(n: number, context: number, stride: number): LmWindow[] {
  if (n <= context) throw new MixqError('text too short for one window', { expected: `> ${context} tokens` });
  if (stride < 1 || stride > context) throw new MixqError('bad stride', { expected: `1..${context}` });
  const out: LmWindow[] = [{ start: 0, firstScored: 0 }];
  let scoredUpTo = context; // targets 1..scoredUpTo are scored (target index = position in ids)
  const lastStart = n - 1 - context;
  for (let s = stride; scoredUpTo < n - 1; s += stride) {
    const start = Math.min(s, lastStart);
    const end = start + context; // last target index this window predicts
    out.push({ start, firstScored: scoredUpTo - start });
    scoredUpTo = end;
  }
  return out;
}

export interface LmOptions {
  readonly context: number;
  /** Window advance; default context / 2. */
  readonly stride?: number;
  /** Windows per runtime call; default 16. */
  readonly batch?: number;
  /** Name of the ids input; default the runner's first input. */
  readonly input?: string;
  /** Name of the logits output; default the runner's first output. */
  readonly output?: string;
  /** Called with (windows done, total). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface LmResult {
  readonly bitsPerChar: number;
  readonly natsPerChar: number;
  readonly perplexity: number;
  /** Bootstrap standard error of bitsPerChar over windows (1000 resamples, fixed seed). */
  readonly bitsPerCharStdError: number;
  readonly scoredTokens: number;
  readonly windows: number;
  /** Nats and scored targets per window, in window order (paired comparisons). */
  readonly perWindow: { readonly nats: ArrayLike<number>; readonly count: ArrayLike<number> };
  readonly context: number;
  readonly stride: number;
}

/**
 * Evaluate `runner` on `ids`. When `reference` logits for the same windows should also be compared,
 * use `lmFidelity` instead; this function computes only the label metric.
 */
export async function evaluateLm(runner: ModelRunner, ids: Int32Array, opts: LmOptions): Promise<LmResult> {
  const context = opts.context;
  const stride = opts.stride ?? Math.max(1, Math.floor(context / 2));
  const windows = lmWindows(ids.length, context, stride);
  const perWindowNats = new Float64Array(windows.length);
  const perWindowCount = new Float64Array(windows.length);
  await forEachLmBatch(runner, ids, windows, opts, (w, k, logits, off, vocab) => {
    let sum = 0;
    for (let p = w.firstScored; p < context; p++) {
      sum += crossEntropyAt(logits, off + p * vocab, vocab, ids[w.start + p + 1]!);
    }
    perWindowNats[k] = sum;
    perWindowCount[k] = context - w.firstScored;
  });
  let nats = 0;
  let count = 0;
  for (let k = 0; k < windows.length; k++) {
    nats += perWindowNats[k]!;
    count += perWindowCount[k]!;
  }
  const natsPerChar = nats / count;
  return {
    bitsPerChar: natsPerChar / Math.LN2,
    natsPerChar,
    perplexity: Math.exp(natsPerChar),
    bitsPerCharStdError: bootstrapStdError(perWindowNats, perWindowCount) / Math.LN2,
    scoredTokens: count,
    windows: windows.length,
    perWindow: { nats: perWindowNats, count: perWindowCount },
    context,
    stride,
  };
}

type WindowVisitor = (
  w: LmWindow,
  index: number,
  logits: Float32Array,
  offset: number,
  vocab: number,
) => void;

/** Run one batch of windows: the logits [windows, context, vocab]. */
async function runLmBatch(
  runner: ModelRunner,
  ids: Int32Array,
  ws: readonly LmWindow[],
  opts: LmOptions,
): Promise<{ logits: Float32Array; vocab: number }> {
  const context = opts.context;
  const input = opts.input ?? runner.inputNames[0]!;
  const output = opts.output ?? runner.outputNames[0]!;
  const flat = new Int32Array(ws.length * context);
  ws.forEach((w, i) => {
    flat.set(ids.subarray(w.start, w.start + context), i * context);
  });
  const res = await runner.run({ [input]: int64Tensor(flat, [ws.length, context]) }, [output]);
  const t = res[output];
  if (t?.type !== 'float32' || t.dims.length !== 3 || t.dims[1] !== context) {
    throw new MixqError('unexpected LM output', {
      field: output,
      expected: `float32 [batch, ${context}, vocab]`,
    });
  }
  return { logits: t.data as Float32Array, vocab: t.dims[2]! };
}

/** The windows in batches of `opts.batch` (default 16). */
function lmBatches(windows: readonly LmWindow[], opts: LmOptions): { b0: number; ws: readonly LmWindow[] }[] {
  const batch = opts.batch ?? 16;
  const out: { b0: number; ws: readonly LmWindow[] }[] = [];
  for (let b0 = 0; b0 < windows.length; b0 += batch) out.push({ b0, ws: windows.slice(b0, b0 + batch) });
  return out;
}

/** Run the windows in batches and hand each window's logits block to `visit`, in window order. */
export async function forEachLmBatch(
  runner: ModelRunner,
  ids: Int32Array,
  windows: readonly LmWindow[],
  opts: LmOptions,
  visit: WindowVisitor,
): Promise<void> {
  const context = opts.context;
  const batches = lmBatches(windows, opts);
  await forEachInOrder(
    batches.length,
    concurrencyOf(runner),
    (j) => runLmBatch(runner, ids, batches[j]!.ws, opts),
    ({ logits, vocab }, j) => {
      const { b0, ws } = batches[j]!;
      ws.forEach((w, i) => {
        visit(w, b0 + i, logits, i * context * vocab, vocab);
      });
      opts.onProgress?.(b0 + ws.length, windows.length);
    },
  );
}

/**
 * Fidelity of `candidate` to `reference` on the LM windows over `ids`: both models see the same windows
 * and every scored position contributes one row (KL, top-1, SQNR over the scored logits).
 */
export async function lmFidelity(
  candidate: ModelRunner,
  reference: ModelRunner,
  ids: Int32Array,
  opts: LmOptions,
  acc: FidelityAccumulator,
): Promise<void> {
  const context = opts.context;
  const stride = opts.stride ?? Math.max(1, Math.floor(context / 2));
  const windows = lmWindows(ids.length, context, stride);
  const batches = lmBatches(windows, opts);
  await forEachInOrder(
    batches.length,
    concurrencyOf(candidate, reference),
    (j) =>
      Promise.all([
        runLmBatch(reference, ids, batches[j]!.ws, opts),
        runLmBatch(candidate, ids, batches[j]!.ws, opts),
      ]),
    ([ref, cand], j) => {
      const { b0, ws } = batches[j]!;
      const vocab = ref.vocab;
      ws.forEach((w, i) => {
        const off = i * context * vocab;
        const r = ref.logits.subarray(off + w.firstScored * vocab, off + context * vocab);
        const c = cand.logits.subarray(off + w.firstScored * vocab, off + context * vocab);
        accumulateFidelity(acc, r, c, vocab, 'logits');
      });
      opts.onProgress?.(b0 + ws.length, windows.length);
    },
  );
}

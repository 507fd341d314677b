/**
 * The task of a transformers.js language model (a folder: config.json, tokenizer.json
 * [+ tokenizer_config.json], onnx/model.onnx or decoder_model_merged.onnx with past_key_values) on the
 * user's text, for the one ONNX pipeline (quantize/): the decoder is the loaded model; this task says what
 * it is fed and how its outputs are measured.
 *
 *   text     --calibration <text file> [--eval <text file>], tokenized with the folder's tokenizer.json, BOS
 *            first in every window when the tokenizer adds one (as transformers.js would); split into
 *            calibration / validation / evaluation windows that never overlap (llm/text-split.ts, the same
 *            split as the GGUF flow; printed)
 *   feeds    input_ids [1, T], attention_mask of ones, position_ids 0..T-1, every past_key_values.{i}.key /
 *            .value empty ([1, kv_heads, 0, head_dim]: past length 0), use_cache_branch = false for merged
 *            decoders; one window per run
 *   measure  KL(fp32 || model) of the next-token distributions (logits), nats per token: the calibration
 *            windows give the sensitivity probe's damage, the validation windows choose between plans, the
 *            evaluation windows are reported with top-1 agreement and perplexity (runtime/lm-windows.ts
 *            LmAccumulator, the GGUF flow's reductions) and paired-bootstrap intervals over windows
 *   baselines what transformers.js users ship (llm/transformers-js.ts: its quantize script's q8, q4, fp16)
 *
 * fp32's log-probabilities of each scored split are computed once and kept (scored positions x vocab float32,
 * in memory up to 256 MiB, else in a temporary file removed by `dispose`); logits are read in chunks of at most
 * 64 MiB.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MixqError } from '../core/errors.ts';
import { writeFileAtomic } from '../io/files.node.ts';
import { hfFolderSource } from '../io/llm/hf-folder.node.ts';
import {
  decoderIo,
  ONNX_DECODER_FILES,
  type OnnxDecoderIo,
  openTransformersJsFolder,
  type TransformersJsFolder,
} from '../io/llm/onnx-decoder.ts';
import type { LlmTokenizer } from '../io/llm/tokenizer.ts';
import {
  LmAccumulator,
  lmItems,
  type LmScore,
  logProbsFromLogits,
  type TokenWindow,
} from '../runtime/lm-windows.ts';
import { type Feeds, ort } from '../runtime/ort.node.ts';
import type { InputMeta, ModelRunner } from '../runtime/runner.node.ts';
import { type DamageProbe, klDamage, runOutputs } from '../runtime/sensitivity.node.ts';
import { newRowStore } from '../runtime/llama.node.ts';
import { withEvalRunner } from '../runtime/session-pool.node.ts';
import { type LmTextTokenizer, readText, tokenizeSplit } from './llm/input.node.ts';
import { TRANSFORMERS_JS_BASELINES } from './llm/transformers-js.ts';
import { LM_WINDOW_TOKENS, type LmSplit, type LmSplitCounts } from './llm/text-split.ts';
import type { TaskDefinition, TaskScore } from './tasks.node.ts';

/** The text options of a language-model folder (the CLI's --calibration, --eval, --windows). */
export interface LmTextOptions {
  /** The text file split into calibration + validation (+ evaluation without `evalText`) windows. */
  readonly calibrationText?: string;
  readonly evalText?: string;
  readonly windows?: Partial<LmSplitCounts>;
}

const FOLDER_EXPECTED = 'a transformers.js folder (config.json, tokenizer.json, onnx/model.onnx)';

/** Whether `path` is a folder holding a transformers.js decoder (or at least a config.json and no weights). */
export function isLmFolder(path: string): boolean {
  try {
    if (!statSync(path).isDirectory()) return false;
  } catch {
    return false;
  }
  return (
    ONNX_DECODER_FILES.some((f) => existsSync(join(path, f))) ||
    (existsSync(join(path, 'config.json')) &&
      !readdirSync(path).some((f) => f.endsWith('.safetensors') || f.endsWith('.gguf')))
  );
}

/**
 * The decoder ONNX of a transformers.js folder, after checking the files transformers.js needs are there
 * (one-line MixqError naming the missing file).
 */
export function lmFolderDecoder(dir: string): string {
  for (const f of ['config.json', 'tokenizer.json'])
    if (!existsSync(join(dir, f)))
      throw new MixqError(`no ${f} in the folder`, { source: dir, field: f, expected: FOLDER_EXPECTED });
  const onnx = ONNX_DECODER_FILES.find((f) => existsSync(join(dir, f)));
  if (!onnx)
    throw new MixqError('no decoder ONNX in the folder', {
      source: dir,
      field: 'onnx/',
      expected: ONNX_DECODER_FILES.join(' or '),
    });
  return join(dir, onnx);
}

/** A tokenizer.json tokenizer as the window split reads one. */
export function lmTextTokenizer(t: LlmTokenizer): LmTextTokenizer {
  return { tokenize: (s) => t.encode(s), addBos: t.addBos, bos: t.bos };
}

/** The past length-0 cache tensor of a past input, shaped from its declared dims (config as fallback). */
function emptyPast(meta: InputMeta | undefined, kvHeads: number, headDim: number, name: string): ort.Tensor {
  const d = meta?.shape;
  const num = (i: number, fallback: number) => (typeof d?.[i] === 'number' ? (d[i] as number) : fallback);
  const dims = [1, num(1, kvHeads), 0, num(3, headDim)];
  if (meta?.type === 'float16') return new ort.Tensor('float16', new Uint16Array(0), dims);
  if (meta && meta.type !== 'float32')
    throw new MixqError(`past input of type ${meta.type}`, {
      source: 'decoder ONNX',
      field: name,
      expected: 'float32 or float16 past_key_values',
    });
  return new ort.Tensor('float32', new Float32Array(0), dims);
}

/** One window's feeds: ids, mask of ones, positions 0..T-1, an empty cache (and no cache branch). */
export function windowFeeds(
  io: OnnxDecoderIo,
  inputs: readonly InputMeta[],
  kv: { readonly kvHeads: number; readonly headDim: number },
  tokens: Int32Array,
): Feeds {
  const T = tokens.length;
  const int64 = (f: (i: number) => number) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: T }, (_, i) => BigInt(f(i))),
      [1, T],
    );
  const feeds: Feeds = { [io.inputIds]: int64((i) => tokens[i]!) };
  if (io.attentionMask) feeds[io.attentionMask] = int64(() => 1);
  if (io.positionIds) feeds[io.positionIds] = int64((i) => i);
  const meta = new Map(inputs.map((m) => [m.name, m] as const));
  for (const l of io.layers)
    for (const n of [l.pastKey, l.pastValue]) feeds[n] = emptyPast(meta.get(n), kv.kvHeads, kv.headDim, n);
  if (io.useCacheBranch) feeds[io.useCacheBranch] = new ort.Tensor('bool', new Uint8Array([0]), [1]);
  return feeds;
}

/** Bytes of logits held at once: windows run in chunks of at most this much (and at most 8 windows). */
const LOGITS_IN_FLIGHT = 64 * 1024 * 1024;

/** Log-probability rows [T, vocab] of each window's logits, fed in order to `each`. */
async function forEachLogProbs(
  runner: ModelRunner,
  feeds: readonly Feeds[],
  logits: string,
  rowBytes: number,
  each: (k: number, logp: Float32Array, vocab: number) => Promise<void> | void,
): Promise<void> {
  const chunk = Math.max(1, Math.min(8, Math.floor(LOGITS_IN_FLIGHT / rowBytes)));
  for (let c = 0; c < feeds.length; c += chunk) {
    const outs = await runOutputs(runner, feeds.slice(c, c + chunk), [logits]);
    for (const [j, o] of outs.entries()) {
      const t = o[0]!;
      const vocab = t.dims[t.dims.length - 1]!;
      const lp = new Float32Array(t.data.length);
      for (let r = 0; r < t.data.length; r += vocab)
        logProbsFromLogits(t.data.subarray(r, r + vocab), lp.subarray(r, r + vocab));
      await each(c + j, lp, vocab);
    }
  }
}

/**
 * fp32's log-prob rows of the scored positions of each window (the GGUF flow's layout and store:
 * runtime/llama.node.ts newRowStore, in memory up to 256 MiB, else a temporary file).
 */
async function recordReference(
  runner: ModelRunner,
  windows: readonly TokenWindow[],
  feeds: readonly Feeds[],
  logits: string,
  vocab: number,
): Promise<{ read(k: number): Promise<Float32Array>; close(): Promise<void> }> {
  const offsets: number[] = [];
  let rows = 0;
  for (const w of windows) {
    offsets.push(rows);
    rows += w.tokens.length - w.scoreFrom;
  }
  const store = newRowStore(rows * vocab * 4, 256 * 1024 * 1024, undefined);
  try {
    await forEachLogProbs(runner, feeds, logits, windows[0]!.tokens.length * vocab * 4, async (k, lp, v) => {
      if (v !== vocab)
        throw new MixqError(`logits of ${v} entries`, {
          source: 'decoder ONNX',
          field: logits,
          expected: `the config's vocab_size ${vocab}`,
        });
      const w = windows[k]!;
      await store.write(
        offsets[k]! * vocab * 4,
        lp.subarray((w.scoreFrom - 1) * vocab, (w.tokens.length - 1) * vocab),
      );
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    read: (k) =>
      store.read(offsets[k]! * vocab * 4, (windows[k]!.tokens.length - windows[k]!.scoreFrom) * vocab),
    close: () => store.close(),
  };
}

/** A model's LmScore on windows against fp32's log-prob rows of their scored positions. */
async function scoreWindows(
  runner: ModelRunner,
  windows: readonly TokenWindow[],
  feeds: readonly Feeds[],
  logits: string,
  vocab: number,
  reference: (k: number) => Promise<Float32Array>,
): Promise<LmScore> {
  const acc = new LmAccumulator(windows, vocab, true);
  await forEachLogProbs(runner, feeds, logits, windows[0]!.tokens.length * vocab * 4, async (k, lp) => {
    acc.beginWindow(k);
    const w = windows[k]!;
    const ref = await reference(k);
    // position p - 1 predicts tokens[p]; the reference holds rows scoreFrom - 1 .. T - 2
    for (let p = w.scoreFrom; p < w.tokens.length; p++)
      acc.add(lp, (p - 1) * vocab, w.tokens[p]!, ref, (p - w.scoreFrom) * vocab);
  });
  return acc.finish();
}

/** A task score from an LmScore: KL to fp32 with its per-window items, top-1, and the LmScore itself. */
export function lmTaskScore(s: LmScore, logits: string): TaskScore {
  const kl = s.klMean ?? 0;
  return {
    value: kl,
    items: lmItems(s, 'kl'),
    outputs: [
      {
        output: logits,
        kind: 'distribution',
        damage: kl,
        count: s.tokens,
        klMean: kl,
        ...(s.top1Agreement !== undefined ? { top1Agreement: s.top1Agreement } : {}),
      },
    ],
    lm: s,
  };
}

interface LmData {
  readonly folder: TransformersJsFolder;
  readonly io: OnnxDecoderIo;
  readonly split: LmSplit;
  readonly lines: readonly string[];
  readonly feeds: Record<'calibration' | 'validation' | 'evaluation', readonly Feeds[]>;
}

/**
 * The task of a transformers.js folder `dir` (see the file comment). `fp32Model` gives the decoder's
 * bytes (or path) for the fp32 references.
 */
export function lmTask(
  dir: string,
  opts: LmTextOptions,
  fp32Model: () => string | Uint8Array,
): TaskDefinition & { prepare(): Promise<void>; dispose(): Promise<void>; readonly split?: LmSplit } {
  const decoder = lmFolderDecoder(dir);
  // the text is read when the task's data is first needed (`mixq apply` of a plan may need none)
  const texts = () => {
    if (opts.calibrationText === undefined)
      throw new MixqError('a language model needs text to calibrate and evaluate on', {
        source: dir,
        field: '--calibration',
        expected:
          '--calibration <text file> (plain UTF-8 text like the model will see; --eval <file> optional)',
      });
    const text = readText(opts.calibrationText, '--calibration');
    const evalText = opts.evalText !== undefined ? readText(opts.evalText, '--eval') : undefined;
    return { text, ...(evalText ? { evalText } : {}) };
  };
  let data: Promise<LmData> | undefined;
  let known: LmData | undefined;
  const load = (): Promise<LmData> =>
    (data ??= (async () => {
      const input = texts();
      const src = await hfFolderSource(dir);
      let folder: TransformersJsFolder;
      try {
        folder = await openTransformersJsFolder(src);
      } finally {
        await src.close();
      }
      const tok = folder.tokenizer();
      const windowTokens = Math.min(LM_WINDOW_TOKENS, folder.config.contextLength);
      const { split, lines } = tokenizeSplit(lmTextTokenizer(tok), input, opts.windows, windowTokens);
      const { io, inputs } = await withEvalRunner(fp32Model(), (r) =>
        Promise.resolve({
          io: decoderIo(r.inputNames, r.outputNames, decoder),
          inputs: r.inputMetadata,
        }),
      );
      const kv = { kvHeads: folder.config.numKvHeads, headDim: folder.config.headDim };
      const feedsOf = (ws: readonly TokenWindow[]) => ws.map((w) => windowFeeds(io, inputs, kv, w.tokens));
      known = {
        folder,
        io,
        split,
        lines,
        feeds: {
          calibration: feedsOf(split.calibration.windows),
          validation: feedsOf(split.validation.windows),
          evaluation: feedsOf(split.evaluation.windows),
        },
      };
      return known;
    })());
  type Reference = Awaited<ReturnType<typeof recordReference>>;
  const references = new Map<string, Promise<Reference>>();
  const score = async (runner: ModelRunner, part: 'validation' | 'evaluation'): Promise<TaskScore> => {
    const d = await load();
    const vocab = d.folder.config.vocabSize;
    const windows = d.split[part].windows;
    let ref = references.get(part);
    if (!ref) {
      ref = withEvalRunner(fp32Model(), (r) =>
        recordReference(r, windows, d.feeds[part], d.io.logits, vocab),
      );
      references.set(part, ref);
    }
    const reference = await ref;
    const s = await scoreWindows(runner, windows, d.feeds[part], d.io.logits, vocab, (k) =>
      reference.read(k),
    );
    return lmTaskScore(s, d.io.logits);
  };
  // describeSplit's line of a part without its 'calibration: ' head
  const windows = (part: 'calibration' | 'validation' | 'evaluation') =>
    known
      ? known.lines[['calibration', 'validation', 'evaluation'].indexOf(part)]!.replace(/^\w+: /, '')
      : `the ${part} windows`;
  return {
    name: basename(dir.replace(/[/\\]+$/, '')),
    displayName: basename(dir.replace(/[/\\]+$/, '')),
    modelPath: decoder,
    metric: { name: 'KL to fp32 (nats/token)', direction: 'lower', relative: false },
    get calibration() {
      return windows('calibration');
    },
    get calibrationSize() {
      return known?.split.calibration.windows.length ?? opts.windows?.calibration ?? 4;
    },
    get evaluation() {
      return `KL of next-token distributions to fp32, top-1 agreement and perplexity on ${windows('evaluation')}`;
    },
    get validation() {
      return `KL to fp32 on ${windows('validation')}`;
    },
    get split() {
      return known?.split;
    },
    lm: { folder: dir },
    baselines: TRANSFORMERS_JS_BASELINES,
    async prepare() {
      await load();
    },
    async dispose() {
      for (const r of references.values()) await (await r.catch(() => undefined))?.close();
      references.clear();
    },
    async probe(): Promise<DamageProbe> {
      const d = await load();
      return {
        feeds: d.feeds.calibration,
        outputs: [d.io.logits],
        measure: 'KL of the next-token distributions to fp32 (nats per position)',
        damage: klDamage('logits'),
      };
    },
    score: (runner) => score(runner, 'evaluation'),
    validate: (runner) => score(runner, 'validation'),
  };
}

/** Files of a transformers.js folder copied beside the quantized decoder (those present). */
export const LM_FOLDER_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
] as const;

/** Where transformers.js looks for the decoder it loads with `dtype: 'fp32'`. */
export const LM_OUTPUT_DECODER = 'onnx/model.onnx';

/**
 * Writes a transformers.js folder at `out`: the input folder's config and tokenizer files copied and the
 * quantized decoder as onnx/model.onnx (the file transformers.js loads with `dtype: 'fp32'`: mixq's
 * operators keep float32 inputs and outputs), each atomically and never over a file of the input folder.
 * Returns the written paths.
 */
export async function writeLmFolder(
  input: string,
  out: string,
  decoder: Uint8Array | readonly Uint8Array[],
): Promise<string[]> {
  const protect = readdirSync(input, { recursive: true }).map((f) => join(input, String(f)));
  await mkdir(join(out, 'onnx'), { recursive: true });
  const written: string[] = [];
  for (const f of LM_FOLDER_FILES) {
    if (!existsSync(join(input, f))) continue;
    await writeFileAtomic(join(out, f), await readFile(join(input, f)), protect);
    written.push(join(out, f));
  }
  await writeFileAtomic(join(out, LM_OUTPUT_DECODER), decoder, protect);
  written.push(join(out, LM_OUTPUT_DECODER));
  return written;
}

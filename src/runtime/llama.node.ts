/**
 * llama.cpp as an evaluation runtime, through the npm package node-llama-cpp (MIT; its prebuilt linux-x64,
 * macOS and Windows CPU binaries install from the npm registry alone). An OPTIONAL peer dependency: only
 * this file imports it, lazily, and says how to install it when it is missing.
 *
 * What it measures (the numbers `llama-perplexity` reports, on windows of lm-windows.ts):
 *   - log p(target) per scored token, nats per token and perplexity;
 *   - against a reference model's next-token distributions: mean KL(P_ref || Q) per position (as
 *     `llama-perplexity --kl-divergence`), the largest KL, and top-1 agreement, with per-window sums for
 *     paired bootstrap intervals (lm-windows.ts lmItems + metrics.ts pairedChangeInterval).
 * Distributions come from `LlamaContextSequence.controlledEvaluate` with `generateNext.probabilities`:
 * llama.cpp's full-vocabulary softmax of the raw logits (float32, computed in the addon) for each asked
 * position. (node-llama-cpp >= 3.22 also offers `generateNext.logits`; 3.21 is what the npm registry
 * serves for every platform here, so probabilities are used: log p of a float32 probability differs from
 * log-softmax of the logits by ~1e-7 relative, far below any quantization effect.)
 *
 * Memory: per window the model's rows are reduced position by position (LmAccumulator); a window is fed
 * in chunks so at most `maxRowsInFlight` probability maps exist at once. A reference is recorded once
 * (recordLlamaReference) as float32 log-prob rows of the scored positions, in memory when small, else in
 * a temporary file read back one window at a time — like llama-perplexity's --kl-divergence-base file.
 */
import { randomBytes } from 'node:crypto';
import { open, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { MixqError } from '../core/errors.ts';
import {
  LmAccumulator,
  type LmScore,
  type TokenWindow,
  logProbsFromProbs,
  scoredTargets,
} from './lm-windows.ts';

/** The one line shown when node-llama-cpp is not installed. */
export const LLAMA_CPP_INSTALL_HINT =
  'llama.cpp evaluation needs the optional package node-llama-cpp (>= 3.21): npm install node-llama-cpp';

type NodeLlamaCpp = typeof import('node-llama-cpp');
let modulePromise: Promise<NodeLlamaCpp> | undefined;
let llamaPromise: Promise<Llama> | undefined;

/** True when node-llama-cpp can be imported (does not load llama.cpp itself). */
export async function isLlamaCppAvailable(): Promise<boolean> {
  try {
    await importNodeLlamaCpp();
    return true;
  } catch {
    return false;
  }
}

function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  modulePromise ??= import('node-llama-cpp').catch((e: unknown) => {
    modulePromise = undefined;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
      throw new MixqError(LLAMA_CPP_INSTALL_HINT, { source: 'node-llama-cpp' });
    throw new MixqError(`node-llama-cpp failed to load: ${(e as Error).message}`, {
      source: 'node-llama-cpp',
      expected: 'a working install (npm install node-llama-cpp)',
    });
  });
  return modulePromise;
}

/**
 * The process-wide llama.cpp instance: the prebuilt CPU binary only (never a source build or a download,
 * which would need the network), llama.cpp's own log lines silenced below errors.
 */
async function getLlamaCpp(): Promise<Llama> {
  llamaPromise ??= importNodeLlamaCpp().then(async (m) => {
    try {
      return await m.getLlama({
        build: 'never',
        gpu: false,
        logLevel: m.LlamaLogLevel.error,
        progressLogs: false,
      });
    } catch (e) {
      llamaPromise = undefined;
      throw new MixqError(`llama.cpp binary could not be loaded: ${(e as Error).message}`, {
        source: 'node-llama-cpp',
        expected: 'the prebuilt CPU binary for this platform (@node-llama-cpp/<platform>)',
      });
    }
  });
  return llamaPromise;
}

export interface OpenLlamaOptions {
  /** Name used in errors when the model is given as bytes. */
  readonly name?: string;
  /** CPU threads for evaluation (default 1: the same numbers on any machine load). */
  readonly threads?: number;
  /**
   * Type of the KV cache: 'F16' (default, llama.cpp's and llama-perplexity's default) or 'F32' (exact
   * attention inputs, e.g. to compare with a float32 runtime).
   */
  readonly kvCacheType?: 'F16' | 'F32';
  /**
   * llama.cpp's flash attention (default: node-llama-cpp's 'auto', on for CPU). With it on, llama.cpp keeps
   * the KV cache in F16 whatever `kvCacheType` asks and rounds queries to F16 (|Δ log p| ~3e-2 on
   * stories260K); to compare with a float32 runtime, pass false and kvCacheType 'F32'.
   */
  readonly flashAttention?: boolean;
  /** Load only the vocabulary (tokenize / detokenize; no weights needed, score() fails). */
  readonly vocabOnly?: boolean;
}

/** A GGUF model loaded in llama.cpp. Call `close()` when done (also removes a temp file). */
export interface LlamaCppModel {
  readonly source: string;
  /** llama.cpp's BOS id, or undefined when the vocabulary has none. */
  readonly bos: number | undefined;
  /** Whether llama.cpp prepends BOS for this vocabulary (tokenizer.ggml.add_bos_token). */
  readonly addBos: boolean;
  /** Vocabulary size of the model's output (llama.cpp's n_vocab). */
  vocab(): Promise<number>;
  /** llama.cpp's tokenization of plain text (no BOS, special-token text not parsed). */
  tokenize(text: string): Int32Array;
  detokenize(ids: ArrayLike<number>): string;
  /** Scores the windows: log-probs, nats/token, and (with a reference) KL and top-1 agreement. */
  score(windows: readonly TokenWindow[], opts?: ScoreOptions): Promise<LmScore>;
  /** Records this model's distributions on the windows, to compare candidates against. */
  recordReference(windows: readonly TokenWindow[], opts?: ReferenceOptions): Promise<LlamaReference>;
  close(): Promise<void>;
}

export interface ScoreOptions {
  /** Compare with this reference (recorded on the same windows). */
  readonly reference?: LlamaReference;
  /** Probability maps in flight at once (default 2^20 / vocab, at least 1). */
  readonly maxRowsInFlight?: number;
}

export interface ReferenceOptions {
  /** Rows kept in memory up to this many bytes, else written to a temp file (default 256 MiB). */
  readonly maxMemoryBytes?: number;
  /** Folder for the temp file (default the OS temp folder). */
  readonly tempDir?: string;
}

/**
 * A reference model's log-prob rows for the scored positions of each window (float32, vocab per row).
 * Call `close()` when done (removes its temp file).
 */
export interface LlamaReference {
  readonly windows: readonly TokenWindow[];
  readonly vocab: number;
  /** Bytes of rows in all (in memory or on disk). */
  readonly bytes: number;
  readonly onDisk: boolean;
  /** Rows of window k: (tokens.length - scoreFrom) x vocab. */
  readWindow(k: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Refuses a reference recorded on other windows (the start of a runtime's `score`). */
export function checkScoreWindows(
  source: string,
  windows: readonly TokenWindow[],
  ref: LlamaReference | undefined,
): void {
  if (ref && ref.windows !== windows && !sameWindows(ref.windows, windows))
    throw new MixqError('the reference was recorded on other windows', {
      source,
      field: 'reference',
      expected: 'a reference recorded on the same windows',
    });
}

/** Refuses a reference of another vocabulary, and windows that score nothing. */
export function checkScoreVocab(
  source: string,
  windows: readonly TokenWindow[],
  vocab: number,
  ref: LlamaReference | undefined,
): void {
  if (ref && ref.vocab !== vocab)
    throw new MixqError(`vocabulary of ${vocab} tokens`, {
      source,
      field: 'n_vocab',
      expected: `${ref.vocab} (the reference's)`,
    });
  if (scoredTargets(windows) === 0)
    throw new MixqError('no scored targets', {
      source,
      field: 'windows',
      expected: 'at least one scored token',
    });
}

/**
 * Loads a GGUF file (path) or GGUF bytes (written to a temp file first) into llama.cpp.
 * @example const m = await openLlamaModel('models/stories/stories260K.gguf'); m.tokenize('Once upon a time')
 */
export async function openLlamaModel(
  input: string | Uint8Array,
  opts: OpenLlamaOptions = {},
): Promise<LlamaCppModel> {
  const llama = await getLlamaCpp();
  let path: string;
  let tempDir: string | undefined;
  const source = typeof input === 'string' ? input : (opts.name ?? '<gguf bytes>');
  if (typeof input === 'string') path = input;
  else {
    tempDir = await mkdtemp(join(tmpdir(), 'mixq-llama-'));
    path = join(tempDir, 'model.gguf');
    await writeFile(path, input);
  }
  let model: LlamaModel;
  try {
    model = await llama.loadModel({
      modelPath: path,
      gpuLayers: 0,
      ...(opts.vocabOnly ? { vocabOnly: true } : {}),
    });
  } catch (e) {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
    throw new MixqError(`llama.cpp could not load the model: ${firstLine(e)}`, {
      source,
      expected: 'a GGUF file llama.cpp can load',
    });
  }
  return new LlamaCppModelImpl(
    source,
    model,
    opts.threads ?? 1,
    opts.kvCacheType ?? 'F16',
    tempDir,
    opts.flashAttention,
  );
}

function firstLine(e: unknown): string {
  return String((e as Error).message ?? e).split('\n')[0]!;
}

class LlamaCppModelImpl implements LlamaCppModel {
  readonly bos: number | undefined;
  readonly addBos: boolean;
  private context: LlamaContext | undefined;
  private sequence: LlamaContextSequence | undefined;
  private contextSize = 0;

  constructor(
    readonly source: string,
    private readonly model: LlamaModel,
    private readonly threads: number,
    private readonly kvCacheType: 'F16' | 'F32',
    private readonly tempDir: string | undefined,
    private readonly flashAttention?: boolean,
  ) {
    const bos = model.tokens.bos;
    this.bos = bos === null ? undefined : bos;
    this.addBos = model.tokens.shouldPrependBosToken;
  }

  tokenize(text: string): Int32Array {
    return Int32Array.from(this.model.tokenize(text, false));
  }

  detokenize(ids: ArrayLike<number>): string {
    return this.model.detokenize(Array.from(ids) as never[], false);
  }

  private async sequenceFor(windows: readonly TokenWindow[]) {
    let need = 16;
    for (const w of windows) need = Math.max(need, w.tokens.length);
    if (need > this.model.trainContextSize)
      throw new MixqError(`a window of ${need} tokens is longer than the model's context`, {
        source: this.source,
        field: 'windowTokens',
        expected: `at most ${this.model.trainContextSize} (the model's context length)`,
      });
    if (!this.context || !this.sequence || this.contextSize < need) {
      await this.context?.dispose();
      this.contextSize = need;
      this.context = await this.model.createContext({
        contextSize: need,
        batchSize: need,
        sequences: 1,
        threads: this.threads,
        experimentalKvCacheKeyType: this.kvCacheType,
        experimentalKvCacheValueType: this.kvCacheType,
        ...(this.flashAttention !== undefined ? { flashAttention: this.flashAttention } : {}),
      });
      this.sequence = this.context.getSequence();
    }
    return this.sequence;
  }

  /**
   * Feeds window `w` from an empty state and calls `row(j, probs)` for each asked position j
   * (scoreFrom-1 .. length-2) with its probability map, in order, in chunks of `chunk` positions.
   */
  private async evalWindow(
    w: TokenWindow,
    chunk: number,
    row: (j: number, probs: ReadonlyMap<number, number>) => void,
  ): Promise<void> {
    const seq = await this.sequenceFor([w]);
    await seq.clearHistory();
    const toks = Array.from(w.tokens);
    const n = toks.length;
    let pos = 0;
    while (pos < n - 1) {
      // positions before scoreFrom-1 need no output: feed them in one go
      const first = pos < w.scoreFrom - 1 ? w.scoreFrom - 1 : pos;
      const end = Math.min(n - 1, first + chunk);
      const input = [];
      for (let j = pos; j < end; j++)
        input.push(
          j >= w.scoreFrom - 1 ? ([toks[j]!, { generateNext: { probabilities: true } }] as const) : toks[j]!,
        );
      const base = pos;
      await seq.controlledEvaluate(input as never, {
        onTokenResult: (i, result) => {
          const probs = result.next.probabilities;
          if (!probs)
            throw new MixqError('llama.cpp returned no probabilities', {
              source: this.source,
              field: `position ${base + i}`,
            });
          row(base + i, probs);
        },
      });
      pos = end;
    }
  }

  async score(windows: readonly TokenWindow[], opts: ScoreOptions = {}): Promise<LmScore> {
    const ref = opts.reference;
    checkScoreWindows(this.source, windows, ref);
    await this.sequenceFor(windows);
    const vocab = await this.vocab();
    checkScoreVocab(this.source, windows, vocab, ref);
    const acc = new LmAccumulator(windows, vocab, ref !== undefined);
    const row = new Float32Array(vocab);
    for (let k = 0; k < windows.length; k++) {
      const w = windows[k]!;
      const refRows = ref ? await ref.readWindow(k) : undefined;
      acc.beginWindow(k);
      await this.evalWindow(w, this.chunkFor(opts.maxRowsInFlight, vocab), (j, probs) => {
        denseLogProbs(probs, row, this.source);
        acc.add(row, 0, w.tokens[j + 1]!, refRows, (j - (w.scoreFrom - 1)) * vocab);
      });
    }
    return acc.finish();
  }

  /**
   * Positions asked per controlledEvaluate call. A function of the vocabulary only (unless overridden), so
   * a reference and a candidate of the same vocabulary are fed in the same batches: llama.cpp's float
   * results depend on the batch split (~1e-6), and KL of a model against itself is then exactly 0.
   */
  private chunkFor(maxRows: number | undefined, vocab: number): number {
    return Math.max(1, Math.floor(maxRows ?? (1 << 20) / vocab));
  }

  private vocabSize: number | undefined;

  /** Vocabulary size as llama.cpp's output has it (one probe decode, then cached). */
  async vocab(): Promise<number> {
    if (this.vocabSize === undefined) {
      const seq = await this.sequenceFor([]);
      await seq.clearHistory();
      const [out] = await seq.controlledEvaluate([
        [(this.bos ?? 0) as never, { generateNext: { probabilities: true } }],
      ]);
      const n = out?.next.probabilities?.size;
      if (!n)
        throw new MixqError('llama.cpp returned no probabilities', { source: this.source, field: 'n_vocab' });
      this.vocabSize = n;
    }
    return this.vocabSize;
  }

  async recordReference(
    windows: readonly TokenWindow[],
    opts: ReferenceOptions = {},
  ): Promise<LlamaReference> {
    const rows = scoredTargets(windows);
    const rowOffsets: number[] = [];
    let r = 0;
    for (const w of windows) {
      rowOffsets.push(r);
      r += w.tokens.length - w.scoreFrom;
    }
    await this.sequenceFor(windows);
    const vocab = await this.vocab();
    let store: RowStore | undefined;
    const maxMemory = opts.maxMemoryBytes ?? 256 * 1024 * 1024;
    try {
      for (let k = 0; k < windows.length; k++) {
        const w = windows[k]!;
        let buf: Float32Array | undefined;
        await this.evalWindow(w, this.chunkFor(undefined, vocab), (j, probs) => {
          store ??= newRowStore(rows * vocab * 4, maxMemory, opts.tempDir);
          buf ??= new Float32Array((w.tokens.length - w.scoreFrom) * vocab);
          const row = buf.subarray((j - (w.scoreFrom - 1)) * vocab, (j - w.scoreFrom + 2) * vocab);
          denseLogProbs(probs, row, this.source);
        });
        if (buf) await (store as RowStore | undefined)?.write(rowOffsets[k]! * vocab * 4, buf);
      }
    } catch (e) {
      await (store as RowStore | undefined)?.close();
      throw e;
    }
    const s = store as RowStore | undefined;
    if (!s) throw new MixqError('no scored targets', { source: this.source, field: 'windows' });
    return {
      windows,
      vocab,
      bytes: rows * vocab * 4,
      onDisk: s.onDisk,
      readWindow: async (k) => {
        const w = windows[k]!;
        const n = (w.tokens.length - w.scoreFrom) * vocab;
        return s.read(rowOffsets[k]! * vocab * 4, n);
      },
      close: () => s.close(),
    };
  }

  async close(): Promise<void> {
    await this.context?.dispose();
    this.context = undefined;
    this.sequence = undefined;
    await this.model.dispose();
    if (this.tempDir) await rm(this.tempDir, { recursive: true, force: true });
  }
}

export function sameWindows(a: readonly TokenWindow[], b: readonly TokenWindow[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) {
    const x = a[k]!;
    const y = b[k]!;
    if (x.scoreFrom !== y.scoreFrom || x.tokens.length !== y.tokens.length) return false;
    for (let i = 0; i < x.tokens.length; i++) if (x.tokens[i] !== y.tokens[i]) return false;
  }
  return true;
}

/** Dense log-prob row from node-llama-cpp's token -> probability map (must cover the vocabulary). */
function denseLogProbs(probs: ReadonlyMap<number, number>, out: Float32Array, source: string): void {
  if (probs.size !== out.length)
    throw new MixqError(`llama.cpp returned ${probs.size} probabilities`, {
      source,
      field: 'probabilities',
      expected: `${out.length} (the whole vocabulary)`,
    });
  const p = new Float32Array(out.length);
  for (const [t, v] of probs) p[t] = v;
  logProbsFromProbs(p, out);
}

/** Log-prob rows of a reference, in memory or in a temporary file (shared with runtime/engine-lm.node.ts). */
export interface RowStore {
  readonly onDisk: boolean;
  write(offset: number, data: Float32Array): Promise<void>;
  read(offset: number, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export function newRowStore(bytes: number, maxMemory: number, dir: string | undefined): RowStore {
  if (bytes <= maxMemory) {
    const mem = new Float32Array(bytes / 4);
    return {
      onDisk: false,
      write: (o, d) => {
        mem.set(d, o / 4);
        return Promise.resolve();
      },
      read: (o, n) => Promise.resolve(mem.subarray(o / 4, o / 4 + n)),
      close: () => Promise.resolve(),
    };
  }
  const path = join(dir ?? tmpdir(), `mixq-reference-${process.pid}-${randomBytes(6).toString('hex')}.f32`);
  const fh = open(path, 'w+');
  return {
    onDisk: true,
    async write(o, d) {
      await (await fh).write(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), 0, d.byteLength, o);
    },
    async read(o, n) {
      const out = new Float32Array(n);
      const b = new Uint8Array(out.buffer);
      let done = 0;
      while (done < b.length) {
        const { bytesRead } = await (await fh).read(b, done, b.length - done, o + done);
        if (bytesRead === 0) throw new MixqError('reference file is truncated', { source: path });
        done += bytesRead;
      }
      return out;
    },
    async close() {
      await (await fh).close();
      await rm(path, { force: true });
    },
  };
}

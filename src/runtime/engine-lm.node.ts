/**
 * mixq's own engine (src/engine) as an evaluation runtime with the same interface as llama.cpp's adapter
 * (llama.node.ts `LlamaCppModel`): nats per token, and KL / top-1 against a reference recorded by either
 * runtime on the same windows (lm-windows.ts). So a plan in formats llama.cpp and onnxruntime cannot
 * execute (int3, NVFP4, FP6, ... in mixq's quantized safetensors) is measured in the runtime that runs it,
 * against llama.cpp's reference distributions of the original model if wanted.
 *
 * Each window runs from an empty KV cache: positions before the first scored one in one matrix x matrix
 * pass without logits, then chunks of at most `maxRowsInFlight` positions whose logit rows are reduced at
 * once (log-softmax in float64). The chunking depends on the vocabulary only, so a reference and a
 * candidate are fed alike.
 */
import { MixqError } from '../core/errors.ts';
import { type OpenModelOptions, openEngineModel } from '../engine/load.node.ts';
import type { EngineModel } from '../engine/model.ts';
import { floatTensor } from './ort.node.ts';
import type { ModelRunner } from './runner.node.ts';
import {
  checkScoreVocab,
  checkScoreWindows,
  type LlamaCppModel,
  type LlamaReference,
  newRowStore,
  type ReferenceOptions,
  type RowStore,
  type ScoreOptions,
} from './llama.node.ts';
import {
  LmAccumulator,
  type LmScore,
  logProbsFromLogits,
  scoredTargets,
  type TokenWindow,
} from './lm-windows.ts';

/** An engine model as an evaluation runtime (the LlamaCppModel interface). */
export class EngineLm implements LlamaCppModel {
  readonly source: string;
  readonly bos: number | undefined;
  readonly addBos: boolean;

  constructor(
    readonly model: EngineModel,
    private readonly onClose: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.source = model.config.source;
    this.bos = model.tokenizer.bos;
    this.addBos = model.tokenizer.addBos;
  }

  vocab(): Promise<number> {
    return Promise.resolve(this.model.config.vocabSize);
  }

  tokenize(text: string): Int32Array {
    return this.model.tokenizer.encode(text);
  }

  detokenize(ids: ArrayLike<number>): string {
    return this.model.tokenizer.decode(ids);
  }

  /**
   * Calls row(j, logProbs) for every asked position j = scoreFrom - 1 .. length - 2 of the window, in
   * order (logProbs: vocab float32 values, valid during the call).
   */
  private evalWindow(w: TokenWindow, chunk: number, row: (j: number, lp: Float32Array) => void): void {
    const m = this.model;
    const V = m.config.vocabSize;
    const n = w.tokens.length;
    if (n > m.maxContext)
      throw new MixqError(`a window of ${n} tokens is longer than the model's context`, {
        source: this.source,
        field: 'windowTokens',
        expected: `at most ${m.maxContext}`,
      });
    const cache = m.newCache(Math.max(1, n - 1));
    try {
      const first = w.scoreFrom - 1;
      if (first > 0) m.forward(w.tokens.subarray(0, first), cache, first);
      const lp = new Float32Array(V);
      for (let pos = first; pos < n - 1; pos += chunk) {
        const end = Math.min(n - 1, pos + chunk);
        const logits = m.forward(w.tokens.subarray(pos, end), cache, 0);
        for (let j = pos; j < end; j++) {
          logProbsFromLogits(logits.subarray((j - pos) * V, (j - pos + 1) * V), lp);
          row(j, lp);
        }
      }
    } finally {
      cache.release(); // the KV cache lives in kernel memory
    }
  }

  private chunkFor(maxRows: number | undefined): number {
    return Math.max(1, Math.floor(maxRows ?? (1 << 20) / this.model.config.vocabSize));
  }

  async score(windows: readonly TokenWindow[], opts: ScoreOptions = {}): Promise<LmScore> {
    const ref = opts.reference;
    const V = this.model.config.vocabSize;
    checkScoreWindows(this.source, windows, ref);
    checkScoreVocab(this.source, windows, V, ref);
    const acc = new LmAccumulator(windows, V, ref !== undefined);
    for (let k = 0; k < windows.length; k++) {
      const w = windows[k]!;
      const refRows = ref ? await ref.readWindow(k) : undefined;
      acc.beginWindow(k);
      this.evalWindow(w, this.chunkFor(opts.maxRowsInFlight), (j, lp) =>
        acc.add(lp, 0, w.tokens[j + 1]!, refRows, (j - (w.scoreFrom - 1)) * V),
      );
    }
    return acc.finish();
  }

  async recordReference(
    windows: readonly TokenWindow[],
    opts: ReferenceOptions = {},
  ): Promise<LlamaReference> {
    const V = this.model.config.vocabSize;
    const rows = scoredTargets(windows);
    if (rows === 0)
      throw new MixqError('no scored targets', {
        source: this.source,
        field: 'windows',
        expected: 'at least one',
      });
    const store: RowStore = newRowStore(rows * V * 4, opts.maxMemoryBytes ?? 256 * 1024 * 1024, opts.tempDir);
    const offsets: number[] = [];
    try {
      let r = 0;
      for (const w of windows) {
        offsets.push(r);
        const buf = new Float32Array((w.tokens.length - w.scoreFrom) * V);
        this.evalWindow(w, this.chunkFor(undefined), (j, lp) => buf.set(lp, (j - (w.scoreFrom - 1)) * V));
        await store.write(r * V * 4, buf);
        r += w.tokens.length - w.scoreFrom;
      }
    } catch (e) {
      await store.close();
      throw e;
    }
    return {
      windows,
      vocab: V,
      bytes: rows * V * 4,
      onDisk: store.onDisk,
      readWindow: (k) =>
        store.read(offsets[k]! * V * 4, (windows[k]!.tokens.length - windows[k]!.scoreFrom) * V),
      close: () => store.close(),
    };
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

/**
 * Opens a model file or folder in mixq's engine as an evaluation runtime.
 * @example
 *   const lm = await openEngineLm('plan.gguf', { threads: 2 });
 *   const s = await lm.score(splitWindows(lm.tokenize(text), { windowTokens: 256, bos: lm.bos }), { reference });
 */
export async function openEngineLm(path: string, opts: OpenModelOptions = {}): Promise<EngineLm> {
  const m = await openEngineModel(path, opts);
  return new EngineLm(m, () => m.close());
}

/**
 * An engine model as a ModelRunner, the interface the task evaluators (evaluateLm, the quantize tasks)
 * run onnxruntime sessions through: input `ids` (int64 [batch, seq]), output `logits` (float32 [batch,
 * seq, vocab]), each row of the batch from an empty KV cache. So a task's metric of a file mixq's engine
 * runs is computed by the same code as for its ONNX export.
 * @example const bpc = await task.evaluate(engineRunner(model));
 */
export function engineRunner(model: EngineModel, names = { input: 'ids', output: 'logits' }): ModelRunner {
  const V = model.config.vocabSize;
  return {
    inputNames: [names.input],
    outputNames: [names.output],
    inputMetadata: [{ name: names.input, type: 'int64', shape: ['batch', 'sequence'] }],
    run: (feeds) => {
      const t = feeds[names.input];
      if (!t || t.dims.length !== 2 || (t.type !== 'int64' && t.type !== 'int32'))
        throw new MixqError('no ids', {
          source: 'engine runner',
          field: names.input,
          expected: 'int64 token ids [batch, sequence]',
        });
      const [b, n] = t.dims as [number, number];
      const data = t.data as BigInt64Array | Int32Array;
      const out = new Float32Array(b * n * V);
      const ids = new Int32Array(n);
      for (let r = 0; r < b; r++) {
        for (let i = 0; i < n; i++) ids[i] = Number(data[r * n + i]!);
        const cache = model.newCache(n);
        try {
          out.set(model.forward(ids, cache, 0), r * n * V);
        } finally {
          cache.release();
        }
      }
      return Promise.resolve({ [names.output]: floatTensor(out, [b, n, V]) });
    },
  };
}

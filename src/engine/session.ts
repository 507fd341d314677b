/**
 * Running a loaded model: a session (one KV cache) with prefill / decode steps that return logits, and
 * text generation as an async iterator of tokens with their text, streamed as it becomes valid UTF-8.
 */
import { MixqError } from '../core/errors.ts';
import { type EngineModel, type KvCache } from './model.ts';
import { argmaxRow, Sampler, type SamplingOptions } from './sampling.ts';

/**
 * One sequence of a model: its KV cache and the steps that extend it.
 * @example
 *   const s = new EngineSession(model);
 *   let logits = s.prefill(model.tokenizer.encode('Once upon a time'));
 *   logits = s.decode(argmaxRow(logits));
 */
export class EngineSession {
  readonly cache: KvCache;
  constructor(
    readonly model: EngineModel,
    contextSize?: number,
  ) {
    this.cache = model.newCache(contextSize);
  }

  /** Positions processed so far. */
  get position(): number {
    return this.cache.length;
  }

  /** Runs `ids` (one matrix x matrix pass) and returns the logits after the last of them. */
  prefill(ids: ArrayLike<number>): Float32Array {
    return this.model.forward(ids, this.cache);
  }

  /** Runs one token (matrix x vector products) and returns the logits after it. */
  decode(id: number): Float32Array {
    return this.model.forward([id], this.cache);
  }

  /** Runs `ids` and returns the logits after each of them from index `from` on (vocab values per row). */
  logits(ids: ArrayLike<number>, from = 0): Float32Array {
    return this.model.forward(ids, this.cache, from);
  }

  /** Forgets every position (or those from `n` on). */
  reset(n = 0): void {
    this.cache.truncate(n);
  }

  /** Returns the KV cache's kernel memory now (a dropped session returns it when garbage collected). */
  close(): void {
    this.cache.release();
  }
}

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (default 128). */
  readonly maxTokens?: number;
  /** Stop at the end-of-sequence token (default true). */
  readonly stopAtEos?: boolean;
  /** Put BOS before the prompt (default: what the tokenizer says, e.g. true for llama vocabularies). */
  readonly addBos?: boolean;
  /** KV cache positions (default: prompt + maxTokens, at most the model's context). */
  readonly contextSize?: number;
  /** Positions per prefill call (default 256): bounds the activations of long prompts. */
  readonly prefillChunk?: number;
}

export interface GeneratedToken {
  readonly id: number;
  /** Text this token completes (may be '' while a UTF-8 sequence is incomplete). */
  readonly text: string;
  /** 0 for the first generated token. */
  readonly index: number;
}

/** Token ids of a prompt (BOS first when asked or when the tokenizer adds one). */
export function promptIds(
  model: EngineModel,
  prompt: string | ArrayLike<number>,
  addBos?: boolean,
): Int32Array {
  if (typeof prompt !== 'string') return Int32Array.from(prompt);
  const tok = model.tokenizer;
  const ids = tok.encode(prompt);
  if ((addBos ?? tok.addBos) && tok.bos !== undefined) {
    const out = new Int32Array(ids.length + 1);
    out[0] = tok.bos;
    out.set(ids, 1);
    return out;
  }
  return ids;
}

/**
 * Generates tokens after a prompt (text or ids): prefill, then one decode step per token.
 * @example for await (const t of generateTokens(model, 'Once upon a time', { maxTokens: 32 })) process.stdout.write(t.text)
 */
export async function* generateTokens(
  model: EngineModel,
  prompt: string | ArrayLike<number>,
  opts: GenerateOptions = {},
): AsyncGenerator<GeneratedToken> {
  const maxTokens = opts.maxTokens ?? 128;
  if (!Number.isInteger(maxTokens) || maxTokens < 0)
    throw new MixqError(`max tokens ${maxTokens}`, {
      source: 'generateTokens',
      field: 'maxTokens',
      expected: 'an integer >= 0',
    });
  const ids = promptIds(model, prompt, opts.addBos);
  if (ids.length === 0)
    throw new MixqError('empty prompt', {
      source: 'generateTokens',
      field: 'prompt',
      expected: 'at least one token',
    });
  const ctx = opts.contextSize ?? Math.min(model.maxContext, ids.length + maxTokens);
  if (ids.length + maxTokens > ctx && ids.length >= ctx)
    throw new MixqError(`prompt of ${ids.length} tokens`, {
      source: 'generateTokens',
      field: 'prompt',
      expected: `fewer than ${ctx} tokens (the context size)`,
    });
  const session = new EngineSession(model, ctx);
  try {
    const sampler = new Sampler(opts);
    const chunk = opts.prefillChunk ?? 256;
    let logits: Float32Array = new Float32Array(0);
    for (let i = 0; i < ids.length; i += chunk)
      logits = session.prefill(ids.subarray(i, Math.min(ids.length, i + chunk)));
    const text = new TextStream(model, ids);
    const eos = model.tokenizer.eos;
    for (let n = 0; n < maxTokens; n++) {
      const id = sampler.next(logits);
      if ((opts.stopAtEos ?? true) && id === eos) return;
      yield { id, text: text.push(id), index: n };
      if (n + 1 === maxTokens || session.position >= ctx) return;
      logits = session.decode(id);
      await Promise.resolve();
    }
  } finally {
    session.close();
  }
}

/**
 * Incremental detokenization: the text of the generated ids after a few prompt ids (decoders strip or add
 * leading spaces depending on context), emitted once it is no longer an incomplete UTF-8 sequence.
 */
class TextStream {
  private readonly ids: number[];
  private emitted: number;
  constructor(
    private readonly model: EngineModel,
    prompt: ArrayLike<number>,
  ) {
    const tail = Array.from(prompt).slice(-4);
    const bos = model.tokenizer.bos;
    this.ids = tail.filter((t) => t !== bos);
    this.emitted = this.model.tokenizer.decode(this.ids).length;
  }
  push(id: number): string {
    this.ids.push(id);
    const full = this.model.tokenizer.decode(this.ids);
    if (full.endsWith('\uFFFD')) return '';
    const piece = full.slice(this.emitted);
    this.emitted = full.length;
    return piece;
  }
}

/** Decode speed of a loaded model, measured. */
export interface DecodeSpeed {
  /** Milliseconds per decoded token (best of the repetitions, mean over the tokens of one). */
  readonly msPerToken: number;
  /** Of which the weight products (the part a plan's formats decide; `model.times.matmul`). */
  readonly productsMsPerToken: number;
  /** Where a token's time goes, ms per token by step. */
  readonly split: Readonly<Record<string, number>>;
  readonly promptTokens: number;
  readonly decodeTokens: number;
}

/**
 * Times greedy decoding: a prompt of `prompt` tokens (one prefill), one warm-up token, then `tokens`
 * decode steps, `repeats` times from an empty cache; the fastest repetition counts.
 * @example const s = measureDecode(model, { tokens: 32 }); s.msPerToken
 */
export function measureDecode(
  model: EngineModel,
  opts: { readonly prompt?: number; readonly tokens?: number; readonly repeats?: number } = {},
): DecodeSpeed {
  const promptTokens = Math.max(1, opts.prompt ?? 16);
  const decodeTokens = Math.max(1, opts.tokens ?? 32);
  const V = model.config.vocabSize;
  const s = new EngineSession(model, Math.min(model.config.contextLength, promptTokens + decodeTokens + 1));
  const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7 + 1) % V);
  let best: DecodeSpeed | undefined;
  for (let r = 0; r < Math.max(1, opts.repeats ?? 3); r++) {
    s.reset();
    let logits = s.prefill(prompt);
    logits = s.decode(argmaxRow(logits)); // warm-up
    model.resetTimes();
    const t0 = performance.now();
    for (let i = 0; i < decodeTokens; i++) logits = s.decode(argmaxRow(logits));
    const ms = (performance.now() - t0) / decodeTokens;
    if (!best || ms < best.msPerToken) {
      const split = Object.fromEntries(Object.entries(model.times).map(([k, v]) => [k, v / decodeTokens]));
      best = {
        msPerToken: ms,
        productsMsPerToken: model.times.matmul / decodeTokens,
        split,
        promptTokens,
        decodeTokens,
      };
    }
  }
  s.close();
  return best!;
}

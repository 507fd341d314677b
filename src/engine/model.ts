/**
 * The decoder-only transformer: llama (RMSNorm, RoPE, SwiGLU, GQA; Mistral and Qwen2 too) and gpt2
 * (LayerNorm, learned positions, GELU), over weights held at their stored size in kernel memory.
 *
 * A forward pass takes B new tokens at positions pos0 .. pos0 + B - 1 of a KV cache: B > 1 (prefill) runs
 * every product as one matrix x matrix call, B = 1 (decode) as matrix x vector. Products run on the
 * kernels (src/kernels: WebAssembly SIMD, worker threads in Node) in each weight's default activation mode
 * (int8 activation blocks with integer dot products for ggml's quantized types, as llama.cpp runs them;
 * float32 for float weights) or in float32 everywhere (`activations: 'f32'`). Everything between the
 * products (norms, RoPE, attention over the cache, activations, embedding lookups) is ops.ts.
 */
import { MixqError } from '../core/errors.ts';
import type { LlmConfig } from '../io/llm/config.ts';
import type { LlmTokenizer } from '../io/llm/tokenizer.ts';
import { KernelKvStore } from '../kernels/attention.ts';
import type { KernelContext, PreparedWeight } from '../kernels/context.ts';
import { kernelSwiglu } from '../kernels/elementwise.ts';
import type { ActivationMode } from '../kernels/registry.ts';
import {
  addBias,
  addInPlace,
  applyRope,
  attention,
  geluErf,
  geluTanh,
  type KvLayer,
  layerNorm,
  type RopeParams,
  rmsNorm,
  ropeTables,
  swiglu,
} from './ops.ts';

/** One matrix product whose output rows hold one or more logical outputs side by side (fused q|k|v). */
export interface Projection {
  readonly w: PreparedWeight;
  readonly bias?: Float32Array;
  /** Sizes of the logical outputs in the product's rows, in order (sum = w.rows). */
  readonly splits: readonly number[];
}

export interface NormWeights {
  readonly weight: Float32Array;
  readonly bias?: Float32Array;
}

export interface LayerWeights {
  readonly attnNorm: NormWeights;
  /** Products giving q, k, v in this order (one fused product, or several). */
  readonly qkv: readonly Projection[];
  readonly attnOut: Projection;
  readonly ffnNorm: NormWeights;
  /** llama: gate, up (fused or not); gpt2: up. */
  readonly ffnIn: readonly Projection[];
  readonly ffnDown: Projection;
}

export interface ModelWeights {
  readonly tokenEmbd: PreparedWeight;
  /** gpt2: learned positions, [positions x hidden]. */
  readonly posEmbd?: Float32Array;
  readonly layers: readonly LayerWeights[];
  readonly outputNorm: NormWeights;
  /** The LM head (the token embedding itself when tied). */
  readonly output: PreparedWeight;
}

/**
 * Activation modes of the products: each weight's default ('auto': int8 blocks on quantized weights, as
 * llama.cpp), float32 wherever a kernel has it ('f32'), or 'lut8': mixq's int1..int4 weights (groups of
 * 32k or per row) in the lookup-table layout, run on T-MAC's int8 tables of sums of four activations
 * (kernels/lut.ts; faster for 2 and 3 bits, at a second rounding of the activations), the others 'auto'.
 */
export type EngineActivations = 'auto' | 'f32' | 'lut8';

/**
 * Where the steps between products that have kernels run — attention over the cache and SwiGLU:
 * 'kernels' (WebAssembly, native/kernels/attention.h; attention heads split over a pool's threads) or
 * 'reference' (ops.ts in TypeScript: attention with float64 sums, the kernels' reference).
 */
export type EngineOps = 'kernels' | 'reference';

export interface EngineOptions {
  readonly activations?: EngineActivations;
  readonly ops?: EngineOps;
}

/**
 * Where a product's input is seen: q|k|v (one input for all three), the attention output projection, the
 * FFN input (gate|up, or up), the FFN down projection and the LM head (layer -1).
 */
export type ProductSite = 'qkv' | 'attn_output' | 'ffn_in' | 'ffn_down' | 'output';

/** Sees the float32 input rows ([rows x cols]) of a product before it runs; must not modify them. */
export type ProductInputHook = (site: ProductSite, layer: number, x: Float32Array, rows: number) => void;

/** Milliseconds spent per step since the last reset (where a token's time goes). */
export interface EngineTimes {
  matmul: number;
  attention: number;
  norm: number;
  rope: number;
  activation: number;
  embedding: number;
  other: number;
}

const SRC = 'engine';

/**
 * Keys and values of every layer for up to `maxLength` positions, in the kernels' memory (float32; see
 * kernels/attention.ts for why not float16); grows as positions are added. `release()` returns its memory
 * (a cache that is garbage collected returns it too).
 */
export class KvCache {
  /** Positions held. */
  length = 0;
  readonly store: KernelKvStore;
  constructor(
    kernels: KernelContext,
    readonly numLayers: number,
    kvHeads: number,
    headDim: number,
    readonly maxLength: number,
  ) {
    this.store = new KernelKvStore(kernels, numLayers, kvHeads, headDim, maxLength);
  }

  /** kvHeads x headDim. */
  get width(): number {
    return this.store.width;
  }

  /** Bytes the cache holds now. */
  get bytes(): number {
    return this.store.bytes;
  }

  /** Makes room for `n` positions in all. */
  reserve(n: number): void {
    this.store.reserve(n, this.length);
  }

  /** Keys and values of layer l (views of kernel memory, valid until it grows). */
  layer(l: number): KvLayer {
    return this.store.views(l);
  }

  /** Forgets positions from `n` on (n = 0: empty). */
  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.length)
      throw new MixqError(`truncate to ${n}`, { source: SRC, field: 'n', expected: `0..${this.length}` });
    this.length = n;
  }

  /** Returns the cache's kernel memory; the cache is unusable afterwards. */
  release(): void {
    this.store.release();
  }
}

/** A loaded model: configuration, tokenizer, weights in kernel memory, and the forward pass. */
export class EngineModel {
  readonly times: EngineTimes = zeroTimes();
  /** Called with each product's input (engine/imatrix.ts collects importance matrices with it). */
  onProductInput: ProductInputHook | undefined = undefined;
  private readonly rope: RopeParams | undefined;
  private readonly activations: EngineActivations;
  /** Where attention and SwiGLU run (EngineOptions.ops); may be switched between forward passes. */
  ops: EngineOps;
  private scores = new Float64Array(0);
  private readonly decodeOut = new Map<PreparedWeight, Float32Array>();

  constructor(
    readonly config: LlmConfig,
    readonly tokenizer: LlmTokenizer,
    readonly kernels: KernelContext,
    readonly weights: ModelWeights,
    ropeMode: 'norm' | 'neox' | undefined,
    opts: EngineOptions = {},
  ) {
    this.activations = opts.activations ?? 'auto';
    this.ops = opts.ops ?? 'kernels';
    if (config.positions === 'rope') {
      if (!ropeMode)
        throw new MixqError('no RoPE mode', {
          source: config.source,
          field: 'ropeMode',
          expected: "'norm' or 'neox'",
        });
      this.rope = {
        mode: ropeMode,
        dims: config.ropeDim ?? config.headDim,
        theta: config.ropeTheta ?? 10000,
        linearFactor: config.ropeLinearFactor ?? 1,
      };
    }
  }

  /** Positions the model can attend over (gpt2: its learned positions; llama: its trained context). */
  get maxContext(): number {
    const pe = this.weights.posEmbd;
    return pe ? pe.length / this.config.hiddenSize : this.config.contextLength;
  }

  /** A KV cache for up to `contextSize` positions (default: the model's context). */
  newCache(contextSize = this.maxContext): KvCache {
    if (!Number.isInteger(contextSize) || contextSize < 1 || contextSize > this.maxContext)
      throw new MixqError(`context size ${contextSize}`, {
        source: this.config.source,
        field: 'contextSize',
        expected: `1..${this.maxContext}`,
      });
    const c = this.config;
    return new KvCache(this.kernels, c.numLayers, c.numKvHeads, c.headDim, contextSize);
  }

  /** The activation mode a weight's products run in. */
  modeOf(w: PreparedWeight): ActivationMode {
    if (this.activations !== 'auto' && w.modes.includes(this.activations)) return this.activations;
    return w.modes[0]!;
  }

  /**
   * Runs `tokens` at the cache's next positions (appending their keys and values) and returns the logits
   * of rows `logitsFrom` .. tokens.length - 1 (vocab values per row; default: the last row only).
   */
  forward(tokens: ArrayLike<number>, cache: KvCache, logitsFrom = tokens.length - 1): Float32Array {
    const c = this.config;
    const B = tokens.length;
    const H = c.hiddenSize;
    const pos0 = cache.length;
    if (B < 1) throw new MixqError('no tokens', { source: SRC, field: 'tokens', expected: 'at least one' });
    if (pos0 + B > cache.maxLength)
      throw new MixqError(`${pos0 + B} positions`, {
        source: SRC,
        field: 'context',
        expected: `at most ${cache.maxLength} (the cache's context size)`,
      });
    if (!Number.isInteger(logitsFrom) || logitsFrom < 0 || logitsFrom > B)
      throw new MixqError(`logitsFrom ${logitsFrom}`, {
        source: SRC,
        field: 'logitsFrom',
        expected: `0..${B}`,
      });
    cache.reserve(pos0 + B);
    const t = this.times;
    let t0 = performance.now();
    const x = this.embed(tokens, pos0);
    t.embedding += performance.now() - t0;
    const hd = c.headDim;
    const qW = c.numHeads * hd;
    const h = new Float32Array(B * H);
    const attn = new Float32Array(B * qW);
    if (this.scores.length < pos0 + B)
      this.scores = new Float64Array(Math.max(pos0 + B, 2 * this.scores.length));
    t0 = performance.now();
    const tables = this.rope ? ropeTables(this.rope, pos0, B) : undefined;
    t.rope += performance.now() - t0;
    for (let l = 0; l < c.numLayers; l++) {
      const L = this.weights.layers[l]!;
      this.norm(x, L.attnNorm, B, h);
      this.onProductInput?.('qkv', l, h, B);
      const [q, k, v] = this.project(L.qkv, h, B, 3);
      if (this.rope && tables) {
        t0 = performance.now();
        applyRope(q!, B, c.numHeads, hd, this.rope, tables);
        applyRope(k!, B, c.numKvHeads, hd, this.rope, tables);
        t.rope += performance.now() - t0;
      }
      t0 = performance.now();
      cache.store.write(l, pos0, k!, v!);
      if (this.ops === 'kernels') cache.store.attend(l, q!, B, pos0, c.numHeads, attn);
      else attention(q!, cache.layer(l), B, pos0, c.numHeads, c.numKvHeads, hd, attn, this.scores);
      t.attention += performance.now() - t0;
      this.onProductInput?.('attn_output', l, attn, B);
      const [o] = this.project([L.attnOut], attn, B, 1);
      t0 = performance.now();
      addInPlace(x, o!);
      t.other += performance.now() - t0;
      this.norm(x, L.ffnNorm, B, h);
      this.onProductInput?.('ffn_in', l, h, B);
      let act: Float32Array;
      if (c.family === 'llama') {
        const [g, u] = this.project(L.ffnIn, h, B, 2);
        t0 = performance.now();
        if (this.ops === 'kernels') kernelSwiglu(this.kernels, g!, u!, g!);
        else swiglu(g!, u!, g!);
        t.activation += performance.now() - t0;
        act = g!;
      } else {
        [act] = this.project(L.ffnIn, h, B, 1) as [Float32Array];
        t0 = performance.now();
        if (c.activation === 'gelu-erf') geluErf(act);
        else geluTanh(act);
        t.activation += performance.now() - t0;
      }
      this.onProductInput?.('ffn_down', l, act, B);
      const [d] = this.project([L.ffnDown], act, B, 1);
      t0 = performance.now();
      addInPlace(x, d!);
      t.other += performance.now() - t0;
    }
    cache.length = pos0 + B;
    const rows = B - logitsFrom;
    if (rows === 0) return new Float32Array(0);
    const last = x.subarray(logitsFrom * H);
    const hn = new Float32Array(rows * H);
    this.norm(last, this.weights.outputNorm, rows, hn);
    this.onProductInput?.('output', -1, hn, rows);
    t0 = performance.now();
    const out = this.kernels.matmul(this.weights.output, hn, rows, {
      mode: this.modeOf(this.weights.output),
    });
    t.matmul += performance.now() - t0;
    return out;
  }

  /** Resets the per-step timers. */
  resetTimes(): void {
    Object.assign(this.times, zeroTimes());
  }

  private embed(tokens: ArrayLike<number>, pos0: number): Float32Array {
    const c = this.config;
    const H = c.hiddenSize;
    const x = new Float32Array(tokens.length * H);
    const w = this.weights.tokenEmbd;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= w.rows)
        throw new MixqError(`token id ${id}`, {
          source: SRC,
          field: `tokens[${i}]`,
          expected: `0..${w.rows - 1}`,
        });
      const row = this.kernels.decodeRow(w, id);
      for (let j = 0; j < H; j++) x[i * H + j] = row[j]!;
    }
    const pe = this.weights.posEmbd;
    if (pe)
      for (let i = 0; i < tokens.length; i++)
        for (let j = 0; j < H; j++) x[i * H + j]! += pe[(pos0 + i) * H + j]!;
    return x;
  }

  private norm(x: Float32Array, n: NormWeights, rows: number, out: Float32Array): void {
    const t0 = performance.now();
    if (this.config.norm === 'rms') rmsNorm(x, n.weight, this.config.normEps, rows, out);
    else layerNorm(x, n.weight, n.bias, this.config.normEps, rows, out);
    this.times.norm += performance.now() - t0;
  }

  /** Runs products on `B` rows of `x`; returns `count` logical outputs ([B x size] each). */
  private project(ps: readonly Projection[], x: Float32Array, B: number, count: number): Float32Array[] {
    const outs: Float32Array[] = [];
    for (const p of ps) {
      let t0 = performance.now();
      // one-row products write into a buffer of their own (consumed before the projection runs again)
      let out: Float32Array | undefined;
      if (B === 1) {
        out = this.decodeOut.get(p.w);
        if (!out) this.decodeOut.set(p.w, (out = new Float32Array(p.w.rows)));
      }
      const y = this.kernels.matmul(p.w, x, B, { mode: this.modeOf(p.w), ...(out ? { out } : {}) });
      this.times.matmul += performance.now() - t0;
      t0 = performance.now();
      if (p.bias) addBias(y, p.bias, B);
      if (p.splits.length === 1) outs.push(y);
      else {
        const R = p.w.rows;
        let off = 0;
        for (const s of p.splits) {
          if (B === 1) outs.push(y.subarray(off, off + s));
          else {
            const o = new Float32Array(B * s);
            for (let r = 0; r < B; r++) o.set(y.subarray(r * R + off, r * R + off + s), r * s);
            outs.push(o);
          }
          off += s;
        }
      }
      this.times.other += performance.now() - t0;
    }
    if (outs.length !== count)
      throw new Error(`internal: ${outs.length} projection outputs, expected ${count}`);
    return outs;
  }
}

function zeroTimes(): EngineTimes {
  return { matmul: 0, attention: 0, norm: 0, rope: 0, activation: 0, embedding: 0, other: 0 };
}

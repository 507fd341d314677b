/**
 * One typed configuration of a decoder-only language model, read from GGUF metadata (llama.cpp's key
 * names, src/llama-arch.cpp) or a Hugging Face config.json (transformers' LlamaConfig, MistralConfig,
 * Qwen2Config, GPT2Config), and written back as GGUF metadata. Browser-safe. Shared by the quantization
 * pipeline (inputs, conversion) and mixq's own transformer runtime (issue 21).
 *
 * Families: 'llama' (RMSNorm, RoPE, SwiGLU, GQA) covers llama, Mistral (GGUF architecture 'llama') and
 * Qwen2 (GGUF 'qwen2': q/k/v biases); 'gpt2' (LayerNorm, learned positions, GELU tanh approximation).
 * Anything the config says that these graphs cannot express is refused with the field named: rope
 * scaling other than linear, an activation other than silu (llama) / gelu_new (gpt2), Qwen2's sliding
 * window, GPT-2's attention-scaling variants.
 */
import { MixqError } from '../../core/errors.ts';
import type { GgufKV, GgufValue } from '../gguf/read.ts';
import type { GgufMetadata } from '../gguf/kv-json.ts';

/** GGUF general.architecture values mixq reads. */
export type LlmArchitecture = 'llama' | 'qwen2' | 'gpt2';
export const LLM_ARCHITECTURES: readonly LlmArchitecture[] = ['llama', 'qwen2', 'gpt2'];

export interface LlmConfig {
  /** GGUF general.architecture. */
  readonly architecture: LlmArchitecture;
  readonly family: 'llama' | 'gpt2';
  /** Where it was read (file path or label). */
  readonly source: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Key/value heads (GQA when < numHeads; MQA at 1). */
  readonly numKvHeads: number;
  /** Per-head dimension of queries and keys (= values here). */
  readonly headDim: number;
  /** Positions the model was trained for (GGUF context_length). */
  readonly contextLength: number;
  readonly norm: 'rms' | 'layer';
  readonly normEps: number;
  /** 'gelu-erf': exact GELU, from an engine file's `mixq.activation` key (llama.cpp's gpt2 has gelu_new). */
  readonly activation: 'silu' | 'gelu-tanh' | 'gelu-erf';
  readonly positions: 'rope' | 'learned';
  /** RoPE base frequency (llama family). */
  readonly ropeTheta?: number;
  /** Dimensions rotated per head (llama family; = headDim unless partial rotary). */
  readonly ropeDim?: number;
  /**
   * How llama.cpp rotates q/k of this architecture's GGUF tensors (llama_rope_type): 'norm' = adjacent pairs
   * (x0, x1), (x2, x3)... (llama, whose GGUF q/k rows are permuted from HF's); 'neox' = the two halves of
   * each head, (x_i, x_{i+d/2}) like transformers' rotate_half (qwen2; HF weights are always in this form).
   * Undefined for learned positions (gpt2).
   */
  readonly ggufRopeMode?: 'norm' | 'neox';
  /** Linear position interpolation factor (positions divided by it), when the config asks for it. */
  readonly ropeLinearFactor?: number;
  /** q/k/v projections have biases (Qwen2; optional in llama). */
  readonly qkvBias: boolean;
  /** The attention output projection has a bias (gpt2; optional in llama). */
  readonly outputBias: boolean;
  /** MLP projections have biases (gpt2; optional in llama). */
  readonly mlpBias: boolean;
  /** The LM head is the token embedding (no separate output weight). */
  readonly tieWordEmbeddings: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

class Fields {
  constructor(
    readonly source: string,
    readonly get: (key: string) => unknown,
  ) {}
  fail(msg: string, field: string, expected: string): MixqError {
    return new MixqError(msg, { source: this.source, field, expected });
  }
  int(key: string, dflt?: number, min = 1): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      throw this.fail('missing', key, `an integer >= ${min}`);
    }
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min)
      throw this.fail(`value ${JSON.stringify(String(v))}`, key, `an integer >= ${min}`);
    return n;
  }
  num(key: string, dflt?: number): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      throw this.fail('missing', key, 'a positive number');
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw this.fail(`value ${JSON.stringify(String(v))}`, key, 'a positive number');
    return v;
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw this.fail(`value ${JSON.stringify(v)}`, key, 'true or false');
    return v;
  }
  optId(key: string): number | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return undefined; // several EOS ids (chat models): left to the tokenizer
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      throw this.fail(`value ${JSON.stringify(String(v))}`, key, 'a token id');
    return n === 0xffffffff ? undefined : n;
  }
}

function checkShapes(c: LlmConfig): LlmConfig {
  const f = new Fields(c.source, () => undefined);
  if (c.numHeads % c.numKvHeads !== 0)
    throw f.fail(
      `${c.numHeads} heads over ${c.numKvHeads} KV heads`,
      'num_key_value_heads',
      `a divisor of ${c.numHeads}`,
    );
  if (c.ropeDim !== undefined && (c.ropeDim > c.headDim || c.ropeDim % 2 !== 0))
    throw f.fail(
      `rope dimension ${c.ropeDim}`,
      'rope.dimension_count',
      `an even number <= head dim ${c.headDim}`,
    );
  return c;
}

/**
 * The configuration in a GGUF file's metadata.
 * @example llmConfigFromGguf(await readGguf(src)).numKvHeads
 */
export function llmConfigFromGguf(file: GgufMetadata): LlmConfig {
  const arch = file.get('general.architecture');
  if (typeof arch !== 'string' || !(LLM_ARCHITECTURES as readonly string[]).includes(arch))
    throw new MixqError(`architecture ${JSON.stringify(arch ?? null)} is not supported`, {
      source: file.source,
      field: 'general.architecture',
      expected: LLM_ARCHITECTURES.join(', '),
    });
  const a = arch as LlmArchitecture;
  const f = new Fields(file.source, (k) =>
    k.startsWith('tokenizer.') ? file.get(k) : file.get(`${a}.${k}`),
  );
  const tensor = (n: string) => file.tensors.find((t) => t.name === n);
  const embd = tensor('token_embd.weight');
  if (!embd) throw f.fail('missing tensor', 'token_embd.weight', 'the token embedding');
  const tokens = file.get('tokenizer.ggml.tokens');
  const vocabSize = f.int(
    'vocab_size',
    embd.ne[1] ?? (typeof tokens === 'object' ? tokens.items.length : undefined),
  );
  const hiddenSize = f.int('embedding_length');
  const numHeads = f.int('attention.head_count');
  const headDim = f.int('attention.key_length', Math.floor(hiddenSize / numHeads));
  const vLen = f.int('attention.value_length', headDim);
  if (vLen !== headDim)
    throw f.fail(`value length ${vLen}`, `${a}.attention.value_length`, `${headDim} (the key length)`);
  const common = {
    architecture: a,
    source: file.source,
    vocabSize,
    hiddenSize,
    intermediateSize: f.int('feed_forward_length'),
    numLayers: f.int('block_count'),
    numHeads,
    numKvHeads: f.int('attention.head_count_kv', numHeads),
    headDim,
    contextLength: f.int('context_length'),
    tieWordEmbeddings: tensor('output.weight') === undefined,
    ...optIds(f),
  };
  if (a === 'gpt2')
    return checkShapes({
      ...common,
      family: 'gpt2',
      norm: 'layer',
      normEps: f.num('attention.layer_norm_epsilon'),
      activation: file.get('mixq.activation') === 'gelu-erf' ? 'gelu-erf' : 'gelu-tanh',
      positions: 'learned',
      qkvBias: true,
      outputBias: true,
      mlpBias: true,
    });
  const scaling = file.get(`${a}.rope.scaling.type`);
  let ropeLinearFactor: number | undefined;
  if (scaling !== undefined && scaling !== 'none') {
    if (scaling !== 'linear')
      throw f.fail(
        `rope scaling ${JSON.stringify(scaling)} is not supported`,
        `${a}.rope.scaling.type`,
        "'none' or 'linear'",
      );
    ropeLinearFactor = f.num('rope.scaling.factor');
  }
  return checkShapes({
    ...common,
    family: 'llama',
    norm: 'rms',
    normEps: f.num('attention.layer_norm_rms_epsilon'),
    activation: 'silu',
    positions: 'rope',
    ropeTheta: f.num('rope.freq_base', 10000),
    ropeDim: f.int('rope.dimension_count', headDim),
    ggufRopeMode: a === 'qwen2' ? 'neox' : 'norm',
    ...(ropeLinearFactor !== undefined ? { ropeLinearFactor } : {}),
    qkvBias: tensor('blk.0.attn_q.bias') !== undefined,
    outputBias: tensor('blk.0.attn_output.bias') !== undefined,
    mlpBias: tensor('blk.0.ffn_up.bias') !== undefined,
  });
}

function optIds(f: Fields): { bosTokenId?: number; eosTokenId?: number } {
  const bos = f.optId('tokenizer.ggml.bos_token_id');
  const eos = f.optId('tokenizer.ggml.eos_token_id');
  return {
    ...(bos !== undefined ? { bosTokenId: bos } : {}),
    ...(eos !== undefined ? { eosTokenId: eos } : {}),
  };
}

/** Hugging Face model_type -> GGUF architecture. */
const HF_MODEL_TYPES: Readonly<Record<string, LlmArchitecture>> = {
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'qwen2',
  gpt2: 'gpt2',
};

/**
 * The configuration in a Hugging Face config.json (already parsed).
 * @example llmConfigFromHf(JSON.parse(await readFile('config.json', 'utf8')), 'config.json')
 */
export function llmConfigFromHf(json: unknown, source: string): LlmConfig {
  if (!isObj(json))
    throw new MixqError('not a JSON object', { source, field: 'config.json', expected: 'an object' });
  const f = new Fields(source, (k) => json[k]);
  const mt = json.model_type;
  const a = typeof mt === 'string' && Object.hasOwn(HF_MODEL_TYPES, mt) ? HF_MODEL_TYPES[mt] : undefined;
  if (!a)
    throw f.fail(
      `model_type ${JSON.stringify(mt ?? null)} is not supported`,
      'model_type',
      Object.keys(HF_MODEL_TYPES).join(', '),
    );
  const ids = {
    ...(f.optId('bos_token_id') !== undefined ? { bosTokenId: f.optId('bos_token_id')! } : {}),
    ...(f.optId('eos_token_id') !== undefined ? { eosTokenId: f.optId('eos_token_id')! } : {}),
  };
  if (a === 'gpt2') {
    const act = json.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh')
      throw f.fail(
        `activation ${JSON.stringify(act)} is not supported`,
        'activation_function',
        "'gelu_new' (llama.cpp's gpt2 uses the tanh GELU)",
      );
    for (const k of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn'] as const)
      if (f.bool(k, false)) throw f.fail('not supported', k, 'false (llama.cpp has no such option)');
    if (!f.bool('scale_attn_weights', true)) throw f.fail('not supported', 'scale_attn_weights', 'true');
    const hiddenSize = f.int('n_embd');
    const numHeads = f.int('n_head');
    return checkShapes({
      architecture: 'gpt2',
      family: 'gpt2',
      source,
      vocabSize: f.int('vocab_size'),
      hiddenSize,
      intermediateSize: f.int('n_inner', 4 * hiddenSize),
      numLayers: f.int('n_layer'),
      numHeads,
      numKvHeads: numHeads,
      headDim: hiddenSize / numHeads,
      contextLength: f.int('n_positions', f.int('n_ctx', 1024)),
      norm: 'layer',
      normEps: f.num('layer_norm_epsilon', 1e-5),
      activation: 'gelu-tanh',
      positions: 'learned',
      qkvBias: true,
      outputBias: true,
      mlpBias: true,
      tieWordEmbeddings: f.bool('tie_word_embeddings', true),
      ...ids,
    });
  }
  const act = json.hidden_act ?? 'silu';
  if (act !== 'silu')
    throw f.fail(`activation ${JSON.stringify(act)} is not supported`, 'hidden_act', "'silu'");
  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const headDim = f.int('head_dim', Math.floor(hiddenSize / numHeads));
  let ropeLinearFactor: number | undefined;
  const rs = json.rope_scaling;
  if (rs !== undefined && rs !== null) {
    const t = isObj(rs) ? (rs.rope_type ?? rs.type) : undefined;
    if (t !== 'linear' && t !== 'default')
      throw f.fail(
        `rope scaling ${JSON.stringify(t ?? rs)} is not supported`,
        'rope_scaling.rope_type',
        "null, 'default' or 'linear'",
      );
    if (t === 'linear')
      ropeLinearFactor = new Fields(source, (k) => (rs as Record<string, unknown>)[k]).num('factor');
  }
  let contextLength = f.int('max_position_embeddings');
  if (a === 'qwen2' && f.bool('use_sliding_window', false))
    throw f.fail('sliding-window attention is not supported', 'use_sliding_window', 'false');
  if (mt === 'mistral') {
    // Mistral v0.1's sliding window: within `sliding_window` tokens attention is full, so the model is
    // exactly a llama model of that context length (llama.cpp's llama graph has no sliding window).
    const sw = json.sliding_window;
    if (sw !== undefined && sw !== null) contextLength = Math.min(contextLength, f.int('sliding_window'));
  }
  const partial = json.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    throw f.fail(`partial rotary factor ${JSON.stringify(partial)}`, 'partial_rotary_factor', '1');
  return checkShapes({
    architecture: a,
    family: 'llama',
    source,
    vocabSize: f.int('vocab_size'),
    hiddenSize,
    intermediateSize: f.int('intermediate_size'),
    numLayers: f.int('num_hidden_layers'),
    numHeads,
    numKvHeads: f.int('num_key_value_heads', numHeads),
    headDim,
    contextLength,
    norm: 'rms',
    normEps: f.num('rms_norm_eps', 1e-6),
    activation: 'silu',
    positions: 'rope',
    ropeTheta: f.num('rope_theta', 10000),
    ropeDim: headDim,
    ggufRopeMode: a === 'qwen2' ? 'neox' : 'norm',
    ...(ropeLinearFactor !== undefined ? { ropeLinearFactor } : {}),
    qkvBias: a === 'qwen2' ? true : f.bool('attention_bias', false),
    outputBias: a === 'qwen2' ? false : f.bool('attention_bias', false),
    mlpBias: a === 'qwen2' ? false : f.bool('mlp_bias', false),
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    ...ids,
  });
}

/**
 * GGUF metadata for a configuration (architecture hyper-parameters, llama.cpp's key names and types).
 * Tokenizer keys are separate (io/llm/tokenizer-gguf.ts).
 */
export function llmConfigToGgufKv(c: LlmConfig, name = 'model'): GgufKV[] {
  const a = c.architecture;
  const kv: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: a },
    { key: 'general.name', type: 'str', value: name },
  ];
  const u32 = (key: string, value: number) => kv.push({ key: `${a}.${key}`, type: 'u32', value });
  const f32 = (key: string, value: GgufValue) => kv.push({ key: `${a}.${key}`, type: 'f32', value });
  u32('vocab_size', c.vocabSize);
  u32('context_length', c.contextLength);
  u32('embedding_length', c.hiddenSize);
  u32('feed_forward_length', c.intermediateSize);
  u32('block_count', c.numLayers);
  u32('attention.head_count', c.numHeads);
  if (c.family === 'gpt2') {
    f32('attention.layer_norm_epsilon', c.normEps);
    return kv;
  }
  u32('attention.head_count_kv', c.numKvHeads);
  if (c.headDim !== c.hiddenSize / c.numHeads) {
    u32('attention.key_length', c.headDim);
    u32('attention.value_length', c.headDim);
  }
  f32('attention.layer_norm_rms_epsilon', c.normEps);
  f32('rope.freq_base', c.ropeTheta ?? 10000);
  u32('rope.dimension_count', c.ropeDim ?? c.headDim);
  if (c.ropeLinearFactor !== undefined) {
    kv.push({ key: `${a}.rope.scaling.type`, type: 'str', value: 'linear' });
    f32('rope.scaling.factor', c.ropeLinearFactor);
  }
  return kv;
}

/**
 * Small random llama-architecture GGUFs for the engine tests: every dimension a multiple of 256 so that
 * ggml's K-quants fit every matrix (stories260K's rows of 64 and 172 fit none), seeded weights scaled so
 * that activations stay O(1) and the logits are spread (top-1 is rarely a near tie), a SentencePiece-style
 * vocabulary llama.cpp loads (<unk>, <s>, </s>, 256 byte tokens, then 't<i>').
 */
import { Rng } from '../../src/core/rng.ts';
import type { GgufKV } from '../../src/io/gguf/read.ts';
import { concatBytes, writeGguf } from '../../src/io/gguf/write.ts';
import { requantizeGguf } from '../../src/io/gguf/requantize.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { type LlmConfig, llmConfigToGgufKv } from '../../src/io/llm/config.ts';

export interface SyntheticShape {
  readonly hidden: number;
  readonly ffn: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  readonly seed?: number;
  /** Qwen2-style q/k/v biases (architecture 'qwen2', NEOX RoPE). */
  readonly qkvBias?: boolean;
}

export const SMALL_K: SyntheticShape = { hidden: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 384 };

/**
 * The GGUF key-values of a synthetic llama (or qwen2) of the shape: configuration and a SentencePiece-style
 * vocabulary llama.cpp loads (<unk>, <s>, </s>, 256 byte tokens, then 't<i>'). Also used by
 * scripts/dev/synthetic-gguf.ts.
 */
export function syntheticLlamaKv(
  s: SyntheticShape,
  name = 'synthetic',
  fileType = 0,
  contextLength = 512,
): GgufKV[] {
  const arch = s.qkvBias ? 'qwen2' : 'llama';
  const hd = s.hidden / s.heads;
  const config: LlmConfig = {
    architecture: arch,
    family: 'llama',
    source: name,
    vocabSize: s.vocab,
    hiddenSize: s.hidden,
    intermediateSize: s.ffn,
    numLayers: s.layers,
    numHeads: s.heads,
    numKvHeads: s.kvHeads,
    headDim: hd,
    contextLength,
    norm: 'rms',
    normEps: 1e-5,
    activation: 'silu',
    positions: 'rope',
    ropeTheta: 10000,
    ropeDim: hd,
    ggufRopeMode: arch === 'qwen2' ? 'neox' : 'norm',
    qkvBias: !!s.qkvBias,
    outputBias: false,
    mlpBias: false,
    tieWordEmbeddings: false,
  };
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  while (tokens.length < s.vocab) tokens.push(`t${tokens.length}`);
  return [
    ...llmConfigToGgufKv(config, name),
    { key: 'general.file_type', type: 'u32', value: fileType },
    { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'arr', value: { itemType: 'str', items: tokens } },
    {
      key: 'tokenizer.ggml.scores',
      type: 'arr',
      value: { itemType: 'f32', items: tokens.map((_, i) => -i) },
    },
    {
      key: 'tokenizer.ggml.token_type',
      type: 'arr',
      value: { itemType: 'i32', items: tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)) },
    },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 2 },
  ];
}

/** An F32 GGUF of the shape. */
export function syntheticLlamaGguf(s: SyntheticShape): Uint8Array {
  const hd = s.hidden / s.heads;
  const kv = syntheticLlamaKv(s);
  const rng = new Rng(s.seed ?? 7);
  const f32 = (n: number, scale: number, offset = 0) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = offset + scale * rng.nextNormal();
    return new Uint8Array(a.buffer);
  };
  const H = s.hidden;
  const F = s.ffn;
  const kvW = s.kvHeads * hd;
  const t = (name: string, ne: number[], data: Uint8Array) => ({ name, ne, type: 'F32', data });
  const tensors = [
    t('token_embd.weight', [H, s.vocab], f32(H * s.vocab, 1)),
    t('output_norm.weight', [H], f32(H, 0.1, 1)),
    t('output.weight', [H, s.vocab], f32(H * s.vocab, 3 / Math.sqrt(H))),
  ];
  for (let l = 0; l < s.layers; l++) {
    const b = `blk.${l}.`;
    const m = (n: string, rows: number, cols: number) =>
      t(`${b}${n}.weight`, [cols, rows], f32(rows * cols, 1 / Math.sqrt(cols)));
    tensors.push(
      t(`${b}attn_norm.weight`, [H], f32(H, 0.1, 1)),
      m('attn_q', H, H),
      m('attn_k', kvW, H),
      m('attn_v', kvW, H),
      m('attn_output', H, H),
      t(`${b}ffn_norm.weight`, [H], f32(H, 0.1, 1)),
      m('ffn_gate', F, H),
      m('ffn_up', F, H),
      m('ffn_down', H, F),
    );
    if (s.qkvBias)
      tensors.push(
        t(`${b}attn_q.bias`, [H], f32(H, 0.1)),
        t(`${b}attn_k.bias`, [kvW], f32(kvW, 0.1)),
        t(`${b}attn_v.bias`, [kvW], f32(kvW, 0.1)),
      );
  }
  return concatBytes(writeGguf({ kv, tensors }));
}

/** The GGUF re-quantized: every matrix (output and embedding included) to `type`. */
export async function requantized(bytes: Uint8Array, type: string): Promise<Uint8Array> {
  if (type === 'F32') return bytes;
  const r = await requantizeGguf(parseGguf(bytes, 'synthetic'), [{ pattern: '*.weight', type }], {
    quantizable: (i) => i.ne.length >= 2 && i.ne[1]! > 1,
  });
  return concatBytes(r.chunks);
}

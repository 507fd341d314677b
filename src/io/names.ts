/**
 * Tensor roles inferred from names, for files without a graph (GGUF, safetensors).
 *
 * Naming conventions:
 * - llama.cpp GGUF (gguf-py/gguf/constants.py): 'token_embd.weight', 'output.weight' (LM head),
 *   'output_norm.weight', 'blk.N.attn_q.weight', 'blk.N.ffn_down.weight', 'blk.N.attn_norm.weight', ...
 * - Hugging Face checkpoints: 'model.embed_tokens.weight', 'lm_head.weight',
 *   'model.layers.N.self_attn.q_proj.weight', 'model.layers.N.input_layernorm.weight', GPT-2's
 *   'h.N.attn.c_attn.weight', 'wte'/'wpe', BERT's 'encoder.layer.N....', 'LayerNorm'.
 *
 * Quantizable rule (documented contract): a tensor is quantizable when its role is 'embedding' and it is
 * 2-D, 'matmul-weight' and 2-D (or 3-D: stacked mixture-of-experts weights such as llama.cpp's
 * 'blk.N.ffn_up_exps.weight'), or 'conv-weight' with 3..5 dims, AND it has at least
 * QUANTIZABLE_MIN_ELEMENTS elements, AND its stored dtype is a float or ggml block type (integer and
 * bool tensors are never quantized). Small weights cost little memory and are often sensitive.
 */
import { DEFAULT_MIN_QUANTIZABLE_ELEMENTS, isQuantizableWeight } from '../graph/layers.ts';
import type { QuantizableRule } from '../graph/layers.ts';
import type { TensorConsumer, TensorInfo, TensorRole } from '../graph/model.ts';

/** Smallest weight mixq will quantize (elements). */
export const QUANTIZABLE_MIN_ELEMENTS = DEFAULT_MIN_QUANTIZABLE_ELEMENTS;

const LAYER_RE = /(?:^|\.)(?:blk|layers|layer|h|block|blocks|decoder\.layers|encoder\.layers)\.(\d+)(?:\.|$)/;
const EMBED_RE =
  /(?:^|[._])(?:token_embd|embed_tokens|word_embeddings|position_embeddings|token_type_embeddings|wte|wpe|embeddings?|tok_embeddings|embed_positions|shared)(?:\.weight)?$/;
const NORM_RE = /(?:norm|ln_\d|ln_f|ln\d?\b|layernorm|layer_norm|LayerNorm|rms)/i;
const HEAD_RE = /(?:^|\.)(?:lm_head|output|classifier|score)\.weight$/;
const CONV_RE = /conv/i;
const EXPERTS_RE = /_exps\.weight$|experts/;

/** Dtypes whose tensors can be quantized (floats and ggml block types; not integers/bool). */
export function isFloatLikeDtype(dtype: string): boolean {
  const d = dtype.toLowerCase();
  if (/^(?:i|u)\d+$/.test(d) || d === 'bool') return false;
  return true;
}

/**
 * The rule for tensors known by name (GGUF, safetensors): also 3-D matmul weights (stacked experts) and
 * any float-like dtype, including ggml block types (a GGUF may be requantized).
 */
export const NAMED_QUANTIZABLE_RULE: QuantizableRule = {
  isSourceDtype: isFloatLikeDtype,
  ranks: { 'matmul-weight': [2, 3], embedding: [2], 'conv-weight': [3, 4, 5] },
};

/** Role and layer index of a tensor from its name and logical shape. */
export function inferRole(name: string, shape: readonly number[]): { role: TensorRole; layer?: number } {
  const m = LAYER_RE.exec(name);
  const layer = m ? Number(m[1]) : undefined;
  const at = (role: TensorRole) => (layer === undefined ? { role } : { role, layer });
  const base = name.replace(/\.(?:weight|bias)$/, '');
  if (name.endsWith('.bias') || name.endsWith('_bias')) return at('bias');
  if (NORM_RE.test(base.split('.').pop() ?? '') || /(?:^|\.)(?:output_norm|norm)\.weight$/.test(name)) {
    return at('norm');
  }
  if (EMBED_RE.test(name) || EMBED_RE.test(base)) return at(shape.length === 2 ? 'embedding' : 'other');
  if (shape.length >= 3 && shape.length <= 5 && CONV_RE.test(name)) return at('conv-weight');
  if (HEAD_RE.test(name) && shape.length === 2) return at('matmul-weight');
  // stacked mixture-of-experts weights: llama.cpp 'blk.N.ffn_up_exps.weight' [n_expert, n_ff, n_embd]
  if (shape.length === 3 && EXPERTS_RE.test(name)) return at('matmul-weight');
  if (shape.length === 2 && (name.endsWith('.weight') || name.endsWith('_weight') || !name.includes('.'))) {
    return at('matmul-weight');
  }
  if (shape.length === 1 && name.endsWith('.weight')) return at('norm'); // 1-D scale vectors
  return at('other');
}

/** The quantizable rule described in the file header (graph/layers.ts isQuantizableWeight with NAMED_QUANTIZABLE_RULE). */
export function isQuantizable(role: TensorRole, shape: readonly number[], dtype: string): boolean {
  return isQuantizableWeight(role, shape, dtype, QUANTIZABLE_MIN_ELEMENTS, NAMED_QUANTIZABLE_RULE);
}

const CONSUMER_OP: Partial<Record<TensorRole, TensorConsumer>> = {
  'matmul-weight': { op: 'MatMul', node: '', inputIndex: 1 },
  embedding: { op: 'Gather', node: '', inputIndex: 0 },
  'conv-weight': { op: 'Conv', node: '', inputIndex: 1 },
  bias: { op: 'Add', node: '', inputIndex: 1 },
  norm: { op: 'Norm', node: '', inputIndex: 1 },
};

/** A ModelView TensorInfo for a tensor known only by name (no graph). */
export function tensorInfoFromName(
  name: string,
  shape: readonly number[],
  dtype: string,
  byteLength: number,
): TensorInfo {
  const { role, layer } = inferRole(name, shape);
  const consumer = CONSUMER_OP[role];
  return {
    name,
    shape,
    dtype,
    byteLength,
    role,
    consumers: consumer ? [consumer] : [],
    ...(layer === undefined ? {} : { layer }),
    quantizable: isQuantizable(role, shape, dtype),
  };
}

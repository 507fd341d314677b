/**
 * Format-neutral helpers for the model view: the layer (block) index a tensor or node name implies, and
 * which roles mixq treats as quantizable weights. Used by every file adapter, so GGUF, safetensors and
 * ONNX tensors get layer indices and quantizable flags by the same rules.
 *
 * Name conventions covered (with the exporter that produces them):
 *   model.layers.3.mlp.up_proj.weight      Hugging Face Llama/Mistral/Qwen (safetensors, torch ONNX export)
 *   /model/layers.3/self_attn/MatMul        torch.onnx node names
 *   transformer.h.3.attn.c_attn.weight      GPT-2
 *   encoder.layer.3.attention...            BERT
 *   blk.3.attn_q.weight                     GGUF (llama.cpp)
 *   blocks.3 / block_3 / layer_3 / stages.3 timm, misc.
 */
import type { TensorRole } from './model.ts';

// A keyword segment followed by the index as its own segment. The separators are . / _ - and the index
// must end a segment, so 'layers.3x' or 'h.3d' do not match.
const LAYER_NAME = /(?:^|[./_\-:])(?:layers?|blocks?|blk|h|stages?)[._\-/](\d{1,6})(?=$|[./_\-:])/i;

/**
 * The layer index a name implies, or undefined.
 * @example layerFromName('model.layers.12.self_attn.q_proj.weight') // 12
 */
export function layerFromName(name: string): number | undefined {
  const m = LAYER_NAME.exec(name);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/**
 * Smallest weight (elements) flagged quantizable: small weights save little memory and are often
 * sensitive. Same value as io/names.ts QUANTIZABLE_MIN_ELEMENTS (the GGUF/safetensors rule).
 */
export const DEFAULT_MIN_QUANTIZABLE_ELEMENTS = 1024;

/** The parts of the quantizable rule that differ between tensors known from a graph and tensors known by name. */
export interface QuantizableRule {
  /** Whether a tensor stored as `dtype` may be quantized. */
  readonly isSourceDtype: (dtype: string) => boolean;
  /** The ranks accepted for each weight role; roles not listed are never quantizable. */
  readonly ranks: Readonly<Partial<Record<TensorRole, readonly number[]>>>;
}

/**
 * The rule for weights known from a graph (ONNX): a 2-D matmul/gemm/embedding weight or a 3..5-D conv
 * weight stored as a float (f32/f16/bf16/f64, any case), not as an integer or already-quantized type.
 */
export const GRAPH_QUANTIZABLE_RULE: QuantizableRule = {
  isSourceDtype: (dtype) => QUANTIZABLE_SOURCE_DTYPES.has(dtype.toLowerCase()),
  ranks: { 'matmul-weight': [2], 'gemm-weight': [2], embedding: [2], 'conv-weight': [3, 4, 5] },
};

/**
 * The quantizable rule: a weight whose role and rank `rule` accepts, with at least `minElements` elements,
 * stored as a dtype `rule` accepts. The default rule is GRAPH_QUANTIZABLE_RULE (ONNX); io/names.ts passes
 * its own for GGUF/safetensors tensors known by name.
 * @example isQuantizableWeight('matmul-weight', [4096, 4096], 'f16') // true
 */
export function isQuantizableWeight(
  role: TensorRole,
  shape: readonly number[],
  dtype: string,
  minElements = DEFAULT_MIN_QUANTIZABLE_ELEMENTS,
  rule: QuantizableRule = GRAPH_QUANTIZABLE_RULE,
): boolean {
  let n = 1;
  for (const d of shape) n *= d;
  if (n < minElements || !rule.isSourceDtype(dtype)) return false;
  return rule.ranks[role]?.includes(shape.length) ?? false;
}

/** Element types a graph weight may be quantized from. */
export const QUANTIZABLE_SOURCE_DTYPES: ReadonlySet<string> = new Set(['f32', 'f16', 'bf16', 'f64']);

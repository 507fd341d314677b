/**
 * Tensor names of one language model in its three shipping forms, mapped both ways:
 *   Hugging Face (transformers' parameter names)  <->  GGUF (llama.cpp's, src/llama-arch.cpp)
 *   ONNX (torch.onnx / optimum exports as transformers.js ships them)  ->  Hugging Face
 * Browser-safe; tables only, no tensor data.
 *
 * Layout differences the caller must apply when moving data (returned as `transform`):
 *   'permute-q' / 'permute-k'  llama family: llama.cpp's RoPE rotates adjacent pairs (x0,x1),(x2,x3)...
 *       while transformers' rotate_half rotates (x_i, x_{i+d/2}); HF's checkpoint converter permuted the
 *       q/k rows for that, so HF -> GGUF undoes it per head: row (h, i, j) <- row (h, j, i) with the
 *       head's rows viewed as [2, d/2] -> [d/2, 2] (llama.cpp's convert_hf_to_gguf `permute`).
 *   'transpose'   gpt2: transformers' Conv1D stores [in, out]; GGUF (ggml_mul_mat) wants [out, in].
 *   ONNX MatMul weights are [in, out] (x @ W): `transposed: true` against HF's Linear [out, in].
 * GPT-2's fused c_attn keeps Q|K|V in one tensor in both HF and GGUF (attn_qkv).
 */
import type { OnnxModel } from '../onnx/read.ts';
import type { LlmArchitecture } from './config.ts';

export type NameTransform = 'none' | 'permute-q' | 'permute-k' | 'transpose';

interface Rule {
  readonly hf: string; // '{L}' = layer index
  readonly gguf: string;
  readonly transform?: NameTransform;
}

const LLAMA_RULES: readonly Rule[] = [
  { hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight' },
  { hf: 'model.norm.weight', gguf: 'output_norm.weight' },
  { hf: 'lm_head.weight', gguf: 'output.weight' },
  { hf: 'model.layers.{L}.input_layernorm.weight', gguf: 'blk.{L}.attn_norm.weight' },
  { hf: 'model.layers.{L}.self_attn.q_proj.weight', gguf: 'blk.{L}.attn_q.weight', transform: 'permute-q' },
  { hf: 'model.layers.{L}.self_attn.k_proj.weight', gguf: 'blk.{L}.attn_k.weight', transform: 'permute-k' },
  { hf: 'model.layers.{L}.self_attn.v_proj.weight', gguf: 'blk.{L}.attn_v.weight' },
  { hf: 'model.layers.{L}.self_attn.o_proj.weight', gguf: 'blk.{L}.attn_output.weight' },
  { hf: 'model.layers.{L}.self_attn.q_proj.bias', gguf: 'blk.{L}.attn_q.bias', transform: 'permute-q' },
  { hf: 'model.layers.{L}.self_attn.k_proj.bias', gguf: 'blk.{L}.attn_k.bias', transform: 'permute-k' },
  { hf: 'model.layers.{L}.self_attn.v_proj.bias', gguf: 'blk.{L}.attn_v.bias' },
  { hf: 'model.layers.{L}.self_attn.o_proj.bias', gguf: 'blk.{L}.attn_output.bias' },
  { hf: 'model.layers.{L}.post_attention_layernorm.weight', gguf: 'blk.{L}.ffn_norm.weight' },
  { hf: 'model.layers.{L}.mlp.gate_proj.weight', gguf: 'blk.{L}.ffn_gate.weight' },
  { hf: 'model.layers.{L}.mlp.up_proj.weight', gguf: 'blk.{L}.ffn_up.weight' },
  { hf: 'model.layers.{L}.mlp.down_proj.weight', gguf: 'blk.{L}.ffn_down.weight' },
  { hf: 'model.layers.{L}.mlp.gate_proj.bias', gguf: 'blk.{L}.ffn_gate.bias' },
  { hf: 'model.layers.{L}.mlp.up_proj.bias', gguf: 'blk.{L}.ffn_up.bias' },
  { hf: 'model.layers.{L}.mlp.down_proj.bias', gguf: 'blk.{L}.ffn_down.bias' },
];

// Qwen2: the same names; llama.cpp's qwen2 graph applies NEOX-style RoPE (rotate_half), so no permutation.
const QWEN2_RULES: readonly Rule[] = LLAMA_RULES.map((r) =>
  r.transform === 'permute-q' || r.transform === 'permute-k' ? { hf: r.hf, gguf: r.gguf } : r,
);

const GPT2_RULES: readonly Rule[] = [
  { hf: 'transformer.wte.weight', gguf: 'token_embd.weight' },
  { hf: 'transformer.wpe.weight', gguf: 'position_embd.weight' },
  { hf: 'transformer.ln_f.weight', gguf: 'output_norm.weight' },
  { hf: 'transformer.ln_f.bias', gguf: 'output_norm.bias' },
  { hf: 'lm_head.weight', gguf: 'output.weight' },
  { hf: 'transformer.h.{L}.ln_1.weight', gguf: 'blk.{L}.attn_norm.weight' },
  { hf: 'transformer.h.{L}.ln_1.bias', gguf: 'blk.{L}.attn_norm.bias' },
  { hf: 'transformer.h.{L}.attn.c_attn.weight', gguf: 'blk.{L}.attn_qkv.weight', transform: 'transpose' },
  { hf: 'transformer.h.{L}.attn.c_attn.bias', gguf: 'blk.{L}.attn_qkv.bias' },
  { hf: 'transformer.h.{L}.attn.c_proj.weight', gguf: 'blk.{L}.attn_output.weight', transform: 'transpose' },
  { hf: 'transformer.h.{L}.attn.c_proj.bias', gguf: 'blk.{L}.attn_output.bias' },
  { hf: 'transformer.h.{L}.ln_2.weight', gguf: 'blk.{L}.ffn_norm.weight' },
  { hf: 'transformer.h.{L}.ln_2.bias', gguf: 'blk.{L}.ffn_norm.bias' },
  { hf: 'transformer.h.{L}.mlp.c_fc.weight', gguf: 'blk.{L}.ffn_up.weight', transform: 'transpose' },
  { hf: 'transformer.h.{L}.mlp.c_fc.bias', gguf: 'blk.{L}.ffn_up.bias' },
  { hf: 'transformer.h.{L}.mlp.c_proj.weight', gguf: 'blk.{L}.ffn_down.weight', transform: 'transpose' },
  { hf: 'transformer.h.{L}.mlp.c_proj.bias', gguf: 'blk.{L}.ffn_down.bias' },
];

const RULES: Readonly<Record<LlmArchitecture, readonly Rule[]>> = {
  llama: LLAMA_RULES,
  qwen2: QWEN2_RULES,
  gpt2: GPT2_RULES,
};

interface Compiled {
  readonly from: RegExp;
  readonly to: string;
  readonly transform: NameTransform;
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('\\{L\\}', '(\\d+)');
const compiled = new Map<string, readonly Compiled[]>();
function rules(arch: LlmArchitecture, dir: 'hf' | 'gguf'): readonly Compiled[] {
  const key = `${arch}:${dir}`;
  let c = compiled.get(key);
  if (!c) {
    c = RULES[arch].map((r) => ({
      from: new RegExp(`^${esc(dir === 'hf' ? r.hf : r.gguf)}$`),
      to: dir === 'hf' ? r.gguf : r.hf,
      transform: r.transform ?? 'none',
    }));
    compiled.set(key, c);
  }
  return c;
}

export interface MappedName {
  readonly name: string;
  /** What to do to the data going from the source layout to the target's. */
  readonly transform: NameTransform;
}

function map(arch: LlmArchitecture, dir: 'hf' | 'gguf', name: string): MappedName | undefined {
  // GPT-2 checkpoints saved from GPT2Model lack the 'transformer.' prefix
  const n =
    dir === 'hf' && arch === 'gpt2' && /^(wte|wpe|ln_f|h)\./.test(name) ? `transformer.${name}` : name;
  for (const r of rules(arch, dir)) {
    const m = r.from.exec(n);
    if (m) return { name: m[1] === undefined ? r.to : r.to.replace('{L}', m[1]), transform: r.transform };
  }
  return undefined;
}

/**
 * GGUF name of a Hugging Face tensor, or undefined for tensors llama.cpp does not use (e.g. the
 * rotary inv_freq buffer, GPT-2's attn.bias mask).
 * @example ggufNameFromHf('llama', 'model.layers.3.self_attn.k_proj.weight') // { name: 'blk.3.attn_k.weight', transform: 'permute-k' }
 */
export function ggufNameFromHf(arch: LlmArchitecture, hfName: string): MappedName | undefined {
  return map(arch, 'hf', hfName);
}

/** Hugging Face name of a GGUF tensor (the transform undoes ggufNameFromHf's). */
export function hfNameFromGguf(arch: LlmArchitecture, ggufName: string): MappedName | undefined {
  return map(arch, 'gguf', ggufName);
}

/**
 * Row permutation between HF and llama.cpp for q or k of `heads` heads of `rows / heads` rows each:
 * HF->GGUF sends row (h, half, i) to (h, i, half) with half in {0,1}, i < d/2. Returns `perm` with
 * gguf row r = hf row perm[r]. Its inverse serves GGUF->HF.
 */
export function ropeRowPermutation(rows: number, heads: number): Int32Array {
  const d = rows / heads;
  const perm = new Int32Array(rows);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < d / 2; i++)
      for (let half = 0; half < 2; half++) perm[h * d + 2 * i + half] = h * d + half * (d / 2) + i;
  return perm;
}

// ------------------------------------------------------------------------------------------- ONNX

export interface OnnxWeightName {
  /** The HF tensor this initializer holds. */
  readonly hf: string;
  /** True when the initializer is the HF tensor transposed (MatMul weights, [in, out]). */
  readonly transposed: boolean;
}

/**
 * HF names of a decoder ONNX model's weight initializers (torch.onnx / optimum exports, as transformers.js
 * ships them). An initializer either keeps its parameter name ('model.embed_tokens.weight',
 * 'model.layers.0.input_layernorm.weight'), or, when the exporter transposed a Linear weight for MatMul,
 * gets a generated name ('onnx::MatMul_123') and is read through its consumer's node name
 * ('/model/layers.0/self_attn/q_proj/MatMul' -> 'model.layers.0.self_attn.q_proj.weight', transposed).
 * Initializers that are neither (constants, shapes) are absent from the map.
 */
export function onnxWeightNames(
  model: OnnxModel,
  known: (hfName: string) => boolean,
): Map<string, OnnxWeightName> {
  const graph = model.proto.graph;
  const out = new Map<string, OnnxWeightName>();
  if (!graph) return out;
  const inits = new Set(graph.initializer.map((t) => t.name));
  for (const name of inits) if (known(name)) out.set(name, { hf: name, transposed: false });
  for (const node of graph.node) {
    if (node.op_type !== 'MatMul' && node.op_type !== 'Gemm' && node.op_type !== 'Add') continue;
    const scope = /^\/(.+)\/(MatMul|Gemm|Add)(_\d+)?$/.exec(node.name);
    if (!scope) continue;
    const module = scope[1]!.replace(/\//g, '.');
    for (const input of node.input) {
      if (!inits.has(input) || out.has(input)) continue;
      const isBias = node.op_type === 'Add';
      const hf = `${module}.${isBias ? 'bias' : 'weight'}`;
      if (known(hf)) out.set(input, { hf, transposed: node.op_type === 'MatMul' });
    }
  }
  return out;
}

/** Inverse of onnxWeightNames: HF name -> initializer name. */
export function onnxInitializerByHf(names: ReadonlyMap<string, OnnxWeightName>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [init, w] of names) out.set(w.hf, init);
  return out;
}

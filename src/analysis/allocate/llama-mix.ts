/**
 * llama.cpp's named quantization mixes (the `llama-quantize <in> <out> Q4_K_M` ftypes) as per-tensor ggml
 * types, for GGUF models: which type llama-quantize gives every tensor, including its shape fallbacks.
 * Written from the rules in llama.cpp src/llama-quant.cpp (ggml-org/llama.cpp, master as crawled at
 * commit 007dbbf3fd17; functions tensor_allows_quantization, llama_tensor_get_type_impl,
 * tensor_type_fallback, init_quantize_state_counters), for dense (non-MoE) models without an importance
 * matrix unless `hasImatrix` is set:
 *
 * Default type per mix: Q8_0 -> Q8_0, Q6_K -> Q6_K, Q5_K_M -> Q5_K, Q4_K_M -> Q4_K, Q3_K_M -> Q3_K,
 * Q4_0 -> Q4_0, IQ4_NL -> IQ4_NL. Then per tensor, by category (from the name):
 *   output.weight (and token_embd.weight when the file has no output.weight: tied embeddings):
 *       Q8_0 when ne[0] is not a multiple of the DEFAULT type's block size, else Q6_K unless the default
 *       is Q8_0 (Q8_0 stays).
 *   token_embd.weight (untied): the default type.
 *   attn_v / attn_qkv / attn_kv_b ("attention-v-like"; i = their running count, n = their number):
 *       Q3_K_M: Q5_K for i < 2, else Q4_K;  Q4_K_M, Q5_K_M: Q6_K when use_more_bits(i, n);
 *       IQ4_NL: Q5_K when n_gqa >= 4.
 *   ffn_down (i = its running count, n = n_layer):
 *       Q3_K_M: Q5_K for i < n/16, else Q4_K (non-Falcon);  Q4_K_M, Q5_K_M: Q6_K when use_more_bits(i, n);
 *       IQ4_NL without imatrix: Q5_K for i < n/8;  Q4_0 with imatrix: Q4_1 for i < n/8.
 *   attn_output: Q3_K_M -> Q4_K. (llama.cpp's own attn_qkv branch is never reached: attn_qkv is
 *   attention-v-like and takes that branch first.)
 *   use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (C integer division).
 * Shape fallback when ne[0] is not a multiple of the chosen type's block size: Q2_K, Q3_K -> Q4_0;
 * Q4_K -> Q5_0; Q5_K -> Q5_1; Q6_K -> Q8_0; IQ4_XS -> IQ4_NL; then F16 if the fallback does not fit
 * either. Any other type (Q4_0, Q8_0, IQ4_NL, ...) has no fallback: llama-quantize stops with "no tensor
 * type fallback is defined", so the mix does not exist for that model (returned as `refused`).
 * Counters run in llama.cpp's tensor order (llama_model_loader's weights_map: layer number, then name).
 * Not covered: the Falcon, 70B and 8-expert special cases, --pure, --tensor-type overrides.
 */
import { getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { useMoreBits } from './rule-mix.ts';

/** The named mixes reproduced here. */
export const LLAMA_MIXES = ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q3_K_M', 'Q4_0', 'IQ4_NL'] as const;
export type LlamaMixName = (typeof LLAMA_MIXES)[number];

const DEFAULT_TYPE: Readonly<Record<LlamaMixName, string>> = {
  Q8_0: 'Q8_0',
  Q6_K: 'Q6_K',
  Q5_K_M: 'Q5_K',
  Q4_K_M: 'Q4_K',
  Q3_K_M: 'Q3_K',
  Q4_0: 'Q4_0',
  IQ4_NL: 'IQ4_NL',
};

/** llama.cpp tensor_type_fallback: the type tried when ne[0] does not fit a type's block size. */
const SHAPE_FALLBACK: Readonly<Record<string, string>> = {
  Q2_K: 'Q4_0',
  Q3_K: 'Q4_0',
  Q4_K: 'Q5_0',
  Q5_K: 'Q5_1',
  Q6_K: 'Q8_0',
  IQ4_XS: 'IQ4_NL',
};

export interface LlamaMixTensor {
  readonly name: string;
  /** ggml dimensions (ne[0] = row length). */
  readonly ne: readonly number[];
}

export interface LlamaMixOptions {
  /** n_head / n_head_kv (1 without grouped-query attention). */
  readonly nGqa: number;
  /** Number of transformer blocks (n_layer). */
  readonly nLayer: number;
  /** An importance matrix is given to llama-quantize. */
  readonly hasImatrix?: boolean;
}

export type LlamaMixResult =
  | {
      readonly types: ReadonlyMap<string, string>;
      /** Tensors whose type came from a shape fallback: 'name: Q4_K -> Q5_0'. */
      readonly fallbacks: readonly string[];
    }
  | { readonly refused: string };

type Category = 'output' | 'token_embd' | 'attn_v' | 'attn_qkv' | 'attn_output' | 'ffn_down' | 'other';

function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight')) return 'attn_qkv';
  if (name.includes('attn_kv_b.weight') || name.includes('attn_v.weight')) return 'attn_v';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

/** llama_model_loader's tensor order: by layer number ('blk.N.'; none first), then by name. */
function loaderOrder<T extends LlamaMixTensor>(tensors: readonly T[]): T[] {
  const layer = (n: string) => {
    const m = /^blk\.(\d+)\./.exec(n);
    return m ? Number(m[1]) : -1;
  };
  return [...tensors].sort(
    (a, b) => layer(a.name) - layer(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/** llama.cpp's tensor_type_fallback; undefined when llama-quantize would stop. */
export function llamaShapeFallback(type: string, ne0: number): string | undefined {
  if (ne0 % getBlockType(type).blockSize === 0) return type;
  const next = SHAPE_FALLBACK[type];
  if (next === undefined) return undefined;
  return ne0 % getBlockType(next).blockSize === 0 ? next : 'F16';
}

/**
 * The ggml type llama-quantize gives every quantizable tensor for a named mix (see the file header).
 * `tensors` are the tensors llama.cpp would quantize (io/gguf isRequantizable), in any order.
 * @example llamaMixTypes(weights, 'Q4_K_M', { nGqa: 2, nLayer: 5 }).types.get('blk.2.attn_v.weight') // 'Q8_0' on stories260K
 */
export function llamaMixTypes(
  tensors: readonly LlamaMixTensor[],
  mix: LlamaMixName,
  opts: LlamaMixOptions,
): LlamaMixResult {
  const def = DEFAULT_TYPE[mix];
  if (def === undefined)
    throw new MixqError(`unknown llama.cpp mix '${String(mix)}'`, {
      source: 'baselines',
      expected: LLAMA_MIXES.join(', '),
    });
  const ordered = loaderOrder(tensors);
  const tied = !ordered.some((t) => t.name === 'output.weight');
  const nAttnV = ordered.filter((t) => ['attn_v', 'attn_qkv'].includes(category(t.name))).length;
  const nLayer = opts.nLayer;
  let iAttnV = 0;
  let iFfnDown = 0;
  const types = new Map<string, string>();
  const fallbacks: string[] = [];
  for (const t of ordered) {
    const cat = category(t.name);
    const ne0 = t.ne[0]!;
    let type = def;
    if (cat === 'output' || (tied && cat === 'token_embd')) {
      if (ne0 % getBlockType(def).blockSize !== 0) type = 'Q8_0';
      else if (def !== 'Q8_0') type = 'Q6_K';
    } else if (cat === 'token_embd') {
      type = def;
    } else if (cat === 'attn_v' || cat === 'attn_qkv') {
      if (mix === 'Q3_K_M') type = iAttnV < 2 ? 'Q5_K' : 'Q4_K';
      else if (mix === 'IQ4_NL' && opts.nGqa >= 4) type = 'Q5_K';
      else if ((mix === 'Q4_K_M' || mix === 'Q5_K_M') && useMoreBits(iAttnV, nAttnV)) type = 'Q6_K';
      iAttnV++;
    } else if (cat === 'ffn_down') {
      const i = iFfnDown;
      const eighth = Math.trunc(nLayer / 8);
      if (mix === 'Q3_K_M') type = i < Math.trunc(nLayer / 16) ? 'Q5_K' : 'Q4_K';
      else if ((mix === 'Q4_K_M' || mix === 'Q5_K_M') && useMoreBits(i, nLayer)) type = 'Q6_K';
      else if (mix === 'IQ4_NL' && !opts.hasImatrix && i < eighth) type = 'Q5_K';
      else if (mix === 'Q4_0' && opts.hasImatrix && i < eighth) type = 'Q4_1';
      iFfnDown++;
    } else if (cat === 'attn_output') {
      if (mix === 'Q3_K_M') type = 'Q4_K';
    }
    const fitted = llamaShapeFallback(type, ne0);
    if (fitted === undefined)
      return {
        refused: `llama-quantize ${mix} stops at '${t.name}': ne[0] = ${ne0} is not a multiple of ${getBlockType(type).blockSize} (${type}) and ${type} has no fallback type`,
      };
    if (fitted !== type) fallbacks.push(`${t.name}: ${type} -> ${fitted}`);
    types.set(t.name, fitted);
  }
  return { types, fallbacks };
}

/**
 * Baseline scheme mixes to compare plans against: uniform (one scheme everywhere) and llama.cpp's
 * Q4_K_M rule, written from its description in llama.cpp src/llama-quant.cpp (llama_tensor_get_type_impl,
 * ggml-org/llama.cpp master 2025-26):
 *
 *   use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2      (C integer division)
 *   output.weight (and token_embd when tied to it)  -> Q6_K
 *   attn_v    -> Q6_K when use_more_bits(i_attention_wv, n_attention_wv)   (i counts attn_v tensors)
 *   ffn_down  -> Q6_K when use_more_bits(i_ffn_down, n_ffn_down)           (i counts ffn_down tensors)
 *   attn_qkv (fused q/k/v) -> Q5_K
 *   everything else (attn_q/k/output, ffn_up/gate, token_embd) -> Q4_K
 * Not replicated: the mixture-of-experts, Falcon and 70B special cases, and the shape fallback (rows not
 * a multiple of 256 demote Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; pass `fallback` to apply one).
 *
 * The rule is expressed over roles, not ggml names: each weight is put in a category by its name (the
 * patterns below cover GGUF, Hugging Face, GPT-2, torch ONNX exports and mixq's bundled GPT) and the
 * caller supplies the scheme ids for "base", "more", "fusedQkv" and "output". Mapping by model family:
 *   GGUF / HF Llama:     attn_v | v_proj -> attn_v; ffn_down | down_proj -> ffn_down; output | lm_head -> output
 *   GPT-2:               attn.c_attn -> attn_qkv; mlp.c_proj -> ffn_down; lm_head -> output
 *   bundled GPT:         blocks.i.attn_qkv -> attn_qkv; blocks.i.mlp_proj -> ffn_down; head -> output; wte -> token_embd
 *   ONNX CNN:            convolutions have no attention-value / FFN-down role and take the base scheme;
 *                        transformer blocks that keep names map as above (qkv -> attn_qkv, fc2 ->
 *                        ffn_down); when no name says "output", the last quantizable matmul/gemm weight
 *                        (the classifier / CTC head) is the output layer.
 *   PP-OCRv4 rec:        Paddle names carry no roles: conv2d_N.w_0 (backbone), linear_77..84 (the SVTR
 *                        neck's two transformer blocks, each qkv, proj, fc1, fc2 in that order) and
 *                        linear_85 (CTC head -> output by the last-matmul rule). By default the neck takes
 *                        the base scheme; pass `categorize` to map linear_77 / 81 -> attn_qkv and
 *                        linear_80 / 84 -> ffn_down (see test/analysis/allocate-rules.test.ts).
 */

/** What a weight is, for the rule. */
export type RuleCategory = 'attn_v' | 'attn_qkv' | 'ffn_down' | 'output' | 'token_embd' | 'other';

/** The part of a model weight the rules read (TensorInfo from src/graph/model.ts fits). */
export interface RuleWeight {
  readonly name: string;
  readonly role?: string;
  readonly layer?: number;
}

export interface RuleMixSchemes {
  /** Scheme of every weight not singled out (llama.cpp Q4_K_M: Q4_K). */
  readonly base: string;
  /** attn_v / ffn_down weights in the layers use_more_bits picks (Q6_K). */
  readonly more: string;
  /** The output layer (Q6_K). */
  readonly output: string;
  /** Fused q/k/v projections (Q5_K); default `base`. */
  readonly fusedQkv?: string;
}

/** The scheme ids of llama.cpp's Q4_K_M, as ggml block-type names. */
export const Q4_K_M_SCHEMES: RuleMixSchemes = {
  base: 'Q4_K',
  more: 'Q6_K',
  output: 'Q6_K',
  fusedQkv: 'Q5_K',
};

export interface RuleMixOptions {
  /** Token embedding shares the output tensor (llama.cpp then gives it the output type). */
  readonly tiedEmbeddings?: boolean;
  /** Own categorisation (e.g. for a graph whose names carry no meaning). */
  readonly categorize?: (w: RuleWeight) => RuleCategory;
  /** Final per-weight substitution, e.g. llama.cpp's shape fallback. */
  readonly fallback?: (scheme: string, w: RuleWeight) => string;
}

/**
 * llama.cpp's layer rule: the first and last eighth of the layers, and every third layer in between.
 * Integer division as in C (both operands non-negative there; for i < n/8 the first test already holds).
 * @example [0, 1, 2, 3, 4, 5, 6, 7].filter((i) => useMoreBits(i, 8)) // [0, 3, 6, 7]
 */
export function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return i < eighth || i >= Math.trunc((7 * n) / 8) || (i - eighth) % 3 === 2;
}

// Patterns on the lower-cased name; a segment boundary is one of . / _ - : or the string ends.
const B = '(?:^|[./_\\-:])';
const E = '(?=$|[./_\\-:])';
const PATTERNS: readonly [RuleCategory, RegExp][] = [
  ['attn_v', new RegExp(`${B}(?:attn_v|v_proj|value)${E}`)],
  ['attn_qkv', new RegExp(`${B}(?:attn_qkv|c_attn|qkv|query_key_value|qkv_proj|in_proj)${E}`)],
  ['ffn_down', new RegExp(`${B}(?:ffn_down|down_proj|mlp_proj|dense_4h_to_h|w2|fc2)${E}|mlp[./_]c_proj${E}`)],
  ['token_embd', new RegExp(`${B}(?:token_embd|embed_tokens|wte|word_embeddings|tok_embeddings)${E}`)],
  // The last name segment (before an optional .weight): 'output.weight', 'gpt.head', 'lm_head.weight'.
  ['output', /(?:^|[./])(?:output|lm_head|head|classifier)(?:[./](?:weight|w))?$/],
];

/**
 * Category of a weight by name (see the file header for the conventions).
 * @example categorizeWeight({ name: 'blk.3.attn_v.weight' }) // 'attn_v'
 */
export function categorizeWeight(w: RuleWeight): RuleCategory {
  const n = w.name.toLowerCase();
  for (const [cat, re] of PATTERNS) if (re.test(n)) return cat;
  if (w.role === 'embedding') return 'token_embd';
  return 'other';
}

/**
 * Every weight gets the same scheme.
 * @example uniformMix(weights, 'Q8_0').get('head') // 'Q8_0'
 */
export function uniformMix(weights: readonly RuleWeight[], scheme: string): Map<string, string> {
  return new Map(weights.map((w) => [w.name, scheme]));
}

/**
 * The category of every weight (categorizeWeight, or `categorize`); without a named output layer, the
 * last matmul / gemm weight in file order is the output layer (the head of CNNs and CTC recognizers).
 * @example ruleCategories([{ name: 'a' , role: 'matmul-weight' }, { name: 'b', role: 'matmul-weight' }]) // ['other', 'output']
 */
export function ruleCategories(
  weights: readonly RuleWeight[],
  categorize: (w: RuleWeight) => RuleCategory = categorizeWeight,
): RuleCategory[] {
  const cats = weights.map(categorize);
  if (!cats.includes('output')) {
    for (let i = weights.length - 1; i >= 0; i--) {
      const role = weights[i]!.role;
      if (cats[i] === 'other' && (role === 'matmul-weight' || role === 'gemm-weight')) {
        cats[i] = 'output';
        break;
      }
    }
  }
  return cats;
}

/**
 * The llama.cpp Q4_K_M-style rule mix: scheme id per weight name.
 * @example ruleMix(view.tensors.filter((t) => t.quantizable), Q4_K_M_SCHEMES)
 */
export function ruleMix(
  weights: readonly RuleWeight[],
  schemes: RuleMixSchemes,
  opts: RuleMixOptions = {},
): Map<string, string> {
  const cats = ruleCategories(weights, opts.categorize);
  // llama.cpp counts attn_v and ffn_down tensors in file order; sort by layer where known so the count
  // equals the layer index for dense models whatever the file order.
  const ordinal = new Map<number, { i: number; n: number }>();
  for (const cat of ['attn_v', 'ffn_down'] as const) {
    const idx = weights.map((_, i) => i).filter((i) => cats[i] === cat);
    idx.sort((a, b) => (weights[a]!.layer ?? a) - (weights[b]!.layer ?? b) || a - b);
    idx.forEach((i, t) => {
      ordinal.set(i, { i: t, n: idx.length });
    });
  }
  const out = new Map<string, string>();
  weights.forEach((w, i) => {
    const cat = cats[i]!;
    let s = schemes.base;
    if (cat === 'output' || (cat === 'token_embd' && opts.tiedEmbeddings)) s = schemes.output;
    else if (cat === 'attn_qkv') s = schemes.fusedQkv ?? schemes.base;
    else if (cat === 'attn_v' || cat === 'ffn_down') {
      const o = ordinal.get(i)!;
      if (useMoreBits(o.i, o.n)) s = schemes.more;
    }
    out.set(w.name, opts.fallback ? opts.fallback(s, w) : s);
  });
  return out;
}

/** llama.cpp's demotion for rows that are not a multiple of the 256-wide K-quant super-block. */
export const GGML_SHAPE_FALLBACK: Readonly<Record<string, string>> = {
  Q2_K: 'Q4_0',
  Q3_K: 'Q4_0',
  Q4_K: 'Q5_0',
  Q5_K: 'Q5_1',
  Q6_K: 'Q8_0',
};

/**
 * Dev-only fixture generator: Karpathy's stories260K llama2.c checkpoint -> a Hugging Face folder
 * (config.json, model.safetensors in F32, tokenizer.json, tokenizer_config.json) laid out as transformers'
 * LlamaForCausalLM expects, i.e. what a user downloads for a llama model.
 *
 *   node --import tsx scripts/dev/stories-to-hf.ts [out-dir]     (default test/fixtures/stories-hf)
 *   MIXQ_STORIES_DIR   folder with stories260K.bin and tok512.bin (default /work/shared/models/stories260K)
 *
 * llama2.c legacy checkpoint (run.c checkpoint_init_weights): 7 int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size (negative: separate classifier), seq_len), then fp32 token_embedding [V, dim],
 * rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim],
 * rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim],
 * RoPE tables [seq_len, head_size/2] x 2 (skipped), wcls [V, dim] when not shared. Matrices are torch
 * Linear [out, in]. llama2.c rotates adjacent pairs (Meta's layout), so q/k rows are permuted to
 * transformers' rotate_half order as transformers' convert_llama_weights_to_hf does: per head, rows
 * viewed [d/2, 2] -> [2, d/2].
 * tok512.bin: int32 max_token_length, then per token: f32 score, int32 length, bytes. The tokenizer.json
 * is the SentencePiece-BPE layout of transformers' LlamaConverter (legacy): merges by score, byte fallback,
 * Prepend('▁') + Replace(' ', '▁'), BOS added by the post-processor.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GgufArray, parseGguf } from '../../src/io/gguf/read.ts';
import { ggufTokenizerJson } from '../../src/io/llm/tokenizer.ts';
import { ropeRowPermutation } from '../../src/io/llm/names.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { writeSafetensors } from '../../src/io/safetensors/write.ts';

const dir = process.env.MIXQ_STORIES_DIR ?? '/work/shared/models/stories260K';
const out = process.argv[2] ?? 'test/fixtures/stories-hf';
const bin = readFileSync(join(dir, 'stories260K.bin'));
const hdr = new Int32Array(bin.buffer, bin.byteOffset, 7);
const [dim, hidden, L, nHeads, nKv, vocabSigned, seqLen] = Array.from(hdr) as number[];
const V = Math.abs(vocabSigned!);
const shared = vocabSigned! > 0;
const hd = dim! / nHeads!;
const kvDim = nKv! * hd;
const f = new Float32Array(bin.buffer.slice(bin.byteOffset + 28, bin.byteOffset + bin.length));
let at = 0;
const take = (n: number) => {
  const x = f.subarray(at, at + n);
  at += n;
  return x;
};
const emb = take(V * dim!);
const rmsAtt = take(L! * dim!);
const wq = take(L! * dim! * dim!);
const wk = take(L! * kvDim * dim!);
const wv = take(L! * kvDim * dim!);
const wo = take(L! * dim! * dim!);
const rmsFfn = take(L! * dim!);
const w1 = take(L! * hidden! * dim!);
const w2 = take(L! * dim! * hidden!);
const w3 = take(L! * hidden! * dim!);
const rmsFinal = take(dim!);
take(seqLen! * (hd / 2) * 2);
const wcls = shared ? undefined : take(V * dim!);
if (at !== f.length) throw new Error(`checkpoint has ${f.length - at} floats left over`);

/** Meta (pairs) -> HF (rotate_half) row order: hf[perm[r]] = meta[r]. */
function toHf(meta: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const perm = ropeRowPermutation(rows, heads);
  const outRows = new Float32Array(meta.length);
  for (let r = 0; r < rows; r++) outRows.set(meta.subarray(r * cols, (r + 1) * cols), perm[r]! * cols);
  return outRows;
}
const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
const add = (name: string, shape: number[], data: Float32Array) =>
  tensors.push({ name, shape, data: Float32Array.from(data) });
add('model.embed_tokens.weight', [V, dim!], emb);
for (let l = 0; l < L!; l++) {
  const p = `model.layers.${l}`;
  const sl = (x: Float32Array, n: number) => x.subarray(l * n, (l + 1) * n);
  add(`${p}.input_layernorm.weight`, [dim!], sl(rmsAtt, dim!));
  add(`${p}.self_attn.q_proj.weight`, [dim!, dim!], toHf(sl(wq, dim! * dim!), dim!, dim!, nHeads!));
  add(`${p}.self_attn.k_proj.weight`, [kvDim, dim!], toHf(sl(wk, kvDim * dim!), kvDim, dim!, nKv!));
  add(`${p}.self_attn.v_proj.weight`, [kvDim, dim!], sl(wv, kvDim * dim!));
  add(`${p}.self_attn.o_proj.weight`, [dim!, dim!], sl(wo, dim! * dim!));
  add(`${p}.post_attention_layernorm.weight`, [dim!], sl(rmsFfn, dim!));
  add(`${p}.mlp.gate_proj.weight`, [hidden!, dim!], sl(w1, hidden! * dim!));
  add(`${p}.mlp.down_proj.weight`, [dim!, hidden!], sl(w2, dim! * hidden!));
  add(`${p}.mlp.up_proj.weight`, [hidden!, dim!], sl(w3, hidden! * dim!));
}
add('model.norm.weight', [dim!], rmsFinal);
if (wcls) add('lm_head.weight', [V, dim!], wcls);

// tokenizer: the GGUF's vocabulary must be tok512's (checked), then written as LlamaConverter would
const tok = readFileSync(join(dir, 'tok512.bin'));
const tv = new DataView(tok.buffer, tok.byteOffset, tok.length);
const pieces: string[] = [];
const scores: number[] = [];
let p = 4;
for (let i = 0; i < V; i++) {
  scores.push(tv.getFloat32(p, true));
  const n = tv.getInt32(p + 4, true);
  pieces.push(new TextDecoder().decode(tok.subarray(p + 8, p + 8 + n)));
  p += 8 + n;
}
const ggufPath = join(dir, 'stories260K.gguf');
const gguf = parseGguf(new Uint8Array(readFileSync(ggufPath)), ggufPath);
const spec = ggufTokenizerJson(gguf);
const vocab = spec.json.model.vocab as Record<string, number>;
const ggufScores = (gguf.get('tokenizer.ggml.scores') as GgufArray).items as readonly number[];
const ggufTokens = (gguf.get('tokenizer.ggml.tokens') as GgufArray).items as readonly string[];
for (let i = 3; i < V; i++) {
  // tok512 (llama2.c's export) spells '▁' as ' '; the GGUF keeps SentencePiece's '▁' (its last token, a
  // lone space, stays ' ' in both)
  const piece = i === V - 1 ? pieces[i]! : pieces[i]!.replaceAll(' ', '▁');
  if (ggufTokens[i] !== piece || ggufScores[i] !== scores[i] || vocab[piece] !== i)
    throw new Error(
      `token ${i} ${JSON.stringify(pieces[i])} differs from the GGUF's ${JSON.stringify(ggufTokens[i])}`,
    );
}
const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});
const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: spec.json.normalizer,
  pre_tokenizer: null,
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<s>', type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
  },
  decoder: spec.json.decoder,
  model: { ...spec.json.model, dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null },
};
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: dim,
  intermediate_size: hidden,
  num_hidden_layers: L,
  num_attention_heads: nHeads,
  num_key_value_heads: nKv,
  vocab_size: V,
  max_position_embeddings: seqLen,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  hidden_act: 'silu',
  tie_word_embeddings: shared,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};
const tokenizerConfig = {
  add_bos_token: true,
  add_eos_token: false,
  bos_token: '<s>',
  eos_token: '</s>',
  unk_token: '<unk>',
  model_max_length: seqLen,
  tokenizer_class: 'LlamaTokenizer',
  legacy: true,
};
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
writeFileSync(join(out, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
writeFileSync(join(out, 'tokenizer.json'), JSON.stringify(tokenizerJson));
const st = writeSafetensors({
  tensors: tensors.map((t) => ({
    name: t.name,
    dtype: 'F32',
    shape: t.shape,
    data: new Uint8Array(t.data.buffer),
  })),
  metadata: { format: 'pt' },
});
writeFileSync(join(out, 'model.safetensors'), concatBytes(st));
console.log(`wrote ${out}: ${tensors.length} tensors, vocab ${V}, ${L} layers`);

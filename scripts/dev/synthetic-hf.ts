/**
 * Dev-only: writes a synthetic TinyLlama-shaped Hugging Face folder (config.json, two F16 safetensors shards
 * with model.safetensors.index.json, a SentencePiece-style tokenizer.json), streamed, then converts it to
 * GGUF with io/llm/hf-folder.node.ts and prints the time; run under `/usr/bin/time -v` for the peak RSS of
 * the conversion (memory should be bounded by the largest tensor, not the model). NEVER commit the output.
 *
 *   /usr/bin/time -v node --import tsx scripts/dev/synthetic-hf.ts <dir> [--layers N] [--no-convert]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicStream } from '../../src/io/file-stream.node.ts';
import { convertHfFolderToGguf } from '../../src/io/llm/hf-folder.node.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: synthetic-hf.ts <dir> [--layers N] [--no-convert]');
const li = process.argv.indexOf('--layers');
const [H, F, nh, nkv, V] = [2048, 5632, 32, 4, 32000];
const L = li > 0 ? Number(process.argv[li + 1]) : 22;
const hd = H / nh;
mkdirSync(dir, { recursive: true });
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: H,
    intermediate_size: F,
    num_hidden_layers: L,
    num_attention_heads: nh,
    num_key_value_heads: nkv,
    vocab_size: V,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  }),
);
const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
for (let i = 259; i < V; i++) vocab[`▁t${i}`] = i;
writeFileSync(
  join(dir, 'tokenizer.json'),
  JSON.stringify({
    added_tokens: [0, 1, 2].map((id) => ({ id, content: Object.keys(vocab)[id], special: true })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    model: { type: 'BPE', vocab, merges: [], byte_fallback: true, unk_token: '<unk>' },
  }),
);
const tensors: { name: string; shape: number[] }[] = [
  { name: 'model.embed_tokens.weight', shape: [V, H] },
  { name: 'model.norm.weight', shape: [H] },
  { name: 'lm_head.weight', shape: [V, H] },
];
for (let l = 0; l < L; l++) {
  const p = `model.layers.${l}.`;
  tensors.push(
    { name: `${p}input_layernorm.weight`, shape: [H] },
    { name: `${p}self_attn.q_proj.weight`, shape: [H, H] },
    { name: `${p}self_attn.k_proj.weight`, shape: [nkv * hd, H] },
    { name: `${p}self_attn.v_proj.weight`, shape: [nkv * hd, H] },
    { name: `${p}self_attn.o_proj.weight`, shape: [H, H] },
    { name: `${p}post_attention_layernorm.weight`, shape: [H] },
    { name: `${p}mlp.gate_proj.weight`, shape: [F, H] },
    { name: `${p}mlp.up_proj.weight`, shape: [F, H] },
    { name: `${p}mlp.down_proj.weight`, shape: [H, F] },
  );
}
const half = Math.ceil(tensors.length / 2);
const shards = [tensors.slice(0, half), tensors.slice(half)];
const weightMap: Record<string, string> = {};
const t0 = Date.now();
for (const [si, shard] of shards.entries()) {
  const file = `model-0000${si + 1}-of-00002.safetensors`;
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const t of shard) {
    const n = t.shape.reduce((a, b) => a * b, 1) * 2;
    header[t.name] = { dtype: 'F16', shape: t.shape, data_offsets: [off, off + n] };
    off += n;
    weightMap[t.name] = file;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
    yield len;
    yield new TextEncoder().encode(json);
    let seed = 12345 + si;
    for (const t of shard) {
      let left = t.shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, 4 << 20);
        const u = new Uint16Array(n);
        for (let k = 0; k < n; k++) {
          seed = (seed * 1103515245 + 12345) >>> 0;
          u[k] = t.shape.length === 1 ? 0x3c00 : ((seed >>> 16) & 0x83ff) | ((8 + ((seed >>> 12) & 3)) << 10);
        }
        yield new Uint8Array(u.buffer);
        left -= n;
      }
    }
  }
  await writeFileAtomicStream(join(dir, file), chunks());
}
writeFileSync(
  join(dir, 'model.safetensors.index.json'),
  JSON.stringify({ metadata: {}, weight_map: weightMap }),
);
console.log(
  `wrote ${dir}: ${tensors.length} tensors in 2 shards, ${L} layers, in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
if (!process.argv.includes('--no-convert')) {
  const t1 = Date.now();
  const r = await convertHfFolderToGguf(dir, join(dir, '..', 'synthetic-hf.gguf'));
  console.log(
    `converted to ${r.out}: ${(r.bytes / 1e9).toFixed(2)} GB, ${r.tensors} tensors, in ${((Date.now() - t1) / 1000).toFixed(1)} s, rss now ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
}

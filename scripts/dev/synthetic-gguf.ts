/**
 * Dev-only: writes a synthetic llama-architecture GGUF in F16 with random weights, streamed to disk (memory
 * stays at a few MB whatever the size), for measuring mixq on real model shapes. NEVER commit the output.
 *
 *   node --import tsx scripts/dev/synthetic-gguf.ts <7b|tinyllama|WxFxLxV> <out.gguf> [--layers N]
 *
 *   7b         32 layers, hidden 4096, FFN 11008, 32 heads (no GQA), vocab 32000: 6.74 G weights, 13.5 GB
 *   tinyllama  22 layers, hidden 2048, FFN 5632, 32 heads / 4 KV heads, vocab 32000: 1.1 G weights, 2.2 GB
 * 1-D norms are F32 (as llama.cpp's converter writes them); the vocabulary is a synthetic SentencePiece
 * one (<unk>, <s>, </s>, 256 byte tokens, then 't<i>') so llama.cpp loads the file. Weights: f16 of random
 * sign, exponent 2^-7..2^-4 and mantissa (xorshift128, seeded per tensor), reproducible.
 */
import { ggufHeaderLayout } from '../../src/io/gguf/write.ts';
import { writeFileAtomicStream } from '../../src/io/file-stream.node.ts';
import { syntheticLlamaKv } from '../../test/engine/synthetic.ts';

const [preset, out] = process.argv.slice(2);
const layersArg = process.argv.indexOf('--layers');
if (!preset || !out) {
  console.error('usage: synthetic-gguf.ts <7b|tinyllama> <out.gguf> [--layers N]');
  process.exit(2);
}
const shapes: Record<string, [number, number, number, number, number, number]> = {
  // hidden, ffn, layers, heads, kv heads, vocab
  '7b': [4096, 11008, 32, 32, 32, 32000],
  tinyllama: [2048, 5632, 22, 32, 4, 32000],
};
const s = shapes[preset];
if (!s) throw new Error(`unknown preset ${preset}`);
const [H, F, L0, nh, nkv, V] = s;
const L = layersArg > 0 ? Number(process.argv[layersArg + 1]) : L0;
const hd = H / nh;
// the configuration and vocabulary the engine tests' synthetic models have (F16: file type 1)
const kv = syntheticLlamaKv(
  { hidden: H, ffn: F, layers: L, heads: nh, kvHeads: nkv, vocab: V },
  `synthetic-${preset}`,
  1,
  4096,
);
const tensors: { name: string; ne: number[]; type: 'F16' | 'F32' }[] = [
  { name: 'token_embd.weight', ne: [H, V], type: 'F16' },
  { name: 'output_norm.weight', ne: [H], type: 'F32' },
  { name: 'output.weight', ne: [H, V], type: 'F16' },
];
for (let l = 0; l < L; l++) {
  const b = `blk.${l}.`;
  tensors.push(
    { name: `${b}attn_norm.weight`, ne: [H], type: 'F32' },
    { name: `${b}attn_q.weight`, ne: [H, H], type: 'F16' },
    { name: `${b}attn_k.weight`, ne: [H, nkv * hd], type: 'F16' },
    { name: `${b}attn_v.weight`, ne: [H, nkv * hd], type: 'F16' },
    { name: `${b}attn_output.weight`, ne: [H, H], type: 'F16' },
    { name: `${b}ffn_norm.weight`, ne: [H], type: 'F32' },
    { name: `${b}ffn_gate.weight`, ne: [H, F], type: 'F16' },
    { name: `${b}ffn_up.weight`, ne: [H, F], type: 'F16' },
    { name: `${b}ffn_down.weight`, ne: [F, H], type: 'F16' },
  );
}
const layout = ggufHeaderLayout(kv, tensors);

const CHUNK = 8 << 20;
async function* chunks(): AsyncGenerator<Uint8Array> {
  yield layout.header;
  for (const [i, t] of tensors.entries()) {
    let left = layout.nbytes[i]!;
    let x = 0x9e3779b9 ^ (i * 0x85ebca6b);
    let y = 362436069;
    let z = 521288629 + i;
    let w = 88675123;
    while (left > 0) {
      const n = Math.min(CHUNK, left);
      const buf = new Uint8Array(n);
      if (t.type === 'F32') new Float32Array(buf.buffer).fill(1);
      else {
        const u = new Uint32Array(buf.buffer);
        for (let k = 0; k < u.length; k++) {
          const tt = x ^ (x << 11);
          x = y;
          y = z;
          z = w;
          w = (w ^ (w >>> 19) ^ (tt ^ (tt >>> 8))) >>> 0;
          // two f16: sign, exponent 8..11 (2^-7..2^-4), random mantissa
          const lo = (w & 0x83ff) | ((8 + ((w >>> 10) & 3)) << 10);
          const hi = ((w >>> 16) & 0x83ff) | ((8 + ((w >>> 26) & 3)) << 10);
          u[k] = (lo | (hi << 16)) >>> 0;
        }
      }
      yield buf;
      left -= n;
    }
    if (layout.padding[i]! > 0) yield new Uint8Array(layout.padding[i]!);
  }
}
const t0 = Date.now();
const bytes = await writeFileAtomicStream(out, chunks());
console.log(
  `wrote ${out}: ${(bytes / 1e9).toFixed(2)} GB, ${tensors.length} tensors, ${L} layers, in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);

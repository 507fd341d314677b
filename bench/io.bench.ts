/**
 * Header parsing speed of the model readers on realistic headers:
 * - GGUF with a 151,936-token vocabulary (tokens, scores, token types) and 291 tensor infos (a 7B-class
 *   llama layout), against a baseline that only UTF-8-decodes the same token bytes;
 * - safetensors with 2,000 tensors, against a bare JSON.parse of the same header text.
 */
import {
  concatBytes,
  type GgufKV,
  parseGguf,
  parseSafetensors,
  writeGguf,
  writeSafetensors,
} from '../src/io/index.ts';
import { printTable, timeBest } from './util.ts';

export default async function bench(): Promise<void> {
  const nVocab = 151_936;
  const tokens = Array.from({ length: nVocab }, (_, i) => `tok_${i.toString(36)}${i % 7 === 0 ? 'é' : ''}`);
  const kv: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'arr', value: { itemType: 'str', items: tokens } },
    {
      key: 'tokenizer.ggml.scores',
      type: 'arr',
      value: { itemType: 'f32', items: tokens.map((_, i) => -i / 7) },
    },
    { key: 'tokenizer.ggml.token_type', type: 'arr', value: { itemType: 'i32', items: tokens.map(() => 1) } },
  ];
  const tensors = Array.from({ length: 291 }, (_, i) => ({
    name: `blk.${i >> 3}.t${i & 7}.weight`,
    ne: [32, 1],
    type: 'q8_0',
    data: new Uint8Array(34),
  }));
  const gguf = concatBytes(writeGguf({ kv, tensors }));
  const enc = new TextEncoder();
  const tokenBytes = tokens.map((t) => enc.encode(t));
  const dec = new TextDecoder();
  const tGguf = timeBest(() => parseGguf(gguf), 1000);
  const tBase = timeBest(() => {
    for (const b of tokenBytes) dec.decode(b);
  }, 1000);

  const st = concatBytes(
    writeSafetensors({
      tensors: Array.from({ length: 2000 }, (_, i) => ({
        name: `model.layers.${i >> 4}.mlp.w${i & 15}.weight`,
        dtype: 'F32' as const,
        shape: [1],
        data: new Uint8Array(4),
      })),
    }),
  );
  const n = Number(new DataView(st.buffer).getBigUint64(0, true));
  const text = new TextDecoder().decode(st.subarray(8, 8 + n));
  let tSt = Infinity;
  for (let r = 0; r < 20; r++) {
    const t0 = performance.now();
    await parseSafetensors(st);
    tSt = Math.min(tSt, performance.now() - t0);
  }
  const tJson = timeBest(() => JSON.parse(text), 500);
  printTable(
    ['reader', 'header', 'ms', 'baseline', 'baseline ms', 'ratio'],
    [
      [
        'gguf',
        `${(gguf.length / 2 ** 20).toFixed(1)} MiB`,
        tGguf.toFixed(2),
        'UTF-8 decode of tokens',
        tBase.toFixed(2),
        (tGguf / tBase).toFixed(2),
      ],
      [
        'safetensors',
        `${(n / 1024).toFixed(0)} KiB`,
        tSt.toFixed(2),
        'JSON.parse',
        tJson.toFixed(2),
        (tSt / tJson).toFixed(2),
      ],
    ],
  );
}

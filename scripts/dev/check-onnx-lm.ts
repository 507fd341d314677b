/**
 * Dev-only check of a transformers.js-style decoder ONNX with past_key_values (scripts/dev/stories_to_onnx.py)
 * against llama.cpp on the same model's GGUF: onnxruntime-node's next-token log-probs vs llama.cpp's over one
 * window of the stories validation text (max |delta log p| over the whole vocabulary, top-1 agreement,
 * nats/token of both), the KV-cache path (first half, then the second half fed with past_key_values) vs
 * one full pass, and mixq's ONNX -> HF initializer names.
 *
 *   node --import tsx scripts/dev/check-onnx-lm.ts [onnx-dir] [gguf] [tokens]
 *     (defaults test/fixtures/stories-onnx, models/stories/stories260K.gguf, 256)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOnnx } from '../../src/io/onnx/read.ts';
import { llmConfigFromHf } from '../../src/io/llm/config.ts';
import { onnxWeightNames } from '../../src/io/llm/names.ts';
import { ggufNameFromHf } from '../../src/io/llm/names.ts';
import { loadStoriesText } from '../../src/runtime/bundled-stories.node.ts';
import { openLlamaModel } from '../../src/runtime/llama.node.ts';
import { klFromLogProbs, logProbsFromLogits, splitWindows } from '../../src/runtime/lm-windows.ts';
import { argmax } from '../../src/runtime/metrics.ts';
import { floatTensor, int64Tensor, openSession } from '../../src/runtime/ort.node.ts';

const dir = process.argv[2] ?? 'test/fixtures/stories-onnx';
const gguf = process.argv[3] ?? 'models/stories/stories260K.gguf';
const n = Number(process.argv[4] ?? 256);
const cfg = llmConfigFromHf(
  JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
  join(dir, 'config.json'),
);
const modelPath = join(dir, 'onnx', 'model.onnx');

const names = onnxWeightNames(
  readOnnx(new Uint8Array(readFileSync(modelPath)), { source: modelPath }),
  (hf) => Boolean(ggufNameFromHf(cfg.architecture, hf)),
);
const transposed = [...names.values()].filter((w) => w.transposed).length;
console.log(`ONNX initializers mapped to HF names: ${names.size} (${transposed} transposed MatMul weights)`);
for (const [init, w] of [...names].slice(0, 6))
  console.log(`  ${init} -> ${w.hf}${w.transposed ? ' (transposed)' : ''}`);

const kvCacheType = process.env.KV === 'F32' ? 'F32' : 'F16';
const llama = await openLlamaModel(gguf, { kvCacheType });
console.log(`llama.cpp KV cache ${kvCacheType} (set KV=F32 for float32)`);
const ids = llama.tokenize(loadStoriesText()).slice(0, n - 1);
const windows = splitWindows(ids, { windowTokens: n, bos: llama.bos! });
const ref = await llama.recordReference(windows.slice(0, 1));
const refRows = await ref.readWindow(0);
const tokens = Array.from(windows[0]!.tokens);
const V = cfg.vocabSize;
const S = tokens.length;

const session = await openSession(modelPath);
function feeds(slice: number[], past: number, pastKv: Float32Array[] | undefined) {
  const f: Record<string, ReturnType<typeof floatTensor>> = {
    input_ids: int64Tensor(slice, [1, slice.length]),
    attention_mask: int64Tensor(new Array(past + slice.length).fill(1), [1, past + slice.length]),
    position_ids: int64Tensor(
      slice.map((_, i) => past + i),
      [1, slice.length],
    ),
  };
  for (let l = 0; l < cfg.numLayers; l++)
    for (const [k, kv] of ['key', 'value'].entries())
      f[`past_key_values.${l}.${kv}`] = floatTensor(pastKv?.[2 * l + k] ?? new Float32Array(0), [
        1,
        cfg.numKvHeads,
        past,
        cfg.headDim,
      ]);
  return f;
}
const full = await session.run(feeds(tokens, 0, undefined));
const logits = full.logits!.data as Float32Array;
let maxDiff = 0;
let maxDiffLikely = 0; // over tokens with p > 1e-4
let kl = 0;
let agree = 0;
let nllOnnx = 0;
let nllLlama = 0;
const row = new Float64Array(V);
for (let j = 0; j < S - 1; j++) {
  logProbsFromLogits(logits.subarray(j * V, (j + 1) * V), row);
  for (let v = 0; v < V; v++) {
    const d = Math.abs(row[v]! - refRows[j * V + v]!);
    maxDiff = Math.max(maxDiff, d);
    if (refRows[j * V + v]! > Math.log(1e-4)) maxDiffLikely = Math.max(maxDiffLikely, d);
  }
  kl += klFromLogProbs(refRows, j * V, row, 0, V);
  if (argmax(row, 0, V) === argmax(refRows, j * V, V)) agree++;
  nllOnnx -= row[tokens[j + 1]!]!;
  nllLlama -= refRows[j * V + tokens[j + 1]!]!;
}
console.log(
  `onnxruntime vs llama.cpp over ${S - 1} positions x ${V} tokens: max |delta log p| ${maxDiff.toExponential(2)} (${maxDiffLikely.toExponential(2)} where p > 1e-4), mean KL ${(kl / (S - 1)).toExponential(2)}, ` +
    `top-1 agreement ${((100 * agree) / (S - 1)).toFixed(2)}%, nats/token ${(nllOnnx / (S - 1)).toFixed(5)} vs ${(nllLlama / (S - 1)).toFixed(5)}`,
);
// KV cache: first half, then the rest with past_key_values
const h = Math.floor(S / 2);
const a = await session.run(feeds(tokens.slice(0, h), 0, undefined));
const past: Float32Array[] = [];
for (let l = 0; l < cfg.numLayers; l++)
  past.push(a[`present.${l}.key`]!.data as Float32Array, a[`present.${l}.value`]!.data as Float32Array);
const b = await session.run(feeds(tokens.slice(h), h, past));
const lb = b.logits!.data as Float32Array;
let kvDiff = 0;
for (let i = 0; i < lb.length; i++) kvDiff = Math.max(kvDiff, Math.abs(lb[i]! - logits[h * V + i]!));
console.log(
  `KV-cache path (${h} + ${S - h} tokens) vs one pass: max |delta logit| ${kvDiff.toExponential(2)}`,
);
await ref.close();
await llama.close();

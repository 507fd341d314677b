/**
 * Dev-only: the logits table of mixq's engine against llama.cpp (node-llama-cpp) on the same GGUF bytes,
 * and both against the float64 reference forward pass (src/engine/reference.ts) on exactly decoded
 * weights. Prints, per model and type, max |Δ log p| over every position and token, mean KL and top-1
 * agreement for:
 *   engine (int8 activations, as llama.cpp) vs llama.cpp (flash attention off, F32 KV cache)
 *   engine (float32 activations) vs float64 reference
 *   llama.cpp vs float64 reference
 *   llama.cpp with its defaults (flash attention auto = on, F16 KV cache) vs float64 reference
 * Models: stories260K re-quantized to every type whose block fits its rows (ffn_down's rows of 172 fall
 * back to F16), a random 256-wide llama (K-quants fit) in every ggml type, the bundled GPT as gpt2, and
 * optionally a GGUF given on the command line (e.g. the 1B-shaped synthetic model; no float64 reference
 * beyond 300 M weights).
 *
 *   node --import tsx scripts/dev/engine-logits.ts [extra.gguf ...]
 */
import { readFileSync } from 'node:fs';
import { loadEngineModel } from '../../src/engine/load.ts';
import { referenceForward } from '../../src/engine/reference.ts';
import { ggufModelSource } from '../../src/engine/source.ts';
import { exportGptGguf } from '../../src/export/gguf/gpt2.node.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { loadStoriesText, storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { openLlamaModel } from '../../src/runtime/llama.node.ts';
import { requantized, SMALL_K, syntheticLlamaGguf } from '../../test/engine/synthetic.ts';
import { compareRows, ggufWeights, logSoftmaxRows, type RowComparison } from '../../test/engine/util.ts';
import { printTable } from '../../bench/util.ts';

const kernels = await createKernels();
const N = 128;

async function llamaRows(bytes: Uint8Array, tokens: Int32Array, exact: boolean): Promise<Float32Array> {
  const ll = await openLlamaModel(bytes, exact ? { kvCacheType: 'F32', flashAttention: false } : {});
  try {
    const ref = await ll.recordReference([{ tokens, scoreFrom: 1, textOffset: 0 }]);
    const rows = await ref.readWindow(0);
    await ref.close();
    return rows;
  } finally {
    await ll.close();
  }
}

const fmt = (c: RowComparison) => [
  c.maxAbs.toExponential(1),
  c.klMean.toExponential(1),
  (100 * c.top1).toFixed(1),
];

async function row(model: string, type: string, bytes: Uint8Array, tokens: Int32Array): Promise<string[]> {
  const file = parseGguf(bytes, `${model}-${type}`);
  const src = ggufModelSource(file);
  const V = src.config.vocabSize;
  const n = tokens.length - 1; // llama.cpp's rows: positions 0 .. n - 1
  const engine = async (activations: 'auto' | 'f32') => {
    const m = await loadEngineModel(kernels, ggufModelSource(file), { activations });
    return logSoftmaxRows(m.forward(tokens.subarray(0, n), m.newCache(), 0), V);
  };
  const eAuto = await engine('auto');
  const eF32 = await engine('f32');
  const lExact = await llamaRows(bytes, tokens, true);
  const lDefault = await llamaRows(bytes, tokens, false);
  let refCols = ['-', '-', '-', '-', '-', '-', '-', '-', '-'];
  const weights = file.tensors.reduce((a, t) => a + t.nElements, 0);
  if (weights < 3e8) {
    const ref = logSoftmaxRows(
      referenceForward(src.config, src.ropeMode, await ggufWeights(file), tokens.subarray(0, n)),
      V,
    );
    refCols = [
      ...fmt(compareRows(eF32, ref, V)),
      ...fmt(compareRows(lExact, ref, V)),
      ...fmt(compareRows(lDefault, ref, V)),
    ];
  }
  return [model, type, String(n), ...fmt(compareRows(lExact, eAuto, V)), ...refCols];
}

const rows: string[][] = [];
const stories = new Uint8Array(readFileSync(storiesModelPath()));
const sTok = ggufModelSource(parseGguf(stories, 's')).tokenizer;
const sIds = Int32Array.from([1, ...sTok.encode(loadStoriesText().slice(0, 1200)).slice(0, N)]);
for (const type of ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL'])
  rows.push(
    await row('stories260K', type, type === 'F32' ? stories : await requantized(stories, type), sIds),
  );
const base = syntheticLlamaGguf(SMALL_K);
const kIds = Int32Array.from({ length: 65 }, (_, i) => (i * 37 + 1) % SMALL_K.vocab);
for (const type of ['F32', 'Q8_0', 'Q4_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_NL', 'MXFP4'])
  rows.push(await row('random 256-wide', type, await requantized(base, type), kIds));
for (const type of ['F32', 'Q8_0']) {
  const g = await exportGptGguf('models/gpt', type, { fallback: true });
  const bytes = new Uint8Array(Buffer.concat(g.chunks));
  const tok = ggufModelSource(parseGguf(bytes, 'gpt')).tokenizer;
  rows.push(
    await row(
      'bundled GPT (gpt2)',
      type,
      bytes,
      tok.encode(readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 600)).slice(0, N + 1),
    ),
  );
}
for (const path of process.argv.slice(2)) {
  const bytes = new Uint8Array(readFileSync(path));
  rows.push(
    await row(
      path.split('/').pop()!,
      '(file)',
      bytes,
      Int32Array.from({ length: 33 }, (_, i) => (i ? 300 + 7 * i : 1)),
    ),
  );
}
const h = (s: string) => [`${s} max|Δ|`, 'KL', 'top1%'];
printTable(
  [
    'model',
    'type',
    'pos',
    ...h('engine q8 vs llama'),
    ...h('engine f32 vs f64'),
    ...h('llama vs f64'),
    ...h('llama default vs f64'),
  ],
  rows,
);

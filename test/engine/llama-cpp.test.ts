/**
 * mixq's engine against llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU build) on the same GGUF bytes.
 * Skipped, with the reason, when the optional package is not installed.
 *
 * llama.cpp runs with flash attention off and an F32 KV cache: node-llama-cpp's default ('auto') turns
 * flash attention on for CPU, which keeps the cache in F16 whatever is asked (V rounded to F16: 1e-3 in
 * log-probabilities at the first position) and rounds queries to F16 (3e-2 over 128 positions of
 * stories260K). With it off, llama.cpp and the engine agree to float32 rounding on float weights.
 * Tolerances (log-softmax rows):
 *   F32 weights: |Δ| <= 1e-4 (1.5e-5 measured over 128 positions).
 *   quantized weights, both in int8 activations: llama.cpp quantizes activations to Q8_0 (fp16 block
 *     scale, ties away) for these types, the engine to int8 blocks with a float32 scale (ties to even);
 *     ffn_down of stories260K (rows of 172) stays F16, where llama.cpp rounds activations to F16 and the
 *     engine keeps float32. Any 1e-4 difference then moves some activation codes by one step, so the two
 *     are as far apart as each is from float activations: mean KL <= 5e-3, top-1 >= 95%.
 *   gpt2 (the bundled GPT): ggml's GELU goes through an F16 lookup table (input and output rounded to
 *     F16): |Δ| <= 1e-2 (3.4e-3 measured; 8.5e-4 when the engine emulates the table).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadEngineModel } from '../../src/engine/load.ts';
import { ggufModelSource } from '../../src/engine/source.ts';
import { exportGptGguf } from '../../src/export/gguf/gpt2.node.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { loadStoriesText, storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { EngineLm } from '../../src/runtime/engine-lm.node.ts';
import { isLlamaCppAvailable, LLAMA_CPP_INSTALL_HINT, openLlamaModel } from '../../src/runtime/llama.node.ts';
import { splitWindows, type TokenWindow } from '../../src/runtime/lm-windows.ts';
import { requantized } from './synthetic.ts';
import { compareRows, logSoftmaxRows } from './util.ts';

const skip = (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT;
const kernels = await createKernels();
const storiesBytes = new Uint8Array(readFileSync(storiesModelPath()));

/** log-prob rows of llama.cpp (positions 0 .. n-2) and of the engine (same positions). */
async function rows(bytes: Uint8Array, tokens: Int32Array) {
  const ll = await openLlamaModel(bytes, { kvCacheType: 'F32', flashAttention: false });
  const w: TokenWindow = { tokens, scoreFrom: 1, textOffset: 0 };
  try {
    const ref = await ll.recordReference([w]);
    const llama = await ref.readWindow(0);
    await ref.close();
    const m = await loadEngineModel(kernels, ggufModelSource(parseGguf(bytes, 'model.gguf')));
    const V = m.config.vocabSize;
    const engine = logSoftmaxRows(m.forward(tokens.subarray(0, tokens.length - 1), m.newCache(), 0), V);
    return compareRows(llama, engine, V);
  } finally {
    await ll.close();
  }
}

test(
  'stories260K in F32, Q8_0, Q4_0, Q5_1 and IQ4_NL: engine logits = llama.cpp logits',
  { skip },
  async (t) => {
    const tok = ggufModelSource(parseGguf(storiesBytes, 's')).tokenizer;
    const tokens = Int32Array.from([1, ...tok.encode(loadStoriesText().slice(0, 1200)).slice(0, 127)]);
    for (const type of ['F32', 'Q8_0', 'Q4_0', 'Q5_1', 'IQ4_NL']) {
      const bytes = type === 'F32' ? storiesBytes : await requantized(storiesBytes, type);
      const c = await rows(bytes, tokens);
      t.diagnostic(`${type} ${JSON.stringify(c)}`);
      if (type === 'F32') assert.ok(c.maxAbs < 1e-4 && c.top1 === 1, JSON.stringify(c));
      else assert.ok(c.klMean < 5e-3 && c.top1 >= 0.95, `${type} ${JSON.stringify(c)}`);
    }
  },
);

test(
  'the bundled GPT as gpt2: engine logits = llama.cpp logits up to its F16 GELU table',
  { skip },
  async (t) => {
    const gpt = await exportGptGguf('models/gpt', 'F32');
    const bytes = new Uint8Array(Buffer.concat(gpt.chunks));
    const tok = ggufModelSource(parseGguf(bytes, 'gpt')).tokenizer;
    const tokens = tok.encode(readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 500)).slice(0, 128);
    const c = await rows(bytes, tokens);
    t.diagnostic(JSON.stringify(c));
    assert.ok(c.maxAbs < 1e-2 && c.top1 === 1, JSON.stringify(c));
  },
);

test(
  'scoring: 1.502 nats/token on stories260K as llama.cpp, KL to its reference < 1e-5 (float32 probabilities)',
  { skip },
  async () => {
    const m = new EngineLm(
      await loadEngineModel(kernels, ggufModelSource(parseGguf(storiesBytes, 'stories'))),
    );
    const ids = m.tokenize(loadStoriesText().slice(0, 8000));
    assert.equal(ids.length, 3868);
    const windows = splitWindows(ids, { windowTokens: 256, bos: m.bos! });
    const ll = await openLlamaModel(storiesBytes, { kvCacheType: 'F32', flashAttention: false });
    try {
      const ref = await ll.recordReference(windows.slice(0, 4));
      const s = await m.score(windows);
      assert.ok(Math.abs(s.natsPerToken - 1.502) < 0.002, `${s.natsPerToken}`);
      const k = await m.score(windows.slice(0, 4), { reference: ref });
      assert.ok(k.klMean! < 1e-5 && k.top1Agreement === 1, `${k.klMean} ${k.top1Agreement}`);
      // the engine's own reference, on disk, scores llama.cpp the same way
      const mine = await m.recordReference(windows.slice(0, 4), { maxMemoryBytes: 0 });
      assert.equal(mine.onDisk, true);
      const back = await ll.score(windows.slice(0, 4), { reference: mine });
      assert.ok(back.klMean! < 1e-5 && back.top1Agreement === 1, `${back.klMean}`);
      await ref.close();
      await mine.close();
    } finally {
      await ll.close();
    }
  },
);

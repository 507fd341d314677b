/**
 * Importance matrices from mixq's engine (src/engine/imatrix.ts) against an independent computation: the
 * float64 reference forward pass (src/engine/reference.ts: no cache, textbook formulas, no code shared
 * with the engine's ops or kernels) sees every product's input rows by weight name, and the test sums
 * x^2 per column and counts tokens itself, llama-imatrix's rules written out here: only 'blk.*' products
 * (plus 'output.weight' with processOutput), only batches of >= 16 tokens. Then the computed matrix goes
 * through the three file layouts and back. And against llama.cpp itself: test/golden/stories260K-imatrix-llama.gguf
 * is llama-imatrix's file for one 256-token chunk (see test/golden/README.md).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { collectImatrix, imatrixFromSums } from '../../src/engine/imatrix.ts';
import { loadEngineModel } from '../../src/engine/load.ts';
import { referenceForward } from '../../src/engine/reference.ts';
import { ggufModelSource } from '../../src/engine/source.ts';
import { readImatrixBytes, serialiseImatrix } from '../../src/io/gguf/imatrix.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { loadStoriesText, storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { ggufWeights } from './util.ts';

const file = parseGguf(new Uint8Array(readFileSync(storiesModelPath())), 'stories260K.gguf');
const src = ggufModelSource(file);
const ids = src.tokenizer.encode(loadStoriesText().slice(0, 2000));
const bos = src.tokenizer.bos ?? 1;
// two windows of 24 and 20 tokens (BOS first) and one of 8, which llama-imatrix's 16-token rule skips
const windows = [
  Int32Array.from([bos, ...ids.slice(0, 23)]),
  Int32Array.from([bos, ...ids.slice(23, 42)]),
  Int32Array.from([bos, ...ids.slice(42, 49)]),
];

/** The reference: per weight name, float64 sums of x^2 over the windows' tokens, and the token count. */
async function referenceImatrix(processOutput: boolean) {
  const weights = await ggufWeights(file);
  const sums = new Map<string, Float64Array>();
  const counts = new Map<string, number>();
  for (const w of windows) {
    if (w.length < 16) continue;
    referenceForward(src.config, src.ropeMode, weights, w, (name, x) => {
      if (!(name.startsWith('blk.') || (processOutput && name === 'output.weight'))) return;
      let s = sums.get(name);
      if (!s) sums.set(name, (s = new Float64Array(x[0]!.length)));
      for (const row of x) for (let j = 0; j < row.length; j++) s[j]! += row[j]! * row[j]!;
      counts.set(name, (counts.get(name) ?? 0) + x.length);
    });
  }
  return { sums, counts };
}

test('stories260K: engine imatrix = float64 reference sums of x^2 / tokens, llama-imatrix coverage', async () => {
  const model = await loadEngineModel(await createKernels(), src, { activations: 'f32' });
  for (const processOutput of [false, true]) {
    const ref = await referenceImatrix(processOutput);
    const im = imatrixFromSums(collectImatrix(model, windows, { processOutput }));
    assert.deepEqual([...im.entries.keys()].sort(), [...ref.sums.keys()].sort());
    // 5 layers x (q, k, v, o, gate, up, down) (+ the head)
    assert.equal(im.entries.size, src.config.numLayers * 7 + (processOutput ? 1 : 0));
    assert.equal(im.chunkCount, 3);
    for (const [name, v] of im.entries) {
      const c = ref.counts.get(name)!;
      assert.equal(c, 44, name);
      assert.equal(im.counts.get(name), c, name);
      const r = ref.sums.get(name)!;
      let scale = 0;
      for (const s of r) scale = Math.max(scale, s / c);
      for (let j = 0; j < v.length; j++) {
        // float32 activations through the engine vs float64: ~1e-6 relative measured
        assert.ok(Math.abs(v[j]! - r[j]! / c) <= 1e-4 * scale, `${name}[${j}]: ${v[j]} vs ${r[j]! / c}`);
      }
    }
  }
  assert.equal(model.onProductInput, undefined, 'the hook is removed afterwards');
});

test('a computed imatrix through the legacy, JSON and GGUF files and back', async () => {
  const model = await loadEngineModel(await createKernels(), src, { activations: 'f32' });
  const im = imatrixFromSums(collectImatrix(model, windows.slice(0, 2), { datasets: ['tiny.txt'] }));
  for (const format of ['dat', 'json', 'gguf'] as const) {
    const back = await readImatrixBytes(serialiseImatrix(im, format), `im.${format}`);
    assert.equal(back.format, format);
    assert.deepEqual([...back.entries.keys()].sort(), [...im.entries.keys()].sort());
    for (const [name, v] of im.entries) {
      const b = back.entries.get(name)!;
      for (let j = 0; j < v.length; j++) {
        // legacy / JSON hold the means exactly; GGUF holds sum = mean * count (one f32 rounding each way)
        const tol = format === 'gguf' ? 2.5e-7 * v[j]! : 0;
        assert.ok(Math.abs(b[j]! - v[j]!) <= tol, `${format} ${name}[${j}]: ${b[j]} vs ${v[j]}`);
      }
    }
    if (format === 'gguf') {
      assert.deepEqual(back.datasets, ['tiny.txt']);
      assert.equal(back.chunkCount, 2);
      // the counts are the tokens seen, as llama-imatrix writes them
      const f = parseGguf(serialiseImatrix(im, 'gguf'), 'im.gguf');
      const t = f.tensors.find((x) => x.name === 'blk.0.attn_q.weight.counts')!;
      const c = await f.readTensorBytes(t);
      assert.equal(new DataView(c.buffer, c.byteOffset).getFloat32(0, true), 44);
      assert.equal(f.get('imatrix.chunk_size'), 24);
    }
  }
});

test("the same chunk as llama-imatrix's golden file: same entries, counts and values (float32 noise)", async () => {
  const golden = new Uint8Array(
    readFileSync(new URL('../golden/stories260K-imatrix-llama.gguf', import.meta.url)),
  );
  const want = await readImatrixBytes(golden, 'stories260K-imatrix-llama.gguf');
  // llama-imatrix's chunk: the text's tokens with a BOS first, 256 in all
  const chunk = Int32Array.from([
    bos,
    ...src.tokenizer.encode(loadStoriesText().slice(0, 3000)).slice(0, 255),
  ]);
  const model = await loadEngineModel(await createKernels(), src, { activations: 'f32' });
  const im = imatrixFromSums(collectImatrix(model, [chunk]));
  assert.deepEqual([...im.entries.keys()].sort(), [...want.entries.keys()].sort());
  const f = parseGguf(golden, 'golden');
  for (const [name, v] of im.entries) {
    const c = f.tensors.find((t) => t.name === `${name}.counts`)!;
    const cb = await f.readTensorBytes(c);
    assert.equal(new DataView(cb.buffer, cb.byteOffset).getFloat32(0, true), im.counts.get(name), name);
    const w = want.entries.get(name)!;
    let scale = 0;
    for (const x of w) scale = Math.max(scale, x);
    for (let j = 0; j < v.length; j++)
      // 7.4e-7 of the entry's largest value measured; a wrong site or token is > 1e-2
      assert.ok(Math.abs(v[j]! - w[j]!) <= 1e-5 * scale, `${name}[${j}]: ${v[j]} vs ${w[j]}`);
  }
});

/**
 * mixq's engine against its plain float64 reference (src/engine/reference.ts: no KV cache, textbook
 * formulas, weights decoded exactly by the ggml codecs, which are bit-exact with ggml), on:
 *   - stories260K (llama, GQA, RoPE 'norm' pairs, untied head) as shipped (F32);
 *   - a random 256-wide llama re-quantized to every ggml type the kernels run (K-quants need rows of 256,
 *     which stories260K's rows of 64 / 172 are not), and a qwen2 variant (q/k/v biases, NEOX RoPE);
 *   - the bundled GPT as a gpt2 GGUF (LayerNorm, learned positions, fused q|k|v, GELU).
 * Tolerances, on log-softmax rows (logits up to a constant per position):
 *   float32 activations ('f32'): |Δ| <= 1e-4 (<= 2.4e-5 measured). The engine stores activations in float32 and the kernels sum
 *     in float32 (budget.ts: (K/4 + 16) u relative per product); through 5 layers this is ~1e-5 measured
 *     (2.4e-5 on stories260K over 48 positions). A wrong decode of one block, a RoPE pair order or a GQA
 *     head mapping moves it by > 1e-2.
 *   int8 activations ('auto' on quantized weights, llama.cpp's scheme): the activations themselves are
 *     rounded to 8 bits per block of 32 (relative error up to 1/254 per value), so the distance to float64
 *     is that of llama.cpp's own Q8 activations (0.3 in max |Δ log p| on stories260K, a 64-wide model, for
 *     both); held to mean KL <= 2e-3 nats (5e-4 measured) and top-1 >= 80% on the random model (its logits,
 *     random, have near ties).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadEngineModel } from '../../src/engine/load.ts';
import { erf } from '../../src/engine/ops.ts';
import { referenceForward } from '../../src/engine/reference.ts';
import { engineFileSource, ggufModelSource } from '../../src/engine/source.ts';
import { writeEngineFile } from '../../src/export/engine-file.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { readSafetensors } from '../../src/io/safetensors/read.ts';
import { bytesSource } from '../../src/io/source.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { exportGptGguf } from '../../src/export/gguf/gpt2.node.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { GGML_KERNEL_TYPES } from '../../src/kernels/ggml.ts';
import { loadStoriesText, storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { requantized, SMALL_K, syntheticLlamaGguf } from './synthetic.ts';
import { compareRows, ggufWeights, logSoftmaxRows } from './util.ts';

const kernels = await createKernels();
const storiesBytes = new Uint8Array(readFileSync(storiesModelPath()));
const storiesText = loadStoriesText().slice(0, 1000);

async function engineVsReference(bytes: Uint8Array, tokens: Int32Array | undefined, n: number) {
  const file = parseGguf(bytes, 'model.gguf');
  const src = ggufModelSource(file);
  const ids =
    tokens ?? Int32Array.from([src.tokenizer.bos ?? 1, ...src.tokenizer.encode(storiesText).slice(0, n - 1)]);
  const V = src.config.vocabSize;
  const ref = logSoftmaxRows(referenceForward(src.config, src.ropeMode, await ggufWeights(file), ids), V);
  const out: Record<string, ReturnType<typeof compareRows>> = {};
  for (const activations of ['f32', 'auto'] as const) {
    const m = await loadEngineModel(kernels, ggufModelSource(file), { activations });
    out[activations] = compareRows(logSoftmaxRows(m.forward(ids, m.newCache(), 0), V), ref, V);
  }
  return out;
}

test('stories260K (F32): engine = float64 reference to 1e-4 in log-probabilities, every top-1', async (t) => {
  const r = await engineVsReference(storiesBytes, undefined, 48);
  t.diagnostic(JSON.stringify(r));
  for (const c of Object.values(r)) {
    assert.ok(c.maxAbs < 1e-4, `${c.maxAbs}`);
    assert.equal(c.top1, 1);
  }
});

const TYPES = ['F16', 'BF16', ...GGML_KERNEL_TYPES];

test('a 256-wide llama in every ggml type: f32 activations = reference, int8 activations close', async (t) => {
  const base = syntheticLlamaGguf(SMALL_K);
  const ids = Int32Array.from({ length: 24 }, (_, i) => (i * 37 + 1) % SMALL_K.vocab);
  for (const type of TYPES) {
    const r = await engineVsReference(await requantized(base, type), ids, ids.length);
    t.diagnostic(`${type} ${JSON.stringify(r)}`);
    assert.ok(r.f32!.maxAbs < 1e-4, `${type} f32 ${r.f32!.maxAbs}`);
    assert.equal(r.f32!.top1, 1, type);
    assert.ok(r.auto!.klMean < 2e-3 && r.auto!.top1 >= 0.8, `${type} auto ${JSON.stringify(r.auto)}`);
  }
});

test('qwen2 (q/k/v biases, NEOX RoPE) and the bundled GPT as gpt2 = reference', async (t) => {
  const qwen = syntheticLlamaGguf({ ...SMALL_K, qkvBias: true, seed: 3 });
  const ids = Int32Array.from({ length: 20 }, (_, i) => (i * 53 + 2) % SMALL_K.vocab);
  const q = await engineVsReference(await requantized(qwen, 'Q4_K'), ids, ids.length);
  t.diagnostic(`qwen2 Q4_K ${JSON.stringify(q)}`);
  assert.ok(q.f32!.maxAbs < 1e-4 && q.f32!.top1 === 1);
  for (const type of ['F32', 'Q8_0']) {
    const gpt = await exportGptGguf('models/gpt', type, { fallback: true });
    const file = parseGguf(new Uint8Array(Buffer.concat(gpt.chunks)), 'gpt.gguf');
    const text = readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 400);
    const g = await engineVsReference(
      new Uint8Array(Buffer.concat(gpt.chunks)),
      ggufModelSource(file).tokenizer.encode(text).slice(0, 64),
      64,
    );
    t.diagnostic(`gpt2 ${type} ${JSON.stringify(g)}`);
    assert.ok(g.f32!.maxAbs < 1e-4 && g.f32!.top1 === 1, type);
  }
});

test('erf to 1e-13 (reference values); an engine file of the GPT with exact GELU = reference', async () => {
  // erf from Abramowitz & Stegun table 7.1 / mpmath
  for (const [x, e] of [
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    [3.5, 0.9999992569016276],
    [-1.7, -0.9837904585907746],
  ] as const)
    assert.ok(Math.abs(erf(x) - e) < 1e-13, `erf(${x}) = ${erf(x)}`);
  assert.ok(Math.abs((1 - erf(4)) / 1.541725790028002e-8 - 1) < 1e-6, 'erfc(4)');
  // the GPT's float tensors in an engine file that says its GELU is exact
  const gpt = await exportGptGguf('models/gpt', 'F32');
  const kv = [...gpt.kv, { key: 'mixq.activation', type: 'str' as const, value: 'gelu-erf' }];
  const tensors = gpt.tensors.map((t) => ({
    kind: 'float' as const,
    name: t.name,
    shape: [...t.ne].reverse(),
    dtype: 'F32' as const,
    data: t.data,
  }));
  const bytes = concatBytes(writeEngineFile(kv, tensors));
  const src = engineFileSource(await readSafetensors(bytesSource(bytes, 'gpt.safetensors')));
  assert.equal(src.config.activation, 'gelu-erf');
  const ids = src.tokenizer.encode(readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 200)).slice(0, 48);
  const V = src.config.vocabSize;
  const w = new Map(tensors.map((t) => [t.name, new Float32Array(t.data.slice().buffer)] as const));
  const ref = logSoftmaxRows(
    referenceForward(src.config, src.ropeMode, (n) => w.get(n)!, ids),
    V,
  );
  const m = await loadEngineModel(kernels, src, { activations: 'f32' });
  const c = compareRows(logSoftmaxRows(m.forward(ids, m.newCache(), 0), V), ref, V);
  assert.ok(c.maxAbs < 1e-4 && c.top1 === 1, JSON.stringify(c));
});

/**
 * Running the engine: mixq's quantized safetensors in a Hugging Face folder (a different format per
 * weight, read through the Node edge) against the float64 reference on the same dequantized values; the
 * KV cache (prefill in chunks, decode step by step) against one full recompute; the same bits on 1 and 2
 * threads; generation and sampling; bad input as one-line MixqErrors.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { measureCostTable } from '../../src/engine/cost.ts';
import { openEngineModel } from '../../src/engine/load.node.ts';
import { loadEngineModel } from '../../src/engine/load.ts';
import { referenceForward } from '../../src/engine/reference.ts';
import { argmaxRow, Sampler } from '../../src/engine/sampling.ts';
import { EngineSession, generateTokens } from '../../src/engine/session.ts';
import { ggufModelSource } from '../../src/engine/source.ts';
import {
  readQuantizedSafetensors,
  type QuantizedSafetensorsInput,
  writeQuantizedSafetensors,
} from '../../src/export/safetensors.ts';
import { getFormat } from '../../src/formats/registry.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { concatBytes, writeGguf } from '../../src/io/gguf/write.ts';
import { ggufNameFromHf } from '../../src/io/llm/names.ts';
import { parseSafetensors } from '../../src/io/safetensors/read.ts';
import { floatBytesToF32 } from '../../src/io/safetensors/dtypes.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { createKernelPool } from '../../src/kernels/pool.node.ts';
import type { QuantizerConfig } from '../../src/quant/qparams.ts';
import { storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { requantized, SMALL_K, syntheticLlamaGguf } from './synthetic.ts';
import { compareRows, logSoftmaxRows } from './util.ts';

const kernels = await createKernels();
const stories = parseGguf(new Uint8Array(readFileSync(storiesModelPath())), 'stories260K.gguf');
const storiesIds = Int32Array.from([
  1,
  ...ggufModelSource(stories).tokenizer.encode(
    'Once upon a time, there was a little dog named Max. He liked to run in the park with his friend.',
  ),
]);

const grp = (size: number) => ({ kind: 'group', axis: 1, size }) as const;
/** One quantizer per weight, in turn: every family of mixq's formats through a whole model. */
const QUANTIZERS: readonly QuantizerConfig[] = [
  { element: getFormat('uint4'), granularity: grp(32), symmetric: false, scaleFormat: 'fp16' },
  { element: getFormat('fp4_e2m1fn'), granularity: grp(16), symmetric: true, scaleFormat: 'fp8_e4m3fn' },
  { element: getFormat('fp4_e2m1fn'), granularity: grp(32), symmetric: true, scaleFormat: 'e8m0' },
  {
    element: getFormat('fp8_e4m3fn'),
    granularity: { kind: 'axis', axis: 0 },
    symmetric: true,
    scaleFormat: 'fp32',
  },
  { element: getFormat('nf4'), granularity: grp(64), symmetric: true, scaleFormat: 'fp16' },
  { element: getFormat('int3'), granularity: grp(32), symmetric: true, scaleFormat: 'fp16' },
  {
    element: getFormat('int8'),
    granularity: { kind: 'axis', axis: 0 },
    symmetric: true,
    scaleFormat: 'fp32',
  },
  { element: getFormat('fp6_e2m3fn'), granularity: grp(32), symmetric: true, scaleFormat: 'e8m0' },
  { element: getFormat('uint2'), granularity: grp(32), symmetric: false, scaleFormat: 'fp16' },
];

test("mixq's quantized safetensors (a folder, nine formats) = reference on the dequantized weights", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-engine-'));
  try {
    const fx = 'test/fixtures/stories-hf';
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      copyFileSync(join(fx, f), join(dir, f));
    const st = await parseSafetensors(new Uint8Array(readFileSync(join(fx, 'model.safetensors'))));
    const inputs: QuantizedSafetensorsInput[] = [];
    let i = 0;
    for (const info of st.tensors) {
      const data = await st.readTensorBytes(info);
      if (info.shape.length === 2)
        inputs.push({
          kind: 'quantize',
          name: info.name,
          values: floatBytesToF32(info.dtype, data),
          shape: info.shape,
          quantizer: QUANTIZERS[i++ % QUANTIZERS.length]!,
        });
      else inputs.push({ kind: 'float', name: info.name, dtype: info.dtype, shape: info.shape, data });
    }
    const bytes = concatBytes(writeQuantizedSafetensors(inputs));
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    const q = await readQuantizedSafetensors(bytes);
    const values = new Map<string, Float32Array>();
    for (const w of q.weights) values.set(ggufNameFromHf('llama', w.name)!.name, await q.dequantize(w.name));
    for (const f of q.floatTensors)
      values.set(ggufNameFromHf('llama', f.name)!.name, await q.readFloat(f.name));
    for (const activations of ['f32', 'auto', 'lut8'] as const) {
      const m = await openEngineModel(dir, { activations });
      try {
        assert.equal(m.config.tieWordEmbeddings, true);
        const V = m.config.vocabSize;
        const ref = referenceForward(m.config, 'neox', (n) => values.get(n) ?? assert.fail(n), storiesIds);
        const c = compareRows(
          logSoftmaxRows(m.forward(storiesIds, m.newCache(), 0), V),
          logSoftmaxRows(ref, V),
          V,
        );
        t.diagnostic(
          `${activations} ${JSON.stringify(c)} weights ${m.load.weightBytes} B of ${m.load.tensorBytes}`,
        );
        if (activations === 'f32') assert.ok(c.maxAbs < 1e-4 && c.top1 === 1, JSON.stringify(c));
        else assert.ok(c.klMean < 2e-2 && c.top1 >= 0.8, JSON.stringify(c));
        if (activations === 'lut8') {
          // the int1..int4 weights of groups of 32k (int3 g32, uint4 and uint2 asymmetric g32) took the
          // lookup-table layout; the others run as in 'auto'
          const lut = m.weights.layers
            .flatMap((l) => [...l.qkv, l.attnOut, ...l.ffnIn, l.ffnDown])
            .filter((p) => p.w.layout === 'lut');
          assert.ok(lut.length >= 3, `${lut.length} lookup-table weights`);
        }
      } finally {
        await m.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('KV cache: chunked prefill and one-token decode steps = one full pass (stories260K, Q4_K model)', async () => {
  for (const bytes of [undefined, await requantized(syntheticLlamaGguf(SMALL_K), 'Q4_K')]) {
    const file = bytes ? parseGguf(bytes, 'q4k.gguf') : stories;
    const m = await loadEngineModel(kernels, ggufModelSource(file));
    const V = m.config.vocabSize;
    const ids = bytes ? Int32Array.from({ length: 30 }, (_, i) => (i * 29 + 5) % SMALL_K.vocab) : storiesIds;
    const full = m.forward(ids, m.newCache(), 0);
    const s = new EngineSession(m);
    const steps = new Float32Array(full.length);
    steps.set(s.logits(ids.subarray(0, 7)), 0);
    steps.set(s.logits(ids.subarray(7, 19)), 7 * V);
    for (let i = 19; i < ids.length; i++) steps.set(s.decode(ids[i]!), i * V);
    assert.equal(s.position, ids.length);
    const c = compareRows(logSoftmaxRows(steps, V), logSoftmaxRows(full, V), V);
    // matrix x vector and matrix x matrix kernels sum in different orders: float32 roundings only
    assert.ok(c.maxAbs < 1e-4 && c.top1 === 1, JSON.stringify(c));
    s.reset(7);
    assert.deepEqual(s.logits(ids.subarray(7, 19)), steps.subarray(7 * V, 19 * V));
  }
});

test('the same logits, bit for bit, on 1 and 2 threads', async () => {
  const file = parseGguf(await requantized(syntheticLlamaGguf(SMALL_K), 'Q4_K'), 'q4k.gguf');
  const pool = await createKernelPool({ threads: 2 });
  try {
    const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 31 + 3) % SMALL_K.vocab);
    const run = async (k: typeof kernels) => {
      const m = await loadEngineModel(k, ggufModelSource(file));
      const s = new EngineSession(m);
      const a = s.prefill(ids);
      const b = s.decode(argmaxRow(a));
      return [...a, ...b];
    };
    const one = await run(kernels);
    const two = await run(pool);
    assert.ok(one.every((v, i) => Object.is(v, two[i])));
  } finally {
    await pool.close();
  }
});

test('generation: greedy text = the decoded ids, seeded sampling reproducible, eos and limits', async () => {
  const m = await loadEngineModel(kernels, ggufModelSource(stories));
  const got: { id: number; text: string }[] = [];
  for await (const tk of generateTokens(m, 'Once upon a time', { maxTokens: 24 })) got.push(tk);
  assert.equal(got.length, 24);
  const tok = m.tokenizer;
  const prompt = tok.encode('Once upon a time');
  assert.equal(
    got.map((g) => g.text).join(''),
    tok.decode([...prompt, ...got.map((g) => g.id)]).slice(tok.decode(prompt).length),
  );
  // greedy = argmax of the logits of a session fed the same ids
  const s = new EngineSession(m);
  let logits = s.prefill([1, ...prompt]);
  for (const g of got) {
    assert.equal(g.id, argmaxRow(logits));
    logits = s.decode(g.id);
  }
  const sample = async (seed: number) => {
    const ids: number[] = [];
    for await (const tk of generateTokens(m, 'Lily', { maxTokens: 16, temperature: 1, seed }))
      ids.push(tk.id);
    return ids;
  };
  assert.deepEqual(await sample(5), await sample(5));
  assert.notDeepEqual(await sample(5), await sample(6));
  // top-k 1 is greedy; top-p keeps at least the best token
  const row = Float32Array.from([0.5, 3, -1, 2.9]);
  assert.equal(new Sampler({ temperature: 2, topK: 1, seed: 1 }).next(row), 1);
  assert.equal(new Sampler({ temperature: 2, topP: 1e-9, seed: 1 }).next(row), 1);
  const counts = [0, 0, 0, 0];
  const smp = new Sampler({ temperature: 1, topK: 0, topP: 1, seed: 3 });
  for (let i = 0; i < 4000; i++) counts[smp.next(row)]!++;
  const z = [0.5, 3, -1, 2.9].reduce((a, v) => a + Math.exp(v), 0);
  counts.forEach((c, i) => assert.ok(Math.abs(c / 4000 - Math.exp([0.5, 3, -1, 2.9][i]!) / z) < 0.03));
});

test('bad input: one-line MixqErrors naming the field', async () => {
  const m = await loadEngineModel(kernels, ggufModelSource(stories));
  assert.throws(() => m.forward([1, 512], m.newCache()), /tokens\[1\]: token id 512 \(expected 0\.\.511\)/);
  const small = m.newCache(4);
  assert.throws(() => m.forward([1, 2, 3, 4, 5], small), /context: 5 positions \(expected at most 4/);
  assert.throws(() => m.newCache(5000), /contextSize: context size 5000 \(expected 1\.\.2048\)/);
  assert.throws(() => new Sampler({ topP: 0 }), MixqError);
  // a model without blk.0.attn_q.weight
  const kv = stories.kv;
  const tensors = [];
  for (const ti of stories.tensors)
    if (ti.name !== 'blk.0.attn_q.weight')
      tensors.push({ name: ti.name, ne: ti.ne, type: ti.type.name, data: await stories.readTensorBytes(ti) });
  const broken = parseGguf(concatBytes(writeGguf({ kv, tensors })), 'broken.gguf');
  await assert.rejects(
    loadEngineModel(kernels, ggufModelSource(broken)),
    /^MixqError: broken\.gguf: blk\.0\.attn_q\.weight: missing tensor \(expected a tensor of shape \[64, 64\]\)$/,
  );
  await assert.rejects(
    openEngineModel('no/such/model.gguf'),
    /no\/such\/model\.gguf: no such file or folder/,
  );
});

test('the cost table: one timed entry per format x shape, weights at their stored size', () => {
  const t = measureCostTable(
    kernels,
    [
      { rows: 64, cols: 256 },
      { rows: 64, cols: 256, batch: 4 },
    ],
    [
      'Q4_K',
      'F16',
      { element: 'int3', groups: 32 },
      { element: 'fp4_e2m1fn', groups: 16, scaleFormat: 'fp8_e4m3fn' },
    ],
    { minMs: 1, rotateBytes: 1 },
  );
  assert.deepEqual(
    t.map((e) => [e.format, e.batch, e.mode, e.bytes]),
    [
      ['Q4_K', 1, 'q8k', (64 * 256 * 144) / 256],
      ['Q4_K', 4, 'q8k', (64 * 256 * 144) / 256],
      ['F16', 1, 'f32', 64 * 256 * 2],
      ['F16', 4, 'f32', 64 * 256 * 2],
      ['int3/32/fp16', 1, 'q8', (64 * 256 * 3) / 8 + 64 * 8 * 2],
      ['int3/32/fp16', 4, 'q8', (64 * 256 * 3) / 8 + 64 * 8 * 2],
      // + one 64-byte allocation (the kernels' element table)
      ['fp4_e2m1fn/16/fp8_e4m3fn', 1, 'q8', (64 * 256) / 2 + 64 * 16 + 64],
      ['fp4_e2m1fn/16/fp8_e4m3fn', 4, 'q8', (64 * 256) / 2 + 64 * 16 + 64],
    ],
  );
  for (const e of t) assert.ok(e.secondsPerCall > 0 && e.secondsPerWeight === e.secondsPerCall / (64 * 256));
});

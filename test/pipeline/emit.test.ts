/**
 * `mixq quantize --emit gguf | safetensors` on the bundled GPT (small settings): the written file is read
 * back by mixq's readers and equals the simulated weights bit for bit (the pipeline checks this itself and
 * throws otherwise), the GGUF is a llama.cpp gpt2 file with the plan's block types, and `mixq apply` of the
 * plan rebuilds the same bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readQuantizedSafetensors } from '../../src/export/safetensors.ts';
import { readGguf } from '../../src/io/gguf/read.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { bytesSource } from '../../src/io/source.ts';
import { applyPlan } from '../../src/pipeline/apply.node.ts';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { quantizeModel } from '../../src/pipeline/quantize/index.ts';

const small = {
  model: 'gpt',
  task: { evalSize: 1024, calibrationSize: 2 },
  evaluation: { sweep: [], baselines: false, select: false },
} as const;

test('emit gguf: gpt2 GGUF with the plan block types, equal to the simulation; apply rebuilds it', async () => {
  const r = await quantizeModel({
    ...small,
    output: { target: 'gguf' },
    budget: { kind: 'bitsPerWeight', bits: 5.5 },
    candidates: { schemes: parseCandidateIds(['ggml-q8_0', 'ggml-q5_0', 'ggml-q4_0', 'ggml-q4_k']) },
  });
  const out = r.output!;
  assert.equal(out.format, 'gguf');
  // the 17 matrices and the token embedding (a Gather table: measured damage)
  assert.match(out.check ?? '', /18 quantized tensors equal the simulated weights bit for bit/);
  const bytes = concatBytes(out.chunks);
  assert.equal(bytes.length, out.size);
  const g = await readGguf(bytesSource(bytes));
  const kv = new Map(g.kv.map((e) => [e.key, e.value] as const));
  assert.equal(kv.get('general.architecture'), 'gpt2');
  const types = new Set(r.plan.weights.map((w) => w.scheme.blockType));
  assert.ok(types.size >= 2, `a mix of block types: ${[...types].join(', ')}`);
  for (const w of r.plan.weights) assert.ok(w.scheme.blockType, `${w.name} has a block type`);
  // Q4_K needs rows of 256: only ffn_down (rows of 768) may use it
  for (const w of r.plan.weights)
    if (w.scheme.blockType === 'Q4_K') assert.equal(w.shape[0]! % 256, 0, `${w.name} ${w.shape}`);
  assert.ok(r.plan.totals.bitsPerWeight <= 5.5);
  assert.deepEqual(r.plan.objective.calibration?.size, 2);
  const a = await applyPlan('gpt', r.plan); // the plan's calibration size is reused
  assert.ok(Buffer.from(a.bytes).equals(Buffer.from(bytes)), 'apply rebuilds the same GGUF');
});

test('emit safetensors: packed weights + quantization_config, equal to the simulation', async () => {
  const r = await quantizeModel({
    ...small,
    output: { target: 'safetensors' },
    budget: { kind: 'bitsPerWeight', bits: 4 },
    candidates: { schemes: parseCandidateIds(['int8-pc-rtn', 'int4-g32-rtn', 'int3-g32-rtn', 'nvfp4-rtn']) },
  });
  const out = r.output!;
  assert.equal(out.format, 'safetensors');
  const back = await readQuantizedSafetensors(concatBytes(out.chunks));
  assert.equal(back.weights.length, r.plan.weights.length);
  assert.ok(back.floatTensors.length > 0, 'embeddings and norms stay float');
  const quantBytes = back.weights.reduce((s, w) => s + w.bytes, 0);
  assert.equal(quantBytes, r.plan.totals.bytes, 'stored quantized bytes = plan bytes');
  await assert.rejects(
    quantizeModel({
      ...small,
      output: { target: 'safetensors' },
      budget: { kind: 'bitsPerWeight', bits: 4 },
      candidates: { schemes: parseCandidateIds(['int4-g32-gptq']) },
    }),
    /RTN element formats only/,
  );
});

test('emit safetensors: searched ranges (-mse) are written as simulated (the pipeline reads the file back)', async () => {
  const r = await quantizeModel({
    ...small,
    output: { target: 'safetensors' },
    budget: { kind: 'bitsPerWeight', bits: 4 },
    candidates: { schemes: parseCandidateIds(['int8-pc-rtn', 'int3-g32-rtn-mse']) },
  });
  assert.ok(
    r.plan.weights.some((w) => w.scheme.scaleRule?.kind === 'mse'),
    'the plan uses the clipping search',
  );
  const back = await readQuantizedSafetensors(concatBytes(r.output!.chunks));
  assert.equal(back.weights.length, r.plan.weights.length);
});

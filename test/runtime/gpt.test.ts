// The bundled KJV character GPT through onnxruntime-node: bits per character on a fixed held-out slice
// (finite, well under 2.5 bits, bit-identical across runs), weight feeding (same weights -> identical
// outputs, a changed weight -> different outputs), the KV-cache export against the plain export, and
// activation capture.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeChars, GPT_DIR, loadGptBundle } from '../../src/runtime/bundled.node.ts';
import { captureActivationStats, meanSquare } from '../../src/runtime/calibration.node.ts';
import { evaluateLm, lmFidelity } from '../../src/runtime/eval-lm.node.ts';
import { finishFidelity, newFidelityAccumulator } from '../../src/runtime/metrics.ts';
import { int64Tensor, openSession, ort } from '../../src/runtime/ort.node.ts';
import { describeInputs, openRunner } from '../../src/runtime/runner.node.ts';
import { evaluateWithWeights, loadWeightFedModel } from '../../src/runtime/weights.node.ts';

const gpt = loadGptBundle();
// A fixed slice: 800 characters from the middle of the held-out text (12 windows of 128, stride 64).
const ids = encodeChars(Array.from(gpt.heldout).slice(50_000, 50_800).join(''), gpt.chars);
const modelPath = join(GPT_DIR, 'model.onnx');

test('bits per character on a held-out slice is finite, < 2.5 and reproducible', async () => {
  const runner = await openRunner(modelPath);
  const a = await evaluateLm(runner, ids, { context: gpt.context });
  const b = await evaluateLm(await openRunner(modelPath), ids, { context: gpt.context });
  assert.ok(Number.isFinite(a.bitsPerChar) && a.bitsPerChar > 0.5 && a.bitsPerChar < 2.5, `${a.bitsPerChar}`);
  assert.equal(a.scoredTokens, ids.length - 1);
  assert.deepEqual(b, a);
  assert.ok(a.bitsPerCharStdError > 0 && a.bitsPerCharStdError < 0.2);
});

test('weight feeding: same weights reproduce the file, a changed weight changes the outputs', async () => {
  const fed = await loadWeightFedModel(modelPath);
  const plain = await openRunner(modelPath);
  const names = fed.weights.map((w) => w.name);
  assert.ok(names.includes('blocks.0.mlp_fc') && names.includes('head'), names.join(','));
  const slice = ids.subarray(0, 200);
  const opts = { context: gpt.context };
  const same = newFidelityAccumulator();
  await lmFidelity(fed.baseline, plain, slice, opts, same);
  const s = finishFidelity(same);
  assert.equal(s.top1Agreement, 1);
  assert.ok(s.klMax < 1e-9 && s.sqnrDb > 100, JSON.stringify(s));
  // Feeding the original values explicitly is exactly the baseline.
  const orig = new Map([['blocks.1.attn_qkv', fed.original('blocks.1.attn_qkv')]]);
  const exact = newFidelityAccumulator();
  await evaluateWithWeights(fed, orig, (r) => lmFidelity(r, fed.baseline, slice, opts, exact));
  assert.deepEqual(finishFidelity(exact), {
    klMean: 0,
    klMax: 0,
    top1Agreement: 1,
    sqnrDb: Infinity,
    rows: slice.length - 1,
  });
  // Rounding one matrix to a coarse grid must show up in every metric.
  const w = fed.original('blocks.1.mlp_fc').map((v) => Math.round(v * 8) / 8);
  const diff = newFidelityAccumulator();
  await evaluateWithWeights(fed, new Map([['blocks.1.mlp_fc', w]]), (r) =>
    lmFidelity(r, fed.baseline, slice, opts, diff),
  );
  const d = finishFidelity(diff);
  assert.ok(d.klMean > 1e-4 && d.sqnrDb < 40, JSON.stringify(d));
});

test('KV-cache export: incremental decoding reproduces the full-sequence logits', async () => {
  const full = await openSession(modelPath);
  const kv = await openSession(join(GPT_DIR, 'model_kv.onnx'));
  const seq = Array.from(ids.subarray(0, 40));
  const ref = (await full.run({ ids: int64Tensor(seq, [1, 40]) })).logits!.data as Float32Array;
  const vocab = gpt.chars.length;
  const layers = kv.inputNames.filter((n) => n.startsWith('past_key_')).length;
  const pastMeta = describeInputs(kv).find((m) => m.name === 'past_key_0')!;
  const heads = Number(pastMeta.shape[1]);
  const headDim = Number(pastMeta.shape[3]);
  assert.ok(layers > 0 && heads > 0 && headDim > 0);
  let past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < layers; l++) {
    for (const t of ['key', 'value'])
      past[`past_${t}_${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
  }
  // Chunks of 25, 1 and 14 tokens: an empty cache, a single-token step, and a longer continuation.
  let pos = 0;
  for (const n of [25, 1, 14]) {
    const out = await kv.run({ ids: int64Tensor(seq.slice(pos, pos + n), [1, n]), ...past });
    const logits = out.logits!.data as Float32Array;
    let maxErr = 0;
    for (let i = 0; i < n * vocab; i++)
      maxErr = Math.max(maxErr, Math.abs(logits[i]! - ref[pos * vocab + i]!));
    assert.ok(maxErr < 1e-3, `chunk at ${pos}: max |diff| ${maxErr}`);
    past = {};
    for (let l = 0; l < layers; l++) {
      for (const t of ['key', 'value']) past[`past_${t}_${l}`] = out[`present_${t}_${l}`]!;
    }
    pos += n;
  }
  assert.equal(past.past_key_0!.dims[2], 40);
});

test('activation capture: per-channel statistics at every MatMul weight', async () => {
  const fed = await loadWeightFedModel(modelPath, { captureInputs: true });
  const matmuls = fed.weights.filter((w) => w.consumers.includes('MatMul:1')).map((w) => w.name);
  assert.deepEqual(fed.captures.map((c) => c.weight).sort(), matmuls.sort());
  const window = Array.from(ids.subarray(0, gpt.context));
  const stats = await captureActivationStats(fed, [{ ids: int64Tensor(window, [1, gpt.context]) }], {
    maxGram: 256,
  });
  const head = stats.get('head')!;
  assert.equal(head.rows, gpt.context);
  const ms = meanSquare(head);
  assert.equal(ms.length, head.channels);
  assert.ok(head.gram && head.gram.length === head.channels ** 2);
  // The Gram diagonal is the sum of squares.
  for (let c = 0; c < head.channels; c++) {
    const g = head.gram[c * head.channels + c]!;
    assert.ok(Math.abs(g - head.sumSquares[c]!) <= 1e-9 * Math.max(1, g));
    assert.ok(head.absMax[c]! ** 2 <= head.sumSquares[c]! * (1 + 1e-6));
  }
  // MLP down-projection sees 4x wider activations: no Gram matrix beyond maxGram.
  const down = stats.get('blocks.0.mlp_proj')!;
  assert.equal(down.gram, undefined);
  assert.equal(down.channels, 4 * head.channels);
});

test('ONNX export + harness agree with PyTorch on the same windows (golden from the training framework)', async () => {
  const g = JSON.parse(
    readFileSync(new URL('../golden/gpt-torch-reference.json', import.meta.url), 'utf8'),
  ) as {
    start: number;
    chars: number;
    context: number;
    mean_nats: number;
    logits_w0_p0to2_v0to4: number[][];
  };
  const text = Array.from(gpt.heldout)
    .slice(g.start, g.start + g.chars)
    .join('');
  const slice = encodeChars(text, gpt.chars);
  // Stride = context gives exactly the non-overlapping windows PyTorch scored.
  const r = await evaluateLm(await openRunner(modelPath), slice, { context: g.context, stride: g.context });
  assert.equal(r.scoredTokens, g.chars - 1);
  assert.ok(Math.abs(r.natsPerChar - g.mean_nats) < 1e-5, `${r.natsPerChar} vs ${g.mean_nats}`);
  const s = await openSession(modelPath);
  const out = (await s.run({ ids: int64Tensor(slice.subarray(0, g.context), [1, g.context]) })).logits!;
  const v = gpt.chars.length;
  g.logits_w0_p0to2_v0to4.forEach((row, p) => {
    row.forEach((want, k) => {
      const got = (out.data as Float32Array)[p * v + k]!;
      assert.ok(Math.abs(got - want) < 1e-4, `logit[${p}][${k}] ${got} vs ${want}`);
    });
  });
});

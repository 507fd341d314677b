// End-to-end sensitivity measurement on the tiny ONNX fixture (test/fixtures/onnx/mlp.onnx, Node only):
// an unchanged weight measures exactly 0 KL, and the noise-calibrated proxy (and the measured KL) rank a
// 2-bit candidate worse than an 8-bit one on every analysed weight. The fixture's output rows end in a
// +65504 offset (a softmax over them is a point mass, KL always 0), so the damage here is the output MSE.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { toAllocWeights } from '../../src/analysis/sensitivity/table.ts';
import { toRows } from '../../src/quant/layout.ts';
import { computeProxies } from '../../src/analysis/sensitivity/proxies.ts';
import { quantizeScheme } from '../../src/analysis/sensitivity/apply-scheme.ts';
import {
  analyzeLoadedModel,
  analyzeSensitivity,
  captureLayerStats,
  createDamageMeter,
  outputAxes,
  syntheticProbe,
} from '../../src/runtime/sensitivity.node.ts';
import { loadWeightFedModel } from '../../src/runtime/weights.node.ts';

const MLP = 'test/fixtures/onnx/mlp.onnx';

test('measured damage of a replacement equal to the original weight is exactly 0; a changed one is not', async () => {
  const model = await loadWeightFedModel(MLP);
  const probe = await syntheticProbe(model, 4, { intHigh: 10, compare: 'mse' });
  const meter = await createDamageMeter(model, probe);
  const name = 'model.layers.0.fc1.weight';
  const same = await meter.measure(new Map([[name, model.original(name)]]));
  assert.equal(same.kl, 0);
  const w = model.original(name).map((v) => v * 1.5);
  assert.ok((await meter.measure(new Map([[name, w]]))).kl > 0);
  assert.equal(meter.evaluations, 2);
});

test('noise-calibrated proxy and measured KL rank int2 worse than int8 on mlp.onnx; deterministic', async () => {
  const opts = {
    probe: (m: Parameters<typeof syntheticProbe>[0]) => syntheticProbe(m, 8, { intHigh: 10, compare: 'mse' }),
    candidates: parseCandidateIds(['int8-pc-rtn', 'int2-g32-rtn']),
  };
  const t = await analyzeSensitivity(MLP, opts);
  assert.deepEqual(
    t.weights.map((w) => w.name),
    ['model.embed_tokens.weight', 'model.layers.0.fc1.weight', 'model.layers.1.fc2.weight'],
  );
  // the embedding has no input activation: measured only, its noise-calibrated damage is the measurement
  const [emb, ...mats] = t.weights;
  assert.equal(emb!.measuredOnly, true);
  assert.equal(emb!.noise, undefined);
  for (const e of emb!.entries) assert.equal(e.proxies.noiseCalibrated, e.measured!.kl);
  assert.ok(emb!.entries[1]!.measured!.kl > emb!.entries[0]!.measured!.kl, 'embedding: int2 worse than int8');
  for (const w of mats) {
    const [i8, i2] = w.entries;
    assert.equal(i8!.candidate, 'int8-pc-rtn');
    assert.ok(w.noise!.kl > 0);
    assert.ok(i2!.proxies.noiseCalibrated! > i8!.proxies.noiseCalibrated!, w.name);
    assert.ok(i2!.measured!.kl > i8!.measured!.kl, w.name);
  }
  assert.deepEqual(await analyzeSensitivity(MLP, opts), t);
  const aw = toAllocWeights(t, 'noiseCalibrated');
  assert.deepEqual(
    aw.map((w) => w.candidates.map((c) => c.scheme)),
    [
      ['int8-pc-rtn', 'int2-g32-rtn'],
      ['int8-pc-rtn', 'int2-g32-rtn'],
      ['int8-pc-rtn', 'int2-g32-rtn'],
    ],
  );
});

test('GPTQ candidates are scored out of sample: fitted on one half of the calibration, scored on the other', async () => {
  const model = await loadWeightFedModel(MLP, { captureInputs: true });
  const axes = await outputAxes(MLP);
  const probe = await syntheticProbe(model, 8, { intHigh: 10, compare: 'mse' });
  const opts = {
    probe: () => probe,
    candidates: parseCandidateIds(['int4-g32-rtn', 'int2-g32-gptq']),
    measure: false,
  };
  const held = await analyzeLoadedModel(model, axes, opts);
  const inSample = await analyzeLoadedModel(model, axes, { ...opts, heldOut: false });
  // the two folds' sums make up the full capture
  const full = await captureLayerStats(model, probe.feeds);
  const even = await captureLayerStats(
    model,
    probe.feeds.filter((_, i) => i % 2 === 0),
  );
  const odd = await captureLayerStats(
    model,
    probe.feeds.filter((_, i) => i % 2 === 1),
  );
  let fitted = 0;
  for (const w of held.table.weights) {
    if (w.measuredOnly) {
      // the embedding: no X^T X, so GPTQ does not apply; RTN is measured
      assert.deepEqual(
        w.entries.map((e) => e.candidate),
        ['int4-g32-rtn'],
      );
      continue;
    }
    const st = full.get(w.name)!;
    const got = held.stats.get(w.name)!;
    for (let i = 0; i < st.gram!.length; i++)
      assert.ok(
        Math.abs(got.gram![i]! - st.gram![i]!) <= 1e-12 * (1 + Math.abs(st.gram![i]!)),
        `${w.name} gram`,
      );
    const L = held.layouts.get(w.name)!;
    const W = toRows(model.original(w.name), L);
    for (const e of w.entries) {
      const c = parseCandidateIds([e.candidate])[0]!;
      const other = inSample.table.weights
        .find((x) => x.name === w.name)!
        .entries.find((x) => x.candidate === e.candidate)!;
      if (c.algorithm === 'rtn') {
        assert.equal(e.heldOut, undefined);
        // the merged folds sum in another order than one capture: equal to rounding
        const [x, y] = [e.proxies.output!, other.proxies.output!];
        assert.ok(Math.abs(x - y) <= 1e-9 * y, `RTN is scored in sample either way: ${x} vs ${y}`);
        continue;
      }
      fitted++;
      assert.equal(e.heldOut, true);
      assert.equal(other.heldOut, undefined);
      const a = computeProxies(W, quantizeScheme(W, L, c, even.get(w.name)!), L, odd.get(w.name)!);
      const b = computeProxies(W, quantizeScheme(W, L, c, odd.get(w.name)!), L, even.get(w.name)!);
      const want = (a.output! + b.output!) / 2;
      assert.ok(
        Math.abs(e.proxies.output! - want) <= 1e-9 * want,
        `${w.name}: ${e.proxies.output} vs ${want}`,
      );
      // in sample, GPTQ is scored on the data it was fitted to
      const ins = computeProxies(W, quantizeScheme(W, L, c, st), L, st).output!;
      assert.ok(Math.abs(other.proxies.output! - ins) <= 1e-9 * ins);
      assert.ok(e.proxies.output! > ins, `${w.name}: held out ${e.proxies.output} vs in sample ${ins}`);
    }
  }
  assert.equal(fitted, 2);
});

test('worker threads score candidates exactly as the inline path (held-out GPTQ, clipping search, centered)', async () => {
  const model = await loadWeightFedModel(MLP, { captureInputs: true });
  const axes = await outputAxes(MLP);
  const probe = await syntheticProbe(model, 8, { intHigh: 10, compare: 'mse' });
  const names = ['model.layers.0.fc1.weight', 'model.layers.1.fc2.weight'];
  const opts = {
    probe: () => probe,
    candidates: parseCandidateIds(['int8-pc-rtn', 'int3-g32-rtn-mse', 'int2-g32-gptq', 'nf4-g64-rtn']),
    biasCorrected: new Set([names[0]!]),
  };
  const inline = await analyzeLoadedModel(model, axes, { ...opts, measure: false, workers: 0 });
  const pooled = await analyzeLoadedModel(model, axes, { ...opts, measure: false, workers: 2 });
  assert.deepEqual(pooled.table, inline.table);
  assert.ok(
    inline.table.weights.some((w) => w.entries.some((e) => e.heldOut)),
    'held-out entries compared',
  );
  // with end-to-end measurement the quantized weights come back from the workers
  const measuredInline = await analyzeLoadedModel(model, axes, { ...opts, workers: 0 });
  const measuredPooled = await analyzeLoadedModel(model, axes, { ...opts, workers: 2 });
  assert.deepEqual(measuredPooled.table, measuredInline.table);
  assert.ok(measuredPooled.table.weights[0]!.entries[0]!.measured, 'measured');
});

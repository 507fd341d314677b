// End-to-end sensitivity measurement on the tiny ONNX fixture (test/fixtures/onnx/mlp.onnx, Node only):
// an unchanged weight measures exactly 0 KL, and the noise-calibrated proxy (and the measured KL) rank a
// 2-bit candidate worse than an 8-bit one on every analysed weight. The fixture's output rows end in a
// +65504 offset (a softmax over them is a point mass, KL always 0), so the damage here is the output MSE.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { candidatesById } from '../../src/analysis/sensitivity/candidates.ts';
import { toAllocWeights } from '../../src/analysis/sensitivity/table.ts';
import { analyzeSensitivity, createDamageMeter, syntheticProbe } from '../../src/runtime/sensitivity.node.ts';
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
    candidates: candidatesById(['int8-pc-rtn', 'int2-g32-rtn']),
  };
  const t = await analyzeSensitivity(MLP, opts);
  assert.deepEqual(
    t.weights.map((w) => w.name),
    ['model.layers.0.fc1.weight', 'model.layers.1.fc2.weight'], // the embedding has no input activation
  );
  for (const w of t.weights) {
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
    ],
  );
});

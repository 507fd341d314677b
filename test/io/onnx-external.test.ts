/**
 * Writing weights to an external data file (the >2 GiB path): onnxruntime loads what we write, alignment and
 * ranges are as promised, the in-memory model is left unchanged, and inputs are never overwritten.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { readOnnxFile, writeOnnxFile } from '../../src/io/onnx/file.node.ts';
import {
  listWeights,
  loadTensorFloat32,
  onnxToObject,
  readOnnx,
  writeOnnx,
  writeOnnxWithExternalData,
} from '../../src/io/onnx/index.ts';
import { FIXTURES, fixture, ort, runOrt } from './onnx-util.ts';

const dir = mkdtempSync(join(tmpdir(), 'mixq-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const feeds = () => ({
  x: new ort.Tensor(
    'float32',
    new Float32Array(16).map((_, i) => Math.cos(i)),
    [2, 8],
  ),
  ids: new ort.Tensor('int64', BigInt64Array.from([0n, 9n]), [2]),
});

test('inline model -> external data: onnxruntime gives identical outputs, offsets aligned, model unchanged', async () => {
  const bytes = fixture('mlp.onnx');
  const model = readOnnx(bytes, { source: `${FIXTURES}/mlp.onnx` });
  const before = onnxToObject(model);
  const out = await writeOnnxWithExternalData(model, { location: 'mlp.onnx_data', sizeThreshold: 64 });
  assert.deepEqual(onnxToObject(model), before, 'the in-memory model is restored');
  assert.deepEqual(writeOnnx(model), bytes);
  await writeOnnxFile(join(dir, 'mlp.onnx'), model, {
    externalData: { location: 'mlp.onnx_data', sizeThreshold: 64 },
  });
  assert.equal(statSync(join(dir, 'mlp.onnx_data')).size, out.dataBytes);

  const reread = await readOnnxFile(join(dir, 'mlp.onnx'));
  try {
    const ws = listWeights(reread);
    const ext = ws.filter((w) => w.external);
    // Initializers of >= 64 bytes: embed (320), fc1 (512), fc1 bias (64, float_data), fc2 (256).
    assert.deepEqual(
      ext.map((w) => w.name),
      [
        'model.embed_tokens.weight',
        'model.layers.0.fc1.weight',
        'model.layers.0.fc1.bias',
        'model.layers.1.fc2.weight',
      ],
    );
    assert.ok(ext.every((w) => (w.external?.offset ?? 1) % 4096 === 0));
    const orig = listWeights(model);
    for (const w of ws) {
      const o = orig.find((x) => x.name === w.name);
      assert.ok(o);
      assert.deepEqual(
        await loadTensorFloat32(reread, w.tensor),
        await loadTensorFloat32(model, o.tensor),
        w.name,
      );
    }
  } finally {
    await reread.close();
  }
  assert.deepEqual(await runOrt(join(dir, 'mlp.onnx'), feeds()), await runOrt(bytes, feeds()));
});

test('external model -> new external file with another alignment; inputs are protected', async () => {
  const model = await readOnnxFile(`${FIXTURES}/external.onnx`);
  try {
    await writeOnnxFile(join(dir, 'ext2.onnx'), model, {
      externalData: { location: 'weights.bin', alignment: 64, sizeThreshold: 1 << 30 },
    });
    // Already-external tensors move to the new file whatever their size; inline ones stay inline.
    const m2 = readOnnx(new Uint8Array(readFileSync(join(dir, 'ext2.onnx'))));
    const ext = listWeights(m2).filter((w) => w.external);
    assert.equal(ext.length, 6);
    assert.ok(
      ext.every((w) => w.external?.location === 'weights.bin' && (w.external.offset ?? 1) % 64 === 0),
    );
    assert.deepEqual(
      await runOrt(join(dir, 'ext2.onnx'), feeds()),
      await runOrt(`${FIXTURES}/external.onnx`, feeds()),
    );
    await assert.rejects(writeOnnxFile(`${FIXTURES}/external.onnx`, model), /refusing to overwrite/);
    await assert.rejects(
      writeOnnxFile(join(dir, 'x.onnx'), model, { externalData: { location: '../x.onnx_data' } }),
      /leaves the model's folder/,
    );
    // The data file would land on the model's own external data file: refused before anything is written.
    await assert.rejects(
      writeOnnxFile(`${FIXTURES}/copy.onnx`, model, { externalData: { location: 'external.onnx_data' } }),
      /refusing to overwrite/,
    );
  } finally {
    await model.close();
  }
});

test('readOnnxFile checks the file size before reading it', async () => {
  await assert.rejects(
    readOnnxFile(`${FIXTURES}/mlp.onnx`, { limits: { maxModelBytes: 1000 } }),
    (e: unknown) => e instanceof MixqError && /2372 bytes/.test(e.message) && e.field === 'ModelProto',
  );
});

test('writeOnnx refuses a model over the protobuf limit and points at external data', () => {
  const model = readOnnx(fixture('mlp.onnx'), { limits: { maxModelBytes: 2400 } });
  const w = model.proto.graph?.initializer[0];
  assert.ok(w);
  w.raw_data = new Uint8Array(w.raw_data.length).fill(1);
  w.doc_string = 'x'.repeat(100);
  assert.throws(
    () => writeOnnx(model),
    (e: unknown) => e instanceof MixqError && /external data/.test(e.expected),
  );
});

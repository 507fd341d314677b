/**
 * ONNX read/write on fixtures made by the official onnx package (scripts/dev/make_onnx_fixtures.py):
 * every weight against the values onnx.numpy_helper recorded in the JSON sidecars, byte-identical and
 * structural round trips, edits that round-trip, and onnxruntime-node runs of what we write.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/bits.ts';
import { MixqError } from '../../src/core/errors.ts';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import {
  getTensorFloat32,
  listWeights,
  loadTensorBytes,
  loadTensorFloat32,
  loadWeightFloat32,
  type OnnxWeight,
  onnxToObject,
  readOnnx,
  setTensorBytes,
  setTensorFloat32,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { bytesSource } from '../../src/io/source.ts';
import { FIXTURES, fixture, ort, runOrt, type SidecarWeight, sidecar } from './onnx-util.ts';

function checkAgainstSidecar(
  weights: readonly OnnxWeight[],
  expected: readonly SidecarWeight[],
  values: Float32Array[],
) {
  assert.equal(weights.length, expected.length, 'weight count');
  const byKey = new Map(weights.map((w, i) => [`${w.path}|${w.name}`, i]));
  for (const e of expected) {
    const i = byKey.get(`${e.path}|${e.name}`);
    assert.ok(i !== undefined, `missing weight ${e.path} ${e.name}`);
    const w = weights[i] as OnnxWeight;
    assert.deepEqual(w.dims, e.dims, `${e.name} dims`);
    assert.equal(w.dataType, e.dataType, `${e.name} data_type`);
    assert.equal(w.kind, e.kind, `${e.name} kind`);
    assert.equal(w.storage, e.storage, `${e.name} storage`);
    const got = values[i] as Float32Array;
    assert.equal(got.length, e.values.length);
    for (let k = 0; k < got.length; k++) {
      assert.ok(
        Object.is(got[k], Math.fround(e.values[k] as number)),
        `${e.name}[${k}]: ${got[k]} vs ${e.values[k]}`,
      );
    }
  }
}

for (const name of ['mlp', 'constants', 'ifsub']) {
  test(`${name}.onnx: every weight matches the onnx package's reading`, () => {
    const model = readOnnx(fixture(`${name}.onnx`), { source: `${name}.onnx` });
    const weights = listWeights(model);
    checkAgainstSidecar(
      weights,
      sidecar(name),
      weights.map((w) => getTensorFloat32(w.tensor)),
    );
  });

  test(`${name}.onnx: write(read(bytes)) is byte-identical and re-decodes to the same structure`, () => {
    const bytes = fixture(`${name}.onnx`);
    const model = readOnnx(bytes);
    const out = writeOnnx(model);
    assert.deepEqual(out, bytes);
    assert.deepEqual(onnxToObject(readOnnx(out)), onnxToObject(model));
  });
}

test('if subgraph weights carry their graph path', () => {
  const paths = listWeights(readOnnx(fixture('ifsub.onnx'))).map((w) => `${w.path}|${w.name}|${w.kind}`);
  assert.deepEqual(paths.sort(), [
    'graph/outer_if.else_branch|else.w|constant',
    'graph/outer_if.then_branch/inner_if.then_branch|k_then|constant',
    'graph/outer_if.then_branch|then.w|initializer',
  ]);
});

test('fp16 stored in int32_data decodes bit-exactly', () => {
  const w = listWeights(readOnnx(fixture('mlp.onnx'))).find((x) => x.name === 'offset_f16') as OnnxWeight;
  assert.equal(w.storage, 'int32_data');
  assert.deepEqual(Array.from(getTensorFloat32(w.tensor)), [0.5, -1.25, 2, 65504]);
});

function mlpFeeds() {
  const x = new Float32Array(16).map((_, i) => Math.sin(i + 1));
  return {
    x: new ort.Tensor('float32', x, [2, 8]),
    ids: new ort.Tensor('int64', BigInt64Array.from([3n, 7n]), [2]),
  };
}

test('mlp: a model whose every weight was re-set runs in onnxruntime with identical outputs', async () => {
  const bytes = fixture('mlp.onnx');
  const model = readOnnx(bytes);
  for (const w of listWeights(model)) {
    if (w.dataType === 1) setTensorFloat32(w.tensor, getTensorFloat32(w.tensor));
    else setTensorBytes(w.tensor, new Uint8Array(fp16Bytes(w)));
  }
  const written = writeOnnx(model);
  assert.notDeepEqual(written, bytes, 'float_data/int32_data tensors are now raw_data');
  const a = await runOrt(bytes, mlpFeeds());
  const b = await runOrt(written, mlpFeeds());
  assert.deepEqual(b, a);
});

function fp16Bytes(w: OnnxWeight): Uint8Array {
  // the fp16 offset tensor: canonical raw bytes of its int32_data codes
  const v = getTensorFloat32(w.tensor);
  const out = new Uint8Array(v.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) dv.setUint16(2 * i, f32ToF16Bits(v[i] as number), true);
  return out;
}

test('mlp: a modified weight round-trips and changes the model as expected', async () => {
  const model = readOnnx(fixture('mlp.onnx'));
  const before = onnxToObject(model);
  const w2 = listWeights(model).find((w) => w.name === 'model.layers.1.fc2.weight') as OnnxWeight;
  setTensorFloat32(w2.tensor, new Float32Array(w2.elementCount)); // zero the Gemm weight
  const reread = readOnnx(writeOnnx(model));
  const w2b = listWeights(reread).find((w) => w.name === w2.name) as OnnxWeight;
  assert.deepEqual(Array.from(getTensorFloat32(w2b.tensor)), new Array(w2.elementCount).fill(0));
  // Everything else is untouched: opsets, metadata, value_info, node order, doc strings.
  const after = onnxToObject(reread) as typeof before & { graph: { initializer: unknown[] } };
  const b = before as typeof after;
  for (const k of ['ir_version', 'opset_import', 'producer_name', 'doc_string', 'metadata_props']) {
    assert.deepEqual(after[k], b[k], k);
  }
  for (const k of ['node', 'input', 'output', 'value_info', 'doc_string', 'name']) {
    assert.deepEqual((after.graph as Record<string, unknown>)[k], (b.graph as Record<string, unknown>)[k], k);
  }
  const others = (g: { initializer: { name: string }[] }) => g.initializer.filter((t) => t.name !== w2.name);
  assert.deepEqual(others(after.graph as never), others(b.graph as never));
  // With W2 = 0 the Gemm output is its bias for every row, so both output rows are equal.
  const out = await runOrt(writeOnnx(reread), mlpFeeds());
  const y = out.y?.data ?? [];
  assert.equal(y.length, 8);
  assert.deepEqual(y.slice(0, 4), y.slice(4));
});

test('setTensorFloat32 on an fp16 tensor rounds to nearest even', () => {
  const model = readOnnx(fixture('mlp.onnx'));
  const w = listWeights(model).find((x) => x.name === 'offset_f16') as OnnxWeight;
  const v = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e6, -3.25]);
  setTensorFloat32(w.tensor, v);
  const got = getTensorFloat32(readOnnx(writeOnnx(model)).proto.graph?.initializer.at(-1) as never);
  assert.deepEqual(
    Array.from(got),
    Array.from(v, (x) => f16BitsToF32(f32ToF16Bits(x))),
  );
  assert.equal(got[0], 1);
  assert.equal(got[1], 1 + 2 ** -9);
  assert.equal(got[2], Number.POSITIVE_INFINITY);
});

test('external data: weights load through the resolver and match the onnx package', async () => {
  const model = await readOnnxFile(`${FIXTURES}/external.onnx`);
  try {
    const weights = listWeights(model);
    assert.equal(weights.filter((w) => w.storage === 'external').length, 6);
    const values = await Promise.all(weights.map((w) => loadTensorFloat32(model, w.tensor)));
    checkAgainstSidecar(weights, sidecar('external'), values);
    assert.throws(() => getTensorFloat32(weights[0]?.tensor as never), MixqError);
    // Inline every external tensor, write one self-contained file, run it against the original.
    for (const w of weights)
      if (w.external) setTensorBytes(w.tensor, (await loadTensorBytes(model, w.tensor)).slice());
    const inline = writeOnnx(model);
    assert.equal(listWeights(readOnnx(inline)).filter((w) => w.storage === 'external').length, 0);
    const a = await runOrt(`${FIXTURES}/external.onnx`, mlpFeeds());
    const b = await runOrt(inline, mlpFeeds());
    assert.deepEqual(b, a);
  } finally {
    await model.close();
  }
});

test('external data: bad ranges, escaping paths and a missing resolver are MixqErrors', async () => {
  const bytes = fixture('external.onnx');
  const data = fixture('external.onnx_data');
  const noResolver = readOnnx(bytes, { source: 'external.onnx' });
  const first = listWeights(noResolver).find((w) => w.external) as OnnxWeight;
  await assert.rejects(loadTensorBytes(noResolver, first.tensor), /external\.onnx.*cannot be opened/);

  const short = readOnnx(bytes, {
    source: 'e.onnx',
    externalData: () => bytesSource(data.subarray(0, 1000), 'd'),
  });
  const last = listWeights(short)
    .filter((w) => w.external)
    .at(-1) as OnnxWeight;
  await assert.rejects(loadTensorBytes(short, last.tensor), (e: unknown) => {
    assert.ok(e instanceof MixqError);
    assert.match(e.message, /past the end/);
    assert.match(e.field, /external_data\.offset/);
    return true;
  });

  const model = readOnnx(bytes, { source: 'e.onnx', externalData: () => bytesSource(data) });
  const t = (listWeights(model).find((w) => w.external) as OnnxWeight).tensor;
  const loc = t.external_data.find((e) => e.key === 'location');
  if (loc) loc.value = '../../etc/passwd';
  await assert.rejects(loadTensorBytes(model, t), /leaves the model's folder/);
  if (loc) loc.value = 'external.onnx_data';
  const len = t.external_data.find((e) => e.key === 'length');
  if (len) len.value = '12';
  await assert.rejects(loadTensorBytes(model, t), /external length is 12 bytes/);
  if (len) len.value = '-5';
  await assert.rejects(loadTensorBytes(model, t), /not a byte count/);
});

test('bad inline data sizes and caps are MixqErrors naming the field', () => {
  const model = readOnnx(fixture('mlp.onnx'));
  const w1 = model.proto.graph?.initializer[1];
  assert.ok(w1);
  w1.raw_data = w1.raw_data.subarray(0, 17);
  const bytes = writeOnnx(model);
  assert.throws(
    () => readOnnx(bytes, { source: 'bad.onnx' }),
    (e: unknown) =>
      e instanceof MixqError &&
      e.source === 'bad.onnx' &&
      e.field === "graph.initializer[1] 'model.layers.0.fc1.weight'.raw_data" &&
      /512 bytes/.test(e.expected),
  );
  const ok = fixture('mlp.onnx');
  assert.throws(() => readOnnx(ok, { limits: { maxTensorCount: 3 } }), /too many tensors/);
  assert.throws(() => readOnnx(ok, { limits: { maxRank: 1 } }), /tensor has 2 dims/);
  assert.throws(() => readOnnx(ok, { limits: { maxModelBytes: 100 } }), /2372 bytes/);
  assert.throws(() => readOnnx(fixture('ifsub.onnx'), { limits: { maxGraphDepth: 1 } }), /nest too deeply/);
  // Wire-level damage is named down to the field (prescan.ts).
  assert.throws(
    () => readOnnx(new Uint8Array([0x0a, 0x05, 1])),
    (e: unknown) =>
      e instanceof MixqError && e.field === 'ModelProto.ir_version' && /wire type 2/.test(e.message),
  );
  const truncated = fixture('mlp.onnx').subarray(0, 1500);
  assert.throws(
    () => readOnnx(truncated, { source: 'cut.onnx' }),
    (e: unknown) =>
      e instanceof MixqError &&
      e.source === 'cut.onnx' &&
      e.field === 'ModelProto.graph' &&
      /exceeds/.test(e.message),
  );
  // A damaged tag deep inside: data_type (field 2, varint) of the first initializer rewritten as 32-bit.
  const deep = fixture('mlp.onnx').slice();
  const at = deep.findIndex((b, i) => b === 0x10 && deep[i + 1] === 0x01 && deep[i + 2] === 0x42);
  deep[at] = 0x15;
  assert.throws(
    () => readOnnx(deep),
    (e: unknown) =>
      e instanceof MixqError &&
      e.field === 'ModelProto.graph.initializer[0].data_type' &&
      e.expected === 'wire type 0',
  );
  // An empty NodeProto costs 2 bytes on disk and ~160 decoded: the budget stops a flood of them.
  // ModelProto { ir_version: 8, graph (field 7, 40960 bytes as varint 80 c0 02) { 20480 x empty node } }
  const nodes = new Array(20480).fill(0).flatMap(() => [0x0a, 0x00]);
  const flood = Uint8Array.from([0x08, 0x08, 0x3a, 0x80, 0xc0, 0x02, ...nodes]);
  assert.throws(() => readOnnx(flood, { limits: { maxDecodedBytes: 1_000_000 } }), /too much memory/);
  assert.doesNotThrow(() => readOnnx(flood));
  assert.throws(() => readOnnx(new Uint8Array(0)), /ir_version is missing/);
});

test('sparse initializers: densified values match the onnx package, round trip runs in onnxruntime', async () => {
  const bytes = fixture('sparse.onnx');
  const model = readOnnx(bytes, { source: 'sparse.onnx' });
  const weights = listWeights(model);
  assert.deepEqual(
    weights.map((w) => [w.kind, w.name, w.dims]),
    [
      ['sparse-initializer', 'sparse.w', [8, 4]],
      ['sparse-initializer', 'sparse.b', [4]],
    ],
  );
  const dense = await Promise.all(weights.map((w) => loadWeightFloat32(model, w)));
  checkAgainstSidecar(weights, sidecar('sparse'), dense);
  const out = writeOnnx(model);
  assert.deepEqual(out, bytes);
  const feeds = {
    x: new ort.Tensor(
      'float32',
      new Float32Array(16).map((_, i) => i - 7),
      [2, 8],
    ),
  };
  assert.deepEqual(await runOrt(out, feeds), await runOrt(bytes, feeds));
  // An index past the dense size is a MixqError naming it.
  const idx = weights[0]?.sparse?.indices;
  assert.ok(idx);
  setTensorBytes(idx, new Uint8Array(new BigInt64Array([1n, 5n, 6n, 17n, 22n, 32n]).buffer));
  await assert.rejects(
    loadWeightFloat32(model, weights[0] as OnnxWeight),
    /sparse_tensor\.indices\[5\].*out of range/,
  );
});

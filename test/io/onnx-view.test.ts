/** The ModelView of ONNX models: roles, consumers, layers and quantizable flags. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TensorInfo } from '../../src/graph/model.ts';
import {
  type ModelProto,
  onnxMessageType,
  onnxModelView,
  readOnnx,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { fixture } from './onnx-util.ts';

const summary = (t: TensorInfo) => [t.name, t.role, t.layer ?? null, t.quantizable];

test('mlp fixture: embedding, matmul, gemm (transB), biases, norm; layers from names', () => {
  const model = readOnnx(fixture('mlp.onnx'));
  // The default size threshold (1024 elements) leaves these toy weights alone.
  assert.ok(onnxModelView(model).tensors.every((t) => !t.quantizable));
  const view = onnxModelView(model, { minQuantizableElements: 16 });
  assert.equal(view.format, 'onnx');
  assert.deepEqual(view.tensors.map(summary), [
    ['model.embed_tokens.weight', 'embedding', null, true],
    ['model.layers.0.fc1.weight', 'matmul-weight', 0, true],
    ['model.layers.0.fc1.bias', 'bias', 0, false],
    ['model.layers.1.fc2.weight', 'gemm-weight', 1, true],
    ['model.layers.1.fc2.bias', 'bias', 1, false],
    ['model.norm.weight', 'norm', null, false],
    ['model.norm.bias', 'norm', null, false],
    ['offset_f16', 'other', null, false],
  ]);
  // Per-channel axis from the consumer: Gather rows, MatMul B columns, Gemm B rows (transB = 1).
  assert.deepEqual(
    view.tensors.map((t) => t.outputAxis),
    [0, 1, undefined, 0, undefined, undefined, undefined, undefined],
  );
  const w1 = view.tensors[1];
  assert.deepEqual(w1?.consumers, [{ op: 'MatMul', node: 'layers.0.fc1', inputIndex: 1 }]);
  assert.deepEqual(w1?.shape, [8, 16]);
  assert.equal(w1?.byteLength, 512);
  assert.equal(view.metadata.author, 'mixq');
  assert.equal(view.metadata['onnx.producer_name'], 'mixq-fixtures');
});

test('constants fixture (paddle style): positional layers over quantizable ops', () => {
  const view = onnxModelView(readOnnx(fixture('constants.onnx')), { minQuantizableElements: 16 });
  assert.deepEqual(
    view.tensors.filter((t) => t.quantizable).map((t) => t.outputAxis),
    [0, 1],
  );
  assert.deepEqual(view.tensors.map(summary), [
    ['conv2d_0.w_0', 'conv-weight', 0, true],
    ['conv2d_0.b_0', 'bias', 0, false],
    ['batch_norm_0.w_0', 'norm', null, false],
    ['batch_norm_0.b_0', 'norm', null, false],
    ['batch_norm_0.w_1', 'norm', null, false],
    ['batch_norm_0.w_2', 'norm', null, false],
    ['linear_0.w_0', 'matmul-weight', 1, true],
  ]);
});

test('if fixture: subgraph weights are named by graph path and see their consumers', () => {
  const view = onnxModelView(readOnnx(fixture('ifsub.onnx')));
  const byName = new Map(view.tensors.map((t) => [t.name, t]));
  assert.deepEqual(byName.get('graph/outer_if.then_branch/then.w')?.consumers, [
    { op: 'Mul', node: 'then_mul', inputIndex: 1 },
  ]);
  assert.deepEqual(byName.get('graph/outer_if.else_branch/else.w')?.consumers, [
    { op: 'Add', node: 'else_add', inputIndex: 1 },
  ]);
  assert.equal(view.tensors.length, 3);
});

/** A hand-built model: Constant -> Transpose -> MatMul, an outer weight used inside an If, and RMSNorm as primitives. */
function handmade(): Uint8Array {
  const f32 = (name: string, dims: number[]) => ({
    name,
    dims,
    data_type: 1,
    raw_data: new Uint8Array(4 * dims.reduce((a, b) => a * b, 1)),
  });
  const node = (
    op_type: string,
    input: string[],
    output: string[],
    name: string,
    attribute: unknown[] = [],
  ) => ({
    op_type,
    input,
    output,
    name,
    attribute,
  });
  const sub = {
    name: 'then',
    node: [node('MatMul', ['x', 'outer.w'], ['t'], 'then_mm')],
    output: [{ name: 't' }],
  };
  const obj = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [{ name: 'x' }, { name: 'c' }],
      output: [{ name: 'y' }, { name: 'z' }],
      initializer: [f32('outer.w', [8, 8]), f32('rms.weight', [8])],
      node: [
        node('Constant', [], ['wt'], 'const_wt', [{ name: 'value', type: 4, t: f32('wt', [8, 8]) }]),
        node('Transpose', ['wt'], ['w'], 'transpose_w'),
        node('MatMul', ['x', 'w'], ['h'], 'mm'),
        node('Mul', ['h', 'h'], ['sq'], 'sq'),
        node('ReduceMean', ['sq'], ['ms'], 'mean'),
        node('Sqrt', ['ms'], ['rms'], 'sqrt'),
        node('Div', ['h', 'rms'], ['hn'], 'div'),
        node('Mul', ['hn', 'rms.weight'], ['y'], 'scale'),
        node('If', ['c'], ['z'], 'branch', [
          { name: 'then_branch', type: 5, g: sub },
          { name: 'else_branch', type: 5, g: sub },
        ]),
      ],
    },
  };
  const T = onnxMessageType('ModelProto');
  return T.encode(T.fromObject(obj)).finish();
}

test('pass-through chains, outer-scope uses in subgraphs, and RMSNorm written as primitive ops', () => {
  const model = readOnnx(handmade());
  const view = onnxModelView(model, { minQuantizableElements: 16 });
  const byName = new Map(view.tensors.map((t) => [t.name, t]));
  assert.equal(byName.get('wt')?.role, 'matmul-weight');
  assert.equal(byName.get('wt')?.outputAxis, undefined, 'axes moved by the Transpose');
  assert.equal(byName.get('outer.w')?.outputAxis, 1);
  assert.deepEqual(byName.get('wt')?.consumers, [{ op: 'Transpose', node: 'transpose_w', inputIndex: 0 }]);
  assert.equal(byName.get('rms.weight')?.role, 'norm');
  const outer = byName.get('outer.w');
  assert.equal(outer?.role, 'matmul-weight');
  assert.deepEqual(
    outer?.consumers.map((c) => c.node),
    ['then_mm', 'then_mm'],
  );
  // Written from scratch by protobufjs and re-read: stable.
  assert.deepEqual(writeOnnx(readOnnx(writeOnnx(model))), writeOnnx(model));
  const proto: ModelProto = model.proto;
  assert.equal(proto.graph?.node.length, 9);
});

test('openModelView (src/io/index.ts) sniffs ONNX and returns its view', async () => {
  const { openModelView } = await import('../../src/io/index.ts');
  const { bytesSource } = await import('../../src/io/source.ts');
  const view = await openModelView(bytesSource(fixture('constants.onnx'), 'constants.onnx'));
  assert.equal(view.format, 'onnx');
  assert.equal(view.tensors.length, 7);
  await assert.rejects(
    openModelView(bytesSource(new Uint8Array([8, 8, 0xff]), 'x.onnx')),
    /x\.onnx: ModelProto/,
  );
});

test('sparse initializers get roles from their consumers', () => {
  const view = onnxModelView(readOnnx(fixture('sparse.onnx')), { minQuantizableElements: 16 });
  assert.deepEqual(view.tensors.map(summary), [
    ['sparse.w', 'matmul-weight', 0, true],
    ['sparse.b', 'bias', 0, false],
  ]);
});

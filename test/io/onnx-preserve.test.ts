/**
 * What a rewrite must keep: fields our schema does not know (a newer ONNX) at every level, and weights in
 * function bodies and training graphs, which listWeights must also reach.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  getTensorFloat32,
  listWeights,
  type OnnxWeight,
  onnxMessageType,
  readOnnx,
  setTensorFloat32,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { fixture } from './onnx-util.ts';

/** Protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
/** A length-delimited field with tag number `field`. */
const lenField = (field: number, payload: number[]) => [
  ...varint((field << 3) | 2),
  ...varint(payload.length),
  ...payload,
];

test('unknown fields survive read -> edit -> write, at model and tensor level', () => {
  // ModelProto field 99 (unknown) and, inside the first initializer, TensorProto field 77 (unknown).
  const base = fixture('mlp.onnx');
  const model0 = readOnnx(base);
  const T = onnxMessageType('TensorProto');
  const t0 = model0.proto.graph?.initializer[0];
  assert.ok(t0);
  const tensorBytes = [
    ...T.encode(T.fromObject(T.toObject(t0 as never))).finish(),
    ...lenField(77, [1, 2, 3]),
  ];
  // Rebuild: replace initializer[0] by the extended encoding via a raw splice of a fresh graph.
  const G = onnxMessageType('GraphProto');
  const g = model0.proto.graph as never;
  const graphObj = G.toObject(g) as { initializer: unknown[] };
  graphObj.initializer = graphObj.initializer.slice(1);
  const graphBytes = [...G.encode(G.fromObject(graphObj)).finish(), ...lenField(5, tensorBytes)];
  const M = onnxMessageType('ModelProto');
  const mObj = M.toObject(model0.proto as never) as Record<string, unknown>;
  delete mObj.graph;
  const bytes = Uint8Array.from([
    ...M.encode(M.fromObject(mObj)).finish(),
    ...lenField(7, graphBytes),
    ...lenField(99, [0x68, 0x69]),
  ]);

  const model = readOnnx(bytes);
  const w = listWeights(model).find((x) => x.name === 'model.embed_tokens.weight') as OnnxWeight;
  const doubled = getTensorFloat32(w.tensor).map((v) => v * 2);
  setTensorFloat32(w.tensor, doubled);
  const out = writeOnnx(model);
  const hex = Buffer.from(out).toString('hex');
  assert.ok(
    hex.includes(Buffer.from(lenField(99, [0x68, 0x69])).toString('hex')),
    'model-level unknown field',
  );
  assert.ok(hex.includes(Buffer.from(lenField(77, [1, 2, 3])).toString('hex')), 'tensor-level unknown field');
  const again = listWeights(readOnnx(out)).find((x) => x.name === w.name) as OnnxWeight;
  assert.deepEqual(getTensorFloat32(again.tensor), doubled);
});

test('weights in function bodies and training graphs are listed with their path', () => {
  const M = onnxMessageType('ModelProto');
  const tensor = (name: string, v: number[]) => ({
    name,
    dims: [v.length],
    data_type: 1,
    float_data: v,
  });
  const bytes = M.encode(
    M.fromObject({
      ir_version: 10,
      opset_import: [{ domain: '', version: 21 }],
      graph: { name: 'g', node: [] },
      functions: [
        {
          name: 'f',
          domain: 'custom',
          node: [
            {
              op_type: 'Constant',
              output: ['fw'],
              attribute: [{ name: 'value', type: 4, t: tensor('fw', [1, 2]) }],
            },
          ],
        },
      ],
      training_info: [{ algorithm: { name: 'train', initializer: [tensor('lr', [0.01])] } }],
    }),
  ).finish();
  const ws = listWeights(readOnnx(bytes)).map((w) => [
    w.path,
    w.name,
    w.kind,
    Array.from(getTensorFloat32(w.tensor)),
  ]);
  assert.deepEqual(ws, [
    ['training_info[0].algorithm', 'lr', 'initializer', [Math.fround(0.01)]],
    ['functions[0]', 'fw', 'constant', [1, 2]],
  ]);
});

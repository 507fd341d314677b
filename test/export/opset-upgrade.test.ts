// ai.onnx opset upgrade 9..20 -> 21 (src/export/onnx/opset.ts).
//  1. One tiny model per converted operator, built at the opset where the old form lives (9, 10, 11 or
//     16), run in onnxruntime-node before and after upgradeDefaultOpset: outputs must be bit-identical.
//     Softmax / Hardmax with axis 1 on a rank-3 input (old and new meanings differ) must also differ from
//     a naive upgrade that only bumps the opset, so the test fails if the rewrite is skipped.
//  2. Refusals: Upsample, an experimental op, a Dropout mask at opset 9, BatchNormalization training
//     outputs, Resize-10, opset 8: MixqError naming the node; canUpgradeOpset false and the model unchanged.
//  3. quantizeOnnxWeights on an opset-9 model with blocked int4 DequantizeLinear: raised to 21, runs, and
//     matches its simulation.
//  4. PP-OCRv4 rec (opset 9): after the upgrade, everything after the AveragePool (whose opset-19 kernel
//     sums in another order) is bit-identical with graph optimizations off; the whole model with default
//     optimizations differs by < 1e-5 of the output scale (printed).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { floatBytes, int64Bytes, makeNode, makeTensor, opsetVersion } from '../../src/export/onnx/build.ts';
import { canUpgradeOpset, upgradeDefaultOpset } from '../../src/export/onnx/opset.ts';
import { quantizeOnnxWeights } from '../../src/export/onnx/quantize.ts';
import type { NodeProto, TensorProto } from '../../src/io/onnx/proto-types.ts';
import {
  DATA_TYPE_CODES as C,
  type OnnxModel,
  onnxMessageType,
  readOnnx,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { loadOcrLines, ocrInput, ocrModelPath } from '../../src/runtime/bundled.node.ts';
import { Rng } from '../../src/core/rng.ts';
import { ort } from '../io/onnx-util.ts';

type Shape = readonly number[] | undefined;

/** A value info; `shape` undefined = element type only (rank unknown to the converter). */
function vi(name: string, elemType: number, shape: Shape): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        ...(shape ? { shape: { dim: shape.map((d) => ({ dim_value: d })) } } : {}),
      },
    },
  };
}

interface Spec {
  opset: number;
  nodes: NodeProto[];
  inits?: TensorProto[];
  inputs: [string, number, Shape][];
  outputs: [string, number, Shape][];
}

/** Float outputs of unknown shape, by name. */
function floatOutputs(...names: string[]): [string, number, Shape][] {
  return names.map((n) => [n, F, undefined]);
}

function build(s: Spec): Uint8Array {
  const proto = onnxMessageType('ModelProto').fromObject({
    ir_version: s.opset >= 13 ? 7 : 5,
    producer_name: 'mixq-test',
    opset_import: [{ domain: '', version: s.opset }],
    graph: {
      name: 'g',
      input: s.inputs.map(([n, t, sh]) => vi(n, t, sh)),
      output: s.outputs.map(([n, t, sh]) => vi(n, t, sh)),
    },
  });
  const model = readOnnx(new Uint8Array(onnxMessageType('ModelProto').encode(proto).finish()), {
    source: 't.onnx',
  });
  model.proto.graph!.node = s.nodes;
  model.proto.graph!.initializer = s.inits ?? [];
  return writeOnnx(model);
}

function upgrade(bytes: Uint8Array): Uint8Array {
  const m = readOnnx(bytes, { source: 't.onnx' });
  assert.ok(canUpgradeOpset(m.proto, 21));
  upgradeDefaultOpset(m.proto, 21, 't.onnx');
  assert.equal(opsetVersion(m.proto, ''), 21);
  return writeOnnx(m);
}

/** Only bumps the opset number (what a converter that forgot an operator would produce). */
function naive(bytes: Uint8Array): Uint8Array {
  const m = readOnnx(bytes, { source: 't.onnx' });
  m.proto.opset_import = [onnxMessageType('OperatorSetIdProto').create({ domain: '', version: 21 }) as never];
  m.proto.ir_version = 10;
  return writeOnnx(m);
}

type Outs = Record<string, Uint8Array>;

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, opt = 'all'): Promise<Outs> {
  const s = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: opt as 'all',
  });
  try {
    const o = await s.run(feeds);
    const res: Outs = {};
    for (const [k, t] of Object.entries(o)) {
      const d = t.data as Float32Array;
      res[k] = new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
    }
    return res;
  } finally {
    await s.release();
  }
}

async function sameBeforeAfter(
  label: string,
  s: Spec,
  feeds: Record<string, ort.Tensor>,
  mustDifferFromNaive = false,
): Promise<void> {
  const bytes = build(s);
  const before = await run(bytes, feeds);
  const after = await run(upgrade(bytes), feeds);
  assert.deepEqual(Object.keys(after).sort(), Object.keys(before).sort(), label);
  for (const k of Object.keys(before)) assert.deepEqual(after[k], before[k], `${label}: output ${k}`);
  if (mustDifferFromNaive) {
    // a naive bump either fails to load (signature changed) or computes something else
    const n = await run(naive(bytes), feeds).catch(() => undefined);
    assert.ok(
      n === undefined || Object.keys(before).some((k) => !Buffer.from(n[k]!).equals(Buffer.from(before[k]!))),
      `${label}: the naive upgrade should change the result`,
    );
  }
}

const rng = new Rng(7);
const randn = (n: number, std = 1): Float32Array =>
  Float32Array.from({ length: n }, () => rng.nextNormal() * std);
const f32 = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
const i64init = (name: string, v: number[], dims = [v.length]): TensorProto =>
  makeTensor(name, C.INT64, dims, int64Bytes(v));
const F = C.FLOAT;

test('Slice-1 and TopK-1 (opset 9): attributes -> inputs, bit-identical', async () => {
  const x = f32(randn(4 * 6 * 5), [4, 6, 5]);
  const slice = makeNode('Slice', ['x'], ['s'], {
    name: 'slice',
    attrs: { starts: [1, -4], ends: [1000000, 5], axes: [0, 1] },
  });
  const slice2 = makeNode('Slice', ['x'], ['s2'], {
    name: 'slice_noaxes',
    attrs: { starts: [0, 1, 2], ends: [2, 3, 4] },
  });
  const topk = makeNode('TopK', ['x'], ['v', 'i'], { name: 'topk', attrs: { k: 3, axis: 1 } });
  await sameBeforeAfter(
    'slice/topk',
    {
      opset: 9,
      nodes: [slice, slice2, topk],
      inputs: [['x', F, [4, 6, 5]]],
      outputs: [
        ['s', F, undefined],
        ['s2', F, undefined],
        ['v', F, undefined],
        ['i', C.INT64, undefined],
      ],
    },
    { x },
  );
});

test('Slice-1 with an INT64_MAX end keeps the exact int64 value', async () => {
  const slice = makeNode('Slice', ['x'], ['s'], { name: 'slice', attrs: { starts: [1], axes: [0] } });
  // INT64_MAX as a decoded file holds it (a Long); a JS number would round it to 2^63
  slice.attribute = [
    ...slice.attribute,
    onnxMessageType('AttributeProto').fromObject({
      name: 'ends',
      type: 7,
      ints: ['9223372036854775807'],
    }) as never,
  ];
  const spec: Spec = { opset: 9, nodes: [slice], inputs: [['x', F, [4]]], outputs: [['s', F, undefined]] };
  const m = readOnnx(build(spec), { source: 't' });
  upgradeDefaultOpset(m.proto, 21, 't');
  const n = m.proto.graph!.node[0]!;
  const t = m.proto.graph!.initializer.find((i) => i.name === n.input[2])!;
  assert.equal(new DataView(t.raw_data.buffer, t.raw_data.byteOffset).getBigInt64(0, true), 2n ** 63n - 1n);
  await sameBeforeAfter('slice int64 max', spec, { x: f32(randn(4), [4]) });
});

test('Clip-6 (opset 9): min/max attributes -> inputs, old +-FLT_MAX defaults kept (inf clipped)', async () => {
  const data = randn(2 * 3 * 4, 4);
  data[0] = Infinity;
  data[1] = -Infinity;
  data[2] = NaN;
  const x = f32(data, [2, 3, 4]);
  await sameBeforeAfter(
    'clip',
    {
      opset: 9,
      nodes: [
        makeNode('Clip', ['x'], ['a'], { name: 'relu6' }),
        makeNode('Clip', ['x'], ['b'], { name: 'lo_only' }),
        makeNode('Clip', ['x'], ['c'], { name: 'none' }),
        makeNode('Identity', ['x'], ['xu'], { name: 'id' }),
        makeNode('Clip', ['xu'], ['d'], { name: 'unknown_type' }),
      ].map((n, i) => {
        const attrs = [
          [
            ['min', 0],
            ['max', 6],
          ],
          [['min', -0.5]],
          [],
          [],
          [
            ['min', -1.25],
            ['max', 2.5],
          ],
        ][i]!;
        n.attribute = attrs.map(
          ([k, v]) => onnxMessageType('AttributeProto').create({ name: k, type: 1, f: v }) as never,
        );
        return n;
      }),
      inputs: [['x', F, [2, 3, 4]]],
      outputs: floatOutputs('a', 'b', 'c', 'd'),
    },
    { x },
  );
});

test('Pad-2 (opset 9): pads/value -> inputs (constant with value, reflect, edge)', async () => {
  const x = f32(randn(1 * 2 * 4 * 5), [1, 2, 4, 5]);
  const pad = (name: string, out: string, mode: string, value?: number): NodeProto => {
    const n = makeNode('Pad', ['x'], [out], { name, attrs: { pads: [0, 0, 1, 2, 0, 0, 2, 1], mode } });
    if (value !== undefined)
      n.attribute = [
        ...n.attribute,
        onnxMessageType('AttributeProto').create({ name: 'value', type: 1, f: value }) as never,
      ];
    return n;
  };
  await sameBeforeAfter(
    'pad',
    {
      opset: 9,
      nodes: [
        pad('p1', 'a', 'constant', 1.5),
        pad('p2', 'b', 'constant'),
        pad('p3', 'c', 'reflect'),
        pad('p4', 'd', 'edge'),
      ],
      inputs: [['x', F, [1, 2, 4, 5]]],
      outputs: floatOutputs('a', 'b', 'c', 'd'),
    },
    { x },
  );
});

test('Scatter-9 -> ScatterElements, Dropout-7 / Dropout-10 (ratio -> input), BatchNormalization-9 (one output)', async () => {
  const x = f32(randn(3 * 4), [3, 4]);
  const u = f32(randn(2 * 4), [2, 4]);
  const c = f32(randn(2 * 3 * 2 * 2), [2, 3, 2, 2]);
  const bn = ['scale', 'bias', 'mean', 'var'].map((n, i) =>
    makeTensor(n, F, [3], floatBytes(Float32Array.from([1 + i, 0.5, 0.3 + i]), 'float32')),
  );
  await sameBeforeAfter(
    'scatter/dropout/bn',
    {
      opset: 9,
      nodes: [
        makeNode('Scatter', ['x', 'idx', 'u'], ['s'], { name: 'scatter', attrs: { axis: 0 } }),
        makeNode('Dropout', ['x'], ['d'], { name: 'drop' }),
        makeNode('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['b'], { name: 'bn' }),
      ],
      inits: [i64init('idx', [1, 0, 2, 2, 0, 1, 1, 0], [2, 4]), ...bn],
      inputs: [
        ['x', F, [3, 4]],
        ['u', F, [2, 4]],
        ['c', F, [2, 3, 2, 2]],
      ],
      outputs: floatOutputs('s', 'd', 'b'),
    },
    { x, u, c },
  );
  // deprecated Scatter-11 (onnxruntime refuses to load it): upgraded, it computes what Scatter-9 did
  const scatterSpec = (opset: number): Spec => ({
    opset,
    nodes: [makeNode('Scatter', ['x', 'idx', 'u'], ['s'], { name: 'scatter', attrs: { axis: 1 } })],
    inits: [i64init('idx', [1, 0, 2, 3, 0, 1, 1, -1], [2, 4])],
    inputs: [
      ['x', F, [3, 4]],
      ['u', F, [2, 4]],
    ],
    outputs: [['s', F, undefined]],
  });
  assert.deepEqual(
    await run(upgrade(build(scatterSpec(11))), { x, u }),
    await run(build(scatterSpec(9)), { x, u }),
  );
  const drop10 = makeNode('Dropout', ['x'], ['d'], { name: 'drop' });
  drop10.attribute = [onnxMessageType('AttributeProto').create({ name: 'ratio', type: 1, f: 0.3 }) as never];
  await sameBeforeAfter(
    'dropout-10',
    {
      opset: 10,
      nodes: [drop10],
      inputs: [['x', F, [3, 4]]],
      outputs: [['d', F, undefined]],
    },
    { x },
  );
});

test('Softmax / LogSoftmax / Hardmax (opset 9): 2-D coercion rewritten exactly, differs from a naive bump', async () => {
  const data = randn(2 * 3 * 4, 2);
  // Hardmax ties would hide nothing; make one row have a clear maximum across the coerced 2-D row
  const x = f32(data, [2, 3, 4]);
  const nodes = [
    makeNode('Softmax', ['x'], ['a'], { name: 'sm_axis1', attrs: { axis: 1 } }),
    makeNode('Softmax', ['x'], ['b'], { name: 'sm_default' }), // default axis 1
    makeNode('LogSoftmax', ['x'], ['c'], { name: 'lsm_axis1', attrs: { axis: 1 } }),
    makeNode('Hardmax', ['x'], ['d'], { name: 'hm_axis1', attrs: { axis: 1 } }),
    makeNode('Softmax', ['x'], ['e'], { name: 'sm_last', attrs: { axis: 2 } }), // = axis -1: kept
    makeNode('Softmax', ['xu'], ['f'], { name: 'sm_unknown_rank', attrs: { axis: 1 } }),
    makeNode('Softmax', ['x'], ['g'], { name: 'sm_axis0', attrs: { axis: 0 } }),
  ];
  const spec: Spec = {
    opset: 9,
    nodes,
    inputs: [
      ['x', F, [2, 3, 4]],
      ['xu', F, undefined],
    ],
    outputs: floatOutputs('a', 'b', 'c', 'd', 'e', 'f', 'g'),
  };
  const feeds = { x, xu: f32(data, [2, 3, 4]) };
  await sameBeforeAfter('softmax', spec, feeds, true);
  // each rewritten op on its own must differ from the naive bump (so no single rewrite can be skipped)
  for (const name of ['sm_axis1', 'sm_default', 'lsm_axis1', 'hm_axis1', 'sm_unknown_rank', 'sm_axis0']) {
    const n = nodes.find((m) => m.name === name)!;
    await sameBeforeAfter(
      name,
      { ...spec, nodes: [n], outputs: [[n.output[0]!, F, undefined]] },
      feeds,
      true,
    );
  }
  // the last-axis case is converted in place (axis -1), the others through Flatten / Reshape
  const m = readOnnx(upgrade(build(spec)), { source: 't' });
  const ops = m.proto.graph!.node.map((n) => n.op_type);
  assert.equal(ops.filter((o) => o === 'Flatten').length, 6);
});

test('Squeeze / Unsqueeze / ReduceSum / ReduceMean / Split (opset 9): axes and split -> inputs', async () => {
  const x = f32(randn(2 * 1 * 5 * 1), [2, 1, 5, 1]);
  await sameBeforeAfter(
    'axes',
    {
      opset: 9,
      nodes: [
        makeNode('Squeeze', ['x'], ['a'], { name: 'sq', attrs: { axes: [1, 3] } }),
        makeNode('Squeeze', ['x'], ['b'], { name: 'sq_all' }),
        makeNode('Unsqueeze', ['x'], ['c'], { name: 'unsq', attrs: { axes: [0, 5] } }),
        makeNode('ReduceSum', ['x'], ['d'], { name: 'rsum', attrs: { axes: [0, 2], keepdims: 0 } }),
        makeNode('ReduceSum', ['x'], ['e'], { name: 'rsum_all' }),
        makeNode('ReduceMean', ['x'], ['f'], { name: 'rmean', attrs: { axes: [2] } }),
        makeNode('Split', ['x'], ['g1', 'g2'], { name: 'split', attrs: { axis: 2, split: [2, 3] } }),
        makeNode('Split', ['x'], ['h1', 'h2'], { name: 'split_eq', attrs: { axis: 0 } }),
      ],
      inputs: [['x', F, [2, 1, 5, 1]]],
      outputs: floatOutputs('a', 'b', 'c', 'd', 'e', 'f', 'g1', 'g2', 'h1', 'h2'),
    },
    { x },
  );
});

test('Resize-11 (opset 11), RoiAlign-10 (output_half_pixel), GridSample-16 (bilinear -> linear)', async () => {
  const x = f32(randn(1 * 2 * 4 * 4), [1, 2, 4, 4]);
  await sameBeforeAfter(
    'resize-11',
    {
      opset: 11,
      nodes: [
        makeNode('Resize', ['x', 'roi', 'scales'], ['r'], {
          name: 'resize',
          attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' },
        }),
        makeNode('Resize', ['x', 'roi', 'scales'], ['r2'], {
          name: 'resize_nearest',
          attrs: { mode: 'nearest' },
        }),
      ],
      inits: [
        makeTensor('roi', F, [0], new Uint8Array(0)),
        makeTensor('scales', F, [4], floatBytes(Float32Array.from([1, 1, 1.5, 2]), 'float32')),
      ],
      inputs: [['x', F, [1, 2, 4, 4]]],
      outputs: floatOutputs('r', 'r2'),
    },
    { x },
  );
  const rois = f32(Float32Array.from([0.3, 0.2, 2.7, 3.1, 1, 0.5, 3.5, 2.5]), [2, 4]);
  await sameBeforeAfter(
    'roialign-10',
    {
      opset: 10,
      nodes: [
        makeNode('RoiAlign', ['x', 'rois', 'bi'], ['y'], {
          name: 'roi',
          attrs: { output_height: 2, output_width: 3, sampling_ratio: 2 },
        }),
      ],
      inits: [i64init('bi', [0, 0])],
      inputs: [
        ['x', F, [1, 2, 4, 4]],
        ['rois', F, [2, 4]],
      ],
      outputs: [['y', F, undefined]],
    },
    { x, rois },
    true,
  );
  const grid = f32(Float32Array.from(randn(1 * 3 * 3 * 2, 0.7)), [1, 3, 3, 2]);
  await sameBeforeAfter(
    'gridsample-16',
    {
      opset: 16,
      nodes: [
        makeNode('GridSample', ['x', 'grid'], ['y'], { name: 'gs', attrs: { mode: 'bilinear' } }),
        makeNode('GridSample', ['x', 'grid'], ['z'], { name: 'gs_bicubic', attrs: { mode: 'bicubic' } }),
      ],
      inputs: [
        ['x', F, [1, 2, 4, 4]],
        ['grid', F, [1, 3, 3, 2]],
      ],
      outputs: floatOutputs('y', 'z'),
    },
    { x, grid },
  );
});

test('If-1 subgraphs (opset 9) are converted too', async () => {
  const branch = (name: string, axis: number): Record<string, unknown> => ({
    name,
    node: [
      {
        op_type: 'Softmax',
        input: ['x'],
        output: [`${name}_s`],
        name: `${name}_sm`,
        attribute: [{ name: 'axis', type: 2, i: axis }],
      },
      {
        op_type: 'Unsqueeze',
        input: [`${name}_s`],
        output: [`${name}_o`],
        name: `${name}_unsq`,
        attribute: [{ name: 'axes', type: 7, ints: [0] }],
      },
    ],
    output: [vi(`${name}_o`, F, undefined)],
  });
  const ifNode = onnxMessageType('NodeProto').fromObject({
    op_type: 'If',
    input: ['cond'],
    output: ['y'],
    name: 'if',
    attribute: [
      { name: 'then_branch', type: 5, g: branch('then', 1) },
      { name: 'else_branch', type: 5, g: branch('else', 0) },
    ],
  }) as unknown as NodeProto;
  const x = f32(randn(2 * 3 * 4), [2, 3, 4]);
  for (const c of [true, false])
    await sameBeforeAfter(
      `if ${c}`,
      {
        opset: 9,
        nodes: [ifNode],
        inputs: [
          ['x', F, [2, 3, 4]],
          ['cond', C.BOOL, []],
        ],
        outputs: [['y', F, undefined]],
      },
      { x, cond: new ort.Tensor('bool', Uint8Array.from([c ? 1 : 0]), []) },
      true,
    );
});

test('refusals name the node; canUpgradeOpset is a dry run', () => {
  const cases: [string, Spec, RegExp][] = [
    [
      'upsample',
      {
        opset: 9,
        nodes: [makeNode('Upsample', ['x', 'sc'], ['y'], { name: 'up1', attrs: { mode: 'nearest' } })],
        inits: [makeTensor('sc', F, [4], floatBytes(Float32Array.from([1, 1, 2, 2]), 'float32'))],
        inputs: [['x', F, [1, 1, 2, 2]]],
        outputs: [['y', F, undefined]],
      },
      /node "up1" \(Upsample\): Upsample is deprecated/,
    ],
    [
      'experimental',
      {
        opset: 9,
        nodes: [makeNode('ImageScaler', ['x'], ['y'], { name: 'scaler' })],
        inputs: [['x', F, [1, 1, 2, 2]]],
        outputs: [['y', F, undefined]],
      },
      /node "scaler" \(ImageScaler\): ImageScaler is not a standard ai.onnx operator/,
    ],
    [
      'dropout mask',
      {
        opset: 9,
        nodes: [makeNode('Dropout', ['x'], ['y', 'm'], { name: 'drop_mask' })],
        inputs: [['x', F, [2]]],
        outputs: floatOutputs('y', 'm'),
      },
      /node "drop_mask" \(Dropout\): the Dropout mask output changed/,
    ],
    [
      'dropout-10 mask',
      {
        opset: 10,
        nodes: [makeNode('Dropout', ['x'], ['y', 'm'], { name: 'drop_mask10' })],
        inputs: [['x', F, [2]]],
        outputs: [
          ['y', F, undefined],
          ['m', C.BOOL, undefined],
        ],
      },
      /node "drop_mask10" \(Dropout\): the Dropout mask output changed/,
    ],
    [
      'bn training outputs',
      {
        opset: 9,
        nodes: [
          makeNode('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y', 'rm', 'rv'], { name: 'bn_train' }),
        ],
        inputs: [['x', F, [1, 1, 2, 2]]],
        outputs: [['y', F, undefined]],
      },
      /node "bn_train" \(BatchNormalization\): BatchNormalization training outputs/,
    ],
    [
      'resize-10',
      {
        opset: 10,
        nodes: [makeNode('Resize', ['x', 'sc'], ['y'], { name: 'rs10' })],
        inputs: [['x', F, [1, 1, 2, 2]]],
        outputs: [['y', F, undefined]],
      },
      /node "rs10" \(Resize\): Resize-10/,
    ],
    [
      'opset 8',
      {
        opset: 8,
        nodes: [makeNode('Relu', ['x'], ['y'], { name: 'r' })],
        inputs: [['x', F, [2]]],
        outputs: [['y', F, undefined]],
      },
      /opset 8 < 9 is not converted/,
    ],
  ];
  for (const [label, spec, re] of cases) {
    const bytes = build(spec);
    const m = readOnnx(bytes, { source: 'r.onnx' });
    assert.equal(canUpgradeOpset(m.proto, 21), false, label);
    assert.deepEqual(writeOnnx(m), bytes, `${label}: canUpgradeOpset changed the model`);
    assert.throws(
      () => upgradeDefaultOpset(m.proto, 21, 'r.onnx'),
      (e: unknown) => e instanceof MixqError && re.test(e.message) && e.message.startsWith('r.onnx'),
      label,
    );
    assert.deepEqual(writeOnnx(m), bytes, `${label}: a refused upgrade changed the model`);
  }
  // above 21 is not supported; at or above the target nothing to do
  const ok = readOnnx(build(cases[6]![1]), { source: 'x' });
  ok.proto.opset_import = [
    onnxMessageType('OperatorSetIdProto').create({ domain: '', version: 12 }) as never,
  ];
  assert.equal(canUpgradeOpset(ok.proto, 21), true);
  assert.equal(canUpgradeOpset(ok.proto, 23), false);
  assert.equal(canUpgradeOpset(ok.proto, 12), true);
});

test('quantizeOnnxWeights raises an opset-9 model to 21 for blocked int4 DequantizeLinear', async () => {
  const K = 64;
  const N = 24;
  const w = makeTensor('fc.weight', F, [K, N], floatBytes(randn(K * N, 0.2), 'float32'));
  const bytes = build({
    opset: 9,
    nodes: [
      makeNode('MatMul', ['x', 'fc.weight'], ['h'], { name: 'fc' }),
      makeNode('Softmax', ['h'], ['y'], { name: 'sm', attrs: { axis: 1 } }),
    ],
    inits: [w],
    inputs: [['x', F, [2, 3, K]]],
    outputs: [['y', F, [2, 3, N]]],
  });
  const model: OnnxModel = readOnnx(bytes, { source: 'q9.onnx' });
  const q = await quantizeOnnxWeights(
    model,
    { 'fc.weight': { scheme: 'dequantizelinear', bits: 4, blockSize: 32 } },
    { simulation: true },
  );
  assert.equal(opsetVersion(q.model.proto, ''), 21);
  assert.ok(
    q.notes.some((n) => /opset raised from 9 to 21/.test(n)),
    q.notes.join('; '),
  );
  assert.equal(q.weights[0]!.op, 'DequantizeLinear');
  assert.equal(q.weights[0]!.domain, '');
  assert.equal(q.weights[0]!.blockSize, 32);
  const feeds = { x: f32(randn(2 * 3 * K), [2, 3, K]) };
  const got = await run(writeOnnx(q.model), feeds, 'disabled');
  const want = await run(writeOnnx(q.simulation!), feeds, 'disabled');
  const a = new Float32Array(got.y!.buffer);
  const b = new Float32Array(want.y!.buffer);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  assert.ok(d < 1e-6, `quantized vs simulation ${d}`);
});

test('PP-OCRv4 rec (opset 9) upgraded to 21: same logits on 2 lines', async () => {
  const path = ocrModelPath();
  const bytes = new Uint8Array(readFileSync(path));
  const up = readOnnx(bytes, { source: path });
  assert.ok(canUpgradeOpset(up.proto, 21));
  upgradeDefaultOpset(up.proto, 21, path);
  const upBytes = writeOnnx(up);
  const lines = loadOcrLines().slice(0, 2);
  // (a) cut at the AveragePool (feed its opset-9 output): the converted tail is bit-identical
  const cut = (b: Uint8Array, pooled: readonly number[], name: string): Uint8Array => {
    const m = readOnnx(b, { source: path });
    const g = m.proto.graph!;
    g.node = g.node.filter((n) => !n.output.includes(name));
    g.input = [...g.input, onnxMessageType('ValueInfoProto').fromObject(vi(name, F, pooled)) as never];
    return writeOnnx(m);
  };
  const orig = readOnnx(bytes, { source: path });
  const pool = orig.proto.graph!.node.find((n) => n.op_type === 'AveragePool')!.output[0]!;
  orig.proto.graph!.output = [
    ...orig.proto.graph!.output,
    onnxMessageType('ValueInfoProto').create({ name: pool }) as never,
  ];
  const exposed = writeOnnx(orig);
  let worst = 0;
  for (const line of lines) {
    const x = new ort.Tensor('float32', ocrInput(line), [1, 3, line.height, line.width]);
    const s = await ort.InferenceSession.create(exposed, {
      graphOptimizationLevel: 'disabled',
      intraOpNumThreads: 1,
    });
    const o = await s.run({ x });
    const pooled = o[pool]!;
    await s.release();
    const feeds = { x, [pool]: pooled };
    const a = await run(cut(bytes, pooled.dims, pool), feeds, 'disabled');
    const b = await run(cut(upBytes, pooled.dims, pool), feeds, 'disabled');
    assert.deepEqual(Object.keys(b), Object.keys(a));
    for (const k of Object.keys(a))
      assert.ok(Buffer.from(a[k]!).equals(Buffer.from(b[k]!)), `tail output ${k}`);
    // (b) whole model, default optimizations
    const wa = await run(bytes, { x });
    const wb = await run(upBytes, { x });
    for (const k of Object.keys(wa)) {
      const p = new Float32Array(wa[k]!.buffer);
      const q = new Float32Array(wb[k]!.buffer);
      let d = 0;
      let scale = 0;
      for (let i = 0; i < p.length; i++) {
        d = Math.max(d, Math.abs(p[i]! - q[i]!));
        scale = Math.max(scale, Math.abs(p[i]!));
      }
      worst = Math.max(worst, d / scale);
    }
  }
  console.log(
    `PP-OCRv4 rec opset 9 -> 21: whole-model max diff ${worst.toExponential(2)} of the output scale`,
  );
  assert.ok(worst < 1e-5, `relative diff ${worst}`);
});

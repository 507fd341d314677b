/**
 * Helpers for the quantized-ONNX export tests: a MatMul-heavy model built in TypeScript with the ONNX
 * writer (no Python needed), fixed inputs, onnxruntime runs and an independent storage formula.
 */
import { Rng } from '../../src/core/rng.ts';
import { floatBytes } from '../../src/export/onnx/build.ts';
import { makeNode, makeTensor } from '../../src/export/onnx/index.ts';
import {
  DATA_TYPE_CODES as C,
  type OnnxModel,
  onnxMessageType,
  readOnnx,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { ort } from '../io/onnx-util.ts';

function randn(rng: Rng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextNormal() * std;
  // a few outliers, as real weights have
  for (let i = 0; i < n; i += 97) a[i] = a[i]! * 6;
  return a;
}

function valueInfo(name: string, elemType: number, shape: readonly number[]): unknown {
  return {
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: shape.map((d) => ({ dim_value: d })) } } },
  };
}

/** Weight shapes of the test model (K of w2 = 72 is not a multiple of 16 / 32: padding is exercised). */
export const MIX_SHAPES = {
  emb: [40, 64],
  w1: [64, 72],
  w2: [72, 48],
  w3: [32, 48], // Gemm transB=1: [N, K]
  w4: [48, 16], // Gemm transB=0: [K, N]
  wc: [8, 3, 3, 3], // Conv
} as const;

/**
 * The "mix" model (opset 17, IR 8): Gather -> Add -> MatMul -> Relu -> MatMul -> ReduceMean(axes attr),
 * two Gemms (transB 1 and 0) with a bias, and a Conv with a bias. Weights are seeded normals.
 */
export function buildMixModel(seed = 1): OnnxModel {
  const rng = new Rng(seed);
  const w = (name: string, dims: readonly number[], std: number) =>
    makeTensor(
      name,
      C.FLOAT,
      dims,
      floatBytes(
        randn(
          rng,
          dims.reduce((p, d) => p * d, 1),
          std,
        ),
        'float32',
      ),
    );
  const inits = [
    w('emb.weight', MIX_SHAPES.emb, 1),
    w('fc1.weight', MIX_SHAPES.w1, 0.125),
    w('fc2.weight', MIX_SHAPES.w2, 0.12),
    w('gemm1.weight', MIX_SHAPES.w3, 0.15),
    w('gemm1.bias', [32], 0.1),
    w('gemm2.weight', MIX_SHAPES.w4, 0.15),
    w('conv.weight', MIX_SHAPES.wc, 0.2),
    w('conv.bias', [8], 0.1),
  ];
  const nodes = [
    makeNode('Gather', ['emb.weight', 'ids'], ['e'], { name: 'embed' }),
    makeNode('Add', ['x', 'e'], ['h0'], { name: 'add' }),
    makeNode('MatMul', ['h0', 'fc1.weight'], ['h1'], { name: 'fc1' }),
    makeNode('Relu', ['h1'], ['h2'], { name: 'relu' }),
    makeNode('MatMul', ['h2', 'fc2.weight'], ['y1'], { name: 'fc2' }),
    makeNode('ReduceMean', ['y1'], ['y1_mean'], { name: 'mean', attrs: { axes: [2], keepdims: 1 } }),
    makeNode('Gemm', ['z', 'gemm1.weight', 'gemm1.bias'], ['y2'], { name: 'gemm1', attrs: { transB: 1 } }),
    makeNode('Gemm', ['z', 'gemm2.weight'], ['y3'], { name: 'gemm2' }),
    makeNode('Conv', ['c', 'conv.weight', 'conv.bias'], ['y4'], {
      name: 'conv',
      attrs: { pads: [1, 1, 1, 1] },
    }),
  ];
  const proto = onnxMessageType('ModelProto').fromObject({
    ir_version: 8,
    producer_name: 'mixq-test',
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'mix',
      input: [
        valueInfo('ids', C.INT64, [2, 5]),
        valueInfo('x', C.FLOAT, [2, 5, 64]),
        valueInfo('z', C.FLOAT, [4, 48]),
        valueInfo('c', C.FLOAT, [1, 3, 8, 8]),
      ],
      output: [
        valueInfo('y1', C.FLOAT, [2, 5, 48]),
        valueInfo('y1_mean', C.FLOAT, [2, 5, 1]),
        valueInfo('y2', C.FLOAT, [4, 32]),
        valueInfo('y3', C.FLOAT, [4, 16]),
        valueInfo('y4', C.FLOAT, [1, 8, 8, 8]),
      ],
    },
  });
  const bytes = onnxMessageType('ModelProto').encode(proto).finish();
  const model = readOnnx(new Uint8Array(bytes), { source: 'mix.onnx' });
  const g = model.proto.graph!;
  g.initializer = inits;
  g.node = nodes;
  return readOnnx(writeOnnx(model), { source: 'mix.onnx' });
}

export function mixFeeds(): Record<string, ort.Tensor> {
  const rng = new Rng(99);
  const f = (n: number) => Float32Array.from({ length: n }, () => rng.nextNormal());
  return {
    ids: new ort.Tensor('int64', BigInt64Array.from([0, 3, 7, 39, 12, 5, 5, 21, 38, 1].map(BigInt)), [2, 5]),
    x: new ort.Tensor('float32', f(2 * 5 * 64), [2, 5, 64]),
    z: new ort.Tensor('float32', f(4 * 48), [4, 48]),
    c: new ort.Tensor('float32', f(3 * 64), [1, 3, 8, 8]),
  };
}

/**
 * Runs a model with one thread; outputs as Float32Arrays. onnxruntime fuses DequantizeLinear -> MatMul
 * into MatMulNBits with accuracy level 4 (int8 activations) by default; `qdqAccuracyLevel` '0' keeps the
 * float arithmetic so the run can be compared with the simulation exactly.
 */
export async function runModel(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  qdqAccuracyLevel: string | undefined = '0',
): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    ...(qdqAccuracyLevel === undefined
      ? {}
      : { extra: { session: { qdq_matmulnbits_accuracy_level: qdqAccuracyLevel } } }),
  });
  try {
    const out = await s.run(feeds);
    const res: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(out)) res[k] = Float32Array.from(t.data as Float32Array);
    return res;
  } finally {
    await s.release();
  }
}

/** max |a - b| over all outputs, and max |b| (the output scale the tolerance is relative to). */
export function maxDiff(
  a: Record<string, Float32Array>,
  b: Record<string, Float32Array>,
): { diff: number; scale: number; worst: string } {
  let diff = 0;
  let scale = 0;
  let worst = '';
  for (const [k, v] of Object.entries(b)) {
    const u = a[k];
    if (!u || u.length !== v.length) throw new Error(`output ${k} missing or of another size`);
    for (let i = 0; i < v.length; i++) {
      const d = Math.abs(u[i]! - v[i]!);
      if (d > diff) {
        diff = d;
        worst = k;
      }
      scale = Math.max(scale, Math.abs(v[i]!));
    }
  }
  return { diff, scale, worst };
}

/**
 * Bytes of the quantized tensors of one weight from the operator specs, written independently of the
 * exporter: codes (padded to whole blocks for MatMulNBits), scales, packed zero points.
 */
export function expectedStorage(
  op: 'MatMulNBits' | 'DequantizeLinear' | 'GatherBlockQuantized',
  rows: number,
  cols: number,
  bits: number,
  blockSize: number,
  symmetric: boolean,
  scaleBytes: number,
): { codes: number; scales: number; zeroPoints: number } {
  const nb = Math.ceil(cols / blockSize);
  if (op === 'MatMulNBits') {
    // rows = N, cols = K
    return {
      codes: (rows * nb * blockSize * bits) / 8,
      scales: rows * nb * scaleBytes,
      zeroPoints: symmetric ? 0 : rows * Math.ceil((nb * bits) / 8),
    };
  }
  if (op === 'GatherBlockQuantized') {
    return {
      codes: (rows * cols * bits) / 8,
      scales: rows * nb * scaleBytes,
      zeroPoints: symmetric ? 0 : rows * Math.ceil((nb * bits) / 8),
    };
  }
  // DequantizeLinear: whole tensor packed; zero points have the scales' shape and the codes' type
  return {
    codes: Math.ceil((rows * cols * bits) / 8),
    scales: rows * nb * scaleBytes,
    zeroPoints: symmetric ? 0 : Math.ceil((rows * nb * bits) / 8),
  };
}

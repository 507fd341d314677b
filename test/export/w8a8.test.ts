// Static W8A8 QDQ export (src/export/onnx/activations.ts, src/runtime/w8a8.node.ts).
//  1. A small LayerNorm -> MatMul -> Add -> Relu -> MatMul -> Add model: the exported model run by
//     onnxruntime-node matches an independent TypeScript forward pass that fake-quantizes the activations
//     with scales recomputed here from the calibrated ranges and multiplies by the int8 codes read back
//     from the file; the QDQ structure is checked node by node and onnxruntime's optimized graph must hold
//     MatMulIntegerToFloat (the integer kernel), no DequantizeLinear left.
//  2. SmoothQuant fold: the folded fp32 model equals the original to 1e-5 relative; on a model with outlier
//     channels W8A8 + SmoothQuant is closer to fp32 than plain W8A8.
//  3. The bundled GPT: 16 MatMuls fused, logits projection left float, logits within a bound of fp32.
// Numbers are printed: `node scripts/run-tests.mjs w8a8`.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { floatBytes } from '../../src/export/onnx/build.ts';
import { findW8A8Targets, insertActivationQdq, smoothQuantOnnx } from '../../src/export/onnx/activations.ts';
import { makeNode, makeTensor } from '../../src/export/onnx/index.ts';
import {
  DATA_TYPE_CODES as C,
  type OnnxModel,
  onnxMessageType,
  readOnnx,
  tensorBytes,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { encodeChars, loadGptBundle } from '../../src/runtime/bundled.node.ts';
import { calibrateActivationRanges, exportW8A8 } from '../../src/runtime/w8a8.node.ts';
import { ort } from '../io/onnx-util.ts';

const B = 4;
const T = 16;
const K = 32;
const H = 48;
const N = 24;

function randn(rng: Rng, n: number, std: number, mean = 0): Float32Array {
  return Float32Array.from({ length: n }, () => mean + rng.nextNormal() * std);
}

/**
 * A symbolic batch dimension, as exported transformers have: with fully static shapes onnxruntime's
 * MatMulAddFusion (level 1) turns MatMul + Add(bias) into Reshape + Gemm before the QDQ transformer runs,
 * and a QDQ Gemm with a float bias is not fused (a known limit, documented in activations.ts).
 */
function valueInfo(name: string, shape: readonly (number | string)[]): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: C.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) },
      },
    },
  };
}

interface Weights {
  gamma: Float32Array;
  beta: Float32Array;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** x [B, T, K] -> LayerNorm -> MatMul w1 [K, H] -> Add b1 -> Relu -> MatMul w2 [H, N] -> Add b2 -> y. */
function buildModel(outliers: boolean, seed = 5): { model: OnnxModel; w: Weights } {
  const rng = new Rng(seed);
  const gamma = randn(rng, K, 0.1, 1);
  // a few LayerNorm channels x20: the activation outliers SmoothQuant is for
  if (outliers) for (const c of [3, 17, 29]) gamma[c] = gamma[c]! * 20;
  const w: Weights = {
    gamma,
    beta: randn(rng, K, 0.1),
    w1: randn(rng, K * H, 0.2),
    b1: randn(rng, H, 0.1),
    w2: randn(rng, H * N, 0.2),
    b2: randn(rng, N, 0.1),
  };
  const t = (name: string, dims: number[], v: Float32Array) =>
    makeTensor(name, C.FLOAT, dims, floatBytes(v, 'float32'));
  const graph = onnxMessageType('GraphProto').fromObject({
    name: 'w8a8',
    input: [valueInfo('x', ['batch', T, K])],
    output: [valueInfo('y', ['batch', T, N])],
  }) as unknown as OnnxModel['proto']['graph'] & object;
  graph.initializer = [
    t('ln.gamma', [K], w.gamma),
    t('ln.beta', [K], w.beta),
    t('fc1.weight', [K, H], w.w1),
    t('fc1.bias', [H], w.b1),
    t('fc2.weight', [H, N], w.w2),
    t('fc2.bias', [N], w.b2),
  ];
  graph.node = [
    makeNode('LayerNormalization', ['x', 'ln.gamma', 'ln.beta'], ['ln'], { name: 'ln', attrs: { axis: -1 } }),
    makeNode('MatMul', ['ln', 'fc1.weight'], ['h1'], { name: 'fc1' }),
    makeNode('Add', ['h1', 'fc1.bias'], ['h2'], { name: 'fc1_bias' }),
    makeNode('Relu', ['h2'], ['h3'], { name: 'relu' }),
    makeNode('MatMul', ['h3', 'fc2.weight'], ['h4'], { name: 'fc2' }),
    makeNode('Add', ['h4', 'fc2.bias'], ['y'], { name: 'fc2_bias' }),
  ];
  const proto = onnxMessageType('ModelProto').fromObject({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    producer_name: 'mixq-test',
  }) as unknown as OnnxModel['proto'];
  proto.graph = graph;
  const bytes = onnxMessageType('ModelProto')
    .encode(proto as never)
    .finish();
  // a plain Uint8Array copy: protobufjs returns a pooled Node Buffer, whose slice() shares memory
  return { model: readOnnx(new Uint8Array(bytes)), w };
}

function feedsOf(seed: number, count: number): Record<string, ort.Tensor>[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => ({
    x: new ort.Tensor('float32', randn(rng, B * T * K, 1), [B, T, K]),
  }));
}

async function run(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  optimizedPath?: string,
): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(optimizedPath ? { optimizedModelFilePath: optimizedPath } : {}),
  });
  const out = await s.run(feeds);
  await s.release();
  return out[s.outputNames[0]!]!.data as Float32Array;
}

/** Op-type counts of onnxruntime's optimized graph (what the QDQ transformer made of the model). */
async function fusedOps(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, number>> {
  const p = join(tmpdir(), `mixq-w8a8-${process.pid}-${Math.random().toString(36).slice(2)}.onnx`);
  await run(bytes, feeds, p);
  const m = readOnnx(new Uint8Array(readFileSync(p)));
  rmSync(p, { force: true });
  const c: Record<string, number> = {};
  for (const n of m.proto.graph!.node) c[n.op_type] = (c[n.op_type] ?? 0) + 1;
  return c;
}

function initializer(m: OnnxModel, name: string) {
  const t = m.proto.graph!.initializer.find((x) => x.name === name);
  assert.ok(t, `initializer ${name}`);
  return t;
}

const rhe = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * Independent forward pass (float64) of the test model with fake-quant activations and the exported int8
 * weight codes: q(x) = clamp(rhe(x / s) + z, 0, 255), x^ = (q - z) s; W^[k, n] = code[k, n] * sw[n].
 */
function simulate(
  x: Float32Array,
  w: Weights,
  a1: { s: number; z: number },
  a2: { s: number; z: number },
  W1: Float64Array,
  W2: Float64Array,
): Float64Array {
  const rows = B * T;
  const fq = (v: number, q: { s: number; z: number }) =>
    (Math.min(255, Math.max(0, rhe(Math.fround(v / q.s)) + q.z)) - q.z) * q.s;
  const y = new Float64Array(rows * N);
  const h = new Float64Array(H);
  const ln = new Float64Array(K);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let k = 0; k < K; k++) mean += x[r * K + k]!;
    mean /= K;
    let v = 0;
    for (let k = 0; k < K; k++) v += (x[r * K + k]! - mean) ** 2;
    v /= K;
    for (let k = 0; k < K; k++)
      ln[k] = fq(((x[r * K + k]! - mean) / Math.sqrt(v + 1e-5)) * w.gamma[k]! + w.beta[k]!, a1);
    for (let j = 0; j < H; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += ln[k]! * W1[k * H + j]!;
      h[j] = fq(Math.max(0, acc + w.b1[j]!), a2);
    }
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let j = 0; j < H; j++) acc += h[j]! * W2[j * N + n]!;
      y[r * N + n] = acc + w.b2[n]!;
    }
  }
  return y;
}

/** Dequantized weight [K, N] from the exported int8 codes and per-column scales. */
function exportedWeight(m: OnnxModel, weight: string, rows: number, cols: number): Float64Array {
  const dq = m.proto.graph!.node.find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === weight);
  assert.ok(dq, `DequantizeLinear producing ${weight}`);
  const q = initializer(m, dq.input[0]!);
  assert.equal(q.data_type, C.INT8);
  const codes = new Int8Array(tensorBytes(q).slice().buffer);
  const sb = tensorBytes(initializer(m, dq.input[1]!)).slice();
  const sc = new Float32Array(sb.buffer);
  assert.equal(sc.length, cols);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) out[i] = codes[i]! * sc[i % cols]!;
  return out;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('W8A8 QDQ: structure, onnxruntime fusion, and outputs equal an independent fake-quant simulation', async () => {
  const { model, w } = buildModel(false);
  const calib = feedsOf(11, 4);
  const ranges = await calibrateActivationRanges(model, calib, { includeLogits: true });
  assert.deepEqual([...ranges.keys()].sort(), ['h3', 'ln']);
  // the default leaves the logits projection (MatMul -> Add(const) -> graph output) in float
  assert.deepEqual(
    findW8A8Targets(model).skipped.map((s) => s.node),
    ['fc2'],
  );
  for (const reduceRange of [true, false]) {
    const res = await insertActivationQdq(model, ranges, { includeLogits: true, reduceRange });
    const m = res.model;
    const g = m.proto.graph!;
    assert.deepEqual(
      res.layers.map((l) => [l.node, l.weight, l.activation]),
      [
        ['fc1', 'fc1.weight', 'ln'],
        ['fc2', 'fc2.weight', 'h3'],
      ],
    );
    // activation quantizers: scale = (max - min) / 255 of the range widened to 0, zero point rounds -min / scale
    const qp: { s: number; z: number }[] = [];
    for (const [node, act] of [
      ['fc1', 'ln'],
      ['fc2', 'h3'],
    ] as const) {
      const r = ranges.get(act)!;
      const lo = Math.min(0, r.min);
      const hi = Math.max(0, r.max);
      const s = Math.fround((hi - lo) / 255);
      const z = Math.round(-lo / s) || 0; // no -0
      const mm = g.node.find((n) => n.name === node)!;
      const dq = g.node.find((n) => n.output[0] === mm.input[0])!;
      assert.equal(dq.op_type, 'DequantizeLinear');
      const q = g.node.find((n) => n.output[0] === dq.input[0])!;
      assert.equal(q.op_type, 'QuantizeLinear');
      assert.equal(q.input[0], act);
      assert.equal(q.input[1], dq.input[1]);
      assert.equal(q.input[2], dq.input[2]);
      const scale = new Float32Array(tensorBytes(initializer(m, q.input[1]!)).slice().buffer);
      const zp = tensorBytes(initializer(m, q.input[2]!));
      assert.equal(initializer(m, q.input[2]!).data_type, C.UINT8);
      assert.equal(initializer(m, q.input[1]!).dims.length, 0, 'per-tensor (scalar) scale');
      assert.equal(scale[0], s);
      assert.equal(zp[0], z);
      qp.push({ s, z });
    }
    // weights: int8, per output column (axis 1), scale = max |W[:, n]| / qmax
    const qmax = reduceRange ? 63 : 127;
    for (const [name, rows, cols, ref] of [
      ['fc1.weight', K, H, w.w1],
      ['fc2.weight', H, N, w.w2],
    ] as const) {
      const dq = g.node.find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === name)!;
      assert.equal(dq.attribute.find((a) => a.name === 'axis')?.i.toString(), '1');
      const sc = new Float32Array(tensorBytes(initializer(m, dq.input[1]!)).slice().buffer);
      for (let n = 0; n < cols; n++) {
        let a = 0;
        for (let k = 0; k < rows; k++) a = Math.max(a, Math.abs(ref[k * cols + n]!));
        assert.equal(sc[n], Math.fround(a / qmax));
      }
    }
    assert.equal(g.node.filter((n) => n.op_type === 'QuantizeLinear').length, 2);
    assert.equal(g.node.filter((n) => n.op_type === 'DequantizeLinear').length, 4);

    const bytes = writeOnnx(m);
    const test = feedsOf(99, 1)[0]!;
    const ops = await fusedOps(bytes, test);
    assert.equal(ops.MatMulIntegerToFloat, 2, JSON.stringify(ops));
    assert.equal(ops.DequantizeLinear ?? 0, 0, JSON.stringify(ops));
    assert.equal(ops.MatMul ?? 0, 0, JSON.stringify(ops));

    const yq = await run(bytes, test);
    const yf = await run(writeOnnx(model), test);
    const sim = simulate(
      test.x!.data as Float32Array,
      w,
      qp[0]!,
      qp[1]!,
      exportedWeight(m, 'fc1.weight', K, H),
      exportedWeight(m, 'fc2.weight', H, N),
    );
    const scaleY = maxAbs(yf);
    const dSim = maxDiff(yq, sim) / scaleY;
    const dFp = maxDiff(yq, yf) / scaleY;
    let far = 0;
    for (let i = 0; i < yq.length; i++) if (Math.abs(yq[i]! - sim[i]!) > 1e-5 * scaleY) far++;
    console.log(
      `W8A8 (reduceRange ${reduceRange}) vs simulation: max |diff| ${dSim.toExponential(2)} of max|y|, ` +
        `${far}/${yq.length} elements beyond 1e-5; vs fp32: ${dFp.toExponential(2)}`,
    );
    if (!reduceRange) continue; // ±127 weights: U8S8 may saturate on x86 without VNNI (logged above)
    // integer GEMM is exact, so only float rounding differs; an activation within one float32 ulp of a
    // rounding boundary may land on the neighbouring code (one step of s_x times one weight column):
    // allow such flips in at most 1% of the outputs, each within 2% of max|y|
    assert.ok(far <= yq.length / 100, `${far} elements differ from the simulation`);
    assert.ok(dSim < 0.02, `simulation mismatch ${dSim}`);
    // the simulation must be far closer to onnxruntime than fp32 is (it models the quantization)
    assert.ok(dSim * 20 < dFp, `simulation ${dSim} vs fp32 ${dFp}`);
  }
});

test('SmoothQuant fold is exact in fp32 and helps W8A8 on outlier channels', async () => {
  const { model } = buildModel(true);
  const calib = feedsOf(12, 4);
  const test = feedsOf(77, 1)[0]!;
  const first = await calibrateActivationRanges(model, calib, { includeLogits: true });
  const absMax = new Map([...first].map(([k, v]) => [k, v.channelAbsMax]));
  const sq = await smoothQuantOnnx(model, absMax, { alpha: 0.5, includeLogits: true });
  // ln -> fc1 folds into the LayerNorm; relu -> fc2 cannot (Relu is not a norm) and is skipped
  assert.deepEqual(
    sq.folded.map((f) => [f.activation, f.target]),
    [['ln', 'LayerNormalization']],
  );
  assert.deepEqual(
    sq.skipped.map((s) => s.activation),
    ['h3'],
  );
  const yf = await run(writeOnnx(model), test);
  const ys = await run(writeOnnx(sq.model), test);
  const rel = maxDiff(yf, ys) / maxAbs(yf);
  console.log(`SmoothQuant fold: max |folded - original| = ${rel.toExponential(2)} of max|y|`);
  assert.ok(rel <= 1e-5, `fold changed the fp32 output by ${rel}`);
  // the smoothed activation's channel ranges are flatter
  const second = await calibrateActivationRanges(sq.model, calib, { includeLogits: true });
  const spread = (a: Float32Array) => maxAbs(a) / Math.min(...a);
  assert.ok(spread(second.get('ln')!.channelAbsMax) < spread(first.get('ln')!.channelAbsMax) / 2);

  const plain = await insertActivationQdq(model, first, { includeLogits: true });
  const smooth = await insertActivationQdq(sq.model, second, { includeLogits: true });
  const ep = maxDiff(await run(writeOnnx(plain.model), test), yf) / maxAbs(yf);
  const es = maxDiff(await run(writeOnnx(smooth.model), test), yf) / maxAbs(yf);
  console.log(
    `outlier model, max error vs fp32: W8A8 ${ep.toExponential(2)}, W8A8+SmoothQuant ${es.toExponential(2)}`,
  );
  assert.ok(es < ep, `SmoothQuant did not help: ${es} >= ${ep}`);
});

test('bundled GPT: 16 MatMuls fused to MatMulIntegerToFloat, logits float, close to fp32', async () => {
  const b = loadGptBundle();
  const text = Array.from(b.heldout)
    .slice(0, 12 * 128)
    .join('');
  const ids = encodeChars(text, b.chars, 'heldout.txt');
  const { int64Tensor } = await import('../../src/runtime/ort.node.ts');
  const calib = [{ ids: int64Tensor(ids.subarray(0, 8 * 128), [8, 128]) }];
  const evalFeeds = { ids: int64Tensor(ids.subarray(8 * 128, 12 * 128), [4, 128]) };
  const r = await exportW8A8('models/gpt/model.onnx', calib, { smoothQuant: true });
  assert.equal(r.layers.length, 16);
  assert.deepEqual(
    r.skipped.map((s) => s.node),
    ['/MatMul'],
  );
  // ln1 -> qkv and ln2 -> mlp_fc of each block are smoothed (LayerNorm), attn_proj and mlp_proj are not
  assert.equal(r.smoothed.length, 8);
  assert.ok(r.smoothed.every((s) => s.target === 'LayerNormalization'));
  const ops = await fusedOps(r.bytes, evalFeeds);
  assert.equal(ops.MatMulIntegerToFloat, 16, JSON.stringify(ops));
  assert.equal(ops.DequantizeLinear ?? 0, 0);
  const yq = await run(r.bytes, evalFeeds);
  // the fp32 file keeps its weights in model.safetensors: load it by path
  const fs = await ort.InferenceSession.create('models/gpt/model.onnx', { intraOpNumThreads: 1 });
  const yf = (await fs.run(evalFeeds)).logits!.data as Float32Array;
  await fs.release();
  // mean KL(fp32 || W8A8) of the next-character distributions, in bits
  const V = b.chars.length;
  let kl = 0;
  for (let p = 0; p < yf.length / V; p++) {
    const lse = (y: Float32Array) => {
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, y[p * V + v]!);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(y[p * V + v]! - m);
      return m + Math.log(s);
    };
    const lf = lse(yf);
    const lq = lse(yq);
    for (let v = 0; v < V; v++) {
      const pf = Math.exp(yf[p * V + v]! - lf);
      kl += pf * (yf[p * V + v]! - lf - (yq[p * V + v]! - lq));
    }
  }
  kl /= (yf.length / V) * Math.LN2;
  const rel = maxDiff(yq, yf) / maxAbs(yf);
  console.log(
    `GPT W8A8+SQ vs fp32 on 4 unseen windows: mean KL ${kl.toExponential(2)} bits, max |dlogit| ${rel.toExponential(2)} of max`,
  );
  // bound: 8-bit per-tensor activations on a 4-layer model; measured ~1e-3 bits of KL. 0.01 bits of KL is
  // 0.5% of the model's 2.0 bits/char, a tenth of the ±0.007 bpc noise floor (models/README.md)
  assert.ok(kl < 0.01, `KL ${kl}`);
  assert.ok(rel < 0.1, `max logit error ${rel}`);
});

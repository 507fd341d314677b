// foldInputScales: per-input-channel scales (AWQ / SmoothQuant) folded into the previous op or kept as an
// explicit Mul. Differential against onnxruntime-node: the rewritten model must compute the same outputs as
// the original (exact up to float rounding); then AWQ's own scales + 4-bit weights vs plain RTN on a
// LayerNorm -> MatMul layer with outlier channels; then the bundled GPT (LayerNorm -> qkv MatMul).
// Numbers are printed: `node scripts/run-tests.mjs fold-scales`.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import { floatBytes } from '../../src/export/onnx/build.ts';
import { foldInputScales, makeNode, makeTensor } from '../../src/export/onnx/index.ts';
import { inlineExternalData } from '../../src/io/onnx/inline.ts';
import { intSpec } from '../../src/formats/index.ts';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import {
  DATA_TYPE_CODES as C,
  getTensorFloat32,
  type OnnxModel,
  onnxMessageType,
  readOnnx,
  setTensorFloat32,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { awq } from '../../src/quant/algorithms/awq.ts';
import { rtn } from '../../src/quant/algorithms/rtn.ts';
import { gram } from '../../src/quant/linalg.ts';
import type { QuantizerConfig } from '../../src/quant/qparams.ts';
import { dequantize } from '../../src/quant/quantizer.ts';
import { ort } from '../io/onnx-util.ts';
import { maxDiff, runModel } from './onnx-export-util.ts';

const K = 64;
const N = 48;
const B = 4;
const T = 16;

function valueInfo(name: string, shape: readonly number[]): Record<string, unknown> {
  return {
    name,
    type: { tensor_type: { elem_type: C.FLOAT, shape: { dim: shape.map((d) => ({ dim_value: d })) } } },
  };
}

function randn(rng: Rng, n: number, std: number, mean = 0): Float32Array {
  return Float32Array.from({ length: n }, () => mean + rng.nextNormal() * std);
}

/**
 * One model, one branch per producer kind (all read x [B, T, K], outputs y* [B, T, N]):
 *  ln:   LayerNormalization(gamma with 4 outlier channels x8, beta) -> MatMul(w_ln)          folded
 *  mm:   MatMul(w0 [K, K]) -> MatMul(w_mm)                                                  folded
 *  mmb:  MatMul(w1) -> Add(b1) -> MatMul(w_mmb)                                             folded
 *  dln:  Mul(g) -> Add(be) -> MatMul(w_dln)   (end of a decomposed LayerNorm)               folded
 *  gemm: Gemm(z [B*T, K], w_g [K, K] transB=1, c) -> MatMul(w_gemm)                         folded
 *  in:   x -> MatMul(w_in)                     (graph input: nothing to fold into)          explicit
 *  shr:  LayerNormalization -> MatMul(w_shr) and Relu (another reader)                      explicit
 */
function buildModel(seed = 3): OnnxModel {
  const rng = new Rng(seed);
  const init = (name: string, dims: readonly number[], v: Float32Array) =>
    makeTensor(name, C.FLOAT, dims, floatBytes(v, 'float32'));
  const w = (name: string, dims: readonly number[], std: number) =>
    init(
      name,
      dims,
      randn(
        rng,
        dims.reduce((p, d) => p * d, 1),
        std,
      ),
    );
  const gamma = randn(rng, K, 0.1, 1);
  for (const c of [3, 17, 40, 58]) gamma[c] = gamma[c]! * 8; // activation outliers, as real LayerNorms have
  const inits = [
    init('ln.gamma', [K], gamma),
    w('ln.beta', [K], 0.1),
    w('w_ln', [K, N], 0.125),
    w('w0', [K, K], 0.125),
    w('w_mm', [K, N], 0.125),
    w('w1', [K, K], 0.125),
    w('b1', [K], 0.1),
    w('w_mmb', [K, N], 0.125),
    init('g', [K], randn(rng, K, 0.2, 1)),
    w('be', [K], 0.1),
    w('w_dln', [K, N], 0.125),
    w('w_g', [K, K], 0.125),
    w('c', [K], 0.1),
    w('w_gemm', [K, N], 0.125),
    w('w_in', [K, N], 0.125),
    w('w_shr', [K, N], 0.125),
  ];
  const nodes = [
    makeNode('LayerNormalization', ['x', 'ln.gamma', 'ln.beta'], ['h_ln'], {
      name: 'ln',
      attrs: { axis: -1 },
    }),
    makeNode('MatMul', ['h_ln', 'w_ln'], ['y_ln'], { name: 'mm_ln' }),
    makeNode('MatMul', ['x', 'w0'], ['h_mm'], { name: 'mm0' }),
    makeNode('MatMul', ['h_mm', 'w_mm'], ['y_mm'], { name: 'mm_mm' }),
    makeNode('MatMul', ['x', 'w1'], ['h_mmb0'], { name: 'mm1' }),
    makeNode('Add', ['h_mmb0', 'b1'], ['h_mmb'], { name: 'add1' }),
    makeNode('MatMul', ['h_mmb', 'w_mmb'], ['y_mmb'], { name: 'mm_mmb' }),
    makeNode('Mul', ['x', 'g'], ['h_dln0'], { name: 'dln_mul' }),
    makeNode('Add', ['be', 'h_dln0'], ['h_dln'], { name: 'dln_add' }),
    makeNode('MatMul', ['h_dln', 'w_dln'], ['y_dln'], { name: 'mm_dln' }),
    makeNode('Gemm', ['z', 'w_g', 'c'], ['h_gemm'], { name: 'gemm', attrs: { transB: 1 } }),
    makeNode('MatMul', ['h_gemm', 'w_gemm'], ['y_gemm'], { name: 'mm_gemm' }),
    makeNode('MatMul', ['x', 'w_in'], ['y_in'], { name: 'mm_in' }),
    makeNode('LayerNormalization', ['x', 'ln.gamma', 'ln.beta'], ['h_shr'], { name: 'ln_shr' }),
    makeNode('MatMul', ['h_shr', 'w_shr'], ['y_shr'], { name: 'mm_shr' }),
    makeNode('Relu', ['h_shr'], ['y_relu'], { name: 'relu' }),
  ];
  const outs = ['y_ln', 'y_mm', 'y_mmb', 'y_dln', 'y_in', 'y_shr'].map((n) => valueInfo(n, [B, T, N]));
  const proto = onnxMessageType('ModelProto').fromObject({
    ir_version: 8,
    producer_name: 'mixq-test',
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'fold',
      input: [valueInfo('x', [B, T, K]), valueInfo('z', [B * T, K])],
      output: [...outs, valueInfo('y_gemm', [B * T, N]), valueInfo('y_relu', [B, T, K])],
    },
  });
  const model = readOnnx(new Uint8Array(onnxMessageType('ModelProto').encode(proto).finish()), {
    source: 'fold.onnx',
  });
  model.proto.graph!.initializer = inits;
  model.proto.graph!.node = nodes;
  return readOnnx(writeOnnx(model), { source: 'fold.onnx' });
}

function feeds(seed: number): Record<string, ort.Tensor> {
  const rng = new Rng(seed);
  return {
    x: new ort.Tensor('float32', randn(rng, B * T * K, 1), [B, T, K]),
    z: new ort.Tensor('float32', randn(rng, B * T * K, 1), [B * T, K]),
  };
}

function randomScales(seed: number, n: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => 0.5 + 1.5 * rng.nextFloat());
}

const CASES = [
  ['w_ln', 'folded', 'LayerNormalization'],
  ['w_mm', 'folded', 'MatMul'],
  ['w_mmb', 'folded', 'MatMul+Add'],
  ['w_dln', 'folded', 'Mul+Add'],
  ['w_gemm', 'folded', 'Gemm'],
  ['w_in', 'explicit', 'explicit-Mul'],
  ['w_shr', 'explicit', 'explicit-Mul'],
] as const;

const model = buildModel();
const base = writeOnnx(model);
const F = feeds(7);

for (const [weight, mode, target] of CASES) {
  test(`random s in [0.5, 2] on ${weight}: ${mode} (${target}), outputs unchanged within 1e-5`, async () => {
    const before = writeOnnx(model);
    const s = randomScales(11, K);
    const r = await foldInputScales(model, weight, s);
    assert.equal(r.mode, mode, r.reason);
    assert.equal(r.target, target);
    assert.deepEqual(writeOnnx(model), before, 'the input model is left untouched');
    const n0 = model.proto.graph!.node.length;
    const n1 = r.model.proto.graph!.node.length;
    assert.equal(n1 - n0, mode === 'folded' ? 0 : 1);
    assert.equal(r.addedNodes, n1 - n0);
    if (mode === 'explicit') {
      const added = r.model.proto.graph!.node.filter(
        (n) => !model.proto.graph!.node.some((m) => m.name === n.name),
      );
      assert.deepEqual(
        added.map((n) => n.op_type),
        ['Mul'],
      );
    }
    // the weight really is diag(s) W (else a no-op rewrite would pass the output check)
    const W0 = getTensorFloat32(model.proto.graph!.initializer.find((t) => t.name === weight)!);
    const W1 = getTensorFloat32(r.model.proto.graph!.initializer.find((t) => t.name === weight)!);
    for (let i = 0; i < W0.length; i++) assert.equal(W1[i], Math.fround(W0[i]! * s[Math.floor(i / N)]!));
    const ref = await runModel(base, F);
    const got = await runModel(writeOnnx(r.model), F);
    const d = maxDiff(got, ref);
    assert.ok(d.diff <= 1e-5 * d.scale, `${d.worst}: ${d.diff} vs scale ${d.scale}`);
    // and the unscaled weight with the rewritten graph would be wrong: the test can fail
    const broken = readOnnx(writeOnnx(r.model));
    setTensorFloat32(
      broken.proto.graph!.initializer.find((t) => t.name === weight)!,
      W0,
    );
    const bad = maxDiff(await runModel(writeOnnx(broken), F), ref);
    assert.ok(bad.diff > 1e-3 * bad.scale);
  });
}

test('weights of several MatMuls sharing one input fold together; bad arguments throw', async () => {
  // two projections of the same LayerNorm output receive the same s
  const m = buildModel();
  const g = m.proto.graph!;
  g.node.push(makeNode('MatMul', ['h_ln', 'w_in'], ['y_in2'], { name: 'mm_in2' }));
  g.output.push(onnxMessageType('ValueInfoProto').fromObject(valueInfo('y_in2', [B, T, N])) as never);
  g.node = g.node.filter((n) => n.name !== 'mm_in');
  g.output = g.output.filter((o) => o.name !== 'y_in');
  const s = randomScales(5, K);
  const alone = await foldInputScales(m, 'w_ln', s);
  assert.equal(alone.mode, 'explicit', 'another MatMul with another s reads the LayerNorm output');
  const both = await foldInputScales(m, ['w_ln', 'w_in'], s);
  assert.equal(both.mode, 'folded');
  const ref = await runModel(writeOnnx(m), F);
  const d = maxDiff(await runModel(writeOnnx(both.model), F), ref);
  assert.ok(d.diff <= 1e-5 * d.scale);
  // a value read implicitly inside a subgraph (If branch) is never folded
  const sg = buildModel();
  const branch = onnxMessageType('GraphProto').fromObject({
    name: 'then',
    node: [makeNode('Identity', ['h_mm'], ['t_out'])],
    output: [valueInfo('t_out', [B, T, K])],
  });
  const ifNode = makeNode('If', ['cond'], ['if_out'], { name: 'if' });
  ifNode.attribute.push(
    onnxMessageType('AttributeProto').create({ name: 'then_branch', type: 5, g: branch }) as never,
  );
  sg.proto.graph!.node.push(ifNode);
  const viaIf = await foldInputScales(sg, 'w_mm', s);
  assert.equal(viaIf.mode, 'explicit');
  assert.match(viaIf.reason, /subgraph/);
  assert.equal((await foldInputScales(buildModel(), 'w_mm', s)).mode, 'folded');
  await assert.rejects(foldInputScales(model, 'ln.gamma', randomScales(1, K)), MixqError);
  await assert.rejects(foldInputScales(model, 'w_ln', randomScales(1, K - 1)), MixqError);
  await assert.rejects(foldInputScales(model, 'w_ln', new Float32Array(K)), MixqError);
  await assert.rejects(foldInputScales(model, ['w_ln', 'w_mm'], randomScales(1, K)), MixqError);
});

const Q4G32: QuantizerConfig = {
  element: intSpec(4, false),
  granularity: { kind: 'group', axis: 1, size: 32 },
  symmetric: false,
};

/** [rows, cols] -> [cols, rows] */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c]!;
  return t;
}

test('AWQ scales folded into the LayerNorm + 4-bit scaled weight beat plain RTN (output error vs fp32)', async () => {
  // capture X = LayerNorm output on a calibration batch (a copy of the model with h_ln as an output)
  const cap = readOnnx(writeOnnx(model));
  cap.proto.graph!.output.push(
    onnxMessageType('ValueInfoProto').fromObject(valueInfo('h_ln', [B, T, K])) as never,
  );
  const X = (await runModel(writeOnnx(cap), feeds(21))).h_ln!;
  const n = B * T;
  const meanAbs = new Float32Array(K);
  for (let i = 0; i < X.length; i++) meanAbs[i % K] = meanAbs[i % K]! + Math.abs(X[i]!) / n;
  const Wkn = getTensorFloat32(model.proto.graph!.initializer.find((t) => t.name === 'w_ln')!);
  const Wt = transpose(Wkn, K, N); // AWQ / RTN take [out, in]
  const a = awq(Wt, N, K, { actMeanAbs: meanAbs, gram: gram(X, n, K) }, { quantizer: Q4G32 });

  const folded = await foldInputScales(model, 'w_ln', a.inputScale);
  assert.equal(folded.target, 'LayerNormalization');
  const wq = (m: OnnxModel) => m.proto.graph!.initializer.find((t) => t.name === 'w_ln')!;
  setTensorFloat32(wq(folded.model), transpose(dequantize(a.scaledWeight), N, K));
  const plain = readOnnx(writeOnnx(model));
  setTensorFloat32(wq(plain), transpose(rtn(Wt, [N, K], { quantizer: Q4G32 }).Q, N, K));

  const evalF = feeds(8); // held-out batch
  const ref = (await runModel(base, evalF)).y_ln!;
  const err = async (m: OnnxModel) => {
    const y = (await runModel(writeOnnx(m), evalF)).y_ln!;
    let e = 0;
    let r = 0;
    for (let i = 0; i < y.length; i++) {
      e += (y[i]! - ref[i]!) ** 2;
      r += ref[i]! ** 2;
    }
    return e / r;
  };
  // the deployed graph computes AWQ's own simulation X Q^T (Q = Q(W diag s) diag(s)^-1)
  const Xe = (await runModel(writeOnnx(cap), evalF)).h_ln!;
  const yDeployed = (await runModel(writeOnnx(folded.model), evalF)).y_ln!;
  let simDiff = 0;
  let simScale = 0;
  for (let t = 0; t < n; t++)
    for (let o = 0; o < N; o++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += Xe[t * K + k]! * a.Q[o * K + k]!;
      simDiff = Math.max(simDiff, Math.abs(acc - yDeployed[t * N + o]!));
      simScale = Math.max(simScale, Math.abs(acc));
    }
  assert.ok(simDiff <= 1e-4 * simScale, `deployed vs AWQ simulation: ${simDiff} of ${simScale}`);
  const eAwq = await err(folded.model);
  const eRtn = await err(plain);
  console.log(
    `  LayerNorm->MatMul [${K}x${N}] int4 g32 asym, relative output error ||y-y32||^2/||y32||^2: ` +
      `RTN ${eRtn.toExponential(3)}  AWQ folded ${eAwq.toExponential(3)} (alpha ${a.alpha}, ratio ${(eRtn / eAwq).toFixed(2)}x)`,
  );
  assert.ok(eAwq < eRtn, `AWQ ${eAwq} vs RTN ${eRtn}`);
});

const GPT = 'models/gpt/model.onnx';
test(
  'bundled GPT: random scales folded into blocks.0 qkv LayerNorm, logits unchanged within 1e-4',
  { skip: existsSync(GPT) ? false : 'models/gpt/model.onnx not built' },
  async () => {
    const file = await readOnnxFile(GPT);
    try {
      const gpt = readOnnx(writeOnnx(file), { source: GPT, externalData: file.externalData });
      await inlineExternalData(gpt);
      const chars = (JSON.parse(readFileSync('models/gpt/vocab.json', 'utf8')) as { chars: string[] }).chars;
      const text = readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 128);
      const ids = BigInt64Array.from(Array.from(text, (c) => BigInt(Math.max(0, chars.indexOf(c)))));
      const f = { ids: new ort.Tensor('int64', ids, [1, ids.length]) };
      const qkv = 'blocks.0.attn_qkv';
      const Kq = gpt.proto.graph!.initializer.find((t) => t.name === qkv)!.dims[0] as number;
      const r = await foldInputScales(gpt, qkv, randomScales(13, Kq));
      assert.equal(r.mode, 'folded', r.reason);
      assert.equal(r.target, 'LayerNormalization');
      assert.equal(r.model.proto.graph!.node.length, gpt.proto.graph!.node.length);
      const ref = await runModel(writeOnnx(gpt), f);
      const got = await runModel(writeOnnx(r.model), f);
      const d = maxDiff(got, ref);
      console.log(
        `  GPT qkv fold (${r.node}): max |dlogit| ${d.diff.toExponential(2)} of max ${d.scale.toFixed(2)}`,
      );
      assert.ok(d.diff <= 1e-4 * d.scale, `${d.diff} vs ${d.scale}`);
    } finally {
      await file.close();
    }
  },
);

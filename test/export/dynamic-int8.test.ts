/**
 * transformers.js's q8 file (export/onnx/dynamic-int8.ts, onnxruntime quantize_dynamic's graph) on the
 * export tests' mix model, run in onnxruntime-node against a hand computation from the ONNX operator specs
 * written here (DynamicQuantizeLinear: uint8 over the tensor's range extended to 0, round half to even;
 * MatMulInteger: integer sums; int8 per-tensor weights), independent of the exporter's code.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { int8PerTensorCodes, quantizeDynamicInt8 } from '../../src/export/onnx/dynamic-int8.ts';
import { getTensorFloat32, listWeights, writeOnnx } from '../../src/io/onnx/index.ts';
import { buildMixModel, MIX_SHAPES, mixFeeds, runModel } from './onnx-export-util.ts';

const f = Math.fround;
const rne = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** DynamicQuantizeLinear (ONNX spec): codes, scale, zero point. */
function dql(x: Float32Array): { q: Int32Array; scale: number; zp: number } {
  let lo = 0;
  let hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = f((hi - lo) / 255);
  const zp = Math.min(255, Math.max(0, rne(f(-lo / scale))));
  const q = Int32Array.from(x, (v) => Math.min(255, Math.max(0, rne(f(v / scale)) + zp)));
  return { q, scale, zp };
}

/** Y[M, N] = float(sum (A_q - zp) * B_q) * (a_scale * b_scale), A [M, K], B [K, N] int8 codes. */
function dynMatMul(
  A: Float32Array,
  M: number,
  K: number,
  B: Int8Array,
  bScale: number,
  N: number,
): Float32Array {
  const a = dql(A);
  const s = f(a.scale * bScale);
  const Y = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (a.q[m * K + k]! - a.zp) * B[k * N + n]!;
      Y[m * N + n] = f(acc * s);
    }
  return Y;
}

test('dynamic int8 (transformers.js q8): onnxruntime runs it as the operator specs compute it', async () => {
  const mix = buildMixModel();
  const feeds = mixFeeds();
  const { model, weights } = await quantizeDynamicInt8(mix);
  assert.deepEqual(
    weights.map((w) => `${w.op} ${w.name} ${w.bytes}`),
    ['Gather emb.weight 2565', 'MatMul fc1.weight 4613', 'MatMul fc2.weight 3461'],
  );
  const got = await runModel(writeOnnx(model), feeds);
  const W = (n: string) => getTensorFloat32(listWeights(mix).find((w) => w.name === n)!.tensor);
  const emb = int8PerTensorCodes(W('emb.weight'));
  const fc1 = int8PerTensorCodes(W('fc1.weight'));
  const fc2 = int8PerTensorCodes(W('fc2.weight'));
  // x + table[ids] (the table dequantized), then two dynamic int8 products with a ReLU between
  const [V, D] = MIX_SHAPES.emb;
  const ids = Array.from(feeds.ids!.data as BigInt64Array, Number);
  const x = feeds.x!.data as Float32Array;
  const h0 = Float32Array.from(x, (v, i) => f(v + emb.values[ids[Math.floor(i / D)]! * D + (i % D)]!));
  assert.equal(V, 40);
  const h1 = dynMatMul(h0, 10, 64, fc1.q, fc1.scale, 72).map((v) => Math.max(0, v));
  const y1 = dynMatMul(h1, 10, 72, fc2.q, fc2.scale, 48);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < y1.length; i++) {
    worst = Math.max(worst, Math.abs(got.y1![i]! - y1[i]!));
    scale = Math.max(scale, Math.abs(y1[i]!));
  }
  assert.ok(worst <= 1e-5 * scale, `y1: max |onnxruntime - spec| ${worst} (scale ${scale})`);
  // Gemm and Conv are left in float: their outputs are the float model's
  const float = await runModel(writeOnnx(mix), feeds);
  for (const k of ['y2', 'y3', 'y4']) assert.deepEqual(got[k], float[k], k);
  // the activations really are quantized: the weights-only simulation differs by far more
  const h1w = new Float32Array(10 * 72);
  for (let m = 0; m < 10; m++)
    for (let n = 0; n < 72; n++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s += h0[m * 64 + k]! * fc1.values[k * 72 + n]!;
      h1w[m * 72 + n] = Math.max(0, s);
    }
  let gap = 0;
  for (let i = 0; i < h1w.length; i++) gap = Math.max(gap, Math.abs(h1w[i]! - h1[i]!));
  assert.ok(gap > 1e-3, `activation quantization visible: ${gap}`);
});

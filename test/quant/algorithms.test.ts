// PTQ algorithms on a layer with injected activation outliers (4 input channels x20): AWQ, SmoothQuant,
// outlier handling, importance-weighted search and RTN; GPTQ options beyond the golden file. The error
// numbers are printed (`node scripts/run-tests.mjs algorithms`) so they can be quoted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { linearOutput, mse, outputErrorFro2 } from '../../src/analysis/metrics.ts';
import { getFormat, intSpec } from '../../src/formats/index.ts';
import { awq } from '../../src/quant/algorithms/awq.ts';
import { gptq, gptqHessian } from '../../src/quant/algorithms/gptq.ts';
import { hqq } from '../../src/quant/algorithms/hqq.ts';
import { importanceQuantize } from '../../src/quant/algorithms/imatrix.ts';
import { csrBits, int8Decomposition, salientSparse } from '../../src/quant/algorithms/outliers.ts';
import { rtn } from '../../src/quant/algorithms/rtn.ts';
import { simulateLinearWA, smoothQuantScales } from '../../src/quant/algorithms/smoothquant.ts';
import { gram, outputErrorFromGram } from '../../src/quant/linalg.ts';
import { addCalibrationBatch, createCalibrationStats, summarizeStats } from '../../src/quant/stats.ts';
import { MixqError } from '../../src/core/errors.ts';
import type { QuantizerConfig } from '../../src/quant/qparams.ts';
import { dequantize, fakeQuant, storageCost } from '../../src/quant/quantizer.ts';
import { f32hex, loadGptqGolden } from './golden-util.ts';
import { channelStats, outlierLayer } from './layer-util.ts';

const L = outlierLayer();
const { W, X, rows, cols, n } = L;
const st = channelStats(X, n, cols);
const G = gram(X, n, cols);
const err = (Q: Float32Array) => outputErrorFromGram(W, Q, rows, cols, G);
const Q4G32: QuantizerConfig = {
  element: intSpec(4, false),
  granularity: { kind: 'group', axis: 1, size: 32 },
  symmetric: false,
  scaleFormat: 'fp16',
};
const Q3ROW: QuantizerConfig = {
  element: intSpec(3, true),
  granularity: { kind: 'axis', axis: 0 },
  symmetric: true,
};
const rtnErr = (q: QuantizerConfig) => err(rtn(W, [rows, cols], { quantizer: q }).Q);

test('layer error from the Gram matrix equals the error computed from X', () => {
  const Q = rtn(W, [rows, cols], { quantizer: Q4G32 }).Q;
  const a = err(Q);
  const b = outputErrorFro2(X, n, W, Q, rows, cols);
  assert.ok(Math.abs(a / b - 1) < 1e-9, `${a} vs ${b}`);
});

test('RTN equals fakeQuant with the same quantizer and reports its storage', () => {
  const r = rtn(W, [rows, cols], { quantizer: Q4G32 });
  assert.deepEqual(r.Q, fakeQuant(W, [rows, cols], Q4G32));
  assert.equal(r.cost.bitsPerWeight, 4 + 20 / 32);
});

for (const [name, q] of [
  ['int4 asym g32', Q4G32],
  ['int3 sym per-row', Q3ROW],
] as const) {
  test(`AWQ reduces the layer output error vs RTN (${name})`, () => {
    const base = rtnErr(q);
    const a = awq(W, rows, cols, { actMeanAbs: st.meanAbs, gram: G }, { quantizer: q });
    const noClip = awq(W, rows, cols, { actMeanAbs: st.meanAbs, gram: G }, { quantizer: q, clip: false });
    console.log(
      `  AWQ ${name}: RTN ${base.toFixed(1)}  AWQ scale-only ${noClip.error.toFixed(1)}  AWQ scale+clip ${a.error.toFixed(1)}  (alpha ${a.alpha})`,
    );
    assert.ok(noClip.error < 0.7 * base);
    assert.ok(a.error <= noClip.error * 1.0001);
    assert.ok(Math.abs(a.error / err(a.Q) - 1) < 1e-9);
    assert.ok(a.alpha > 0, 'a non-trivial scale is chosen for outlier channels');
    // alpha = 0 gives s = 1: that candidate is plain RTN
    assert.ok(Math.abs(a.alphaErrors[0]! / base - 1) < 1e-9);
    // deployment form: the stored Q(W diag(s)) used on x / s is the effective weight Q
    const s = a.inputScale;
    const deq = dequantize(a.scaledWeight);
    for (let i = 0; i < deq.length; i++) assert.equal(Math.fround(deq[i]! / s[i % cols]!), a.Q[i]);
  });
}

test('SmoothQuant reduces W8A8 output error (per-tensor int8 activations, per-row int8 weights)', () => {
  const w8: QuantizerConfig = {
    element: intSpec(8, true),
    granularity: { kind: 'axis', axis: 0 },
    symmetric: true,
  };
  const a8: QuantizerConfig = { element: intSpec(8, true), granularity: { kind: 'tensor' }, symmetric: true };
  const Yref = linearOutput(X, n, W, rows, cols);
  const plain = mse(
    Yref,
    Float64Array.from(simulateLinearWA(X, n, W, rows, cols, { weight: w8, activation: a8 })),
  );
  const rows5: string[] = [];
  for (const alpha of [0.5, 0.75]) {
    const s = smoothQuantScales(st.absMax, W, rows, cols, { alpha });
    const sm = mse(
      Yref,
      Float64Array.from(simulateLinearWA(X, n, W, rows, cols, { weight: w8, activation: a8, smoothing: s })),
    );
    rows5.push(`alpha ${alpha}: ${sm.toExponential(3)}`);
    assert.ok(sm < 0.25 * plain, `alpha ${alpha}: ${sm} vs ${plain}`);
  }
  console.log(`  SmoothQuant W8A8 output MSE: plain ${plain.toExponential(3)}; ${rows5.join('; ')}`);
  // smoothing alone (no quantization) leaves the product unchanged
  const s = smoothQuantScales(st.absMax, W, rows, cols, { alpha: 0.5 });
  const f32: QuantizerConfig = {
    element: getFormat('fp16'),
    granularity: { kind: 'tensor' },
    symmetric: true,
  };
  assert.ok(f32.element.kind === 'float' && s.every((v) => v > 0));
});

test('outliers: LLM.int8 decomposition and salient fp16 side matrix reduce error, storage counted', () => {
  for (const [name, q] of [
    ['int4 asym g32', Q4G32],
    ['int3 sym per-row', Q3ROW],
  ] as const) {
    const base = rtnErr(q);
    const baseBpw = storageCost(q, [rows, cols]).bitsPerWeight;
    const dec = int8Decomposition(W, rows, cols, st.absMax, { quantizer: q, threshold: 6 });
    assert.deepEqual(Array.from(dec.outlierChannels), L.outlierChannels);
    const kept = L.outlierChannels.length;
    assert.equal(dec.bits, storageCost(q, [rows, cols - kept]).bits + kept * (16 * rows + 32));
    const salA = salientSparse(
      W,
      rows,
      cols,
      { actScale: st.meanAbs },
      { quantizer: q, fraction: 0.01, criterion: 'activation' },
    );
    const hd = Float64Array.from({ length: cols }, (_, j) => G[j * cols + j]!);
    const salH = salientSparse(
      W,
      rows,
      cols,
      { hessianDiag: hd },
      { quantizer: q, fraction: 0.01, criterion: 'hessian' },
    );
    assert.equal(salH.sparse.values.length, Math.round(0.01 * rows * cols));
    assert.equal(salH.bits, storageCost(q, [rows, cols]).bits + csrBits(salH.sparse));
    console.log(
      `  outliers ${name}: RTN ${base.toFixed(1)} @${baseBpw.toFixed(3)} b/w | int8-decomp ${err(dec.Q).toFixed(1)} @${dec.bitsPerWeight.toFixed(3)} | salient1% act ${err(salA.Q).toFixed(1)} @${salA.bitsPerWeight.toFixed(3)} | salient1% hessian ${err(salH.Q).toFixed(1)} @${salH.bitsPerWeight.toFixed(3)}`,
    );
    assert.ok(err(dec.Q) < 0.5 * base);
    assert.ok(err(salA.Q) < base);
    assert.ok(err(salH.Q) < 0.6 * base);
  }
});

test('outliers at equal storage: int3 + fp16 outlier channels beats plain int4 RTN with fewer bits', () => {
  const int4: QuantizerConfig = { ...Q3ROW, element: intSpec(4, true) };
  const plain = rtn(W, [rows, cols], { quantizer: int4 });
  const dec = int8Decomposition(W, rows, cols, st.absMax, { quantizer: Q3ROW, threshold: 6 });
  console.log(
    `  int3 per-row + fp16 outliers: ${err(dec.Q).toFixed(1)} @${dec.bitsPerWeight.toFixed(3)} b/w vs int4 per-row RTN ${err(plain.Q).toFixed(1)} @${plain.cost.bitsPerWeight.toFixed(3)} b/w`,
  );
  assert.ok(dec.bitsPerWeight < plain.cost.bitsPerWeight);
  assert.ok(err(dec.Q) < 0.5 * err(plain.Q));
});

test('importance-weighted search: lower weighted error than RTN (never higher) and lower layer error', () => {
  for (const [name, q] of [
    ['int4 sym g32', { ...Q4G32, symmetric: true }],
    ['int3 sym per-row', Q3ROW],
    ['fp4 sym g32 fp16', { ...Q4G32, element: getFormat('fp4_e2m1fn'), symmetric: true }],
    ['int4 asym g32', Q4G32],
  ] as [string, QuantizerConfig][]) {
    const r = rtn(W, [rows, cols], { quantizer: q });
    const im = importanceQuantize(W, rows, cols, st.meanSq, { quantizer: q });
    let wr = 0;
    let wi = 0;
    for (let i = 0; i < W.length; i++) {
      wr += im.weights[i]! * (W[i]! - r.Q[i]!) ** 2;
      wi += im.weights[i]! * (W[i]! - im.Q[i]!) ** 2;
    }
    console.log(
      `  imatrix ${name}: weighted err RTN ${wr.toFixed(3)} -> ${wi.toFixed(3)}; layer err ${err(r.Q).toFixed(1)} -> ${err(im.Q).toFixed(1)}`,
    );
    assert.ok(wi <= wr * (1 + 1e-12));
    assert.ok(wi < wr);
    assert.ok(err(im.Q) < err(r.Q));
  }
});

// --- GPTQ options not covered by the golden file ----------------------------------------------------------

const gd = loadGptqGolden();
const GW = f32hex(gd.W_f32hex);
const GX = f32hex(gd.X_f32hex);
const GH = gptqHessian(GX, gd.n, gd.cols);
const GG = gram(GX, gd.n, gd.cols);
const gErr = (Q: Float32Array) => outputErrorFromGram(GW, Q, gd.rows, gd.cols, GG);

test('GPTQ: the lazy block size does not change the result without groups', () => {
  const cfg = { element: intSpec(4, false), symmetric: false, actOrder: true };
  const a = gptq(GW, gd.rows, gd.cols, GH, { ...cfg, blockSize: 128 });
  const b = gptq(GW, gd.rows, gd.cols, GH, { ...cfg, blockSize: 16 });
  const c = gptq(GW, gd.rows, gd.cols, GH, { ...cfg, blockSize: 1 });
  let mm = 0;
  for (let i = 0; i < a.codes.length; i++)
    mm += (a.codes[i] !== b.codes[i] ? 1 : 0) + (a.codes[i] !== c.codes[i] ? 1 : 0);
  assert.ok(mm <= 2, `mismatches ${mm}`);
  assert.ok(Math.abs(gErr(a.Q) / gErr(b.Q) - 1) < 1e-4);
});

test('GPTQ: static groups with act-order keep natural-order groups and beat RTN', () => {
  const q: QuantizerConfig = {
    element: intSpec(4, false),
    granularity: { kind: 'group', axis: 1, size: 32 },
    symmetric: false,
  };
  const r = gptq(GW, gd.rows, gd.cols, GH, {
    element: q.element,
    symmetric: false,
    groupSize: 32,
    actOrder: true,
    staticGroups: true,
  });
  assert.deepEqual(
    Array.from(r.gIdx),
    Array.from({ length: gd.cols }, (_, j) => Math.floor(j / 32)),
  );
  for (let row = 0; row < gd.rows; row++)
    for (let j = 0; j < gd.cols; j++) {
      const g = row * r.nGroups + r.gIdx[j]!;
      assert.equal(
        r.Q[row * gd.cols + j],
        Math.fround(r.scale[g]! * (r.codes[row * gd.cols + j]! - r.zero[g]!)),
      );
    }
  const e = gErr(r.Q);
  const base = gErr(rtn(GW, [gd.rows, gd.cols], { quantizer: q }).Q);
  console.log(`  GPTQ static groups + act-order int4 g32: ${e.toFixed(2)} vs RTN ${base.toFixed(2)}`);
  assert.ok(e < 0.85 * base);
});

test('GPTQ with float and codebook elements (fp4_e2m1fn, nf4) and mse / fp16 / e8m0 scales beats RTN', () => {
  for (const [name, element, scaleFormat] of [
    ['fp4_e2m1fn g32 e8m0', getFormat('fp4_e2m1fn'), 'e8m0'],
    ['nf4 g32 fp16', getFormat('nf4'), 'fp16'],
    ['int4 g32 mse fp16', intSpec(4, true), 'fp16'],
  ] as const) {
    const scaleRule = name.includes('mse') ? ({ kind: 'mse', grid: 20 } as const) : undefined;
    const r = gptq(GW, gd.rows, gd.cols, GH, {
      element,
      symmetric: true,
      groupSize: 32,
      actOrder: true,
      scaleFormat,
      ...(scaleRule ? { scaleRule } : {}),
    });
    const q: QuantizerConfig = {
      element,
      granularity: { kind: 'group', axis: 1, size: 32 },
      symmetric: true,
      scaleFormat,
      ...(scaleRule ? { scaleRule } : {}),
    };
    const e = gErr(r.Q);
    const base = gErr(rtn(GW, [gd.rows, gd.cols], { quantizer: q }).Q);
    console.log(`  GPTQ ${name}: ${e.toFixed(2)} vs RTN ${base.toFixed(2)} (ratio ${(e / base).toFixed(3)})`);
    assert.ok(e < 0.85 * base);
  }
});

test('calibration statistics accumulated in batches equal the one-shot values', () => {
  const st = createCalibrationStats(cols);
  for (let b = 0; b < 4; b++) addCalibrationBatch(st, X.subarray(b * 128 * cols, (b + 1) * 128 * cols), 128);
  const s = summarizeStats(st);
  const H = gptqHessian(X, n, cols);
  // four 128-row float32 products summed in float64 vs one 512-row product: float32 rounding apart
  const hmax = H.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let i = 0; i < H.length; i++) assert.ok(Math.abs(s.hessian[i]! - H[i]!) <= 1e-6 * hmax);
  for (let j = 0; j < cols; j++) {
    assert.equal(s.absMax[j], st.absMax[j]);
    assert.ok(Math.abs(s.meanAbs[j]! - channelStats(X, n, cols).meanAbs[j]!) < 1e-4);
  }
  assert.throws(() => summarizeStats(createCalibrationStats(3)), MixqError);
});

test('GPTQ: a dead input (all-zero activations) gets a zero weight column; ragged last group', () => {
  const Xd = Float32Array.from(GX);
  for (let t = 0; t < gd.n; t++) Xd[t * gd.cols + 9] = 0;
  const Hd = gptqHessian(Xd, gd.n, gd.cols);
  const r = gptq(GW, gd.rows, gd.cols, Hd, { element: intSpec(4, false), symmetric: false, groupSize: 48 });
  for (let row = 0; row < gd.rows; row++) assert.equal(r.Q[row * gd.cols + 9], 0);
  assert.equal(r.nGroups, 3); // 48 + 48 + 32 columns
  assert.equal(r.gIdx[127], 2);
  assert.throws(
    () => gptq(GW, gd.rows, gd.cols, Hd, { element: intSpec(4, false), symmetric: false, groupSize: 0 }),
    MixqError,
  );
});

test('HQQ (data-free): lower l_0.7 error than min-max RTN, fp16 zero points counted', () => {
  const q: QuantizerConfig = { ...Q4G32, element: intSpec(3, false), scaleFormat: 'fp16' };
  const r = rtn(W, [rows, cols], { quantizer: q });
  const h = hqq(W, [rows, cols], { quantizer: q });
  const lp = (Q: Float32Array) => W.reduce((s, w, i) => s + Math.abs(w - Q[i]!) ** 0.7, 0);
  const l2 = (Q: Float32Array) => W.reduce((s, w, i) => s + (w - Q[i]!) ** 2, 0);
  console.log(
    `  HQQ uint3 g32: l0.7 ${lp(r.Q).toFixed(2)} -> ${lp(h.Q).toFixed(2)}, l2 ${l2(r.Q).toFixed(4)} -> ${l2(h.Q).toFixed(4)}, ${h.bitsPerWeight} b/w`,
  );
  assert.ok(lp(h.Q) < lp(r.Q));
  assert.equal(h.bitsPerWeight, 3 + (16 + 16) / 32);
  for (const z of h.zero) assert.equal(Math.fround(z), z);
  assert.throws(() => hqq(W, [rows, cols], { quantizer: Q3ROW }), MixqError);
});

test('AWQ clip search works for per-tensor and 2-D block granularity too', () => {
  for (const granularity of [{ kind: 'tensor' }, { kind: 'block', rows: 8, cols: 32 }] as const) {
    const q: QuantizerConfig = { element: intSpec(4, true), granularity, symmetric: true };
    const a = awq(W, rows, cols, { actMeanAbs: st.meanAbs, gram: G }, { quantizer: q, grid: 5, clipGrid: 5 });
    assert.ok(a.error < rtnErr(q), `${granularity.kind}: ${a.error} vs ${rtnErr(q)}`);
  }
});

test('AWQ clip search: the batched per-row path (groups of 32) = the scalar path (1 x 32 blocks, the same groups)', () => {
  const mk = (granularity: QuantizerConfig['granularity']): QuantizerConfig => ({
    element: intSpec(4, false),
    granularity,
    symmetric: false,
  });
  const stats = { actMeanAbs: st.meanAbs, gram: G };
  const runs = awq(W, rows, cols, stats, { quantizer: mk({ kind: 'group', axis: 1, size: 32 }), grid: 4 });
  const scalar = awq(W, rows, cols, stats, { quantizer: mk({ kind: 'block', rows: 1, cols: 32 }), grid: 4 });
  let same = 0;
  for (let g = 0; g < runs.clipRatio.length; g++) if (runs.clipRatio[g] === scalar.clipRatio[g]) same++;
  // the two sum the quadratic forms in different orders: a near tie may go either way
  assert.ok(same >= 0.99 * runs.clipRatio.length, `${same} of ${runs.clipRatio.length} ratios agree`);
  assert.ok(Math.abs(runs.error / scalar.error - 1) < 1e-3, `${runs.error} vs ${scalar.error}`);
});

// Sensitivity analysis (browser-safe part): proxies against brute-force definitions on synthetic layers
// (explicit activations X, outputs X W computed element by element), Spearman against hand-computed
// cases with ties, candidates' exact storage, and the allocator's input shape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { reduceProblem } from '../../src/analysis/allocate/problem.ts';
import {
  averageRanks,
  computeProxies,
  defaultCandidates,
  errorMatrix,
  fullCandidates,
  injectNoise,
  type LayerStats,
  noiseCalibrated,
  parseCandidateIds,
  proxyCorrelation,
  quantizeScheme,
  schemeId,
  schemeStorage,
  type SensitivityTable,
  spearman,
  toAllocWeights,
} from '../../src/analysis/sensitivity/index.ts';
import { Rng } from '../../src/core/rng.ts';
import { channelOf, fromRows, rowLayout, toRows } from '../../src/quant/layout.ts';
import { storageCost } from '../../src/quant/quantizer.ts';
import { DEFAULT_CANDIDATE_IDS } from '../candidate-ids.ts';
import { quantizerOf } from '../../src/quant/scheme.ts';

function randn(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.nextNormal());
}

/** Stats of explicit activations X [n, C]: E[x^2] and X^T X / n, by plain loops. */
function statsOf(X: Float32Array, n: number, C: number): LayerStats {
  const ms = new Float64Array(C);
  const g = new Float64Array(C * C);
  for (let t = 0; t < n; t++)
    for (let i = 0; i < C; i++) {
      ms[i]! += (X[t * C + i]! * X[t * C + i]!) / n;
      for (let j = 0; j < C; j++) g[i * C + j]! += (X[t * C + i]! * X[t * C + j]!) / n;
    }
  return { channels: C, meanSquare: ms, gram: g };
}

test('layout: MatMul B [K, N] is transposed to rows [N, K] and back; conv keeps its layout', () => {
  const L = rowLayout([3, 2], 1);
  assert.deepEqual([L.rows, L.cols], [2, 3]);
  const w = Float32Array.of(1, 2, 3, 4, 5, 6); // [[1,2],[3,4],[5,6]]
  assert.deepEqual([...toRows(w, L)], [1, 3, 5, 2, 4, 6]);
  assert.deepEqual([...fromRows(toRows(w, L), L)], [...w]);
  const C = rowLayout([6, 2, 3, 3], 0, 4); // grouped conv: 4 channels, 2 per group -> 2 groups
  assert.deepEqual([C.rows, C.cols, C.kernel, C.groups], [6, 18, 9, 2]);
  assert.equal(channelOf(C, 0, 17), 1);
  assert.equal(channelOf(C, 3, 0), 2); // rows 3..5 read channels 2..3
  assert.throws(() => rowLayout([6, 2, 3, 3], 0, 5));
});

test('proxies on a MatMul layer equal their brute-force definitions (output error = mean ||X W - X Q||^2)', () => {
  const rng = new Rng(7);
  const K = 12;
  const N = 6;
  const n = 40;
  const Wt = randn(K * N, rng); // [K, N] as ONNX stores it
  // correlated activations with uneven channel scales, so output != imatrix != weight error
  const X = new Float32Array(n * K);
  for (let t = 0; t < n; t++) {
    const z = rng.nextNormal();
    for (let k = 0; k < K; k++) X[t * K + k] = (k + 1) * 0.3 * rng.nextNormal() + z;
  }
  const L = rowLayout([K, N], 1);
  const W = toRows(Wt, L);
  const st = statsOf(X, n, K);
  const [cand] = parseCandidateIds(['int3-pc-rtn']);
  const Q = quantizeScheme(W, L, cand!, st);
  const Qt = fromRows(Q, L);
  const p = computeProxies(W, Q, L, st);

  let we = 0;
  let ww = 0;
  for (let i = 0; i < Wt.length; i++) {
    we += (Wt[i]! - Qt[i]!) ** 2;
    ww += Wt[i]! ** 2;
  }
  let out = 0;
  for (let t = 0; t < n; t++)
    for (let o = 0; o < N; o++) {
      let y = 0;
      let yq = 0;
      for (let k = 0; k < K; k++) {
        y += X[t * K + k]! * Wt[k * N + o]!;
        yq += X[t * K + k]! * Qt[k * N + o]!;
      }
      out += (y - yq) ** 2 / n;
    }
  let im = 0;
  for (let k = 0; k < K; k++) {
    let d = 0;
    for (let t = 0; t < n; t++) d += X[t * K + k]! ** 2 / n;
    for (let o = 0; o < N; o++) im += d * (Wt[k * N + o]! - Qt[k * N + o]!) ** 2;
  }
  const close = (a: number, b: number) =>
    assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
  assert.ok(we > 0);
  close(p.weight, we);
  close(p.weightRel, we / ww);
  close(p.imatrix, im);
  close(p.output!, out);
  assert.notEqual(Math.round(p.output! * 1e6), Math.round(p.imatrix * 1e6));
});

test('output error of a grouped 1x1 convolution equals the brute-force output error', () => {
  const rng = new Rng(3);
  const C = 6;
  const groups = 3;
  const I = C / groups;
  const O = 6;
  const n = 30;
  const W = randn(O * I, rng); // [O, I, 1, 1]
  const X = randn(n * C, rng);
  const L = rowLayout([O, I, 1, 1], 0, C);
  const st = statsOf(X, n, C);
  const Q = quantizeScheme(W, L, parseCandidateIds(['int2-pc-rtn'])[0]!, st);
  const p = computeProxies(W, Q, L, st);
  let out = 0;
  for (let t = 0; t < n; t++)
    for (let o = 0; o < O; o++) {
      const base = Math.floor(o / (O / groups)) * I;
      let e = 0;
      for (let i = 0; i < I; i++) e += X[t * C + base + i]! * (W[o * I + i]! - Q[o * I + i]!);
      out += (e * e) / n;
    }
  assert.ok(Math.abs(p.output! - out) <= 1e-9 * out);
});

test('noise-calibrated proxy scales the measured KL by the ratio of output errors; noise follows row RMS', () => {
  assert.equal(noiseCalibrated(0.02, 4, 1), 0.005);
  assert.equal(noiseCalibrated(0.02, 4, 0), 0);
  assert.throws(() => noiseCalibrated(0.02, 0, 1));
  const L = rowLayout([2, 4000], 0);
  const W = new Float32Array(8000);
  for (let c = 0; c < 4000; c++) {
    W[c] = c % 2 ? 1 : -1; // rms 1
    W[4000 + c] = c % 2 ? 10 : -10; // rms 10
  }
  const E = errorMatrix(W, injectNoise(W, L, 0.1, 5));
  const rms = (r: number) =>
    Math.sqrt(E.subarray(r * 4000, r * 4000 + 4000).reduce((s, v) => s + v * v, 0) / 4000);
  assert.ok(Math.abs(rms(0) - 0.1) < 0.005 && Math.abs(rms(1) - 1) < 0.05, `${rms(0)} ${rms(1)}`);
  assert.deepEqual(injectNoise(W, L, 0.1, 5), injectNoise(W, L, 0.1, 5));
});

test('Spearman: hand-computed cases including ties (scipy.stats.spearmanr values)', () => {
  assert.deepEqual([...averageRanks([3, 1, 3, 3, 2])], [4, 1, 4, 4, 2]);
  assert.deepEqual([...averageRanks([5, 5])], [1.5, 1.5]);
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]: rho = 4.5 / sqrt(4.5 * 5)
  assert.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-15);
  // d = rank differences (1-2, 2-1, 3-3) without ties: 1 - 6 * 2 / (3 * 8) = 0.5
  assert.ok(Math.abs(spearman([1, 2, 3], [2, 1, 3]) - 0.5) < 1e-15);
  // ties on both sides: x ranks [1.5,1.5,3.5,3.5], y ranks [1,2.5,2.5,4] -> 3 / sqrt(4 * 4.5)
  assert.ok(Math.abs(spearman([0, 0, 1, 1], [1, 2, 2, 3]) - 3 / Math.sqrt(18)) < 1e-15);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  assert.throws(() => spearman([1, Number.NaN], [1, 2]));
});

test('Spearman is invariant under strictly increasing maps and symmetric (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: -5, max: 5 }), fc.integer({ min: -5, max: 5 })), {
        minLength: 3,
        maxLength: 30,
      }),
      (pairs) => {
        const x = pairs.map((p) => p[0]);
        const y = pairs.map((p) => p[1]);
        const r = spearman(x, y);
        const r2 = spearman(
          x.map((v) => v * v * v + 1),
          y.map((v) => Math.exp(v)),
        );
        if (Number.isNaN(r)) return Number.isNaN(r2);
        return Math.abs(r - r2) < 1e-12 && Math.abs(r - spearman(y, x)) < 1e-12 && Math.abs(r) <= 1 + 1e-12;
      },
    ),
  );
});

test('candidates: unique ids, default set inside the full set, exact bytes = storageCost on [rows, cols]', () => {
  const full = fullCandidates();
  assert.equal(new Set(full.map(schemeId)).size, full.length);
  assert.deepEqual(defaultCandidates().map(schemeId), DEFAULT_CANDIDATE_IDS);
  // ids are parsed back to the same schemes; the short fp8 name of earlier versions is an alias
  assert.deepEqual(parseCandidateIds(full.map(schemeId)), full);
  assert.deepEqual(parseCandidateIds(['fp8_e4m3-pc-rtn']), parseCandidateIds(['fp8_e4m3fn-pc-rtn']));
  for (const c of full)
    assert.deepEqual(schemeStorage(c, 64, 96), {
      bits: storageCost(quantizerOf(c), [64, 96]).bits,
      bytes: storageCost(quantizerOf(c), [64, 96]).bytes,
    });
  // NVFP4: 4-bit codes + 8-bit scale per 16 + fp32 tensor scale; MXFP4: 4 bits + 8 per 32
  const [nv, mx, i4] = parseCandidateIds(['nvfp4-rtn', 'mxfp4-rtn', 'int4-g32-rtn']);
  assert.equal(schemeStorage(nv!, 64, 96).bits, 64 * 96 * 4 + (64 * 96 * 8) / 16 + 32);
  assert.equal(schemeStorage(mx!, 64, 96).bits, 64 * 96 * 4.25);
  assert.equal(schemeStorage(i4!, 64, 96).bits, 64 * 96 * 4 + 64 * 3 * (16 + 4));
  assert.throws(() => parseCandidateIds(['int9-rtn']), /unknown candidate/);
});

test('every full-set candidate quantizes a small layer; error shrinks with more element bits', () => {
  const rng = new Rng(11);
  const K = 64;
  const N = 16;
  const n = 80;
  const X = randn(n * K, rng);
  const st = statsOf(X, n, K);
  const L = rowLayout([K, N], 1);
  const W = toRows(randn(K * N, rng, 0.1), L);
  const errs = new Map<string, number>();
  for (const c of fullCandidates()) {
    const Q = quantizeScheme(W, L, c, st);
    assert.equal(Q.length, W.length);
    const p = computeProxies(W, Q, L, st);
    assert.ok(Number.isFinite(p.output!) && p.weight > 0, schemeId(c));
    errs.set(schemeId(c), p.output!);
  }
  assert.ok(errs.get('int8-pc-rtn')! < errs.get('int4-pc-rtn')!);
  assert.ok(errs.get('int4-g32-rtn')! < errs.get('int2-g32-rtn')!);
  // GPTQ minimises exactly this output error, so it must not lose to RTN on the calibration data
  assert.ok(errs.get('int3-g32-gptq')! < errs.get('int3-g32-rtn')!);
});

test('table -> allocator input: per weight, candidates with exact bytes/bits and the chosen damage', () => {
  const table: SensitivityTable = {
    model: 'toy',
    metricName: 'bpc',
    baselineMetric: 2,
    weights: ['a', 'b'].map((name, k) => ({
      name,
      dims: [4, 8],
      elements: 32,
      entries: ['int8-pc-rtn', 'int4-pc-rtn'].map((id, j) => ({
        candidate: id,
        scheme: parseCandidateIds([id])[0]!,
        bits: 32 * (j ? 4 : 8),
        bytes: 4 * (j ? 4 : 8),
        proxies: { weight: j + 1 + k, weightRel: 0.1, imatrix: 1, noiseCalibrated: (j + 1) * (k + 1) },
        measured: { kl: (j + 1) * (k + 1) * 0.01, metric: 2 + j * 0.1 },
      })),
    })),
  };
  const aw = toAllocWeights(table, 'noiseCalibrated');
  assert.deepEqual(aw[1], {
    name: 'b',
    elements: 32,
    candidates: [
      { scheme: 'int8-pc-rtn', bytes: 32, bits: 256, damage: 2 },
      { scheme: 'int4-pc-rtn', bytes: 16, bits: 128, damage: 4 },
    ],
  });
  assert.ok(Math.abs(toAllocWeights(table, 'metric')[0]!.candidates[1]!.damage - 0.1) < 1e-12);
  assert.throws(() => toAllocWeights(table, 'output'), /no 'output' damage/);
  const r = reduceProblem({ weights: aw, budget: { kind: 'bitsPerWeight', bits: 6 } });
  assert.equal(r.items.length, 2);
  const c = proxyCorrelation(table, 'noiseCalibrated');
  assert.equal(c.overall, 1);
  assert.equal(c.pairs, 4);
  assert.equal(c.perCandidate['int8-pc-rtn'], 1);
});

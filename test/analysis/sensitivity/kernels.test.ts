// Differential tests of the two hot kernels of the sensitivity analysis against straightforward loops:
// outputError (symmetrized, packed, several error vectors at a time) against the triple loop of its
// definition, on matrix, grouped-conv and depthwise layouts with kernel > 1 and vector counts that are not
// a multiple of the batch; and the blocked upper-triangle Gram accumulation of captureActivationStats
// against one rank-1 update per activation row, on MatMul and Conv activations with row counts that are
// not a multiple of the block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { outputError } from '../../../src/analysis/sensitivity/index.ts';
import { type RowLayout, rowLayout } from '../../../src/quant/layout.ts';
import { Rng } from '../../../src/core/rng.ts';
import { captureActivationStats } from '../../../src/runtime/calibration.node.ts';
import type { Feeds } from '../../../src/runtime/ort.node.ts';
import type { WeightFedModel } from '../../../src/runtime/weights.node.ts';

/** sum_r sum_k sum_{i,j} e_i G[base + i][base + j] e_j, written from the definition; also sum of |terms|. */
function naiveOutputError(E: ArrayLike<number>, L: RowLayout, G: ArrayLike<number>): [number, number] {
  const C = L.groups * L.inPerGroup;
  const perGroup = L.rows / L.groups;
  let s = 0;
  let abs = 0;
  for (let r = 0; r < L.rows; r++) {
    const base = Math.floor(r / perGroup) * L.inPerGroup;
    for (let k = 0; k < L.kernel; k++)
      for (let i = 0; i < L.inPerGroup; i++)
        for (let j = 0; j < L.inPerGroup; j++) {
          const t =
            E[r * L.cols + i * L.kernel + k]! *
            G[(base + i) * C + base + j]! *
            E[r * L.cols + j * L.kernel + k]!;
          s += t;
          abs += Math.abs(t);
        }
  }
  return [s, abs];
}

/** X^T X / n of n random correlated rows of C channels (symmetric positive semi-definite). */
function psdGram(C: number, n: number, rng: Rng): Float64Array {
  const X = Float64Array.from({ length: n * C }, () => rng.nextNormal());
  for (let t = 0; t < n; t++) for (let c = 1; c < C; c++) X[t * C + c]! += 0.5 * X[t * C + c - 1]!;
  const G = new Float64Array(C * C);
  for (let t = 0; t < n; t++)
    for (let i = 0; i < C; i++)
      for (let j = 0; j < C; j++) G[i * C + j]! += (X[t * C + i]! * X[t * C + j]!) / n;
  return G;
}

test('outputError equals the definition on matrix, grouped-conv and depthwise layouts (PSD and arbitrary G)', () => {
  const rng = new Rng(11);
  const cases: { L: RowLayout; name: string }[] = [
    { name: 'matmul 37 x 13', L: rowLayout([37, 13], 1) }, // 13 vectors: one full batch of 8 + 5
    { name: 'matmul 1 x 3', L: rowLayout([1, 3], 1) },
    { name: 'gemm 8 x 9 (exactly one batch)', L: rowLayout([8, 9], 0) },
    { name: 'conv 6x5x3x3, 2 groups', L: rowLayout([6, 5, 3, 3], 0, 10) }, // 27 vectors per group
    { name: 'conv 4x7x1x2, 1 group', L: rowLayout([4, 7, 1, 2], 0) },
    { name: 'depthwise 4x1x3x3', L: rowLayout([4, 1, 3, 3], 0, 4) },
    { name: 'conv 9x2x2x2, 3 groups', L: rowLayout([9, 2, 2, 2], 0, 6) },
  ];
  for (const { name, L } of cases) {
    const C = L.groups * L.inPerGroup;
    const E = Float64Array.from({ length: L.rows * L.cols }, () => rng.nextNormal());
    E[0] = 0; // exact zeros are fine
    const psd = psdGram(C, 2 * C + 3, rng);
    const [want, wantAbs] = naiveOutputError(E, L, psd);
    const got = outputError(E, L, psd);
    assert.ok(Math.abs(got - want) <= 1e-12 * wantAbs, `${name} PSD: ${got} vs ${want}`);
    // Non-symmetric G: only its symmetric part counts, exactly as in the definition. ArrayLike inputs.
    const G = Array.from({ length: C * C }, () => rng.nextNormal());
    const [w2, w2Abs] = naiveOutputError(E, L, G);
    const g2 = outputError(Array.from(E), L, G);
    assert.ok(Math.abs(g2 - w2) <= 1e-12 * w2Abs, `${name} arbitrary G: ${g2} vs ${w2}`);
  }
});

test('outputError of a 96-channel matrix with 21 rows (2 full batches + 5) matches the definition to 1e-12', () => {
  const rng = new Rng(5);
  const L = rowLayout([96, 21], 1);
  const E = Float64Array.from({ length: L.rows * L.cols }, () => rng.nextNormal());
  const G = psdGram(96, 40, rng);
  const [want, abs] = naiveOutputError(E, L, G);
  assert.ok(abs > 0);
  assert.ok(Math.abs(outputError(E, L, G) - want) <= 1e-12 * want);
});

/** A stand-in for a loaded model whose baseline run returns the given activations, one set per sample. */
function fakeModel(
  points: { weight: string; activation: string; op: string }[],
  samples: Record<string, ort.Tensor>[],
): { model: WeightFedModel; feeds: Feeds[] } {
  let next = 0;
  const model = {
    captures: points.map((p) => ({ ...p, node: p.weight })),
    baseline: { run: () => Promise.resolve(samples[next++]!) },
  } as unknown as WeightFedModel;
  return { model, feeds: samples.map(() => ({})) };
}

/** rows, absMax, sumSquares and X^T X by one rank-1 update per row (the original capture loop). */
function naiveStats(tensors: ort.Tensor[], conv: boolean) {
  const c = conv ? tensors[0]!.dims[1]! : tensors[0]!.dims.at(-1)!;
  const absMax = new Float32Array(c);
  const sumSquares = new Float64Array(c);
  const gram = new Float64Array(c * c);
  let rows = 0;
  const add = (row: Float64Array) => {
    for (let ch = 0; ch < c; ch++) {
      absMax[ch] = Math.max(absMax[ch]!, Math.abs(row[ch]!));
      sumSquares[ch]! += row[ch]! * row[ch]!;
    }
    for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) gram[i * c + j]! += row[i]! * row[j]!;
    rows++;
  };
  for (const t of tensors) {
    const data = t.data as Float32Array;
    const row = new Float64Array(c);
    if (conv) {
      const spatial = t.dims.slice(2).reduce((a, b) => a * b, 1);
      for (let b = 0; b < t.dims[0]!; b++)
        for (let p = 0; p < spatial; p++) {
          for (let ch = 0; ch < c; ch++) row[ch] = data[(b * c + ch) * spatial + p]!;
          add(row);
        }
    } else
      for (let r = 0; r < data.length / c; r++) {
        for (let ch = 0; ch < c; ch++) row[ch] = data[r * c + ch]!;
        add(row);
      }
  }
  return { rows, absMax, sumSquares, gram };
}

function randomTensor(dims: number[], rng: Rng): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  // Some exact zeros and uneven channel scales.
  const data = Float32Array.from({ length: n }, (_, i) =>
    i % 7 === 3 ? 0 : (1 + (i % 5)) * rng.nextNormal(),
  );
  return new ort.Tensor('float32', data, dims);
}

test('blocked Gram capture equals one rank-1 update per row (MatMul and Conv, partial blocks, odd channels)', async () => {
  const rng = new Rng(23);
  for (const c of [1, 5, 8, 13, 34]) {
    // MatMul input [batch, seq, c]: 2 x 37 + 1 x 3 rows over two samples (neither a multiple of 32);
    // Conv input [n, c, h, w]: 2 x 5 x 7 + 1 x 1 x 1 rows.
    const mm = [randomTensor([2, 37, c], rng), randomTensor([1, 3, c], rng)];
    const cv = [randomTensor([2, c, 5, 7], rng), randomTensor([1, c, 1, 1], rng)];
    const { model, feeds } = fakeModel(
      [
        { weight: 'w_mm', activation: 'a_mm', op: 'MatMul' },
        { weight: 'w_mm2', activation: 'a_mm', op: 'MatMul' }, // two weights reading one activation
        { weight: 'w_cv', activation: 'a_cv', op: 'Conv' },
      ],
      [0, 1].map((s) => ({ a_mm: mm[s]!, a_cv: cv[s]! })),
    );
    const stats = await captureActivationStats(model, feeds, { maxGram: 64 });
    for (const [weight, tensors, conv] of [
      ['w_mm', mm, false],
      ['w_mm2', mm, false],
      ['w_cv', cv, true],
    ] as const) {
      const got = stats.get(weight)!;
      const want = naiveStats(tensors, conv);
      assert.equal(got.rows, want.rows);
      assert.deepEqual(got.absMax, want.absMax);
      assert.deepEqual(got.sumSquares, want.sumSquares);
      const g = got.gram!;
      for (let i = 0; i < c; i++)
        for (let j = 0; j < c; j++) {
          assert.equal(g[i * c + j], g[j * c + i], `${weight} c=${c}: symmetric at ${i},${j}`);
          const bound = 1e-12 * Math.sqrt(want.gram[i * (c + 1)]! * want.gram[j * (c + 1)]!);
          assert.ok(
            Math.abs(g[i * c + j]! - want.gram[i * c + j]!) <= bound,
            `${weight} c=${c} at ${i},${j}`,
          );
        }
    }
  }
});

test('Gram capture respects maxGram; statistics without a Gram are unchanged', async () => {
  const rng = new Rng(2);
  const t = randomTensor([3, 40, 9], rng);
  const { model, feeds } = fakeModel([{ weight: 'w', activation: 'a', op: 'MatMul' }], [{ a: t }]);
  const s = (await captureActivationStats(model, feeds, { maxGram: 8 })).get('w')!;
  const want = naiveStats([t], false);
  assert.equal(s.gram, undefined);
  assert.equal(s.rows, 120);
  assert.deepEqual(s.sumSquares, want.sumSquares);
  assert.deepEqual(s.absMax, want.absMax);
});

test('noiseCalibratedCurve: recovers a power law through two noise levels, clamps the exponent, one level = linear', async () => {
  const { noiseCalibratedCurve, noiseCalibrated } =
    await import('../../../src/analysis/sensitivity/proxies.ts');
  const law = (e: number) => 0.3 * e ** 2;
  const pts = [
    { kl: law(0.01), outputError: 0.01 },
    { kl: law(0.25), outputError: 0.25 },
  ];
  for (const e of [0.001, 0.05, 0.1, 1, 3]) {
    const got = noiseCalibratedCurve(pts, e);
    assert.ok(Math.abs(got - law(e)) <= 1e-9 * law(e), `${e}: ${got} vs ${law(e)}`);
  }
  // KL growing like err^5 is clamped to exponent 3 (from the nearer point)
  const steep = [
    { kl: 1e-10, outputError: 0.01 },
    { kl: 1e-10 * 10 ** 5, outputError: 0.1 },
  ];
  assert.ok(Math.abs(noiseCalibratedCurve(steep, 1) - 1e-5 * 10 ** 3) < 1e-12);
  // sublinear growth is clamped to 1: never below the linear extrapolation
  const flat = [
    { kl: 1e-3, outputError: 0.01 },
    { kl: 2e-3, outputError: 0.1 },
  ];
  assert.ok(Math.abs(noiseCalibratedCurve(flat, 1) - 2e-2) < 1e-12);
  assert.equal(noiseCalibratedCurve([pts[0]!], 0.5), noiseCalibrated(pts[0]!.kl, 0.01, 0.5));
  assert.equal(noiseCalibratedCurve(pts, 0), 0);
});

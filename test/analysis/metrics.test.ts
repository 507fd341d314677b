// Metrics on hand-computed cases and against direct formulas.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cosineSimilarity,
  klDivergenceSoftmax,
  linearOutput,
  maxAbsError,
  mse,
  outputErrorFro2,
  relativeOutputError,
  sqnrDb,
  top1Agreement,
} from '../../src/analysis/metrics.ts';
import { MixqError } from '../../src/core/errors.ts';

const f = (...v: number[]) => Float64Array.from(v);

test('element-wise metrics by hand', () => {
  assert.equal(mse(f(1, 2), f(1, 3)), 0.5);
  assert.equal(maxAbsError(f(1, -2, 3), f(1, 2, 2.5)), 4);
  assert.equal(sqnrDb(f(3, 4), f(3, 4)), Infinity);
  // signal 25, noise 0.25 -> 20 dB
  assert.ok(Math.abs(sqnrDb(f(3, 4), f(3, 4.5)) - 20) < 1e-12);
  assert.equal(cosineSimilarity(f(1, 0), f(0, 1)), 0);
  assert.ok(Math.abs(cosineSimilarity(f(1, 1), f(2, 2)) - 1) < 1e-15);
  assert.equal(cosineSimilarity(f(0, 0), f(0, 0)), 1);
  assert.throws(() => mse(f(1), f(1, 2)), MixqError);
});

test('layer output errors: X [2,2], W [1,2]', () => {
  const X = f(1, 2, 3, 4);
  const W = f(1, 1);
  const Q = f(1, 0.5);
  assert.deepEqual(Array.from(linearOutput(X, 2, W, 1, 2)), [3, 7]);
  // X (W - Q)^T = [1, 2] -> squared norm 5; ||X W^T||^2 = 58
  assert.ok(Math.abs(outputErrorFro2(X, 2, W, Q, 1, 2) - 5) < 1e-12);
  assert.ok(Math.abs(relativeOutputError(X, 2, W, Q, 1, 2) - Math.sqrt(5 / 58)) < 1e-12);
});

test('KL divergence of softmax rows and top-1 agreement', () => {
  const p = f(0, 0, 10, 1, 2, 3);
  assert.equal(klDivergenceSoftmax(p, p, 2, 3), 0);
  // shift invariance of softmax
  assert.ok(
    klDivergenceSoftmax(
      p,
      p.map((v) => v + 5),
      2,
      3,
    ) < 1e-12,
  );
  const q = f(0, 1, 10, 3, 2, 1);
  // direct formula
  let want = 0;
  for (let r = 0; r < 2; r++) {
    const sp = [0, 1, 2].map((j) => Math.exp(p[r * 3 + j]!));
    const sq = [0, 1, 2].map((j) => Math.exp(q[r * 3 + j]!));
    const zp = sp.reduce((a, b) => a + b);
    const zq = sq.reduce((a, b) => a + b);
    for (let j = 0; j < 3; j++) want += (sp[j]! / zp) * Math.log(sp[j]! / zp / (sq[j]! / zq));
  }
  assert.ok(Math.abs(klDivergenceSoftmax(p, q, 2, 3) - want / 2) < 1e-12);
  assert.equal(top1Agreement(p, q, 2, 3), 0.5);
});

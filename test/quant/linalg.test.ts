// Dense kernels against naive textbook versions: Gram matrix, Cholesky, triangular inverse, the
// one-factorisation upper Cholesky of H^-1 (vs explicit inverse + factorisation), blocked C -= A B.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { MixqError } from '../../src/core/errors.ts';
import {
  choleskyLower,
  gram,
  invertLower,
  outputErrorFromGram,
  subMatMul,
  upperCholeskyOfInverse,
} from '../../src/quant/linalg.ts';

function randSpd(n: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const X = Float32Array.from({ length: 3 * n * n }, () => r.nextNormal());
  const G = gram(X, 3 * n, n);
  for (let i = 0; i < n; i++) G[i * n + i]! += 0.1;
  return G;
}
function matmul(A: Float64Array, B: Float64Array, n: number): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) C[i * n + j]! += A[i * n + k]! * B[k * n + j]!;
  return C;
}
function transpose(A: Float64Array, n: number): Float64Array {
  const T = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) T[j * n + i] = A[i * n + j]!;
  return T;
}
function maxDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('gram matches the naive X^T X', () => {
  const r = new Rng(1);
  const X = Float32Array.from({ length: 7 * 5 }, () => r.nextNormal());
  const G = gram(X, 7, 5);
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 5; j++) {
      let s = 0;
      for (let t = 0; t < 7; t++) s += X[t * 5 + i]! * X[t * 5 + j]!;
      assert.ok(Math.abs(G[i * 5 + j]! - s) < 1e-12);
    }
});

test('Cholesky, triangular inverse and the upper factor of H^-1', () => {
  for (const n of [1, 2, 7, 33]) {
    const H = randSpd(n, n);
    const L = choleskyLower(Float64Array.from(H), n);
    assert.ok(maxDiff(matmul(L, transpose(L, n), n), H) < 1e-9 * n);
    const Li = invertLower(L, n);
    const I = matmul(Li, L, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) assert.ok(Math.abs(I[i * n + j]! - (i === j ? 1 : 0)) < 1e-9);
    // H^-1 = L^-T L^-1; its upper Cholesky factor U satisfies U^T U = H^-1 with U upper, diag > 0
    const Hinv = matmul(transpose(Li, n), Li, n);
    const U = upperCholeskyOfInverse(H, n);
    for (let i = 0; i < n; i++) {
      assert.ok(U[i * n + i]! > 0);
      for (let j = 0; j < i; j++) assert.equal(U[i * n + j], 0);
    }
    assert.ok(maxDiff(matmul(transpose(U, n), U, n), Hinv) < 1e-9 * Math.max(1, ...Hinv.map(Math.abs)));
  }
  assert.throws(() => choleskyLower(Float64Array.of(1, 2, 2, 1), 2), MixqError);
});

test('subMatMul on sub-blocks equals the naive product', () => {
  const r = new Rng(3);
  const C = Float64Array.from({ length: 6 * 9 }, () => r.nextNormal());
  const A = Float64Array.from({ length: 6 * 4 }, () => r.nextNormal());
  const B = Float64Array.from({ length: 5 * 9 }, () => r.nextNormal());
  const want = Float64Array.from(C);
  // C[r, 2 + j] -= sum_k A[r, 1 + k] B[1 + k, 2 + j] for r < 6, k < 3, j < 7
  for (let i = 0; i < 6; i++)
    for (let j = 0; j < 7; j++)
      for (let k = 0; k < 3; k++) want[i * 9 + 2 + j]! -= A[i * 4 + 1 + k]! * B[(1 + k) * 9 + 2 + j]!;
  subMatMul(C, 2, 9, A, 1, 4, B, 9 + 2, 9, 6, 3, 7);
  assert.ok(maxDiff(C, want) < 1e-12);
});

test('outputErrorFromGram equals ||X (W - Q)^T||^2 computed directly', () => {
  const r = new Rng(4);
  const X = Float32Array.from({ length: 10 * 6 }, () => r.nextNormal());
  const W = Float32Array.from({ length: 3 * 6 }, () => r.nextNormal());
  const Q = W.map((v) => Math.round(v * 2) / 2);
  let direct = 0;
  for (let t = 0; t < 10; t++)
    for (let o = 0; o < 3; o++) {
      let y = 0;
      for (let j = 0; j < 6; j++) y += X[t * 6 + j]! * (W[o * 6 + j]! - Q[o * 6 + j]!);
      direct += y * y;
    }
  assert.ok(Math.abs(outputErrorFromGram(W, Q, 3, 6, gram(X, 10, 6)) / direct - 1) < 1e-12);
});

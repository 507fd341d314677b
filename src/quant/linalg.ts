/**
 * The small dense linear algebra the PTQ algorithms need, in float64, row-major, written for cache order
 * (inner loops run over contiguous rows) rather than generality. No BLAS: these are the plain kernels.
 */
import { MixqError } from '../core/errors.ts';

/**
 * sum_k a[ao + k] * b[bo + k] for k < n with four independent partial sums, so consecutive multiply-adds
 * do not wait on each other (a single running sum is bound by the add latency).
 */
export function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < n; k += 4) {
    s0 += a[ao + k]! * b[bo + k]!;
    s1 += a[ao + k + 1]! * b[bo + k + 1]!;
    s2 += a[ao + k + 2]! * b[bo + k + 2]!;
    s3 += a[ao + k + 3]! * b[bo + k + 3]!;
  }
  for (; k < n; k++) s0 += a[ao + k]! * b[bo + k]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * G = X^T X for X [n, d] (row-major float32), as float64 [d, d]: X is transposed once so every entry is a
 * dot product of two contiguous rows of length n (gramUpperAccumulate over one block of all n rows).
 */
export function gram(X: Float32Array, n: number, d: number): Float64Array {
  if (X.length !== n * d)
    throw new MixqError('X has the wrong length', { field: 'X', expected: `${n}x${d}` });
  const XT = new Float64Array(d * n);
  for (let t = 0; t < n; t++) for (let j = 0; j < d; j++) XT[j * n + t] = X[t * d + j]!;
  const G = new Float64Array(d * d);
  gramUpperAccumulate(G, XT, n, n, d);
  mirrorUpper(G, d);
  return G;
}

function dotRows(xt: Float64Array, a: number, b: number, n: number): number {
  let t = 0;
  for (let r = 0; r < n; r++) t += xt[a + r]! * xt[b + r]!;
  return t;
}

/**
 * g[i][j] += sum_{r < n} x_r[i] x_r[j] for j >= i (upper triangle; mirrorUpper completes it), with
 * xt[ch * ld + r] = x_r[ch] (rows of the transposed block have stride ld >= n). 4 x 2 tiles of (i, j) keep 8 sums in registers per pass over the
 * block's rows. Tiles touching the diagonal also write a few entries below it, which mirrorUpper overwrites.
 */
export function gramUpperAccumulate(
  g: Float64Array,
  xt: Float64Array,
  ld: number,
  n: number,
  c: number,
): void {
  const B = ld;
  const c4 = c - (c % 4);
  for (let i0 = 0; i0 < c4; i0 += 4) {
    const a0 = i0 * B;
    const a1 = a0 + B;
    const a2 = a1 + B;
    const a3 = a2 + B;
    let j = i0;
    for (; j + 1 < c; j += 2) {
      const b0 = j * B;
      const b1 = b0 + B;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      let s20 = 0;
      let s21 = 0;
      let s30 = 0;
      let s31 = 0;
      for (let r = 0; r < n; r++) {
        const y0 = xt[b0 + r]!;
        const y1 = xt[b1 + r]!;
        const x0 = xt[a0 + r]!;
        const x1 = xt[a1 + r]!;
        const x2 = xt[a2 + r]!;
        const x3 = xt[a3 + r]!;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s20 += x2 * y0;
        s21 += x2 * y1;
        s30 += x3 * y0;
        s31 += x3 * y1;
      }
      const o = i0 * c + j;
      g[o]! += s00;
      g[o + 1]! += s01;
      g[o + c]! += s10;
      g[o + c + 1]! += s11;
      g[o + 2 * c]! += s20;
      g[o + 2 * c + 1]! += s21;
      g[o + 3 * c]! += s30;
      g[o + 3 * c + 1]! += s31;
    }
    if (j < c) for (let i = i0; i < i0 + 4; i++) g[i * c + j]! += dotRows(xt, i * B, j * B, n);
  }
  for (let i = c4; i < c; i++) for (let j = i; j < c; j++) g[i * c + j]! += dotRows(xt, i * B, j * B, n);
}

/** Copies the upper triangle of the c x c gram onto the lower one. */
export function mirrorUpper(g: Float64Array, c: number): void {
  for (let i = 1; i < c; i++) for (let j = 0; j < i; j++) g[i * c + j] = g[j * c + i]!;
}

/**
 * In-place lower Cholesky factor of a symmetric positive-definite A [n, n] (upper triangle zeroed):
 * A = L L^T. Row-oriented (each L[i, j] is a dot product of two contiguous row prefixes). A pivot that is
 * not positive raises a MixqError naming `pivotName(i)` (default `H[i,i]`).
 */
export function choleskyLower(
  A: Float64Array,
  n: number,
  pivotName: (i: number) => string = (i) => `H[${i},${i}]`,
): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      const s = A[ri + j]! - dot(A, ri, A, rj, j);
      if (i === j) {
        if (!(s > 0))
          throw new MixqError('matrix is not positive definite (increase damping)', {
            field: pivotName(i),
            expected: '> 0 pivot',
          });
        A[ri + i] = Math.sqrt(s);
      } else A[ri + j] = s / A[rj + j]!;
    }
    for (let j = i + 1; j < n; j++) A[ri + j] = 0;
  }
  return A;
}

/** Inverse of a lower-triangular L [n, n] (returns a new lower-triangular matrix). */
export function invertLower(L: Float64Array, n: number): Float64Array {
  // Solve L M = I one row of M at a time: M[i, :] = (e_i - sum_{k<i} L[i,k] M[k, :]) / L[i,i].
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    M[ri + i] = 1;
    for (let k = 0; k < i; k++) {
      const l = L[ri + k]!;
      if (l === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) M[ri + j]! -= l * M[rk + j]!;
    }
    const inv = 1 / L[ri + i]!;
    for (let j = 0; j <= i; j++) M[ri + j]! *= inv;
  }
  return M;
}

/**
 * Upper-triangular U with H^-1 = U^T U (what GPTQ calls Hinv: torch cholesky -> cholesky_inverse ->
 * cholesky(upper=True)). Computed with one factorisation: with J the reversal permutation,
 * J H J = R R^T (R lower) gives H^-1 = J R^-T R^-1 J = U^T U for U = J R^-1 J, which is upper triangular
 * and has a positive diagonal, so it is THE upper Cholesky factor of H^-1. A failing pivot is named by its
 * index in H (`pivotName`).
 */
export function upperCholeskyOfInverse(
  H: Float64Array,
  n: number,
  pivotName: (i: number) => string = (i) => `H[${i},${i}]`,
): Float64Array {
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[(n - 1 - i) * n + (n - 1 - j)] = H[i * n + j]!;
  const Rinv = invertLower(
    choleskyLower(A, n, (i) => pivotName(n - 1 - i)),
    n,
  );
  const U = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) U[i * n + j] = Rinv[(n - 1 - i) * n + (n - 1 - j)]!;
  return U;
}

/**
 * C[cOff + r*ldc + j] -= sum_k A[aOff + r*lda + k] * B[bOff + k*ldb + j] for r < rows, k < kk, j < m:
 * a block of C -= A B on row-major operands addressed by start offset and row stride.
 * Blocking: columns in tiles of 512 (a tile of B's rows stays in L2), four rows of C at a time (each
 * loaded B element feeds four multiply-adds); the innermost loop streams contiguous rows.
 */
export function subMatMul(
  C: Float64Array,
  cOff: number,
  ldc: number,
  A: Float64Array,
  aOff: number,
  lda: number,
  B: Float64Array,
  bOff: number,
  ldb: number,
  rows: number,
  kk: number,
  m: number,
): void {
  const TILE = 512;
  for (let j0 = 0; j0 < m; j0 += TILE) {
    const j1 = Math.min(m, j0 + TILE);
    let r = 0;
    for (; r + 3 < rows; r += 4) {
      const c0 = cOff + r * ldc;
      const c1 = c0 + ldc;
      const c2 = c1 + ldc;
      const c3 = c2 + ldc;
      const a0 = aOff + r * lda;
      for (let k = 0; k < kk; k++) {
        const x0 = A[a0 + k]!;
        const x1 = A[a0 + lda + k]!;
        const x2 = A[a0 + 2 * lda + k]!;
        const x3 = A[a0 + 3 * lda + k]!;
        const bb = bOff + k * ldb;
        for (let j = j0; j < j1; j++) {
          const b = B[bb + j]!;
          C[c0 + j]! -= x0 * b;
          C[c1 + j]! -= x1 * b;
          C[c2 + j]! -= x2 * b;
          C[c3 + j]! -= x3 * b;
        }
      }
    }
    for (; r < rows; r++) {
      const c0 = cOff + r * ldc;
      const a0 = aOff + r * lda;
      for (let k = 0; k < kk; k++) {
        const x = A[a0 + k]!;
        const bb = bOff + k * ldb;
        for (let j = j0; j < j1; j++) C[c0 + j]! -= x * B[bb + j]!;
      }
    }
  }
}

/** tr(D G D^T) = sum_r d_r^T G d_r for D [rows, d] float64-accumulated: the layer output error ||X D^T||^2. */
export function quadFormRows(
  D: Float32Array | Float64Array,
  rows: number,
  G: Float64Array,
  d: number,
): number {
  let total = 0;
  const t = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    t.fill(0);
    const base = r * d;
    for (let i = 0; i < d; i++) {
      const a = D[base + i]!;
      if (a === 0) continue;
      const gi = i * d;
      for (let j = 0; j < d; j++) t[j]! += a * G[gi + j]!;
    }
    for (let j = 0; j < d; j++) total += t[j]! * D[base + j]!;
  }
  return total;
}

/** W - Q in float64 (exact for float32 operands). */
export function difference(W: Float32Array, Q: Float32Array): Float64Array {
  const D = new Float64Array(W.length);
  for (let i = 0; i < D.length; i++) D[i] = W[i]! - Q[i]!;
  return D;
}

/** ||X W^T - X Q^T||_F^2 from the Gram matrix G = X^T X [cols, cols], without X. */
export function outputErrorFromGram(
  W: Float32Array,
  Q: Float32Array,
  rows: number,
  cols: number,
  G: Float64Array,
): number {
  return quadFormRows(difference(W, Q), rows, G, cols);
}

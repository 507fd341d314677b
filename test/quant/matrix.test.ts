// The WebAssembly matrix kernels (native/quant/matrix.h through src/quant/matrix/) against plain references:
// gemm / dgemm with every flag on sizes that are not multiples of the tile, panel and cache-block widths
// (4 x 8 tiles, KC 256, MC 128, NC 512), cut by rows or columns (same bytes as one call); the blocked
// float32 Cholesky against linalg.choleskyLower; X^T X against linalg.gram; the float64 quadratic forms
// against linalg.quadFormRows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { choleskyLower, gram, quadFormRows } from '../../src/quant/linalg.ts';
import { choleskyLowerF32 } from '../../src/quant/matrix/cholesky.ts';
import { createInlineEngine, scoped } from '../../src/quant/matrix/engine.ts';
import { gemm, type GemmCall } from '../../src/quant/matrix/gemm.ts';
import { gramF32 } from '../../src/quant/matrix/gram.ts';
import { GEMM } from '../../src/quant/matrix/kernels.ts';
import { quadFormEachRow, quadFormTotal } from '../../src/quant/matrix/quad-form.ts';

const engine = createInlineEngine();
const { arena } = engine;

function rand(n: number, seed: number): Float64Array {
  const r = new Rng(seed);
  return Float64Array.from({ length: n }, () => r.nextNormal());
}

/** Naive op(A) op(B) with the flags' zero patterns, in float64. */
function naive(
  flags: number,
  M: number,
  N: number,
  K: number,
  A: Float64Array,
  lda: number,
  B: Float64Array,
  ldb: number,
  kOff: number,
): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        if (flags & GEMM.ALOWER && k > i + kOff) continue;
        if (flags & GEMM.BUPPER && k > j + kOff) continue;
        const a = flags & GEMM.TA ? A[k * lda + i]! : A[i * lda + k]!;
        const b = flags & GEMM.TB ? B[j * ldb + k]! : B[k * ldb + j]!;
        s += a * b;
      }
      C[i * N + j] = s;
    }
  return C;
}

const inTriangle = (flags: number, i: number, j: number, triOff: number) =>
  !(flags & GEMM.UPPER && j - i < triOff) && !(flags & GEMM.LOWER && j - i > triOff);

for (const f64 of [false, true]) {
  test(`${f64 ? 'dgemm' : 'sgemm'}: every flag, odd sizes, against a float64 product`, () => {
    const cases: [number, number, number, number, number, number][] = [
      // flags, M, N, K, triOff, kOff
      [0, 131, 517, 263, 0, 0],
      [GEMM.TA, 37, 129, 300, 0, 0],
      [GEMM.TB | GEMM.ACC, 130, 9, 257, 0, 0],
      [GEMM.TA | GEMM.TB, 5, 13, 3, 0, 0],
      [GEMM.TA | GEMM.UPPER, 150, 150, 70, 0, 0],
      [GEMM.LOWER | GEMM.ACC, 141, 141, 33, -3, 0],
      [GEMM.TA | GEMM.ACC | GEMM.ALOWER, 133, 61, 133, 0, 0],
      [GEMM.TB | GEMM.BUPPER, 77, 140, 140, 0, 2],
      [0, 1, 1, 1, 0, 0],
    ];
    for (const [flags, M, N, K, triOff, kOff] of cases) {
      const lda = (flags & GEMM.TA ? M : K) + 3;
      const ldb = (flags & GEMM.TB ? K : N) + 1;
      const ldc = N + 5;
      const Av = rand((flags & GEMM.TA ? K : M) * lda, 1);
      const Bv = rand((flags & GEMM.TB ? N : K) * ldb, 2);
      // ALOWER / BUPPER promise zeros there (the kernel may skip those products)
      for (let i = 0; i < M; i++)
        for (let k = 0; k < K; k++)
          if (flags & GEMM.ALOWER && k > i + kOff) Av[flags & GEMM.TA ? k * lda + i : i * lda + k] = 0;
      for (let j = 0; j < N; j++)
        for (let k = 0; k < K; k++)
          if (flags & GEMM.BUPPER && k > j + kOff) Bv[flags & GEMM.TB ? j * ldb + k : k * ldb + j] = 0;
      const C0 = rand(M * ldc, 3);
      const round = (x: Float64Array) => (f64 ? x : Float64Array.from(Float32Array.from(x)));
      const [Ar, Br, C0r] = [round(Av), round(Bv), round(C0)];
      const alpha = flags & GEMM.ACC ? -1 : 1;
      const want = naive(flags, M, N, K, Ar, lda, Br, ldb, kOff);
      const results: Float64Array[] = [];
      for (const split of [undefined, { axis: 'rows', chunk: 16 }, { axis: 'cols', chunk: 24 }] as const) {
        scoped(engine, () => {
          const put = (x: Float64Array) => (f64 ? arena.put(x) : arena.put(Float32Array.from(x)));
          const A = put(Av);
          const B = put(Bv);
          const C = put(C0);
          const call: GemmCall = { flags, M, N, K, alpha, A, lda, B, ldb, C, ldc, triOff, kOff, f64 };
          gemm(engine, call, split ?? { axis: 'rows', chunk: 1 << 20 });
          const out = f64 ? arena.f64(C, M * ldc).slice() : Float64Array.from(arena.f32(C, M * ldc));
          results.push(out);
          const tol = f64 ? 1e-12 : 2e-5;
          for (let i = 0; i < M; i++)
            for (let j = 0; j < N; j++) {
              if (!inTriangle(flags, i, j, triOff)) continue;
              const base = flags & GEMM.ACC ? C0r[i * ldc + j]! : 0;
              const w = base + alpha * want[i * N + j]!;
              const got = out[i * ldc + j]!;
              assert.ok(
                Math.abs(got - w) <= tol * (1 + Math.sqrt(K)) * (1 + Math.abs(w)),
                `${flags} ${M}x${N}x${K} (${i},${j}): ${got} vs ${w}`,
              );
            }
        });
      }
      // the same bytes whatever the cut (inside the computed triangle)
      for (const r of results.slice(1))
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++)
            if (inTriangle(flags, i, j, triOff))
              assert.ok(Object.is(r[i * ldc + j], results[0]![i * ldc + j]));
    }
  });
}

test('blocked float32 Cholesky matches the float64 reference (odd n, ill-conditioned with damping)', () => {
  for (const n of [1, 7, 130, 300]) {
    const r = new Rng(n);
    // a low-rank Gram (rank n/3) made definite by 1% damping: condition number ~1e4..1e6
    const k = Math.max(1, Math.floor(n / 3));
    const X = Float32Array.from({ length: k * n }, () => r.nextNormal());
    const H = gram(X, k, n);
    let mean = 0;
    for (let i = 0; i < n; i++) mean += H[i * n + i]! / n;
    for (let i = 0; i < n; i++) H[i * n + i]! += 0.01 * mean;
    const L = choleskyLower(Float64Array.from(H), n);
    scoped(engine, () => {
      const A = arena.put(Float32Array.from(H));
      assert.equal(choleskyLowerF32(engine, A, n), 0);
      const Lf = arena.f32(A, n * n);
      let maxErr = 0;
      let maxL = 0;
      for (let i = 0; i < n; i++)
        for (let j = 0; j <= i; j++) {
          maxErr = Math.max(maxErr, Math.abs(Lf[i * n + j]! - L[i * n + j]!));
          maxL = Math.max(maxL, Math.abs(L[i * n + j]!));
        }
      // float32 factorization: backward error ~ n eps ||H||; forward error bounded by the conditioning
      assert.ok(maxErr / maxL < 2e-3, `n=${n}: ${maxErr / maxL}`);
    });
  }
  scoped(engine, () => {
    const A = arena.put(Float32Array.of(1, 2, 2, 1));
    assert.equal(choleskyLowerF32(engine, A, 2), 2); // second pivot 1 - 4 < 0
  });
});

test('X^T X from float32 products with float64 totals matches linalg.gram', () => {
  for (const [n, d] of [
    [5, 3],
    [700, 37],
    [1100, 129],
  ] as const) {
    const r = new Rng(d);
    const X = Float32Array.from({ length: n * d }, () => r.nextNormal());
    const want = gram(X, n, d);
    const got = gramF32(engine, X, n, d, 0.5);
    let maxDiff = 0;
    let maxRef = 0;
    for (let i = 0; i < d * d; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - 0.5 * want[i]!));
      maxRef = Math.max(maxRef, Math.abs(0.5 * want[i]!));
    }
    assert.ok(maxDiff / maxRef < 1e-6, `${n}x${d}: ${maxDiff / maxRef}`);
    for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) assert.equal(got[i * d + j], got[j * d + i]);
  }
});

test('quadratic forms d_r^T G d_r on the engine match linalg.quadFormRows (odd sizes, non-symmetric G, blocks)', () => {
  const r = new Rng(9);
  for (const [rows, d] of [
    [1, 1],
    [37, 13],
    [600, 70],
  ] as const) {
    const D = Float64Array.from({ length: rows * d }, () => r.nextNormal());
    const G = Float64Array.from({ length: d * d }, () => r.nextNormal()); // only the symmetric part counts
    const each = quadFormEachRow(engine, D, rows, d, G);
    let abs = 0;
    for (let i = 0; i < D.length; i++) abs += Math.abs(D[i]!) * Math.abs(D[i]!);
    for (let k = 0; k < rows; k++) {
      const want = quadFormRows(D.subarray(k * d, (k + 1) * d), 1, G, d);
      assert.ok(Math.abs(each[k]! - want) <= 1e-12 * abs * d, `${rows}x${d} row ${k}`);
    }
    assert.ok(
      Math.abs(quadFormTotal(engine, D, rows, d, G) - quadFormRows(D, rows, G, d)) <= 1e-11 * abs * d,
    );
  }
  // a diagonal block of a bigger G, rows with a stride
  const C = 20;
  const G = Float64Array.from({ length: C * C }, () => r.nextNormal());
  const D = Float64Array.from({ length: 5 * 12 }, () => r.nextNormal());
  const blk = new Float64Array(7 * 7);
  for (let i = 0; i < 7; i++) for (let j = 0; j < 7; j++) blk[i * 7 + j] = G[(4 + i) * C + 4 + j]!;
  const got = quadFormEachRow(engine, D, 5, 7, G, { ldd: 12, ldg: C, base: 4 });
  for (let k = 0; k < 5; k++)
    assert.ok(Math.abs(got[k]! - quadFormRows(D.subarray(k * 12, k * 12 + 7), 1, blk, 7)) < 1e-10);
});

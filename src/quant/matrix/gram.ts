/**
 * X^T X on an engine, in row chunks of 512 (the upper triangle of each chunk's product, added into a float64
 * total in JavaScript memory). Two precisions, chosen per caller:
 * - float32 products (gramAccumulateF32): GPTQ's Hessian, as the reference computes it (PyTorch float32);
 *   the float64 total keeps a long calibration set from accumulating in float32;
 * - float64 products (gramUpperAccumulateF64): calibration statistics that later lose digits to
 *   cancellation (centered covariances of the sensitivity proxies).
 * Reference: linalg.ts gram / gramUpperAccumulate.
 */
import type { MatrixEngine } from './engine.ts';
import { gemm } from './gemm.ts';
import { GEMM } from './kernels.ts';

/** Rows of X per product. */
const ROWS_PER_PRODUCT = 512;
/** Columns of X^T X per part (the triangle's parts are handed out largest first). */
const COL_CHUNK = 256;

/** Runs fn(G, chunkRows) for each chunk of X, with G the chunk's X^T X upper triangle in engine memory. */
function chunkProducts(
  engine: MatrixEngine,
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  f64: boolean,
  fn: (G: Float32Array | Float64Array) => void,
): void {
  const arena = engine.arena;
  const es = f64 ? 8 : 4;
  const mark = arena.mark();
  try {
    const Gp = arena.alloc(d * d * es);
    const Xp = arena.alloc(Math.max(1, Math.min(n, ROWS_PER_PRODUCT)) * d * es);
    for (let t0 = 0; t0 < n; t0 += ROWS_PER_PRODUCT) {
      const kc = Math.min(ROWS_PER_PRODUCT, n - t0);
      (f64 ? arena.f64(Xp, kc * d) : arena.f32(Xp, kc * d)).set(X.subarray(t0 * d, (t0 + kc) * d));
      gemm(
        engine,
        { flags: GEMM.TA | GEMM.UPPER, M: d, N: d, K: kc, A: Xp, lda: d, B: Xp, ldb: d, C: Gp, ldc: d, f64 },
        { axis: 'cols', chunk: COL_CHUNK, lastFirst: true },
      );
      if (!f64) engine.main.kernels.mirror_upper_f32(d, Gp);
      fn(f64 ? arena.f64(Gp, d * d) : arena.f32(Gp, d * d));
    }
  } finally {
    arena.release(mark);
  }
}

/** total += factor * X^T X for X [n, d] (row-major float32, float32 products), total a full float64 [d, d]. */
export function gramAccumulateF32(
  engine: MatrixEngine,
  total: Float64Array,
  X: Float32Array,
  n: number,
  d: number,
  factor = 1,
): void {
  chunkProducts(engine, X, n, d, false, (g) => {
    for (let i = 0; i < d * d; i++) total[i]! += factor * g[i]!;
  });
}

/** factor * X^T X for X [n, d] (row-major float32, float32 products) as a full symmetric float64 [d, d]. */
export function gramF32(
  engine: MatrixEngine,
  X: Float32Array,
  n: number,
  d: number,
  factor = 1,
): Float64Array {
  const out = new Float64Array(d * d);
  gramAccumulateF32(engine, out, X, n, d, factor);
  return out;
}

/**
 * G[i][j] += sum_r x_r[i] x_r[j] for j >= i (upper triangle; linalg.mirrorUpper completes it) for X [n, d]
 * row-major, float64 products.
 */
export function gramUpperAccumulateF64(
  engine: MatrixEngine,
  G: Float64Array,
  X: Float64Array | Float32Array,
  n: number,
  d: number,
): void {
  chunkProducts(engine, X, n, d, true, (g) => {
    for (let i = 0; i < d; i++) for (let j = i, o = i * d; j < d; j++) G[o + j]! += g[o + j]!;
  });
}

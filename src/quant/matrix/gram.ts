/**
 * X^T X on an engine: float32 products over chunks of 512 rows of X (the upper triangle, mirrored), each
 * chunk added into a float64 total, so a long calibration set does not accumulate in float32.
 * Reference: linalg.ts gram.
 */
import type { MatrixEngine } from './engine.ts';
import { gemm } from './gemm.ts';
import { GEMM } from './kernels.ts';

/** Rows of X per float32 product. */
const ROWS_PER_PRODUCT = 512;
/** Columns of X^T X per part (the triangle's parts are handed out largest first). */
const COL_CHUNK = 256;

/** total += factor * X^T X for X [n, d] (row-major float32), total a full float64 [d, d]. */
export function gramAccumulateF32(
  engine: MatrixEngine,
  total: Float64Array,
  X: Float32Array,
  n: number,
  d: number,
  factor = 1,
): void {
  const arena = engine.arena;
  const mark = arena.mark();
  try {
    const Gp = arena.alloc(d * d * 4);
    const Xp = arena.alloc(Math.max(1, Math.min(n, ROWS_PER_PRODUCT)) * d * 4);
    for (let t0 = 0; t0 < n; t0 += ROWS_PER_PRODUCT) {
      const kc = Math.min(ROWS_PER_PRODUCT, n - t0);
      arena.f32(Xp, kc * d).set(X.subarray(t0 * d, (t0 + kc) * d));
      gemm(
        engine,
        { flags: GEMM.TA | GEMM.UPPER, M: d, N: d, K: kc, A: Xp, lda: d, B: Xp, ldb: d, C: Gp, ldc: d },
        { axis: 'cols', chunk: COL_CHUNK, lastFirst: true },
      );
      engine.main.kernels.mirror_upper_f32(d, Gp);
      const g = arena.f32(Gp, d * d);
      for (let i = 0; i < d * d; i++) total[i]! += factor * g[i]!;
    }
  } finally {
    arena.release(mark);
  }
}

/** factor * X^T X for X [n, d] (row-major float32) as a full symmetric float64 [d, d]. */
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

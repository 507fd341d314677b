/**
 * Quadratic forms d_r^T G d_r over the rows of a matrix D, in float64 on the engine: the layer output error
 * ||X D^T||^2 = tr(D G D^T) with G = X^T X (AWQ's searches, the sensitivity proxies), without X.
 *
 * Only the symmetric part of G counts, so G is packed once as a lower triangle P (P_ii = G_ii,
 * P_ij = G_ij + G_ji for j < i) and d^T G d = sum_i d_i (P d)_i: a product T = D P^T that skips P's zero
 * upper half (half the multiply-adds of the full form), then one dot product per row. Reference:
 * linalg.ts quadFormRows.
 */
import type { MatrixEngine } from './engine.ts';
import { gemm } from './gemm.ts';
import { GEMM } from './kernels.ts';

/** Rows of D per product (bounds the scratch to 2 x ROWS x d doubles). */
const ROWS = 512;
/** Rows per part. */
const ROW_CHUNK = 64;

/** The packed symmetric part of the d x d block of `G` at (base, base) (row stride ldg) in engine memory. */
function putPacked(engine: MatrixEngine, G: ArrayLike<number>, ldg: number, base: number, d: number): number {
  const Pp = engine.arena.alloc(d * d * 8);
  const P = engine.arena.f64(Pp, d * d);
  P.fill(0);
  for (let i = 0; i < d; i++) {
    const gi = (base + i) * ldg + base;
    for (let j = 0; j < i; j++) P[i * d + j] = G[gi + j]! + G[(base + j) * ldg + base + i]!;
    P[i * d + i] = G[gi + i]!;
  }
  return Pp;
}

/**
 * d_r^T G d_r for every row r of D [rows, d] (row stride ldd, float32 or float64), G read as the d x d block
 * at (base, base) of a matrix with row stride ldg (default: G is d x d). Returns the per-row values; their sum
 * (in row order) is tr(D G D^T).
 */
export function quadFormEachRow(
  engine: MatrixEngine,
  D: ArrayLike<number>,
  rows: number,
  d: number,
  G: ArrayLike<number>,
  opts: { readonly ldd?: number; readonly ldg?: number; readonly base?: number } = {},
): Float64Array {
  const ldd = opts.ldd ?? d;
  const out = new Float64Array(rows);
  if (rows === 0 || d === 0) return out;
  const arena = engine.arena;
  const mark = arena.mark();
  try {
    const Pp = putPacked(engine, G, opts.ldg ?? d, opts.base ?? 0, d);
    const rc = Math.min(rows, ROWS);
    const Dp = arena.alloc(rc * d * 8);
    const Tp = arena.alloc(rc * d * 8);
    for (let r0 = 0; r0 < rows; r0 += ROWS) {
      const n = Math.min(ROWS, rows - r0);
      const Dv = arena.f64(Dp, n * d);
      for (let r = 0; r < n; r++) for (let j = 0, o = (r0 + r) * ldd; j < d; j++) Dv[r * d + j] = D[o + j]!;
      gemm(
        engine,
        {
          flags: GEMM.TB | GEMM.BUPPER,
          M: n,
          N: d,
          K: d,
          A: Dp,
          lda: d,
          B: Pp,
          ldb: d,
          C: Tp,
          ldc: d,
          f64: true,
        },
        { axis: 'rows', chunk: ROW_CHUNK },
      );
      const k = engine.main.kernels;
      for (let r = 0; r < n; r++) out[r0 + r] = k.ddot(d, Tp + r * d * 8, Dp + r * d * 8);
    }
    return out;
  } finally {
    arena.release(mark);
  }
}

/** tr(D G D^T) = sum_r d_r^T G d_r (see quadFormEachRow). */
export function quadFormTotal(
  engine: MatrixEngine,
  D: ArrayLike<number>,
  rows: number,
  d: number,
  G: ArrayLike<number>,
): number {
  let s = 0;
  for (const v of quadFormEachRow(engine, D, rows, d, G)) s += v;
  return s;
}

/**
 * Blocked Cholesky factorization A = L L^T of a float32 symmetric positive-definite matrix in engine memory
 * (left-looking, panels of 128 columns): each panel first takes the product of everything factored so far
 * (a gemm over the rows below, cut across threads), then its diagonal block is factored in float64
 * (chol_block, which also inverts it) and the rows below are solved as a product with that inverse. The
 * products run at gemm speed; the diagonal blocks, where the pivots are decided, in double precision.
 * Reference: linalg.ts choleskyLower (float64, unblocked).
 */
import type { MatrixEngine } from './engine.ts';
import { gemm } from './gemm.ts';
import { GEMM } from './kernels.ts';

const NB = 128;
/** Rows per part of the panel products. */
const ROW_CHUNK = 256;

/**
 * Factors the n x n matrix at byte offset `A` in place: the lower triangle becomes L (only the lower
 * triangle of A is read; the upper part of every diagonal block is zeroed, the rest of the upper triangle
 * is left as it was). Returns 0, or 1 + the index of the first pivot that is not positive.
 */
export function choleskyLowerF32(engine: MatrixEngine, A: number, n: number): number {
  const arena = engine.arena;
  const mark = arena.mark();
  try {
    const Linv = arena.alloc(NB * NB * 4);
    const tmp = arena.alloc(Math.max(1, n) * NB * 4);
    const rowPtr = (i: number, j: number) => A + (i * n + j) * 4;
    for (let j = 0; j < n; j += NB) {
      const nb = Math.min(NB, n - j);
      if (j > 0) {
        // A[j:n, j:j+nb] -= L[j:n, 0:j] L[j:j+nb, 0:j]^T
        gemm(
          engine,
          {
            flags: GEMM.TB | GEMM.ACC,
            M: n - j,
            N: nb,
            K: j,
            alpha: -1,
            A: rowPtr(j, 0),
            lda: n,
            B: rowPtr(j, 0),
            ldb: n,
            C: rowPtr(j, j),
            ldc: n,
          },
          { axis: 'rows', chunk: ROW_CHUNK },
        );
      }
      const st = engine.main.kernels.chol_block(nb, rowPtr(j, j), n, Linv, engine.main.work);
      if (st !== 0) return j + st;
      if (j + nb < n) {
        // L[j+nb:n, j:j+nb] = A[j+nb:n, j:j+nb] L_jj^-T (L_jj^-T is upper triangular)
        gemm(
          engine,
          {
            flags: GEMM.TB | GEMM.BUPPER,
            M: n - j - nb,
            N: nb,
            K: nb,
            A: rowPtr(j + nb, j),
            lda: n,
            B: Linv,
            ldb: nb,
            C: tmp,
            ldc: nb,
          },
          { axis: 'rows', chunk: ROW_CHUNK, copyTo: { dst: rowPtr(j + nb, j), ld: n } },
        );
      }
    }
    return 0;
  } finally {
    arena.release(mark);
  }
}

/**
 * X^T X on an engine, in row chunks of 512 (the upper triangle of each chunk's product, added into a float64
 * total in JavaScript memory). Two precisions, chosen per caller:
 * - float32 products (gramF32): GPTQ's Hessian, as the reference computes it (PyTorch float32);
 *   the float64 total keeps a long calibration set from accumulating in float32;
 * - float64 products (gramUpperAccumulateF64): calibration statistics that later lose digits to
 *   cancellation (centered covariances of the sensitivity proxies).
 * Reference: linalg.ts gram / gramUpperAccumulate.
 */
import { MixqError } from '../../core/errors.ts';
import type { MatrixEngine } from './engine.ts';
import { gemm } from './gemm.ts';
import { GEMM, type ThreadContext } from './kernels.ts';

/** Rows of X per product. */
const ROWS_PER_PRODUCT = 512;
/** Columns of X^T X per part (the triangle's parts are handed out largest first). */
const COL_CHUNK = 256;

/** Rows of the symmetric conversion per part (a multiple of the kernel's 32-row tiles). */
const SYM_ROWS = 128;

/**
 * Part of the float32 upper triangle -> full symmetric matrix conversion, float64 into a second buffer
 * (args d, G, T, factor, accumulate) or float32 in place (args d, G, 0, factor); rows handed out from the
 * top, where the triangle is widest, first.
 */
export function symUpperPart(ctx: ThreadContext, a: ArrayLike<number>, part: number): void {
  const d = a[0]!;
  const r0 = part * SYM_ROWS;
  const r1 = Math.min(d, r0 + SYM_ROWS);
  if (a[2]) ctx.kernels.sym_upper_f32_to_f64(d, a[1]!, a[2], a[3]!, a[4]!, r0, r1);
  else ctx.kernels.sym_upper_scale_f32(d, a[1]!, a[3]!, r0, r1);
}

/** Runs fn(G, first) for each chunk of X, with G (offset in engine memory) the chunk's X^T X upper triangle. */
function chunkProducts(
  engine: MatrixEngine,
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  f64: boolean,
  fn: (G: number, first: boolean) => void,
): void {
  if (!(Number.isInteger(n) && n >= 1 && Number.isInteger(d) && d >= 1 && X.length >= n * d))
    throw new MixqError('no calibration rows, or X shorter than n x d', {
      field: 'X',
      expected: `n >= 1 rows of ${d}`,
    });
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
      fn(Gp, t0 === 0);
    }
  } finally {
    arena.release(mark);
  }
}

/**
 * factor * X^T X for X [n, d] (row-major float32, float32 products), as a full symmetric float64 [d, d]; with
 * `total`, added to it instead (and total returned).
 */
export function gramF32(
  engine: MatrixEngine,
  X: Float32Array,
  n: number,
  d: number,
  factor = 1,
  total?: Float64Array,
): Float64Array {
  const arena = engine.arena;
  const mark = arena.mark();
  try {
    const Tp = arena.alloc(d * d * 8);
    if (total) arena.f64(Tp, d * d).set(total);
    chunkProducts(engine, X, n, d, false, (Gp, first) =>
      engine.run('symUpper', [d, Gp, Tp, factor, total || !first ? 1 : 0], Math.ceil(d / SYM_ROWS)),
    );
    const T = arena.f64(Tp, d * d);
    if (!total) return T.slice();
    total.set(T);
    return total;
  } finally {
    arena.release(mark);
  }
}

/**
 * factor * X^T X for X [n, d] (row-major float32) as a full symmetric float32 [d, d] (GPTQ's Hessian, as its
 * reference stores it): one float32 product per 512 rows; several are summed in float64 and rounded once.
 */
export function gramSymF32(
  engine: MatrixEngine,
  X: Float32Array,
  n: number,
  d: number,
  factor = 1,
): Float32Array {
  if (n > ROWS_PER_PRODUCT) return new Float32Array(gramF32(engine, X, n, d, factor));
  let out = new Float32Array(0);
  chunkProducts(engine, X, n, d, false, (Gp) => {
    engine.run('symUpper', [d, Gp, 0, factor], Math.ceil(d / SYM_ROWS));
    out = engine.arena.f32(Gp, d * d).slice();
  });
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
  chunkProducts(engine, X, n, d, true, (Gp) => {
    const g = engine.arena.f64(Gp, d * d);
    for (let i = 0; i < d; i++) for (let j = i, o = i * d; j < d; j++) G[o + j]! += g[o + j]!;
  });
}

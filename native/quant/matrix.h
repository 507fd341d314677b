/*
 * Dense matrix kernels for src/quant (GPTQ, the Hessian X^T X, the quadratic forms tr(D G D^T) of AWQ and
 * the sensitivity proxies), compiled twice: matrix.c (private memory, one thread, any browser) and
 * matrix-mt.c (shared memory for worker threads). src/quant/matrix/ drives them; src/quant/linalg.ts holds
 * the plain TypeScript references they are tested against.
 *
 * Everything is row-major with explicit leading dimensions; pointers are byte offsets into the imported
 * memory. No libc, no static data, no allocation: scratch space comes from the caller.
 *
 * GEMM (Goto/BLIS structure, written for WebAssembly SIMD128): C (+)= alpha op(A) op(B) with
 * op(X) = X or X^T. K is cut into blocks of KC, N into blocks of NC, M into blocks of MC; op(B)'s block is
 * packed into NR-wide panels, op(A)'s into MR-high panels (zero-padded at the edges), and an MR x NR
 * register tile accumulates a KC-long run of products before it is added to C. Every element of C
 * therefore sees the same sequence of operations whatever sub-block of C a call covers: a product split
 * across threads by rows or columns of C gives the same bytes as one call (src/quant/matrix/ relies on it).
 *
 * No relaxed-SIMD variant: measured on Zen 5 / V8 11.3 (Node 20), a 4 x 8 tile with f32x4.relaxed_madd ran no
 * faster than mul + add (42 vs 45 GFLOP/s of CPU time on 1024^3; wider fused tiles spilled), so every engine
 * runs the same instructions and gets the same bytes.
 */
#include <wasm_simd128.h>

typedef float f32;
typedef double f64;

#define MADD32(a, b, c) wasm_f32x4_add((c), wasm_f32x4_mul((a), (b)))
#define NMADD32(a, b, c) wasm_f32x4_sub((c), wasm_f32x4_mul((a), (b)))
#define MADD64(a, b, c) wasm_f64x2_add((c), wasm_f64x2_mul((a), (b)))
#define MR32 4
#define NR32 8
#define MR64 4
#define NR64 4

#define KC 256
#define MC 128
#define NC 512

/* gemm flags */
#define GEMM_TA 1      /* op(A) = A^T: op(A)[i][k] = A[k * lda + i] */
#define GEMM_TB 2      /* op(B) = B^T: op(B)[k][j] = B[j * ldb + k] */
#define GEMM_ACC 4     /* C += ...; otherwise C = ... */
#define GEMM_UPPER 8   /* only tiles of C reaching j - i >= triOff (the rest of C is not computed) */
#define GEMM_LOWER 16  /* only tiles of C reaching j - i <= triOff */
#define GEMM_ALOWER 32 /* op(A)[i][k] is zero for k > i + kOff: products may be skipped (not masked) */
#define GEMM_BUPPER 64 /* op(B)[k][j] is zero for k > j + kOff: products may be skipped (not masked) */

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Scratch floats (f32) a gemm call needs in `work`: packed A and B blocks and one tile. */
int sgemm_work_floats(void) { return KC * MC + KC * NC + MR32 * NR32 + 64; }
/* Scratch doubles (f64) a dgemm call needs in `work`. */
int dgemm_work_doubles(void) { return KC * MC + KC * NC + MR64 * NR64 + 64; }

/*
 * The packing routines and the blocked loop are written once for f32 and f64 (T, MR, NR, MICRO differ).
 */
#define DEFINE_PACK(SUFFIX, T, MR, NR)                                                                          \
  static void pack_a_##SUFFIX(int flags, int mc, int kc, const T *A, int lda, int i0, int p0, T *Ap) {          \
    for (int ir = 0; ir < mc; ir += MR) {                                                                       \
      int mr = imin(MR, mc - ir);                                                                               \
      T *dst = Ap + ir * kc;                                                                                    \
      if (flags & GEMM_TA) {                                                                                    \
        for (int p = 0; p < kc; p++) {                                                                          \
          const T *src = A + (p0 + p) * lda + i0 + ir;                                                          \
          int ii = 0;                                                                                           \
          for (; ii < mr; ii++) dst[p * MR + ii] = src[ii];                                                     \
          for (; ii < MR; ii++) dst[p * MR + ii] = 0;                                                           \
        }                                                                                                       \
      } else {                                                                                                  \
        for (int ii = 0; ii < MR; ii++) {                                                                       \
          if (ii < mr) {                                                                                        \
            const T *src = A + (i0 + ir + ii) * lda + p0;                                                       \
            for (int p = 0; p < kc; p++) dst[p * MR + ii] = src[p];                                             \
          } else                                                                                                \
            for (int p = 0; p < kc; p++) dst[p * MR + ii] = 0;                                                  \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }                                                                                                             \
  static void pack_b_##SUFFIX(int flags, int nc, int kc, const T *B, int ldb, int j0, int p0, T *Bp) {          \
    for (int jr = 0; jr < nc; jr += NR) {                                                                       \
      int nr = imin(NR, nc - jr);                                                                               \
      T *dst = Bp + jr * kc;                                                                                    \
      if (!(flags & GEMM_TB)) {                                                                                 \
        for (int p = 0; p < kc; p++) {                                                                          \
          const T *src = B + (p0 + p) * ldb + j0 + jr;                                                          \
          int jj = 0;                                                                                           \
          if (nr == NR)                                                                                         \
            for (; jj < NR; jj += 16 / (int)sizeof(T))                                                          \
              wasm_v128_store(dst + p * NR + jj, wasm_v128_load(src + jj));                                     \
          for (; jj < nr; jj++) dst[p * NR + jj] = src[jj];                                                     \
          for (; jj < NR; jj++) dst[p * NR + jj] = 0;                                                           \
        }                                                                                                       \
      } else {                                                                                                  \
        for (int jj = 0; jj < NR; jj++) {                                                                       \
          if (jj < nr) {                                                                                        \
            const T *src = B + (j0 + jr + jj) * ldb + p0;                                                       \
            for (int p = 0; p < kc; p++) dst[p * NR + jj] = src[p];                                             \
          } else                                                                                                \
            for (int p = 0; p < kc; p++) dst[p * NR + jj] = 0;                                                  \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }

DEFINE_PACK(f32, f32, MR32, NR32)
DEFINE_PACK(f64, f64, MR64, NR64)

/* The tile epilogue: C[i][j] += alpha * acc for the valid mr x nr part (full tiles straight from registers,
 * edge tiles through `tile`, with the same two roundings per element). */
#define EPILOGUE(T, MR, NR, NV, LANES, SPLAT, MUL, ADD)                                                         \
  v128_t va = SPLAT(alpha);                                                                                     \
  if (mr == MR && nr == NR) {                                                                                   \
    for (int i = 0; i < MR; i++)                                                                                \
      for (int v = 0; v < NV; v++) {                                                                            \
        T *cp = c + i * ldc + v * LANES;                                                                        \
        wasm_v128_store(cp, ADD(wasm_v128_load(cp), MUL(va, acc[i][v])));                                       \
      }                                                                                                         \
  } else {                                                                                                      \
    for (int i = 0; i < MR; i++)                                                                                \
      for (int v = 0; v < NV; v++) wasm_v128_store(tile + i * NR + v * LANES, MUL(va, acc[i][v]));              \
    for (int i = 0; i < mr; i++)                                                                                \
      for (int j = 0; j < nr; j++) c[i * ldc + j] += tile[i * NR + j];                                          \
  }

static void micro_f32(int k, const f32 *restrict a, const f32 *restrict b, f32 *restrict c, int ldc, int mr,
                      int nr, f32 alpha, f32 *restrict tile) {
  v128_t acc[MR32][2];
  for (int i = 0; i < MR32; i++) acc[i][0] = acc[i][1] = wasm_f32x4_splat(0);
  for (int p = 0; p < k; p++) {
    v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
    for (int i = 0; i < MR32; i++) {
      v128_t ai = wasm_v128_load32_splat(a + i);
      acc[i][0] = MADD32(ai, b0, acc[i][0]);
      acc[i][1] = MADD32(ai, b1, acc[i][1]);
    }
    a += MR32;
    b += NR32;
  }
  EPILOGUE(f32, MR32, NR32, 2, 4, wasm_f32x4_splat, wasm_f32x4_mul, wasm_f32x4_add)
}

static void micro_f64(int k, const f64 *restrict a, const f64 *restrict b, f64 *restrict c, int ldc, int mr,
                      int nr, f64 alpha, f64 *restrict tile) {
  v128_t acc[MR64][2];
  for (int i = 0; i < MR64; i++) acc[i][0] = acc[i][1] = wasm_f64x2_splat(0);
  for (int p = 0; p < k; p++) {
    v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 2);
    for (int i = 0; i < MR64; i++) {
      v128_t ai = wasm_v128_load64_splat(a + i);
      acc[i][0] = MADD64(ai, b0, acc[i][0]);
      acc[i][1] = MADD64(ai, b1, acc[i][1]);
    }
    a += MR64;
    b += NR64;
  }
  EPILOGUE(f64, MR64, NR64, 2, 2, wasm_f64x2_splat, wasm_f64x2_mul, wasm_f64x2_add)
}

/*
 * C[M x N] (+)= alpha op(A)[M x K] op(B)[K x N]. Without GEMM_ACC the computed part of C is zeroed first.
 * triOff / kOff: see the flags. work: sgemm_work_floats() floats (dgemm_work_doubles() for dgemm).
 */
#define DEFINE_GEMM(NAME, SUFFIX, T, MR, NR)                                                                    \
  void NAME(int flags, int M, int N, int K, T alpha, const T *A, int lda, const T *B, int ldb, T *C, int ldc,   \
            int triOff, int kOff, T *work) {                                                                    \
    T *Ap = work;                                                                                               \
    T *Bp = work + KC * MC;                                                                                     \
    T *tile = Bp + KC * NC;                                                                                     \
    if (!(flags & GEMM_ACC))                                                                                    \
      for (int i = 0; i < M; i++)                                                                               \
        for (int j = 0; j < N; j++) C[i * ldc + j] = 0;                                                         \
    for (int jc = 0; jc < N; jc += NC) {                                                                        \
      int nc = imin(NC, N - jc);                                                                                \
      for (int pc = 0; pc < K; pc += KC) {                                                                      \
        int kc = imin(KC, K - pc);                                                                              \
        if ((flags & GEMM_BUPPER) && pc > jc + nc - 1 + kOff) break;                                            \
        pack_b_##SUFFIX(flags, nc, kc, B, ldb, jc, pc, Bp);                                                     \
        for (int ic = 0; ic < M; ic += MC) {                                                                    \
          int mc = imin(MC, M - ic);                                                                            \
          if ((flags & GEMM_UPPER) && (jc + nc - 1) - ic < triOff) continue;                                    \
          if ((flags & GEMM_LOWER) && jc - (ic + mc - 1) > triOff) continue;                                    \
          if ((flags & GEMM_ALOWER) && pc > ic + mc - 1 + kOff) continue;                                       \
          pack_a_##SUFFIX(flags, mc, kc, A, lda, ic, pc, Ap);                                                   \
          for (int jr = 0; jr < nc; jr += NR) {                                                                 \
            int j0 = jc + jr, nr = imin(NR, N - j0);                                                            \
            for (int ir = 0; ir < mc; ir += MR) {                                                               \
              int i0 = ic + ir, mr = imin(MR, M - i0);                                                          \
              if ((flags & GEMM_UPPER) && (j0 + nr - 1) - i0 < triOff) continue;                                \
              if ((flags & GEMM_LOWER) && j0 - (i0 + mr - 1) > triOff) continue;                                \
              int kend = kc;                                                                                    \
              if (flags & GEMM_ALOWER) kend = imin(kend, i0 + mr + kOff - pc);                                  \
              if (flags & GEMM_BUPPER) kend = imin(kend, j0 + nr + kOff - pc);                                  \
              if (kend <= 0) continue;                                                                          \
              micro_##SUFFIX(kend, Ap + ir * kc, Bp + jr * kc, C + i0 * ldc + j0, ldc, mr, nr, alpha, tile);   \
            }                                                                                                   \
          }                                                                                                     \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }

DEFINE_GEMM(sgemm, f32, f32, MR32, NR32)
DEFINE_GEMM(dgemm, f64, f64, MR64, NR64)

/* ------------------------------------------------------------------------------------------------------ */
/* Cholesky pieces (the blocked loop lives in TypeScript, which splits its products across threads).      */

/*
 * Factors the nb x nb diagonal block at A (f32, leading dimension lda, lower triangle read) in float64:
 * block = L L^T. Writes L (f32, upper part zeroed) back to A and L^-1 (f32, lower) to Linv (ld nb).
 * work: 2 nb^2 doubles. Returns 0, or 1 + the index of the first non-positive pivot.
 */
int chol_block(int nb, f32 *A, int lda, f32 *Linv, f64 *work) {
  f64 *L = work;
  f64 *M = work + nb * nb;
  for (int i = 0; i < nb; i++)
    for (int j = 0; j <= i; j++) L[i * nb + j] = A[i * lda + j];
  for (int i = 0; i < nb; i++) {
    for (int j = 0; j <= i; j++) {
      f64 s = L[i * nb + j];
      for (int k = 0; k < j; k++) s -= L[i * nb + k] * L[j * nb + k];
      if (i == j) {
        if (!(s > 0)) return i + 1;
        L[i * nb + i] = __builtin_sqrt(s);
      } else
        L[i * nb + j] = s / L[j * nb + j];
    }
  }
  /* M = L^-1, row by row: M[i][:] = (e_i - sum_{k<i} L[i][k] M[k][:]) / L[i][i] */
  for (int i = 0; i < nb; i++) {
    for (int j = 0; j < nb; j++) M[i * nb + j] = 0;
    M[i * nb + i] = 1;
    for (int k = 0; k < i; k++) {
      f64 l = L[i * nb + k];
      for (int j = 0; j <= k; j++) M[i * nb + j] -= l * M[k * nb + j];
    }
    f64 inv = 1 / L[i * nb + i];
    for (int j = 0; j <= i; j++) M[i * nb + j] *= inv;
  }
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < nb; j++) {
      A[i * lda + j] = j <= i ? (f32)L[i * nb + j] : 0;
      Linv[i * nb + j] = j <= i ? (f32)M[i * nb + j] : 0;
    }
  return 0;
}

/*
 * A[i][j] = H[q[i] * n + q[j]] (float64 -> float32) for j < i and A[i][i] = diag[i]: the lower triangle of H
 * with rows and columns reordered by q, its diagonal replaced (GPTQ: dead inputs and damping).
 */
void gather_lower_f64_to_f32(int n, const f64 *H, const int *q, const f64 *diag, f32 *A) {
  for (int i = 0; i < n; i++) {
    const f64 *h = H + (long)q[i] * n;
    f32 *a = A + (long)i * n;
    for (int j = 0; j < i; j++) a[j] = (f32)h[q[j]];
    a[i] = (f32)diag[i];
  }
}
/* The same from a float32 H. */
void gather_lower_f32(int n, const f32 *H, const int *q, const f64 *diag, f32 *A) {
  for (int i = 0; i < n; i++) {
    const f32 *h = H + (long)q[i] * n;
    f32 *a = A + (long)i * n;
    for (int j = 0; j < i; j++) a[j] = h[q[j]];
    a[i] = (f32)diag[i];
  }
}

/* p[t] <-> p[n - 1 - t]: reverses n floats in place (a lower triangle read backwards is an upper one). */
void reverse_f32(long n, f32 *p) {
  for (long i = 0, j = n - 1; i < j; i++, j--) {
    f32 t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

/* ------------------------------------------------------------------------------------------------------ */
/* GPTQ: one column of a block, for a run of rows (layout: rows of `w` are the block's columns).            */

/*
 * Column i of the block, rows [0, n): with w the block's working values (w[c * ld + r] = column c, row r),
 * q the quantized column i and u row i of the block's U (u[i] its diagonal):
 *   err = (w_i - q) / u[i];  w_c -= err * u[c] for c in (i, cnt);  dcol = w0 - q.
 * Returns sum (w_i - q)^2 in float64 (the caller scales GPTQ's loss by 1 / (2 u[i]^2)).
 */
f64 gptq_column(int i, int cnt, int n, f32 *w, int ld, const f32 *q, const f32 *u, const f32 *w0, f32 *dcol) {
  /* n is a multiple of 4 (callers pad the rows with zeros, which stay zero). */
  f32 *wi = w + i * ld;
  v128_t vd = wasm_f32x4_splat(u[i]);
  v128_t s0 = wasm_f64x2_splat(0), s1 = wasm_f64x2_splat(0);
  for (int r = 0; r < n; r += 4) {
    v128_t x = wasm_v128_load(wi + r), qq = wasm_v128_load(q + r);
    v128_t diff = wasm_f32x4_sub(x, qq);
    v128_t dl = wasm_f64x2_promote_low_f32x4(diff);
    v128_t dh = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(diff, diff, 2, 3, 0, 1));
    s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(dl, dl));
    s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(dh, dh));
    wasm_v128_store(wi + r, wasm_f32x4_div(diff, vd));
    wasm_v128_store(dcol + r, wasm_f32x4_sub(wasm_v128_load(w0 + r), qq));
  }
  for (int c = i + 1; c < cnt; c++) {
    f32 *wc = w + c * ld;
    v128_t uc = wasm_f32x4_splat(u[c]);
    for (int r = 0; r < n; r += 4)
      wasm_v128_store(wc + r, NMADD32(wasm_v128_load(wi + r), uc, wasm_v128_load(wc + r)));
  }
  v128_t s = wasm_f64x2_add(s0, s1);
  return wasm_f64x2_extract_lane(s, 0) + wasm_f64x2_extract_lane(s, 1);
}

/*
 * A whole block for a run of n rows (n a multiple of 4) with an integer grid, quantization included: for
 * each column i < cnt, with p = groupOf[i] selecting the row of the parameter arrays (ldp apart),
 *   g = clamp(nearest_even(w / scale) + zero, qmin, qmax),  q = scale * (g - zero),  code = g - codeBase,
 * in float32, which is exactly qparams.ts gridValue / gridToValue / gridToCode for an integer grid (float32
 * division, multiplication and integer-valued sums round as JavaScript's Math.fround of the double result);
 * then the column's error is fed forward as gptq_column does. Qt / Ct receive q and the codes, w0 (the block's
 * rows of Wt) becomes W0 - q. Returns the part's GPTQ loss, sum_i sum_r (w - q)^2 / (2 u_ii^2).
 */
f64 gptq_block_int(int cnt, int n, f32 *w, int ld, const f32 *U, int ldu, const f32 *scale, const f32 *zero,
                   int ldp, const int *groupOf, f32 qmin, f32 qmax, f32 codeBase, f32 *w0, f32 *Qt,
                   unsigned short *Ct) {
  v128_t vqmin = wasm_f32x4_splat(qmin), vqmax = wasm_f32x4_splat(qmax), vcb = wasm_f32x4_splat(codeBase);
  f64 loss = 0;
  for (int i = 0; i < cnt; i++) {
    const f32 *u = U + i * ldu;
    const f32 *sc = scale + groupOf[i] * ldp, *zr = zero + groupOf[i] * ldp;
    f32 *wi = w + i * ld, *w0i = w0 + i * ld, *qi = Qt + i * ld;
    unsigned short *ci = Ct + i * ld;
    v128_t vd = wasm_f32x4_splat(u[i]);
    v128_t s0 = wasm_f64x2_splat(0), s1 = wasm_f64x2_splat(0);
    for (int r = 0; r < n; r += 4) {
      v128_t x = wasm_v128_load(wi + r), s = wasm_v128_load(sc + r), z = wasm_v128_load(zr + r);
      v128_t g = wasm_f32x4_add(wasm_f32x4_nearest(wasm_f32x4_div(x, s)), z);
      g = wasm_f32x4_min(vqmax, wasm_f32x4_max(vqmin, g));
      v128_t q = wasm_f32x4_mul(s, wasm_f32x4_sub(g, z));
      wasm_v128_store(qi + r, q);
      v128_t c = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_sub(g, vcb));
      wasm_v128_store64_lane(ci + r, wasm_u16x8_narrow_i32x4(c, c), 0);
      v128_t diff = wasm_f32x4_sub(x, q);
      v128_t dl = wasm_f64x2_promote_low_f32x4(diff);
      v128_t dh = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(diff, diff, 2, 3, 0, 1));
      s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(dl, dl));
      s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(dh, dh));
      wasm_v128_store(wi + r, wasm_f32x4_div(diff, vd));
      wasm_v128_store(w0i + r, wasm_f32x4_sub(wasm_v128_load(w0i + r), q));
    }
    for (int c = i + 1; c < cnt; c++) {
      f32 *wc = w + c * ld;
      v128_t uc = wasm_f32x4_splat(u[c]);
      for (int r = 0; r < n; r += 4)
        wasm_v128_store(wc + r, NMADD32(wasm_v128_load(wi + r), uc, wasm_v128_load(wc + r)));
    }
    v128_t sv = wasm_f64x2_add(s0, s1);
    f64 d = u[i];
    loss += (wasm_f64x2_extract_lane(sv, 0) + wasm_f64x2_extract_lane(sv, 1)) / (2 * d * d);
  }
  return loss;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Data movement.                                                                                            */

/* dst[c * ldd + r] = src[r * lds + map[c]] for r < rows, c < cols (a transpose gathering columns). */
void transpose_gather_f32(int rows, int cols, const f32 *src, int lds, const int *map, f32 *dst, int ldd) {
  const int T = 16;
  for (int r0 = 0; r0 < rows; r0 += T) {
    int r1 = imin(rows, r0 + T);
    for (int c0 = 0; c0 < cols; c0 += T) {
      int c1 = imin(cols, c0 + T);
      for (int c = c0; c < c1; c++) {
        const f32 *s = src + map[c];
        f32 *d = dst + c * ldd;
        for (int r = r0; r < r1; r++) d[r] = s[r * lds];
      }
    }
  }
}

/* dst[r * ldd + c] = src[r * lds + c] for a rows x cols block (f32). */
void copy_f32(int rows, int cols, const f32 *src, int lds, f32 *dst, int ldd) {
  for (int r = 0; r < rows; r++) {
    const f32 *s = src + r * lds;
    f32 *d = dst + r * ldd;
    int c = 0;
    for (; c + 4 <= cols; c += 4) wasm_v128_store(d + c, wasm_v128_load(s + c));
    for (; c < cols; c++) d[c] = s[c];
  }
}

/* sum_i a[i] b[i] in float64, two lanes of partial sums (a fixed order). */
f64 ddot(int n, const f64 *a, const f64 *b) {
  v128_t s0 = wasm_f64x2_splat(0), s1 = wasm_f64x2_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 = MADD64(wasm_v128_load(a + i), wasm_v128_load(b + i), s0);
    s1 = MADD64(wasm_v128_load(a + i + 2), wasm_v128_load(b + i + 2), s1);
  }
  v128_t s = wasm_f64x2_add(s0, s1);
  f64 t = wasm_f64x2_extract_lane(s, 0) + wasm_f64x2_extract_lane(s, 1);
  for (; i < n; i++) t += a[i] * b[i];
  return t;
}

/*
 * dst[r * ldd + map[k]] = src[k * lds + r] for k < K, r < rows: the transpose of a step-ordered [K x rows]
 * block back to row-major with its columns in their original places (f32 and u16), tiled 16 x 16.
 */
void scatter_transpose_f32(int K, int rows, const f32 *src, int lds, const int *map, f32 *dst, int ldd) {
  const int T = 16;
  for (int r0 = 0; r0 < rows; r0 += T) {
    int r1 = imin(rows, r0 + T);
    for (int k = 0; k < K; k++) {
      const f32 *s = src + k * lds;
      f32 *d = dst + map[k];
      for (int r = r0; r < r1; r++) d[r * ldd] = s[r];
    }
  }
}
void scatter_transpose_u16(int K, int rows, const unsigned short *src, int lds, const int *map, unsigned short *dst,
                           int ldd) {
  const int T = 16;
  for (int r0 = 0; r0 < rows; r0 += T) {
    int r1 = imin(rows, r0 + T);
    for (int k = 0; k < K; k++) {
      const unsigned short *s = src + k * lds;
      unsigned short *d = dst + map[k];
      for (int r = r0; r < r1; r++) d[r * ldd] = s[r];
    }
  }
}

/*
 * G[i][j] = G[j][i] = (float)(f * G[i][j]) for j >= i and r0 <= i < r1 (r0 a multiple of 32), in place: scales
 * the upper triangle of a d x d float32 matrix (in double, rounded once) and mirrors it. Calls on disjoint
 * row ranges write disjoint elements and read only the upper triangle.
 */
void sym_upper_scale_f32(int d, f32 *G, f64 f, int r0, int r1) {
  const int B = 32;
  for (int i0 = r0; i0 < r1; i0 += B) {
    int i1 = imin(r1, i0 + B);
    for (int j0 = i0; j0 < d; j0 += B) {
      int j1 = imin(d, j0 + B);
      for (int i = i0; i < i1; i++)
        for (int j = imax(j0, i); j < j1; j++) G[i * d + j] = G[j * d + i] = (f32)(f * (f64)G[i * d + j]);
    }
  }
}

/*
 * T[i][j] (+)= f * G[i][j] and T[j][i] (+)= f * G[i][j] for j >= i and r0 <= i < r1 (r0 a multiple of 32):
 * the upper triangle of a d x d float32 matrix, scaled, into a full symmetric float64 one (accumulate != 0:
 * added to T), tiled. Calls on disjoint row ranges write disjoint elements.
 */
void sym_upper_f32_to_f64(int d, const f32 *G, f64 *T, f64 f, int accumulate, int r0, int r1) {
  const int B = 32;
  for (int i0 = r0; i0 < r1; i0 += B) {
    int i1 = imin(r1, i0 + B);
    for (int j0 = i0; j0 < d; j0 += B) {
      int j1 = imin(d, j0 + B);
      for (int i = i0; i < i1; i++)
        for (int j = imax(j0, i); j < j1; j++) {
          f64 v = f * (f64)G[i * d + j];
          if (accumulate) {
            T[i * d + j] += v;
            if (j != i) T[j * d + i] += v;
          } else
            T[i * d + j] = T[j * d + i] = v;
        }
    }
  }
}

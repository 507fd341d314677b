// Activation quantization (int8 blocks of 32) and the plain float layouts: float32, float16 and bfloat16
// rows of K values exactly as GGUF / safetensors store them (row stride row_bytes, no padding: the last
// K mod 8 columns of a row take a scalar loop).
#ifndef MIXQ_KERNELS_DENSE_H
#define MIXQ_KERNELS_DENSE_H
#include "common.h"

// ---------------------------------------------------------------------------------------------------
// int8 activations. Per block of 32 (src/kernels/activations.ts quantizeQ8Reference is the reference):
//   amax = max |x| (NaN propagates), d = amax / 127, id = d != 0 ? 1 / d : 0,
//   q = clamp(roundTiesToEven(x * id), -127, 127)   (every step float32)
// `x` holds kp float32 values, zero beyond K.
EXPORT void act_q8(int32_t x_, int32_t kp, int32_t out_) {
  const float* x = (const float*)(uintptr_t)x_;
  const actw o = act_out((uint32_t)out_, kp);
  const v128_t lim = wasm_i32x4_splat(127), nlim = wasm_i32x4_splat(-127);
  for (int b = 0; b < kp / 32; b++) {
    const float* xb = x + 32 * b;
    v128_t v[8];
    v128_t m = wasm_f32x4_splat(0);
    for (int j = 0; j < 8; j++) {
      v[j] = wasm_v128_load(xb + 4 * j);
      m = wasm_f32x4_max(m, wasm_f32x4_abs(v[j]));
    }
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
    float amax = wasm_f32x4_extract_lane(m, 0);
    float db = amax / 127.0f;
    float id = db != 0.0f ? 1.0f / db : 0.0f;
    o.d[b] = db;
    v128_t vid = wasm_f32x4_splat(id);
    v128_t q32[8];
    for (int j = 0; j < 8; j++) {
      v128_t q = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(v[j], vid)));
      q32[j] = wasm_i32x4_max(wasm_i32x4_min(q, lim), nlim);
    }
    for (int h = 0; h < 2; h++) o.s[2 * b + h] = act_store16(q32 + 4 * h, &o, 32 * (size_t)b + 16 * h);
  }
}

// ---------------------------------------------------------------------------------------------------
// Float rows. Row r of a tile starts at data + r * row_bytes; 8 values per step, two accumulators per row.
INLINE void load8_f32(const wdesc* D, const uint8_t* p, v128_t* a, v128_t* b) {
  if (D->layout == LAYOUT_F32) {
    *a = wasm_v128_load(p);
    *b = wasm_v128_load(p + 16);
  } else {
    v128_t h = wasm_v128_load(p);
    v128_t lo = wasm_u32x4_extend_low_u16x8(h), hi = wasm_u32x4_extend_high_u16x8(h);
    if (D->layout == LAYOUT_F16) {
      *a = f16x4_to_f32(lo);
      *b = f16x4_to_f32(hi);
    } else {
      *a = wasm_i32x4_shl(lo, 16);
      *b = wasm_i32x4_shl(hi, 16);
    }
  }
}
INLINE float load1_f32(const wdesc* D, const uint8_t* p) {
  if (D->layout == LAYOUT_F32) return *(const float*)p;
  uint32_t h = (uint32_t)p[0] | ((uint32_t)p[1] << 8);
  return D->layout == LAYOUT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

/**
 * y[r] = sum_k W[r][k] x[k] for r in [r0, r1): float rows (F32 / F16 / BF16). MV_LANES rows per pass, 16
 * values of each row per step into one accumulator per row.
 *
 * The rows of a pass are far apart: [r0, r1) is cut into MV_LANES runs of L = ceil((r1 - r0) / MV_LANES)
 * rows and pass o computes row o of every run (rows r0 + o, r0 + L + o, ...; a run past r1 repeats row
 * r1 - 1 and drops the copy). Which rows share a pass changes no row's arithmetic (bit-identical results).
 * Rows read in lockstep are weight streams; streams one row apart (16 KiB for 4096 float32) are what this
 * host's memory serves slowest. Plain reads of 4096 x 4096 float32, cold, one thread: one sequential stream
 * 2.0-2.3 ms, 2 streams 16 KiB apart 3.6 ms, 1 MiB or 16 MiB apart 1.8-2.0 ms, 12 adjacent rows 2.8-2.9 ms
 * (the former pass of 12 adjacent rows took as long: 77-80% of one stream). The kernel, same process A/B
 * against 12 adjacent rows (paired medians of 15-30 rounds): 5 runs 1.19-1.51x on 1 thread and 1.10-1.38x
 * on 2; 4 runs about as fast, 3 and 6 to 12 slower than 5; weights in cache (1024 x 1024) 1.2x; bfloat16
 * 1.2-1.4x; float16 (bound by its conversion, ~7 ms) unchanged. Not faster (scratch harness): row r + i
 * skewed by i steps, bursts of 256 B - 4 KiB of one row after the other, and one load per 64 bytes reading
 * the next pass ahead.
 */
#define MV_LANES 5
INLINE void mv_dense_impl(const wdesc* D, const float* x, float* y, int r0, int r1, int layout) {
  const int K = D->cols, K16 = K & ~15;
  const int esz = layout == LAYOUT_F32 ? 4 : 2;
  const wdesc Dl = {.layout = layout};
  const int L = (r1 - r0 + MV_LANES - 1) / MV_LANES;
  for (int o = 0; o < L; o++) {
    const uint8_t* p[MV_LANES];
    v128_t a[MV_LANES];
    for (int i = 0; i < MV_LANES; i++) {
      const int ri = r0 + i * L + o < r1 ? r0 + i * L + o : r1 - 1;
      p[i] = (const uint8_t*)(uintptr_t)D->data + (size_t)ri * D->row_bytes;
      a[i] = wasm_f32x4_splat(0);
    }
    for (int k = 0; k < K16; k += 16) {
      const v128_t x0 = wasm_v128_load(x + k), x1 = wasm_v128_load(x + k + 4), x2 = wasm_v128_load(x + k + 8),
                   x3 = wasm_v128_load(x + k + 12);
      for (int i = 0; i < MV_LANES; i++) {
        v128_t w0, w1, w2, w3;
        load8_f32(&Dl, p[i] + esz * k, &w0, &w1);
        load8_f32(&Dl, p[i] + esz * (k + 8), &w2, &w3);
        a[i] = fmadd(w3, x3, fmadd(w2, x2, fmadd(w1, x1, fmadd(w0, x0, a[i]))));
      }
    }
    for (int i = 0; i < MV_LANES && r0 + i * L + o < r1; i++) {
      float t = hsum_f32(a[i]);
      for (int k = K16; k < K; k++) t += load1_f32(&Dl, p[i] + esz * k) * x[k];
      y[r0 + i * L + o] = t;
    }
  }
}
EXPORT void mv_dense(int32_t desc, int32_t x, int32_t y, int32_t r0, int32_t r1) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const float* xp = (const float*)(uintptr_t)x;
  float* yp = (float*)(uintptr_t)y;
  switch (D->layout) {
    case LAYOUT_F32: mv_dense_impl(D, xp, yp, r0, r1, LAYOUT_F32); break;
    case LAYOUT_F16: mv_dense_impl(D, xp, yp, r0, r1, LAYOUT_F16); break;
    default: mv_dense_impl(D, xp, yp, r0, r1, LAYOUT_BF16); break;
  }
}

// ---------------------------------------------------------------------------------------------------
// Matrix x matrix on float32: four rows of float32 weights (w[i], n values each: decoded tiles, kp or ggml's
// K, multiples of 32; dense rows take mm_f32_rows since session 8, so the scalar tail for n mod 4 below runs
// for no caller today: left until a session can measure the module without it) against nb activation rows
// X[j] = x + j * xs (zero beyond K), Y[j][r] = y[j * ys + r]. Two activation rows per step; an odd last
// one is computed twice and stored once, so every (row, column) pair takes the same arithmetic.
INLINE void mm_f32_tile(const float* const w[4], int n, const float* x, int xs, int nb, float* y, int ys, int r,
                        int last) {
  const int n4 = n & ~3;
  for (int j = 0; j < nb; j += 2) {
    const float* xa = x + (size_t)j * xs;
    const float* xb = j + 1 < nb ? xa + xs : xa;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < n4; k += 4) {
      v128_t u = wasm_v128_load(xa + k), v = wasm_v128_load(xb + k);
      v128_t w0 = wasm_v128_load(w[0] + k), w1 = wasm_v128_load(w[1] + k);
      a0 = fmadd(w0, u, a0);
      b0 = fmadd(w0, v, b0);
      a1 = fmadd(w1, u, a1);
      b1 = fmadd(w1, v, b1);
      v128_t w2 = wasm_v128_load(w[2] + k), w3 = wasm_v128_load(w[3] + k);
      a2 = fmadd(w2, u, a2);
      b2 = fmadd(w2, v, b2);
      a3 = fmadd(w3, u, a3);
      b3 = fmadd(w3, v, b3);
    }
    v128_t sa = hsum4_f32(a0, a1, a2, a3), sb = hsum4_f32(b0, b1, b2, b3);
    if (n4 < n) {
      float ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};
      for (int i = 0; i < 4; i++)
        for (int k = n4; k < n; k++) {
          ta[i] += w[i][k] * xa[k];
          tb[i] += w[i][k] * xb[k];
        }
      sa = wasm_f32x4_add(sa, wasm_f32x4_make(ta[0], ta[1], ta[2], ta[3]));
      sb = wasm_f32x4_add(sb, wasm_f32x4_make(tb[0], tb[1], tb[2], tb[3]));
    }
    store_tile(y + (size_t)j * ys, r, last, sa);
    if (j + 1 < nb) store_tile(y + (size_t)(j + 1) * ys, r, last, sb);
  }
}

/** Decodes `nr` float16 / bfloat16 rows (rr[i]) into float32 scratch rows of K values, `stride` apart. */
INLINE void decode_dense_rows(const wdesc* D, const int* rr, int nr, float* scratch, int stride) {
  const int K = D->cols, K8 = K & ~7;
  for (int i = 0; i < nr; i++) {
    const uint8_t* p = (const uint8_t*)(uintptr_t)D->data + (size_t)rr[i] * D->row_bytes;
    float* o = scratch + (size_t)i * stride;
    for (int k = 0; k < K8; k += 8) {
      v128_t a, b;
      load8_f32(D, p + 2 * k, &a, &b);
      wasm_v128_store(o + k, a);
      wasm_v128_store(o + k + 4, b);
    }
    for (int k = K8; k < K; k++) o[k] = load1_f32(D, p + 2 * k);
  }
}

/*
 * Matrix x matrix on float rows (mm_dense): every (weight row, activation row) pair takes mv_dense_impl's
 * float32 operations in its order, so each batch row equals its matrix x vector product bit for bit. Per
 * pair one accumulator vector: lane l sums fmadd(w[k], x[k]) for k = l mod 4 in increasing k up to K16 = K
 * rounded down to 16, then hsum ((l0 + l2) + (l1 + l3)), then the scalar tail t += w[k] x[k], k = K16..K-1.
 * Storing an accumulator and loading it back is exact, so the K loop may be cut into blocks.
 *
 * Tile, relaxed SIMD: MMF_ROWS = 3 weight rows x MMF_STEP = 3 activation rows, nine accumulators. V8
 * compiles f32x4.relaxed_madd to one vfmadd231ps on 128-bit registers (latency 4, two per cycle: eight
 * independent sums keep the units busy) and gives wasm 15 vector registers; it loads a step's vectors (3
 * weight, 3 activation) before its multiply-adds, so 9 + 6 fit where 4 x 2 (8 + 6) leaves no slack and
 * 6 x 2 or 5 x 2 (12 + 8, 10 + 7) spill in every step (measured 1.7-2x slower).
 * SIMD128: fmadd is a multiplication and an addition and needs a register for the product, so 3 x 3 (9 + 6
 * + 1) spills (2x slower); 4 x 2 (8 + 6 + 1) does not.
 * K blocks: MMF_KB values of the tile's rows (6-8 KiB) stay in L1 while the activation rows of a pass go
 * by; their accumulators wait in scratch between blocks (MMF_PASS rows at a time, <= 2 KiB).
 */
#if MIXQ_RELAXED
#define MMF_ROWS 3
#define MMF_STEP 3
#define MMF_PASS 33
#else
#define MMF_ROWS 4
#define MMF_STEP 2
#define MMF_PASS 32
#endif
#define MMF_KB 512
_Static_assert(MMF_ROWS == 3 || MMF_ROWS == 4, "mm_f32_rows sums up to four rows per hsum4_f32");

/**
 * Y[j][rr[i]] = sum_k w[i][k] X[j][k] for i < nrows, j < nb <= MMF_PASS: MMF_ROWS rows w[i] of n values
 * (a row past the last repeats it), X[j] = x + j * xs. acc: MMF_PASS * MMF_ROWS vectors of scratch.
 */
INLINE void mm_f32_rows(const float* const w[MMF_ROWS], int n, const float* x, int xs, int nb, float* y, int ys,
                        const int rr[MMF_ROWS], int nrows, v128_t* acc) {
  const int n16 = n & ~15;
  for (int k0 = 0; k0 == 0 || k0 < n16; k0 += MMF_KB) {
    const int k1 = n16 - k0 > MMF_KB ? k0 + MMF_KB : n16;
    for (int j = 0; j < nb; j += MMF_STEP) {
      const float* xr[MMF_STEP];
      for (int c = 0; c < MMF_STEP; c++) xr[c] = x + (size_t)(j + c < nb ? j + c : j) * xs;
      v128_t a[MMF_STEP][MMF_ROWS];
      v128_t* s = acc + (size_t)j * MMF_ROWS;
      for (int c = 0; c < MMF_STEP; c++)
        for (int i = 0; i < MMF_ROWS; i++) a[c][i] = k0 ? s[c * MMF_ROWS + i] : wasm_f32x4_splat(0);
      for (int k = k0; k < k1; k += 4) {
        v128_t u[MMF_STEP];
        for (int c = 0; c < MMF_STEP; c++) u[c] = wasm_v128_load(xr[c] + k);
        for (int i = 0; i < MMF_ROWS; i++) {
          const v128_t wi = wasm_v128_load(w[i] + k);
          for (int c = 0; c < MMF_STEP; c++) a[c][i] = fmadd(wi, u[c], a[c][i]);
        }
      }
      if (k1 < n16) {
        for (int c = 0; c < MMF_STEP; c++)
          for (int i = 0; i < MMF_ROWS; i++) s[c * MMF_ROWS + i] = a[c][i];
        continue;
      }
      for (int c = 0; c < MMF_STEP && j + c < nb; c++) {
        float t[4];
        wasm_v128_store(t, hsum4_f32(a[c][0], a[c][1], a[c][2], a[c][MMF_ROWS - 1]));
        for (int i = 0; i < nrows; i++) {
          for (int k = n16; k < n; k++) t[i] += w[i][k] * xr[c][k];
          y[(size_t)(j + c) * ys + rr[i]] = t[i];
        }
      }
    }
  }
}

/**
 * Y[j][r] = sum_k W[r][k] X[j][k] for r in [r0, r1), j < nb. scratch: MMF_ROWS * kp floats of decoded
 * F16 / BF16 rows, then MMF_PASS * MMF_ROWS vectors of accumulators (scratchBytes: 16 kp + 8 KiB at least).
 */
EXPORT void mm_dense(int32_t desc, int32_t x, int32_t xs, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                     int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  float* s = (float*)(uintptr_t)scratch;
  v128_t* acc = (v128_t*)(s + (size_t)MMF_ROWS * D->kp);
  for (int r = r0; r < r1; r += MMF_ROWS) {
    int rr[MMF_ROWS];
    const float* w[MMF_ROWS];
    for (int i = 0; i < MMF_ROWS; i++) rr[i] = r + i < r1 ? r + i : r1 - 1;
    const int nr = r1 - r < MMF_ROWS ? r1 - r : MMF_ROWS;
    if (D->layout == LAYOUT_F32) {
      for (int i = 0; i < MMF_ROWS; i++)
        w[i] = (const float*)((const uint8_t*)(uintptr_t)D->data + (size_t)rr[i] * D->row_bytes);
    } else {
      decode_dense_rows(D, rr, MMF_ROWS, s, D->kp);
      for (int i = 0; i < MMF_ROWS; i++) w[i] = s + (size_t)i * D->kp;
    }
    for (int j = 0; j < nb; j += MMF_PASS)
      mm_f32_rows(w, D->cols, (const float*)(uintptr_t)x + (size_t)j * xs, xs, nb - j < MMF_PASS ? nb - j : MMF_PASS,
                  (float*)(uintptr_t)y + (size_t)j * ys, ys, rr, nr, acc);
  }
}

/** Sums 16-byte words of [p, p + bytes) (bytes a multiple of 64): reads memory as fast as this engine can. */
EXPORT uint32_t read_bandwidth(int32_t p_, int32_t bytes) {
  const v128_t* p = (const v128_t*)(uintptr_t)p_;
  v128_t a = wasm_i32x4_splat(0), b = a, c = a, d = a;
  for (int i = 0; i < bytes / 16; i += 4) {
    a = wasm_i32x4_add(a, p[i]);
    b = wasm_i32x4_add(b, p[i + 1]);
    c = wasm_i32x4_add(c, p[i + 2]);
    d = wasm_i32x4_add(d, p[i + 3]);
  }
  a = wasm_i32x4_add(wasm_i32x4_add(a, b), wasm_i32x4_add(c, d));
  return (uint32_t)(wasm_i32x4_extract_lane(a, 0) ^ wasm_i32x4_extract_lane(a, 3));
}
/** read_bandwidth over rows [r0, r1) of row_bytes each from base (threads split the rows). */
EXPORT uint32_t read_rows(int32_t base, int32_t row_bytes, int32_t r0, int32_t r1) {
  return read_bandwidth((int32_t)((uint32_t)base + (uint32_t)r0 * (uint32_t)row_bytes), (r1 - r0) * row_bytes);
}
#endif

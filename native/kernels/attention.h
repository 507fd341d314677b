// Causal multi-head attention over a KV cache held in kernel memory (src/kernels/attention.ts is the
// TypeScript side; src/engine/ops.ts `attention` is its reference). Keys and values are float32 rows of
// kv_heads x head_dim values, one row per position. Query head h reads key / value head h / (heads /
// kv_heads) (GQA). Threads split the query heads; every head's arithmetic is the same whatever thread runs
// it, so results do not depend on the thread count.
//
// Per query row r (position pos0 + r, seeing keys 0 .. pos0 + r) and head h:
//   s_j = f32(f32(q . k_j) * scale), scale = f32(1 / sqrt(head_dim))    (dot: float32, 4 lanes + hsum)
//   e_j = f32(exp(s_j - max_j s_j))          exp in float64, rounded once to float32 (exp_f64x2 below)
//   w_j = f32(e_j / sum_j e_j)               sum in float64
//   out = sum_j w_j v_j                      float32 accumulators
#ifndef MIXQ_KERNELS_ATTENTION_H
#define MIXQ_KERNELS_ATTENTION_H
#include "common.h"

/**
 * exp(x) for two float64 lanes to within ~2 ulp of float64 (Cody-Waite reduction by ln 2, Taylor series to
 * degree 13 on |r| <= ln2 / 2: truncation below 1e-17), so that rounding it to float32 gives the correctly
 * rounded float32 exp except when exp(x) lies within a few float64 ulp of a float32 rounding boundary
 * (probability ~1e-8 per value). Arguments below -708 are taken as -708 (exp is 0 in float32 long before);
 * above 709.78 the result is +inf (as float64's exp overflows); NaN stays NaN.
 */
INLINE v128_t exp_f64x2(v128_t x0) {
  const v128_t x = wasm_f64x2_min(wasm_f64x2_max(x0, wasm_f64x2_splat(-708.0)), wasm_f64x2_splat(709.0));
  const v128_t n = wasm_f64x2_nearest(wasm_f64x2_mul(x, wasm_f64x2_splat(1.4426950408889634)));
  // ln 2 = HI + LO, HI with 32 significant bits: n * HI is exact for |n| < 2^21
  v128_t r = wasm_f64x2_sub(x, wasm_f64x2_mul(n, wasm_f64x2_splat(6.93147180369123816490e-01)));
  r = wasm_f64x2_sub(r, wasm_f64x2_mul(n, wasm_f64x2_splat(1.90821492927058770002e-10)));
  static const double C[14] = {1.0,
                               1.0,
                               1.0 / 2,
                               1.0 / 6,
                               1.0 / 24,
                               1.0 / 120,
                               1.0 / 720,
                               1.0 / 5040,
                               1.0 / 40320,
                               1.0 / 362880,
                               1.0 / 3628800,
                               1.0 / 39916800,
                               1.0 / 479001600,
                               1.0 / 6227020800.0};
  v128_t p = wasm_f64x2_splat(C[13]);
  for (int i = 12; i >= 0; i--) p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(C[i]));
  // 2^n from its bits (n in [-1021, 1023]: a normal float64)
  const v128_t ni = wasm_i64x2_extend_low_i32x4(wasm_i32x4_trunc_sat_f64x2_zero(n));
  const v128_t two_n = wasm_i64x2_shl(wasm_i64x2_add(ni, wasm_i64x2_splat(1023)), 52);
  return wasm_v128_bitselect(wasm_f64x2_splat(__builtin_inf()), wasm_f64x2_mul(p, two_n),
                             wasm_f64x2_gt(x0, wasm_f64x2_splat(709.782712893384)));
}

/** out[i] = f32(exp(f64(x[i]))) for i < n: the exp of the softmax, exported for its test. */
EXPORT void exp_f32(int32_t x_, int32_t n, int32_t out_) {
  const float* x = (const float*)(uintptr_t)x_;
  float* out = (float*)(uintptr_t)out_;
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    v128_t e = exp_f64x2(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(x + i)));
    wasm_v128_store64_lane(out + i, wasm_f32x4_demote_f64x2_zero(e), 0);
  }
  if (i < n) {
    v128_t e = exp_f64x2(wasm_f64x2_splat((double)x[i]));
    out[i] = wasm_f32x4_extract_lane(wasm_f32x4_demote_f64x2_zero(e), 0);
  }
}

/**
 * SwiGLU: out[i] = f32(f32(g / (1 + exp(-g))) * up[i]) for i < n, g = gate[i] (float64 quotient, as
 * src/engine/ops.ts `swiglu`, its reference); out may be gate.
 */
EXPORT void swiglu_f32(int32_t gate_, int32_t up_, int32_t out_, int32_t n) {
  const float* g = (const float*)(uintptr_t)gate_;
  const float* up = (const float*)(uintptr_t)up_;
  float* out = (float*)(uintptr_t)out_;
  const v128_t one = wasm_f64x2_splat(1.0);
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    const v128_t gd = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(g + i));
    const v128_t s = wasm_f64x2_div(gd, wasm_f64x2_add(one, exp_f64x2(wasm_f64x2_neg(gd))));
    const v128_t r = wasm_f32x4_mul(wasm_f32x4_demote_f64x2_zero(s), wasm_v128_load64_zero(up + i));
    wasm_v128_store64_lane(out + i, r, 0);
  }
  if (i < n) {
    const v128_t gd = wasm_f64x2_splat((double)g[i]);
    const v128_t s = wasm_f64x2_div(gd, wasm_f64x2_add(one, exp_f64x2(wasm_f64x2_neg(gd))));
    out[i] = wasm_f32x4_extract_lane(wasm_f32x4_demote_f64x2_zero(s), 0) * up[i];
  }
}

/** s[j] = f32(f32(q . k_j) * scale) for j < n, keys ks apart; four keys per pass (a key past n repeats the last). */
INLINE void attn_scores(const float* q, const float* k, int ks, int n, int hd, float scale, float* s) {
  const int hd4 = hd & ~3;
  const v128_t vs = wasm_f32x4_splat(scale);
  for (int j = 0; j < n; j += 4) {
    const float* kr[4];
    for (int i = 0; i < 4; i++) kr[i] = k + (size_t)(j + i < n ? j + i : n - 1) * ks;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (int d = 0; d < hd4; d += 4) {
      const v128_t qv = wasm_v128_load(q + d);
      a0 = fmadd(qv, wasm_v128_load(kr[0] + d), a0);
      a1 = fmadd(qv, wasm_v128_load(kr[1] + d), a1);
      a2 = fmadd(qv, wasm_v128_load(kr[2] + d), a2);
      a3 = fmadd(qv, wasm_v128_load(kr[3] + d), a3);
    }
    v128_t t = hsum4_f32(a0, a1, a2, a3);
    if (hd4 < hd) {
      float u[4] = {0, 0, 0, 0};
      for (int i = 0; i < 4; i++)
        for (int d = hd4; d < hd; d++) u[i] += q[d] * kr[i][d];
      t = wasm_f32x4_add(t, wasm_f32x4_make(u[0], u[1], u[2], u[3]));
    }
    t = wasm_f32x4_mul(t, vs);
    if (j + 4 <= n) wasm_v128_store(s + j, t);
    else store_tile(s, j, n - 1, t);
  }
}

/** Softmax of s[0..n) in place: the weights w_j above. */
INLINE void attn_softmax(float* s, int n) {
  v128_t m4 = wasm_f32x4_splat(-__builtin_inff());
  int j = 0;
  for (; j + 4 <= n; j += 4) m4 = wasm_f32x4_max(m4, wasm_v128_load(s + j));
  float m = wasm_f32x4_extract_lane(m4, 0);
  for (int i = 1; i < 4; i++) {
    float v = i == 1 ? wasm_f32x4_extract_lane(m4, 1) : i == 2 ? wasm_f32x4_extract_lane(m4, 2) : wasm_f32x4_extract_lane(m4, 3);
    m = v > m ? v : m;
  }
  for (; j < n; j++) m = s[j] > m ? s[j] : m;
  const v128_t vm = wasm_f64x2_splat((double)m);
  v128_t sum = wasm_f64x2_splat(0);
  j = 0;
  for (; j + 2 <= n; j += 2) {
    v128_t e = wasm_f32x4_demote_f64x2_zero(
        exp_f64x2(wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(s + j)), vm)));
    wasm_v128_store64_lane(s + j, e, 0);
    sum = wasm_f64x2_add(sum, wasm_f64x2_promote_low_f32x4(e));
  }
  double tot = wasm_f64x2_extract_lane(sum, 0) + wasm_f64x2_extract_lane(sum, 1);
  if (j < n) {
    float e = wasm_f32x4_extract_lane(
        wasm_f32x4_demote_f64x2_zero(exp_f64x2(wasm_f64x2_splat((double)s[j] - (double)m))), 0);
    s[j] = e;
    tot += (double)e;
  }
  const v128_t inv = wasm_f64x2_splat(1.0 / tot);
  j = 0;
  for (; j + 2 <= n; j += 2) {
    v128_t w = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(s + j)), inv);
    wasm_v128_store64_lane(s + j, wasm_f32x4_demote_f64x2_zero(w), 0);
  }
  if (j < n) s[j] = (float)((double)s[j] * (1.0 / tot));
}

/** out[d] = sum_j w[j] v_j[d] for d < hd, values vs apart: 16 columns per pass, then 4, then one. */
INLINE void attn_values(const float* w, const float* v, int vs, int n, int hd, float* out) {
  int d = 0;
  for (; d + 16 <= hd; d += 16) {
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    const float* p = v + d;
    for (int j = 0; j < n; j++, p += vs) {
      const v128_t wj = wasm_f32x4_splat(w[j]);
      a0 = fmadd(wj, wasm_v128_load(p), a0);
      a1 = fmadd(wj, wasm_v128_load(p + 4), a1);
      a2 = fmadd(wj, wasm_v128_load(p + 8), a2);
      a3 = fmadd(wj, wasm_v128_load(p + 12), a3);
    }
    wasm_v128_store(out + d, a0);
    wasm_v128_store(out + d + 4, a1);
    wasm_v128_store(out + d + 8, a2);
    wasm_v128_store(out + d + 12, a3);
  }
  for (; d + 4 <= hd; d += 4) {
    v128_t a = wasm_f32x4_splat(0);
    const float* p = v + d;
    for (int j = 0; j < n; j++, p += vs) a = fmadd(wasm_f32x4_splat(w[j]), wasm_v128_load(p), a);
    wasm_v128_store(out + d, a);
  }
  for (; d < hd; d++) {
    float a = 0;
    const float* p = v + d;
    for (int j = 0; j < n; j++, p += vs) a += w[j] * *p;
    out[d] = a;
  }
}

/**
 * Attention of `rows` query rows (q: rows x heads x hd floats; out likewise) at positions pos0 .. pos0 +
 * rows - 1 over keys / values k, v (positions x kv_heads x hd floats, the new rows already stored), for query
 * heads [h0, h1). scratch: pos0 + rows floats.
 */
EXPORT void attn_f32(int32_t q_, int32_t k_, int32_t v_, int32_t out_, int32_t rows, int32_t pos0, int32_t heads,
                     int32_t kv_heads, int32_t hd, int32_t h0, int32_t h1, int32_t scratch) {
  const float* q = (const float*)(uintptr_t)q_;
  const float* k = (const float*)(uintptr_t)k_;
  const float* v = (const float*)(uintptr_t)v_;
  float* out = (float*)(uintptr_t)out_;
  float* s = (float*)(uintptr_t)scratch;
  const int rep = heads / kv_heads, qw = heads * hd, kw = kv_heads * hd;
  const float scale = (float)(1.0 / __builtin_sqrt((double)hd));
  for (int h = h0; h < h1; h++) {
    const size_t g = (size_t)(h / rep) * hd;
    for (int r = 0; r < rows; r++) {
      const int n = pos0 + r + 1;
      const size_t qo = (size_t)r * qw + (size_t)h * hd;
      attn_scores(q + qo, k + g, kw, n, hd, scale, s);
      attn_softmax(s, n);
      attn_values(s, v + g, kw, n, hd, out + qo);
    }
  }
}
#endif

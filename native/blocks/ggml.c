// ggml's block encoders and decoders (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL MXFP4),
// bit-exact with the TypeScript reference in src/blocks/ggml/ (itself bit-exact with ggml-quants.c,
// ggml-org/ggml d99724f), which test/blocks/ggml-fast.test.ts ties to this module byte for byte.
//
// Speed comes from SIMD128 without changing any float32 result: the searches (make_qkx, make_qx,
// make_q3, make_qp, IQ4_NL's trial scales) run four independent sub-blocks or blocks at once, one per
// lane, each lane doing exactly the reference's operation sequence (ggml-lanes.h); element-wise work
// (ref quantizers of the 32-weight types, requantization, packing, decoding) is vectorised within a block.
// -ffp-contract=off (scripts/build-wasm.mjs) keeps every multiply and add separately rounded.
//
// The caller (src/blocks/ggml/wasm.ts) owns memory: it copies inputs above ggml_heap_base(), calls
// ggml_quantize / ggml_dequantize, and copies the results out.
// wasm-variants: simd128

#include "ggml-lanes.h"
#include "ggml-solvers.h"

extern u8 __heap_base;
/** First free byte of linear memory (the caller's buffers go above it). */
u32 ggml_heap_base(void) { return (u32)(unsigned long)&__heap_base; }

// ---------------------------------------------------------------------------------------------
// scalar helpers: float bits, fp16 fields (common.ts writeF16 / readF16), sums in index order

static inline u32 fbits(float f) {
  u32 u;
  __builtin_memcpy(&u, &f, 4);
  return u;
}
static inline float bitsf(u32 u) {
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

/** float32 -> IEEE fp16 bits, round to nearest even (core/bits.ts f32ToF16Bits). */
static u32 f32_to_f16(float x) {
  u32 b = fbits(x);
  u32 sign = (b >> 16) & 0x8000;
  u32 a = b & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    float f = bitsf(a) + 0.5f;
    return sign | ((fbits(f) - 0x3f000000) & 0xffff);
  }
  u32 odd = (a >> 13) & 1;
  return sign | (((a + 0xc8000fff + odd) >> 13) & 0xffff);
}

/** IEEE fp16 bits -> float32 (exact; NaN as the quiet NaN a Float32Array store gives). */
static float f16_to_f32(u32 h) {
  u32 s = (h & 0x8000) << 16;
  u32 e = (h >> 10) & 0x1f;
  u32 m = h & 0x3ff;
  if (e == 0) {
    float v = (float)m * 5.9604644775390625e-8f; // m * 2^-24, exact
    return s ? -v : v;
  }
  if (e == 31) return m ? bitsf(0x7fc00000) : bitsf(s | 0x7f800000);
  return bitsf(s | ((e + 112) << 23) | (m << 13));
}

static inline void wr16(u8 *o, float x) {
  u32 h = f32_to_f16(x);
  o[0] = h & 0xff;
  o[1] = h >> 8;
}
static inline float rd16(const u8 *o) { return f16_to_f32(o[0] | (o[1] << 8)); }

/** float32 sum of squares in index order (common.ts sumSquares). */
static float sumsq(const float *x, int n) {
  float s = 0;
  for (int j = 0; j < n; j++) s = s + x[j] * x[j];
  return s;
}

static inline float hmax4(V v) {
  v = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}
static inline float hmin4(V v) {
  v = wasm_f32x4_pmin(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_pmin(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}

/** Mask of lanes holding a finite value. */
static inline V finite4(V f) { return wasm_f32x4_lt(fabs4(f), fs(__builtin_inff())); }

/** 16 int32 levels (4 vectors, values 0..255) -> 16 bytes. */
static inline V bytes16(const V *l) {
  return wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(l[0], l[1]), wasm_i16x8_narrow_i32x4(l[2], l[3]));
}

/** Byte j of `dst` = lo[j] | hi[j] << 4 for 16 bytes (packNibbles32 on a block of 32 levels). */
static inline void store_nibbles(u8 *dst, V lo, V hi) {
  wasm_v128_store(dst, wasm_v128_or(lo, wasm_i8x16_shl(hi, 4)));
}

/** legacy-common.ts packQ5: 32 five-bit levels (two byte vectors) -> qh (u32 LE) at o, qs at o + 4. */
static inline void pack_q5(u8 *o, V lo, V hi) {
  V m = wasm_i8x16_splat(0x0f);
  wasm_v128_store(o + 4, wasm_v128_or(wasm_v128_and(lo, m), wasm_i8x16_shl(wasm_v128_and(hi, m), 4)));
  u32 qh = (u32)wasm_i8x16_bitmask(wasm_i8x16_shl(lo, 3)) | ((u32)wasm_i8x16_bitmask(wasm_i8x16_shl(hi, 3)) << 16);
  __builtin_memcpy(o, &qh, 4);
}

// ---------------------------------------------------------------------------------------------
// Q4_0 / Q5_0 / Q4_1 / Q5_1 / Q8_0 / MXFP4 ref quantizers: element-wise within one block of 32

/** Loads one block of 32 values into a[0..8) and returns their largest magnitude (NaN never wins). */
static inline float load_block_amax(const float *x, V *a) {
  V am = fs(0);
  for (int k = 0; k < 8; k++) {
    a[k] = wasm_v128_load(x + 4 * k);
    am = wasm_f32x4_pmax(am, fabs4(a[k]));
  }
  return hmax4(am);
}

/** maxByMagnitude over one block of 32 (loaded into a): the signed value, first on ties, +0 if all zero. */
static float block_max_by_magnitude(const float *x, V *a) {
  float amax = load_block_amax(x, a);
  if (!(amax > 0)) return 0.f;
  V s = fs(amax);
  u32 mask = 0;
  for (int k = 0; k < 8; k++) mask |= (u32)wasm_i32x4_bitmask(wasm_f32x4_eq(fabs4(a[k]), s)) << (4 * k);
  return x[__builtin_ctz(mask)];
}

/** The first element of the block equal to v (only needed to get the sign of a zero right). */
static float first_equal(const float *x, float v) {
  for (int j = 0; j < 32; j++)
    if (x[j] == v) return x[j];
  return v;
}

/** Symmetric ref rule (Q4_0 nmax 8, Q5_0 nmax 16): d at o, levels in two byte vectors lo (j<16), hi. */
static void sym_ref_block(const float *x, int nmax, u8 *o, V *lo, V *hi) {
  V a[8];
  float max = block_max_by_magnitude(x, a);
  float d = max / (float)-nmax;
  wr16(o, d);
  float id = d != 0 ? 1.0f / d : 0.0f;
  V vid = fs(id), off = fs((float)nmax + 0.5f);
  V l[8];
  // trunc, then MIN(2*nmax - 1); -inf (a tiny d whose inverse overflows) packs as 0, as in the reference
  for (int k = 0; k < 8; k++)
    l[k] = clampi(wasm_i32x4_trunc_sat_f32x4(fadd(fmul(a[k], vid), off)), 0, 2 * nmax - 1);
  *lo = bytes16(l);
  *hi = bytes16(l + 4);
}

/** Affine ref rule (Q4_1 nmax 15 clamped, Q5_1 nmax 31 kept to 8 bits): d, m at o, o + 2. */
static void affine_ref_block(const float *x, int nmax, int clamp15, u8 *o, V *lo, V *hi) {
  V a[8];
  V mn = fs(3.4028234663852886e38f), mx = fs(-3.4028234663852886e38f);
  for (int k = 0; k < 8; k++) {
    a[k] = wasm_v128_load(x + 4 * k);
    mn = wasm_f32x4_pmin(mn, a[k]);
    mx = wasm_f32x4_pmax(mx, a[k]);
  }
  float min = hmin4(mn), max = hmax4(mx);
  if (min == 0) min = first_equal(x, min);
  if (max == 0) max = first_equal(x, max);
  float d = (max - min) / (float)nmax;
  wr16(o, d);
  wr16(o + 2, min);
  float id = d != 0 ? 1.0f / d : 0.0f;
  V vmin = fs(min), vid = fs(id), half = fs(0.5f);
  V l[8];
  for (int k = 0; k < 8; k++) {
    V f = fadd(fmul(fsub(a[k], vmin), vid), half);
    V t = wasm_i32x4_trunc_sat_f32x4(f);
    // Q4_1: MIN(15, trunc); Q5_1: trunc & 0xff with a non-finite value counting as 0 (ToInt32)
    l[k] = clamp15 ? clampi(t, 0, 15) : wasm_v128_and(sel(t, is_(0), finite4(f)), is_(0xff));
  }
  *lo = bytes16(l);
  *hi = bytes16(l + 4);
}

static void q4_0_ref(const float *x, int nb, u8 *out) {
  for (int i = 0; i < nb; i++) {
    V lo, hi;
    sym_ref_block(x + 32 * i, 8, out + 18 * i, &lo, &hi);
    store_nibbles(out + 18 * i + 2, lo, hi);
  }
}
static void q5_0_ref(const float *x, int nb, u8 *out) {
  for (int i = 0; i < nb; i++) {
    V lo, hi;
    sym_ref_block(x + 32 * i, 16, out + 22 * i, &lo, &hi);
    pack_q5(out + 22 * i + 2, lo, hi);
  }
}
static void q4_1_ref(const float *x, int nb, u8 *out) {
  for (int i = 0; i < nb; i++) {
    V lo, hi;
    affine_ref_block(x + 32 * i, 15, 1, out + 20 * i, &lo, &hi);
    store_nibbles(out + 20 * i + 4, lo, hi);
  }
}
static void q5_1_ref(const float *x, int nb, u8 *out) {
  for (int i = 0; i < nb; i++) {
    V lo, hi;
    affine_ref_block(x + 32 * i, 31, 0, out + 24 * i, &lo, &hi);
    pack_q5(out + 24 * i + 4, lo, hi);
  }
}

static void q8_0_ref(const float *x, int nb, u8 *out) {
  for (int i = 0; i < nb; i++) {
    const float *xb = x + 32 * i;
    u8 *o = out + 34 * i;
    V a[8];
    float amax = load_block_amax(xb, a);
    float d = amax / 127.f;
    float id = d != 0 ? 1.0f / d : 0.0f;
    wr16(o, d);
    V vid = fs(id);
    V q[8];
    for (int k = 0; k < 8; k++) {
      // roundf (ties away from zero), exactly: trunc |v|, add 1 when the fraction is >= 0.5
      V v = fmul(a[k], vid);
      V av = fabs4(v);
      V t = wasm_f32x4_trunc(av);
      V r = fadd(t, sel(fs(1), fs(0), wasm_f32x4_ge(fsub(av, t), fs(0.5f))));
      V ri = wasm_i32x4_trunc_sat_f32x4(r);
      ri = sel(wasm_i32x4_neg(ri), ri, wasm_f32x4_lt(v, fs(0)));
      q[k] = sel(ri, is_(0), finite4(v)); // a non-finite quotient stores 0, as `& 0xff` in the reference
    }
    V b0 = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[0], q[1]), wasm_i16x8_narrow_i32x4(q[2], q[3]));
    V b1 = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[4], q[5]), wasm_i16x8_narrow_i32x4(q[6], q[7]));
    wasm_v128_store(o + 2, b0);
    wasm_v128_store(o + 18, b1);
  }
}

// MXFP4: floor(log2f(amax)) is floor(fround(log2(amax))) in the reference; it equals the binary exponent
// k of amax, or k + 1 when amax is at or above the threshold of its binade where the float32 rounding
// of log2 reaches k + 1. The thresholds (for k = -149..127) are computed by the caller from the same
// Math.log2 the reference uses and written here.
static float mxfp4_thresholds[277];
float *ggml_mxfp4_thresholds(void) { return mxfp4_thresholds; }

static const float KV_MXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static void mxfp4_ref(const float *x, int nb, u8 *out) {
  for (int i = 0; i < nb; i++) {
    const float *xb = x + 32 * i;
    u8 *o = out + 17 * i;
    V a[8];
    float amax = load_block_amax(xb, a);
    u32 e = 0;
    if (amax > 0) {
      u32 b = fbits(amax);
      int k = (b >> 23) ? (int)(b >> 23) - 127 : (31 - __builtin_clz(b)) - 149;
      int g = k + (amax >= mxfp4_thresholds[k + 149] ? 1 : 0);
      e = (u32)(g - 2 + 127) & 0xff;
    }
    // 2^(e-128): a normal float for e >= 2, subnormal below
    float d = e >= 2 ? bitsf((e - 1) << 23) : bitsf(0x200000u << e);
    o[0] = (u8)e;
    // The reference scans all 16 codes for the first smallest |fr(kd - x)|. The table is symmetric
    // (code c + 8 = -code c) and a negative code never strictly beats its positive twin, which comes
    // first: |fr(-kd - x)| = fr(kd + |x|) >= |fr(kd - |x|)| for x >= 0, and for x < 0 code 0 (error |x|)
    // beats every positive code. So: scan the 8 magnitudes on |x|, then code c + 8 when x < 0 and c > 0.
    V kd[8];
    for (int c = 0; c < 8; c++) kd[c] = fs(KV_MXFP4[c] * d);
    V l[8];
    for (int k = 0; k < 8; k++) {
      V ax = fabs4(a[k]);
      V best = is_(0);
      V bestErr = fabs4(fsub(kd[0], ax));
      for (int c = 1; c < 8; c++) {
        V err = fabs4(fsub(kd[c], ax));
        V m = wasm_f32x4_lt(err, bestErr);
        best = sel(is_(c), best, m);
        bestErr = sel(err, bestErr, m);
      }
      V neg = wasm_v128_and(wasm_f32x4_lt(a[k], fs(0)), wasm_i32x4_gt(best, is_(0)));
      l[k] = wasm_v128_or(best, wasm_v128_and(neg, is_(8)));
    }
    store_nibbles(o + 1, bytes16(l), bytes16(l + 4));
  }
}

// ---------------------------------------------------------------------------------------------
// IQ4_NL: four blocks per call, one per lane

static const float KV_IQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline V kv_iq4nl(V idx) {
  const V table = wasm_i8x16_make(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
  V b = wasm_i8x16_swizzle(table, wasm_v128_or(idx, is_((int)0x80808000)));
  return i2f(wasm_i32x4_shr(wasm_i32x4_shl(b, 24), 24));
}

/**
 * bestIndexInt8 on kvalues_iq4nl, lane-wise: the index (returned) and its value (*q). The reference's
 * binary search leaves ml = the number of k in 1..14 with !(x < val[k]) (NaN included, as there).
 */
static inline V best_index_iq4nl(V x, V *q) {
  V c = is_(14);
  for (int k = 1; k < 15; k++) c = wasm_i32x4_add(c, wasm_f32x4_lt(x, fs(KV_IQ4NL[k])));
  V c1 = wasm_i32x4_add(c, is_(1));
  V vml = kv_iq4nl(c), vmu = kv_iq4nl(c1);
  V lower = wasm_f32x4_lt(fsub(x, vml), fsub(vmu, x));
  V idx = sel(c, c1, lower);
  V qv = sel(vml, vmu, lower);
  V lo = wasm_f32x4_le(x, fs(-127.f));
  V hi = wasm_f32x4_ge(x, fs(113.f));
  idx = sel(is_(0), sel(is_(15), idx, hi), lo);
  *q = sel(fs(-127.f), sel(fs(113.f), qv, hi), lo);
  return idx;
}

/**
 * quantize_row_iq4_nl_impl for 4 blocks (lanes) x[..32) with optional importance weights qw; ntry -1
 * (ref) or 7 (quantize_iq4_nl). Levels to L (int32 lanes), scale returned, *ok = lanes with a scale.
 */
static V iq4nl_lanes(const V *x, const V *qw, int ntry, V *L, V *ok) {
  V w[32];
  V zero = fs(0);
  if (qw) {
    V s2 = zero;
    for (int j = 0; j < 32; j++) s2 = fadd(s2, fmul(x[j], x[j]));
    s2 = fmul(s2, fs(2.f / 32));
    for (int j = 0; j < 32; j++) w[j] = fmul(qw[j], fsqrt(fadd(s2, fmul(x[j], x[j]))));
  } else {
    for (int j = 0; j < 32; j++) w[j] = fmul(x[j], x[j]);
  }
  V max = max_by_magnitude4(x, 32);
  *ok = wasm_f32x4_ge(fabs4(max), fs(GROUP_MAX_EPS));
  V d = ntry > 0 ? fdiv(fneg(max), fs(-127.f)) : fdiv(max, fs(-127.f));
  V id = fdiv(fs(1), d);
  V sumqx = zero, sumq2 = zero;
  for (int j = 0; j < 32; j++) {
    V q;
    L[j] = best_index_iq4nl(fmul(id, x[j]), &q);
    V wq = fmul(w[j], q);
    sumqx = fadd(sumqx, fmul(wq, x[j]));
    sumq2 = fadd(sumq2, fmul(wq, q));
  }
  d = sel(fdiv(sumqx, sumq2), zero, wasm_f32x4_gt(sumq2, zero));
  V best = fmul(d, sumqx);
  for (int itry = -ntry; itry <= ntry; itry++) {
    id = fdiv(fs((float)(itry - 127)), max);
    sumqx = zero;
    sumq2 = zero;
    for (int j = 0; j < 32; j++) {
      V q;
      best_index_iq4nl(fmul(id, x[j]), &q);
      V wq = fmul(w[j], q);
      sumqx = fadd(sumqx, fmul(wq, x[j]));
      sumq2 = fadd(sumq2, fmul(wq, q));
    }
    V acc = wasm_v128_and(wasm_f32x4_gt(sumq2, zero), wasm_f32x4_gt(fmul(sumqx, sumqx), fmul(best, sumq2)));
    V nd = fdiv(sumqx, sumq2);
    d = sel(nd, d, acc);
    best = sel(fmul(nd, sumqx), best, acc);
  }
  V scale = sel(d, zero, *ok);
  if (ntry > 0) {
    id = sel(fdiv(fs(1), scale), zero, wasm_f32x4_ne(scale, zero));
    for (int j = 0; j < 32; j++) {
      V q;
      L[j] = best_index_iq4nl(fmul(id, x[j]), &q);
    }
  }
  return scale;
}

// The ref quantizer packs, for a block with max|x| < GROUP_MAX_EPS, the levels of the previous block of
// the same call (see iq4_nl.ts); they persist across the chunks of one call.
static u8 iq4nl_prev[32];

/** nb blocks of x (importance weights qw[32*i..] or none), ntry as iq4nl_lanes. */
static void iq4nl_blocks(const float *x, const float *qw, int nb, int ntry, u8 *out) {
  for (int g = 0; g < nb; g += 4) {
    int cnt = nb - g < 4 ? nb - g : 4;
    const float *xp[4], *qp[4];
    for (int k = 0; k < 4; k++) {
      int b = g + (k < cnt ? k : cnt - 1);
      xp[k] = x + 32 * b;
      qp[k] = qw ? qw + 32 * b : 0;
    }
    V xt[32], qt[32], L[32], ok;
    lanes_in(xp[0], xp[1], xp[2], xp[3], 32, xt);
    if (qw) lanes_in(qp[0], qp[1], qp[2], qp[3], 32, qt);
    V scale = iq4nl_lanes(xt, qw ? qt : 0, ntry, L, &ok);
    u8 lv[4][32];
    lanes_out_u8(L, 32, lv[0], lv[1], lv[2], lv[3]);
    for (int k = 0; k < cnt; k++) {
      u8 *o = out + 18 * (g + k);
      if (ntry < 0) {
        // the ref quirk: a block without a scale keeps the previous block's levels
        if ((wasm_i32x4_bitmask(ok) >> k) & 1) __builtin_memcpy(iq4nl_prev, lv[k], 32);
        else __builtin_memcpy(lv[k], iq4nl_prev, 32);
      }
      wr16(o, lane(scale, k));
      V lo = wasm_v128_load(lv[k]), hi = wasm_v128_load(lv[k] + 16);
      store_nibbles(o + 2, lo, hi);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// imatrix paths of the 32-weight types: four blocks of one row per call

/** quantize_row_q{4,5}_{0,1}_impl over one row of n values; type 2/6 symmetric (make_qx), 3/7 affine. */
static void legacy_imatrix_row(int type, const float *x, int n, const float *qw, u8 *out) {
  float sigma2 = sumsq(x, n) / (float)n;
  int nb = n / 32;
  int bpb = type == 2 ? 18 : type == 3 ? 20 : type == 6 ? 22 : 24;
  int nmax = type == 2 ? 8 : type == 3 ? 15 : type == 6 ? 16 : 31;
  for (int g = 0; g < nb; g += 4) {
    int cnt = nb - g < 4 ? nb - g : 4;
    const float *xp[4], *qp[4];
    for (int k = 0; k < 4; k++) {
      int b = g + (k < cnt ? k : cnt - 1);
      xp[k] = x + 32 * b;
      qp[k] = qw + 32 * b;
    }
    V xt[32], qt[32], wt[32], L[32];
    lanes_in(xp[0], xp[1], xp[2], xp[3], 32, xt);
    lanes_in(qp[0], qp[1], qp[2], qp[3], 32, qt);
    V vs = fs(sigma2);
    for (int j = 0; j < 32; j++) wt[j] = fmul(qt[j], fsqrt(fadd(vs, fmul(xt[j], xt[j]))));
    V d, m = fs(0);
    if (type == 2 || type == 6) {
      d = qx4(32, nmax, xt, wt, L);
    } else {
      V Lf[32], mo;
      d = qkx4(32, nmax, xt, wt, Lf, &mo, &QKX_IMATRIX);
      for (int j = 0; j < 32; j++) L[j] = wasm_i32x4_trunc_sat_f32x4(Lf[j]);
      m = fneg(mo);
    }
    u8 lv[4][32];
    lanes_out_u8(L, 32, lv[0], lv[1], lv[2], lv[3]);
    for (int k = 0; k < cnt; k++) {
      u8 *o = out + bpb * (g + k);
      wr16(o, lane(d, k));
      V lo = wasm_v128_load(lv[k]), hi = wasm_v128_load(lv[k] + 16);
      if (type == 2) store_nibbles(o + 2, lo, hi);
      else if (type == 6) pack_q5(o + 2, lo, hi);
      else {
        wr16(o + 2, lane(m, k));
        if (type == 3) store_nibbles(o + 4, lo, hi);
        else pack_q5(o + 4, lo, hi);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// K-quants (super-blocks of 256)

/** Affine requantization of n (16 or 32) values: clamp(nearest((x + dm) / d), 0, nmax) -> bytes. */
static void requant_affine(const float *x, int n, float d, float dm, int nmax, u8 *L) {
  V vd = fs(d), vdm = fs(dm);
  for (int i = 0; i < n; i += 16) {
    V l[4];
    for (int k = 0; k < 4; k++)
      l[k] = clampi(nearest4(fdiv(fadd(wasm_v128_load(x + i + 4 * k), vdm), vd)), 0, nmax);
    wasm_v128_store(L + i, bytes16(l));
  }
}

/** Symmetric requantization of 16 values: clamp(nearest(x / d), -bias, bias - 1) + bias -> bytes. */
static void requant_sym16(const float *x, float d, int bias, u8 *L) {
  V vd = fs(d);
  V l[4];
  for (int k = 0; k < 4; k++)
    l[k] = wasm_i32x4_add(clampi(nearest4(fdiv(wasm_v128_load(x + 4 * k), vd)), -bias, bias - 1), is_(bias));
  wasm_v128_store(L, bytes16(l));
}

/** kquant-common.ts pack2BitLevels: 256 levels (0..3) into 64 bytes. */
static void pack_2bit(const u8 *L, u8 *o) {
  for (int h = 0; h < 2; h++) {
    for (int l = 0; l < 32; l += 16) {
      const u8 *p = L + 128 * h + l;
      V v = wasm_v128_or(wasm_v128_or(wasm_v128_load(p), wasm_i8x16_shl(wasm_v128_load(p + 32), 2)),
                         wasm_v128_or(wasm_i8x16_shl(wasm_v128_load(p + 64), 4),
                                      wasm_i8x16_shl(wasm_v128_load(p + 96), 6)));
      wasm_v128_store(o + 32 * h + l, v);
    }
  }
}

/**
 * fitSubBlocksRef / fitSubBlocksImatrix: nsub sub-blocks of len values (nsub a multiple of 4), four
 * per lane group. With qw: weights qw*sqrt(sigma2 + x^2) (their sums to sw) and the imatrix grid; else
 * |x| (+ the sub-block rms when addRms) and `ref`. Scales, -mins and levels (bytes) out.
 */
static void fit_subblocks(const float *x, const float *qw, float sigma2, int nsub, int len, int nmax,
                          const Search *ref, int addRms, float *scales, float *mins, float *sw, u8 *L) {
  for (int g = 0; g < nsub; g += 4) {
    const float *p = x + len * g;
    V xt[32], wt[32], Lf[32], mo;
    lanes_in(p, p + len, p + 2 * len, p + 3 * len, len, xt);
    const Search *s = ref;
    if (!qw) {
      V av = fs(0);
      if (addRms) {
        V ss = fs(0);
        for (int i = 0; i < len; i++) ss = fadd(ss, fmul(xt[i], xt[i]));
        av = fsqrt(fdiv(ss, fs((float)len)));
        for (int i = 0; i < len; i++) wt[i] = fadd(av, fabs4(xt[i]));
      } else {
        for (int i = 0; i < len; i++) wt[i] = fabs4(xt[i]);
      }
    } else {
      const float *q = qw + len * g;
      V qt[32];
      lanes_in(q, q + len, q + 2 * len, q + 3 * len, len, qt);
      V vs = fs(sigma2), sum = fs(0);
      for (int i = 0; i < len; i++) {
        V w = fmul(qt[i], fsqrt(fadd(vs, fmul(xt[i], xt[i]))));
        wt[i] = w;
        sum = fadd(sum, w);
      }
      wasm_v128_store(sw + g, sum);
      s = &QKX_IMATRIX;
    }
    V sc = qkx4(len, nmax, xt, wt, Lf, &mo, s);
    wasm_v128_store(scales + g, sc);
    wasm_v128_store(mins + g, mo);
    V Li[32];
    for (int i = 0; i < len; i++) Li[i] = wasm_i32x4_trunc_sat_f32x4(Lf[i]);
    lanes_out_u8(Li, len, L + len * g, L + len * (g + 1), L + len * (g + 2), L + len * (g + 3));
  }
}

/** putScaleMinK4 / getScaleMinK4 (the 12 scale bytes at s). */
static void put_scale_min_k4(u8 *s, int j, int ls, int lm) {
  if (j < 4) {
    s[j] = (u8)ls;
    s[j + 4] = (u8)lm;
  } else {
    s[j + 4] = (u8)((ls & 0xf) | ((lm & 0xf) << 4));
    s[j - 4] |= (u8)((ls >> 4) << 6);
    s[j] |= (u8)((lm >> 4) << 6);
  }
}
static int get_scale_min_k4(const u8 *q, int j, int *m) {
  if (j < 4) {
    *m = q[j + 4] & 63;
    return q[j] & 63;
  }
  *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  return (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
}

/** make_qp_quants on two problems at once (lanes 0 and 1; 2 and 3 repeat them), shared weights. */
static void qp_pair(int n, int nmax, const float *a, const float *b, const float *w, u8 *La, u8 *Lb,
                    float *da, float *db) {
  V x[16], qw[16], L[16];
  for (int i = 0; i < n; i++) {
    x[i] = wasm_f32x4_make(a[i], b[i], a[i], b[i]);
    qw[i] = fs(w[i]);
  }
  V d = qp4(n, nmax, x, qw, L);
  for (int i = 0; i < n; i++) {
    La[i] = (u8)wasm_i32x4_extract_lane(L[i], 0);
    Lb[i] = (u8)wasm_i32x4_extract_lane(L[i], 1);
  }
  *da = wasm_f32x4_extract_lane(d, 0);
  *db = wasm_f32x4_extract_lane(d, 1);
}

/** Q4_K / Q5_K super-block at o (d, dmin, 12 scale bytes); final levels (0..nmax) to L[256]. */
static void kq45_superblock(const float *x, const float *qw, int nmax, const Search *ref, int clamp63, u8 *o,
                            u8 *L) {
  float scales[8], mins[8], sw[8];
  if (!qw) {
    fit_subblocks(x, 0, 0, 8, 32, nmax, ref, 1, scales, mins, sw, L);
    float maxScale = 0, maxMin = 0;
    for (int j = 0; j < 8; j++) {
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
    float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
    for (int j = 0; j < 8; j++) {
      int ls = nearest1(invScale * scales[j]) & 0xff;
      int lm = nearest1(invMin * mins[j]) & 0xff;
      put_scale_min_k4(o + 4, j, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    wr16(o, maxScale / 63.f);
    wr16(o + 2, maxMin / 63.f);
  } else {
    float sigma2 = (2 * sumsq(x, 256)) / 256.f;
    fit_subblocks(x, qw, sigma2, 8, 32, nmax, ref, 1, scales, mins, sw, L);
    u8 Ls[16], Lm[16];
    float dBlock, mBlock;
    qp_pair(8, 63, scales, mins, sw, Ls, Lm, &dBlock, &mBlock);
    for (int j = 0; j < 8; j++) {
      int ls = Ls[j], lm = Lm[j];
      if (clamp63) {
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
      }
      put_scale_min_k4(o + 4, j, ls, lm);
    }
    wr16(o, dBlock);
    wr16(o + 2, mBlock);
  }
  float dAll = rd16(o), mAll = rd16(o + 2);
  for (int j = 0; j < 8; j++) {
    int m;
    int sc = get_scale_min_k4(o + 4, j, &m);
    float d = dAll * (float)sc;
    if (d == 0) continue;
    float dm = mAll * (float)m;
    requant_affine(x + 32 * j, 32, d, dm, nmax, L + 32 * j);
  }
}

static const Search Q4_K_REF = {-1.f, 0.1f, 20, 0};
static const Search Q5_K_REF = {-0.5f, 0.1f, 15, 0};
static const Search Q2_K_REF = {-0.5f, 0.1f, 15, 1};

static void q4_k_rows(const float *x, const float *qw, int nb, u8 *out) {
  u8 L[256];
  for (int i = 0; i < nb; i++) {
    u8 *o = out + 144 * i;
    __builtin_memset(o, 0, 144);
    kq45_superblock(x + 256 * i, qw ? qw + 256 * i : 0, 15, &Q4_K_REF, 0, o, L);
    for (int c = 0; c < 4; c++) {
      for (int l = 0; l < 32; l += 16) {
        store_nibbles(o + 16 + 32 * c + l, wasm_v128_load(L + 64 * c + l), wasm_v128_load(L + 64 * c + 32 + l));
      }
    }
  }
}

static void q5_k_rows(const float *x, const float *qw, int nb, u8 *out) {
  u8 L[256];
  V f = wasm_i8x16_splat(15), m15 = wasm_i8x16_splat(0x0f);
  for (int i = 0; i < nb; i++) {
    u8 *o = out + 176 * i;
    __builtin_memset(o, 0, 176);
    kq45_superblock(x + 256 * i, qw ? qw + 256 * i : 0, 31, &Q5_K_REF, 1, o, L);
    for (int l = 0; l < 32; l += 16) {
      V qh = wasm_i8x16_splat(0);
      for (int c = 0; c < 4; c++) {
        V l1 = wasm_v128_load(L + 64 * c + l), l2 = wasm_v128_load(L + 64 * c + 32 + l);
        qh = wasm_v128_or(qh, wasm_v128_and(wasm_u8x16_gt(l1, f), wasm_i8x16_splat((char)(1 << (2 * c)))));
        qh = wasm_v128_or(qh, wasm_v128_and(wasm_u8x16_gt(l2, f), wasm_i8x16_splat((char)(2 << (2 * c)))));
        wasm_v128_store(o + 48 + 32 * c + l,
                        wasm_v128_or(wasm_v128_and(l1, m15), wasm_i8x16_shl(wasm_v128_and(l2, m15), 4)));
      }
      wasm_v128_store(o + 16 + l, qh);
    }
  }
}

static void q2_k_rows(const float *x, const float *qw, int nb, u8 *out) {
  u8 L[256];
  float scales[16], mins[16], sw[16];
  for (int i = 0; i < nb; i++) {
    const float *xb = x + 256 * i;
    u8 *o = out + 84 * i;
    __builtin_memset(o, 0, 84);
    if (!qw) {
      fit_subblocks(xb, 0, 0, 16, 16, 3, &Q2_K_REF, 0, scales, mins, sw, L);
      float maxScale = 0, maxMin = 0;
      for (int j = 0; j < 16; j++) {
        if (scales[j] > maxScale) maxScale = scales[j];
        if (mins[j] > maxMin) maxMin = mins[j];
      }
      if (maxScale > 0) {
        float iscale = 15.f / maxScale;
        for (int j = 0; j < 16; j++) o[j] = (u8)nearest1(iscale * scales[j]);
        wr16(o + 80, maxScale / 15.f);
      } else {
        wr16(o + 80, 0);
      }
      if (maxMin > 0) {
        float iscale = 15.f / maxMin;
        for (int j = 0; j < 16; j++) o[j] = (u8)(o[j] | (nearest1(iscale * mins[j]) << 4));
        wr16(o + 82, maxMin / 15.f);
      } else {
        wr16(o + 82, 0);
      }
    } else {
      float sigma2 = sumsq(xb, 256) / 256.f;
      fit_subblocks(xb, qw + 256 * i, sigma2, 16, 16, 3, &Q2_K_REF, 0, scales, mins, sw, L);
      u8 Ls[16], Lm[16];
      float dm, mm;
      qp_pair(16, 15, scales, mins, sw, Ls, Lm, &dm, &mm);
      wr16(o + 80, dm);
      wr16(o + 82, mm);
      for (int j = 0; j < 16; j++) o[j] = (u8)(Ls[j] | (Lm[j] << 4));
    }
    float dAll = rd16(o + 80), mAll = rd16(o + 82);
    for (int j = 0; j < 16; j++) {
      int sc = o[j];
      float d = dAll * (float)(sc & 0xf);
      if (d == 0) continue;
      float dm = mAll * (float)(sc >> 4);
      requant_affine(xb + 16 * j, 16, d, dm, 3, L + 16 * j);
    }
    pack_2bit(L, o + 16);
  }
}

/** Q3_K's 6-bit biased scale level of sub-block j into the 12 bytes at s (OR-ing into zeroed bytes). */
static void q3k_put_scale(u8 *s, int j, int l) {
  if (j < 8) s[j] = (u8)(l & 0xf);
  else s[j - 8] |= (u8)((l & 0xf) << 4);
  s[8 + (j % 4)] |= (u8)((l >> 4) << (2 * (j >> 2)));
}
static int q3k_get_scale(const u8 *s, int j) {
  int low = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
  return low | (((s[8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4);
}

/** Symmetric sub-block fits over 16 sub-blocks of 16 (Q3_K, Q6_K): q3 (make_q3_quants) or qx. */
static void fit_sym16(const float *x, const float *qw, float sigma2, int nmax, int useQ3, float *scales, float *sw,
                      u8 *L) {
  for (int g = 0; g < 16; g += 4) {
    const float *p = x + 16 * g;
    V xt[16], wt[16], Li[16];
    lanes_in(p, p + 16, p + 32, p + 48, 16, xt);
    V sc;
    if (useQ3) {
      sc = q3x4(16, nmax, xt, Li);
    } else if (qw && sw) {
      // Q3_K imatrix: qw*sqrt(sigma2 + x^2), summed into sw
      const float *q = qw + 16 * g;
      V qt[16];
      lanes_in(q, q + 16, q + 32, q + 48, 16, qt);
      V vs = fs(sigma2), sum = fs(0);
      for (int i = 0; i < 16; i++) {
        V w = fmul(qt[i], fsqrt(fadd(vs, fmul(xt[i], xt[i]))));
        wt[i] = w;
        sum = fadd(sum, w);
      }
      wasm_v128_store(sw + g, sum);
      sc = qx4(16, nmax, xt, wt, Li);
    } else if (qw) {
      // Q6_K imatrix: the raw importance weights
      const float *q = qw + 16 * g;
      lanes_in(q, q + 16, q + 32, q + 48, 16, wt);
      sc = qx4(16, nmax, xt, wt, Li);
    } else {
      sc = qx4(16, nmax, xt, 0, Li);
    }
    wasm_v128_store(scales + g, sc);
    lanes_out_u8(Li, 16, L + 16 * g, L + 16 * (g + 1), L + 16 * (g + 2), L + 16 * (g + 3));
  }
}

static void q3_k_rows(const float *x, const float *qw, int nb, u8 *out) {
  u8 L[256];
  float scales[16], sw[16];
  for (int i = 0; i < nb; i++) {
    const float *xb = x + 256 * i;
    u8 *o = out + 110 * i;
    __builtin_memset(o, 0, 110);
    if (!qw) {
      fit_sym16(xb, 0, 0, 4, 1, scales, 0, L);
      float maxScale = 0, amax = 0;
      for (int j = 0; j < 16; j++) {
        float s = __builtin_fabsf(scales[j]);
        if (s > amax) {
          amax = s;
          maxScale = scales[j];
        }
      }
      if (maxScale != 0) {
        float iscale = -32.f / maxScale;
        for (int j = 0; j < 16; j++) {
          int l8 = (signed char)nearest1(iscale * scales[j]);
          l8 = l8 < -32 ? -32 : l8 > 31 ? 31 : l8;
          q3k_put_scale(o + 96, j, l8 + 32);
        }
        wr16(o + 108, 1.f / iscale);
      } else {
        wr16(o + 108, 0);
      }
    } else {
      float sigma2 = (2 * sumsq(xb, 256)) / 256.f;
      fit_sym16(xb, qw + 256 * i, sigma2, 4, 0, scales, sw, L);
      V st[16], wt[16], Ls[16];
      for (int j = 0; j < 16; j++) {
        st[j] = fs(scales[j]);
        wt[j] = fs(sw[j]);
      }
      V d = qx4(16, 32, st, wt, Ls);
      for (int j = 0; j < 16; j++) q3k_put_scale(o + 96, j, wasm_i32x4_extract_lane(Ls[j], 0));
      wr16(o + 108, wasm_f32x4_extract_lane(d, 0));
    }
    float dAll = rd16(o + 108);
    for (int j = 0; j < 16; j++) {
      float d = dAll * (float)(q3k_get_scale(o + 96, j) - 32);
      if (d == 0) continue;
      requant_sym16(xb + 16 * j, d, 4, L + 16 * j);
    }
    // high bit of each level into hmask (element e: bit e/32 of byte e%32), then the low 2 bits
    V three = wasm_i8x16_splat(3), four = wasm_i8x16_splat(4);
    for (int l = 0; l < 32; l += 16) {
      V hm = wasm_i8x16_splat(0);
      for (int m = 0; m < 8; m++) {
        V v = wasm_v128_load(L + 32 * m + l);
        V hi = wasm_u8x16_gt(v, three);
        hm = wasm_v128_or(hm, wasm_v128_and(hi, wasm_i8x16_splat((char)(1 << m))));
        wasm_v128_store(L + 32 * m + l, wasm_i8x16_sub(v, wasm_v128_and(hi, four)));
      }
      wasm_v128_store(o + l, hm);
    }
    pack_2bit(L, o + 32);
  }
}

static void q6_k_rows(const float *x, const float *qw, int nb, u8 *out) {
  u8 L[256];
  float scales[16];
  for (int i = 0; i < nb; i++) {
    const float *xb = x + 256 * i;
    u8 *o = out + 210 * i;
    __builtin_memset(o, 0, 210);
    fit_sym16(xb, qw ? qw + 256 * i : 0, 0, 32, 0, scales, 0, L);
    float maxScale = 0, maxAbs = 0;
    for (int ib = 0; ib < 16; ib++) {
      float a = __builtin_fabsf(scales[ib]);
      if (a > maxAbs) {
        maxAbs = a;
        maxScale = scales[ib];
      }
    }
    if (maxAbs < GROUP_MAX_EPS) continue; // an all-zero block
    float iscale = -128.f / maxScale;
    wr16(o + 208, 1.f / iscale);
    for (int ib = 0; ib < 16; ib++) {
      int l = nearest1(iscale * scales[ib]);
      o[192 + ib] = (u8)(l < 127 ? l : 127);
    }
    float dAll = rd16(o + 208);
    for (int j = 0; j < 16; j++) {
      float d = dAll * (float)(signed char)o[192 + j];
      if (d == 0) continue;
      requant_sym16(xb + 16 * j, d, 32, L + 16 * j);
    }
    V m15 = wasm_i8x16_splat(0x0f);
    for (int h = 0; h < 2; h++) {
      const u8 *Lh = L + 128 * h;
      u8 *ql = o + 64 * h, *qh = o + 128 + 32 * h;
      for (int l = 0; l < 32; l += 16) {
        V q1 = wasm_v128_load(Lh + l), q2 = wasm_v128_load(Lh + l + 32);
        V q3 = wasm_v128_load(Lh + l + 64), q4 = wasm_v128_load(Lh + l + 96);
        wasm_v128_store(ql + l, wasm_v128_or(wasm_v128_and(q1, m15), wasm_i8x16_shl(wasm_v128_and(q3, m15), 4)));
        wasm_v128_store(ql + l + 32,
                        wasm_v128_or(wasm_v128_and(q2, m15), wasm_i8x16_shl(wasm_v128_and(q4, m15), 4)));
        V hb = wasm_v128_or(wasm_v128_or(wasm_u8x16_shr(q1, 4), wasm_i8x16_shl(wasm_u8x16_shr(q2, 4), 2)),
                            wasm_v128_or(wasm_i8x16_shl(wasm_u8x16_shr(q3, 4), 4),
                                         wasm_i8x16_shl(wasm_u8x16_shr(q4, 4), 6)));
        wasm_v128_store(qh + l, hb);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// entry points

enum { Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14,
       IQ4_NL = 20, MXFP4 = 39 };

/**
 * Encodes nrow rows of n_per_row values at x into out. mode 0: quantize_row_<t>_ref (rows ignored);
 * mode 1: quantize_<t> without imatrix; mode 2: quantize_<t> with the importance weights qw
 * (n_per_row of them). `first` = 1 on the first chunk of a call (IQ4_NL's ref carries state).
 * Returns 0, or -1 for an unknown type.
 */
int ggml_quantize(int type, int mode, const float *x, int nrow, int n_per_row, const float *qw, u8 *out,
                  int first) {
  int n = nrow * n_per_row;
  if (first) __builtin_memset(iq4nl_prev, 0, 32);
  if (mode != 2) qw = 0;
  if (type == IQ4_NL) {
    if (!qw) {
      iq4nl_blocks(x, 0, n / 32, mode == 0 ? -1 : 7, out);
    } else {
      for (int r = 0; r < nrow; r++)
        iq4nl_blocks(x + (long)r * n_per_row, qw, n_per_row / 32, 7, out + (long)r * (n_per_row / 32) * 18);
    }
    return 0;
  }
  if (!qw || type == Q8_0 || type == MXFP4) {
    switch (type) {
    case Q4_0: q4_0_ref(x, n / 32, out); return 0;
    case Q4_1: q4_1_ref(x, n / 32, out); return 0;
    case Q5_0: q5_0_ref(x, n / 32, out); return 0;
    case Q5_1: q5_1_ref(x, n / 32, out); return 0;
    case Q8_0: q8_0_ref(x, n / 32, out); return 0;
    case MXFP4: mxfp4_ref(x, n / 32, out); return 0;
    case Q2_K: q2_k_rows(x, 0, n / 256, out); return 0;
    case Q3_K: q3_k_rows(x, 0, n / 256, out); return 0;
    case Q4_K: q4_k_rows(x, 0, n / 256, out); return 0;
    case Q5_K: q5_k_rows(x, 0, n / 256, out); return 0;
    case Q6_K: q6_k_rows(x, 0, n / 256, out); return 0;
    }
    return -1;
  }
  for (int r = 0; r < nrow; r++) {
    const float *xr = x + (long)r * n_per_row;
    switch (type) {
    case Q4_0: legacy_imatrix_row(type, xr, n_per_row, qw, out + (long)r * (n_per_row / 32) * 18); break;
    case Q4_1: legacy_imatrix_row(type, xr, n_per_row, qw, out + (long)r * (n_per_row / 32) * 20); break;
    case Q5_0: legacy_imatrix_row(type, xr, n_per_row, qw, out + (long)r * (n_per_row / 32) * 22); break;
    case Q5_1: legacy_imatrix_row(type, xr, n_per_row, qw, out + (long)r * (n_per_row / 32) * 24); break;
    case Q2_K: q2_k_rows(xr, qw, n_per_row / 256, out + (long)r * (n_per_row / 256) * 84); break;
    case Q3_K: q3_k_rows(xr, qw, n_per_row / 256, out + (long)r * (n_per_row / 256) * 110); break;
    case Q4_K: q4_k_rows(xr, qw, n_per_row / 256, out + (long)r * (n_per_row / 256) * 144); break;
    case Q5_K: q5_k_rows(xr, qw, n_per_row / 256, out + (long)r * (n_per_row / 256) * 176); break;
    case Q6_K: q6_k_rows(xr, qw, n_per_row / 256, out + (long)r * (n_per_row / 256) * 210); break;
    default: return -1;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// decoders (dequantize_row_<t>), vectorised within a block; products as the reference's float stores

/** 16 bytes -> 4 vectors of int32 (unsigned). */
static inline void widen_u8(V b, V *o) {
  V lo = wasm_u16x8_extend_low_u8x16(b), hi = wasm_u16x8_extend_high_u8x16(b);
  o[0] = wasm_u32x4_extend_low_u16x8(lo);
  o[1] = wasm_u32x4_extend_high_u16x8(lo);
  o[2] = wasm_u32x4_extend_low_u16x8(hi);
  o[3] = wasm_u32x4_extend_high_u16x8(hi);
}
/** 16 bytes -> 4 vectors of int32 (signed). */
static inline void widen_i8(V b, V *o) {
  V lo = wasm_i16x8_extend_low_i8x16(b), hi = wasm_i16x8_extend_high_i8x16(b);
  o[0] = wasm_i32x4_extend_low_i16x8(lo);
  o[1] = wasm_i32x4_extend_high_i16x8(lo);
  o[2] = wasm_i32x4_extend_low_i16x8(hi);
  o[3] = wasm_i32x4_extend_high_i16x8(hi);
}
/** y[0..16) = (q - bias) * d for 16 byte levels. */
static inline void put16_sym(float *y, V b, int bias, V d) {
  V q[4];
  widen_u8(b, q);
  for (int k = 0; k < 4; k++) wasm_v128_store(y + 4 * k, fmul(i2f(wasm_i32x4_sub(q[k], is_(bias))), d));
}
/** y[0..16) = fr(q * d) + m, or (sub) fr(q * d) - m, for 16 byte levels. */
static inline void put16_affine(float *y, V b, V d, V m, int sub) {
  V q[4];
  widen_u8(b, q);
  for (int k = 0; k < 4; k++) {
    V p = fmul(i2f(q[k]), d);
    wasm_v128_store(y + 4 * k, sub ? fsub(p, m) : fadd(p, m));
  }
}
/** The 5th bits of 16 levels from 16 consecutive bits of qh (bit j -> byte j), as 0 or 0x10. */
static inline V q5_high(u32 bits16) {
  V v = wasm_i32x4_splat((int)bits16);
  V bytes = wasm_i8x16_swizzle(v, wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  V sel8 = wasm_i8x16_make(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return wasm_v128_and(wasm_i8x16_eq(wasm_v128_and(bytes, sel8), sel8), wasm_i8x16_splat(0x10));
}

static void dq_legacy(int type, const u8 *q, float *y, int nb) {
  V m15 = wasm_i8x16_splat(0x0f);
  for (int i = 0; i < nb; i++, y += 32) {
    if (type == Q4_0) {
      const u8 *b = q + 18 * i;
      V d = fs(rd16(b)), v = wasm_v128_load(b + 2);
      put16_sym(y, wasm_v128_and(v, m15), 8, d);
      put16_sym(y + 16, wasm_u8x16_shr(v, 4), 8, d);
    } else if (type == Q4_1) {
      const u8 *b = q + 20 * i;
      V d = fs(rd16(b)), m = fs(rd16(b + 2)), v = wasm_v128_load(b + 4);
      put16_affine(y, wasm_v128_and(v, m15), d, m, 0);
      put16_affine(y + 16, wasm_u8x16_shr(v, 4), d, m, 0);
    } else if (type == Q5_0 || type == Q5_1) {
      const u8 *b = q + (type == Q5_0 ? 22 : 24) * i;
      V d = fs(rd16(b));
      const u8 *h = b + (type == Q5_0 ? 2 : 4);
      u32 qh;
      __builtin_memcpy(&qh, h, 4);
      V v = wasm_v128_load(h + 4);
      V lo = wasm_v128_or(wasm_v128_and(v, m15), q5_high(qh & 0xffff));
      V hi = wasm_v128_or(wasm_u8x16_shr(v, 4), q5_high(qh >> 16));
      if (type == Q5_0) {
        put16_sym(y, lo, 16, d);
        put16_sym(y + 16, hi, 16, d);
      } else {
        V m = fs(rd16(b + 2));
        put16_affine(y, lo, d, m, 0);
        put16_affine(y + 16, hi, d, m, 0);
      }
    } else if (type == Q8_0) {
      const u8 *b = q + 34 * i;
      V d = fs(rd16(b));
      for (int h = 0; h < 2; h++) {
        V w[4];
        widen_i8(wasm_v128_load(b + 2 + 16 * h), w);
        for (int k = 0; k < 4; k++) wasm_v128_store(y + 16 * h + 4 * k, fmul(i2f(w[k]), d));
      }
    } else {
      // IQ4_NL (d fp16) and MXFP4 (d = 2^(e-128)): a 16-entry int8 table indexed by nibbles
      int iq = type == IQ4_NL;
      const u8 *b = q + (iq ? 18 : 17) * i;
      float df;
      if (iq) {
        df = rd16(b);
      } else {
        u32 e = b[0];
        df = e >= 2 ? bitsf((e - 1) << 23) : bitsf(0x200000u << e);
      }
      V table = iq ? wasm_i8x16_make(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)
                   : wasm_i8x16_make(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
      V d = fs(df), v = wasm_v128_load(b + (iq ? 2 : 1));
      V parts[2] = {wasm_v128_and(v, m15), wasm_u8x16_shr(v, 4)};
      for (int h = 0; h < 2; h++) {
        V w[4];
        widen_i8(wasm_i8x16_swizzle(table, parts[h]), w);
        for (int k = 0; k < 4; k++) wasm_v128_store(y + 16 * h + 4 * k, fmul(i2f(w[k]), d));
      }
    }
  }
}

static void dq_q2_k(const u8 *q, float *y, int nb) {
  V three = wasm_i8x16_splat(3);
  for (int i = 0; i < nb; i++) {
    const u8 *b = q + 84 * i;
    float d = rd16(b + 80), min = rd16(b + 82);
    int is = 0;
    for (int h = 0; h < 2; h++) {
      const u8 *qs = b + 16 + 32 * h;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 32; half += 16, y += 16) {
          int sc = b[is++];
          V dl = fs(d * (float)(sc & 0xf)), ml = fs(min * (float)(sc >> 4));
          V lv = wasm_v128_and(wasm_u8x16_shr(wasm_v128_load(qs + half), shift), three);
          put16_affine(y, lv, dl, ml, 1);
        }
      }
    }
  }
}

static void dq_q3_k(const u8 *q, float *y, int nb) {
  V three = wasm_i8x16_splat(3), one = wasm_i8x16_splat(1), four = wasm_i8x16_splat(4);
  for (int i = 0; i < nb; i++) {
    const u8 *b = q + 110 * i;
    float dAll = rd16(b + 108);
    for (int e = 0; e < 256; e += 16, y += 16) {
      V dl = fs(dAll * (float)(q3k_get_scale(b + 96, e >> 4) - 32));
      int h = e >> 7, r = e & 127;
      V low = wasm_v128_and(wasm_u8x16_shr(wasm_v128_load(b + 32 + 32 * h + (r & 31)), 2 * (r >> 5)), three);
      V high = wasm_v128_and(wasm_u8x16_shr(wasm_v128_load(b + (e & 31)), e >> 5), one);
      // low - (high ? 0 : 4), as signed bytes
      V lv = wasm_i8x16_sub(low, wasm_v128_andnot(four, wasm_i8x16_eq(high, one)));
      V w[4];
      widen_i8(lv, w);
      for (int k = 0; k < 4; k++) wasm_v128_store(y + 4 * k, fmul(dl, i2f(w[k])));
    }
  }
}

static void dq_q45_k(int type, const u8 *q, float *y, int nb) {
  V m15 = wasm_i8x16_splat(0x0f), zero = wasm_i8x16_splat(0), sixteen = wasm_i8x16_splat(16);
  int bpb = type == Q4_K ? 144 : 176;
  for (int i = 0; i < nb; i++) {
    const u8 *b = q + bpb * i;
    float d = rd16(b), min = rd16(b + 2);
    const u8 *qs = b + (type == Q4_K ? 16 : 48);
    for (int c = 0; c < 4; c++) {
      for (int part = 0; part < 2; part++, y += 32) {
        int m;
        int sc = get_scale_min_k4(b + 4, 2 * c + part, &m);
        V dl = fs(d * (float)sc), ml = fs(min * (float)m);
        for (int l = 0; l < 32; l += 16) {
          V v = wasm_v128_load(qs + 32 * c + l);
          V lv = part ? wasm_u8x16_shr(v, 4) : wasm_v128_and(v, m15);
          if (type == Q5_K) {
            V hb = wasm_v128_and(wasm_v128_load(b + 16 + l), wasm_i8x16_splat((char)(1 << (2 * c + part))));
            lv = wasm_i8x16_add(lv, wasm_v128_andnot(sixteen, wasm_i8x16_eq(hb, zero)));
          }
          put16_affine(y + l, lv, dl, ml, 1);
        }
      }
    }
  }
}

static void dq_q6_k(const u8 *q, float *y, int nb) {
  V m15 = wasm_i8x16_splat(0x0f), three = wasm_i8x16_splat(3);
  for (int i = 0; i < nb; i++, y += 256) {
    const u8 *b = q + 210 * i;
    float d = rd16(b + 208);
    for (int h = 0; h < 2; h++) {
      const u8 *ql = b + 64 * h, *qh = b + 128 + 32 * h;
      const signed char *sc = (const signed char *)(b + 192 + 8 * h);
      float *yh = y + 128 * h;
      for (int l = 0; l < 32; l += 16) {
        int is = l >> 4;
        V a = wasm_v128_load(ql + l), a2 = wasm_v128_load(ql + l + 32), hb = wasm_v128_load(qh + l);
        V lv[4] = {
            wasm_v128_or(wasm_v128_and(a, m15), wasm_i8x16_shl(wasm_v128_and(hb, three), 4)),
            wasm_v128_or(wasm_v128_and(a2, m15), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 2), three), 4)),
            wasm_v128_or(wasm_u8x16_shr(a, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 4), three), 4)),
            wasm_v128_or(wasm_u8x16_shr(a2, 4), wasm_i8x16_shl(wasm_u8x16_shr(hb, 6), 4)),
        };
        for (int s = 0; s < 4; s++) {
          V dl = fs(d * (float)sc[is + 2 * s]);
          V w[4];
          widen_u8(lv[s], w);
          for (int k = 0; k < 4; k++)
            wasm_v128_store(yh + 32 * s + l + 4 * k, fmul(dl, i2f(wasm_i32x4_sub(w[k], is_(32)))));
        }
      }
    }
  }
}

/** Decodes n values (n / blockSize whole blocks) of the given type from q into y; -1 for an unknown type. */
int ggml_dequantize(int type, const u8 *q, float *y, int n) {
  switch (type) {
  case Q4_0:
  case Q4_1:
  case Q5_0:
  case Q5_1:
  case Q8_0:
  case IQ4_NL:
  case MXFP4: dq_legacy(type, q, y, n / 32); return 0;
  case Q2_K: dq_q2_k(q, y, n / 256); return 0;
  case Q3_K: dq_q3_k(q, y, n / 256); return 0;
  case Q4_K:
  case Q5_K: dq_q45_k(type, q, y, n / 256); return 0;
  case Q6_K: dq_q6_k(q, y, n / 256); return 0;
  }
  return -1;
}

// Four-lane float32 helpers for the ggml block encoders (native/blocks/ggml.c).
//
// Bit-exactness rule: every lane runs exactly the float32 operation sequence of the scalar reference
// (src/blocks/ggml/*.ts, itself ggml-quants.c operation for operation): lanes hold 4 INDEPENDENT problems
// (4 sub-blocks, or 4 blocks), never 4 terms of one sum, so no reduction order changes. Branches of the
// reference become lane masks; a lane that would skip work computes it anyway and discards it.
#ifndef MIXQ_GGML_LANES_H
#define MIXQ_GGML_LANES_H

#include <wasm_simd128.h>

typedef v128_t V;
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

#define GROUP_MAX_EPS 1e-15f

static inline V fs(float a) { return wasm_f32x4_splat(a); }
static inline V is_(int a) { return wasm_i32x4_splat(a); }
static inline V fadd(V a, V b) { return wasm_f32x4_add(a, b); }
static inline V fsub(V a, V b) { return wasm_f32x4_sub(a, b); }
static inline V fmul(V a, V b) { return wasm_f32x4_mul(a, b); }
static inline V fdiv(V a, V b) { return wasm_f32x4_div(a, b); }
static inline V fabs4(V a) { return wasm_f32x4_abs(a); }
static inline V fneg(V a) { return wasm_f32x4_neg(a); }
static inline V fsqrt(V a) { return wasm_f32x4_sqrt(a); }
static inline V i2f(V a) { return wasm_f32x4_convert_i32x4(a); }
/** m ? a : b, lane by lane (m all-ones or all-zeros per lane). */
static inline V sel(V a, V b, V m) { return wasm_v128_bitselect(a, b, m); }
static inline int any(V m) { return wasm_v128_any_true(m); }
static inline V clampi(V l, int lo, int hi) {
  return wasm_i32x4_min(wasm_i32x4_max(l, is_(lo)), is_(hi));
}

/** ggml's nearest_int: add 1.5*2^23 in float32, read the integer out of the mantissa. */
static inline V nearest4(V v) {
  V t = wasm_f32x4_add(v, fs(12582912.f));
  return wasm_i32x4_sub(wasm_v128_and(t, is_(0x007fffff)), is_(0x00400000));
}
static inline int nearest1(float v) {
  union {
    float f;
    int i;
  } u = {v + 12582912.f};
  return (u.i & 0x007fffff) - 0x00400000;
}

/** 4x4 transpose: t[i] lane k = row k element i. */
static inline void tr4(V a, V b, V c, V d, V *t) {
  V ab0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5);
  V ab1 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
  V cd0 = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5);
  V cd1 = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
  t[0] = wasm_i32x4_shuffle(ab0, cd0, 0, 1, 4, 5);
  t[1] = wasm_i32x4_shuffle(ab0, cd0, 2, 3, 6, 7);
  t[2] = wasm_i32x4_shuffle(ab1, cd1, 0, 1, 4, 5);
  t[3] = wasm_i32x4_shuffle(ab1, cd1, 2, 3, 6, 7);
}

/** Gathers n values (n % 4 == 0) of four groups into lanes: t[i] = (p0[i], p1[i], p2[i], p3[i]). */
static inline void lanes_in(const float *p0, const float *p1, const float *p2, const float *p3, int n, V *t) {
  for (int i = 0; i < n; i += 4) {
    tr4(wasm_v128_load(p0 + i), wasm_v128_load(p1 + i), wasm_v128_load(p2 + i), wasm_v128_load(p3 + i),
        t + i);
  }
}

/** The inverse for int32 levels: lane k of t[i] -> q_k[i] as a byte (low 8 bits, as a Uint8Array store). */
static inline void lanes_out_u8(const V *t, int n, u8 *q0, u8 *q1, u8 *q2, u8 *q3) {
  for (int i = 0; i < n; i += 4) {
    V r[4];
    tr4(t[i], t[i + 1], t[i + 2], t[i + 3], r);
    // keep the low byte of each int32 (wrapping, as the reference's byte stores)
    for (int k = 0; k < 4; k++) r[k] = wasm_v128_and(r[k], is_(0xff));
    V b01 = wasm_u16x8_narrow_i32x4(r[0], r[1]);
    V b23 = wasm_u16x8_narrow_i32x4(r[2], r[3]);
    V b = wasm_u8x16_narrow_i16x8(b01, b23);
    u8 tmp[16];
    wasm_v128_store(tmp, b);
    __builtin_memcpy(q0 + i, tmp, 4);
    __builtin_memcpy(q1 + i, tmp + 4, 4);
    __builtin_memcpy(q2 + i, tmp + 8, 4);
    __builtin_memcpy(q3 + i, tmp + 12, 4);
  }
}

static inline float lane(V v, int k) {
  switch (k) {
  case 0: return wasm_f32x4_extract_lane(v, 0);
  case 1: return wasm_f32x4_extract_lane(v, 1);
  case 2: return wasm_f32x4_extract_lane(v, 2);
  default: return wasm_f32x4_extract_lane(v, 3);
  }
}

/** Lane-wise "max by magnitude" (first on ties, NaN never wins) over x[0..n): the signed value. */
static inline V max_by_magnitude4(const V *x, int n) {
  V amax = fs(0), max = fs(0);
  for (int i = 0; i < n; i++) {
    V ax = fabs4(x[i]);
    V m = wasm_f32x4_gt(ax, amax);
    amax = sel(ax, amax, m);
    max = sel(x[i], max, m);
  }
  return max;
}

#endif

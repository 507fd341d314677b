// ggml's K-quants (Q2_K .. Q6_K) against Q8_K activations, as llama.cpp runs them: activations quantized
// in blocks of 256 with one float32 scale (ggml's quantize_row_q8_K_ref), so a whole super-block of 256
// weights is one exact integer sum per row and takes ONE float32 scaling:
//
//   row term of super-block b = dx_b * ( d * S  +  (-dmin) * M )
//   S = sum_j sc_j * (sum_{k in j} c_k q_k  -  z * bsum_j)       (integer, sub-blocks j of 16 or 32)
//   M = sum_j m_j * bsum_j                                       (integer; types with minima)
//
// The sub-scales multiply 16-bit partial sums inside the vector (i32x4.dot_i16x8_s with the scale splat),
// the zero points and minima are one dot of the sub-scales with the activation's block sums per
// super-block: no per-chunk float work and no per-chunk horizontal sums. Full 4-row tiles are interleaved
// at load (ggml.h; the il_*_isum kernels below end a super-block as one i32x4 of four rows); a last tile of
// < 4 rows runs its stored rows one after the other (decoding four stored rows at once in lanes spilled
// V8's 16 vector registers: Q3_K / Q6_K ran 2-3x slower that way). Matrix x matrix (prefill) decodes each
// super-block of a tile once for the whole batch (kmm_tile, below). The decoding of each type's bits is the
// same as ggml.h's (src/blocks/ggml has each layout and is the reference).
//
// Activation buffer ('q8k', src/kernels/activations.ts q8kBytes): the 'q8' buffer of common.h (`actq`,
// with each 256-block's scale repeated in its eight 32-slots) followed by bs16 int16[kp/16] (sum of each 16
// codes) and bs32 int16[kp/32] (sum of each 32).
#ifndef MIXQ_KERNELS_GGML_K_H
#define MIXQ_KERNELS_GGML_K_H
#include "ggml.h"

typedef struct {
  const int8_t* qs;
  const int16_t* qs16;
  const float* d;
  const int16_t* bs16;
  const int16_t* bs32;
} actk;

INLINE actk actk_view(uint32_t base, int kp) {
  const uint8_t* p = (const uint8_t*)(uintptr_t)base;
  const size_t t = act_bytes(kp);
  actk a = {(const int8_t*)p, (const int16_t*)(p + kp), (const float*)(p + 3 * (size_t)kp),
            (const int16_t*)(p + t), (const int16_t*)(p + t + (size_t)kp / 8)};
  return a;
}
/** Bytes of a 'q8k' activation buffer of kp values. */
INLINE size_t actk_bytes(int kp) { return act_bytes(kp) + (size_t)kp / 8 + (size_t)kp / 16; }
EXPORT int32_t q8k_act_bytes(int32_t kp) { return (int32_t)actk_bytes(kp); }

// ---------------------------------------------------------------------------------------------------
// Q8_K activations (reference: activations.ts quantizeQ8KReference, ggml's quantize_row_q8_K_ref):
//   per block of 256: amax = max |x| (NaN propagates), max = the first x with |x| = amax,
//   iscale = -127 / max, q = clamp(roundTiesToEven(iscale * x), -127, 127) (NaN -> 0), d = 1 / iscale;
//   amax = 0: d = 0, q = 0.                                    every step float32
EXPORT void act_q8k(int32_t x_, int32_t kp, int32_t out_) {
  const float* x = (const float*)(uintptr_t)x_;
  const actw o = act_out((uint32_t)out_, kp);
  int16_t* bs16 = (int16_t*)((uint8_t*)o.qs + act_bytes(kp));
  int16_t* bs32 = bs16 + kp / 16;
  const v128_t lim = wasm_i32x4_splat(127), nlim = wasm_i32x4_splat(-127);
  for (int b = 0; b < kp / 256; b++) {
    const float* xb = x + 256 * b;
    v128_t m = wasm_f32x4_splat(0);
    for (int j = 0; j < 64; j++) m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(xb + 4 * j)));
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
    const float amax = wasm_f32x4_extract_lane(m, 0);
    float iscale = 0.0f, db = 0.0f;
    if (amax != amax) iscale = db = amax;  // NaN
    else if (amax != 0.0f) {
      float mx = amax;
      for (int j = 0; j < 256; j++)
        if (__builtin_fabsf(xb[j]) == amax) {
          mx = xb[j];
          break;
        }
      iscale = -127.0f / mx;
      db = 1.0f / iscale;
    }
    for (int j = 0; j < 8; j++) o.d[8 * b + j] = db;
    const v128_t vis = wasm_f32x4_splat(iscale);
    for (int c = 0; c < 16; c++) {  // 16 values at a time
      const int k = 256 * b + 16 * c;
      v128_t q32[4];
      for (int t = 0; t < 4; t++) {
        v128_t q = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + k + 4 * t), vis)));
        q32[t] = wasm_i32x4_max(wasm_i32x4_min(q, lim), nlim);
      }
      const int32_t sum = act_store16(q32, &o, k);
      o.s[k >> 4] = sum;
      bs16[k >> 4] = (int16_t)sum;
      if (c & 1) bs32[k >> 5] = (int16_t)(bs16[(k >> 4) - 1] + sum);
    }
  }
}

// ---- integer dots of codes (u8 lanes, < 2^7) with Q8_K activations, times an i16 sub-scale splat ----
// Relaxed: i16x8.relaxed_dot_i8x16_i7x16_s (pairs of products, exact: |c q| sums stay below 2^15), then
// i32x4.dot_i16x8_s with the scale: the scale multiplication and the widening are one instruction.
// SIMD128: codes widened to i16 and multiplied by the scale (|c sc| < 2^13), then dot with qs16.

/** acc + sc * sum_{t<16} c[t] q[k+t]. */
INLINE v128_t kdot16(v128_t c, const actk* A, int k, v128_t sc16, v128_t acc) {
#if MIXQ_RELAXED
  return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(rdot16(c, wasm_v128_load(A->qs + k)), sc16));
#else
  v128_t lo = wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(c), sc16);
  v128_t hi = wasm_i16x8_mul(wasm_u16x8_extend_high_u8x16(c), sc16);
  acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(lo, wasm_v128_load(A->qs16 + k)));
  return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(hi, wasm_v128_load(A->qs16 + k + 8)));
#endif
}
/** acc + sc * sum_{t<32} c[t] q[k+t], codes < 2^6 (c0: t < 16, c1: t >= 16). */
INLINE v128_t kdot32(v128_t c0, v128_t c1, const actk* A, int k, v128_t sc16, v128_t acc) {
#if MIXQ_RELAXED
  v128_t p = wasm_i16x8_add(rdot16(c0, wasm_v128_load(A->qs + k)), rdot16(c1, wasm_v128_load(A->qs + k + 16)));
  return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(p, sc16));
#else
  return kdot16(c1, A, k + 16, sc16, kdot16(c0, A, k, sc16, acc));
#endif
}

#define SPLAT16(v, j) wasm_i16x8_shuffle(v, v, j, j, j, j, j, j, j, j)
/**
 * A scheduling fence (no instruction) that makes v computed before it: LLVM otherwise hoists every load of
 * an unrolled super-block to its top and sinks the arithmetic below them, and V8 (16 vector registers on
 * x64) spills the ~30 loaded vectors to the stack. Loads stay after the fence.
 */
#define KFENCE(v) __asm__ volatile("" : "+r"(v)::"memory")
/**
 * KFENCE for V8 too: v stored to a volatile stack slot (one store), which V8 keeps in order with the loads
 * around it, so the arithmetic that makes v runs before the loads after it. KFENCE alone leaves no
 * instruction in the module, and V8 (which schedules pure arithmetic late, next to its use) moved all ~26
 * loads of a Q5_K sub-block above the arithmetic again and spilled.
 */
#define VFENCE(slot, v)    \
  {                        \
    KFENCE(v);             \
    *(slot) = (v);         \
  }

/** Bit j of each byte of v moved to bit `to` (other bits 0). */
INLINE v128_t bit_to(v128_t v, int j, int to) {
  v128_t t = wasm_v128_and(v, wasm_i8x16_splat((int8_t)(1 << j)));
  return j < to ? wasm_i16x8_shl(t, to - j) : j > to ? wasm_u16x8_shr(t, j - to) : t;
}

/** Result of one row and one super-block: S and M of the header (i32x4 lanes to be summed). */
typedef struct {
  v128_t s, m;
} ksum;

/** Q4_K / Q5_K: 8 6-bit scales and mins (get_scale_min_k4) as [sc0..sc7 | m0..m7] u8 lanes. */
INLINE v128_t k4_scales(const uint8_t* q) {
  uint32_t u0, u1, u2;
  __builtin_memcpy(&u0, q, 4);
  __builtin_memcpy(&u1, q + 4, 4);
  __builtin_memcpy(&u2, q + 8, 4);
  const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
  const uint32_t sc_lo = u0 & m6, sc_hi = (u2 & m4) | (((u0 >> 6) & m2) << 4);
  const uint32_t mn_lo = u1 & m6, mn_hi = ((u2 >> 4) & m4) | (((u1 >> 6) & m2) << 4);
  return wasm_i32x4_make((int32_t)sc_lo, (int32_t)sc_hi, (int32_t)mn_lo, (int32_t)mn_hi);
}
/** Q3_K: 16 6-bit scales minus 32 as int8 lanes. */
INLINE v128_t k3_scales(const uint8_t* q) {
  uint32_t a0, a1, t;
  __builtin_memcpy(&a0, q, 4);
  __builtin_memcpy(&a1, q + 4, 4);
  __builtin_memcpy(&t, q + 8, 4);
  const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
  const uint32_t s0 = (a0 & m4) | (((t >> 0) & m2) << 4), s1 = (a1 & m4) | (((t >> 2) & m2) << 4);
  const uint32_t s2 = ((a0 >> 4) & m4) | (((t >> 4) & m2) << 4), s3 = ((a1 >> 4) & m4) | (((t >> 6) & m2) << 4);
  return wasm_i8x16_sub(wasm_i32x4_make((int32_t)s0, (int32_t)s1, (int32_t)s2, (int32_t)s3), wasm_i8x16_splat(32));
}

/** Super-block b of one row (block at p) against activations from k0 = 256 b. */
INLINE ksum ksb_q4k(const uint8_t* p, const actk* A, int k0, int b, const int T) {
  const v128_t m4 = wasm_i8x16_splat(15);
  const v128_t sm = k4_scales(p + 4);
  const v128_t sc16 = wasm_u16x8_extend_low_u8x16(sm), mn16 = wasm_u16x8_extend_high_u8x16(sm);
  const uint8_t* qs = p + (T == GT_Q4_K ? 16 : 48);
  v128_t h0 = wasm_i32x4_splat(0), h1 = h0;
  if (T == GT_Q5_K) {
    h0 = wasm_v128_load(p + 16);
    h1 = wasm_v128_load(p + 32);
  }
  v128_t s = wasm_i32x4_splat(0);
#define Q4K_PAIR(J)                                                                        \
  {                                                                                        \
    const v128_t v0 = wasm_v128_load(qs + 32 * J), v1 = wasm_v128_load(qs + 32 * J + 16);  \
    v128_t l0 = wasm_v128_and(v0, m4), l1 = wasm_v128_and(v1, m4);                         \
    v128_t u0 = bits8(v0, 4, m4), u1 = bits8(v1, 4, m4);                                   \
    if (T == GT_Q5_K) {                                                                    \
      l0 = wasm_v128_or(l0, bit_to(h0, 2 * J, 4));                                         \
      l1 = wasm_v128_or(l1, bit_to(h1, 2 * J, 4));                                         \
      u0 = wasm_v128_or(u0, bit_to(h0, 2 * J + 1, 4));                                     \
      u1 = wasm_v128_or(u1, bit_to(h1, 2 * J + 1, 4));                                     \
    }                                                                                      \
    s = kdot32(l0, l1, A, k0 + 64 * J, SPLAT16(sc16, 2 * J), s);                           \
    s = kdot32(u0, u1, A, k0 + 64 * J + 32, SPLAT16(sc16, 2 * J + 1), s);                  \
    KFENCE(s);                                                                             \
  }
  Q4K_PAIR(0) Q4K_PAIR(1) Q4K_PAIR(2) Q4K_PAIR(3)
#undef Q4K_PAIR
  ksum r = {s, wasm_i32x4_dot_i16x8(mn16, wasm_v128_load(A->bs32 + 8 * b))};
  return r;
}

/** Q6_K: codes 0..63, zero 32, int8 scales per 16. */
INLINE ksum ksb_q6k(const uint8_t* p, const actk* A, int k0, int b) {
  const v128_t m4 = wasm_i8x16_splat(15), m30 = wasm_i8x16_splat(0x30);
  const v128_t sc8 = wasm_v128_load(p + 192);
  const v128_t scl = wasm_i16x8_extend_low_i8x16(sc8), sch = wasm_i16x8_extend_high_i8x16(sc8);
  v128_t s = wasm_i32x4_splat(0);
#define Q6K_HALF(H, SC)                                                                          \
  {                                                                                              \
    const uint8_t* ql = p + 64 * H;                                                              \
    const uint8_t* qh = p + 128 + 32 * H;                                                        \
    const int k = k0 + 128 * H;                                                                  \
    _Pragma("clang loop unroll(full)") for (int l = 0; l < 2; l++) {                             \
      const v128_t a = wasm_v128_load(ql + 16 * l), c = wasm_v128_load(ql + 32 + 16 * l);        \
      const v128_t h = wasm_v128_load(qh + 16 * l);                                              \
      const v128_t c1 = wasm_v128_or(wasm_v128_and(a, m4), wasm_v128_and(wasm_i16x8_shl(h, 4), m30)); \
      const v128_t c2 = wasm_v128_or(wasm_v128_and(c, m4), wasm_v128_and(wasm_i16x8_shl(h, 2), m30)); \
      const v128_t c3 = wasm_v128_or(bits8(a, 4, m4), wasm_v128_and(h, m30));                    \
      const v128_t c4 = wasm_v128_or(bits8(c, 4, m4), bits8(h, 2, m30));                         \
      s = kdot16(c1, A, k + 16 * l, l ? SPLAT16(SC, 1) : SPLAT16(SC, 0), s);                     \
      s = kdot16(c2, A, k + 32 + 16 * l, l ? SPLAT16(SC, 3) : SPLAT16(SC, 2), s);                \
      s = kdot16(c3, A, k + 64 + 16 * l, l ? SPLAT16(SC, 5) : SPLAT16(SC, 4), s);                \
      s = kdot16(c4, A, k + 96 + 16 * l, l ? SPLAT16(SC, 7) : SPLAT16(SC, 6), s);                \
      KFENCE(s);                                                                                 \
    }                                                                                            \
  }
  Q6K_HALF(0, scl) Q6K_HALF(1, sch)
#undef Q6K_HALF
  const v128_t z = wasm_i32x4_add(wasm_i32x4_dot_i16x8(scl, wasm_v128_load(A->bs16 + 16 * b)),
                                  wasm_i32x4_dot_i16x8(sch, wasm_v128_load(A->bs16 + 16 * b + 8)));
  ksum r = {wasm_i32x4_sub(s, wasm_i32x4_shl(z, 5)), wasm_i32x4_splat(0)};
  return r;
}

/** Q3_K (codes 0..7, zero 4, 6-bit scales - 32 per 16) and Q2_K (codes 0..3, 4-bit scales and mins). */
INLINE ksum ksb_q23k(const uint8_t* p, const actk* A, int k0, int b, const int T) {
  const v128_t m3 = wasm_i8x16_splat(3);
  v128_t scl, sch, mnl = wasm_i32x4_splat(0), mnh = mnl, hm0 = mnl, hm1 = mnl;
  const uint8_t* qs;
  if (T == GT_Q3_K) {
    const v128_t sc8 = k3_scales(p + 96);
    scl = wasm_i16x8_extend_low_i8x16(sc8);
    sch = wasm_i16x8_extend_high_i8x16(sc8);
    hm0 = wasm_v128_load(p);
    hm1 = wasm_v128_load(p + 16);
    qs = p + 32;
  } else {
    const v128_t v = wasm_v128_load(p);
    const v128_t sc8 = wasm_v128_and(v, wasm_i8x16_splat(15)), mn8 = bits8(v, 4, wasm_i8x16_splat(15));
    scl = wasm_u16x8_extend_low_u8x16(sc8);
    sch = wasm_u16x8_extend_high_u8x16(sc8);
    mnl = wasm_u16x8_extend_low_u8x16(mn8);
    mnh = wasm_u16x8_extend_high_u8x16(mn8);
    qs = p + 16;
  }
  v128_t s = wasm_i32x4_splat(0);
#define Q23K_G(H, SC, G)                                                                       \
  {                                                                                            \
    v128_t c0 = bits8(v0, 2 * G, m3), c1 = bits8(v1, 2 * G, m3);                               \
    if (T == GT_Q3_K) {                                                                        \
      c0 = wasm_v128_or(c0, bit_to(hm0, 4 * H + G, 2));                                        \
      c1 = wasm_v128_or(c1, bit_to(hm1, 4 * H + G, 2));                                        \
    }                                                                                          \
    const int k = k0 + 128 * H + 32 * G;                                                       \
    s = kdot16(c0, A, k, SPLAT16(SC, 2 * G), s);                                               \
    s = kdot16(c1, A, k + 16, SPLAT16(SC, 2 * G + 1), s);                                      \
  }
#define Q23K_HALF(H, SC)                                                                       \
  {                                                                                            \
    const v128_t v0 = wasm_v128_load(qs + 32 * H), v1 = wasm_v128_load(qs + 32 * H + 16);     \
    Q23K_G(H, SC, 0) Q23K_G(H, SC, 1) Q23K_G(H, SC, 2) Q23K_G(H, SC, 3)                        \
  }
  Q23K_HALF(0, scl) Q23K_HALF(1, sch)
#undef Q23K_HALF
#undef Q23K_G
  const v128_t bl = wasm_v128_load(A->bs16 + 16 * b), bh = wasm_v128_load(A->bs16 + 16 * b + 8);
  ksum r;
  if (T == GT_Q3_K) {
    const v128_t z = wasm_i32x4_add(wasm_i32x4_dot_i16x8(scl, bl), wasm_i32x4_dot_i16x8(sch, bh));
    r.s = wasm_i32x4_sub(s, wasm_i32x4_shl(z, 2));
    r.m = wasm_i32x4_splat(0);
  } else {
    r.s = s;
    r.m = wasm_i32x4_add(wasm_i32x4_dot_i16x8(mnl, bl), wasm_i32x4_dot_i16x8(mnh, bh));
  }
  return r;
}

INLINE ksum ksb(const int T, const uint8_t* p, const actk* A, int k0, int b) {
  if (T == GT_Q6_K) return ksb_q6k(p, A, k0, b);
  if (T == GT_Q4_K || T == GT_Q5_K) return ksb_q4k(p, A, k0, b, T);
  return ksb_q23k(p, A, k0, b, T);
}

/**
 * One tile of four rows against nb activation rows, one row after the other (each row's bytes are one
 * sequential stream, which the memory prefetchers follow best): per super-block the row's integer sums
 * are converted and scaled into a float32 lane accumulator, reduced across lanes at the end of the row.
 * (Matrix x matrix re-reads the tile's bytes from cache per activation row.)
 */
#define GGML_K_ROWS_FN(T, NAME)                                                                            \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* const p[4], int32_t act,      \
                                             int32_t as, int nb, float* y, int ys, int r, int last) {      \
    const int bb = ggml_block_bytes(T), dof = k_d_offset(T), nsb = D->cols / 256;                          \
    for (int j = 0; j < nb; j++) {                                                                        \
      const actk A = actk_view(act_at(act, as, j), D->kp);                                                 \
      float out[4];                                                                                        \
      for (int i = 0; i < 4 && r + i <= last; i++) {                                                      \
        v128_t acc = wasm_f32x4_splat(0);                                                                  \
        const uint8_t* q = p[i];                                                                           \
        for (int b = 0; b < nsb; b++, q += bb) {                                                          \
          const ksum s = ksb(T, q, &A, 256 * b, b);                                                        \
          const float dx = A.d[8 * b];                                                                     \
          acc = fmadd(wasm_f32x4_convert_i32x4(s.s), wasm_f32x4_splat(read_f16(q + dof) * dx), acc);       \
          if (ggml_has_min(T))                                                                             \
            acc = fmadd(wasm_f32x4_convert_i32x4(s.m), wasm_f32x4_splat(-read_f16(q + dof + 2) * dx), acc); \
        }                                                                                                  \
        out[i] = hsum_f32(acc);                                                                            \
      }                                                                                                    \
      for (int i = 0; i < 4 && r + i <= last; i++) y[(size_t)j * ys + r + i] = out[i];                    \
    }                                                                                                      \
  }
GGML_K_ROWS_FN(GT_Q2_K, gq8k_q2_k)
GGML_K_ROWS_FN(GT_Q3_K, gq8k_q3_k)
GGML_K_ROWS_FN(GT_Q4_K, gq8k_q4_k)
GGML_K_ROWS_FN(GT_Q5_K, gq8k_q5_k)
GGML_K_ROWS_FN(GT_Q6_K, gq8k_q6_k)

INLINE void ggml_q8k_rows(const wdesc* D, const uint8_t* const p[4], int32_t act, int32_t as, int nb, float* y,
                          int ys, int r, int last) {
#define ROWS(NAME) NAME(D, p, act, as, nb, y, ys, r, last)
  switch (D->bits) {
    case GT_Q2_K: ROWS(gq8k_q2_k); break;
    case GT_Q3_K: ROWS(gq8k_q3_k); break;
    case GT_Q4_K: ROWS(gq8k_q4_k); break;
    case GT_Q5_K: ROWS(gq8k_q5_k); break;
    default: ROWS(gq8k_q6_k); break;
  }
#undef ROWS
}

/**
 * [row 0..3] integer sums S of the interleaved Q6_K group g (ggml.h "Q6_K in 4-row interleaved tiles")
 * against Q8_K activations from k0 = 256 b, the zero point 32 taken off through the block sums per 16.
 * Per sub-block of 16 weights x 4 rows: three loads, 11 bitwise operations for the 64 codes, four dots
 * against four activations splat from one 32-bit load each; the relaxed build sums two dots per i16 lane
 * (|.| <= 4 * 63 * 127 < 2^15) and scales the pairs with one i32x4.dot_i16x8_s per 8 weights of 4 rows.
 */
INLINE v128_t il_q6k_isum(const uint8_t* g, const actk* A, int k0, int b) {
  volatile v128_t fence;
  v128_t s = wasm_i32x4_splat(0), z = s;
#if !MIXQ_RELAXED
  v128_t s23 = s;  // rows 2, 3 (lanes [r2 r2 r3 r3]); s holds rows 0, 1
#endif
  _Pragma("clang loop unroll(disable)") for (int P = 0; P < 8; P++) {
    const v128_t sv = wasm_v128_load64_zero(g + Q6IL_SCALES + 8 * P);
    const v128_t W = wasm_i16x8_extend_low_i8x16(sv);  // [s_i,2P  s_i,2P+1] per row i
    z = wasm_i32x4_add(z, wasm_i32x4_dot_i16x8(W, wasm_v128_load32_splat(A->bs16 + 16 * b + 2 * P)));
    _Pragma("clang loop unroll(full)") for (int e = 0; e < 2; e++) {
      const int j = 2 * P + e, k = k0 + 16 * j;
      const v128_t sc = e ? wasm_i16x8_shuffle(W, W, 1, 1, 3, 3, 5, 5, 7, 7) : wasm_i16x8_shuffle(W, W, 0, 0, 2, 2, 4, 4, 6, 6);
      v128_t cv[4];
      q6il_vec4(g + Q6IL_CODES + 48 * j, cv);
      const v128_t c0 = cv[0], c1 = cv[1], c2 = cv[2], c3 = cv[3];
#if MIXQ_RELAXED
      const v128_t p0 = wasm_i16x8_add(rdot16(c0, wasm_v128_load32_splat(A->qs + k)),
                                       rdot16(c1, wasm_v128_load32_splat(A->qs + k + 4)));
      const v128_t p1 = wasm_i16x8_add(rdot16(c2, wasm_v128_load32_splat(A->qs + k + 8)),
                                       rdot16(c3, wasm_v128_load32_splat(A->qs + k + 12)));
      s = wasm_i32x4_add(s, wasm_i32x4_add(wasm_i32x4_dot_i16x8(p0, sc), wasm_i32x4_dot_i16x8(p1, sc)));
#else
      v128_t lo = wasm_i32x4_splat(0), hi = lo;
      il_wide(0, c0, A->qs16 + k, &lo, &hi);
      il_wide(0, c1, A->qs16 + k + 4, &lo, &hi);
      il_wide(0, c2, A->qs16 + k + 8, &lo, &hi);
      il_wide(0, c3, A->qs16 + k + 12, &lo, &hi);
      s = wasm_i32x4_add(s, wasm_i32x4_mul(lo, wasm_i32x4_extend_low_i16x8(sc)));
      s23 = wasm_i32x4_add(s23, wasm_i32x4_mul(hi, wasm_i32x4_extend_high_i16x8(sc)));
#endif
      VFENCE(&fence, s);
    }
  }
#if !MIXQ_RELAXED
  s = il_pairs(s, s23);
#endif
  return wasm_i32x4_sub(s, wasm_i32x4_shl(z, 5));
}

/**
 * The scale section s of an interleaved Q4_K / Q5_K / Q3_K group (ggml.h k6il_put) as four u8 vectors whose
 * bytes 8 (P & 1) + 2 i + e are row i's a_j / m_j of j = 2 P + e: a01 (P = 0, 1), a23 (P = 2, 3), m01, m23.
 */
INLINE void k6il_vectors(const uint8_t* sec, v128_t* a01, v128_t* a23, v128_t* m01, v128_t* m23) {
  const v128_t m4 = wasm_i8x16_splat(15), top = wasm_i8x16_splat((int8_t)0xc0);
  const v128_t s01 = wasm_v128_load(sec), s23 = wasm_v128_load(sec + 16), n = wasm_v128_load(sec + 32);
  *a01 = wasm_v128_andnot(s01, top);
  *a23 = wasm_v128_andnot(s23, top);
  *m01 = wasm_v128_or(wasm_v128_and(n, m4), wasm_u16x8_shr(wasm_v128_and(s01, top), 2));
  *m23 = wasm_v128_or(bits8(n, 4, m4), wasm_u16x8_shr(wasm_v128_and(s23, top), 2));
}
/** [s_0 s_0 s_1 s_1 s_2 s_2 s_3 s_3] from W = [s_0,2P s_0,2P+1 s_1,2P ...] (i16): sub-block 2 P + e's scales. */
INLINE v128_t il_scale_pairs(v128_t W, const int e) {
  return e ? wasm_i16x8_shuffle(W, W, 1, 1, 3, 3, 5, 5, 7, 7) : wasm_i16x8_shuffle(W, W, 0, 0, 2, 2, 4, 4, 6, 6);
}

/**
 * Sums of the four code vectors c[0..3] (interleaved: byte 4 i + u of c[t] is row i's code of weight k + 4 t
 * + u) against the activations at k, times the rows' scales sc ([s_0 s_0 s_1 s_1 ...]), added to *s (rows
 * 0..3; the SIMD128 build: rows 0, 1 in *s as lanes 2 i, 2 i + 1 and rows 2, 3 in *s23, il_pairs at the end).
 * Relaxed: 8 products per i16 lane, codes < 32 (|.| <= 8 * 31 * 127 < 2^15).
 */
INLINE void il_dot4(const v128_t c[4], const actk* A, int k, v128_t sc, v128_t* s, v128_t* s23) {
#if MIXQ_RELAXED
  (void)s23;
  v128_t p = wasm_i16x8_add(rdot16(c[0], wasm_v128_load32_splat(A->qs + k)), rdot16(c[1], wasm_v128_load32_splat(A->qs + k + 4)));
  p = wasm_i16x8_add(p, rdot16(c[2], wasm_v128_load32_splat(A->qs + k + 8)));
  p = wasm_i16x8_add(p, rdot16(c[3], wasm_v128_load32_splat(A->qs + k + 12)));
  *s = wasm_i32x4_add(*s, wasm_i32x4_dot_i16x8(p, sc));
#else
  v128_t lo = wasm_i32x4_splat(0), hi = lo;
  for (int t = 0; t < 4; t++) il_wide(0, c[t], A->qs16 + k + 4 * t, &lo, &hi);
  *s = wasm_i32x4_add(*s, wasm_i32x4_mul(lo, wasm_i32x4_extend_low_i16x8(sc)));
  *s23 = wasm_i32x4_add(*s23, wasm_i32x4_mul(hi, wasm_i32x4_extend_high_i16x8(sc)));
#endif
}
/** The row sums of il_dot4 as [row 0..3]. */
INLINE v128_t il_rows(v128_t s, v128_t s23) {
#if MIXQ_RELAXED
  (void)s23;
  return s;
#else
  return il_pairs(s, s23);
#endif
}

/**
 * [row 0..3] integer sums S (codes times scales) and M (mins times block sums) of the interleaved Q4_K
 * group g (ggml.h "Q4_K in 4-row interleaved tiles") against Q8_K activations from k0 = 256 b. The loop
 * over pairs of sub-blocks stays rolled (fully unrolled, V8 spilled; this applies to every K-quant).
 */
INLINE void il_q4k_isum(const uint8_t* g, const actk* A, int k0, int b, v128_t* S, v128_t* M) {
  const v128_t m4 = wasm_i8x16_splat(15);
  v128_t sc01, sc23, mn01, mn23;
  k6il_vectors(g + K4IL_SCALES, &sc01, &sc23, &mn01, &mn23);
  volatile v128_t fence;
  v128_t s = wasm_i32x4_splat(0), mm = s, s23r = s;
  _Pragma("clang loop unroll(disable)") for (int P = 0; P < 4; P++) {
    const v128_t scv = P < 2 ? sc01 : sc23, mnv = P < 2 ? mn01 : mn23;
    const v128_t W = P & 1 ? wasm_u16x8_extend_high_u8x16(scv) : wasm_u16x8_extend_low_u8x16(scv);
    const v128_t Wm = P & 1 ? wasm_u16x8_extend_high_u8x16(mnv) : wasm_u16x8_extend_low_u8x16(mnv);
    mm = wasm_i32x4_add(mm, wasm_i32x4_dot_i16x8(Wm, wasm_v128_load32_splat(A->bs32 + 8 * b + 2 * P)));
    _Pragma("clang loop unroll(full)") for (int e = 0; e < 2; e++) {
      const int j = 2 * P + e, k = k0 + 32 * j;
      const v128_t sc = il_scale_pairs(W, e);
      {
        const uint8_t* B = g + K4IL_CODES + 64 * j;
#if MIXQ_RELAXED
        // codes < 16: the 16 products of a row's pair of lanes in one i16 lane (16 * 15 * 127 < 2^15)
        v128_t p = wasm_i16x8_splat(0);
        _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
          const v128_t v = wasm_v128_load(B + 16 * t);
          p = wasm_i16x8_add(p, rdot16(wasm_v128_and(v, m4), wasm_v128_load32_splat(A->qs + k + 4 * t)));
          p = wasm_i16x8_add(p, rdot16(bits8(v, 4, m4), wasm_v128_load32_splat(A->qs + k + 16 + 4 * t)));
        }
        s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(p, sc));
#else
        v128_t lo = wasm_i32x4_splat(0), hi = lo;
        _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
          const v128_t v = wasm_v128_load(B + 16 * t);
          il_wide(0, wasm_v128_and(v, m4), A->qs16 + k + 4 * t, &lo, &hi);
          il_wide(0, bits8(v, 4, m4), A->qs16 + k + 16 + 4 * t, &lo, &hi);
        }
        s = wasm_i32x4_add(s, wasm_i32x4_mul(lo, wasm_i32x4_extend_low_i16x8(sc)));
        s23r = wasm_i32x4_add(s23r, wasm_i32x4_mul(hi, wasm_i32x4_extend_high_i16x8(sc)));
#endif
      }
      VFENCE(&fence, s);
    }
  }
  (void)s23r;
  *S = il_rows(s, s23r);
  *M = mm;
}
/**
 * il_q4k_isum for an interleaved Q5_K group (ggml.h "Q3_K, Q2_K and Q5_K in ..."). Few vectors stay live
 * across the loop (V8 keeps 16 on x64; with the four scale vectors and four mask constants live, the first
 * version spilled ~30 vectors per sub-block and ran at the row kernel's speed): the scales and mins go to a
 * 64-byte array once per super-block, two mask constants remain, and each sub-block is two fenced halves
 * (ggml.h kil_vec4): the four codes held whole in B0..B3, then the four made of B4 and the top bits (B0..B3
 * loaded again, from L1).
 */
INLINE void il_q5k_isum(const uint8_t* g, const actk* A, int k0, int b, v128_t* S, v128_t* M) {
  uint8_t sw[64] __attribute__((aligned(16)));
  {
    v128_t a01, a23, m01, m23;
    k6il_vectors(g + K4IL_SCALES, &a01, &a23, &m01, &m23);
    wasm_v128_store(sw, a01);
    wasm_v128_store(sw + 16, a23);
    wasm_v128_store(sw + 32, m01);
    wasm_v128_store(sw + 48, m23);
  }
  volatile v128_t fence;
  v128_t s = wasm_i32x4_splat(0), mm = s, s23 = s;
  _Pragma("clang loop unroll(disable)") for (int P = 0; P < 4; P++) {
    const v128_t Wm = wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(sw + 32 + 8 * P));
    mm = wasm_i32x4_add(mm, wasm_i32x4_dot_i16x8(Wm, wasm_v128_load32_splat(A->bs32 + 8 * b + 2 * P)));
    _Pragma("clang loop unroll(full)") for (int e = 0; e < 2; e++) {
      const int j = 2 * P + e, k = k0 + 32 * j;
      const v128_t sc = il_scale_pairs(wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(sw + 8 * P)), e);
      _Pragma("clang loop unroll(full)") for (int h = 0; h < 2; h++) {  // fenced halves: B0..B3 whole, then the rest
        v128_t c[4];
        kil_vec4(GT_Q5_K, g + Q5IL_CODES + 80 * j, h, c);
        il_dot4(c, A, k + 16 * h, sc, &s, &s23);
        VFENCE(&fence, s);
      }
    }
  }
  *S = il_rows(s, s23);
  *M = mm;
}

/**
 * [row 0..3] integer sums S of the interleaved Q3_K group g (ggml.h "Q3_K, Q2_K and Q5_K in 4-row
 * interleaved tiles") against Q8_K activations from k0 = 256 b, the zero point 4 taken off through the block
 * sums per 16. The rows' 64 scales (minus 32) are unpacked once per super-block into an i16 array, so the
 * rolled loop over pairs of sub-blocks keeps few vectors live; per pair three loads and 19 bitwise
 * operations give the 128 codes of four rows.
 */
INLINE v128_t il_q3k_isum(const uint8_t* g, const actk* A, int k0, int b) {
  int16_t scw[64] __attribute__((aligned(16)));
  {
    v128_t a01, a23, m01, m23;
    k6il_vectors(g + Q3IL_SCALES, &a01, &a23, &m01, &m23);
    const v128_t v[4] = {a01, a23, m01, m23}, z32 = wasm_i16x8_splat(32);
    for (int q = 0; q < 4; q++) {
      wasm_v128_store(scw + 16 * q, wasm_i16x8_sub(wasm_u16x8_extend_low_u8x16(v[q]), z32));
      wasm_v128_store(scw + 16 * q + 8, wasm_i16x8_sub(wasm_u16x8_extend_high_u8x16(v[q]), z32));
    }
  }
  volatile v128_t fence;
  v128_t s = wasm_i32x4_splat(0), z = s, s23 = s;
  _Pragma("clang loop unroll(disable)") for (int P = 0; P < 8; P++) {
    const v128_t W = wasm_v128_load(scw + 8 * P);  // [s_i,2P  s_i,2P+1] per row i
    z = wasm_i32x4_add(z, wasm_i32x4_dot_i16x8(W, wasm_v128_load32_splat(A->bs16 + 16 * b + 2 * P)));
    _Pragma("clang loop unroll(full)") for (int h = 0; h < 2; h++) {
      v128_t c[4];
      kil_vec4(GT_Q3_K, g + Q3IL_CODES + 48 * P, h, c);
      il_dot4(c, A, k0 + 32 * P + 16 * h, il_scale_pairs(W, h), &s, &s23);
      VFENCE(&fence, s);
    }
  }
  return wasm_i32x4_sub(il_rows(s, s23), wasm_i32x4_shl(z, 2));
}

/**
 * [row 0..3] integer sums S (codes times scales) and M (mins times block sums per 16) of the interleaved
 * Q2_K group g (ggml.h "Q3_K, Q2_K and Q5_K in ...") against Q8_K activations from k0 = 256 b.
 */
INLINE void il_q2k_isum(const uint8_t* g, const actk* A, int k0, int b, v128_t* S, v128_t* M) {
  const v128_t m15 = wasm_i16x8_splat(15);
  volatile v128_t fence;
  v128_t s = wasm_i32x4_splat(0), mm = s, s23 = s;
  _Pragma("clang loop unroll(disable)") for (int P = 0; P < 8; P++) {
    const v128_t x = wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(g + Q2IL_SCALES + 8 * P));
    mm = wasm_i32x4_add(mm, wasm_i32x4_dot_i16x8(wasm_u16x8_shr(x, 4), wasm_v128_load32_splat(A->bs16 + 16 * b + 2 * P)));
    const v128_t W = wasm_v128_and(x, m15);
    _Pragma("clang loop unroll(full)") for (int e = 0; e < 2; e++) {
      v128_t c[4];
      kil_vec4(GT_Q2_K, g + Q2IL_CODES + 32 * P, e, c);
      il_dot4(c, A, k0 + 32 * P + 16 * e, il_scale_pairs(W, e), &s, &s23);
      VFENCE(&fence, s);
    }
  }
  *S = il_rows(s, s23);
  *M = mm;
}

/**
 * An interleaved K-quant tile (rows r .. r+3, all real) against nb Q8_K activation rows: per super-block one
 * i32x4 of the four rows' sums (and of their mins), one conversion and one float scaling each (the four
 * rows' fp16 d and dmin converted as one vector, times the block's activation scale); the float32 lanes are
 * the four outputs. Matrix x vector (nb = 1, the engine's decode); batches take kmm_tile, which ends each
 * super-block with the same operations, so every batch row equals its matvec bit for bit.
 */
#define GGML_K_IL_FN(T, NAME)                                                                              \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* tile, int32_t act, int32_t as, \
                                             int nb, float* y, int ys, int r) {                            \
    const int nsb = D->cols / 256, gb = 4 * ggml_block_bytes(T);                                           \
    for (int j = 0; j < nb; j++) {                                                                        \
      const actk A = actk_view(act_at(act, as, j), D->kp);                                                 \
      v128_t acc = wasm_f32x4_splat(0);                                                                    \
      const uint8_t* g = tile;                                                                             \
      for (int b = 0; b < nsb; b++, g += gb) {                                                            \
        const v128_t dx = wasm_f32x4_splat(A.d[8 * b]);                                                    \
        const v128_t h4 = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(g));                          \
        const v128_t d4 = T == GT_Q4_K ? f16x4_to_f32(h4) : f16x4_to_f32_na(h4);                           \
        if (!ggml_has_min(T)) {                                                                            \
          const v128_t S = T == GT_Q6_K ? il_q6k_isum(g, &A, 256 * b, b) : il_q3k_isum(g, &A, 256 * b, b); \
          acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(d4, dx), acc);                           \
        } else {                                                                                           \
          v128_t S, M;                                                                                     \
          if (T == GT_Q2_K) il_q2k_isum(g, &A, 256 * b, b, &S, &M);                                        \
          else if (T == GT_Q5_K) il_q5k_isum(g, &A, 256 * b, b, &S, &M);                                   \
          else il_q4k_isum(g, &A, 256 * b, b, &S, &M);                                                  \
          const v128_t h4m = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(g + 8));                  \
          const v128_t m4 = T == GT_Q4_K ? f16x4_to_f32(h4m) : f16x4_to_f32_na(h4m);                     \
          acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(d4, dx), acc);                           \
          acc = fmadd(wasm_f32x4_convert_i32x4(M), wasm_f32x4_mul(wasm_f32x4_neg(m4), dx), acc);          \
        }                                                                                                  \
      }                                                                                                    \
      wasm_v128_store(y + (size_t)j * ys + r, acc);                                                        \
    }                                                                                                      \
  }
GGML_K_IL_FN(GT_Q6_K, gq8k_il_q6k)
GGML_K_IL_FN(GT_Q5_K, gq8k_il_q5k)
GGML_K_IL_FN(GT_Q4_K, gq8k_il_q4k)
GGML_K_IL_FN(GT_Q3_K, gq8k_il_q3k)
GGML_K_IL_FN(GT_Q2_K, gq8k_il_q2k)

// ---- matrix x matrix: each super-block's codes decoded once for the whole batch ----
// The tile's codes of 32 weights x 4 rows are decoded into eight code vectors (c[t]: byte 4 i + u = row i's
// code of weight k + 4 t + u) with their scale pairs, held in registers while a loop runs them against every
// activation row of the batch (kmm_dot), each row's integer sums S in scratch. The zero-point / minimum term
// and the float scaling end each super-block per activation row, as the matrix x vector kernel does: the same
// exact integers and the same float32 operations in the same order, so every batch row equals its matvec bit
// for bit. Against running GGML_K_IL_FN per activation row (same-process A/B, 4096 x 4096 and 2048 x 5632,
// batch 8 / 32, 1 thread, weights cold): relaxed 1.36-2.41x, SIMD128 1.69-2.60x, every type and case won
// (docs/engine.md "Prefill"); V8's relaxed inner loop keeps the eight code vectors in registers (no spill).

/** Activation rows run together over a tile (scratch: 3 vectors each, the tile's bytes re-read per chunk). */
#define KMM_ROWS 64

/**
 * s[j] (+ s23[j], SIMD128) += the 32 weights at k of the four rows (codes c[0..7], scale pairs sc0 for c[0..3],
 * sc1 for c[4..7] as [s_0 s_0 s_1 s_1 ...]) against activation rows j < n at a, as bytes apart. Relaxed: g
 * relaxed dots summed per i16 lane before the scaling (Q4_K 8: |.| <= 16 * 15 * 127; Q5_K, Q3_K, Q2_K 4; Q6_K
 * 2: 4 * 63 * 127 < 2^15). SIMD128: the codes widened and multiplied by their scales once (|c sc| <= 63 * 128
 * < 2^15), then one i32x4.dot_i16x8_s per 4 weights of two rows and activation row.
 */
INLINE void kmm_dot(const int T, const v128_t c[8], v128_t sc0, v128_t sc1, const uint8_t* a, int32_t as, int n,
                    int kp, int k, v128_t* s, v128_t* s23) {
#if MIXQ_RELAXED
  (void)s23;
  (void)kp;
  const uint8_t* q = a + k;
  _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, q += as) {
    v128_t p[8];
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 8; t++) p[t] = rdot16(c[t], wasm_v128_load32_splat(q + 4 * t));
    v128_t d;
    if (T == GT_Q4_K) {
      const v128_t u = wasm_i16x8_add(wasm_i16x8_add(wasm_i16x8_add(p[0], p[1]), wasm_i16x8_add(p[2], p[3])),
                                      wasm_i16x8_add(wasm_i16x8_add(p[4], p[5]), wasm_i16x8_add(p[6], p[7])));
      d = wasm_i32x4_dot_i16x8(u, sc0);
    } else if (T == GT_Q6_K) {
      d = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_add(p[0], p[1]), sc0),
                                        wasm_i32x4_dot_i16x8(wasm_i16x8_add(p[2], p[3]), sc0)),
                         wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_add(p[4], p[5]), sc1),
                                        wasm_i32x4_dot_i16x8(wasm_i16x8_add(p[6], p[7]), sc1)));
    } else {
      const v128_t u0 = wasm_i16x8_add(wasm_i16x8_add(p[0], p[1]), wasm_i16x8_add(p[2], p[3]));
      const v128_t u1 = wasm_i16x8_add(wasm_i16x8_add(p[4], p[5]), wasm_i16x8_add(p[6], p[7]));
      d = wasm_i32x4_add(wasm_i32x4_dot_i16x8(u0, sc0), wasm_i32x4_dot_i16x8(u1, sc1));
    }
    s[j] = wasm_i32x4_add(s[j], d);
  }
#else
  (void)T;
  _Pragma("clang loop unroll(full)") for (int h = 0; h < 2; h++) {
    const v128_t sc = h ? sc1 : sc0;
    const v128_t scl = wasm_i16x8_shuffle(sc, sc, 0, 0, 0, 0, 2, 2, 2, 2);  // rows 0, 1
    const v128_t sch = wasm_i16x8_shuffle(sc, sc, 4, 4, 4, 4, 6, 6, 6, 6);  // rows 2, 3
    v128_t w[8];
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
      w[2 * t] = wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(c[4 * h + t]), scl);
      w[2 * t + 1] = wasm_i16x8_mul(wasm_u16x8_extend_high_u8x16(c[4 * h + t]), sch);
    }
    const uint8_t* q = a + kp + 2 * (k + 16 * h);
    _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, q += as) {
      v128_t lo = wasm_i32x4_splat(0), hi = lo;
      _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
        const v128_t xv = wasm_v128_load64_splat(q + 8 * t);
        lo = wasm_i32x4_add(lo, wasm_i32x4_dot_i16x8(w[2 * t], xv));
        hi = wasm_i32x4_add(hi, wasm_i32x4_dot_i16x8(w[2 * t + 1], xv));
      }
      s[j] = wasm_i32x4_add(s[j], lo);
      s23[j] = wasm_i32x4_add(s23[j], hi);
    }
  }
#endif
}

/**
 * Super-block b of an interleaved K-quant tile (group g, all four rows real) against activation rows j < n
 * (at a, as bytes apart): the integer sums S into s / s23 (kmm_dot), and wz[0..nz) the i16 weights of the
 * zero-point or minimum term per pair of block sums (Q4_K / Q5_K: minima per 32; Q2_K: minima per 16; Q3_K,
 * Q6_K: scales per 16, times the zero point at the end). Returns nz.
 */
INLINE int kmm_super(const int T, const uint8_t* g, const uint8_t* a, int32_t as, int n, int kp, int k0,
                     v128_t* s, v128_t* s23, v128_t wz[8]) {
  const v128_t m4 = wasm_i8x16_splat(15);
  if (T == GT_Q4_K || T == GT_Q5_K) {
    v128_t sc01, sc23, mn01, mn23;
    k6il_vectors(g + K4IL_SCALES, &sc01, &sc23, &mn01, &mn23);
    wz[0] = wasm_u16x8_extend_low_u8x16(mn01);
    wz[1] = wasm_u16x8_extend_high_u8x16(mn01);
    wz[2] = wasm_u16x8_extend_low_u8x16(mn23);
    wz[3] = wasm_u16x8_extend_high_u8x16(mn23);
    const v128_t sw[4] = {wasm_u16x8_extend_low_u8x16(sc01), wasm_u16x8_extend_high_u8x16(sc01),
                          wasm_u16x8_extend_low_u8x16(sc23), wasm_u16x8_extend_high_u8x16(sc23)};
    _Pragma("clang loop unroll(disable)") for (int j = 0; j < 8; j++) {
      const v128_t sc = il_scale_pairs(sw[j >> 1], j & 1);
      v128_t c[8];
      if (T == GT_Q4_K) {
        const uint8_t* B = g + K4IL_CODES + 64 * j;
        _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
          const v128_t v = wasm_v128_load(B + 16 * t);
          c[t] = wasm_v128_and(v, m4);
          c[4 + t] = bits8(v, 4, m4);
        }
      } else {
        kil_vec4(GT_Q5_K, g + Q5IL_CODES + 80 * j, 0, c);
        kil_vec4(GT_Q5_K, g + Q5IL_CODES + 80 * j, 1, c + 4);
      }
      kmm_dot(T, c, sc, sc, a, as, n, kp, k0 + 32 * j, s, s23);
    }
    return 4;
  }
  if (T == GT_Q3_K) {  // the 16 6-bit scales (minus 32) of each row, as 8 vectors of [s_i,2P  s_i,2P+1] pairs
    v128_t v[4];
    k6il_vectors(g + Q3IL_SCALES, &v[0], &v[1], &v[2], &v[3]);
    const v128_t z32 = wasm_i16x8_splat(32);
    for (int q = 0; q < 4; q++) {
      wz[2 * q] = wasm_i16x8_sub(wasm_u16x8_extend_low_u8x16(v[q]), z32);
      wz[2 * q + 1] = wasm_i16x8_sub(wasm_u16x8_extend_high_u8x16(v[q]), z32);
    }
  }
  _Pragma("clang loop unroll(disable)") for (int P = 0; P < 8; P++) {
    v128_t W, c[8];
    if (T == GT_Q6_K) {
      W = wasm_i16x8_extend_low_i8x16(wasm_v128_load64_zero(g + Q6IL_SCALES + 8 * P));
      q6il_vec4(g + Q6IL_CODES + 96 * P, c);
      q6il_vec4(g + Q6IL_CODES + 96 * P + 48, c + 4);
      wz[P] = W;
    } else if (T == GT_Q3_K) {
      W = wz[P];
      kil_vec4(GT_Q3_K, g + Q3IL_CODES + 48 * P, 0, c);
      kil_vec4(GT_Q3_K, g + Q3IL_CODES + 48 * P, 1, c + 4);
    } else {
      const v128_t x = wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(g + Q2IL_SCALES + 8 * P));
      W = wasm_v128_and(x, wasm_i16x8_splat(15));
      wz[P] = wasm_u16x8_shr(x, 4);
      kil_vec4(GT_Q2_K, g + Q2IL_CODES + 32 * P, 0, c);
      kil_vec4(GT_Q2_K, g + Q2IL_CODES + 32 * P, 1, c + 4);
    }
    kmm_dot(T, c, il_scale_pairs(W, 0), il_scale_pairs(W, 1), a, as, n, kp, k0 + 32 * P, s, s23);
  }
  return 8;
}

/**
 * An interleaved K-quant tile (rows r .. r+3, all real) against nb > 1 activation rows, KMM_ROWS at a time
 * (scratch: 3 KMM_ROWS vectors): per super-block the codes decoded once (kmm_super), then per activation
 * row the zero-point / minimum term, one conversion and one float scaling, exactly as GGML_K_IL_FN.
 */
INLINE void kmm_tile(const int T, const wdesc* D, const uint8_t* tile, int32_t act, int32_t as, int nb,
                     v128_t* scr, float* y, int ys, int r) {
  const int nsb = D->cols / 256, gb = 4 * ggml_block_bytes(T), kp = D->kp;
  for (int j0 = 0; j0 < nb; j0 += KMM_ROWS) {
    const int n = nb - j0 < KMM_ROWS ? nb - j0 : KMM_ROWS;
    const uint8_t* a = (const uint8_t*)(uintptr_t)act_at(act, as, j0);
    v128_t *acc = scr, *s = scr + KMM_ROWS, *s23 = scr + 2 * KMM_ROWS;
    for (int j = 0; j < n; j++) acc[j] = s[j] = s23[j] = wasm_i32x4_splat(0);
    const uint8_t* g = tile;
    for (int b = 0; b < nsb; b++, g += gb) {
      v128_t wz[8];
      const int nz = kmm_super(T, g, a, as, n, kp, 256 * b, s, s23, wz);
      const v128_t h4 = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(g));
      const v128_t d4 = T == GT_Q4_K ? f16x4_to_f32(h4) : f16x4_to_f32_na(h4);
      const v128_t h4m = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(g + 8));
      const v128_t m4 = T == GT_Q4_K ? f16x4_to_f32(h4m) : f16x4_to_f32_na(h4m);
      const uint8_t* aj = a;
      for (int j = 0; j < n; j++, aj += as) {
        const actk A = actk_view((uint32_t)(uintptr_t)aj, kp);
        const int16_t* bs = nz == 4 ? A.bs32 + 8 * b : A.bs16 + 16 * b;
        v128_t z = wasm_i32x4_splat(0);
        for (int P = 0; P < nz; P++) z = wasm_i32x4_add(z, wasm_i32x4_dot_i16x8(wz[P], wasm_v128_load32_splat(bs + 2 * P)));
        v128_t S = il_rows(s[j], s23[j]);
        s[j] = s23[j] = wasm_i32x4_splat(0);
        if (T == GT_Q3_K) S = wasm_i32x4_sub(S, wasm_i32x4_shl(z, 2));
        if (T == GT_Q6_K) S = wasm_i32x4_sub(S, wasm_i32x4_shl(z, 5));
        const v128_t dx = wasm_f32x4_splat(A.d[8 * b]);
        acc[j] = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(d4, dx), acc[j]);
        if (ggml_has_min(T)) acc[j] = fmadd(wasm_f32x4_convert_i32x4(z), wasm_f32x4_mul(wasm_f32x4_neg(m4), dx), acc[j]);
      }
    }
    for (int j = 0; j < n; j++) wasm_v128_store(y + (size_t)(j0 + j) * ys + r, acc[j]);
  }
}
#define GGML_K_IL_MM_FN(T, NAME)                                                                           \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* tile, int32_t act, int32_t as, \
                                             int nb, v128_t* scr, float* y, int ys, int r) {               \
    kmm_tile(T, D, tile, act, as, nb, scr, y, ys, r);                                                      \
  }
GGML_K_IL_MM_FN(GT_Q6_K, gq8kmm_q6k)
GGML_K_IL_MM_FN(GT_Q5_K, gq8kmm_q5k)
GGML_K_IL_MM_FN(GT_Q4_K, gq8kmm_q4k)
GGML_K_IL_MM_FN(GT_Q3_K, gq8kmm_q3k)
GGML_K_IL_MM_FN(GT_Q2_K, gq8kmm_q2k)

/** Runs the tile at r if it is an interleaved K-quant tile (ggml_il_k); 0 otherwise. */
INLINE int ggml_q8k_il(const wdesc* D, const uint8_t* const p[4], int32_t act, int32_t as, int nb, v128_t* scr,
                       float* y, int ys, int r) {
  if (!ggml_il_k(D->bits) || !ggml_il_tile(D, r)) return 0;
  if (nb > 1) {
    switch (D->bits) {
      case GT_Q6_K: gq8kmm_q6k(D, p[0], act, as, nb, scr, y, ys, r); break;
      case GT_Q5_K: gq8kmm_q5k(D, p[0], act, as, nb, scr, y, ys, r); break;
      case GT_Q4_K: gq8kmm_q4k(D, p[0], act, as, nb, scr, y, ys, r); break;
      case GT_Q3_K: gq8kmm_q3k(D, p[0], act, as, nb, scr, y, ys, r); break;
      default: gq8kmm_q2k(D, p[0], act, as, nb, scr, y, ys, r); break;
    }
    return 1;
  }
  switch (D->bits) {
    case GT_Q6_K: gq8k_il_q6k(D, p[0], act, as, nb, y, ys, r); break;
    case GT_Q5_K: gq8k_il_q5k(D, p[0], act, as, nb, y, ys, r); break;
    case GT_Q4_K: gq8k_il_q4k(D, p[0], act, as, nb, y, ys, r); break;
    case GT_Q3_K: gq8k_il_q3k(D, p[0], act, as, nb, y, ys, r); break;
    default: gq8k_il_q2k(D, p[0], act, as, nb, y, ys, r); break;
  }
  return 1;
}

/** Q8_K path, matrix x vector (K-quant weights only: the TypeScript side offers 'q8k' for them alone). */
EXPORT void mv_ggml_q8k(int32_t desc, int32_t act, int32_t y, int32_t r0, int32_t r1) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  for (int r = r0; r < r1; r += 4) {
    const uint8_t* p[4];
    ggml_tile(D, r, r1 - 1, p);
    if (!ggml_q8k_il(D, p, act, 0, 1, 0, (float*)(uintptr_t)y, 0, r))
      ggml_q8k_rows(D, p, act, 0, 1, (float*)(uintptr_t)y, 0, r, r1 - 1);
  }
}

/**
 * Q8_K path, matrix x matrix. Interleaved tiles: kmm_tile (codes decoded once per batch), and the last
 * tile of < 4 rows the matrix x vector row kernel per activation row, so every batch row equals its matvec
 * bit for bit. Layout 'stored' (no interleaved tiles): a batch shares the decoding of each tile in ggml.h's
 * tile kernels on the same activations (a 'q8k' buffer is a 'q8' buffer whose 256-block scale is repeated
 * per 32), scaling per chunk of 32 instead of per super-block: the same exact integer sums, float32
 * rounding in another order.
 */
EXPORT void mm_ggml_q8k(int32_t desc, int32_t act, int32_t as, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                        int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  v128_t* accs = (v128_t*)(uintptr_t)scratch;
  for (int r = r0; r < r1; r += 4) {
    const uint8_t* p[4];
    ggml_tile(D, r, r1 - 1, p);
    if (ggml_q8k_il(D, p, act, as, nb, accs, (float*)(uintptr_t)y, ys, r)) continue;
    if (nb > 1 && D->aux != 4) ggml_q8_tiles(D, p, act, as, nb, accs, (float*)(uintptr_t)y, ys, r, r1 - 1);
    else ggml_q8k_rows(D, p, act, as, nb, (float*)(uintptr_t)y, ys, r, r1 - 1);
  }
}
#endif

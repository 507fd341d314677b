// Bit-plane lookup-table kernels (T-MAC, Wei et al., "T-MAC: CPU Renaissance via Table Lookup for Low-Bit
// LLM Deployment on Edge", 2024) for b = 1..4-bit integer codes (src/kernels/lut.ts repacks them).
//
// A b-bit code is sum_p 2^p bit_p, so a row's sum_k c_k x_k = sum_p 2^p sum_j T_j[idx_pj] where, for each
// quad of activations x_4j .. x_4j+3, T_j[idx] = sum of the x_4j+t whose bit t is set in idx, and idx_pj
// is the 4-bit pattern of plane p of the row's codes 4j .. 4j+3. One i8x16.swizzle looks up 16 entries.
//
// Activations ('lut8', act_lut): per block of 32 activations, eight 16-entry tables
//   T_f[idx] = fl(s01[idx & 3] + s23[idx >> 2]),  s01 = {0, x0, x1, fl(x0 + x1)}, s23 = {0, x2, x3, fl(x2 + x3)}
// quantized with one scale per block (T-MAC's table quantization): m = max |T_f|, dt = m / 127,
// Tq = clamp(roundTiesToEven(T_f * (1 / dt)), -127, 127); plus S15 = sum_j Tq_j[15] (the block's sum for
// zero points: a constant code c then gives exactly c * S15, so zero codes cancel exactly).
// Buffer: tables int8 [kp/32][8][16] | dt float32 [kp/32] | S15 int32 [kp/32].
// Error: every looked-up entry is off by at most dt / 2 (src/kernels/budget.ts states the bound).
//
// Weights, per tile of 16 rows and block of 32 columns (64 b bytes, exactly b bits per weight):
//   plane pairs (p, p+1) = (0, 1), (2, 3): for rows 8h .. 8h+7 (h = 0, 1) and quad pairs jj = 0..3, 16 bytes:
//     byte 2i + e = idx of row 8h + i, plane p + e; low nibble quad 2jj, high nibble quad 2jj + 1
//   a lone plane (b = 1: plane 0; b = 3: plane 2): for quad pairs jj = 0..3, 16 bytes:
//     byte i = idx of row i; low nibble quad 2jj, high nibble quad 2jj + 1
// so a swizzle of a paired vector returns (plane p, plane p+1) of 8 rows in adjacent lanes, and one
// i16x8.relaxed_dot_i8x16_i7x16_s with (2^p, 2^(p+1)) adds them with their plane weights.
// Tiles follow each other; a tile's blocks are contiguous (kp / 32 * 64 b bytes).
// Scales and zero codes: [tile][group][16 rows] (zero codes one byte each, or a constant).
#ifndef MIXQ_KERNELS_LUT_H
#define MIXQ_KERNELS_LUT_H
#include "common.h"
#include "sliced.h"

INLINE size_t lut_act_size(int kp) { return (size_t)kp / 32 * (128 + 8); }
EXPORT int32_t lut_act_bytes(int32_t kp) { return (int32_t)lut_act_size(kp); }

EXPORT void act_lut(int32_t x_, int32_t kp, int32_t out_) {
  const float* x = (const float*)(uintptr_t)x_;
  uint8_t* out = (uint8_t*)(uintptr_t)out_;
  const int nb = kp / 32;
  float* dt = (float*)(out + (size_t)nb * 128);
  int32_t* s15 = (int32_t*)(out + (size_t)nb * 132);
  const v128_t lim = wasm_i32x4_splat(127), nlim = wasm_i32x4_splat(-127);
  for (int b = 0; b < nb; b++) {
    v128_t T[8][4];
    v128_t m = wasm_f32x4_splat(0);
    for (int j = 0; j < 8; j++) {
      const float* q = x + 32 * b + 4 * j;
      const float s01 = q[0] + q[1], s23 = q[2] + q[3];
      const v128_t A = wasm_f32x4_make(0.0f, q[0], q[1], s01);
      const float B[4] = {0.0f, q[2], q[3], s23};
      for (int t = 0; t < 4; t++) {
        T[j][t] = wasm_f32x4_add(A, wasm_f32x4_splat(B[t]));
        m = wasm_f32x4_max(m, wasm_f32x4_abs(T[j][t]));
      }
    }
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
    m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
    const float d = wasm_f32x4_extract_lane(m, 0) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dt[b] = d;
    const v128_t vid = wasm_f32x4_splat(id);
    int32_t s = 0;
    for (int j = 0; j < 8; j++) {
      v128_t q[4];
      for (int t = 0; t < 4; t++) {
        v128_t v = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(T[j][t], vid)));
        q[t] = wasm_i32x4_max(wasm_i32x4_min(v, lim), nlim);
      }
      v128_t t8 = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[0], q[1]), wasm_i16x8_narrow_i32x4(q[2], q[3]));
      wasm_v128_store(out + (size_t)b * 128 + 16 * j, t8);
      s += wasm_i32x4_extract_lane(q[3], 3);
    }
    s15[b] = s;
  }
}

/** Plane-weighted sum of adjacent lanes (plane p in even lanes, p+1 in odd lanes): i16x8 of 8 rows. */
INLINE v128_t lut_pair(v128_t r, const int p) {
#if MIXQ_RELAXED
  const v128_t w = wasm_i16x8_splat((int16_t)((1 << p) | (2 << p) << 8));
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((i8x16_t)r, (i8x16_t)w);
#else
  // r0 + r1 from the pairwise add, plus the odd lane (r1) once more: r0 + 2 r1, times 2^p
  v128_t v = wasm_i16x8_add(wasm_i16x8_extadd_pairwise_i8x16(r), wasm_i16x8_shr(r, 8));
  return p ? wasm_i16x8_shl(v, p) : v;
#endif
}

/** 2^p (r0[i] + r1[i]) of rows i = 0..7 (lo) and 8..15 (hi): a lone plane's two lookups of 16 rows. */
INLINE void lut_lone(v128_t r0, v128_t r1, const int p, v128_t* lo, v128_t* hi) {
#if MIXQ_RELAXED
  // rows side by side (r0[i], r1[i]), then one dot with (2^p, 2^p): 6 operations instead of 8 to 10
  const v128_t w = wasm_i8x16_splat((int8_t)(1 << p));
  *lo = (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8(
      (i8x16_t)wasm_i8x16_shuffle(r0, r1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), (i8x16_t)w);
  *hi = (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8(
      (i8x16_t)wasm_i8x16_shuffle(r0, r1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), (i8x16_t)w);
#else
  v128_t l = wasm_i16x8_add(wasm_i16x8_extend_low_i8x16(r0), wasm_i16x8_extend_low_i8x16(r1));
  v128_t h = wasm_i16x8_add(wasm_i16x8_extend_high_i8x16(r0), wasm_i16x8_extend_high_i8x16(r1));
  *lo = p ? wasm_i16x8_shl(l, p) : l;
  *hi = p ? wasm_i16x8_shl(h, p) : h;
#endif
}

typedef struct {
  v128_t s[4];  // f32x4 scales of rows 0..15
  v128_t z[2];  // i16x8 zero codes of rows 0..7, 8..15
} lut_group;

INLINE lut_group lut_group_params(const wdesc* D, int tile, int g) {
  lut_group P;
  const size_t base = ((size_t)tile * D->ngroups + g) * 16;
  for (int q = 0; q < 4; q++) P.s[q] = scale4_at(D, base + 4 * q);
  if (D->zero_kind == ZERO_CONST) {
    P.z[0] = P.z[1] = wasm_i16x8_splat((int16_t)D->zc);
  } else {
    v128_t z8 = wasm_v128_load((const uint8_t*)(uintptr_t)D->zeros + base);
    P.z[0] = wasm_u16x8_extend_low_u8x16(z8);
    P.z[1] = wasm_u16x8_extend_high_u8x16(z8);
  }
  return P;
}

/**
 * The 16 fp16 scales of entries i .. i+15 (rows 0..15 of a tile's group) times u / 2^112 (u = 2^112: the
 * scales), 8 per load, converted in 16-bit lanes and interleaved into float32 bits sign | (h & 0x7fff) << 13
 * (low half h << 13, high half (h >> 3) & 0x8fff, the sign kept), whose value is exactly the scale times
 * 2^-112 (f16x4_to_f32's form; the sign goes into the exact product instead of being or-ed after it):
 * 16 operations for the 16 instead of 32. With u = d * 2^112 (exact for d <= 2^15) the one product is
 * the scale times d rounded once, as fl(s * d) is.
 */
INLINE void lut_scales16_f16(const wdesc* D, size_t i, v128_t s[4], v128_t u) {
  const uint8_t* p = (const uint8_t*)(uintptr_t)D->scales + 2 * i;
  const v128_t m = wasm_i16x8_splat((int16_t)0x8fff);
  for (int h = 0; h < 2; h++) {
    const v128_t x = wasm_v128_load(p + 16 * h);
    const v128_t lo = wasm_i16x8_shl(x, 13), hi = wasm_v128_and(wasm_i16x8_shr(x, 3), m);
    s[2 * h] = wasm_f32x4_mul(wasm_i16x8_shuffle(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11), u);
    s[2 * h + 1] = wasm_f32x4_mul(wasm_i16x8_shuffle(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15), u);
  }
}

/**
 * The 16 scales of entries i .. i+15 times the block's table scale d: fl(s * d) for every row. SK =
 * SCALE_F16 (known at compile time): lut_scales16_f16, with d folded into its multiplier when d <= 2^15
 * (always, but for activations whose tables exceed 2^15 * 127). Otherwise scale4_at, four at a time.
 */
INLINE void lut_scales16(const wdesc* D, size_t i, float d, v128_t s[4], const int SK) {
  if (SK == SCALE_F16 && d <= 0x1p15f) {
    lut_scales16_f16(D, i, s, wasm_f32x4_splat(d * F16_REBIAS));
    return;
  }
  if (SK == SCALE_F16) lut_scales16_f16(D, i, s, wasm_f32x4_splat(F16_REBIAS));
  else
    for (int q = 0; q < 4; q++) s[q] = scale4_at(D, i + 4 * q);
  const v128_t vd = wasm_f32x4_splat(d);
  for (int q = 0; q < 4; q++) s[q] = wasm_f32x4_mul(s[q], vd);
}

/**
 * One block's int16 sums of 16 rows x 32 columns (lut_tile, lut_tile_g32): rows 0..7 in *s0, 8..15 in *s1,
 * from the block's tables at tb and its B bit planes at w, less the zero point (ZB: the 16 zero codes at z,
 * else the constant zc, times s15). Quad pairs in a loop (V8 unrolls it twice): the four tables of two pairs
 * live at a time. Unrolled in the source, every load of the block is issued first (LLVM and V8 order them
 * so) and V8, with 15 vector registers, spills the tables and accumulators (measured 2-12% slower than this
 * loop).
 */
INLINE void lut_block_sums(const uint8_t* tb, const uint8_t* w, const uint8_t* z, int zc, int32_t s15, const int B,
                           const int ZB, v128_t* s0, v128_t* s1) {
  const v128_t m4 = wasm_i8x16_splat(15);
  v128_t a0 = ZB ? wasm_i16x8_splat(0) : wasm_i16x8_splat((int16_t)(-zc * s15)), a1 = a0;
#pragma clang loop unroll(disable)
  for (int jj = 0; jj < 4; jj++) {
    const v128_t T0 = wasm_v128_load(tb + 32 * jj), T1 = wasm_v128_load(tb + 32 * jj + 16);
    for (int pair = 0; pair < B / 2; pair++) {
      const v128_t v0 = wasm_v128_load(w + 128 * pair + 16 * jj);
      const v128_t v1 = wasm_v128_load(w + 128 * pair + 64 + 16 * jj);
      a0 = wasm_i16x8_add(a0, wasm_i16x8_add(lut_pair(swz16(T0, wasm_v128_and(v0, m4)), 2 * pair),
                                             lut_pair(swz16(T1, bits8(v0, 4, m4)), 2 * pair)));
      a1 = wasm_i16x8_add(a1, wasm_i16x8_add(lut_pair(swz16(T0, wasm_v128_and(v1, m4)), 2 * pair),
                                             lut_pair(swz16(T1, bits8(v1, 4, m4)), 2 * pair)));
    }
    if (B & 1) {
      const v128_t v = wasm_v128_load(w + 128 * (B / 2) + 16 * jj);
      v128_t lo, hi;
      lut_lone(swz16(T0, wasm_v128_and(v, m4)), swz16(T1, bits8(v, 4, m4)), B - 1, &lo, &hi);
      a0 = wasm_i16x8_add(a0, lo);
      a1 = wasm_i16x8_add(a1, hi);
    }
  }
  if (ZB) {
    const v128_t S = wasm_i16x8_splat((int16_t)s15), z8 = wasm_v128_load(z);
    a0 = wasm_i16x8_sub(a0, wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(z8), S));
    a1 = wasm_i16x8_sub(a1, wasm_i16x8_mul(wasm_u16x8_extend_high_u8x16(z8), S));
  }
  *s0 = a0;
  *s1 = a1;
}

/**
 * One tile (16 rows) against one activation table set: acc[4] (f32x4, rows 4q .. 4q+3) += ...
 * SK: the scale kind when known at compile time (SCALE_F16), else -1 (scale4_at reads it from the
 * descriptor); ZB: zero codes stored one byte each (1), or the constant D->zc (0).
 *
 * Per block of 32 columns: the quad pairs jj in a loop, each pair's two tables loaded where they are
 * used, both row halves (a0: rows 0..7, a1: rows 8..15) summed in int16 per pair; then the group's scales,
 * converted and multiplied by the block's table scale dt (every block: for groups of 32 a new group; for
 * larger groups the conversion, 16 operations, is redone rather than kept live through the block), and one
 * fmadd per four rows. A constant zero code starts the sums at -z * S15. The integer sums are exact in
 * int16 (|sum| <= 8 quads * 15 * 127 + 15 * 8 * 127 = 30480), so their order does not matter, and every
 * float operation is the one the kernel did before (fl(s * dt), then acc + sum * that): the same results,
 * bit for bit. Before (all eight tables and the group's parameters live, V8 spilling ~30 vectors per
 * block, the parameters converted four scales at a time), int2 g32 4096 x 4096, weights cold, same-process
 * A/B (best of 20-30, machine shared): 1 thread relaxed 0.71-0.73 ms against 0.52-0.53 now (1.36x),
 * SIMD128 0.94 against 0.68 (1.37x), 2 threads 0.39 against 0.30 (1.32x); weights in cache 0.60 against
 * 0.37-0.44. Cold, the time now follows the bytes read: with the 1 MiB of fp16 scales read from cache
 * (an experiment) 15% less.
 */
INLINE void lut_tile(const wdesc* D, int tile, const uint8_t* act, v128_t acc[4], const int B, const int SK,
                     const int ZB) {
  const int nb = D->kp / 32, G = D->group;
  const float* dt = (const float*)(act + (size_t)nb * 128);
  const int32_t* s15 = (const int32_t*)(act + (size_t)nb * 132);
  const uint8_t* w = (const uint8_t*)(uintptr_t)D->data + (size_t)tile * D->row_bytes;
  const size_t pbase = (size_t)tile * D->ngroups * 16;  // group g's 16 entries at pbase + 16 g
  const uint8_t* zp = (const uint8_t*)(uintptr_t)D->zeros;
  const int zc = D->zc;
  int g = 0, next = G;
  for (int b = 0; b < nb; b++, w += 64 * B) {
    if (32 * b == next) {
      if (g + 1 < D->ngroups) g++;
      next += G;
    }
    const uint8_t* tb = act + (size_t)b * 128;
    const size_t pi = pbase + 16 * (size_t)g;
    v128_t a0, a1;
    lut_block_sums(tb, w, zp + pi, zc, s15[b], B, ZB, &a0, &a1);
    v128_t sd[4];  // fl(s * dt) of rows 0..15
    lut_scales16(D, pi, dt[b], sd, SK);
    acc[0] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(a0)), sd[0], acc[0]);
    acc[1] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(a0)), sd[1], acc[1]);
    acc[2] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(a1)), sd[2], acc[2]);
    acc[3] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(a1)), sd[3], acc[3]);
  }
}

/** lut_tile_g32's constants: (2^13, 0), (0, 2^13) as i16x8, the high halves' mask, 2^96 as f32x4. */
static const int32_t LUT_G32_K[16] __attribute__((aligned(16))) = {
    0x2000,     0x2000,     0x2000,     0x2000,      // i16x8 (2^13, 0)
    0x20000000, 0x20000000, 0x20000000, 0x20000000,  // i16x8 (0, 2^13)
    -65536,     -65536,     -65536,     -65536,      // 0xffff0000
    0x6f800000, 0x6f800000, 0x6f800000, 0x6f800000}; // 2^96
/**
 * lut_tile for groups of 32 weights with fp16 scales whose sign bits are all clear (D->group == 32, every
 * block its own group; prepare records the signs): the same integer sums and the same float operations per
 * row, in fewer x64 instructions. The rows are held in even / odd order (acc[0]: rows 0, 2, 4, 6, acc[1]:
 * 1, 3, 5, 7, acc[2], acc[3]: the same of rows 8..15; put back in order at the end):
 * - a non-negative fp16 scale h becomes the float32 bits h << 13 (s 2^-112, f16x4_to_f32's form) in one
 *   i32x4.dot_i16x8_s of 8 scales with (2^13, 0) (even rows) or (0, 2^13) (odd rows): 4 operations for 16
 *   scales instead of lut_scales16_f16's 10;
 * - the int16 sums a go to float as a << 16 (even rows: i32 lanes shifted left, odd rows: the high halves
 *   masked), exact (|a| <= 30480 < 2^15), with the scales' multiplier d 2^96 instead of d 2^112: float(a
 *   << 16) * fl(s d 2^-16) is float(a) * fl(s d) exactly while s d 2^-16 is a normal float, true for 2^-60
 *   <= d <= 2^15 (s >= 2^-24 when s != 0). Blocks with d outside (0, tiny or huge activations, NaN) take
 *   lut_tile's conversion (lut_scales16, sign extension), rearranged into the same row order;
 * - no group bookkeeping: block b's 16 scales and zero codes follow block b - 1's; the constants loaded
 *   from LUT_G32_K (V8 rebuilt each, 2 x64 instructions, on every block).
 * V8's code per block of 16 rows x 32 columns: ~21 vector operations after the sums instead of ~33 (the
 * sums themselves, 72 for int2, are lut_tile's). Same-process A/B against lut_tile, 4096 x 4096 g32, 1
 * thread, relaxed: weights in cache int2 1.13-1.15x, int3 1.06-1.08x, int4 1.06-1.07x (SIMD128 1.03-1.07x);
 * weights cold only 1.01-1.04x: there ~20% of the time (cold 0.40-0.41 ms against 0.32 in cache, int2) is
 * waiting for memory that this loop does not overlap with its work.
 */
INLINE void lut_tile_g32(const wdesc* D, int tile, const uint8_t* act, v128_t acc[4], const int B, const int ZB) {
  const int nb = D->kp / 32;
  const uint32_t* dtb = (const uint32_t*)(act + (size_t)nb * 128);  // dt's bits
  const int32_t* s15 = (const int32_t*)(act + (size_t)nb * 132);
  const uint8_t* w = (const uint8_t*)(uintptr_t)D->data + (size_t)tile * D->row_bytes;
  const size_t pbase = (size_t)tile * nb * 16;  // block b's 16 entries at pbase + 16 b
  const uint8_t* zp = (const uint8_t*)(uintptr_t)D->zeros + pbase;
  const uint8_t* sp = (const uint8_t*)(uintptr_t)D->scales + 2 * pbase;
  const int zc = D->zc;
  // the constants from memory (a load each where V8 would rebuild them, 2 operations, on every block)
  const int32_t* K = LUT_G32_K;
  SL_OPAQUE(K);
  for (int b = 0; b < nb; b++, w += 64 * B, sp += 32) {
    const uint8_t* tb = act + (size_t)b * 128;
    const uint8_t* wb = w;
    SL_OPAQUE(tb);
    SL_OPAQUE(wb);
    v128_t a0, a1;
    lut_block_sums(tb, wb, zp + 16 * (size_t)b, zc, s15[b], B, ZB, &a0, &a1);
    // 2^-60 <= d <= 2^15 on the bits (d >= 0: its sign bit clear; a NaN's bits lie above 2^15's)
    if (dtb[b] - 0x21800000u <= 0x47000000u - 0x21800000u) {
      const uint32_t* db = dtb + b;  // a second load of dt, as a splat (LLVM would splat the scalar load)
      SL_OPAQUE(db);
      const v128_t u = wasm_f32x4_mul(wasm_v128_load32_splat(db), wasm_v128_load(K + 12));
      const v128_t ke = wasm_v128_load(K), ko = wasm_v128_load(K + 4), hm = wasm_v128_load(K + 8);
      const v128_t x0 = wasm_v128_load(sp), x1 = wasm_v128_load(sp + 16);
      acc[0] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_shl(a0, 16)), wasm_f32x4_mul(wasm_i32x4_dot_i16x8(x0, ke), u), acc[0]);
      acc[1] = fmadd(wasm_f32x4_convert_i32x4(wasm_v128_and(a0, hm)), wasm_f32x4_mul(wasm_i32x4_dot_i16x8(x0, ko), u), acc[1]);
      acc[2] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_shl(a1, 16)), wasm_f32x4_mul(wasm_i32x4_dot_i16x8(x1, ke), u), acc[2]);
      acc[3] = fmadd(wasm_f32x4_convert_i32x4(wasm_v128_and(a1, hm)), wasm_f32x4_mul(wasm_i32x4_dot_i16x8(x1, ko), u), acc[3]);
    } else {
      v128_t sd[4];  // fl(s * dt), rows 0..3, 4..7, 8..11, 12..15
      lut_scales16(D, pbase + 16 * (size_t)b, f32_from_bits(dtb[b]), sd, SCALE_F16);
      acc[0] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl(a0, 16), 16)),
                     wasm_i32x4_shuffle(sd[0], sd[1], 0, 2, 4, 6), acc[0]);
      acc[1] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(a0, 16)), wasm_i32x4_shuffle(sd[0], sd[1], 1, 3, 5, 7), acc[1]);
      acc[2] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl(a1, 16), 16)),
                     wasm_i32x4_shuffle(sd[2], sd[3], 0, 2, 4, 6), acc[2]);
      acc[3] = fmadd(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(a1, 16)), wasm_i32x4_shuffle(sd[2], sd[3], 1, 3, 5, 7), acc[3]);
    }
  }
  // even / odd rows back in order
  const v128_t e0 = acc[0], o0 = acc[1], e1 = acc[2], o1 = acc[3];
  acc[0] = wasm_i32x4_shuffle(e0, o0, 0, 4, 1, 5);
  acc[1] = wasm_i32x4_shuffle(e0, o0, 2, 6, 3, 7);
  acc[2] = wasm_i32x4_shuffle(e1, o1, 0, 4, 1, 5);
  acc[3] = wasm_i32x4_shuffle(e1, o1, 2, 6, 3, 7);
}

/** Stores the rows of a tile that lie in [r0, r1). */
INLINE void lut_store(float* y, int tile, int r0, int r1, const v128_t acc[4]) {
  for (int q = 0; q < 4; q++) {
    const int r = 16 * tile + 4 * q;
    if (r + 3 < r0 || r >= r1) continue;
    float v[4] = {wasm_f32x4_extract_lane(acc[q], 0), wasm_f32x4_extract_lane(acc[q], 1),
                  wasm_f32x4_extract_lane(acc[q], 2), wasm_f32x4_extract_lane(acc[q], 3)};
    for (int i = 0; i < 4; i++)
      if (r + i >= r0 && r + i < r1) y[r + i] = v[i];
  }
}

/** Tile t against one activation table set, stored for the rows of [r0, r1). One instance per width,
 * scale kind (fp16, or any other read from the descriptor) and zero kind (constant, bytes); fp16 scales
 * in groups of 32 with clear sign bits take lut_tile_g32. */
#define LUT_TILE_FN(B, SK, ZB, NAME)                                                                     \
  static __attribute__((noinline)) void NAME(const wdesc* D, int t, const uint8_t* act, float* y, int r0, int r1) { \
    v128_t acc[4] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0)}; \
    if (SK == SCALE_F16 && D->group == 32 && D->ngroups == D->kp / 32 && D->scale_nonneg) lut_tile_g32(D, t, act, acc, B, ZB); \
    else lut_tile(D, t, act, acc, B, SK, ZB);                                                          \
    lut_store(y, t, r0, r1, acc);                                                                       \
  }
#define LUT_TILE_FNS(B)                                \
  LUT_TILE_FN(B, SCALE_F16, 0, lut_tile_store_##B##_hc) \
  LUT_TILE_FN(B, SCALE_F16, 1, lut_tile_store_##B##_hb) \
  LUT_TILE_FN(B, -1, 0, lut_tile_store_##B##_c)         \
  LUT_TILE_FN(B, -1, 1, lut_tile_store_##B##_b)
LUT_TILE_FNS(1)
LUT_TILE_FNS(2)
LUT_TILE_FNS(3)
LUT_TILE_FNS(4)
typedef void (*lut_tile_fn)(const wdesc*, int, const uint8_t*, float*, int, int);
/** The tile function of a weight (its width, scale kind, zero kind). */
INLINE lut_tile_fn lut_tile_store(const wdesc* D) {
  static const lut_tile_fn fns[4][4] = {
      {lut_tile_store_1_hc, lut_tile_store_1_hb, lut_tile_store_1_c, lut_tile_store_1_b},
      {lut_tile_store_2_hc, lut_tile_store_2_hb, lut_tile_store_2_c, lut_tile_store_2_b},
      {lut_tile_store_3_hc, lut_tile_store_3_hb, lut_tile_store_3_c, lut_tile_store_3_b},
      {lut_tile_store_4_hc, lut_tile_store_4_hb, lut_tile_store_4_c, lut_tile_store_4_b},
  };
  const int b = D->bits < 1 ? 1 : D->bits > 4 ? 4 : D->bits;
  return fns[b - 1][(D->scale_kind == SCALE_F16 ? 0 : 2) + (D->zero_kind != ZERO_CONST)];
}

/** Matrix x vector on lookup tables; rows [r0, r1) (whole tiles are computed, rows outside not stored). */
EXPORT void mv_lut(int32_t desc, int32_t act, int32_t y, int32_t r0, int32_t r1) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const lut_tile_fn f = lut_tile_store(D);
  for (int t = r0 / 16; 16 * t < r1; t++) f(D, t, (const uint8_t*)(uintptr_t)act, (float*)(uintptr_t)y, r0, r1);
}

/** Matrix x matrix on lookup tables: every activation row against a tile while it is in cache. */
EXPORT void mm_lut(int32_t desc, int32_t act, int32_t as, int32_t nb, int32_t y, int32_t ys, int32_t r0, int32_t r1,
                   int32_t scratch) {
  (void)scratch;
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const lut_tile_fn f = lut_tile_store(D);
  for (int t = r0 / 16; 16 * t < r1; t++)
    for (int j = 0; j < nb; j++)
      f(D, t, (const uint8_t*)(uintptr_t)act_at(act, as, j), (float*)(uintptr_t)y + (size_t)j * ys, r0, r1);
}

// ---- int8 activations on the same weights: the tile's codes are unpacked, then sliced.h's kernel ----

/** Bit t of a byte moved to bit 0 of byte t (one nibble pair, two quads, becomes 8 columns). The four
 * shifted copies of a nibble (shifts 0, 7, 14, 21) do not overlap, so the product has no carries. */
INLINE uint64_t lut_spread(uint32_t b) {
  const uint32_t lo = ((b & 15u) * 0x00204081u) & 0x01010101u, hi = ((b >> 4) * 0x00204081u) & 0x01010101u;
  return (uint64_t)lo | ((uint64_t)hi << 32);
}

/** Unpacks rows 4q .. 4q+3 of a tile into sliced.h's int8 scratch (codes [4][kp], group parameters). */
static void lut_unpack4(const wdesc* D, int tile, int q, uint8_t* codes, sl_group4* gp) {
  const int B = D->bits, kp = D->kp;
  const uint8_t* tp = (const uint8_t*)(uintptr_t)D->data + (size_t)tile * D->row_bytes;
  for (int i4 = 0; i4 < 4; i4++) {
    const int i = 4 * q + i4;
    uint8_t* out = codes + (size_t)i4 * kp;
    for (int blk = 0; blk < kp / 32; blk++) {
      const uint8_t* w = tp + (size_t)blk * 64 * B;
      for (int jj = 0; jj < 4; jj++) {
        uint64_t c = 0;
        for (int p = 0; p < B; p++) {
          const uint8_t byte = p < 2 * (B / 2) ? w[128 * (p >> 1) + 64 * (i >> 3) + 16 * jj + 2 * (i & 7) + (p & 1)]
                                               : w[128 * (B / 2) + 16 * jj + i];
          c |= lut_spread(byte) << p;
        }
        __builtin_memcpy(out + 32 * blk + 8 * jj, &c, 8);
      }
    }
  }
  for (int g = 0; g < D->ngroups; g++) {
    lut_group P = lut_group_params(D, tile, g);
    gp[g].s = P.s[q];
    v128_t z = P.z[q >> 1];
    gp[g].z = (q & 1) ? wasm_i32x4_extend_high_i16x8(z) : wasm_i32x4_extend_low_i16x8(z);
    gp[g].o = wasm_f32x4_splat(0);
  }
}

/** int8-activation matrix x matrix (and vector, nb = 1) on lookup-table weights. */
EXPORT void mm_lut_q8(int32_t desc, int32_t act, int32_t as, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                      int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  uint8_t* codes = (uint8_t*)(uintptr_t)scratch;
  sl_group4* gp = (sl_group4*)(codes + 4 * (size_t)D->kp);
  for (int r = r0; r < r1; r += 4) {
    lut_unpack4(D, r / 16, (r % 16) / 4, codes, gp);
    mm_sl_q8_micro(D, codes, gp, act, as, nb, (float*)(uintptr_t)y, ys, r, r1 - 1, DK_U4, 0);
  }
}
EXPORT void mv_lut_q8(int32_t desc, int32_t act, int32_t y, int32_t r0, int32_t r1, int32_t scratch) {
  mm_lut_q8(desc, act, 0, 1, y, 0, r0, r1, scratch);
}
#endif

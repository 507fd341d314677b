// mixq's own formats (src/kernels/sliced.ts repacks them at load): b-bit codes (b = 1..8) of integer,
// float or codebook elements with one scale per group of G weights along K (G = 16, a multiple of 32, or the
// whole row), optional zero codes (integers) or f16 offsets (tables).
//
// "Sliced" layout: each row is kp / 128 blocks of 16 * b bytes; a block holds the codes of 128 consecutive
// weights split into a 4-bit part (b >= 4), a 2-bit part (b = 2, 3, 6, 7) and a 1-bit part (b odd), so
// that 16 consecutive codes come out of one 16-byte load with a shift and a mask:
//   nibble part, 64 B: weight 16t + i (t = 0..7, i = 0..15) in byte 16(t >> 1) + i, nibble t & 1
//   crumb part,  32 B: weight 16t + i in byte 16(t >> 2) + i, bits 2(t & 3)
//   bit part,    16 B: weight 16t + i in byte i, bit t
//   code = nibble | crumb << 4 | bit << 6  (b = 7), nibble | crumb << 4 (6), nibble | bit << 4 (5),
//          nibble (4), crumb | bit << 2 (3), crumb (2), bit (1); b = 8: 128 plain bytes.
// Bytes per row: kp * b / 8, exactly the stored size when K is a multiple of 128. Weights with an int8 path
// hold their full 4-row tiles interleaved (desc.interleave = 4, "4-row interleaved tiles" below).
//
// Decoded weight (what the float32 path multiplies; src/quant fakeQuant, bit for bit):
//   int:   s * (c - z)                 (c - z exact in float32)
//   float: s * F(c)  [+ o]             F by moving the code's fields into float32's (exact, checked at load)
//   lut4:  s * T[c]  [+ o]             T from four byte-plane tables (b <= 4)
//   table: s * T[c]  [+ o]             T from the float32 table, one code at a time (other tables)
// int8 path: sum over a 32-block of (c' - z') * q with c' = c (int) or qtable[c] (tables with integer values
// times qunit, shifted by qoffset to be non-negative), then * (s * qunit) * d_x (+ o * d_x * sum q).
#ifndef MIXQ_KERNELS_SLICED_H
#define MIXQ_KERNELS_SLICED_H
#include "common.h"

/**
 * (v >> s) & mask moved to bit `pos` of each byte (mask: `width` bits at pos), with one 16-bit shift: the
 * bits a 16-bit shift brings in from the neighbouring byte (the top s bits for a right shift, the low bits
 * for a left one) lie outside the mask for every part of the sliced layout (pos + width <= 8 - (s - pos)).
 */
INLINE v128_t sl_part(v128_t v, int s, int pos, v128_t mask) {
  if (s > pos) v = wasm_u16x8_shr(v, s - pos);
  else if (s < pos) v = wasm_i16x8_shl(v, pos - s);
  return wasm_v128_and(v, mask);
}

/**
 * Codes of weights 32m .. 32m+15 (c0) and 32m+16 .. 32m+31 (c1) of the 128-weight block at `blk` whose
 * 16-byte vectors (4 of nibbles, 2 of crumbs, 1 of bits; 8 plain for b = 8) lie S bytes apart: S = 16 as
 * stored, S = 64 in an interleaved tile (below), where the same shifts and masks give the four rows' codes.
 */
INLINE void sl_codes32s(const uint8_t* blk, const int m, const int B, const int S, v128_t* c0, v128_t* c1) {
  if (B == 8) {
    *c0 = wasm_v128_load(blk + S * 2 * m);
    *c1 = wasm_v128_load(blk + S * (2 * m + 1));
    return;
  }
  const int nib = B >= 4, crumb = B == 2 || B == 3 || B == 6 || B == 7, bit = B & 1;
  const uint8_t* pc = blk + (nib ? 4 * S : 0);
  const uint8_t* pb = pc + (crumb ? 2 * S : 0);
  v128_t a = wasm_i8x16_splat(0), b = a;
  int pos = 0;
  if (nib) {
    v128_t v = wasm_v128_load(blk + S * m);
    const v128_t m4 = wasm_i8x16_splat(15);
    a = wasm_v128_and(v, m4);
    b = bits8(v, 4, m4);
    pos = 4;
  }
  if (crumb) {
    v128_t v = wasm_v128_load(pc + S * (m >> 1));
    const int s0 = 4 * (m & 1), s1 = s0 + 2;  // t = 2m, 2m + 1 -> bits 2(t & 3)
    const v128_t m3 = wasm_i8x16_splat((int8_t)(3 << pos));
    v128_t x0 = sl_part(v, s0, pos, m3), x1 = sl_part(v, s1, pos, m3);
    a = pos ? wasm_v128_or(a, x0) : x0;
    b = pos ? wasm_v128_or(b, x1) : x1;
    pos += 2;
  }
  if (bit) {
    v128_t v = wasm_v128_load(pb);
    const int t0 = 2 * m, t1 = 2 * m + 1;
    const v128_t m1 = wasm_i8x16_splat((int8_t)(1 << pos));
    v128_t x0 = sl_part(v, t0, pos, m1), x1 = sl_part(v, t1, pos, m1);
    a = pos ? wasm_v128_or(a, x0) : x0;
    b = pos ? wasm_v128_or(b, x1) : x1;
  }
  *c0 = a;
  *c1 = b;
}
INLINE void sl_codes32(const uint8_t* blk, const int m, const int B, v128_t* c0, v128_t* c1) {
  sl_codes32s(blk, m, B, 16, c0, c1);
}

// ---- 4-row interleaved tiles (desc.interleave = 4, made at load by src/kernels/sliced.ts) ----
// Same size as stored: the 4 * row_bytes bytes of a full tile of rows r .. r+3 (r a multiple of 4, r + 4 <=
// rows) hold, per block blk, a group of 64 b bytes at 64 b blk in which the 16-byte vector v (0 .. b-1) of
// row i's stored block is cut into four 4-byte pieces, piece j at 64 v + 16 j + 4 i. So the group is a
// stored block with its vectors 64 bytes apart (sl_codes32s, S = 64) four times over (j = 0..3, at 16 j):
// the codes of group position j hold weights 16 t + 4 j .. 16 t + 4 j + 3 of row i in bytes 4 i .. 4 i + 3,
// and their dot with those four activations (one 32-bit splat) lands row i in i16 lanes 2 i, 2 i + 1 (or
// i32 lanes i, i + 1 of the widened halves): a 32- or 16-weight step ends as [row 0..3] i32x4 with no
// horizontal sum. A last tile of fewer than 4 rows stays as stored. The kernels that decode a block of the
// four rows to vectors of one row (float32 path, matrix x matrix, generic int8 path) decode the group as it
// lies and transpose 32-bit lanes (sl_tile_block); the reference (sliced.ts storedSlicedRow) undoes the
// layout row by row.

/** Whether the tile of rows r .. r+3 is interleaved. */
INLINE int sl_il_tile(const wdesc* D, int r) { return D->interleave == 4 && r + 4 <= D->rows; }


/**
 * Lookup of 16 indices known to lie in 0..15: i8x16.relaxed_swizzle in the relaxed build (one pshufb on x64;
 * the plain swizzle must zero indices >= 16, which costs V8 a saturating add and a constant load per call),
 * i8x16.swizzle otherwise. The same result for such indices on every engine.
 */
INLINE v128_t swz16(v128_t table, v128_t idx) {
#if MIXQ_RELAXED
  return (v128_t)__builtin_wasm_relaxed_swizzle_i8x16((i8x16_t)table, (i8x16_t)idx);
#else
  return wasm_i8x16_swizzle(table, idx);
#endif
}

/** Codes through a table of 2^B int8 entries held as nt = 2^B / 16 vectors (B <= 6). */
INLINE v128_t sl_qlookup(v128_t c, const v128_t* T, const int B) {
  if (B <= 4) return swz16(T[0], c);
  v128_t v = wasm_i8x16_swizzle(T[0], c);
  for (int t = 1; t < (1 << B) / 16; t++)
    v = wasm_v128_or(v, wasm_i8x16_swizzle(T[t], wasm_i8x16_sub(c, wasm_i8x16_splat(16 * t))));
  return v;
}

/**
 * Group position j of the 32-weight step m of an interleaved tile's block group gp (sl_codes32s, S = 64):
 * c0 holds weights 32 m + 4 j .., c1 weights 32 m + 16 + 4 j .. of the four rows, through the int8 table
 * when TBL.
 */
INLINE void sl_il_codes(const uint8_t* gp, int j, int m, const int B, const int TBL, const v128_t* T, v128_t* c0,
                        v128_t* c1) {
  sl_codes32s(gp + 16 * j, m, B, 64, c0, c1);
  if (TBL) {
    *c0 = sl_qlookup(*c0, T, B);
    *c1 = sl_qlookup(*c1, T, B);
  }
}

/** The same with the table width at run time. */
INLINE v128_t sl_qlookup_n(v128_t c, const v128_t* T, int B) {
  if (B <= 4) return swz16(T[0], c);
  v128_t v = wasm_i8x16_swizzle(T[0], c);
  if (B >= 5) v = wasm_v128_or(v, wasm_i8x16_swizzle(T[1], wasm_i8x16_sub(c, wasm_i8x16_splat(16))));
  if (B >= 6) {
    v = wasm_v128_or(v, wasm_i8x16_swizzle(T[2], wasm_i8x16_sub(c, wasm_i8x16_splat(32))));
    v = wasm_v128_or(v, wasm_i8x16_swizzle(T[3], wasm_i8x16_sub(c, wasm_i8x16_splat(48))));
  }
  return v;
}
INLINE void sl_load_qtable(const wdesc* D, v128_t T[4]) {
  for (int t = 0; t < 4; t++)
    T[t] = D->elem != ELEM_INT && 16 * t < (1 << D->bits)
               ? wasm_v128_load((const uint8_t*)(uintptr_t)D->qtable + 16 * t)
               : wasm_i8x16_splat(0);
}

// dot kinds of the int8 path (compile-time). DK_U4: codes 0..15, partial sums folded in int16
// (sl_hsum4_i16) for 16- and 32-weight steps; DK_U5: codes 0..32, folded for 16-weight steps (8 products of
// 32 x 127 per lane; interleaved tiles: every 4 dots, sl_il_add), as DK_U6 for 32-weight steps of stored
// tiles.
enum { DK_U6 = 0, DK_U7 = 1, DK_S8 = 2, DK_FULL8 = 3, DK_U4 = 4, DK_U5 = 5 };

/** i32x4 partial sums of 32 codes (after table / sign handling) times activations k .. k+31. */
INLINE v128_t sl_dot32(v128_t c0, v128_t c1, const actq* A, int k, const int DK) {
  if (DK == DK_U6 || DK == DK_U4 || DK == DK_U5) return dot32_u6(c0, c1, A, k);
  if (DK == DK_U7) return dot32_u7(c0, c1, A, k);
  const v128_t flip = wasm_i8x16_splat((int8_t)0x80);  // 8-bit codes: c - 128 as int8
  c0 = wasm_v128_xor(c0, flip);
  c1 = wasm_v128_xor(c1, flip);
  if (DK == DK_S8) return wasm_i32x4_add(dot16_s8(c0, A, k), dot16_s8(c1, A, k + 16));
  return wasm_i32x4_add(dot16_i8_wide(c0, A, k), dot16_i8_wide(c1, A, k + 16));
}
INLINE v128_t sl_dot16(v128_t c, const actq* A, int k, const int DK) {
  if (DK == DK_U6 || DK == DK_U7 || DK == DK_U4 || DK == DK_U5) return dot16_u7(c, A, k);
  c = wasm_v128_xor(c, wasm_i8x16_splat((int8_t)0x80));
  return DK == DK_S8 ? dot16_s8(c, A, k) : dot16_i8_wide(c, A, k);
}

/** The same with the dot kind at run time. */
INLINE v128_t sl_dot16_rt(v128_t c, const actq* A, int k, int DK) {
  switch (DK) {
    case DK_U6:
    case DK_U7: return sl_dot16(c, A, k, DK_U7);
    case DK_S8: return sl_dot16(c, A, k, DK_S8);
    default: return sl_dot16(c, A, k, DK_FULL8);
  }
}

/**
 * i16x8 partial sums of 16 codes times activations k .. k+15, each lane two products (relaxed: the i16 dot;
 * SIMD128: i16 products of the widened codes and qs16). Exact for codes 0..15 (|product| <= 1905).
 */
INLINE v128_t sl_dot16_i16(v128_t c, const actq* A, int k) {
#if MIXQ_RELAXED
  return rdot16(c, wasm_v128_load(A->qs + k));
#else
  return wasm_i16x8_add(wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(c), wasm_v128_load(A->qs16 + k)),
                        wasm_i16x8_mul(wasm_u16x8_extend_high_u8x16(c), wasm_v128_load(A->qs16 + k + 8)));
#endif
}
/**
 * [sum a, sum b, sum c, sum d] of four i16x8 as i32x4, folding in i16 first (two shuffle levels, one
 * widening instead of four): exact while any four lanes of an input sum within int16 (32-weight steps: 4
 * products per lane of codes 0..15 and |q| <= 127, 16 * 15 * 127 = 30480; 16-weight steps: 2 products per
 * lane of codes 0..32, 8 * 32 * 127 = 32512).
 */
INLINE v128_t sl_hsum4_i16(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_i16x8_add(wasm_i16x8_shuffle(a, b, 0, 1, 2, 3, 8, 9, 10, 11),
                                   wasm_i16x8_shuffle(a, b, 4, 5, 6, 7, 12, 13, 14, 15));
  const v128_t cd = wasm_i16x8_add(wasm_i16x8_shuffle(c, d, 0, 1, 2, 3, 8, 9, 10, 11),
                                   wasm_i16x8_shuffle(c, d, 4, 5, 6, 7, 12, 13, 14, 15));
  const v128_t s = wasm_i16x8_add(wasm_i16x8_shuffle(ab, cd, 0, 1, 4, 5, 8, 9, 12, 13),
                                  wasm_i16x8_shuffle(ab, cd, 2, 3, 6, 7, 10, 11, 14, 15));
  return wasm_i32x4_extadd_pairwise_i16x8(s);
}

/** [sum row a, b, c, d] of a 32-weight step (codes a0 a1 .. d0 d1 against activations k .. k+31). */
INLINE v128_t sl_sum4x32(const v128_t w[4][2], const actq* A, int k, const int DK) {
  if (DK == DK_U4) {
    v128_t h[4];
    for (int i = 0; i < 4; i++) h[i] = wasm_i16x8_add(sl_dot16_i16(w[i][0], A, k), sl_dot16_i16(w[i][1], A, k + 16));
    return sl_hsum4_i16(h[0], h[1], h[2], h[3]);
  }
  return hsum4_i32(sl_dot32(w[0][0], w[0][1], A, k, DK), sl_dot32(w[1][0], w[1][1], A, k, DK),
                   sl_dot32(w[2][0], w[2][1], A, k, DK), sl_dot32(w[3][0], w[3][1], A, k, DK));
}
/** The same for a 16-weight step. */
INLINE v128_t sl_sum4x16(const v128_t w[4], const actq* A, int k, const int DK) {
  if (DK == DK_U4 || DK == DK_U5)
    return sl_hsum4_i16(sl_dot16_i16(w[0], A, k), sl_dot16_i16(w[1], A, k), sl_dot16_i16(w[2], A, k),
                        sl_dot16_i16(w[3], A, k));
  return hsum4_i32(sl_dot16(w[0], A, k, DK), sl_dot16(w[1], A, k, DK), sl_dot16(w[2], A, k, DK),
                   sl_dot16(w[3], A, k, DK));
}

/** Per-group parameters of the four rows of a tile. */
typedef struct {
  v128_t s;  // f32x4 scale (times qunit on the int8 path)
  v128_t z;  // i32x4 zero code (int8 path: zero code minus 128 for 8-bit codes; qoffset for tables)
  v128_t o;  // f32x4 additive offset (tables, asymmetric)
} sl_group4;

/**
 * acc + (S - z * sq) * (s * dx) [+ o * dx * sq]: a step's integer sums S of the tile's four rows (sq the
 * step's activation sum, dx its activation scale) scaled into the float32 accumulator.
 */
INLINE v128_t sl_scale_step(v128_t acc, v128_t S, const sl_group4* P, int32_t sq, float dx, int hasoff) {
  S = wasm_i32x4_sub(S, wasm_i32x4_mul(P->z, wasm_i32x4_splat(sq)));
  acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(P->s, wasm_f32x4_splat(dx)), acc);
  if (hasoff) acc = fmadd(P->o, wasm_f32x4_splat(dx * (float)sq), acc);
  return acc;
}

/** Parameters of the four rows of a tile at entry i (param_index of its first row). */
INLINE sl_group4 sl_group_params_at(const wdesc* D, size_t i, int q8, const int B) {
  sl_group4 P;
  P.s = scale4_at(D, i);
  if (q8 && D->elem != ELEM_INT) P.s = wasm_f32x4_mul(P.s, wasm_f32x4_splat(D->qunit));
  const int zb = q8 && B == 8 && D->elem == ELEM_INT ? 128 : 0;
  if (D->elem != ELEM_INT)
    P.z = wasm_i32x4_splat(q8 ? D->qoffset : 0);
  else
    P.z = wasm_i32x4_sub(zero4_at(D, i), wasm_i32x4_splat(zb));
  P.o = D->offsets ? offset4_at(D, i) : wasm_f32x4_splat(0);
  return P;
}
/**
 * int8 path of E4M3 scales (NVFP4), tables: one float32 factor F = 2^120 * tensor scale * qunit, so that a
 * group's four scales are their bits moved into float32's fields times F (one multiplication instead of
 * scale4_at's two and sl_group_params_at's third). The same float32 result when qunit is a power of two
 * (E2M1's 1/2) and F neither overflows nor is subnormal: the exact product m 2^120 ts (m 2^120 is exact)
 * is rounded once either way and the power-of-two factor is exact. 0 when that does not hold.
 */
INLINE float sl_e4m3_factor(const wdesc* D) {
  if (D->scale_kind != SCALE_E4M3 || D->elem == ELEM_INT || D->offsets) return 0.0f;
  const union { float f; uint32_t u; } q = {D->qunit};
  const double F = (double)D->tensor_scale * 0x1p120 * (double)D->qunit, a = F < 0 ? -F : F;
  if ((q.u & 0x7fffff) || !((q.u >> 23) & 255) || !(a >= 0x1p-100 && a <= 0x1p126)) return 0.0f;
  return (float)F;  // exact: tensor_scale times powers of two, in float32's normal range
}
/** The four E4M3 scales of entry i times F (sl_e4m3_factor): sl_group_params_at's scale, one multiplication. */
INLINE v128_t sl_e4m3x4(const wdesc* D, size_t i, float F) {
  const v128_t c = widen4_u8(wasm_v128_load32_zero((const uint8_t*)(uintptr_t)D->scales + i));
  const v128_t m = wasm_v128_or(wasm_i32x4_shl(wasm_v128_and(c, wasm_i32x4_splat(0x7f)), 20),
                                wasm_i32x4_shl(wasm_v128_and(c, wasm_i32x4_splat(0x80)), 24));
  return wasm_f32x4_mul(m, wasm_f32x4_splat(F));
}

/** Parameters of group g of the tile at row r (r a multiple of 4: the executors split there). */
INLINE sl_group4 sl_group_params(const wdesc* D, int r, int g, int q8, const int B) {
  return sl_group_params_at(D, param_index(D, r, g), q8, B);
}

INLINE void sl_tile(const wdesc* D, int r, int last, int rr[4], const uint8_t* p[4]) {
  tile_rows(r, last, rr);
  for (int i = 0; i < 4; i++) p[i] = (const uint8_t*)(uintptr_t)D->data + (size_t)rr[i] * D->row_bytes;
}

/**
 * A running [row 0..3] integer sum of interleaved code vectors (sl_il_add: 16 codes, four per row, against
 * the four activations at k .. k+3). Relaxed: i16 dots of the codes (7-bit operand) with the 32-bit
 * activation splat, folded to i32 every `per` dots while exact (per lane 2 products per dot: codes 0..15
 * and |q| <= 127: 8 dots, 16 * 15 * 127 = 30480; 0..32: 4 dots, 8 * 32 * 127 = 32512; 0..63: 2 dots,
 * 4 * 63 * 127 = 32004; 0..127: 1 dot). SIMD128 and 8-bit codes: the codes widened to i16 (rows 0, 1 low,
 * 2, 3 high), i32x4.dot_i16x8_s with the four widened activations splat twice, lane pairs added at the end.
 * Codes are added as they are decoded (few vectors live: V8 keeps them in registers).
 */
typedef struct {
  v128_t s16, s32, lo, hi;
  int n;
} sl_ilacc;
INLINE sl_ilacc sl_il_zero(void) {
  const v128_t z = wasm_i32x4_splat(0);
  sl_ilacc a = {z, z, z, z, 0};
  return a;
}
INLINE void sl_il_add(sl_ilacc* a, v128_t c, const actq* A, int k, const int DK) {
#if MIXQ_RELAXED
  if (DK == DK_U4 || DK == DK_U5 || DK == DK_U6 || DK == DK_U7) {
    const int per = DK == DK_U4 ? 8 : DK == DK_U5 ? 4 : DK == DK_U6 ? 2 : 1;
    a->s16 = wasm_i16x8_add(a->s16, rdot16(c, wasm_v128_load32_splat(A->qs + k)));
    if (++a->n == per) {
      a->s32 = wasm_i32x4_add(a->s32, wasm_i32x4_extadd_pairwise_i16x8(a->s16));
      a->s16 = wasm_i16x8_splat(0);
      a->n = 0;
    }
    return;
  }
#endif
  const int sgn = DK == DK_S8 || DK == DK_FULL8;
  if (sgn) c = wasm_v128_xor(c, wasm_i8x16_splat((int8_t)0x80));
  const v128_t xv = wasm_v128_load64_splat(A->qs16 + k);
  const v128_t cl = sgn ? wasm_i16x8_extend_low_i8x16(c) : wasm_u16x8_extend_low_u8x16(c);
  const v128_t ch = sgn ? wasm_i16x8_extend_high_i8x16(c) : wasm_u16x8_extend_high_u8x16(c);
  a->lo = wasm_i32x4_add(a->lo, wasm_i32x4_dot_i16x8(cl, xv));
  a->hi = wasm_i32x4_add(a->hi, wasm_i32x4_dot_i16x8(ch, xv));
}
/** The [row 0..3] i32x4 of a running sum. */
INLINE v128_t sl_il_total(const sl_ilacc* a, const int DK) {
#if MIXQ_RELAXED
  if (DK == DK_U4 || DK == DK_U5 || DK == DK_U6 || DK == DK_U7)
    return a->n ? wasm_i32x4_add(a->s32, wasm_i32x4_extadd_pairwise_i16x8(a->s16)) : a->s32;
#endif
  return wasm_i32x4_add(wasm_i32x4_shuffle(a->lo, a->hi, 0, 2, 4, 6), wasm_i32x4_shuffle(a->lo, a->hi, 1, 3, 5, 7));
}

/**
 * A group's parameters in an interleaved tile, entry i: with the scale kind SK known at compile time (-1:
 * read from the descriptor) the scale is one load and conversion, zero codes and offsets are reread only
 * when they vary (runtime flags zvar / hasoff, the same for the whole weight); F: sl_e4m3_factor. The same
 * values as sl_group_params_at.
 */
INLINE void sl_il_params(const wdesc* D, size_t i, sl_group4* P, const int SK, const int B, const int TBL,
                         int zvar, int hasoff, float F) {
  if (SK < 0) {
    *P = sl_group_params_at(D, i, 1, B);
    return;
  }
  const uint8_t* sp = (const uint8_t*)(uintptr_t)D->scales;
  if (SK == SCALE_E4M3 && F != 0.0f) {
    P->s = sl_e4m3x4(D, i, F);
  } else {
    if (SK == SCALE_F16) P->s = f16x4_to_f32(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(sp + 2 * i)));
    else if (SK == SCALE_F32) P->s = wasm_v128_load(sp + 4 * i);
    else P->s = scale4_at(D, i);
    if (TBL) P->s = wasm_f32x4_mul(P->s, wasm_f32x4_splat(D->qunit));
  }
  if (zvar) P->z = wasm_i32x4_sub(zero4_at(D, i), wasm_i32x4_splat(B == 8 ? 128 : 0));
  if (hasoff) P->o = offset4_at(D, i);
}

/**
 * A store of the accumulator to a volatile stack slot after each 32-weight step of an unrolled block: an
 * effect V8's TurboFan must keep between the step's loads and the next step's. TurboFan schedules pure
 * operations as late as their uses allow, so without it the codes, activation splats and products of a
 * block's four steps are live together and spill (V8's x64 code: ~15 stack moves per step); with it each
 * step's work stays in registers (int4 g32 4096 x 4096, cold weights, 1 thread: 1.2x, both variants).
 */
INLINE void sl_step_fence(v128_t acc) {
  __attribute__((unused)) volatile v128_t sink = acc;
}

/**
 * Makes pointer p opaque to LLVM's loop optimizations (an empty asm statement) where a loop body loads from
 * it at constant offsets: they stay the loads' memarg offsets, which V8 folds into the x64 addresses. Left
 * alone, loop strength reduction moves the pointers so that most offsets are negative, and V8 adds each
 * with an instruction of its own before the load (a wasm address is index + offset as unsigned 32 bits).
 * Not for the activations' load splats: V8 computes such a load's memory start + offset outside the loop,
 * a register for each, and reloads them from the stack (measured: no faster than the extra adds).
 */
#define SL_OPAQUE(p) __asm__("" : "+r"(p))
// SL_OPAQUE on a vector hides it from LLVM the same way: widening conversions before it stay V8's single
// instructions (pmovzx / pmovsx) instead of byte shuffles whose constant V8 rebuilds on every use.

/**
 * Per step of the activations, what sl_il_tile_q8_g32 reads (mv_sl_q8_impl fills it in the scratch, sl_steps_fill):
 * zsq[u] the zero code (tables: qoffset) times the activation sum of step u (32 weights; 16 for SLF_E4M3),
 * splat (the int32 sl_scale_step computes); dx[t] the activation scale of 32-weight step t times a power of
 * two the scales' form needs (sl_fast_kind), exact (checked when filled).
 */
typedef struct {
  const v128_t* zsq;
  const float* dx;
} sl_steps;

// Scale forms of sl_il_tile_q8_g32 (compile time; mv_sl_q8_impl picks one per weight, sl_fast_kind):
// SLF_F16   groups of 32, fp16 scales: m = the fp16's bits in float32's fields (f16x4_bits), dx times 2^112;
// SLF_E8M0  groups of 32, E8M0 scales (tables): m = 2^(c - 127) from c << 23 (code 0: 2^-127 by an unsigned
//           max with its bits), dx times qunit;
// SLF_ROW   one group per row (any scale kind): the tile's scale vector as sl_group_params_at gives it, dx;
// SLF_E4M3  groups of 16, E4M3 scales (tables, sl_e4m3_factor F != 0): m F from the code's bits, dx.
enum { SLF_NONE = 0, SLF_F16 = 1, SLF_E8M0 = 2, SLF_ROW = 3, SLF_E4M3 = 4 };

/**
 * Which form of sl_il_tile_q8_g32 weight D takes on the int8 path (SLF_NONE: the general loop): interleaved
 * tiles, no offsets, a constant zero code (integers) or qoffset (tables), groups covering kp as above.
 */
INLINE int sl_fast_kind(const wdesc* D, const int TBL, const int G16) {
  if (D->interleave != 4 || D->offsets || (!TBL && D->zero_kind != ZERO_CONST)) return SLF_NONE;
  const int sk = D->scale_kind, G = D->group;
  if (G16) return TBL && sk == SCALE_E4M3 && D->ngroups * 16 == D->kp && sl_e4m3_factor(D) != 0.0f ? SLF_E4M3 : SLF_NONE;
  if (D->ngroups == 1) return SLF_ROW;
  if (G != 32 || D->ngroups * 32 != D->kp) return SLF_NONE;
  if (!TBL && sk == SCALE_F16) return SLF_F16;
  // 2^(c - 127) qunit exact for every code c (qunit = 2^-e, e <= 22: >= 2^-149; e >= 0: <= 2^127)
  if (TBL && sk == SCALE_E8M0 && D->qunit >= 0x1p-22f && D->qunit <= 1.0f) return SLF_E8M0;
  return SLF_NONE;
}

/**
 * Fills the steps (sl_steps) of form K at scr: kp / 32 (SLF_E4M3: kp / 16) vectors, then kp / 32 floats.
 * Returns 0 when a scaled dx would not be exact (the general loop then): 2^112 dx overflows for dx >= 2^16;
 * qunit dx is exact unless it falls below float32's normal range.
 */
INLINE int sl_steps_fill(const wdesc* D, const actq* A, int K, int B, void* scr, sl_steps* st) {
  const int n32 = D->kp / 32, nz = K == SLF_E4M3 ? 2 * n32 : n32;
  const int z = D->elem != ELEM_INT ? D->qoffset : D->zc - (B == 8 ? 128 : 0);
  v128_t* zv = (v128_t*)scr;
  float* dx = (float*)(zv + nz);
  int ok = 1;
  for (int u = 0; u < nz; u++)
    zv[u] = wasm_i32x4_splat(z * (K == SLF_E4M3 ? A->s[u] : A->s[2 * u] + A->s[2 * u + 1]));
  for (int t = 0; t < n32; t++) {
    const float d = A->d[t];  // >= 0
    if (K == SLF_F16) {
      dx[t] = d * F16_REBIAS;
      ok &= d < 65536.0f;  // dx 2^112 finite, so exact
    } else if (K == SLF_E8M0) {
      dx[t] = d * D->qunit;
      ok &= d == 0.0f || dx[t] >= 0x1p-126f;  // a power of two times a normal float, normal: exact
    } else {
      dx[t] = d;
    }
  }
  st->zsq = zv;
  st->dx = dx;
  return ok;
}

/** The scale vector m of form K for 32-weight step m of the block whose scales start at sb (SLF_F16 / SLF_E8M0). */
INLINE v128_t sl_fast_scale(const uint8_t* sb, int m, const int K) {
  if (K == SLF_F16) return f16x4_bits(wasm_v128_load64_zero(sb + 8 * m));
  // E8M0: c << 23 is 2^(c - 127) for c >= 1 (>= 0x00800000); code 0 gives 0, raised to 0x00400000 (2^-127)
  v128_t c = widen4_u8(wasm_v128_load32_zero(sb + 4 * m));
  SL_OPAQUE(c);
  return wasm_u32x4_max(wasm_i32x4_shl(c, 23), wasm_i32x4_splat(0x00400000));
}

/**
 * A group's four E4M3 scales (4 bytes at p) as float32 bit patterns, as sl_e4m3x4 builds them: each code
 * sign-extended to 32 bits, shifted left by 20 (the 7-bit magnitude at bits 20..26, the sign's copies at
 * 27..31), then the sign kept at bit 31 alone.
 */
INLINE v128_t sl_e4m3x4_bits(const uint8_t* p) {
  v128_t c = wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(wasm_v128_load32_zero(p)));
  SL_OPAQUE(c);
  return wasm_v128_and(wasm_i32x4_shl(c, 20), wasm_i32x4_splat((int32_t)0x87f00000));
}

/**
 * sl_il_tile_q8 for the weights sl_fast_kind accepts (form K): no group bookkeeping, the zero code times the
 * activation sum and the (scaled) activation scale precomputed per step (sl_steps), each group's scales read
 * at a constant offset from its block. The same float32 operations on the same values in the same order as
 * sl_scale_step: S - z sq the same int32; then s dx as m (dx f) with s = m / f exactly (f a power of two,
 * dx f exact: both are the one rounding of the real s dx; f = 2^112 for fp16 bits, qunit for E8M0, where
 * sl_scale_step's s is already 2^(c - 127) qunit, exact), or for SLF_ROW / SLF_E4M3 the same two
 * multiplications as there (the tile's scale vector, m F). Each 32-weight step ends in sl_step_fence; the
 * block's pointers are SL_OPAQUE. Each step loads its four scales (SLF_F16: measured as fast as the block's
 * sixteen in two loads, with two fewer vectors live).
 */
INLINE v128_t sl_il_tile_q8_g32(const wdesc* D, const actq* A, const uint8_t* tile, const uint8_t* sp, v128_t srow,
                                float F, sl_steps st, const v128_t* T, const int B, const int DK, const int TBL,
                                const int K) {
  const int nblk = D->kp / 128, G16 = K == SLF_E4M3;
  // a second fence after the first half of a 32-weight step's dots, where the codes cost more to unpack
  // (3, 5..8 bits, tables): V8 otherwise issues all eight activation splats and code loads of the step
  // first and spills (V8's x64 code, relaxed: int5 96 -> 30 vector spill moves, int6 84 -> 12, MXFP4
  // 67 -> 26; 1 thread, cold weights: int5 1.23x, int6 per row 1.25x, MXFP4 1.12x, FP4 per row 1.10x,
  // NVFP4 1.09x, int3 1.02-1.06x; int2 0.97x and int4 0.94-1.0x without it; SIMD128 int5 1.27x without
  // it, so there it has none)
  const int MID = TBL || B == 3 || B >= 6 || (B == 5 && MIXQ_RELAXED);
  // scale bytes per block: 16 groups' fp16 (32), 4 groups' E8M0 x 4 rows (16), 8 groups' E4M3 x 4 rows (32)
  const int sbb = K == SLF_F16 ? 32 : K == SLF_E8M0 ? 16 : 32;
  v128_t acc = wasm_f32x4_splat(0);
  for (int blk = 0; blk < nblk; blk++) {
    // the block's codes, scales and precomputed steps, each read at constant offsets (SL_OPAQUE)
    const uint8_t* gp = tile + (size_t)blk * 64 * B;
    const uint8_t* sb = sp + sbb * (size_t)blk;
    const v128_t* zq = st.zsq + (G16 ? 8 : 4) * blk;
    const float* dx = st.dx + 4 * blk;
    SL_OPAQUE(gp);
    SL_OPAQUE(sb);
    SL_OPAQUE(zq);
    SL_OPAQUE(dx);
#pragma clang loop unroll(full)
    for (int m = 0; m < 4; m++) {
      const int k = blk * 128 + 32 * m;
      if (G16 && !MIXQ_RELAXED) {
        // SIMD128: two 16-weight steps, each ending in the fence (one running sum of two vectors live at a
        // time; both halves' sums together measured 0.71x, split 1.15x against the general loop)
#pragma clang loop unroll(full)
        for (int h = 0; h < 2; h++) {
          sl_ilacc a = sl_il_zero();
#pragma clang loop unroll(full)
          for (int j = 0; j < 4; j++) {
            v128_t c0, c1;
            sl_il_codes(gp, j, m, B, TBL, T, &c0, &c1);
            sl_il_add(&a, h ? c1 : c0, A, k + 16 * h + 4 * j, DK);
          }
          const v128_t ms = sl_e4m3x4_bits(sb + 8 * m + 4 * h);
          const v128_t S = wasm_i32x4_sub(sl_il_total(&a, DK), zq[2 * m + h]);
          acc = fmadd(wasm_f32x4_convert_i32x4(S),
                      wasm_f32x4_mul(wasm_f32x4_mul(ms, wasm_f32x4_splat(F)), wasm_v128_load32_splat(dx + m)), acc);
          sl_step_fence(acc);
        }
        continue;
      }
      sl_ilacc a0 = sl_il_zero(), a1 = sl_il_zero();
      // the step's codes from a pointer LLVM cannot see through (a volatile asm per step): otherwise it loads a
      // crumb or bit vector shared by several steps once and V8 keeps it live across their fences (int3
      // 48 -> 22 vector spill moves, int5 53 -> 30, int6 28 -> 12 with MID)
      const uint8_t* gs = gp;
      if (MID) __asm__ volatile("" : "+r"(gs));
#pragma clang loop unroll(full)
      for (int j = 0; j < 4; j++) {
        v128_t c0, c1;
        sl_il_codes(gs, j, m, B, TBL, T, &c0, &c1);
        sl_il_add(&a0, c0, A, k + 4 * j, DK);
        sl_il_add(G16 ? &a1 : &a0, c1, A, k + 16 + 4 * j, DK);
        if (MID && j == 1) sl_step_fence(wasm_i32x4_add(a0.s16, a0.s32));
      }
      const v128_t d = wasm_v128_load32_splat(dx + m);
      if (G16) {
        // relaxed: both 16-weight halves' sums together, one fence (split as above measured 0.93x against it)
        const v128_t m0 = wasm_f32x4_mul(sl_e4m3x4_bits(sb + 8 * m), wasm_f32x4_splat(F));
        const v128_t m1 = wasm_f32x4_mul(sl_e4m3x4_bits(sb + 8 * m + 4), wasm_f32x4_splat(F));
        const v128_t S0 = wasm_i32x4_sub(sl_il_total(&a0, DK), zq[2 * m]);
        acc = fmadd(wasm_f32x4_convert_i32x4(S0), wasm_f32x4_mul(m0, d), acc);
        const v128_t S1 = wasm_i32x4_sub(sl_il_total(&a1, DK), zq[2 * m + 1]);
        acc = fmadd(wasm_f32x4_convert_i32x4(S1), wasm_f32x4_mul(m1, d), acc);
      } else {
        const v128_t ms = K == SLF_ROW ? srow : sl_fast_scale(sb, m, K);
        const v128_t S = wasm_i32x4_sub(sl_il_total(&a0, DK), zq[m]);
        acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(ms, d), acc);
      }
      sl_step_fence(acc);
    }
  }
  return acc;
}

/**
 * An interleaved tile (rows r .. r+3, all real, at `tile`) against the int8 activations: [row 0..3] sums,
 * per 16- or 32-weight step one i32x4 of the four rows, scaled as the stored-tile loop does (the same
 * operations in the same order: bit-identical results). st: sl_il_tile_q8_g32's steps (zsq 0: none).
 */
INLINE v128_t sl_il_tile_q8(const wdesc* D, const actq* A, int r, const uint8_t* tile, const v128_t* T,
                            sl_steps st, const int B, const int DK, const int TBL, const int G16, const int SK) {
  const int nblk = D->kp / 128, G = D->group, hasoff = D->offsets != 0;
  const int zvar = !TBL && D->zero_kind != ZERO_CONST;
  const size_t pbase = param_index(D, r, 0);  // group g's four entries at pbase + 4 g
  const float F = TBL && SK == SCALE_E4M3 ? sl_e4m3_factor(D) : 0.0f;
  if (st.zsq) {
    const uint8_t* sp = (const uint8_t*)(uintptr_t)D->scales + (size_t)scale_bytes(D->scale_kind) * pbase;
    const v128_t z = wasm_f32x4_splat(0);
    if (G16) {
      if (TBL && SK == SCALE_E4M3) return sl_il_tile_q8_g32(D, A, tile, sp, z, F, st, T, B, DK, TBL, SLF_E4M3);
    } else if (D->ngroups == 1) {
      const v128_t s = sl_group_params_at(D, pbase, 1, B).s;
      return sl_il_tile_q8_g32(D, A, tile, sp, s, 0.0f, st, T, B, DK, TBL, SLF_ROW);
    } else if (!TBL && SK == SCALE_F16) {
      return sl_il_tile_q8_g32(D, A, tile, sp, z, 0.0f, st, T, B, DK, TBL, SLF_F16);
    } else if (TBL && SK == SCALE_E8M0) {
      return sl_il_tile_q8_g32(D, A, tile, sp, z, 0.0f, st, T, B, DK, TBL, SLF_E8M0);
    }
  }
  v128_t acc = wasm_f32x4_splat(0);
  sl_group4 P = sl_group_params_at(D, pbase, 1, B);
  int g = 0, next = G;
  for (int blk = 0; blk < nblk; blk++) {
    const uint8_t* gp = tile + (size_t)blk * 64 * B;
#pragma clang loop unroll(full)
    for (int m = 0; m < 4; m++) {
      const int k = blk * 128 + 32 * m;
      // group position j: weights 32m + 4j .. (c0) and 32m + 16 + 4j .. (c1) of the four rows
      sl_ilacc a0 = sl_il_zero(), a1 = sl_il_zero();
      for (int j = 0; j < 4; j++) {
        v128_t c0, c1;
        sl_il_codes(gp, j, m, B, TBL, T, &c0, &c1);
        sl_il_add(&a0, c0, A, k + 4 * j, DK);
        sl_il_add(G16 ? &a1 : &a0, c1, A, k + 16 + 4 * j, DK);
      }
      if (G16) {
        for (int h = 0; h < 2; h++) {
          const int kk = k + 16 * h;
          if (kk == next) {
            if (g + 1 < D->ngroups) sl_il_params(D, pbase + 4 * (size_t)++g, &P, SK, B, TBL, zvar, hasoff, F);
            next += G;
          }
          const v128_t S = sl_il_total(h ? &a1 : &a0, DK);
          acc = sl_scale_step(acc, S, &P, A->s[kk >> 4], A->d[kk >> 5], hasoff);
        }
      } else {
        if (k == next) {
          if (g + 1 < D->ngroups) sl_il_params(D, pbase + 4 * (size_t)++g, &P, SK, B, TBL, zvar, hasoff, F);
          next += G;
        }
        const v128_t S = sl_il_total(&a0, DK);
        acc = sl_scale_step(acc, S, &P, A->s[k >> 4] + A->s[(k >> 4) + 1], A->d[k >> 5], hasoff);
      }
    }
  }
  return acc;
}

// ---- int8 path, matrix x vector: the four rows of a tile together ----
// Measured against a one-row-at-a-time form (issue 21, session 4: factors per segment precomputed, rows
// run alone): as fast on weights in cache, 10-25% slower on weights streamed from memory. Here LLVM issues
// the four rows' loads of a block together (four cache misses in flight) and shares each activation load
// between the rows; V8 spills little for the sliced layout (unlike ggml's blocks, ggml.h).
INLINE void mv_sl_q8_impl(const wdesc* D, const actq* A, float* y, int r0, int r1, const int B, const int DK,
                          const int TBL, const int G16, int32_t* scratch) {
  const int nblk = D->kp / 128, G = D->group, hasoff = D->offsets != 0;
  v128_t T[4];
  if (TBL) sl_load_qtable(D, T);
  // sl_il_tile_q8_g32's kinds (their precomputed steps in the scratch: sl_steps_fill)
  sl_steps st = {0, 0};
  const int fk = sl_fast_kind(D, TBL, G16);
  if (fk != SLF_NONE && !sl_steps_fill(D, A, fk, B, scratch, &st)) st = (sl_steps){0, 0};
  for (int r = r0; r < r1; r += 4) {
    int rr[4];
    const uint8_t* p[4];
    sl_tile(D, r, r1 - 1, rr, p);
    if (sl_il_tile(D, r)) {
      // the scale kinds mixq plans with these formats, known at compile time (sl_il_params)
      v128_t acc;
      const int sk = D->scale_kind;
      if (!TBL && sk == SCALE_F16) acc = sl_il_tile_q8(D, A, r, p[0], T, st, B, DK, TBL, G16, SCALE_F16);
      else if (TBL && sk == SCALE_E8M0) acc = sl_il_tile_q8(D, A, r, p[0], T, st, B, DK, TBL, G16, SCALE_E8M0);
      else if (TBL && sk == SCALE_E4M3) acc = sl_il_tile_q8(D, A, r, p[0], T, st, B, DK, TBL, G16, SCALE_E4M3);
      else acc = sl_il_tile_q8(D, A, r, p[0], T, st, B, DK, TBL, G16, -1);
      store_tile(y, r, r1 - 1, acc);
      continue;
    }
    v128_t acc = wasm_f32x4_splat(0);
    sl_group4 P = sl_group_params(D, r, 0, 1, B);
    int g = 0, next = G;
    for (int blk = 0; blk < nblk; blk++) {
      const size_t bo = (size_t)blk * 16 * B;
#pragma clang loop unroll(full)
      for (int m = 0; m < 4; m++) {
        const int k = blk * 128 + 32 * m;
        v128_t c[4][2];
        for (int i = 0; i < 4; i++) {
          sl_codes32(p[i] + bo, m, B, &c[i][0], &c[i][1]);
          if (TBL) {
            c[i][0] = sl_qlookup(c[i][0], T, B);
            c[i][1] = sl_qlookup(c[i][1], T, B);
          }
        }
        if (G16) {
          for (int h = 0; h < 2; h++) {
            const int kk = k + 16 * h;
            if (kk == next) {
              if (g + 1 < D->ngroups) P = sl_group_params(D, r, ++g, 1, B);
              next += G;
            }
            const v128_t ch[4] = {c[0][h], c[1][h], c[2][h], c[3][h]};
            const v128_t S = sl_sum4x16(ch, A, kk, DK);
            acc = sl_scale_step(acc, S, &P, A->s[kk >> 4], A->d[kk >> 5], hasoff);
          }
        } else {
          if (k == next) {
            if (g + 1 < D->ngroups) P = sl_group_params(D, r, ++g, 1, B);
            next += G;
          }
          const v128_t S = sl_sum4x32(c, A, k, DK);
          acc = sl_scale_step(acc, S, &P, A->s[k >> 4] + A->s[(k >> 4) + 1], A->d[k >> 5], hasoff);
        }
      }
    }
    store_tile(y, r, r1 - 1, acc);
  }
}

/** Largest of the 16 int8-path table values of a 4-bit table. */
static int sl_qmax16(const wdesc* D) {
  const uint8_t* q = (const uint8_t*)(uintptr_t)D->qtable;
  int m = 0;
  for (int i = 0; i < 16; i++) m = q[i] > m ? q[i] : m;
  return m;
}

/**
 * The specialised int8-path kernels (bits, dot kind, table), for the formats mixq plans most with groups
 * of 32 or more: int2..int6, symmetric int8, FP4 (MXFP4, per row) and FP6 E2M3 (groups of 16: in
 * mv_sliced_q8). Anything else takes mv_sl_q8_generic. Evaluates to 0 when there is no specialisation.
 */
#define SL_Q8_DISPATCH(CALL, G16)                                                                 \
  ((D->elem == ELEM_INT && D->bits == 2)                             ? (CALL(2, DK_U4, 0, G16), 1) \
   : (D->elem == ELEM_INT && D->bits == 3)                           ? (CALL(3, DK_U4, 0, G16), 1) \
   : (D->elem == ELEM_INT && D->bits == 4)                           ? (CALL(4, DK_U4, 0, G16), 1) \
   : (D->elem == ELEM_INT && D->bits == 5)                           ? (CALL(5, DK_U6, 0, G16), 1) \
   : (D->elem == ELEM_INT && D->bits == 6)                           ? (CALL(6, DK_U6, 0, G16), 1) \
   : (D->elem == ELEM_INT && D->bits == 8 && D->dot_class == DOT_S8) ? (CALL(8, DK_S8, 0, G16), 1) \
   : (D->elem != ELEM_INT && D->bits == 4 && D->dot_class == DOT_U6 && sl_qmax16(D) <= 32)            \
       ? (CALL(4, DK_U5, 1, G16), 1)                                                                \
   : (D->elem != ELEM_INT && D->bits == 4 && D->dot_class == DOT_U6) ? (CALL(4, DK_U6, 1, G16), 1) \
   : (D->elem != ELEM_INT && D->bits == 6)                           ? (CALL(6, DK_U7, 1, G16), 1) \
                                                                     : 0)

// ---- any bit width at run time (groups of 16 but NVFP4's, and the matrix x matrix decode) ----

/** The 128 codes of one row block, 16 per vector (B at run time; vectors S bytes apart: sl_codes32s). */
INLINE void sl_unpack_block(const uint8_t* blk, int B, const int S, v128_t c[8]) {
  switch (B) {
#define SL_UNPACK_CASE(b)                                                            \
  case b:                                                                            \
    for (int m = 0; m < 4; m++) sl_codes32s(blk, m, b, S, &c[2 * m], &c[2 * m + 1]); \
    break;
    SL_UNPACK_CASE(1)
    SL_UNPACK_CASE(2)
    SL_UNPACK_CASE(3)
    SL_UNPACK_CASE(4)
    SL_UNPACK_CASE(5)
    SL_UNPACK_CASE(6)
    SL_UNPACK_CASE(7)
    default:
      for (int m = 0; m < 4; m++) sl_codes32s(blk, m, 8, S, &c[2 * m], &c[2 * m + 1]);
#undef SL_UNPACK_CASE
  }
}
/**
 * The codes of block blk of the four rows of the tile at r, c[i][t] = row i's weights 128 blk + 16 t ..
 * + 15; after the int8 table when T is given (tables). An interleaved tile's group decodes as it lies (c[j]
 * then holds pieces: weights 16 t + 4 j .. of row i in 32-bit lane i), then a 4 x 4 transpose of 32-bit
 * lanes per t.
 */
INLINE void sl_tile_block(const wdesc* D, const uint8_t* const p[4], int r, int blk, const v128_t* T,
                          v128_t c[4][8]) {
  const int B = D->bits, il = sl_il_tile(D, r);
  if (il)
    for (int i = 0; i < 4; i++) sl_unpack_block(p[0] + (size_t)blk * 64 * B + 16 * i, B, 64, c[i]);
  else
    for (int i = 0; i < 4; i++) sl_unpack_block(p[i] + (size_t)blk * 16 * B, B, 16, c[i]);
  if (T)
    for (int i = 0; i < 4; i++)
      for (int t = 0; t < 8; t++) c[i][t] = sl_qlookup_n(c[i][t], T, B);
  if (!il) return;
  for (int t = 0; t < 8; t++) {
    const v128_t a = wasm_i32x4_shuffle(c[0][t], c[1][t], 0, 4, 1, 5), b = wasm_i32x4_shuffle(c[2][t], c[3][t], 0, 4, 1, 5);
    const v128_t e = wasm_i32x4_shuffle(c[0][t], c[1][t], 2, 6, 3, 7), f = wasm_i32x4_shuffle(c[2][t], c[3][t], 2, 6, 3, 7);
    c[0][t] = wasm_i32x4_shuffle(a, b, 0, 1, 4, 5);
    c[1][t] = wasm_i32x4_shuffle(a, b, 2, 3, 6, 7);
    c[2][t] = wasm_i32x4_shuffle(e, f, 0, 1, 4, 5);
    c[3][t] = wasm_i32x4_shuffle(e, f, 2, 3, 6, 7);
  }
}

/** int8 path, any bit width, 16 or 32 weights per step. */
static void mv_sl_q8_generic(const wdesc* D, const actq* A, float* y, int r0, int r1) {
  const int nblk = D->kp / 128, G = D->group, hasoff = D->offsets != 0, B = D->bits, DK = D->dot_class;
  v128_t T[4];
  sl_load_qtable(D, T);
  for (int r = r0; r < r1; r += 4) {
    int rr[4];
    const uint8_t* p[4];
    sl_tile(D, r, r1 - 1, rr, p);
    v128_t acc = wasm_f32x4_splat(0);
    sl_group4 P = sl_group_params(D, r, 0, 1, B);
    int g = 0, next = G;
    for (int blk = 0; blk < nblk; blk++) {
      v128_t c[4][8];
      sl_tile_block(D, p, r, blk, D->elem != ELEM_INT ? T : 0, c);
      for (int t = 0; t < 8; t++) {
        const int k = blk * 128 + 16 * t;
        if (k == next) {
          if (g + 1 < D->ngroups) P = sl_group_params(D, r, ++g, 1, B);
          next += G;
        }
        const v128_t S = hsum4_i32(sl_dot16_rt(c[0][t], A, k, DK), sl_dot16_rt(c[1][t], A, k, DK),
                             sl_dot16_rt(c[2][t], A, k, DK), sl_dot16_rt(c[3][t], A, k, DK));
        acc = sl_scale_step(acc, S, &P, A->s[k >> 4], A->d[k >> 5], hasoff);
      }
    }
    store_tile(y, r, r1 - 1, acc);
  }
}

/**
 * Each specialisation its own function (V8 compiles one function at a time: the kernels all inlined into
 * mv_sliced_q8 made one of ~60k instructions).
 */
#define SL_Q8_FN(B, DK, TBL, G16)                                                                          \
  static __attribute__((noinline)) void sl_q8_##B##_##DK##_##TBL##_##G16(const wdesc* D, const actq* A,    \
                                                                        float* y, int r0, int r1,        \
                                                                        int32_t* scratch) {              \
    mv_sl_q8_impl(D, A, y, r0, r1, B, DK, TBL, G16, scratch);                                              \
  }
SL_Q8_FN(2, DK_U4, 0, 0)
SL_Q8_FN(3, DK_U4, 0, 0)
SL_Q8_FN(4, DK_U4, 0, 0)
SL_Q8_FN(5, DK_U6, 0, 0)
SL_Q8_FN(6, DK_U6, 0, 0)
SL_Q8_FN(8, DK_S8, 0, 0)
SL_Q8_FN(4, DK_U5, 1, 0)
SL_Q8_FN(4, DK_U6, 1, 0)
SL_Q8_FN(6, DK_U7, 1, 0)
SL_Q8_FN(2, DK_U4, 0, 1)
SL_Q8_FN(3, DK_U4, 0, 1)
SL_Q8_FN(4, DK_U4, 0, 1)
SL_Q8_FN(5, DK_U5, 0, 1)
SL_Q8_FN(4, DK_U5, 1, 1)
#undef SL_Q8_FN


EXPORT void mv_sliced_q8(int32_t desc, int32_t act, int32_t y, int32_t r0, int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const actq A = act_view(act, D->kp);
  float* yp = (float*)(uintptr_t)y;
  int32_t* scr = (int32_t*)(uintptr_t)scratch;
#define MV_CALL(B, DK, TBL, G16) sl_q8_##B##_##DK##_##TBL##_##G16(D, &A, yp, r0, r1, scr)
  // groups of 16: specialised for the formats planned with them (NVFP4, int2..int5 g16), the rest generic
  const int ig = D->elem == ELEM_INT && D->group == 16;
  int done = 1;
  if (D->group != 16) done = SL_Q8_DISPATCH(MV_CALL, 0);
  else if (ig && D->bits == 2) MV_CALL(2, DK_U4, 0, 1);
  else if (ig && D->bits == 3) MV_CALL(3, DK_U4, 0, 1);
  else if (ig && D->bits == 4) MV_CALL(4, DK_U4, 0, 1);
  else if (ig && D->bits == 5) MV_CALL(5, DK_U5, 0, 1);
  else if (D->elem != ELEM_INT && D->bits == 4 && D->dot_class == DOT_U6 && sl_qmax16(D) <= 32)
    MV_CALL(4, DK_U5, 1, 1);  // NVFP4: E2M1 times 2, shifted, 0..24
  else done = 0;
#undef MV_CALL
  if (!done) mv_sl_q8_generic(D, &A, yp, r0, r1);
}

// ---- float32 path: a block of 128 weights of the four rows of a tile decoded into float32 scratch ----
static const uint8_t SL_U32_IDX[4][16] = {
    {0, 0x80, 0x80, 0x80, 1, 0x80, 0x80, 0x80, 2, 0x80, 0x80, 0x80, 3, 0x80, 0x80, 0x80},
    {4, 0x80, 0x80, 0x80, 5, 0x80, 0x80, 0x80, 6, 0x80, 0x80, 0x80, 7, 0x80, 0x80, 0x80},
    {8, 0x80, 0x80, 0x80, 9, 0x80, 0x80, 0x80, 10, 0x80, 0x80, 0x80, 11, 0x80, 0x80, 0x80},
    {12, 0x80, 0x80, 0x80, 13, 0x80, 0x80, 0x80, 14, 0x80, 0x80, 0x80, 15, 0x80, 0x80, 0x80}};

/** Grid values (c - z for integers, the element value otherwise) of 16 codes, stored as 16 float32. */
INLINE void sl_values16(const wdesc* D, v128_t c, int z, float* out) {
  if (D->elem == ELEM_LUT4) {
    const uint8_t* tp = (const uint8_t*)(uintptr_t)D->table;
    v128_t b0 = swz16(wasm_v128_load(tp), c), b1 = swz16(wasm_v128_load(tp + 16), c);
    v128_t b2 = swz16(wasm_v128_load(tp + 32), c), b3 = swz16(wasm_v128_load(tp + 48), c);
    v128_t l01 = wasm_i8x16_shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v128_t h01 = wasm_i8x16_shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    v128_t l23 = wasm_i8x16_shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v128_t h23 = wasm_i8x16_shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    wasm_v128_store(out, wasm_i16x8_shuffle(l01, l23, 0, 8, 1, 9, 2, 10, 3, 11));
    wasm_v128_store(out + 4, wasm_i16x8_shuffle(l01, l23, 4, 12, 5, 13, 6, 14, 7, 15));
    wasm_v128_store(out + 8, wasm_i16x8_shuffle(h01, h23, 0, 8, 1, 9, 2, 10, 3, 11));
    wasm_v128_store(out + 12, wasm_i16x8_shuffle(h01, h23, 4, 12, 5, 13, 6, 14, 7, 15));
    return;
  }
  if (D->elem == ELEM_TABLE) {
    const float* T = (const float*)(uintptr_t)D->table;
    uint8_t b[16];
    wasm_v128_store(b, c);
    for (int i = 0; i < 16; i++) out[i] = T[b[i]];
    return;
  }
  for (int q = 0; q < 4; q++) {
    v128_t u = wasm_i8x16_swizzle(c, wasm_v128_load(SL_U32_IDX[q]));
    if (D->elem == ELEM_INT) {
      wasm_v128_store(out + 4 * q, wasm_f32x4_convert_i32x4(wasm_i32x4_sub(u, wasm_i32x4_splat(z))));
    } else {
      const int signed_ = D->fsign >= 0;
      v128_t mag = wasm_f32x4_mul(
          wasm_i32x4_shl(wasm_v128_and(u, wasm_i32x4_splat(signed_ ? (1 << D->fsign) - 1 : (1 << D->bits) - 1)),
                         D->fbits),
          wasm_f32x4_splat(D->fmul));
      if (signed_)
        mag = wasm_v128_or(mag, wasm_i32x4_shl(wasm_v128_and(u, wasm_i32x4_splat(1 << D->fsign)), 31 - D->fsign));
      wasm_v128_store(out + 4 * q, mag);
    }
  }
}

/**
 * Decoded weights (value * s [+ o], rounded as the reference) of the 16 * nt weights from k = 128 * blk
 * (nt = 8: the whole block) of the four tile rows into out[i * stride + j]. Group parameters come from
 * `gcur` / `gnext`, which this advances.
 */
static void sl_decode_block_f32(const wdesc* D, int r, const uint8_t* const p[4], int blk, float* out,
                                int stride, int* gcur, int* gnext) {
  const int B = D->bits, G = D->group, hasoff = D->offsets != 0;
  v128_t c[4][8];
  sl_tile_block(D, p, r, blk, 0, c);
  float s[4], o[4] = {0, 0, 0, 0};
  int z[4];
  for (int t = 0; t < 8; t++) {
    const int k = blk * 128 + 16 * t;
    if (t == 0 || k == *gnext) {
      if (k == *gnext) {
        if (*gcur + 1 < D->ngroups) ++*gcur;
        *gnext += G;
      }
      const size_t base = param_index(D, r, *gcur);
      for (int i = 0; i < 4; i++) {
        s[i] = scale_at(D, base + i);
        z[i] = D->elem == ELEM_INT ? zero_at(D, base + i) : 0;
        if (hasoff) o[i] = offset_at(D, base + i);
      }
    }
    for (int i = 0; i < 4; i++) {
      float* w = out + (size_t)i * stride + 16 * t;
      sl_values16(D, c[i][t], z[i], w);
      const v128_t sv = wasm_f32x4_splat(s[i]), ov = wasm_f32x4_splat(o[i]);
      for (int q = 0; q < 4; q++) {
        v128_t v = wasm_f32x4_mul(wasm_v128_load(w + 4 * q), sv);
        if (hasoff) v = wasm_f32x4_add(v, ov);
        wasm_v128_store(w + 4 * q, v);
      }
    }
  }
}

/** float32 path, matrix x vector. scratch: 4 * 128 floats. */
EXPORT void mv_sliced_f32(int32_t desc, int32_t x_, int32_t y, int32_t r0, int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const float* x = (const float*)(uintptr_t)x_;
  float* w = (float*)(uintptr_t)scratch;
  const int nblk = D->kp / 128;
  for (int r = r0; r < r1; r += 4) {
    int rr[4];
    const uint8_t* p[4];
    sl_tile(D, r, r1 - 1, rr, p);
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    int g = 0, next = D->group;
    for (int blk = 0; blk < nblk; blk++) {
      sl_decode_block_f32(D, r, p, blk, w, 128, &g, &next);
      const float* xb = x + 128 * blk;
      for (int j = 0; j < 128; j += 4) {
        v128_t xv = wasm_v128_load(xb + j);
        a0 = fmadd(wasm_v128_load(w + j), xv, a0);
        a1 = fmadd(wasm_v128_load(w + 128 + j), xv, a1);
        a2 = fmadd(wasm_v128_load(w + 256 + j), xv, a2);
        a3 = fmadd(wasm_v128_load(w + 384 + j), xv, a3);
      }
    }
    store_tile((float*)(uintptr_t)y, r, r1 - 1, hsum4_f32(a0, a1, a2, a3));
  }
}

/** float32 path, matrix x matrix: the tile decoded once (scratch: 4 * kp floats), then every row of X. */
EXPORT void mm_sliced_f32(int32_t desc, int32_t x, int32_t xs, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                          int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  float* s = (float*)(uintptr_t)scratch;
  const int kp = D->kp;
  for (int r = r0; r < r1; r += 4) {
    int rr[4];
    const uint8_t* p[4];
    sl_tile(D, r, r1 - 1, rr, p);
    int g = 0, next = D->group;
    for (int blk = 0; blk < kp / 128; blk++) sl_decode_block_f32(D, r, p, blk, s + 128 * blk, kp, &g, &next);
    const float* w[4] = {s, s + kp, s + 2 * (size_t)kp, s + 3 * (size_t)kp};
    mm_f32_tile(w, kp, (const float*)(uintptr_t)x, xs, nb, (float*)(uintptr_t)y, ys, r, r1 - 1);
  }
}

// ---- int8 path, matrix x matrix: the tile's int8 codes and group parameters go to scratch once ----
// scratch: codes (4 kp bytes) | sl_group4 [ngroups] (48 bytes each). Codes of a stored tile: row after row
// ([4][kp]); of an interleaved tile: as the group lies, per 32 weights k .. k+31 eight vectors at 4 k, the
// one of group position j and half h (weights k + 16 h + 4 j ..) at 4 k + 16 (4 h + j), so that each
// activation row's products land as [row 0..3] without horizontal sums (sl_il_add).
INLINE void mm_sl_q8_micro_il(const wdesc* D, const uint8_t* codes, const sl_group4* gp, int32_t act, int32_t as,
                              int nb, float* y, int ys, int r, int last, const int DK, const int G16, const int IL) {
  const int kp = D->kp, G = D->group, hasoff = D->offsets != 0;
  for (int j = 0; j < nb; j += 2) {
    const actq A0 = act_view(act_at(act, as, j), kp);
    const actq A1 = act_view(act_at(act, as, j + 1 < nb ? j + 1 : j), kp);
    v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0;
    int g = 0, next = G;
    sl_group4 P = gp[0];
    const int step = G16 ? 16 : 32;
    for (int k = 0; k < kp; k += step) {
      if (k == next) {
        if (g + 1 < D->ngroups) P = gp[++g];
        next += G;
      }
      v128_t S0, S1;
      if (IL) {
        // G16: the four vectors of half (k >> 4) & 1; else all eight of the 32 weights
        const uint8_t* v = codes + 4 * (size_t)(k & ~31) + (G16 ? 64 * ((k >> 4) & 1) : 0);
        const int k0 = k & ~31, h0 = G16 ? (k >> 4) & 1 : 0;
        sl_ilacc a0 = sl_il_zero(), a1 = sl_il_zero();
        for (int q = 0; q < (G16 ? 4 : 8); q++) {
          const v128_t c = wasm_v128_load(v + 16 * q);
          const int kq = k0 + 16 * (h0 + (q >> 2)) + 4 * (q & 3);
          sl_il_add(&a0, c, &A0, kq, DK);
          sl_il_add(&a1, c, &A1, kq, DK);
        }
        S0 = sl_il_total(&a0, DK);
        S1 = sl_il_total(&a1, DK);
      } else if (G16) {
        v128_t w[4];
        for (int i = 0; i < 4; i++) w[i] = wasm_v128_load(codes + (size_t)i * kp + k);
        S0 = sl_sum4x16(w, &A0, k, DK);
        S1 = sl_sum4x16(w, &A1, k, DK);
      } else {
        v128_t w[4][2];
        for (int i = 0; i < 4; i++) {
          w[i][0] = wasm_v128_load(codes + (size_t)i * kp + k);
          w[i][1] = wasm_v128_load(codes + (size_t)i * kp + k + 16);
        }
        S0 = sl_sum4x32(w, &A0, k, DK);
        S1 = sl_sum4x32(w, &A1, k, DK);
      }
      const int32_t q0 = G16 ? A0.s[k >> 4] : A0.s[k >> 4] + A0.s[(k >> 4) + 1];
      const int32_t q1 = G16 ? A1.s[k >> 4] : A1.s[k >> 4] + A1.s[(k >> 4) + 1];
      acc0 = sl_scale_step(acc0, S0, &P, q0, A0.d[k >> 5], hasoff);
      acc1 = sl_scale_step(acc1, S1, &P, q1, A1.d[k >> 5], hasoff);
    }
    store_tile(y + (size_t)j * ys, r, last, acc0);
    if (j + 1 < nb) store_tile(y + (size_t)(j + 1) * ys, r, last, acc1);
  }
}

/** Stored codes ([4][kp], also lut.h's int8 path). */
INLINE void mm_sl_q8_micro(const wdesc* D, const uint8_t* codes, const sl_group4* gp, int32_t act, int32_t as,
                           int nb, float* y, int ys, int r, int last, const int DK, const int G16) {
  mm_sl_q8_micro_il(D, codes, gp, act, as, nb, y, ys, r, last, DK, G16, 0);
}

/** The dot kind of the matrix x matrix kernel (codes in scratch), stored or interleaved codes. */
#define MM_SL_Q8_DISPATCH(IL)                                                                             \
  do {                                                                                                    \
    const int g16 = D->group == 16;                                                                       \
    const int dk = D->elem == ELEM_INT && B <= 4 ? DK_U4                                                   \
                   : D->dot_class == DOT_U6 ? (g16 ? DK_U7 : DK_U6)                                       \
                   : D->dot_class == DOT_U7 ? DK_U7                                                        \
                   : D->dot_class == DOT_S8 ? DK_S8                                                        \
                                            : DK_FULL8;                                                    \
    switch (dk * 2 + g16) {                                                                               \
      case DK_U4 * 2: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_U4, 0, IL); break;   \
      case DK_U4 * 2 + 1: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_U4, 1, IL); break; \
      case DK_U6 * 2: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_U6, 0, IL); break;   \
      case DK_U7 * 2: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_U7, 0, IL); break;   \
      case DK_U7 * 2 + 1: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_U7, 1, IL); break; \
      case DK_S8 * 2: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_S8, 0, IL); break;   \
      case DK_S8 * 2 + 1: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_S8, 1, IL); break; \
      case DK_FULL8 * 2: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_FULL8, 0, IL); break; \
      default: mm_sl_q8_micro_il(D, codes, gp, act, as, nb, yp, ys, r, r1 - 1, DK_FULL8, 1, IL);               \
    }                                                                                                     \
  } while (0)

// ---- int8 path, matrix x matrix on interleaved tiles: each 32-weight step's codes decoded once per batch ----
// kmm's design (ggml-k.h kmm_tile) for the sliced formats: the tile's codes of 32 weights x 4 rows are decoded
// into eight code vectors (c[q], q = 4 h + j: byte 4 i + u = row i's code of weight k + 16 h + 4 j + u, as
// sl_codes32s gives them at S = 64), held in registers while a loop runs them against up to SMM_ROWS
// activation rows, each row's [row 0..3] float32 accumulator in scratch. Every step ends per activation row
// in sl_scale_step with the same group parameters and activation sums as the matrix x vector kernel
// (sl_il_tile_q8): the same exact integers, the same float32 operations in the same order, so every batch
// row equals its matvec bit for bit (and main's matrix x matrix, which scaled the same way).

/** Activation rows run together over a tile (scratch: 3 vectors each; the tile's bytes re-read per chunk). */
#define SMM_ROWS 64

/**
 * Row j's [row 0..3] integer sums of the codes c[0..nc) (nc = 8: a 32-weight step at k; 4: a 16-weight one,
 * c[q] at k + 4 q) against the activations of row j (int8 at q8, int16 at q16). Relaxed and 7-bit codes:
 * i16 dots summed per lane while exact (sl_il_add's `per`), then widened. SIMD128:
 * the codes widened in w (rows 0, 1 low, 2, 3 high; widened by the caller once) and i32x4.dot_i16x8_s.
 */
INLINE v128_t smm_sum(const v128_t* c, const v128_t* w, const int8_t* q8, const int16_t* q16, const int nc,
                      const int DK) {
#if MIXQ_RELAXED
  if (DK == DK_U4 || DK == DK_U5 || DK == DK_U6 || DK == DK_U7) {
    (void)w;
    (void)q16;
    const int per = DK == DK_U4 ? 8 : DK == DK_U5 ? 4 : DK == DK_U6 ? 2 : 1;
    v128_t s32 = wasm_i32x4_splat(0), s16 = s32;
    _Pragma("clang loop unroll(full)") for (int q = 0; q < nc; q++) {
      const int kq = 16 * (q >> 2) + 4 * (q & 3);
      const v128_t d = rdot16(c[q], wasm_v128_load32_splat(q8 + kq));
      s16 = q % per ? wasm_i16x8_add(s16, d) : d;
      if (q % per == per - 1 || q == nc - 1) s32 = wasm_i32x4_add(s32, wasm_i32x4_extadd_pairwise_i16x8(s16));
    }
    return s32;
  }
#endif
  (void)c;
  (void)q8;
  v128_t lo = wasm_i32x4_splat(0), hi = lo;
  _Pragma("clang loop unroll(full)") for (int q = 0; q < nc; q++) {
    const int kq = 16 * (q >> 2) + 4 * (q & 3);
    const v128_t xv = wasm_v128_load64_splat(q16 + kq);
    lo = wasm_i32x4_add(lo, wasm_i32x4_dot_i16x8(w[2 * q], xv));
    hi = wasm_i32x4_add(hi, wasm_i32x4_dot_i16x8(w[2 * q + 1], xv));
  }
  return wasm_i32x4_add(wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6), wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7));
}

/** Whether smm_sum widens the codes (SIMD128 build; 7-bit codes only: smm_run's kinds). */
#if MIXQ_RELAXED
#define SMM_WIDE(DK) 0
#else
#define SMM_WIDE(DK) 1
#endif

/**
 * sl_scale_step for activation row j at p (its int8 buffer) with the step's activation sum from sq (a
 * vector load of one int32: the precomputed 32-weight sum, or the buffer's 16-weight one): the same integer
 * S - z * sq (as one i32x4.dot_i16x8_s of the zero codes' low halves, z16, with sq: |z| <= 255 and
 * |sq| <= 32 * 127 fit int16, the product is exact) and the same float32 operations in the same order.
 */
INLINE v128_t smm_scale(v128_t acc, v128_t S, const sl_group4* P, v128_t z16, const uint8_t* p, const int32_t* sq,
                        size_t od, const int HASOFF) {
  const v128_t sqv = wasm_v128_load32_splat(sq);
  S = wasm_i32x4_sub(S, wasm_i32x4_dot_i16x8(z16, sqv));
  acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(P->s, wasm_v128_load32_splat(p + od)), acc);
  if (HASOFF) acc = fmadd(P->o, wasm_f32x4_splat(*(const float*)(p + od) * (float)*sq), acc);
  return acc;
}

/**
 * nc code vectors (nc = 4: 16 weights at k) against activation rows j < n at a (as bytes apart): the integer
 * sums of each row scaled into acc[j] (smm_scale; 32-weight steps: the rows' activation sums at sq32[j]).
 * SIMD128: the codes are widened once here; 32-weight steps run as two 16-weight halves (eight widened
 * vectors live), the first half's sums kept in part[j].
 */
INLINE void smm_step(const v128_t* c, const int nc, const sl_group4* P, const uint8_t* a, int32_t as, int n,
                     int kp, int k, v128_t* acc, v128_t* part, const int32_t* sq32, const int DK, const int HASOFF) {
  const size_t oq16 = (size_t)kp + 2 * (size_t)k, od = 3 * (size_t)kp + 4 * (size_t)(k >> 5);
  const size_t os = 3 * (size_t)kp + (size_t)kp / 8 + 4 * (size_t)(k >> 4);
  const v128_t z16 = wasm_v128_and(P->z, wasm_i32x4_splat(0xffff));
  if (!SMM_WIDE(DK)) {
    const uint8_t* p = a;
    _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, p += as) {
      const v128_t S = smm_sum(c, c, (const int8_t*)p + k, 0, nc, DK);
      acc[j] = smm_scale(acc[j], S, P, z16, p, nc == 8 ? sq32 + j : (const int32_t*)(p + os), od, HASOFF);
    }
    return;
  }
  _Pragma("clang loop unroll(full)") for (int h = 0; h < nc / 4; h++) {
    v128_t w[8];  // codes 0..127 (the kinds smm_run takes)
    _Pragma("clang loop unroll(full)") for (int q = 0; q < 4; q++) {
      w[2 * q] = wasm_u16x8_extend_low_u8x16(c[4 * h + q]);
      w[2 * q + 1] = wasm_u16x8_extend_high_u8x16(c[4 * h + q]);
    }
    const uint8_t* p = a;
    _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, p += as) {
      v128_t S = smm_sum(c, w, 0, (const int16_t*)(p + oq16) + 16 * h, 4, DK);
      if (nc == 8 && h == 0) {
        part[j] = S;
        continue;
      }
      if (nc == 8) S = wasm_i32x4_add(part[j], S);
      acc[j] = smm_scale(acc[j], S, P, z16, p, nc == 8 ? sq32 + j : (const int32_t*)(p + os), od, HASOFF);
    }
  }
}

/**
 * An interleaved tile (rows r .. r+3, all real, at `tile`) against nb activation rows, SMM_ROWS at a time
 * (scratch: 2 SMM_ROWS vectors, then SMM_ROWS kp / 8 bytes of activation sums): per 32 weights the codes decoded once (after the int8 table for tables),
 * then smm_step; group parameters as sl_il_tile_q8 reads them (sl_group_params_at, the same values).
 */
INLINE void smm_tile(const wdesc* D, const uint8_t* tile, int32_t act, int32_t as, int nb, v128_t* scr,
                     const v128_t* T, float* y, int ys, int r, const int B, const int DK, const int TBL,
                     const int G16, const int HASOFF) {
  const int nblk = D->kp / 128, G = D->group, kp = D->kp;
  const size_t pbase = param_index(D, r, 0);  // group g's four entries at pbase + 4 g
  for (int j0 = 0; j0 < nb; j0 += SMM_ROWS) {
    const int n = nb - j0 < SMM_ROWS ? nb - j0 : SMM_ROWS;
    const uint8_t* a = (const uint8_t*)(uintptr_t)act_at(act, as, j0);
    v128_t *acc = scr, *part = scr + SMM_ROWS;
    int32_t* sq = (int32_t*)(scr + 2 * SMM_ROWS);  // 32-weight steps: row j's activation sum of step t at n t + j
    for (int j = 0; j < n; j++) {
      acc[j] = wasm_f32x4_splat(0);
      if (!G16) {
        const actq A = act_view(act_at(act, as, j0 + j), kp);
        for (int t = 0; t < kp / 32; t++) sq[n * t + j] = A.s[2 * t] + A.s[2 * t + 1];
      }
    }
    sl_group4 P = sl_group_params_at(D, pbase, 1, B);
    int g = 0, next = G;
    for (int blk = 0; blk < nblk; blk++) {
      const uint8_t* gp = tile + (size_t)blk * 64 * B;
#pragma clang loop unroll(full)
      for (int m = 0; m < 4; m++) {
        const int k = blk * 128 + 32 * m;
        v128_t c[8];
        for (int j = 0; j < 4; j++) sl_il_codes(gp, j, m, B, TBL, T, &c[j], &c[4 + j]);
        if (G16) {
          for (int h = 0; h < 2; h++) {
            const int kk = k + 16 * h;
            if (kk == next) {
              if (g + 1 < D->ngroups) P = sl_group_params_at(D, pbase + 4 * (size_t)++g, 1, B);
              next += G;
            }
            smm_step(c + 4 * h, 4, &P, a, as, n, kp, kk, acc, part, 0, DK, HASOFF);
          }
        } else {
          if (k == next) {
            if (g + 1 < D->ngroups) P = sl_group_params_at(D, pbase + 4 * (size_t)++g, 1, B);
            next += G;
          }
          smm_step(c, 8, &P, a, as, n, kp, k, acc, part, sq + (size_t)n * (k >> 5), DK, HASOFF);
        }
      }
    }
    for (int j = 0; j < n; j++) wasm_v128_store(y + (size_t)(j0 + j) * ys + r, acc[j]);
  }
}

/** Each specialisation its own function (as SL_Q8_FN). */
#define SMM_FN(B, DK, TBL, G16)                                                                              \
  static __attribute__((noinline)) void smm_##B##_##DK##_##TBL##_##G16(                                      \
      const wdesc* D, const uint8_t* tile, int32_t act, int32_t as, int nb, v128_t* scr, const v128_t* T,    \
      float* y, int ys, int r) {                                                                             \
    if (TBL && D->offsets) smm_tile(D, tile, act, as, nb, scr, T, y, ys, r, B, DK, TBL, G16, 1);            \
    else smm_tile(D, tile, act, as, nb, scr, T, y, ys, r, B, DK, TBL, G16, 0);                               \
  }
SMM_FN(2, DK_U4, 0, 0)
SMM_FN(3, DK_U4, 0, 0)
SMM_FN(4, DK_U4, 0, 0)
SMM_FN(4, DK_U5, 1, 0)
SMM_FN(2, DK_U4, 0, 1)
SMM_FN(3, DK_U4, 0, 1)
SMM_FN(4, DK_U4, 0, 1)
SMM_FN(5, DK_U5, 0, 1)
SMM_FN(4, DK_U5, 1, 1)
#undef SMM_FN

/** Runs the interleaved tile at r through smm_tile when its kind has a specialisation; 0 otherwise. */
INLINE int smm_run(const wdesc* D, const uint8_t* tile, int32_t act, int32_t as, int nb, v128_t* scr,
                   const v128_t* T, float* y, int ys, int r) {
#define SMM_CALL(B, DK, TBL, G16) smm_##B##_##DK##_##TBL##_##G16(D, tile, act, as, nb, scr, T, y, ys, r)
  const int ig = D->elem == ELEM_INT && D->group == 16;
  if (D->elem == ELEM_INT && D->offsets) return 0;  // offsets are the tables' (SMM_FN's HASOFF)
  // Kinds that won against the decode-to-scratch path (same-process A/B, 4096 x 4096, batch 8 / 32, 1 thread,
  // weights cold; docs/engine.md "Prefill for mixq's own formats"): 1..4-bit integers (relaxed 1.09-1.39x,
  // SIMD128 1.12-1.30x), groups of 16 (int4 g16 1.37x / 1.48-1.54x), MXFP4 (1.12-1.20x), NVFP4 (1.49-1.56x).
  // int5 g32 / int6 per row (DK_U6: relaxed 0.82x at batch 32, SIMD128 0.93-1.00x), FP6 (DK_U7: 0.77-0.93x)
  // and int8 (1.00x) keep it.
  const int in = D->elem == ELEM_INT && D->group != 16;
  if (in && D->bits == 2) SMM_CALL(2, DK_U4, 0, 0);
  else if (in && D->bits == 3) SMM_CALL(3, DK_U4, 0, 0);
  else if (in && D->bits == 4) SMM_CALL(4, DK_U4, 0, 0);
  else if (D->group != 16 && D->elem != ELEM_INT && D->bits == 4 && D->dot_class == DOT_U6 && sl_qmax16(D) <= 32)
    SMM_CALL(4, DK_U5, 1, 0);  // MXFP4, FP4 per row: E2M1 times 2, shifted, 0..24
  else if (ig && D->bits == 2) SMM_CALL(2, DK_U4, 0, 1);
  else if (ig && D->bits == 3) SMM_CALL(3, DK_U4, 0, 1);
  else if (ig && D->bits == 4) SMM_CALL(4, DK_U4, 0, 1);
  else if (ig && D->bits == 5) SMM_CALL(5, DK_U5, 0, 1);
  else if (D->elem != ELEM_INT && D->bits == 4 && D->dot_class == DOT_U6 && sl_qmax16(D) <= 32)
    SMM_CALL(4, DK_U5, 1, 1);
  else return 0;
#undef SMM_CALL
  return 1;
}

// ---- int8 path, matrix x matrix on interleaved tiles of sl_il_tile_q8_g32's kind (issue 21, session 7) ----
// ggml.h's relaxed Q4_0 batch path (ilm_q4_relaxed, q4_zp_table) for the sliced formats: per call a table of
// each activation row's per-step terms (smm_g32_table), then per tile and 32-weight step the codes decoded
// once and held in registers while one activation row per iteration takes its integer sums, the table's
// zero-point term and scale, and one fmadd (the relaxed build runs two tiles together: smm_g32_pair). Each
// row's steps are sl_il_tile_q8_g32's operations on the same values in the same order (S - z sq as int32;
// fmadd(convert(S), m * (dx 2^112), acc), m from f16x4_bits), so every batch row equals its matvec bit for bit.

/**
 * Fills tab for activation rows j < n at act (as bytes apart): per 32-weight step t, n int32 zero-point
 * terms z * sq (sl_il_tile_q8_g32's zsq) then n floats dx 2^112 (its dx), at tab + 2 n t. Returns 0 (the
 * table unusable) if an activation scale is >= 2^16 (dx 2^112 not finite: the generic path then).
 */
INLINE int smm_g32_table(int32_t act, int32_t as, int n, int kp, int z, int32_t* tab) {
  int ok = 1;
  for (int j = 0; j < n; j++) {
    const actq A = act_view(act_at(act, as, j), kp);
    for (int t = 0; t < kp / 32; t++) {
      tab[2 * (size_t)n * t + j] = z * (A.s[2 * t] + A.s[2 * t + 1]);
      ((float*)tab)[2 * (size_t)n * t + n + j] = A.d[t] * F16_REBIAS;
      ok &= A.d[t] < 65536.0f;
    }
  }
  return ok;
}

/**
 * An interleaved tile (rows r .. r+3, all real, at `tile`; its 16 fp16 scales per block at sp) against
 * activation rows j < n at act (n <= SMM_ROWS; tab: smm_g32_table's; accs: n vectors of scratch; part: n
 * more, SIMD128 only). Relaxed: smm_sum's eight i16 dots per row, their pairs added by one
 * i32x4.dot_i16x8_s with ones held in a register (the relaxed build runs this for a tile left without a
 * pair: smm_g32_pair). SIMD128: the codes widened per 16-weight half, the first half's sums kept in part[j]
 * (smm_step's way).
 */
INLINE void smm_g32_tile(const wdesc* D, const uint8_t* tile, const uint8_t* sp, int32_t act, int32_t as, int n,
                         const int32_t* tab, v128_t* accs, v128_t* part, float* y, int ys, int r, const int B,
                         const int DK) {
  const int nblk = D->kp / 128, kp = D->kp;
  for (int j = 0; j < n; j++) accs[j] = wasm_f32x4_splat(0);
  const uint8_t* a0 = (const uint8_t*)(uintptr_t)act;
  v128_t ones = wasm_i16x8_splat(1);  // opaque: as a constant, V8's code takes it from memory again
  SL_OPAQUE(ones);
  for (int blk = 0; blk < nblk; blk++) {
    const uint8_t* gp = tile + (size_t)blk * 64 * B;
    const uint8_t* sb = sp + 32 * (size_t)blk;
#pragma clang loop unroll(full)
    for (int m = 0; m < 4; m++) {
      const int k = blk * 128 + 32 * m;
      v128_t c[8];
      for (int j = 0; j < 4; j++) sl_il_codes(gp, j, m, B, 0, 0, &c[j], &c[4 + j]);
      const v128_t ms = f16x4_bits(wasm_v128_load64_zero(sb + 8 * m));
      const int32_t* zt = tab + 2 * (size_t)n * (size_t)(k >> 5);  // zt[j]: z sq; zt[n + j]: dx 2^112
      if (!SMM_WIDE(DK)) {
        const uint8_t* p = a0 + k;
        _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, p += as) {
          // smm_sum's i16 dots, then their pairs added by i32x4.dot_i16x8_s with ones (one vpmaddwd on a
          // register; V8 gives extadd_pairwise the same vpmaddwd on a constant it addresses in memory each time:
          // 1.03-1.05x, same-process A/B, batch 32, 1 thread)
          v128_t s16 = rdot16(c[0], wasm_v128_load32_splat(p));
          _Pragma("clang loop unroll(full)") for (int q = 1; q < 8; q++)
            s16 = wasm_i16x8_add(s16, rdot16(c[q], wasm_v128_load32_splat(p + 16 * (q >> 2) + 4 * (q & 3))));
          const v128_t S = wasm_i32x4_sub(wasm_i32x4_dot_i16x8(s16, ones), wasm_v128_load32_splat(zt + j));
          accs[j] = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(ms, wasm_v128_load32_splat(zt + n + j)),
                          accs[j]);
        }
        continue;
      }
      _Pragma("clang loop unroll(full)") for (int h = 0; h < 2; h++) {
        v128_t w[8];
        _Pragma("clang loop unroll(full)") for (int q = 0; q < 4; q++) {
          w[2 * q] = wasm_u16x8_extend_low_u8x16(c[4 * h + q]);
          w[2 * q + 1] = wasm_u16x8_extend_high_u8x16(c[4 * h + q]);
        }
        const uint8_t* p = a0 + (size_t)kp + 2 * (size_t)k;  // row 0's int16 activations at k
        _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, p += as) {
          v128_t S = smm_sum(c, w, 0, (const int16_t*)p + 16 * h, 4, DK);
          if (h == 0) {
            part[j] = S;
            continue;
          }
          S = wasm_i32x4_sub(wasm_i32x4_add(part[j], S), wasm_v128_load32_splat(zt + j));
          accs[j] = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(ms, wasm_v128_load32_splat(zt + n + j)),
                          accs[j]);
        }
      }
    }
  }
  for (int j = 0; j < n; j++) wasm_v128_store(y + (size_t)j * ys + r, accs[j]);
}

#if MIXQ_RELAXED
/**
 * Two interleaved tiles (rows r .. r+7, all real: tiles at ta, tb, their fp16 scales at sa, sb0) against
 * activation rows j < n (relaxed only; tab: smm_g32_table's; accs: 2 n vectors, tile a's row j at j, b's at
 * n + j; part: 2 n vectors). Per 32-weight step two passes over the rows, one per 16-weight half, with
 * both tiles' four code vectors of the half in registers: each activation broadcast serves two dots (one
 * per tile) and each row's z sq and dx splats both tiles; the first half's int16 sums (four dots, exact)
 * wait in part. Per row and step 4 + 4 broadcasts for 8 rows where smm_g32_tile takes 8 for 4, at the cost
 * of a store and a load of the half sums (and V8's x64 code reloads four spilled vectors per row in the
 * second pass: 8 codes, ms of both tiles and ones leave no room). Same-process A/B against smm_g32_tile
 * alone (with extadd_pairwise), 4096 x 4096 int4 g32, relaxed, weights cold: batch 32 1.07x on 1 and 2
 * threads (another run 1.11-1.13x on 1), batch 8 1.13x / 1.18x. Each output's integer sum (the same exact int16
 * and int32 values in another order), zero-point term and float step are smm_g32_tile's, in its order.
 */
INLINE void smm_g32_pair(const wdesc* D, const uint8_t* ta, const uint8_t* sa, const uint8_t* tb, const uint8_t* sb0,
                         int32_t act, int32_t as, int n, const int32_t* tab, v128_t* accs, v128_t* part, float* y,
                         int ys, int r, const int B) {
  const int nblk = D->kp / 128;
  for (int j = 0; j < 2 * n; j++) accs[j] = wasm_f32x4_splat(0);
  const uint8_t* a0 = (const uint8_t*)(uintptr_t)act;
  v128_t ones = wasm_i16x8_splat(1);
  SL_OPAQUE(ones);
  for (int blk = 0; blk < nblk; blk++) {
    const uint8_t* gpa = ta + (size_t)blk * 64 * B;
    const uint8_t* gpb = tb + (size_t)blk * 64 * B;
#pragma clang loop unroll(full)
    for (int m = 0; m < 4; m++) {
      const int k = blk * 128 + 32 * m;
      const int32_t* zt = tab + 2 * (size_t)n * (size_t)(k >> 5);
      {
        v128_t c[8], u;
        for (int j = 0; j < 4; j++) sl_il_codes(gpa, j, m, B, 0, 0, &c[j], &u);
        for (int j = 0; j < 4; j++) sl_il_codes(gpb, j, m, B, 0, 0, &c[4 + j], &u);
        const uint8_t* p = a0 + k;
        _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, p += as) {
          v128_t x = wasm_v128_load32_splat(p);
          v128_t s0 = rdot16(c[0], x), s1 = rdot16(c[4], x);
          _Pragma("clang loop unroll(full)") for (int q = 1; q < 4; q++) {
            x = wasm_v128_load32_splat(p + 4 * q);
            s0 = wasm_i16x8_add(s0, rdot16(c[q], x));
            s1 = wasm_i16x8_add(s1, rdot16(c[4 + q], x));
          }
          part[j] = s0;
          part[n + j] = s1;
        }
      }
      {
        v128_t c[8], u;
        for (int j = 0; j < 4; j++) sl_il_codes(gpa, j, m, B, 0, 0, &u, &c[j]);
        for (int j = 0; j < 4; j++) sl_il_codes(gpb, j, m, B, 0, 0, &u, &c[4 + j]);
        const v128_t ma = f16x4_bits(wasm_v128_load64_zero(sa + 32 * (size_t)blk + 8 * m));
        const v128_t mb = f16x4_bits(wasm_v128_load64_zero(sb0 + 32 * (size_t)blk + 8 * m));
        const uint8_t* p = a0 + k + 16;
        _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, p += as) {
          v128_t s0 = part[j], s1 = part[n + j];
          _Pragma("clang loop unroll(full)") for (int q = 0; q < 4; q++) {
            const v128_t x = wasm_v128_load32_splat(p + 4 * q);
            s0 = wasm_i16x8_add(s0, rdot16(c[q], x));
            s1 = wasm_i16x8_add(s1, rdot16(c[4 + q], x));
          }
          const v128_t z = wasm_v128_load32_splat(zt + j), d = wasm_v128_load32_splat(zt + n + j);
          const v128_t S0 = wasm_i32x4_sub(wasm_i32x4_dot_i16x8(s0, ones), z);
          const v128_t S1 = wasm_i32x4_sub(wasm_i32x4_dot_i16x8(s1, ones), z);
          accs[j] = fmadd(wasm_f32x4_convert_i32x4(S0), wasm_f32x4_mul(ma, d), accs[j]);
          accs[n + j] = fmadd(wasm_f32x4_convert_i32x4(S1), wasm_f32x4_mul(mb, d), accs[n + j]);
        }
      }
    }
  }
  for (int j = 0; j < n; j++) {
    wasm_v128_store(y + (size_t)j * ys + r, accs[j]);
    wasm_v128_store(y + (size_t)j * ys + r + 4, accs[n + j]);
  }
}
#define SMM_G32_PAIR_FN(B)                                                                                   \
  static __attribute__((noinline)) void smm_g32_pair_##B(                                                    \
      const wdesc* D, const uint8_t* ta, const uint8_t* sa, const uint8_t* tb, const uint8_t* sb,            \
      int32_t act, int32_t as, int n, const int32_t* tab, v128_t* accs, v128_t* part, float* y, int ys, int r) { \
    smm_g32_pair(D, ta, sa, tb, sb, act, as, n, tab, accs, part, y, ys, r, B);                               \
  }
SMM_G32_PAIR_FN(2)
SMM_G32_PAIR_FN(3)
SMM_G32_PAIR_FN(4)
#undef SMM_G32_PAIR_FN
#endif

/** Each width its own function (as SMM_FN). */
#define SMM_G32_FN(B)                                                                                        \
  static __attribute__((noinline)) void smm_g32_##B(const wdesc* D, const uint8_t* tile, const uint8_t* sp,  \
                                                    int32_t act, int32_t as, int n, const int32_t* tab,      \
                                                    v128_t* accs, v128_t* part, float* y, int ys, int r) {   \
    smm_g32_tile(D, tile, sp, act, as, n, tab, accs, part, y, ys, r, B, DK_U4);                              \
  }
SMM_G32_FN(2)
SMM_G32_FN(3)
SMM_G32_FN(4)
#undef SMM_G32_FN

/**
 * Whether weight D is of sl_il_tile_q8_g32's kind with 2..4-bit integer codes (as mv_sl_q8_impl decides it:
 * interleaved tiles, fp16 scales, groups of 32 covering kp, constant zero code, no offsets).
 */
INLINE int smm_g32_kind(const wdesc* D) {
  return D->elem == ELEM_INT && D->bits >= 2 && D->bits <= 4 && D->interleave == 4 && D->zero_kind == ZERO_CONST &&
         D->scale_kind == SCALE_F16 && D->group == 32 && !D->offsets && D->ngroups * 32 == D->kp;
}

EXPORT void mm_sliced_q8(int32_t desc, int32_t act, int32_t as, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                         int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const int kp = D->kp, B = D->bits;
  uint8_t* codes = (uint8_t*)(uintptr_t)scratch;
  sl_group4* gp = (sl_group4*)(codes + 4 * (size_t)kp);
  const v128_t* Tq = 0;
  v128_t T[4];
  sl_load_qtable(D, T);
  if (D->elem != ELEM_INT) Tq = T;
  float* yp = (float*)(uintptr_t)y;
  // sl_il_tile_q8_g32's kind, up to SMM_ROWS activation rows: smm_g32 (scratch: 2 SMM_ROWS vectors, then its
  // table, nb kp / 4 bytes <= 16 kp; the relaxed build's smm_g32_pair: 2 nb accumulators in the first 2 KiB,
  // its 2 nb int16 partial sums after the table, in the >= 6 KiB context.ts scratchBytes leaves there)
  int32_t* g32tab = 0;
  if (nb > 1 && nb <= SMM_ROWS && smm_g32_kind(D) &&
      smm_g32_table(act, as, nb, kp, D->zc, (int32_t*)(uintptr_t)scratch + 4 * 2 * SMM_ROWS))
    g32tab = (int32_t*)(uintptr_t)scratch + 4 * 2 * SMM_ROWS;
  for (int r = r0; r < r1; r += 4) {
    int rr[4];
    const uint8_t* p[4];
    sl_tile(D, r, r1 - 1, rr, p);
    if (g32tab && sl_il_tile(D, r)) {
      const uint8_t* sp = (const uint8_t*)(uintptr_t)D->scales + 2 * param_index(D, r, 0);
      v128_t* accs = (v128_t*)(uintptr_t)scratch;
#if MIXQ_RELAXED
      if (r + 4 < r1 && sl_il_tile(D, r + 4)) {
        const uint8_t* tb = (const uint8_t*)(uintptr_t)D->data + (size_t)(r + 4) * D->row_bytes;
        const uint8_t* sb = (const uint8_t*)(uintptr_t)D->scales + 2 * param_index(D, r + 4, 0);
        v128_t* part = (v128_t*)(uintptr_t)(((uintptr_t)g32tab + (size_t)nb * kp / 4 + 15) & ~(uintptr_t)15);
        if (B == 2) smm_g32_pair_2(D, p[0], sp, tb, sb, act, as, nb, g32tab, accs, part, yp, ys, r);
        else if (B == 3) smm_g32_pair_3(D, p[0], sp, tb, sb, act, as, nb, g32tab, accs, part, yp, ys, r);
        else smm_g32_pair_4(D, p[0], sp, tb, sb, act, as, nb, g32tab, accs, part, yp, ys, r);
        r += 4;
        continue;
      }
#endif
      if (B == 2) smm_g32_2(D, p[0], sp, act, as, nb, g32tab, accs, accs + SMM_ROWS, yp, ys, r);
      else if (B == 3) smm_g32_3(D, p[0], sp, act, as, nb, g32tab, accs, accs + SMM_ROWS, yp, ys, r);
      else smm_g32_4(D, p[0], sp, act, as, nb, g32tab, accs, accs + SMM_ROWS, yp, ys, r);
      continue;
    }
    if (sl_il_tile(D, r) && smm_run(D, p[0], act, as, nb, (v128_t*)(uintptr_t)scratch, T, yp, ys, r)) continue;
    for (int g = 0; g < D->ngroups; g++) gp[g] = sl_group_params(D, r, g, 1, B);
    // interleaved codes: the SIMD128 build runs them as they lie (measured 1.2x over row-major ones, batch 8);
    // the relaxed build's i16 dots on row-major codes measured faster than on interleaved (1.25x), so there
    // each decoded vector's four 32-bit lanes go to their rows
    if (sl_il_tile(D, r)) {
      // relaxed: interleaved order into the scratch after the group parameters, then rows into `codes`
      uint8_t* ilc = MIXQ_RELAXED ? (uint8_t*)(gp + D->ngroups) : codes;
      for (int blk = 0; blk < kp / 128; blk++)
        for (int j = 0; j < 4; j++) {
          v128_t c[8];
          sl_unpack_block(p[0] + (size_t)blk * 64 * B + 16 * j, B, 64, c);  // c[t]: weights 16t + 4j ..
          for (int t = 0; t < 8; t++) {
            if (Tq) c[t] = sl_qlookup_n(c[t], Tq, B);
            wasm_v128_store(ilc + 4 * (size_t)(128 * blk + 32 * (t >> 1)) + 16 * (4 * (t & 1) + j), c[t]);
          }
        }
      if (MIXQ_RELAXED)
        for (int k = 0; k < kp; k += 16) {  // four vectors of half (k >> 4) & 1 of the 32 weights: transpose
          const uint8_t* v = ilc + 4 * (size_t)(k & ~31) + 64 * ((k >> 4) & 1);
          const v128_t v0 = wasm_v128_load(v), v1 = wasm_v128_load(v + 16);
          const v128_t v2 = wasm_v128_load(v + 32), v3 = wasm_v128_load(v + 48);
          const v128_t a = wasm_i32x4_shuffle(v0, v1, 0, 4, 1, 5), b = wasm_i32x4_shuffle(v2, v3, 0, 4, 1, 5);
          const v128_t e = wasm_i32x4_shuffle(v0, v1, 2, 6, 3, 7), f = wasm_i32x4_shuffle(v2, v3, 2, 6, 3, 7);
          wasm_v128_store(codes + k, wasm_i32x4_shuffle(a, b, 0, 1, 4, 5));
          wasm_v128_store(codes + kp + k, wasm_i32x4_shuffle(a, b, 2, 3, 6, 7));
          wasm_v128_store(codes + 2 * (size_t)kp + k, wasm_i32x4_shuffle(e, f, 0, 1, 4, 5));
          wasm_v128_store(codes + 3 * (size_t)kp + k, wasm_i32x4_shuffle(e, f, 2, 3, 6, 7));
        }
      MM_SL_Q8_DISPATCH(!MIXQ_RELAXED);
      continue;
    }
    for (int blk = 0; blk < kp / 128; blk++)
      for (int i = 0; i < 4; i++) {
        v128_t c[8];
        sl_unpack_block(p[i] + (size_t)blk * 16 * B, B, 16, c);
        for (int t = 0; t < 8; t++)
          wasm_v128_store(codes + (size_t)i * kp + 128 * blk + 16 * t, Tq ? sl_qlookup_n(c[t], Tq, B) : c[t]);
      }
    MM_SL_Q8_DISPATCH(0);
  }
}
#undef MM_SL_Q8_DISPATCH
#endif

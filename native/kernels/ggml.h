// ggml block types read as GGUF stores them (src/blocks/ggml/*.ts has each bit layout and is the
// reference). Every type is read in chunks of 32 weights; a chunk gives its codes and the numbers that
// turn them into values:
//
//   value = d * sc_h * (c - z) + dm * m_h          h = which 16 of the chunk
//
//   type    z   d                  sc_h (integer)           dm, m_h                c
//   Q4_0    8   fp16 d             1                        -                      nibble
//   Q4_1    0   fp16 d             1                        fp16 m, 1              nibble
//   Q5_0    16  fp16 d             1                        -                      nibble | qh bit << 4
//   Q5_1    0   fp16 d             1                        fp16 m, 1              nibble | qh bit << 4
//   Q8_0    0   fp16 d             1                        -                      int8
//   Q2_K    0   fp16 d             sc & 15 (per 16)         -fp16 dmin, sc >> 4     2 bits
//   Q3_K    4   fp16 d             6-bit scale - 32 (16)    -                      2 bits | hmask bit << 2
//   Q4_K    0   fp16 d             6-bit scale (per 32)     -fp16 dmin, 6-bit min   nibble
//   Q5_K    0   fp16 d             6-bit scale (per 32)     -fp16 dmin, 6-bit min   nibble | qh bit << 4
//   Q6_K    32  fp16 d             int8 scale (per 16)      -                      nibble | 2 qh bits << 4
//   IQ4_NL  0   fp16 d             1                        -                      kvalues_iq4nl[nibble]
//   MXFP4   12  2^(e - 128)        1                        -                      kvalues_mxfp4[nibble] + 12
//
// Float32 path: each weight rounded exactly as ggml's dequantize_row (src/blocks/ggml):
//   w = fl( fl( fl(d * sc_h) * (c - z) ) + fl(dm * m_h) )      (the addition only where a type has minima)
// int8 path (llama.cpp's scheme): per chunk and activation block of scale dx,
//   dx * ( d * sum_h sc_h * (sum c q - z * sum q)_h  +  dm * sum_h m_h * (sum q)_h )
// with integer sums (exact) and float32 scaling.
#ifndef MIXQ_KERNELS_GGML_H
#define MIXQ_KERNELS_GGML_H
#include "common.h"
#include "dense.h"

enum { GT_Q4_0 = 2, GT_Q4_1 = 3, GT_Q5_0 = 6, GT_Q5_1 = 7, GT_Q8_0 = 8, GT_Q2_K = 10, GT_Q3_K = 11,
       GT_Q4_K = 12, GT_Q5_K = 13, GT_Q6_K = 14, GT_IQ4_NL = 20, GT_MXFP4 = 39 };

static const int8_t KV_IQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
// kvalues_mxfp4 (2 x E2M1) + 12, so that the codes are 0..24
static const int8_t KV_MXFP4_12[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};

INLINE int ggml_qk(const int T) { return T >= GT_Q2_K && T <= GT_Q6_K ? 256 : 32; }
INLINE int ggml_block_bytes(const int T) {
  switch (T) {
    case GT_Q4_0: return 18;
    case GT_Q4_1: return 20;
    case GT_Q5_0: return 22;
    case GT_Q5_1: return 24;
    case GT_Q8_0: return 34;
    case GT_Q2_K: return 84;
    case GT_Q3_K: return 110;
    case GT_Q4_K: return 144;
    case GT_Q5_K: return 176;
    case GT_Q6_K: return 210;
    case GT_IQ4_NL: return 18;
    default: return 17;
  }
}
INLINE int ggml_zero(const int T) {
  return T == GT_Q4_0 ? 8 : T == GT_Q5_0 ? 16 : T == GT_Q3_K ? 4 : T == GT_Q6_K ? 32 : T == GT_MXFP4 ? 12 : 0;
}
INLINE int ggml_signed(const int T) { return T == GT_Q8_0 || T == GT_IQ4_NL; }
INLINE int ggml_has_min(const int T) {
  return T == GT_Q4_1 || T == GT_Q5_1 || T == GT_Q2_K || T == GT_Q4_K || T == GT_Q5_K;
}
INLINE int ggml_halves(const int T) { return T == GT_Q2_K || T == GT_Q3_K || T == GT_Q6_K; }
INLINE float e8m0_half(uint32_t e) { return f32_from_bits(e >= 2 ? (e - 1) << 23 : 0x00200000u << e); }

typedef struct {
  v128_t c0, c1;       // codes of weights 0..15 and 16..31 of the chunk (u8, or int8 for signed types)
  int32_t sc0, sc1;    // integer sub-scales
  int32_t m0, m1;      // integer minima
  float d, dm;
} gchunk;

/** Q4_K / Q5_K: 6-bit scale and min of sub-block j (get_scale_min_k4). */
INLINE void scale_min_k4(const uint8_t* q, int j, int32_t* sc, int32_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
/** Q3_K: 6-bit scale j of 16 (before the - 32). */
INLINE int32_t q3k_scale(const uint8_t* s, int j) {
  int low = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
  return low | (((s[8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4);
}
/** 16 lanes of bit (16 h + lane) of a little-endian 32-bit word, as 0 / `val`. */
INLINE v128_t qh_bits16(uint32_t qh, int h, int val) {
  v128_t w = wasm_i32x4_splat((int32_t)(qh >> (16 * h)));
  v128_t b = wasm_i8x16_swizzle(w, wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  v128_t m = wasm_i8x16_make(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return wasm_v128_and(wasm_i8x16_ne(wasm_v128_and(b, m), wasm_i8x16_splat(0)), wasm_i8x16_splat(val));
}

/** Chunk j (32 weights) of the block at `b`. */
INLINE gchunk ggml_chunk(const int T, const uint8_t* b, int j) {
  gchunk g;
  g.sc0 = g.sc1 = 1;
  g.m0 = g.m1 = 0;
  g.dm = 0;
  const v128_t m4 = wasm_i8x16_splat(15);
  switch (T) {
    case GT_Q4_0:
    case GT_IQ4_NL:
    case GT_MXFP4: {
      const uint8_t* qs = b + (T == GT_MXFP4 ? 1 : 2);
      v128_t v = wasm_v128_load(qs);
      g.c0 = wasm_v128_and(v, m4);
      g.c1 = bits8(v, 4, m4);
      if (T != GT_Q4_0) {
        v128_t t = wasm_v128_load(T == GT_MXFP4 ? KV_MXFP4_12 : KV_IQ4NL);
        g.c0 = wasm_i8x16_swizzle(t, g.c0);
        g.c1 = wasm_i8x16_swizzle(t, g.c1);
      }
      g.d = T == GT_MXFP4 ? e8m0_half(b[0]) : read_f16(b);
      break;
    }
    case GT_Q4_1: {
      v128_t v = wasm_v128_load(b + 4);
      g.c0 = wasm_v128_and(v, m4);
      g.c1 = bits8(v, 4, m4);
      g.d = read_f16(b);
      g.dm = read_f16(b + 2);
      g.m0 = g.m1 = 1;
      break;
    }
    case GT_Q5_0:
    case GT_Q5_1: {
      const int o = T == GT_Q5_0 ? 2 : 4;
      uint32_t qh = (uint32_t)b[o] | ((uint32_t)b[o + 1] << 8) | ((uint32_t)b[o + 2] << 16) | ((uint32_t)b[o + 3] << 24);
      v128_t v = wasm_v128_load(b + o + 4);
      g.c0 = wasm_v128_or(wasm_v128_and(v, m4), qh_bits16(qh, 0, 16));
      g.c1 = wasm_v128_or(bits8(v, 4, m4), qh_bits16(qh, 1, 16));
      g.d = read_f16(b);
      if (T == GT_Q5_1) {
        g.dm = read_f16(b + 2);
        g.m0 = g.m1 = 1;
      }
      break;
    }
    case GT_Q8_0:
      g.c0 = wasm_v128_load(b + 2);
      g.c1 = wasm_v128_load(b + 18);
      g.d = read_f16(b);
      break;
    case GT_Q2_K: {
      const int h = j >> 2, s = 2 * (j & 3);
      const uint8_t* q = b + 16 + 32 * h;
      const v128_t m3 = wasm_i8x16_splat(3);
      g.c0 = bits8(wasm_v128_load(q), s, m3);
      g.c1 = bits8(wasm_v128_load(q + 16), s, m3);
      const uint8_t s0 = b[8 * h + 2 * (j & 3)], s1 = b[8 * h + 2 * (j & 3) + 1];
      g.sc0 = s0 & 15;
      g.sc1 = s1 & 15;
      g.m0 = s0 >> 4;
      g.m1 = s1 >> 4;
      g.d = read_f16(b + 80);
      g.dm = -read_f16(b + 82);
      break;
    }
    case GT_Q3_K: {
      const int h = j >> 2, s = 2 * (j & 3);
      const v128_t m3 = wasm_i8x16_splat(3), one = wasm_i8x16_splat(1);
      const uint8_t* q = b + 32 + 32 * h;
      v128_t lo0 = bits8(wasm_v128_load(q), s, m3);
      v128_t lo1 = bits8(wasm_v128_load(q + 16), s, m3);
      v128_t hi0 = bits8(wasm_v128_load(b), j, one);
      v128_t hi1 = bits8(wasm_v128_load(b + 16), j, one);
      g.c0 = wasm_v128_or(lo0, shl8(hi0, 2));
      g.c1 = wasm_v128_or(lo1, shl8(hi1, 2));
      g.sc0 = q3k_scale(b + 96, 2 * j) - 32;
      g.sc1 = q3k_scale(b + 96, 2 * j + 1) - 32;
      g.d = read_f16(b + 108);
      break;
    }
    case GT_Q4_K:
    case GT_Q5_K: {
      const uint8_t* qs = b + (T == GT_Q4_K ? 16 : 48) + 32 * (j >> 1);
      const int sh = 4 * (j & 1);
      g.c0 = bits8(wasm_v128_load(qs), sh, m4);
      g.c1 = bits8(wasm_v128_load(qs + 16), sh, m4);
      if (T == GT_Q5_K) {
        const v128_t one = wasm_i8x16_splat(1);
        g.c0 = wasm_v128_or(g.c0, shl8(bits8(wasm_v128_load(b + 16), j, one), 4));
        g.c1 = wasm_v128_or(g.c1, shl8(bits8(wasm_v128_load(b + 32), j, one), 4));
      }
      int32_t sc, m;
      scale_min_k4(b + 4, j, &sc, &m);
      g.sc0 = g.sc1 = sc;
      g.m0 = g.m1 = m;
      g.d = read_f16(b);
      g.dm = -read_f16(b + 2);
      break;
    }
    default: {  // Q6_K
      const int h = j >> 2, part = j & 3;
      const uint8_t* ql = b + 64 * h + (part & 1 ? 32 : 0);
      const uint8_t* qh = b + 128 + 32 * h;
      const int nsh = 4 * (part >> 1), hsh = 2 * part;
      const v128_t m2 = wasm_i8x16_splat(3);
      g.c0 = wasm_v128_or(bits8(wasm_v128_load(ql), nsh, m4),
                          shl8(bits8(wasm_v128_load(qh), hsh, m2), 4));
      g.c1 = wasm_v128_or(bits8(wasm_v128_load(ql + 16), nsh, m4),
                          shl8(bits8(wasm_v128_load(qh + 16), hsh, m2), 4));
      const int8_t* sc = (const int8_t*)(b + 192 + 8 * h);
      g.sc0 = sc[2 * part];
      g.sc1 = sc[2 * part + 1];
      g.d = read_f16(b + 208);
      break;
    }
  }
  return g;
}

/** Chunk k (a multiple of 32) of a row. */
INLINE gchunk ggml_row_chunk(const int T, const uint8_t* row, int k) {
  const int qk = ggml_qk(T);
  return ggml_chunk(T, row + (size_t)(k / qk) * ggml_block_bytes(T), (k % qk) / 32);
}

// ---- llama.cpp's Q8_0 activations: act_q8 (dense.h) with each block scale rounded to fp16 ----

/** x rounded to the nearest binary16 value (ties to even), as float32: overflow to inf, NaN kept. */
INLINE float f16_round(float x) {
  const uint32_t u = ((union { float f; uint32_t u; }){x}).u, sign = u & 0x80000000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return x;                                                   // NaN
  if (a >= 0x477ff000u) return f32_from_bits(sign | 0x7f800000u);                  // >= 65520: inf
  if (a >= 0x38800000u)                                                            // normal binary16
    return f32_from_bits(sign | ((a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu));
  // subnormal binary16 (quantum 2^-24): scaled by 2^24, rounded to an integer (ties to even), scaled back
  const float m = __builtin_rintf(f32_from_bits(a) * 16777216.0f) * 5.9604644775390625e-8f;
  return f32_from_bits(sign | ((union { float f; uint32_t u; }){m}).u);
}

/**
 * The 'q8' activations of ggml weights: act_q8's codes (ties to even, id = 1 / d) with each block scale
 * stored as llama.cpp stores it, in fp16 (block_q8_0.d): the products then scale by the same d as
 * llama.cpp's (reference: activations.ts quantizeQ8Reference with scale 'f16').
 */
EXPORT void act_q8_ggml(int32_t x, int32_t kp, int32_t out) {
  act_q8(x, kp, out);
  float* d = act_out((uint32_t)out, kp).d;
  for (int b = 0; b < kp / 32; b++) d[b] = f16_round(d[b]);
}

// ---- 4-row interleaved tiles (Q4_0, IQ4_NL, Q8_0; desc.aux = 4, made at load by ggml_interleave) ----
// llama.cpp's CPU backend repacks these types at load (q4_0_4x4 / q8_0_4x4 style); mixq does the same,
// keeping the size: the 4 * row_bytes bytes of a full tile of rows r .. r+3 (r a multiple of 4, r + 4 <=
// rows) hold, per block b, a group of 4 * bb bytes at b * 4 * bb:
//   bytes 0..7     the fp16 d of rows 0..3 (one 8-byte load: four scales, converted as one vector)
//   bytes 8 + ...  the block's code bytes (16 for Q4_0 / IQ4_NL, 32 for Q8_0) as 4-byte pieces: piece t of
//                  row i at 8 + 16 t + 4 i
// so one 16-byte load holds four code bytes of each row, the integer dot of the four rows against four
// activations (one 32-bit splat load) lands row i in lanes 2i, 2i + 1 and a block ends as [row 0..3] i32x4:
// one conversion and one float scaling per block for four rows, no horizontal sums. A last tile of fewer
// than 4 rows stays as stored. The reference (src/kernels/ggml.ts) undoes the layout row by row.

INLINE int ggml_il_type(const int T) { return T == GT_Q4_0 || T == GT_IQ4_NL || T == GT_Q8_0; }
/** K-quants in their own 4-row interleaved layouts (below): Q2_K .. Q6_K. */
INLINE int ggml_il_k(const int T) { return T >= GT_Q2_K && T <= GT_Q6_K; }
/** Offset of the fp16 d (and dmin right after it, where the type has one) in a K-quant super-block. */
INLINE int k_d_offset(const int T) {
  return T == GT_Q6_K ? 208 : T == GT_Q3_K ? 108 : T == GT_Q2_K ? 80 : 0;
}
/** Whether the tile of rows r .. r+3 is interleaved. */
INLINE int ggml_il_tile(const wdesc* D, int r) { return D->aux == 4 && r + 4 <= D->rows; }

/** Row i's block b of an interleaved tile at `tile`, rebuilt as stored (into blk, bb bytes). */
INLINE void ggml_il_unpack(const int T, const uint8_t* tile, int i, int b, uint8_t* blk) {
  const int bb = ggml_block_bytes(T), n = (bb - 2) / 4;
  const uint8_t* g = tile + (size_t)b * 4 * bb;
  blk[0] = g[2 * i];
  blk[1] = g[2 * i + 1];
  for (int t = 0; t < n; t++) __builtin_memcpy(blk + 2 + 4 * t, g + 8 + 16 * t + 4 * i, 4);
}

// ---- Q6_K in 4-row interleaved tiles (desc.aux = 4, made at load by ggml_interleave) ----
// Same size as stored: per super-block b a full tile holds a group of 4 * 210 bytes at b * 840:
//   bytes 0..7      the fp16 d of rows 0..3
//   bytes 8..71     the int8 sub-scales by pairs of sub-blocks: byte 8 + 8 P + 2 i + e is row i's scale of
//                   sub-block 2 P + e (one 8-byte widening gives [s_i,2P  s_i,2P+1] i16 pairs per row)
//   bytes 72..839   per sub-block j (16 weights) three vectors B0, B1, B2 at 72 + 48 j + 16 v; byte 4 i + u
//                   of Bv: bits 0..5 = row i's code (0..63) of weight 16 j + 4 v + u; bits 6..7 = 2 bits of
//                   row i's code of weight 16 j + 12 + u (B0: bits 4..5, B1: bits 2..3, B2: bits 0..1)
// so one 16-byte vector holds four consecutive codes of each of the four rows (an i7 operand of the
// relaxed dot against four activations splat from one 32-bit load), three loads give 64 codes with 11
// bitwise operations, and the pair-sums of row i land in i16 lanes 2i, 2i + 1, where i32x4.dot_i16x8_s
// against [s_0 s_0 s_1 s_1 s_2 s_2 s_3 s_3] scales them and ends at [row 0..3] (ggml-k.h il_q6k_isum).
// A last tile of fewer than 4 rows stays as stored. The reference (src/kernels/ggml.ts) undoes the layout.
enum { Q6IL_GROUP = 4 * 210, Q6IL_SCALES = 8, Q6IL_CODES = 72 };

/** Row i's 16 codes in four interleaved code vectors (byte 4 i + u of V[t]) to out[4 t + u]. */
INLINE void il_row16(const v128_t V[4], int i, uint8_t* out) {
  uint8_t q[64];
  for (int t = 0; t < 4; t++) wasm_v128_store(q + 16 * t, V[t]);
  for (int t = 0; t < 4; t++) __builtin_memcpy(out + 4 * t, q + 16 * t + 4 * i, 4);
}
/** The four code vectors of sub-block j's three vectors at B of an interleaved Q6_K group (11 operations). */
INLINE void q6il_vec4(const uint8_t* B, v128_t c[4]) {
  const v128_t top = wasm_i8x16_splat((int8_t)0xc0);
  const v128_t b0 = wasm_v128_load(B), b1 = wasm_v128_load(B + 16), b2 = wasm_v128_load(B + 32);
  const v128_t h0 = wasm_v128_and(b0, top), h1 = wasm_v128_and(b1, top), h2 = wasm_v128_and(b2, top);
  c[0] = wasm_v128_xor(b0, h0);
  c[1] = wasm_v128_xor(b1, h1);
  c[2] = wasm_v128_xor(b2, h2);
  c[3] = wasm_u16x8_shr(wasm_v128_or(wasm_v128_or(h0, wasm_u16x8_shr(h1, 2)), wasm_u16x8_shr(h2, 4)), 2);
}
/** Row i's Q6_K block b of the interleaved tile at `tile`, rebuilt as stored (into blk, 210 bytes), 16 codes at a time. */
INLINE void q6il_unpack(const uint8_t* tile, int i, int b, uint8_t* blk) {
  const uint8_t* g = tile + (size_t)b * Q6IL_GROUP;
  const v128_t m4 = wasm_i8x16_splat(15), m3 = wasm_i8x16_splat(3);
  __builtin_memset(blk, 0, 192);
  for (int j = 0; j < 16; j++) {  // weights w = 16 j + 0..15: ggml's ql nibble and 2 bits of qh
    v128_t V[4];
    uint8_t c[16];
    q6il_vec4(g + Q6IL_CODES + 48 * j, V);
    il_row16(V, i, c);
    const v128_t v = wasm_v128_load(c);
    const int w = 16 * j, h = w >> 7, l = w & 31, part = (w >> 5) & 3;
    uint8_t* ql = blk + 64 * h + 32 * (part & 1) + l;
    uint8_t* qh = blk + 128 + 32 * h + l;
    wasm_v128_store(ql, wasm_v128_or(wasm_v128_load(ql), shl8(wasm_v128_and(v, m4), 4 * (part >> 1))));
    wasm_v128_store(qh, wasm_v128_or(wasm_v128_load(qh), shl8(bits8(v, 4, m3), 2 * part)));
  }
  for (int j = 0; j < 16; j++) blk[192 + j] = g[Q6IL_SCALES + 8 * (j >> 1) + 2 * i + (j & 1)];
  blk[208] = g[2 * i];
  blk[209] = g[2 * i + 1];
}
/** 32-bit little-endian word at p (unaligned). */
INLINE uint32_t ld32(const uint8_t* p) {
  uint32_t w;
  __builtin_memcpy(&w, p, 4);
  return w;
}
INLINE void st32(uint8_t* p, uint32_t w) { __builtin_memcpy(p, &w, 4); }

/** Rows 0..3 (src, row_bytes apart) of block b packed into the group at g (16 codes of a row at a time). */
INLINE void q6il_pack(const uint8_t* src, int row_bytes, int b, uint8_t* g) {
  const v128_t m4 = wasm_i8x16_splat(15), m3 = wasm_i8x16_splat(3);
  for (int i = 0; i < 4; i++) {
    const uint8_t* blk = src + (size_t)i * row_bytes + (size_t)b * 210;
    for (int j = 0; j < 16; j++) {  // sub-block j = 8 h + 2 part + half: weights 128 h + 32 part + 16 half + m
      const int h = j >> 3, part = (j >> 1) & 3, half = j & 1;
      const v128_t L = wasm_v128_load(blk + 64 * h + 32 * (part & 1) + 16 * half);
      const v128_t Q = wasm_v128_load(blk + 128 + 32 * h + 16 * half);
      const v128_t lo = part >> 1 ? wasm_v128_and(wasm_u16x8_shr(L, 4), m4) : wasm_v128_and(L, m4);
      const v128_t c = wasm_v128_or(lo, wasm_i16x8_shl(wasm_v128_and(wasm_u16x8_shr(Q, 2 * part), m3), 4));
      uint8_t cb[16];
      wasm_v128_store(cb, c);
      const uint32_t w3 = ld32(cb + 12), two = 0x03030303u;
      uint8_t* B = g + Q6IL_CODES + 48 * j + 4 * i;
      st32(B, ld32(cb) | (((w3 >> 4) & two) << 6));
      st32(B + 16, ld32(cb + 4) | (((w3 >> 2) & two) << 6));
      st32(B + 32, ld32(cb + 8) | ((w3 & two) << 6));
    }
    for (int j = 0; j < 16; j++) g[Q6IL_SCALES + 8 * (j >> 1) + 2 * i + (j & 1)] = blk[192 + j];
    g[2 * i] = blk[208];
    g[2 * i + 1] = blk[209];
  }
}

// ---- Q4_K in 4-row interleaved tiles (desc.aux = 4, made at load by ggml_interleave) ----
// Same size as stored: per super-block b a full tile holds a group of 4 * 144 bytes at b * 576:
//   bytes 0..7      the fp16 d of rows 0..3;  bytes 8..15 their fp16 dmin
//   bytes 16..47    byte 16 + 8 P + 2 i + e (sub-block j = 2 P + e of row i, P = 0..3): bits 0..5 the 6-bit
//                   scale, bits 6..7 bits 4..5 of the 6-bit min
//   bytes 48..63    byte 48 + 8 (P & 1) + 2 i + e: bits 0..3 of that min, in the low nibble for P < 2, the
//                   high nibble for P >= 2 (so that the mins come out as [m_i,2P  m_i,2P+1] byte pairs too)
//   bytes 64..575   per sub-block j (32 weights) four vectors at 64 + 64 j + 16 t; byte 4 i + u holds in its
//                   low nibble row i's code of weight 32 j + 4 t + u, in its high nibble that of weight
//                   32 j + 16 + 4 t + u
// The scales and mins of the four rows are unpacked once per super-block in vectors; a sub-block of 4 rows
// is 4 loads, 8 relaxed dots against activations splat from 32-bit loads summed in i16 lanes (|.| <=
// 16 * 15 * 127 < 2^15) and one i32x4.dot_i16x8_s with the scale pairs (ggml-k.h il_q4k_isum). Q5_K has a
// layout of its own below (a fifth vector of bit 4 per sub-block, kq's first try, lost to the row kernel).
enum { K4IL_GROUP = 4 * 144, K4IL_SCALES = 16, K4IL_MINS = 48, K4IL_CODES = 64 };

/**
 * The scale section s of an interleaved Q4_K / Q5_K / Q3_K group: per row i 8 pairs of 6-bit values (a_j, m_j)
 * (Q4_K / Q5_K: sub-block j's scale and min; Q3_K: the scales of sub-blocks j and j + 8): byte 8 (j >> 1) +
 * 2 i + (j & 1) holds a_j and m_j's bits 4..5 (bits 6..7), byte 32 + 8 ((j >> 1) & 1) + 2 i + (j & 1) m_j's
 * bits 0..3 at shift 4 (j >> 2).
 */
INLINE int k6il_sc(int i, int j) { return 8 * (j >> 1) + 2 * i + (j & 1); }
INLINE int k6il_mn(int i, int j) { return 32 + 8 * ((j >> 1) & 1) + 2 * i + (j & 1); }
INLINE int k6il_msh(int j) { return 4 * (j >> 2); }
/** Writes row i's pairs into the scale section s (its bytes 32..47 zero before). */
INLINE void k6il_put(uint8_t* s, int i, const uint8_t a[8], const uint8_t m[8]) {
  for (int j = 0; j < 8; j++) {
    s[k6il_sc(i, j)] = (uint8_t)(a[j] | ((m[j] >> 4) << 6));
    s[k6il_mn(i, j)] |= (uint8_t)((m[j] & 15) << k6il_msh(j));
  }
}
/** Reads row i's pairs from the scale section s. */
INLINE void k6il_get(const uint8_t* s, int i, uint8_t a[8], uint8_t m[8]) {
  for (int j = 0; j < 8; j++) {
    const int v = s[k6il_sc(i, j)];
    a[j] = (uint8_t)(v & 63);
    m[j] = (uint8_t)(((s[k6il_mn(i, j)] >> k6il_msh(j)) & 15) | ((v >> 6) << 4));
  }
}
/** Q4_K / Q5_K: 8 scales and mins written as a stored block's 12 scale bytes q (the inverse of get_scale_min_k4). */
INLINE void k4_put_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t* q) {
  __builtin_memset(q, 0, 12);
  for (int j = 0; j < 8; j++) {
    if (j < 4) {
      q[j] |= sc[j];
      q[j + 4] |= m[j];
    } else {
      q[j + 4] = (uint8_t)((sc[j] & 15) | ((m[j] & 15) << 4));
      q[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
      q[j] |= (uint8_t)((m[j] >> 4) << 6);
    }
  }
}

/** Row i's Q4_K block b of the interleaved tile at `tile`, rebuilt as stored (into blk, 144 bytes). */
INLINE void k4il_unpack(const uint8_t* tile, int i, int b, uint8_t* blk) {
  const uint8_t* g = tile + (size_t)b * K4IL_GROUP;
  __builtin_memset(blk + 16, 0, 128);
  blk[0] = g[2 * i];
  blk[1] = g[2 * i + 1];
  blk[2] = g[8 + 2 * i];
  blk[3] = g[8 + 2 * i + 1];
  uint8_t a[8], m[8];
  k6il_get(g + K4IL_SCALES, i, a, m);
  k4_put_scale_min(a, m, blk + 4);
  const v128_t m4 = wasm_i8x16_splat(15);
  for (int j = 0; j < 8; j++) {  // byte 4 t + u of row i: weight 32 j + 4 t + u (low nibble), + 16 (high)
    const uint8_t* B = g + K4IL_CODES + 64 * j;
    const v128_t V[4] = {wasm_v128_load(B), wasm_v128_load(B + 16), wasm_v128_load(B + 32), wasm_v128_load(B + 48)};
    uint8_t c[16];
    il_row16(V, i, c);
    const v128_t v = wasm_v128_load(c);
    uint8_t* q = blk + 16 + 32 * (j >> 1);
    wasm_v128_store(q, wasm_v128_or(wasm_v128_load(q), shl8(wasm_v128_and(v, m4), 4 * (j & 1))));
    wasm_v128_store(q + 16, wasm_v128_or(wasm_v128_load(q + 16), shl8(bits8(v, 4, m4), 4 * (j & 1))));
  }
}
/** Rows 0..3 (src, row_bytes apart) of Q4_K block b packed into the group at g (32 codes at a time). */
INLINE void k4il_pack(const uint8_t* src, int row_bytes, int b, uint8_t* g) {
  const v128_t m4 = wasm_i8x16_splat(15);
  __builtin_memset(g + K4IL_MINS, 0, 16);
  for (int i = 0; i < 4; i++) {
    const uint8_t* blk = src + (size_t)i * row_bytes + (size_t)b * 144;
    g[2 * i] = blk[0];
    g[2 * i + 1] = blk[1];
    g[8 + 2 * i] = blk[2];
    g[8 + 2 * i + 1] = blk[3];
    uint8_t a[8], mn[8];
    for (int j = 0; j < 8; j++) {
      int32_t sc, m;
      scale_min_k4(blk + 4, j, &sc, &m);
      a[j] = (uint8_t)sc;
      mn[j] = (uint8_t)m;
    }
    k6il_put(g + K4IL_SCALES, i, a, mn);
    for (int j = 0; j < 8; j++) {  // weights 32 j + m: nibble (j & 1) of qs[32 (j >> 1) + m]
      const v128_t A = wasm_v128_load(blk + 16 + 32 * (j >> 1)), Bv = wasm_v128_load(blk + 16 + 32 * (j >> 1) + 16);
      const v128_t a = j & 1 ? wasm_v128_and(wasm_u16x8_shr(A, 4), m4) : wasm_v128_and(A, m4);
      const v128_t c = j & 1 ? wasm_v128_andnot(Bv, m4) : wasm_i16x8_shl(wasm_v128_and(Bv, m4), 4);
      uint8_t cb[16];
      wasm_v128_store(cb, wasm_v128_or(a, c));
      uint8_t* G = g + K4IL_CODES + 64 * j + 4 * i;
      for (int t = 0; t < 4; t++) st32(G + 16 * t, ld32(cb + 4 * t));
    }
  }
}


// ---- Q3_K, Q2_K and Q5_K in 4-row interleaved tiles (desc.aux = 4, made at load by ggml_interleave) ----
// Same size as stored; per super-block b a full tile holds a group of 4 * bb bytes at b * 4 * bb. Codes are
// stored so that one 16-byte vector gives four consecutive codes of each of the four rows (code vector t of
// 32 weights: byte 4 i + u = row i's code of weight 32 P + 4 t + u, P the pair of sub-blocks of 16 for Q3_K
// / Q2_K, the sub-block of 32 for Q5_K), an unsigned operand of the relaxed dot against four activations
// splat from one 32-bit load, the row sums landing in i16 lanes 2 i, 2 i + 1 (as Q6_K and Q4_K above).
//   Q3_K (440 bytes):  0..7 the fp16 d of rows 0..3;  8..55 the 16 6-bit scales (before the - 32) of each
//     row in Q4_K's scale / min layout (k6il_put: "scale" = sub-block j, "min" = sub-block j + 8, j < 8);
//     56..439 per P three vectors B0 B1 B2 (48 bytes) of 8 code vectors of 3 bits: B_v bits 0..2 / 3..5 =
//     code vectors 2 v / 2 v + 1 (v < 3); code vector 6 = B0 bits 6..7 | B2 bit 6 << 2, code vector 7 =
//     B1 bits 6..7 | B2 bit 7 << 2 (19 bitwise operations for 128 codes).
//   Q2_K (336 bytes):  0..7 the fp16 d, 8..15 the fp16 dmin;  16..79 the scale bytes (scale | min << 4) as
//     stored, byte 16 + 8 P + 2 i + e = row i's sub-block 2 P + e;  80..335 per P two vectors: B_v bits
//     2 s .. 2 s + 1 = code vector 4 v + s.
//   Q5_K (704 bytes):  0..63 as Q4_K (d, dmin, scales and mins);  64..703 per sub-block j of 32 five
//     vectors B0..B4 (80 bytes) of 8 code vectors of 5 bits: B_v bits 0..4 = code vector v; code vector 5 =
//     B0 bits 5..7 | B1 bits 5..6 << 3; 6 = B2 bits 5..7 | B3 bits 5..6 << 3; 7 = B1 bit 7 | B3 bit 7 << 1 |
//     B4 bits 5..7 << 2 (23 bitwise operations for 128 codes; kq's first Q5_K tiles kept the fifth bit of 8
//     code vectors in one vector, 40 operations with 8 mask constants, and lost to the row kernel).
// A last tile of fewer than 4 rows stays as stored. The reference (src/kernels/ggml.ts) undoes the layouts.
enum { Q3IL_SCALES = 8, Q3IL_CODES = 56, Q2IL_SCALES = 16, Q2IL_CODES = 80, Q5IL_CODES = 64 };

/** The 256 codes (Q2_K 0..3, Q3_K 0..7, Q5_K 0..31) of a stored Q2_K / Q3_K / Q5_K block, 16 at a time. */
INLINE void kq_codes(const int T, const uint8_t* b, uint8_t* c) {
  const v128_t m3 = wasm_i8x16_splat(3), m4 = wasm_i8x16_splat(15), one = wasm_i8x16_splat(1);
  for (int w = 0; w < 256; w += 16) {  // weights w .. w + 15: h = w >> 7, part = (w >> 5) & 3, l = w & 31
    const int h = w >> 7, part = (w >> 5) & 3, l = w & 31;
    v128_t v;
    if (T == GT_Q2_K) v = bits8(wasm_v128_load(b + 16 + 32 * h + l), 2 * part, m3);
    else if (T == GT_Q3_K)
      v = wasm_v128_or(bits8(wasm_v128_load(b + 32 + 32 * h + l), 2 * part, m3),
                       shl8(bits8(wasm_v128_load(b + l), 4 * h + part, one), 2));
    else
      v = wasm_v128_or(bits8(wasm_v128_load(b + 48 + 32 * (w >> 6) + l), 4 * ((w >> 5) & 1), m4),
                       shl8(bits8(wasm_v128_load(b + 16 + l), w >> 5, one), 4));
    wasm_v128_store(c + w, v);
  }
}
/** Writes 256 codes into a stored block's code bytes (the inverse of kq_codes), 16 at a time. */
INLINE void kq_put(const int T, const uint8_t* c, uint8_t* b) {
  const v128_t m3 = wasm_i8x16_splat(3), m4 = wasm_i8x16_splat(15), one = wasm_i8x16_splat(1);
  __builtin_memset(b + (T == GT_Q2_K ? 16 : T == GT_Q3_K ? 0 : 16), 0, T == GT_Q2_K ? 64 : T == GT_Q3_K ? 96 : 160);
  for (int w = 0; w < 256; w += 16) {
    const int h = w >> 7, part = (w >> 5) & 3, l = w & 31;
    const v128_t v = wasm_v128_load(c + w);
    uint8_t *q, *hb = 0;
    v128_t qv, hv = v;
    if (T == GT_Q5_K) {
      q = b + 48 + 32 * (w >> 6) + l;
      qv = shl8(wasm_v128_and(v, m4), 4 * ((w >> 5) & 1));
      hb = b + 16 + l;
      hv = shl8(bits8(v, 4, one), w >> 5);
    } else {
      q = b + (T == GT_Q2_K ? 16 : 32) + 32 * h + l;
      qv = shl8(wasm_v128_and(v, m3), 2 * part);
      if (T == GT_Q3_K) {
        hb = b + l;
        hv = shl8(bits8(v, 2, one), 4 * h + part);
      }
    }
    wasm_v128_store(q, wasm_v128_or(wasm_v128_load(q), qv));
    if (hb) wasm_v128_store(hb, wasm_v128_or(wasm_v128_load(hb), hv));
  }
}
/**
 * Code vectors 4 h .. 4 h + 3 (h = 0, 1) of the 32 weights whose code bytes start at B in an interleaved
 * Q2_K / Q3_K / Q5_K group (Q2_K: 32 bytes, Q3_K: 48, Q5_K: 80): byte 4 i + u of c[t] is row i's code of
 * weight 16 h + 4 t + u. The kernels (ggml-k.h) and the block rebuild share it. A shift right by n of bytes
 * masked to bits >= n keeps each byte's bits in that byte; a final mask drops what a wider shift brings down
 * from the byte above.
 */
INLINE void kil_vec4(const int T, const uint8_t* B, const int h, v128_t c[4]) {
  if (T == GT_Q2_K) {
    const v128_t m3 = wasm_i8x16_splat(3), v = wasm_v128_load(B + 16 * h);
    for (int t = 0; t < 4; t++) c[t] = bits8(v, 2 * t, m3);
  } else if (T == GT_Q3_K) {
    const v128_t m7 = wasm_i8x16_splat(7), m3 = wasm_i8x16_splat(3), b2m = wasm_i8x16_splat(4);
    const v128_t b0 = wasm_v128_load(B), b1 = wasm_v128_load(B + 16);
    if (h == 0) {
      c[0] = wasm_v128_and(b0, m7);
      c[1] = bits8(b0, 3, m7);
      c[2] = wasm_v128_and(b1, m7);
      c[3] = bits8(b1, 3, m7);
    } else {
      const v128_t b2 = wasm_v128_load(B + 32);
      c[0] = wasm_v128_and(b2, m7);
      c[1] = bits8(b2, 3, m7);
      c[2] = wasm_v128_or(bits8(b0, 6, m3), bits8(b2, 4, b2m));
      c[3] = wasm_v128_or(bits8(b1, 6, m3), bits8(b2, 5, b2m));
    }
  } else {
    const v128_t m5 = wasm_i8x16_splat(31);
    if (h == 0)
      for (int t = 0; t < 4; t++) c[t] = wasm_v128_and(wasm_v128_load(B + 16 * t), m5);
    else {  // tops t_v = B_v & 0xe0
      const v128_t t0 = wasm_v128_andnot(wasm_v128_load(B), m5), t1 = wasm_v128_andnot(wasm_v128_load(B + 16), m5);
      const v128_t t2 = wasm_v128_andnot(wasm_v128_load(B + 32), m5), b3 = wasm_v128_load(B + 48);
      const v128_t b4 = wasm_v128_load(B + 64), t4 = wasm_v128_andnot(b4, m5);
      c[0] = wasm_v128_and(b4, m5);
      c[1] = wasm_v128_and(wasm_v128_or(wasm_u16x8_shr(t0, 5), wasm_u16x8_shr(t1, 2)), m5);
      c[2] = wasm_v128_and(wasm_v128_or(wasm_u16x8_shr(t2, 5), wasm_u16x8_shr(wasm_v128_andnot(b3, m5), 2)), m5);
      c[3] = wasm_v128_and(wasm_v128_or(wasm_v128_or(wasm_u16x8_shr(t4, 3), wasm_u16x8_shr(t1, 7)),
                                        wasm_u16x8_shr(wasm_v128_and(b3, wasm_i8x16_splat((int8_t)0x80)), 6)),
                           m5);
    }
  }
}
/** Q3_K: writes 16 6-bit scales (before the - 32) into a stored block's 12 scale bytes s. */
INLINE void q3k_put_scales(const uint8_t v[16], uint8_t* s) {
  __builtin_memset(s, 0, 12);
  for (int j = 0; j < 16; j++) {
    s[j & 7] |= (uint8_t)((v[j] & 15) << (4 * (j >> 3)));
    s[8 + (j & 3)] |= (uint8_t)((v[j] >> 4) << (2 * (j >> 2)));
  }
}
/** Offset of the scales section and of the codes section of an interleaved Q2_K / Q3_K / Q5_K group. */
INLINE int kil_scales(const int T) { return T == GT_Q3_K ? Q3IL_SCALES : T == GT_Q2_K ? Q2IL_SCALES : K4IL_SCALES; }
INLINE int kil_codes(const int T) { return T == GT_Q3_K ? Q3IL_CODES : T == GT_Q2_K ? Q2IL_CODES : Q5IL_CODES; }

/** Row i's Q2_K / Q3_K / Q5_K block b of the interleaved tile at `tile`, rebuilt as stored (into blk). */
INLINE void kil_unpack(const int T, const uint8_t* tile, int i, int b, uint8_t* blk) {
  const uint8_t* g = tile + (size_t)b * 4 * ggml_block_bytes(T);
  uint8_t c[256];
  const int unit = T == GT_Q2_K ? 32 : T == GT_Q3_K ? 48 : 80;  // code bytes per 32 weights
  for (int P = 0; P < 8; P++)
    for (int h = 0; h < 2; h++) {
      v128_t V[4];
      kil_vec4(T, g + kil_codes(T) + unit * P, h, V);
      il_row16(V, i, c + 32 * P + 16 * h);
    }
  kq_put(T, c, blk);
  const int dof = k_d_offset(T);
  blk[dof] = g[2 * i];
  blk[dof + 1] = g[2 * i + 1];
  if (T != GT_Q3_K) {
    blk[dof + 2] = g[8 + 2 * i];
    blk[dof + 3] = g[8 + 2 * i + 1];
  }
  if (T == GT_Q2_K)
    for (int j = 0; j < 16; j++) blk[j] = g[Q2IL_SCALES + 8 * (j >> 1) + 2 * i + (j & 1)];
  else {
    uint8_t a[8], m[8];
    k6il_get(g + kil_scales(T), i, a, m);
    if (T == GT_Q5_K) k4_put_scale_min(a, m, blk + 4);
    else {
      uint8_t v[16];
      for (int j = 0; j < 8; j++) v[j] = a[j], v[j + 8] = m[j];
      q3k_put_scales(v, blk + 96);
    }
  }
}
/**
 * The code section C of an interleaved Q2_K / Q3_K / Q5_K group from the four rows' codes c[i][256]: the
 * code vectors V_t (4 codes of each row) of each 32 weights combined into the layout's bytes.
 */
INLINE void kil_put_codes(const int T, uint8_t c[4][256], uint8_t* C) {
  const v128_t m3 = wasm_i8x16_splat(3), m7 = wasm_i8x16_splat(7), one = wasm_i8x16_splat(1);
  for (int P = 0; P < 8; P++) {
    v128_t V[8];
    for (int t = 0; t < 8; t++) {
      uint8_t q[16];
      for (int i = 0; i < 4; i++) __builtin_memcpy(q + 4 * i, c[i] + 32 * P + 4 * t, 4);
      V[t] = wasm_v128_load(q);
    }
    if (T == GT_Q2_K)
      for (int v = 0; v < 2; v++)
        wasm_v128_store(C + 32 * P + 16 * v, wasm_v128_or(wasm_v128_or(V[4 * v], shl8(V[4 * v + 1], 2)),
                                                          wasm_v128_or(shl8(V[4 * v + 2], 4), shl8(V[4 * v + 3], 6))));
    else if (T == GT_Q3_K) {
      uint8_t* B = C + 48 * P;
      wasm_v128_store(B, wasm_v128_or(wasm_v128_or(V[0], shl8(V[1], 3)), shl8(wasm_v128_and(V[6], m3), 6)));
      wasm_v128_store(B + 16, wasm_v128_or(wasm_v128_or(V[2], shl8(V[3], 3)), shl8(wasm_v128_and(V[7], m3), 6)));
      wasm_v128_store(B + 32, wasm_v128_or(wasm_v128_or(V[4], shl8(V[5], 3)),
                                           wasm_v128_or(shl8(bits8(V[6], 2, one), 6), shl8(bits8(V[7], 2, one), 7))));
    } else {
      uint8_t* B = C + 80 * P;
      wasm_v128_store(B, wasm_v128_or(V[0], shl8(wasm_v128_and(V[5], m7), 5)));
      wasm_v128_store(B + 16, wasm_v128_or(wasm_v128_or(V[1], shl8(bits8(V[5], 3, m3), 5)), shl8(wasm_v128_and(V[7], one), 7)));
      wasm_v128_store(B + 32, wasm_v128_or(V[2], shl8(wasm_v128_and(V[6], m7), 5)));
      wasm_v128_store(B + 48, wasm_v128_or(wasm_v128_or(V[3], shl8(bits8(V[6], 3, m3), 5)), shl8(bits8(V[7], 1, one), 7)));
      wasm_v128_store(B + 64, wasm_v128_or(V[4], shl8(bits8(V[7], 2, m7), 5)));
    }
  }
}
/** Rows 0..3 (src, row_bytes apart) of Q2_K / Q3_K / Q5_K block b packed into the group at g. */
INLINE void kil_pack(const int T, const uint8_t* src, int row_bytes, int b, uint8_t* g) {
  const int bb = ggml_block_bytes(T), dof = k_d_offset(T);
  uint8_t c[4][256];
  __builtin_memset(g, 0, (size_t)kil_codes(T));
  for (int i = 0; i < 4; i++) {
    const uint8_t* blk = src + (size_t)i * row_bytes + (size_t)b * bb;
    kq_codes(T, blk, c[i]);
    g[2 * i] = blk[dof];
    g[2 * i + 1] = blk[dof + 1];
    if (T != GT_Q3_K) {
      g[8 + 2 * i] = blk[dof + 2];
      g[8 + 2 * i + 1] = blk[dof + 3];
    }
    if (T == GT_Q2_K)
      for (int j = 0; j < 16; j++) g[Q2IL_SCALES + 8 * (j >> 1) + 2 * i + (j & 1)] = blk[j];
    else {
      uint8_t a[8], m[8];
      for (int j = 0; j < 8; j++) {
        int32_t sc, mn;
        if (T == GT_Q5_K) scale_min_k4(blk + 4, j, &sc, &mn);
        else sc = q3k_scale(blk + 96, j), mn = q3k_scale(blk + 96, j + 8);
        a[j] = (uint8_t)sc;
        m[j] = (uint8_t)mn;
      }
      k6il_put(g + kil_scales(T), i, a, m);
    }
  }
  kil_put_codes(T, c, g + kil_codes(T));
}

/**
 * Block b of tile row i for the kernels that read blocks as stored: p[i]'s block, or (an interleaved
 * K-quant tile, il) the block rebuilt into tmp (210 bytes).
 */
INLINE const uint8_t* ggml_block_of(const int T, const uint8_t* const p[4], int il, int i, int b, uint8_t* tmp) {
  if (ggml_il_k(T) && il) {
    if (T == GT_Q6_K) q6il_unpack(p[0], i, b, tmp);
    else if (T == GT_Q4_K) k4il_unpack(p[0], i, b, tmp);
    else kil_unpack(T, p[0], i, b, tmp);
    return tmp;
  }
  return p[i] + (size_t)b * ggml_block_bytes(T);
}

/**
 * Interleaves `tiles` full tiles of 4 rows (row_bytes each) at data in place (tmp: 4 * row_bytes bytes of
 * scratch). T: a type of ggml_il_type or ggml_il_k (their own layouts above).
 */
EXPORT void ggml_interleave(int32_t T, int32_t data, int32_t row_bytes, int32_t tiles, int32_t tmp_) {
  const int bb = ggml_block_bytes(T), n = (bb - 2) / 4, nb = row_bytes / bb;
  uint8_t* tmp = (uint8_t*)(uintptr_t)tmp_;
  for (int s = 0; s < tiles; s++) {
    uint8_t* tile = (uint8_t*)(uintptr_t)data + (size_t)s * 4 * row_bytes;
    __builtin_memcpy(tmp, tile, 4 * (size_t)row_bytes);
    if (ggml_il_k(T)) {
      for (int b = 0; b < nb; b++)
        if (T == GT_Q6_K) q6il_pack(tmp, row_bytes, b, tile + (size_t)b * Q6IL_GROUP);
        else if (T == GT_Q4_K) k4il_pack(tmp, row_bytes, b, tile + (size_t)b * K4IL_GROUP);
        else kil_pack(T, tmp, row_bytes, b, tile + (size_t)b * 4 * bb);
      continue;
    }
    for (int b = 0; b < nb; b++) {
      uint8_t* g = tile + (size_t)b * 4 * bb;
      for (int i = 0; i < 4; i++) {
        const uint8_t* src = tmp + (size_t)i * row_bytes + (size_t)b * bb;
        g[2 * i] = src[0];
        g[2 * i + 1] = src[1];
        for (int t = 0; t < n; t++) __builtin_memcpy(g + 8 + 16 * t + 4 * i, src + 2 + 4 * t, 4);
      }
    }
  }
}

// ---- float32 path ----

/** The 32 weights of a chunk as float32, rounded as ggml's dequantize_row. */
INLINE void ggml_chunk_f32(const int T, const gchunk* g, float* out) {
  const int z = ggml_zero(T), hasmin = ggml_has_min(T);
  for (int h = 0; h < 2; h++) {
    const v128_t c = h ? g->c1 : g->c0;
    const float a = g->d * (float)(h ? g->sc1 : g->sc0);
    const float mn = g->dm * (float)(h ? g->m1 : g->m0);
    v128_t w16 = ggml_signed(T) ? wasm_i16x8_extend_low_i8x16(c) : wasm_u16x8_extend_low_u8x16(c);
    v128_t w16h = ggml_signed(T) ? wasm_i16x8_extend_high_i8x16(c) : wasm_u16x8_extend_high_u8x16(c);
    v128_t q[4] = {wasm_i32x4_extend_low_i16x8(w16), wasm_i32x4_extend_high_i16x8(w16),
                   wasm_i32x4_extend_low_i16x8(w16h), wasm_i32x4_extend_high_i16x8(w16h)};
    for (int t = 0; t < 4; t++) {
      v128_t v = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_sub(q[t], wasm_i32x4_splat(z))),
                                wasm_f32x4_splat(a));
      if (hasmin) v = wasm_f32x4_add(v, wasm_f32x4_splat(mn));
      wasm_v128_store(out + 16 * h + 4 * t, v);
    }
  }
}

/** Decodes chunks [k0, k0 + 32 * n) of the four rows of a tile into out[i * stride + (k - k0)]. */
INLINE void ggml_decode_f32_impl(const int T, const uint8_t* const p[4], int il, int k0, int n, float* out,
                                 int stride) {
  uint8_t blk[34], blk6[4][210];
  for (int c = 0; c < n; c++)
    for (int i = 0; i < 4; i++) {
      gchunk g;
      const int k = k0 + 32 * c;
      if (ggml_il_type(T) && il) {  // interleaved tile (p[0] is its start): the block rebuilt as stored
        ggml_il_unpack(T, p[0], i, k / 32, blk);
        g = ggml_chunk(T, blk, 0);
      } else if (ggml_il_k(T) && il) {  // rebuilt once per super-block and row
        if (c == 0 || k % 256 == 0) ggml_block_of(T, p, 1, i, k / 256, blk6[i]);
        g = ggml_chunk(T, blk6[i], (k % 256) / 32);
      } else
        g = ggml_row_chunk(T, p[i], k0 + 32 * c);
      ggml_chunk_f32(T, &g, out + (size_t)i * stride + 32 * c);
    }
}
#define GGML_SWITCH(CALL)                 \
  switch (D->bits) {                      \
    case GT_Q4_0: CALL(GT_Q4_0); break;   \
    case GT_Q4_1: CALL(GT_Q4_1); break;   \
    case GT_Q5_0: CALL(GT_Q5_0); break;   \
    case GT_Q5_1: CALL(GT_Q5_1); break;   \
    case GT_Q8_0: CALL(GT_Q8_0); break;   \
    case GT_Q2_K: CALL(GT_Q2_K); break;   \
    case GT_Q3_K: CALL(GT_Q3_K); break;   \
    case GT_Q4_K: CALL(GT_Q4_K); break;   \
    case GT_Q5_K: CALL(GT_Q5_K); break;   \
    case GT_Q6_K: CALL(GT_Q6_K); break;   \
    case GT_IQ4_NL: CALL(GT_IQ4_NL); break; \
    default: CALL(GT_MXFP4); break;       \
  }

static void ggml_decode_f32(const wdesc* D, const uint8_t* const p[4], int il, int k0, int n, float* out,
                            int stride) {
#define DEC(T) ggml_decode_f32_impl(T, p, il, k0, n, out, stride)
  GGML_SWITCH(DEC)
#undef DEC
}

INLINE void ggml_tile(const wdesc* D, int r, int last, const uint8_t* p[4]) {
  int rr[4];
  tile_rows(r, last, rr);
  for (int i = 0; i < 4; i++) p[i] = (const uint8_t*)(uintptr_t)D->data + (size_t)rr[i] * D->row_bytes;
}

/** float32 path, matrix x vector; 256 weights of the tile decoded at a time (scratch: 4 * 256 floats). */
EXPORT void mv_ggml_f32(int32_t desc, int32_t x_, int32_t y, int32_t r0, int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  const float* x = (const float*)(uintptr_t)x_;
  float* w = (float*)(uintptr_t)scratch;
  const int K = D->cols;
  for (int r = r0; r < r1; r += 4) {
    const uint8_t* p[4];
    ggml_tile(D, r, r1 - 1, p);
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (int k0 = 0; k0 < K; k0 += 256) {
      const int n = K - k0 < 256 ? (K - k0) / 32 : 8;
      ggml_decode_f32(D, p, ggml_il_tile(D, r), k0, n, w, 256);
      for (int j = 0; j < 32 * n; j += 4) {
        v128_t xv = wasm_v128_load(x + k0 + j);
        a0 = fmadd(wasm_v128_load(w + j), xv, a0);
        a1 = fmadd(wasm_v128_load(w + 256 + j), xv, a1);
        a2 = fmadd(wasm_v128_load(w + 512 + j), xv, a2);
        a3 = fmadd(wasm_v128_load(w + 768 + j), xv, a3);
      }
    }
    store_tile((float*)(uintptr_t)y, r, r1 - 1, hsum4_f32(a0, a1, a2, a3));
  }
}

/** float32 path, matrix x matrix: the tile decoded once (scratch 4 * K floats), then every row of X. */
EXPORT void mm_ggml_f32(int32_t desc, int32_t x, int32_t xs, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                        int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  float* s = (float*)(uintptr_t)scratch;
  const int K = D->cols;
  for (int r = r0; r < r1; r += 4) {
    const uint8_t* p[4];
    ggml_tile(D, r, r1 - 1, p);
    ggml_decode_f32(D, p, ggml_il_tile(D, r), 0, K / 32, s, K);
    const float* w[4] = {s, s + K, s + 2 * (size_t)K, s + 3 * (size_t)K};
    mm_f32_tile(w, K, (const float*)(uintptr_t)x, xs, nb, (float*)(uintptr_t)y, ys, r, r1 - 1);
  }
}

// ---- int8 path ----

/** sum c * q over 16 codes, as the type's codes need (u8 0..63, int8, or any byte for odd Q8_0 files). */
INLINE v128_t ggml_dot16(const int T, const int full8, v128_t c, const actq* A, int k) {
  if (!ggml_signed(T)) return dot16_u7(c, A, k);
  if (full8) return dot16_i8_wide(c, A, k);
  return dot16_s8(c, A, k);
}

/** One row's share of a chunk: the integer sum (lanes) and the scalar parts, see the header. */
typedef struct {
  v128_t s;       // i32x4 lanes of sum_h sc_h * sum c q
  int32_t zc;     // - z * sum_h sc_h * (sum q)_h
  int32_t mn;     // sum_h m_h * (sum q)_h
  float d, dm;
} grow;

INLINE grow ggml_q8_row_g(const int T, const int full8, const gchunk* gp, int k, const actq* A) {
  const gchunk g = *gp;
  const int32_t q0 = A->s[k >> 4], q1 = A->s[(k >> 4) + 1];
  grow o;
  if (ggml_halves(T)) {
    v128_t p0 = ggml_dot16(T, full8, g.c0, A, k), p1 = ggml_dot16(T, full8, g.c1, A, k + 16);
    o.s = wasm_i32x4_add(wasm_i32x4_mul(p0, wasm_i32x4_splat(g.sc0)), wasm_i32x4_mul(p1, wasm_i32x4_splat(g.sc1)));
  } else {
    v128_t p;
    if (ggml_signed(T)) p = wasm_i32x4_add(ggml_dot16(T, full8, g.c0, A, k), ggml_dot16(T, full8, g.c1, A, k + 16));
    else p = dot32_u6(g.c0, g.c1, A, k);
    o.s = g.sc0 == 1 ? p : wasm_i32x4_mul(p, wasm_i32x4_splat(g.sc0));
  }
  o.zc = -ggml_zero(T) * (g.sc0 * q0 + g.sc1 * q1);
  o.mn = g.m0 * q0 + g.m1 * q1;
  o.d = g.d;
  o.dm = g.dm;
  return o;
}

/** Types of blocks of 32 whose fp16 d (and dm) sit at offsets 0 (and 2): scales gathered four at a time. */
#define GGML_GATHER_D(T) (ggml_qk(T) == 32 && (T) != GT_MXFP4)
/** The fp16 d (lanes of d4) and dm (m4, types with minima) of the four blocks at q, q + bb, ... */
INLINE void ggml_gather_d(const int T, const uint8_t* q, v128_t* d4, v128_t* m4) {
  const int bb = ggml_block_bytes(T);
  v128_t v = wasm_v128_load32_zero(q);
  v = wasm_v128_load32_lane(q + bb, v, 1);
  v = wasm_v128_load32_lane(q + 2 * bb, v, 2);
  v = wasm_v128_load32_lane(q + 3 * bb, v, 3);
  *d4 = f16x4_to_f32(wasm_v128_and(v, wasm_i32x4_splat(0xffff)));
  if (ggml_has_min(T)) *m4 = f16x4_to_f32(wasm_u32x4_shr(v, 16));
}
/** Lane u of v in every lane. */
INLINE v128_t lane_splat(v128_t v, const int u) {
  switch (u) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
  }
}

/**
 * The tile's rows against nb activation rows (act + j * as), all of K, one row after the other: each row's
 * bytes are one sequential stream (which the memory prefetchers follow best) and few values are live (V8
 * keeps 16 vector registers on x64; four rows at once spill). Per chunk the row's integer lanes take the
 * zero-point term in lane 0, are converted and scaled into a float32 lane accumulator; minima go to a
 * second accumulator; both reduced at the end of the row. Matrix x vector; matrix x matrix decodes once
 * per tile for the whole batch instead (GGML_TILE_FN below).
 */
#define GGML_ROWS_FN(T, FULL8, NAME)                                                                       \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* const p[4], int32_t act,      \
                                             int32_t as, int nb, v128_t* accs, float* y, int ys, int r,    \
                                             int last) {                                                   \
    (void)accs;                                                                                            \
    const int qk = ggml_qk(T), bb = ggml_block_bytes(T), il6 = ggml_il_k(T) && ggml_il_tile(D, r);          \
    uint8_t tmp[210];                                                                                      \
    for (int j = 0; j < nb; j++) {                                                                        \
      const actq A = act_view(act_at(act, as, j), D->kp);                                                 \
      float out[4];                                                                                        \
      for (int i = 0; i < 4 && r + i <= last; i++) {                                                      \
        v128_t acc = wasm_f32x4_splat(0), accm = acc;                                                      \
        const uint8_t* q = p[i];                                                                           \
        int b = 0;                                                                                         \
        if (GGML_GATHER_D(T))                                                                              \
          for (; b + 4 <= D->cols / 32; b += 4, q += 4 * bb) {                                            \
            /* the scales of four blocks converted at once, times their four activation scales */          \
            v128_t d4, m4 = wasm_f32x4_splat(0);                                                           \
            ggml_gather_d(T, q, &d4, &m4);                                                                 \
            const v128_t dx4 = wasm_v128_load(A.d + b);                                                    \
            d4 = wasm_f32x4_mul(d4, dx4);                                                                  \
            if (ggml_has_min(T)) m4 = wasm_f32x4_mul(m4, dx4);                                             \
            _Pragma("clang loop unroll(full)") for (int u = 0; u < 4; u++) {                             \
              const gchunk c = ggml_chunk(T, q + u * bb, 0);                                               \
              const grow g = ggml_q8_row_g(T, FULL8, &c, 32 * (b + u), &A);                                \
              const v128_t S = wasm_i32x4_add(g.s, wasm_i32x4_make(g.zc, 0, 0, 0));                        \
              acc = fmadd(wasm_f32x4_convert_i32x4(S), lane_splat(d4, u), acc);                            \
              if (ggml_has_min(T))                                                                         \
                accm = fmadd(wasm_f32x4_make((float)g.mn, 0, 0, 0), lane_splat(m4, u), accm);              \
            }                                                                                              \
          }                                                                                                \
        for (; b < D->cols / qk; b++, q += bb) {                                                          \
          const uint8_t* qb = il6 ? ggml_block_of(T, p, 1, i, b, tmp) : q;                                 \
          _Pragma("clang loop unroll(full)") for (int h = 0; h < qk / 32; h++) {                         \
            const int k = b * qk + 32 * h;                                                                 \
            const gchunk c = ggml_chunk(T, qb, h);                                                         \
            const grow g = ggml_q8_row_g(T, FULL8, &c, k, &A);                                             \
            const float dx = A.d[k >> 5];                                                                  \
            const v128_t S = wasm_i32x4_add(g.s, wasm_i32x4_make(g.zc, 0, 0, 0));                          \
            acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_splat(g.d * dx), acc);                     \
            if (ggml_has_min(T))                                                                           \
              accm = fmadd(wasm_f32x4_make((float)g.mn, 0, 0, 0), wasm_f32x4_splat(g.dm * dx), accm);      \
          }                                                                                                \
        }                                                                                                  \
        out[i] = ggml_has_min(T) ? hsum_f32(acc) + hsum_f32(accm) : hsum_f32(acc);                         \
      }                                                                                                    \
      for (int i = 0; i < 4 && r + i <= last; i++) y[(size_t)j * ys + r + i] = out[i];                    \
    }                                                                                                      \
  }
GGML_ROWS_FN(GT_Q4_0, 0, gq8_q4_0)
GGML_ROWS_FN(GT_Q4_1, 0, gq8_q4_1)
GGML_ROWS_FN(GT_Q5_0, 0, gq8_q5_0)
GGML_ROWS_FN(GT_Q5_1, 0, gq8_q5_1)
GGML_ROWS_FN(GT_Q8_0, 0, gq8_q8_0)
GGML_ROWS_FN(GT_Q8_0, 1, gq8_q8_0_full)
GGML_ROWS_FN(GT_Q2_K, 0, gq8_q2_k)
GGML_ROWS_FN(GT_Q3_K, 0, gq8_q3_k)
GGML_ROWS_FN(GT_Q4_K, 0, gq8_q4_k)
GGML_ROWS_FN(GT_Q5_K, 0, gq8_q5_k)
GGML_ROWS_FN(GT_Q6_K, 0, gq8_q6_k)
GGML_ROWS_FN(GT_IQ4_NL, 0, gq8_iq4_nl)
GGML_ROWS_FN(GT_MXFP4, 0, gq8_mxfp4)

INLINE void ggml_q8_rows(const wdesc* D, const uint8_t* const p[4], int32_t act, int32_t as, int nb, v128_t* accs,
                         float* y, int ys, int r, int last) {
#define ROWS(NAME) NAME(D, p, act, as, nb, accs, y, ys, r, last)
  switch (D->bits) {
    case GT_Q4_0: ROWS(gq8_q4_0); break;
    case GT_Q4_1: ROWS(gq8_q4_1); break;
    case GT_Q5_0: ROWS(gq8_q5_0); break;
    case GT_Q5_1: ROWS(gq8_q5_1); break;
    case GT_Q8_0:
      if (D->dot_class == DOT_FULL8) ROWS(gq8_q8_0_full);
      else ROWS(gq8_q8_0);
      break;
    case GT_Q2_K: ROWS(gq8_q2_k); break;
    case GT_Q3_K: ROWS(gq8_q3_k); break;
    case GT_Q4_K: ROWS(gq8_q4_k); break;
    case GT_Q5_K: ROWS(gq8_q5_k); break;
    case GT_Q6_K: ROWS(gq8_q6_k); break;
    case GT_IQ4_NL: ROWS(gq8_iq4_nl); break;
    default: ROWS(gq8_mxfp4); break;
  }
#undef ROWS
}

/** A decoded chunk of the four tile rows against one activation row, added to acc. */
INLINE v128_t ggml_q8_apply(const int T, const int full8, const gchunk c[4], int k, const actq* A, v128_t acc) {
  grow g0 = ggml_q8_row_g(T, full8, &c[0], k, A), g1 = ggml_q8_row_g(T, full8, &c[1], k, A);
  grow g2 = ggml_q8_row_g(T, full8, &c[2], k, A), g3 = ggml_q8_row_g(T, full8, &c[3], k, A);
  v128_t S = wasm_i32x4_add(hsum4_i32(g0.s, g1.s, g2.s, g3.s), wasm_i32x4_make(g0.zc, g1.zc, g2.zc, g3.zc));
  const v128_t dx = wasm_f32x4_splat(A->d[k >> 5]);
  acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(wasm_f32x4_make(g0.d, g1.d, g2.d, g3.d), dx), acc);
  if (ggml_has_min(T)) {
    v128_t M = wasm_i32x4_make(g0.mn, g1.mn, g2.mn, g3.mn);
    acc = fmadd(wasm_f32x4_convert_i32x4(M), wasm_f32x4_mul(wasm_f32x4_make(g0.dm, g1.dm, g2.dm, g3.dm), dx), acc);
  }
  return acc;
}

/**
 * Matrix x matrix (nb > 1): one tile against nb activation rows (act + j * as), all of K: each chunk of
 * the four rows is decoded once and applied to every activation row (accumulators in `accs`, nb vectors),
 * so the decoding is shared by the batch.
 */
#define GGML_TILE_FN(T, FULL8, NAME)                                                                       \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* const p[4], int32_t act,      \
                                             int32_t as, int nb, v128_t* accs, float* y, int ys, int r,    \
                                             int last) {                                                   \
    for (int j = 0; j < nb; j++) accs[j] = wasm_f32x4_splat(0);                                          \
    const int qk = ggml_qk(T), il6 = ggml_il_k(T) && ggml_il_tile(D, r);                                    \
    uint8_t tmp[4][210];                                                                                   \
    for (int b = 0; b < D->cols / qk; b++) {                                                              \
      const uint8_t* q[4];                                                                                 \
      for (int i = 0; i < 4; i++) q[i] = ggml_block_of(T, p, il6, i, b, tmp[i]);                          \
      _Pragma("clang loop unroll(full)") for (int h = 0; h < qk / 32; h++) {                             \
        /* h is a constant in each copy: the chunk's shifts and scale fields are fixed */                  \
        const int k = b * qk + 32 * h;                                                                     \
        gchunk c[4];                                                                                       \
        for (int i = 0; i < 4; i++) c[i] = ggml_chunk(T, q[i], h);                                        \
        for (int j = 0; j < nb; j++) {                                                                    \
          const actq A = act_view(act_at(act, as, j), D->kp);                                             \
          accs[j] = ggml_q8_apply(T, FULL8, c, k, &A, accs[j]);                                            \
        }                                                                                                  \
      }                                                                                                    \
    }                                                                                                      \
    for (int j = 0; j < nb; j++) store_tile(y + (size_t)j * ys, r, last, accs[j]);                        \
  }
GGML_TILE_FN(GT_Q4_0, 0, gq8t_q4_0)
GGML_TILE_FN(GT_Q4_1, 0, gq8t_q4_1)
GGML_TILE_FN(GT_Q5_0, 0, gq8t_q5_0)
GGML_TILE_FN(GT_Q5_1, 0, gq8t_q5_1)
GGML_TILE_FN(GT_Q8_0, 0, gq8t_q8_0)
GGML_TILE_FN(GT_Q8_0, 1, gq8t_q8_0_full)
GGML_TILE_FN(GT_Q2_K, 0, gq8t_q2_k)
GGML_TILE_FN(GT_Q3_K, 0, gq8t_q3_k)
GGML_TILE_FN(GT_Q4_K, 0, gq8t_q4_k)
GGML_TILE_FN(GT_Q5_K, 0, gq8t_q5_k)
GGML_TILE_FN(GT_Q6_K, 0, gq8t_q6_k)
GGML_TILE_FN(GT_IQ4_NL, 0, gq8t_iq4_nl)
GGML_TILE_FN(GT_MXFP4, 0, gq8t_mxfp4)

INLINE void ggml_q8_tiles(const wdesc* D, const uint8_t* const p[4], int32_t act, int32_t as, int nb, v128_t* accs,
                          float* y, int ys, int r, int last) {
#define TILES(NAME) NAME(D, p, act, as, nb, accs, y, ys, r, last)
  switch (D->bits) {
    case GT_Q4_0: TILES(gq8t_q4_0); break;
    case GT_Q4_1: TILES(gq8t_q4_1); break;
    case GT_Q5_0: TILES(gq8t_q5_0); break;
    case GT_Q5_1: TILES(gq8t_q5_1); break;
    case GT_Q8_0:
      if (D->dot_class == DOT_FULL8) TILES(gq8t_q8_0_full);
      else TILES(gq8t_q8_0);
      break;
    case GT_Q2_K: TILES(gq8t_q2_k); break;
    case GT_Q3_K: TILES(gq8t_q3_k); break;
    case GT_Q4_K: TILES(gq8t_q4_k); break;
    case GT_Q5_K: TILES(gq8t_q5_k); break;
    case GT_Q6_K: TILES(gq8t_q6_k); break;
    case GT_IQ4_NL: TILES(gq8t_iq4_nl); break;
    default: TILES(gq8t_mxfp4); break;
  }
#undef TILES
}

/** Lanes [a0 + a1, a2 + a3, b0 + b1, b2 + b3]: rows 0, 1 in a (lanes 2i, 2i + 1) and rows 2, 3 in b. */
INLINE v128_t il_pairs(v128_t a, v128_t b) {
  return wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), wasm_i32x4_shuffle(a, b, 1, 3, 5, 7));
}
/** 16 bytes of interleaved codes (4 per row) widened against 4 activations (i16, splat twice): acc lo, hi. */
INLINE void il_wide(const int sgn, v128_t c, const int16_t* x, v128_t* lo, v128_t* hi) {
  const v128_t xv = wasm_v128_load64_splat(x);
  const v128_t cl = sgn ? wasm_i16x8_extend_low_i8x16(c) : wasm_u16x8_extend_low_u8x16(c);
  const v128_t ch = sgn ? wasm_i16x8_extend_high_i8x16(c) : wasm_u16x8_extend_high_u8x16(c);
  *lo = wasm_i32x4_add(*lo, wasm_i32x4_dot_i16x8(cl, xv));
  *hi = wasm_i32x4_add(*hi, wasm_i32x4_dot_i16x8(ch, xv));
}
/**
 * Piece t of a Q4_0 / IQ4_NL block group g: *lo its low nibbles (weights 4t.. of the four rows), *hi its high
 * ones (16 + 4t..); IQ4_NL's through its value table kv (unused for Q4_0).
 */
INLINE void il_nibbles(const int T, const uint8_t* g, int t, v128_t kv, v128_t* lo, v128_t* hi) {
  const v128_t m4 = wasm_i8x16_splat(15);
  const v128_t v = wasm_v128_load(g + 8 + 16 * t);
  *lo = wasm_v128_and(v, m4);
  *hi = bits8(v, 4, m4);
  if (T == GT_IQ4_NL) {
    *lo = wasm_i8x16_swizzle(kv, *lo);
    *hi = wasm_i8x16_swizzle(kv, *hi);
  }
}
/** Q4_0 group g's codes: c[2t] the low nibbles of piece t (weights 4t..), c[2t + 1] the high (16 + 4t..). */
INLINE void il_q4_codes(const uint8_t* g, v128_t c[8]) {
  for (int t = 0; t < 4; t++) il_nibbles(GT_Q4_0, g, t, wasm_i32x4_splat(0), &c[2 * t], &c[2 * t + 1]);
}
#if MIXQ_RELAXED
/** [row 0..3] sums of Q4_0 codes (il_q4_codes) times the activations at k (16 products per i16 lane). */
INLINE v128_t il_q4_dot(const v128_t c[8], const actq* A, int k) {
  v128_t s16 = wasm_i16x8_splat(0);
  for (int t = 0; t < 4; t++) {
    s16 = wasm_i16x8_add(s16, rdot16(c[2 * t], wasm_v128_load32_splat(A->qs + k + 4 * t)));
    s16 = wasm_i16x8_add(s16, rdot16(c[2 * t + 1], wasm_v128_load32_splat(A->qs + k + 16 + 4 * t)));
  }
  return wasm_i32x4_extadd_pairwise_i16x8(s16);
}
#endif

/**
 * Integer sums [row 0..3] of one block group g of an interleaved tile against the activations at k
 * (Q4_0: before its zero point 8, which the caller takes off). Signed codes (Q8_0, IQ4_NL) take the
 * widening dot in both builds: on x64 it is fewer instructions than relaxed SIMD's sign trick (|q| and the
 * sign of q splat, negate, select; measured 1.1-1.4x faster), and it takes any byte (Q8_0's -128 too).
 */
INLINE v128_t il_isum(const int T, const uint8_t* g, const actq* A, int k) {
  if (T == GT_Q8_0) {
    v128_t lo = wasm_i32x4_splat(0), hi = lo;
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 8; t++)
      il_wide(1, wasm_v128_load(g + 8 + 16 * t), A->qs16 + k + 4 * t, &lo, &hi);
    return il_pairs(lo, hi);
  }
  if (T == GT_IQ4_NL) {
    const v128_t kv = wasm_v128_load(KV_IQ4NL);
    v128_t lo = wasm_i32x4_splat(0), hi = lo;
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
      v128_t cl, ch;
      il_nibbles(T, g, t, kv, &cl, &ch);
      il_wide(1, cl, A->qs16 + k + 4 * t, &lo, &hi);
      il_wide(1, ch, A->qs16 + k + 16 + 4 * t, &lo, &hi);
    }
    return il_pairs(lo, hi);
  }
  // Q4_0: codes 0..15; the relaxed build sums 16 products per i16 lane (|.| <= 16 * 15 * 127 < 2^15)
#if MIXQ_RELAXED
  v128_t c[8];
  il_q4_codes(g, c);
  return il_q4_dot(c, A, k);
#else
  v128_t lo = wasm_i32x4_splat(0), hi = lo;
  _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
    v128_t cl, ch;
    il_nibbles(T, g, t, wasm_i32x4_splat(0), &cl, &ch);
    il_wide(0, cl, A->qs16 + k + 4 * t, &lo, &hi);
    il_wide(0, ch, A->qs16 + k + 16 + 4 * t, &lo, &hi);
  }
  return il_pairs(lo, hi);
#endif
}

/**
 * An interleaved tile (rows r .. r+3, all real) against nb activation rows: per block one i32x4 of the four
 * rows' integer sums, converted and scaled by the four rows' d (one fp16x4 conversion) times the block's
 * activation scale, accumulated in float32 lanes that are the four outputs.
 */
#define GGML_IL_FN(T, NAME)                                                                         \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* tile, int32_t act, int32_t as,  \
                                             int nb, float* y, int ys, int r) {                             \
    const int bb = ggml_block_bytes(T), nblk = D->cols / 32;                                               \
    for (int j = 0; j < nb; j++) {                                                                        \
      const actq A = act_view(act_at(act, as, j), D->kp);                                                 \
      v128_t acc = wasm_f32x4_splat(0);                                                                    \
      const uint8_t* g = tile;                                                                             \
      for (int b = 0; b < nblk; b++, g += 4 * bb) {                                                       \
        v128_t S = il_isum(T, g, &A, 32 * b);                                                       \
        if (T == GT_Q4_0) S = wasm_i32x4_sub(S, wasm_i32x4_splat(8 * (A.s[2 * b] + A.s[2 * b + 1])));     \
        const v128_t d4 = f16x4_to_f32(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(g)));           \
        acc = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(d4, wasm_f32x4_splat(A.d[b])), acc);       \
      }                                                                                                    \
      wasm_v128_store(y + (size_t)j * ys + r, acc);                                                        \
    }                                                                                                      \
  }
GGML_IL_FN(GT_Q4_0, gq8il_q4_0)
GGML_IL_FN(GT_IQ4_NL, gq8il_iq4_nl)
GGML_IL_FN(GT_Q8_0, gq8il_q8_0)

/*
 * Matrix x matrix (nb > 1) on an interleaved tile: block by block, the four rows' scales converted once
 * (and Q4_0's codes decoded once in the relaxed build) for every activation row (float accumulators in
 * accs), with the same integer sums and the same float32 operations in the same order as the matrix x
 * vector kernel (GGML_IL_FN), so every batch row equals its matvec bit for bit.
 * - Q8_0, IQ4_NL and (SIMD128) Q4_0: four activation rows per step (il_isum4): each code vector is loaded,
 *   decoded and widened once for four rows (it was two per step, and one before that).
 * - Relaxed Q4_0: the block's codes decoded once (eight vectors held in registers) for all rows, one row
 *   per step (ilm_q4_relaxed).
 * - Q4_0's zero-point term 8 * (sum of the block's 32 activation codes) comes from a table zp[b nb + j]
 *   that mm_ggml_q8 fills once per call (q4_zp_table), one splat load per block and row instead of two
 *   loads, an addition, a shift and a splat.
 */
/**
 * il_wide for four activation rows (x, then as bytes apart) on codes already widened to i16: cl rows 0, 1
 * (bytes 0..7 of the interleaved code vector), ch rows 2, 3 (bytes 8..15).
 */
INLINE void il_wide4w(v128_t cl, v128_t ch, const int16_t* x, int32_t as, v128_t acc[8]) {
  const uint8_t* p = (const uint8_t*)x;
  _Pragma("clang loop unroll(full)") for (int n = 0; n < 4; n++) {
    const v128_t xv = wasm_v128_load64_splat(p + (size_t)n * (size_t)as);
    acc[2 * n] = wasm_i32x4_add(acc[2 * n], wasm_i32x4_dot_i16x8(cl, xv));
    acc[2 * n + 1] = wasm_i32x4_add(acc[2 * n + 1], wasm_i32x4_dot_i16x8(ch, xv));
  }
}
/** il_wide for four activation rows: the code vector widened once. */
INLINE void il_wide4(const int sgn, v128_t c, const int16_t* x, int32_t as, v128_t acc[8]) {
  il_wide4w(sgn ? wasm_i16x8_extend_low_i8x16(c) : wasm_u16x8_extend_low_u8x16(c),
            sgn ? wasm_i16x8_extend_high_i8x16(c) : wasm_u16x8_extend_high_u8x16(c), x, as, acc);
}
/**
 * il_isum of one block group against four activation rows (S[0..3]; row 0's qs16 at the block: x, the next
 * rows as bytes apart), each code vector loaded and decoded once for the four (Q8_0, IQ4_NL; Q4_0 before
 * its zero point, SIMD128 build). Live vectors: 8 sums, the widened code pair and one activation splat.
 */
INLINE void il_isum4(const int T, const uint8_t* g, const int16_t* x, int32_t as, v128_t S[4]) {
  v128_t acc[8];
  for (int i = 0; i < 8; i++) acc[i] = wasm_i32x4_splat(0);
  // rolled loops: unrolled, V8 hoisted all 32 activation loads of a block above the dots and spilled them.
  // Q8_0 loads its code bytes widened (i16x8.load8x8_s: one vpmovsxbw with its load on x64, where the
  // high half of a loaded vector took two instructions to widen): 1.04-1.08x. Q4_0's nibbles taken the same
  // way (u16x8.load8x8, then and / shift in i16) ran 0.94x.
  if (T == GT_Q8_0) {
    _Pragma("clang loop unroll(disable)") for (int t = 0; t < 8; t++)
      il_wide4w(wasm_i16x8_load8x8(g + 8 + 16 * t), wasm_i16x8_load8x8(g + 16 + 16 * t), x + 4 * t, as, acc);
  } else {
    const v128_t kv = wasm_v128_load(KV_IQ4NL);
    _Pragma("clang loop unroll(disable)") for (int t = 0; t < 4; t++) {
      v128_t lo, hi;
      il_nibbles(T, g, t, kv, &lo, &hi);
      il_wide4(T == GT_IQ4_NL, lo, x + 4 * t, as, acc);
      il_wide4(T == GT_IQ4_NL, hi, x + 16 + 4 * t, as, acc);
    }
  }
  for (int n = 0; n < 4; n++) S[n] = il_pairs(acc[2 * n], acc[2 * n + 1]);
}
/** il_wide against two activation rows (x0, x1): the code vector widened once. */
INLINE void il_wide2(const int sgn, v128_t c, const int16_t* x0, const int16_t* x1, v128_t acc[4]) {
  const v128_t cl = sgn ? wasm_i16x8_extend_low_i8x16(c) : wasm_u16x8_extend_low_u8x16(c);
  const v128_t ch = sgn ? wasm_i16x8_extend_high_i8x16(c) : wasm_u16x8_extend_high_u8x16(c);
  const v128_t xv0 = wasm_v128_load64_splat(x0), xv1 = wasm_v128_load64_splat(x1);
  acc[0] = wasm_i32x4_add(acc[0], wasm_i32x4_dot_i16x8(cl, xv0));
  acc[1] = wasm_i32x4_add(acc[1], wasm_i32x4_dot_i16x8(ch, xv0));
  acc[2] = wasm_i32x4_add(acc[2], wasm_i32x4_dot_i16x8(cl, xv1));
  acc[3] = wasm_i32x4_add(acc[3], wasm_i32x4_dot_i16x8(ch, xv1));
}
/**
 * il_isum of one block group against two activation rows (*S0, *S1; their qs16 at the block: x0, x1), each
 * code vector loaded and decoded once for both (the last rows of a batch that is not a multiple of 4).
 */
INLINE void il_isum2(const int T, const uint8_t* g, const int16_t* x0, const int16_t* x1, v128_t* S0, v128_t* S1) {
  v128_t acc[4] = {wasm_i32x4_splat(0), wasm_i32x4_splat(0), wasm_i32x4_splat(0), wasm_i32x4_splat(0)};
  if (T == GT_Q8_0) {
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 8; t++)
      il_wide2(1, wasm_v128_load(g + 8 + 16 * t), x0 + 4 * t, x1 + 4 * t, acc);
  } else {
    const v128_t kv = wasm_v128_load(KV_IQ4NL);
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
      v128_t lo, hi;
      il_nibbles(T, g, t, kv, &lo, &hi);
      il_wide2(T == GT_IQ4_NL, lo, x0 + 4 * t, x1 + 4 * t, acc);
      il_wide2(T == GT_IQ4_NL, hi, x0 + 16 + 4 * t, x1 + 16 + 4 * t, acc);
    }
  }
  *S0 = il_pairs(acc[0], acc[1]);
  *S1 = il_pairs(acc[2], acc[3]);
}

/**
 * Block b of an interleaved Q4_0 tile (relaxed build: codes c decoded, the rows' scales d4) against
 * activation rows j < n at a, as bytes apart (zero-point terms zb[j]): il_q4_dot and GGML_IL_FN's zero point
 * and scaling, with one pointer stepping over the rows (act_view per row and block cost more instructions
 * than the dots).
 */
INLINE void ilm_q4_relaxed(const v128_t c[8], v128_t d4, const uint8_t* a, int32_t as, int n, int kp, int b,
                           const int32_t* zb, v128_t* accs) {
#if MIXQ_RELAXED
  const uint8_t* q = a + 32 * b;
  const size_t od = 3 * (size_t)kp + 4 * (size_t)b - 32 * (size_t)b;  // d[b] relative to q
  _Pragma("clang loop unroll(disable)") for (int j = 0; j < n; j++, q += as) {
    v128_t s16 = wasm_i16x8_splat(0);
    _Pragma("clang loop unroll(full)") for (int t = 0; t < 4; t++) {
      s16 = wasm_i16x8_add(s16, rdot16(c[2 * t], wasm_v128_load32_splat(q + 4 * t)));
      s16 = wasm_i16x8_add(s16, rdot16(c[2 * t + 1], wasm_v128_load32_splat(q + 16 + 4 * t)));
    }
    const v128_t S = wasm_i32x4_sub(wasm_i32x4_extadd_pairwise_i16x8(s16), wasm_v128_load32_splat(zb + j));
    accs[j] = fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(d4, wasm_v128_load32_splat(q + od)), accs[j]);
  }
#else
  (void)c, (void)d4, (void)a, (void)as, (void)n, (void)kp, (void)b, (void)zb, (void)accs;
#endif
}

/** Scales S (the four rows' integer sums of one block and activation row) into acc: GGML_IL_FN's step. */
INLINE v128_t il_scale(v128_t S, v128_t d4, const uint8_t* dx, v128_t acc) {
  return fmadd(wasm_f32x4_convert_i32x4(S), wasm_f32x4_mul(d4, wasm_v128_load32_splat(dx)), acc);
}

#define GGML_IL_MM_FN(T, NAME)                                                                             \
  static __attribute__((noinline)) void NAME(const wdesc* D, const uint8_t* tile, int32_t act, int32_t as,  \
                                             int nb, v128_t* accs, const int32_t* zp, float* y, int ys,     \
                                             int r) {                                                       \
    const int bb = ggml_block_bytes(T), nblk = D->cols / 32, kp = D->kp;                                   \
    for (int j = 0; j < nb; j++) accs[j] = wasm_f32x4_splat(0);                                          \
    const uint8_t* g = tile;                                                                               \
    for (int b = 0; b < nblk; b++, g += 4 * bb) {                                                         \
      const v128_t d4 = f16x4_to_f32(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(g)));             \
      const int32_t* zb = zp + (size_t)b * (size_t)nb; /* Q4_0: row j's zero-point term at zb[j] */       \
      if (MIXQ_RELAXED && T == GT_Q4_0) {                                                                  \
        v128_t c[8];                                                                                       \
        il_q4_codes(g, c);                                                                                 \
        ilm_q4_relaxed(c, d4, (const uint8_t*)(uintptr_t)act, as, nb, kp, b, zb, accs);                  \
        continue;                                                                                          \
      }                                                                                                    \
      /* row j's qs16 at 32 b and d[b] relative to its start pa */                                        \
      const size_t o16 = (size_t)kp + 64 * (size_t)b, od = 3 * (size_t)kp + 4 * (size_t)b;                 \
      const uint8_t* pa = (const uint8_t*)(uintptr_t)act;                                                  \
      int j = 0;                                                                                           \
      for (; j + 4 <= nb; j += 4, pa += 4 * (size_t)as) {                                                 \
        v128_t S[4];                                                                                       \
        il_isum4(T, g, (const int16_t*)(pa + o16), as, S);                                                 \
        _Pragma("clang loop unroll(full)") for (int n = 0; n < 4; n++) {                                   \
          if (T == GT_Q4_0) S[n] = wasm_i32x4_sub(S[n], wasm_v128_load32_splat(zb + j + n));             \
          accs[j + n] = il_scale(S[n], d4, pa + (size_t)n * (size_t)as + od, accs[j + n]);                \
        }                                                                                                  \
      }                                                                                                    \
      for (; j < nb; j += 2, pa += 2 * (size_t)as) {                                                      \
        const int two = j + 1 < nb;                                                                        \
        const uint8_t* pb = two ? pa + as : pa;                                                            \
        v128_t S, S1;                                                                                      \
        il_isum2(T, g, (const int16_t*)(pa + o16), (const int16_t*)(pb + o16), &S, &S1);                   \
        if (T == GT_Q4_0) S = wasm_i32x4_sub(S, wasm_v128_load32_splat(zb + j));                          \
        accs[j] = il_scale(S, d4, pa + od, accs[j]);                                                       \
        if (two) {                                                                                         \
          if (T == GT_Q4_0) S1 = wasm_i32x4_sub(S1, wasm_v128_load32_splat(zb + j + 1));                  \
          accs[j + 1] = il_scale(S1, d4, pb + od, accs[j + 1]);                                            \
        }                                                                                                  \
      }                                                                                                    \
    }                                                                                                      \
    for (int j = 0; j < nb; j++) wasm_v128_store(y + (size_t)j * ys + r, accs[j]);                       \
  }
GGML_IL_MM_FN(GT_Q4_0, gq8ilm_q4_0)
GGML_IL_MM_FN(GT_IQ4_NL, gq8ilm_iq4_nl)
GGML_IL_MM_FN(GT_Q8_0, gq8ilm_q8_0)

/** Activation rows per pass of an interleaved Q4_0 product (its zero-point table: 4 ZP_ROWS kp / 32 bytes). */
#define ZP_ROWS 64
/**
 * zp[b n + j] = 8 * (sum of the 32 codes of block b of activation row j < n at act, rows as bytes apart):
 * the zero-point term of Q4_0 (codes - 8), integer and exact, as GGML_IL_FN takes it off per block.
 */
INLINE void q4_zp_table(int32_t act, int32_t as, int n, int kp, int32_t* zp) {
  for (int j = 0; j < n; j++) {
    const actq A = act_view(act_at(act, as, j), kp);
    for (int b = 0; b < kp / 32; b++) zp[(size_t)b * (size_t)n + j] = 8 * (A.s[2 * b] + A.s[2 * b + 1]);
  }
}

/** Runs an interleaved tile (accs: nb vectors of scratch; zp: Q4_0's zero-point table); 0 if not one. */
INLINE int ggml_q8_il(const wdesc* D, const uint8_t* const p[4], int32_t act, int32_t as, int nb, v128_t* accs,
                      const int32_t* zp, float* y, int ys, int r) {
  if (!ggml_il_type(D->bits) || !ggml_il_tile(D, r)) return 0;
  if (nb > 1) {
    switch (D->bits) {
      case GT_Q4_0: gq8ilm_q4_0(D, p[0], act, as, nb, accs, zp, y, ys, r); break;
      case GT_IQ4_NL: gq8ilm_iq4_nl(D, p[0], act, as, nb, accs, zp, y, ys, r); break;
      default: gq8ilm_q8_0(D, p[0], act, as, nb, accs, zp, y, ys, r); break;
    }
    return 1;
  }
  switch (D->bits) {
    case GT_Q4_0: gq8il_q4_0(D, p[0], act, as, nb, y, ys, r); break;
    case GT_IQ4_NL: gq8il_iq4_nl(D, p[0], act, as, nb, y, ys, r); break;
    default: gq8il_q8_0(D, p[0], act, as, nb, y, ys, r); break;
  }
  return 1;
}

EXPORT void mv_ggml_q8(int32_t desc, int32_t act, int32_t y, int32_t r0, int32_t r1) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  v128_t acc;
  for (int r = r0; r < r1; r += 4) {
    const uint8_t* p[4];
    ggml_tile(D, r, r1 - 1, p);
    if (!ggml_q8_il(D, p, act, 0, 1, &acc, 0, (float*)(uintptr_t)y, 0, r))
      ggml_q8_rows(D, p, act, 0, 1, &acc, (float*)(uintptr_t)y, 0, r, r1 - 1);
  }
}

/** mm_ggml_q8 on activation rows [0, nb) (nb <= ZP_ROWS where zp is used). */
INLINE void mm_ggml_q8_rows(const wdesc* D, int32_t act, int32_t as, int32_t nb, float* y, int32_t ys, int32_t r0,
                            int32_t r1, v128_t* accs, int32_t* zp) {
  if (nb > 1 && D->bits == GT_Q4_0 && D->aux == 4) q4_zp_table(act, as, nb, D->kp, zp);
  for (int r = r0; r < r1; r += 4) {
    const uint8_t* p[4];
    ggml_tile(D, r, r1 - 1, p);
    if (ggml_q8_il(D, p, act, as, nb, accs, zp, y, ys, r)) continue;
    // the last tile (< 4 rows) of an interleaved weight: the matvec row kernel, so that every batch row
    // equals its matvec bit for bit (ggml_q8_tiles scales in another float32 order)
    if (nb > 1 && !(ggml_il_type(D->bits) && D->aux == 4)) ggml_q8_tiles(D, p, act, as, nb, accs, y, ys, r, r1 - 1);
    else ggml_q8_rows(D, p, act, as, nb, accs, y, ys, r, r1 - 1);
  }
}

/**
 * int8 path, matrix x matrix (scratch: one accumulator vector per activation row, then Q4_0's zero-point
 * table of at most 4 ZP_ROWS kp / 32 = 8 kp bytes). Interleaved Q4_0 runs ZP_ROWS activation rows per pass.
 */
EXPORT void mm_ggml_q8(int32_t desc, int32_t act, int32_t as, int32_t nb, int32_t y, int32_t ys, int32_t r0,
                       int32_t r1, int32_t scratch) {
  const wdesc* D = (const wdesc*)(uintptr_t)desc;
  v128_t* accs = (v128_t*)(uintptr_t)scratch;
  int32_t* zp = (int32_t*)(accs + nb);
  float* yf = (float*)(uintptr_t)y;
  const int step = nb > 1 && D->bits == GT_Q4_0 && D->aux == 4 ? ZP_ROWS : nb;
  for (int j0 = 0; j0 < nb; j0 += step) {
    const int n = nb - j0 < step ? nb - j0 : step;
    mm_ggml_q8_rows(D, (int32_t)act_at(act, as, j0), as, n, yf + (size_t)j0 * (size_t)ys, ys, r0, r1, accs, zp);
  }
}
#endif

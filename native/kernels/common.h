// Shared definitions of the matrix kernels (native/kernels/kernels.c): SIMD helpers, the weight
// descriptor the TypeScript side writes (src/kernels/layout.ts WDESC), scale decoding and the integer dot
// products of the int8-activation path.
//
// Conventions:
// - A weight is a row matrix [rows = outputs, cols = reduction K]; kernels read K padded to `kp` (a multiple
//   of the layout's block) and the caller's activation buffers are zero beyond K.
// - Rows are computed four at a time (a "tile"); a tile that runs past the last row of the range repeats
//   that row and drops the copies. Lanes never mix rows, so a row's result is the same whatever rows share
//   its tile, and therefore the same for any split of the rows between threads.
// - Float arithmetic is float32, one rounding per operation (-ffp-contract=off), except fmadd() in the
//   relaxed build, which may fuse (f32x4.relaxed_madd): the error budgets in src/kernels/budget.ts cover it.
#ifndef MIXQ_KERNELS_COMMON_H
#define MIXQ_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

typedef signed char i8x16_t __attribute__((vector_size(16)));
typedef short i16x8_t __attribute__((vector_size(16)));
typedef float f32x4_t __attribute__((vector_size(16)));

#define INLINE static inline __attribute__((always_inline))
#define EXPORT __attribute__((visibility("default")))

// ---- weight descriptor: one per prepared weight, 32 little-endian 32-bit fields (src/kernels/layout.ts) ----
typedef struct {
  int32_t layout;       // 0  LAYOUT_* below
  int32_t rows;         // 1
  int32_t cols;         // 2  logical K
  int32_t kp;           // 3  padded K (what activations hold)
  int32_t data;         // 4  address of the codes / weights
  int32_t row_bytes;    // 5  bytes per row of data
  int32_t bits;         // 6  code bits (sliced), ggml type id (ggml), plane count (lut)
  int32_t group;        // 7  weights per scale group along K (multiple of 16; >= kp: one per row)
  int32_t ngroups;      // 8  groups per row
  int32_t scales;       // 9  address of scales [rows][ngroups] (0: every scale is 1)
  int32_t scale_kind;   // 10 SCALE_* below
  float tensor_scale;   // 11 multiplies e4m3 scales (NVFP4's fp32 tensor scale), else 1
  int32_t zeros;        // 12 address of zero codes [rows][ngroups] (ZERO_NIBBLE / ZERO_BYTE), or 0
  int32_t zero_kind;    // 13 ZERO_* below
  int32_t zc;           // 14 constant zero code (ZERO_CONST)
  int32_t elem;         // 15 ELEM_* below
  int32_t table;        // 16 address of the f32 value of every code [2^bits] (tables), or the byte planes
  int32_t qtable;       // 17 address of the int8 value of every code + qoffset (int8 path of tables), or 0
  float qunit;          // 18 element value = (qtable[c] - qoffset) * qunit
  int32_t qoffset;      // 19
  int32_t offsets;      // 20 address of f16 additive offsets [rows][ngroups] (asymmetric tables), or 0
  int32_t fbits;        // 21 float elements: shift of the magnitude into float32's fields (23 - M)
  float fmul;           // 22 float elements: 2^(127 - bias)
  int32_t fsign;        // 23 float elements: bit of the sign (bits - 1), or -1 unsigned
  int32_t dot_class;    // 24 DOT_* below: how the int8 path multiplies codes
  int32_t aux;          // 25 layout specific
  int32_t interleave;   // 26 sliced: 4 when full 4-row tiles of data are interleaved (sliced.h), else 0
  int32_t scale_nonneg; // 27 lut: 1 when every fp16 scale's sign bit is clear (lut.h lut_tile_g32), else 0
  int32_t pad[4];
} wdesc;

enum { LAYOUT_F32 = 1, LAYOUT_F16 = 2, LAYOUT_BF16 = 3, LAYOUT_SLICED = 4, LAYOUT_GGML = 5, LAYOUT_LUT = 6 };
enum { SCALE_ONE = 0, SCALE_F32 = 1, SCALE_F16 = 2, SCALE_BF16 = 3, SCALE_E8M0 = 4, SCALE_E4M3 = 5 };
enum { ZERO_CONST = 0, ZERO_NIBBLE = 1, ZERO_BYTE = 2 };
enum { ELEM_INT = 0, ELEM_FLOAT = 1, ELEM_LUT4 = 2, ELEM_TABLE = 3 };
// int8 path: codes 0..63 (U6), 0..127 (U7), signed codes |c| <= 127 (S8), or any byte (FULL8: code - 128 as int8)
enum { DOT_U6 = 0, DOT_U7 = 1, DOT_S8 = 2, DOT_FULL8 = 3 };

#ifdef __wasm_relaxed_simd__
#define MIXQ_RELAXED 1
INLINE v128_t fmadd(v128_t a, v128_t b, v128_t c) {
  return (v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4_t)a, (f32x4_t)b, (f32x4_t)c);
}
#else
#define MIXQ_RELAXED 0
INLINE v128_t fmadd(v128_t a, v128_t b, v128_t c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }
#endif

INLINE float f32_from_bits(uint32_t u) {
  union { uint32_t u; float f; } v = {u};
  return v.f;
}

// IEEE binary16 -> float32, exact for finite values; Inf / NaN never reach here (prepare refuses them).
// f16_to_f32 (scalar: a block's scale, once per 256 weights in the K-quants) takes no float operation with a
// subnormal operand: x86 pays a microcode assist (~100+ cycles) for each, WebAssembly cannot set
// flush-to-zero, and small weights' scales are often fp16 subnormals (Q6_K's d for weights of std 0.02: Q6_K
// and Q5_K ran 2.2x slower). Normal magnitudes are rebiased by an integer addition to the exponent field
// (15 -> 127); a subnormal's exponent gets one more (2^-14 + m 2^-24) and 2^-14 is subtracted in float32 (no
// branch: a tensor's scales mix both kinds, and a branch measured up to 1.4x slower on Q6_K).
// f16x4_to_f32 (vectors: dense F16 weights, the four scales per block of Q4_0 / IQ4_NL / Q8_0 / Q4_K tiles)
// keeps the shorter form, the magnitude moved into float32's fields times 2^112, which is up to 2x faster in
// those loops and pays the assist only on subnormal halves (rare for those scales: a Q4_0 / Q8_0 d is one
// when amax < 4.9e-4 / 7.7e-3). f16x4_to_f32_na is the vector form of f16_to_f32, for the tiles of Q6_K,
// whose d usually is one.
#define F16_REBIAS 5.192296858534828e33f /* 2^112 */
INLINE float f16_to_f32(uint32_t h) {
  const uint32_t a = h & 0x7fffu, sub = a < 0x400u;
  const float m = f32_from_bits((a << 13) + ((112u + sub) << 23)) - f32_from_bits(sub ? 0x38800000u : 0u);
  return f32_from_bits(((union { float f; uint32_t u; }){m}).u | ((h & 0x8000u) << 16));
}
INLINE v128_t f16x4_to_f32(v128_t h /* u32 lanes */) {
  v128_t m = wasm_f32x4_mul(wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13),
                            wasm_f32x4_splat(F16_REBIAS));
  return wasm_v128_or(m, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}
/**
 * The sign and magnitude bits of four fp16 (i16 lanes 0..3 of h, finite) moved into float32's fields, as
 * f16x4_to_f32 places them before its multiplication by 2^112: each fp16 to the top of its 32-bit lane by an
 * unpack with zero, shifted right by 3 with its sign (the sign stays at bit 31, its copies at 30..28 are
 * cleared, the magnitude lands at bits 13..27). Times 2^112 that is the fp16's value exactly, sign included
 * (f16x4_to_f32's result, -0 too). Three operations (f16x4_to_f32: a widening and seven).
 */
INLINE v128_t f16x4_bits(v128_t h) {
  const v128_t v = wasm_i16x8_shuffle(wasm_i16x8_splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11);
  return wasm_v128_and(wasm_i32x4_shr(v, 3), wasm_i32x4_splat((int32_t)0x8fffffff));
}
/** Four fp16 (u32 lanes, finite) as float32, as f16_to_f32 does it: no subnormal float operand. */
INLINE v128_t f16x4_to_f32_na(v128_t h) {
  const v128_t a = wasm_v128_and(h, wasm_i32x4_splat(0x7fff));
  const v128_t sub = wasm_i32x4_lt(a, wasm_i32x4_splat(0x400));
  const v128_t t = wasm_i32x4_add(wasm_i32x4_shl(a, 13),
                                  wasm_i32x4_add(wasm_i32x4_splat(112 << 23), wasm_v128_and(sub, wasm_i32x4_splat(1 << 23))));
  const v128_t m = wasm_f32x4_sub(t, wasm_v128_and(sub, wasm_i32x4_splat(0x38800000)));
  return wasm_v128_or(m, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}
INLINE float bf16_to_f32(uint32_t h) { return f32_from_bits(h << 16); }
// E8M0: 2^(c - 127); code 0 is 2^-127, a float32 subnormal (0x00400000). Code 255 (NaN) is refused.
INLINE float e8m0_to_f32(uint32_t c) { return f32_from_bits(c ? c << 23 : 0x00400000u); }
// FP8 E4M3 (OCP e4m3fn), exact incl. subnormals, with no subnormal float operand (as f16_to_f32): normal
// magnitudes rebiased in the exponent field (7 -> 127), subnormals (< 8) the integer field times 2^-9.
// NaN refused.
#define E4M3_SUB_UNIT 0.001953125f /* 2^-9 */
INLINE float e4m3_to_f32(uint32_t c) {
  const uint32_t a = c & 0x7fu;
  const float m = a < 8u ? (float)(int32_t)a * E4M3_SUB_UNIT : f32_from_bits((a << 20) + (120u << 23));
  return f32_from_bits(((union { float f; uint32_t u; }){m}).u | ((c & 0x80u) << 24));
}

INLINE float read_f16(const uint8_t* p) { return f16_to_f32((uint32_t)p[0] | ((uint32_t)p[1] << 8)); }

// ---- group parameters: scales, zero codes, offsets ----
// Stored "tiled": entry (row r, group g) at index ((r / T) * ngroups + g) * T + r % T with T = D->aux rows
// per tile (4: sliced.h, 16: lut.h), so that a tile's rows have their parameters of a group side by side
// (one vector load). Rows are padded to a multiple of T with finite parameters.

INLINE size_t param_index(const wdesc* D, int r, int g) {
  const int T = D->aux;
  return ((size_t)(r / T) * D->ngroups + g) * T + r % T;
}
INLINE int scale_bytes(int kind) {
  return kind == SCALE_F32 ? 4 : (kind == SCALE_F16 || kind == SCALE_BF16) ? 2 : kind == SCALE_ONE ? 0 : 1;
}
/** Scale of entry i (kind and tensor scale from the descriptor). */
INLINE float scale_at(const wdesc* D, size_t i) {
  const uint8_t* p = (const uint8_t*)(uintptr_t)D->scales;
  switch (D->scale_kind) {
    case SCALE_F32: return ((const float*)p)[i];
    case SCALE_F16: return read_f16(p + 2 * i);
    case SCALE_BF16: return bf16_to_f32((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8));
    case SCALE_E8M0: return e8m0_to_f32(p[i]);
    case SCALE_E4M3: return e4m3_to_f32(p[i]) * D->tensor_scale;
    default: return 1.0f;
  }
}
/** Zero code of entry i. */
INLINE int zero_at(const wdesc* D, size_t i) {
  if (D->zero_kind == ZERO_CONST) return D->zc;
  const uint8_t* z = (const uint8_t*)(uintptr_t)D->zeros;
  if (D->zero_kind == ZERO_BYTE) return z[i];
  return (z[i >> 1] >> ((i & 1) * 4)) & 15;
}
INLINE float offset_at(const wdesc* D, size_t i) {
  return read_f16((const uint8_t*)(uintptr_t)D->offsets + 2 * i);
}

/** u8 lanes 0..3 of v widened to i32x4. */
INLINE v128_t widen4_u8(v128_t v) { return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(v)); }

/** The four scales of entries i .. i+3 (one load). */
INLINE v128_t scale4_at(const wdesc* D, size_t i) {
  const uint8_t* p = (const uint8_t*)(uintptr_t)D->scales;
  switch (D->scale_kind) {
    case SCALE_F32: return wasm_v128_load(p + 4 * i);
    case SCALE_F16: return f16x4_to_f32(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p + 2 * i)));
    case SCALE_BF16: return wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p + 2 * i)), 16);
    case SCALE_E8M0: {
      v128_t c = widen4_u8(wasm_v128_load32_zero(p + i));
      // 2^(c - 127): c << 23, but code 0 is the subnormal 2^-127 (0x00400000)
      return wasm_v128_bitselect(wasm_i32x4_splat(0x00400000), wasm_i32x4_shl(c, 23),
                                 wasm_i32x4_eq(c, wasm_i32x4_splat(0)));
    }
    case SCALE_E4M3: {
      v128_t c = widen4_u8(wasm_v128_load32_zero(p + i));
      v128_t m = wasm_f32x4_mul(wasm_i32x4_shl(wasm_v128_and(c, wasm_i32x4_splat(0x7f)), 20),
                                wasm_f32x4_splat(1.329227995784916e36f)); /* 2^120 (as f16x4_to_f32: the short form) */
      v128_t v = wasm_v128_or(m, wasm_i32x4_shl(wasm_v128_and(c, wasm_i32x4_splat(0x80)), 24));
      return wasm_f32x4_mul(v, wasm_f32x4_splat(D->tensor_scale));
    }
    default: return wasm_f32x4_splat(1.0f);
  }
}
/** The four zero codes of entries i .. i+3 (i a multiple of 4). */
INLINE v128_t zero4_at(const wdesc* D, size_t i) {
  if (D->zero_kind == ZERO_CONST) return wasm_i32x4_splat(D->zc);
  const uint8_t* z = (const uint8_t*)(uintptr_t)D->zeros;
  if (D->zero_kind == ZERO_BYTE) return widen4_u8(wasm_v128_load32_zero(z + i));
  // two bytes, four nibbles: lanes [b0, b0, b1, b1] * [16, 1, 16, 1] >> 4 & 15
  v128_t b = wasm_i8x16_swizzle(wasm_v128_load16_splat(z + (i >> 1)),
                                wasm_i8x16_make(0, -1, -1, -1, 0, -1, -1, -1, 1, -1, -1, -1, 1, -1, -1, -1));
  return wasm_v128_and(wasm_u32x4_shr(wasm_i32x4_mul(b, wasm_i32x4_make(16, 1, 16, 1)), 4), wasm_i32x4_splat(15));
}
INLINE v128_t offset4_at(const wdesc* D, size_t i) {
  const uint8_t* p = (const uint8_t*)(uintptr_t)D->offsets;
  return f16x4_to_f32(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p + 2 * i)));
}

// ---- byte-lane shifts: V8 has no 8-bit vector shift instruction on x64 and emulates one with a 16-bit
// shift, a mask it rebuilds each time and an AND. Shifting 16-bit lanes ourselves and masking with a mask
// kept in a register is the same result whenever the kept bits cannot come from the neighbouring byte.

/** (v >> s) & mask per byte, for mask < 2^(8 - s). */
INLINE v128_t bits8(v128_t v, int s, v128_t mask) { return wasm_v128_and(s ? wasm_u16x8_shr(v, s) : v, mask); }
/** v << s per byte, for byte values below 2^(8 - s). */
INLINE v128_t shl8(v128_t v, int s) { return s ? wasm_i16x8_shl(v, s) : v; }

// ---- horizontal sums ----
INLINE float hsum_f32(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}
/** [sum a, sum b, sum c, sum d] of four i32x4; every lane added in the same pattern (x0+x2)+(x1+x3). */
INLINE v128_t hsum4_i32(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}
/** The same for float32 lanes. */
INLINE v128_t hsum4_f32(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// ---- int8 activations (src/kernels/activations.ts): blocks of 32 values ----
// Buffer of kp values: qs int8[kp] | qs16 int16[kp] (the same values widened, for the SIMD128 dot) |
// d float32[kp/32] (block scale) | s int32[kp/16] (sum of each 16 codes) | aq int8[kp] (|q|) |
// sg int8[kp] (-1 where q < 0): signed weights take the activation's sign and multiply |q| (relaxed dot).
typedef struct {
  const int8_t* qs;
  const int16_t* qs16;
  const float* d;
  const int32_t* s;
  const int8_t* aq;
  const int8_t* sg;
} actq;
/**
 * Stores 16 activation codes (q32: four i32x4 in [-127, 127]) at index k of an int8 activation buffer (qs,
 * the widened qs16, |q| and the sign mask) and returns their sum.
 */
/** The same layout, writable: what act_q8 / act_q8k fill (act_view reads it). */
typedef struct {
  int8_t* qs;
  int16_t* qs16;
  float* d;
  int32_t* s;
  int8_t* aq;
  int8_t* sg;
} actw;
INLINE actw act_out(uint32_t base, int kp) {
  uint8_t* p = (uint8_t*)(uintptr_t)base;
  const size_t t = 3 * (size_t)kp + (size_t)kp / 8 + (size_t)kp / 4;
  actw a = {(int8_t*)p,
            (int16_t*)(p + kp),
            (float*)(p + 3 * (size_t)kp),
            (int32_t*)(p + 3 * (size_t)kp + (size_t)kp / 8),
            (int8_t*)(p + t),
            (int8_t*)(p + t + kp)};
  return a;
}
INLINE int32_t act_store16(const v128_t q32[4], const actw* o, size_t k) {
  const v128_t a = wasm_i16x8_narrow_i32x4(q32[0], q32[1]), c = wasm_i16x8_narrow_i32x4(q32[2], q32[3]);
  wasm_v128_store(o->qs16 + k, a);
  wasm_v128_store(o->qs16 + k + 8, c);
  const v128_t q8 = wasm_i8x16_narrow_i16x8(a, c);
  wasm_v128_store(o->qs + k, q8);
  wasm_v128_store(o->aq + k, wasm_i8x16_abs(q8));
  wasm_v128_store(o->sg + k, wasm_i8x16_lt(q8, wasm_i8x16_splat(0)));
  v128_t t = wasm_i32x4_add(wasm_i32x4_add(q32[0], q32[1]), wasm_i32x4_add(q32[2], q32[3]));
  t = wasm_i32x4_add(t, wasm_i32x4_shuffle(t, t, 2, 3, 0, 1));
  t = wasm_i32x4_add(t, wasm_i32x4_shuffle(t, t, 1, 0, 3, 2));
  return wasm_i32x4_extract_lane(t, 0);
}
/** Address of activation row j (rows `stride` bytes apart), in unsigned arithmetic (memories > 2 GiB). */
INLINE uint32_t act_at(int32_t base, int32_t stride, int j) { return (uint32_t)base + (uint32_t)stride * (uint32_t)j; }
INLINE actq act_view(uint32_t base, int kp) {
  const actw o = act_out(base, kp);
  actq a = {o.qs, o.qs16, o.d, o.s, o.aq, o.sg};
  return a;
}
/** Bytes of an int8 activation buffer for kp values (src/kernels/activations.ts q8Bytes). */
INLINE size_t act_bytes(int kp) { return 5 * (size_t)kp + (size_t)kp / 8 + (size_t)kp / 4; }

// ---- integer dot products: 16 or 32 weight codes (u8 lanes) with 16 / 32 activations at offset k ----
// Relaxed: i16x8.relaxed_dot_i8x16_i7x16_s (the codes are the 7-bit operand) then i32x4.extadd_pairwise.
// Not i32x4.relaxed_dot_i8x16_i7x16_add_s: Node 20's V8 returns wrong sums for it
// (test/kernels/relaxed-dot.test.ts shows it). SIMD128: codes widened to i16, i32x4.dot_i16x8_s with the
// widened activations (qs16).
INLINE v128_t rdot16(v128_t codes, v128_t x) {
#if MIXQ_RELAXED
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((i8x16_t)x, (i8x16_t)codes);
#else
  (void)codes;
  (void)x;
  return wasm_i32x4_splat(0);
#endif
}
/** i32x4 partial sums of codes[0..15] (0..127) * activations[k..k+15]. */
INLINE v128_t dot16_u7(v128_t c, const actq* a, int k) {
#if MIXQ_RELAXED
  return wasm_i32x4_extadd_pairwise_i16x8(rdot16(c, wasm_v128_load(a->qs + k)));
#else
  v128_t lo = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(c), wasm_v128_load(a->qs16 + k));
  v128_t hi = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(c), wasm_v128_load(a->qs16 + k + 8));
  return wasm_i32x4_add(lo, hi);
#endif
}
/** Codes 0..63 in both halves: the relaxed build adds the two i16 dot results before widening. */
INLINE v128_t dot32_u6(v128_t c0, v128_t c1, const actq* a, int k) {
#if MIXQ_RELAXED
  return wasm_i32x4_extadd_pairwise_i16x8(
      wasm_i16x8_add(rdot16(c0, wasm_v128_load(a->qs + k)), rdot16(c1, wasm_v128_load(a->qs + k + 16))));
#else
  return wasm_i32x4_add(dot16_u7(c0, a, k), dot16_u7(c1, a, k + 16));
#endif
}
INLINE v128_t dot32_u7(v128_t c0, v128_t c1, const actq* a, int k) {
  return wasm_i32x4_add(dot16_u7(c0, a, k), dot16_u7(c1, a, k + 16));
}
/**
 * Signed codes (int8 lanes, |c| <= 127 for the relaxed build): c q = (sign(q) c) |q|, with |q| (0..127) as
 * the 7-bit operand; |q| and the sign of q come with the activations.
 */
INLINE v128_t dot16_s8(v128_t c, const actq* a, int k) {
#if MIXQ_RELAXED
  v128_t cs = wasm_v128_bitselect(wasm_i8x16_neg(c), c, wasm_v128_load(a->sg + k));
  return wasm_i32x4_extadd_pairwise_i16x8(rdot16(wasm_v128_load(a->aq + k), cs));
#else
  v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(c), wasm_v128_load(a->qs16 + k));
  v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(c), wasm_v128_load(a->qs16 + k + 8));
  return wasm_i32x4_add(lo, hi);
#endif
}
/** Any signed byte (-128 allowed): widened dot in both builds. */
INLINE v128_t dot16_i8_wide(v128_t c, const actq* a, int k) {
  v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(c), wasm_v128_load(a->qs16 + k));
  v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(c), wasm_v128_load(a->qs16 + k + 8));
  return wasm_i32x4_add(lo, hi);
}

/** Rows of a tile: r, r+1, r+2, r+3, each clamped to last. */
INLINE void tile_rows(int r, int last, int out[4]) {
  for (int i = 0; i < 4; i++) out[i] = r + i <= last ? r + i : last;
}
/** Stores the lanes of a tile that are real rows. */
INLINE void store_tile(float* y, int r, int last, v128_t v) {
  y[r] = wasm_f32x4_extract_lane(v, 0);
  if (r + 1 <= last) y[r + 1] = wasm_f32x4_extract_lane(v, 1);
  if (r + 2 <= last) y[r + 2] = wasm_f32x4_extract_lane(v, 2);
  if (r + 3 <= last) y[r + 3] = wasm_f32x4_extract_lane(v, 3);
}

#endif

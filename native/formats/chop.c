// chop: rounds float32 values to any binary floating-point element format with a zero (bf16, fp16,
// tf32, fp8, fp6, fp4, custom e<E>m<M>, unsigned, fnuz) or unsigned without one (e8m0fnu: results below
// min normal are min normal, a zero input gives zero_out), in every rounding mode, with the format's
// overflow policy and special values, four lanes at a time (WebAssembly SIMD128), out of place or in
// place.
//
// wasm-variants: simd128
// wasm-ld: --import-memory -z stack-size=0
//
// The TypeScript side (src/formats/chop-plan.ts) derives every constant in ChopParams from the format
// and the options and writes it into the kernel's memory (src/formats/chop-wasm.ts); the rounding is the
// same two-path algorithm as the TypeScript fast path (chop-fast.ts), and both are tested bit for bit
// against the plain reference decode(encode(x)) (minifloat.ts + rounding.ts):
//
// 1. Integer path, for results in the target's normal range (and, for targets whose emin is float32's,
//    its subnormals too: bf16, tf32). With D = 23 - M dropped mantissa bits, round-to-nearest-even is
//    the classic `(bits + (half - 1) + lsb) & keep`; every other mode adds some R < 2^D to the bits and
//    truncates (`& keep`), rounding up in magnitude iff residual + R >= 2^D: R = half for ties away,
//    R = 2^D - 1 for a ceiling, the complement of the draw's top D bits for stochastic rounding. A
//    carry out of the mantissa correctly bumps the exponent.
// 2. Float path, for results below the target's min normal (subnormals, or 0 / min normal when the
//    target has none or they are flushed): nearest-even by one float32 addition of q * 2^23 (q the step
//    there), the other modes from m = |x| / q (a power of two: exact), k = trunc(m), frac = m - k and
//    the decision of rounding.ts on them, the result (k + up) * q (exact). Groups that need the float
//    path take both paths in one form instead where it is exact (MERGED): nearest-even one float32
//    addition (round_rne_float: +20-25% on fp8 / fp4 / fp16 data with subnormal results or overflow),
//    toward-zero, up and down one power-of-two scaling by the step at x, one rounding instruction
//    (trunc, ceil, floor) and the scaling back (round_merged: 2-4x up and down, 1.5x toward-zero on
//    limit data, issue 20); nearest-away nearest-even's addition on the magnitude with its last bit set
//    (rna_float_exact; session 7, +19-24% in cache over round_merged on fp8 / fp4 data). Session 8: in
//    finite() nearest-even and nearest-away take Veltkamp's splitting with a floor instead (round_vk: 4
//    operations against 5-6) and overflow to NaN or inf in 2 operations instead of a compare and a
//    v128.bitselect (4 x86 instructions), so that for fp8_e4m3fn and fp16 finite() is exact on inf and
//    NaN too and a group after a finite one gathers no range (the OVF_*_T forms): per 4 values
//    fp8_e4m3fn 9 SIMD operations (were 14), fp16 10 (14), fp4_e2m1fn 9 (10); toward-zero 10 (11), up /
//    down 11 (14) with the inf / NaN check on the exponent field round_merged takes anyway (AMAX_EXP).
//    In cache (same-process A/B, load 2.9): fp8_e4m3fn nearest-even 1.59x, nearest-away 1.47x, up /
//    down 1.18x then +5%; fp16 limits 1.33x / 1.28x / 1.17x then +7%; fp4 1.05-1.08x. The kernel runs at
//    about 3 SIMD operations per cycle, so these counts are the bound: 2x (the 0.8 chop / copy
//    needs about 6 operations per 4 values) would need the float path as cheap as the integer formula.
//
// Stochastic modes draw exactly one 32-bit number per element, in element order, from xoshiro128**
// (core/rng.ts), whose state lives in ChopParams: in from the caller's generator, out after the call.
// `stochastic`: up iff u < frac * 2^32 (r-bit: (u >> (32 - r)) < floor(frac * 2^r)); `stochastic-equal`:
// up iff the draw's top bit is set. (Four generators in the lanes of one vector, started apart by a jump
// matrix, measured no faster than this scalar generator feeding the vectors: not kept.)
//
// Speed: a group of UNROLL vectors is checked for lanes outside the integer path's window (one unsigned
// max of range keys, or for bf16 / tf32 a NaN by float32 sums: see Range); a group with none takes the
// integer formula alone (5 SIMD operations per vector for nearest-even), any other group finite() (float
// path, overflow, signs) or, with an inf or a NaN, full(), both branch-free and vectorised: data at the
// format's limits never leaves SIMD. Deterministic modes out of place take one pass on the path the group
// before took (its result stored while the range is gathered; a group that needs another path is redone
// from the intact source): the integer formula after a clean group (measured 5-10% faster in cache than
// checking first), finite() after a finite one (session 5: +4-13% on limit data), which then gathers only
// the magnitudes' max (does the group need full()?), not the range key; every 16th group after a finite
// one checks its range first, to find clean data again (session 7: the kernel +7-15% in cache on fp16 /
// fp8 / fp4 limit data and fp8 / fp4 random data, all modes; chop on JavaScript arrays +3-6%). (The
// check as one float32 sum instead: 0.95x on toward-zero, the sum's latency chain; as four sums indexed
// by k & 3 in finite_group's loop, which clang keeps rolled: the sums went to a stack frame, and with
// stack-size=0 the stack pointer starts at 1024, inside the data region: never index a Range by the loop
// counter there.) Groups of 16 vectors
// measured up to 40% faster than 8 in cache (toward-zero), no slower elsewhere. In place they check first
// (keeping the group's vectors for a redo spilled registers in V8 and measured slower); `chop` on
// JavaScript arrays therefore rounds each scratch chunk into a second region. Every pass has one site in
// the loop (finite() has two: with the range, out of place after a finite group, and without, where
// gathering it to no use cost in-place limit data 10-30%), and formats without the float path share
// path 1 (lo = 0): the module went from 99 KB (a site per case, path-0 variants) to 70 KB.
// bf16 nearest-even: 6 SIMD operations per vector (5 to round, 1 for the NaN check), near 7-8 G values/s
// in cache; on 10M values out of place memory-bound (a plain TypedArray.set copy runs slower there).
// Measured and not kept (issue 20, A/B in one process, in cache): a separate loop for bf16 / tf32
// (CPFloat's design: the formula on every lane, NaN lanes replaced by a select; or the group check in a
// small non-inlined function per mode, 4/8/16 vectors a group: 0.7-1.0x), groups of 8 vectors (bf16
// 0.65-0.9x of 16) or 32 (nearest-even +8%, toward-zero -18%), the one-pass loop as a rolled loop of
// 4-vector steps (nearest-even +5%, toward-zero -10 to -20%); session 5: nearest-even inside the window as
// one float32 addition of +-2^(E + D) (4 operations instead of 5: no measurable gain), the range as a
// max and a min of magnitudes (4-5% slower on clean data: min and max share fewer x86 ports than a
// subtraction), overflow to inf / NaN as an unsigned max (7% slower than the compare and bitselect), and
// the sign mask of up / down by a shift count hidden from clang (V8's variable-count shift: 2x slower),
// finite()'s group loop fully unrolled (clang keeps it rolled by 3: unrolled 3-8% slower, 129 KB), and an
// inner loop for consecutive clean groups (no gain).

#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

// Rounding modes (the row index of each mode in chop-plan.ts's KERNEL_MODES).
enum { RNE = 0, RNA = 1, RZ = 2, UP = 3, DOWN = 4, SR = 5, SRE = 6 };

typedef struct {
  int32_t mode;
  int32_t float_path; // 1: lanes below lo take the float path; 0: the integer path covers [0, hi) (lo 0)
  uint32_t abs_mask;  // 0x7fffffff; 0xffffffff for unsigned formats (negative inputs are special lanes)
  uint32_t lo;        // smallest magnitude bits of the integer path (0 when float_path is 0)
  uint32_t hi;        // bits of max finite
  uint32_t window;    // the integer path alone is exact for magnitudes [lo, window): hi, or past inf
                      // where its carry into the exponent is the format's overflow (bf16, tf32)
  uint32_t finite_limit; // groups whose magnitudes stay below it take finite(): inf (0x7f800000), or 0
                      // for formats without -0 (their zeros need full())
  uint32_t keep;      // ~((1 << D) - 1)
  uint32_t drop;      // (1 << D) - 1
  uint32_t half;      // 1 << (D - 1) (0 when D = 0)
  uint32_t lsb;       // 1 << D; 0 when M = 0 or D = 0 (ties then go up: the kept significand is odd)
  uint32_t sr_drop;   // stochastic: residual bits the draw decides (r-bit: the top r of the D)
  uint32_t sr_shift;  // 32 - D: the draw's top D bits moved to the residual's place
  float q;            // float path: step below lo
  float inv_q1;       // 1 / q = inv_q1 * inv_q2 (two factors: 1 / q may exceed float32's range)
  float inv_q2;
  float sr_scale;     // float path, stochastic threshold T = floor(frac * sr_scale) * sr_unscale:
  float sr_unscale;   //   r-bit: 2^r, 2^(32 - r); full draw: -2^32, -1 (T = ceil(frac * 2^32))
  uint32_t ovf_pos;   // result bits (magnitude) of a positive value past max finite, for this mode
  uint32_t ovf_neg;   //   and of a negative one (modes toward smaller magnitude give max finite)
  uint32_t inf_out;   // magnitude bits for an infinite input
  uint32_t nan_out;   // bits for a NaN input, and for a negative non-zero input to an unsigned format:
                      // a NaN, or +0 for formats without NaN
  uint32_t zero_sign; // sign bit kept on zero results (0 for formats without -0)
  uint32_t rng[4];    // xoshiro128** state: in, and out after the call
  uint32_t floor;     // smallest result magnitude (bits): 0, or min normal for formats without zero
  uint32_t zero_out;  // bits for a zero input: 0, or nan_out for formats without zero (e8m0fnu)
} ChopParams;

// src/formats/chop-wasm.ts writes these fields by word index (its table P): keep the two in step.
_Static_assert(offsetof(ChopParams, sr_shift) == 12 * 4, "ChopParams layout (chop-wasm.ts P)");
_Static_assert(offsetof(ChopParams, zero_sign) == 22 * 4, "ChopParams layout (chop-wasm.ts P)");
_Static_assert(offsetof(ChopParams, floor) == 27 * 4, "ChopParams layout (chop-wasm.ts P)");
_Static_assert(sizeof(ChopParams) == 29 * 4, "ChopParams layout (chop-wasm.ts P)");

// The splatted constants (see splat()).
typedef struct {
  v128_t abs_mask, lo, span, keep, drop, half, bias, lsb, sr_drop, hi;
  v128_t q, inv_q1, inv_q2, sr_scale, sr_unscale;
  v128_t ovf_pos, ovf_neg, inf_out, nan_out, zero_sign, finite_limit, magic, exp_mask, exp_shift, exp_cap;
  v128_t floor, zero_out, man_shift, inv_base, neg_hi, ovf_neg_signed;
  v128_t vk_c, vk_magic, vk_cap, ovf_up, ovf_down; // round_vk, OVF_INF
  uint32_t sr_shift;
  int ovf; // finite()'s overflow form (OVF_*): see ovf_kind()
  int signed_fmt; // abs_mask is 0x7fffffff
} Consts;

typedef struct {
  uint32_t s0, s1, s2, s3;
} Xoshiro;

#define ALWAYS static inline __attribute__((always_inline))

// One step of xoshiro128**; returns the word the output scrambler takes (s1 before the step).
ALWAYS uint32_t xo_step(Xoshiro *g) {
  uint32_t s1 = g->s1;
  uint32_t t = s1 << 9;
  g->s2 ^= g->s0;
  g->s3 ^= g->s1;
  g->s1 ^= g->s2;
  g->s0 ^= g->s3;
  g->s2 ^= t;
  g->s3 = (g->s3 << 11) | (g->s3 >> 21);
  return s1;
}

// The scrambler rotl(s1 * 5, 7) * 9 on four words at once.
ALWAYS v128_t xo_scramble(v128_t s) {
  v128_t v = wasm_i32x4_add(wasm_i32x4_shl(s, 2), s);
  v = wasm_v128_or(wasm_i32x4_shl(v, 7), wasm_u32x4_shr(v, 25));
  return wasm_i32x4_add(wasm_i32x4_shl(v, 3), v);
}

// Four draws (lanes in element order).
ALWAYS v128_t xo_next4(Xoshiro *g) {
  uint32_t a = xo_step(g);
  uint32_t b = xo_step(g);
  uint32_t c = xo_step(g);
  uint32_t d = xo_step(g);
  return xo_scramble(wasm_u32x4_make(a, b, c, d));
}

ALWAYS int stochastic(int mode) { return mode == SR || mode == SRE; }

// Integer path: rounds bits v (sign included or not: no carry reaches bit 31 below hi) in mode; neg is
// all ones in lanes whose value is negative, u the lanes' draws.
ALWAYS v128_t round_int(v128_t v, v128_t neg, v128_t u, const Consts *c, int mode) {
  switch (mode) {
  case RNE: {
    v128_t odd = wasm_i32x4_eq(wasm_v128_and(v, c->lsb), c->lsb); // -1 where the kept lsb is set
    return wasm_v128_and(wasm_i32x4_sub(wasm_i32x4_add(v, c->bias), odd), c->keep);
  }
  case RNA:
    return wasm_v128_and(wasm_i32x4_add(v, c->half), c->keep);
  case RZ:
    return wasm_v128_and(v, c->keep);
  // Rounding up in magnitude by adding R to the residual and truncating: up iff residual + R >= 2^D.
  // R = all D bits rounds up every inexact value (ceiling of the magnitude).
  // (R as an unsigned min of drop and a lane mask: written as an and, clang turns it into a select,
  // which wasm has only as v128.bitselect: three x86 instructions in V8 and a compare)
  case UP:
    return wasm_v128_and(wasm_i32x4_add(v, wasm_u32x4_min(c->drop, wasm_v128_not(neg))), c->keep);
  case DOWN:
    return wasm_v128_and(wasm_i32x4_add(v, wasm_u32x4_min(c->drop, neg)), c->keep);
  case SRE: // the draw's top bit
    return wasm_v128_and(wasm_i32x4_add(v, wasm_v128_and(c->drop, wasm_i32x4_shr(u, 31))), c->keep);
  default: {
    // SR: R = the complement of the draw's top D bits (r-bit: its top r, the rest 0), so that
    // residual + R >= 2^D iff (u >> (32 - D)) < residual, the rule of rounding.ts
    v128_t r = wasm_v128_and(wasm_u32x4_shr(wasm_v128_not(u), c->sr_shift), c->sr_drop);
    return wasm_v128_and(wasm_i32x4_add(v, r), c->keep);
  }
  }
}

// Float path for magnitudes a below lo: bits of the rounded magnitude.
ALWAYS v128_t round_float(v128_t a, v128_t neg, v128_t u, const Consts *c, int mode) {
  // nearest-even: one float32 addition rounds a to the step q = ulp(magic), ties to even (a < magic)
  if (mode == RNE) return wasm_f32x4_sub(wasm_f32x4_add(a, c->magic), c->magic);
  // the others: (k + up) * q from m = a / q = k + frac (all exact: q is a power of two)
  v128_t m = wasm_f32x4_mul(wasm_f32x4_mul(a, c->inv_q1), c->inv_q2);
  v128_t k = wasm_f32x4_trunc(m);
  v128_t f = wasm_f32x4_sub(m, k);
  v128_t up;
  switch (mode) {
  case RNA:
    up = wasm_f32x4_ge(f, wasm_f32x4_splat(0.5f));
    break;
  case RZ:
    return wasm_f32x4_mul(k, c->q);
  case UP:
    up = wasm_v128_andnot(wasm_f32x4_gt(f, wasm_f32x4_splat(0)), neg);
    break;
  case DOWN:
    up = wasm_v128_and(wasm_f32x4_gt(f, wasm_f32x4_splat(0)), neg);
    break;
  case SR: {
    v128_t thr = wasm_f32x4_mul(wasm_f32x4_floor(wasm_f32x4_mul(f, c->sr_scale)), c->sr_unscale);
    up = wasm_u32x4_lt(u, wasm_u32x4_trunc_sat_f32x4(thr));
    break;
  }
  default: // SRE
    up = wasm_v128_and(wasm_f32x4_gt(f, wasm_f32x4_splat(0)), wasm_i32x4_shr(u, 31));
    break;
  }
  v128_t kk = wasm_f32x4_add(k, wasm_v128_and(up, wasm_f32x4_splat(1.0f)));
  return wasm_f32x4_mul(kk, c->q);
}

// Nearest-even of a magnitude a anywhere below 2^(105 + M), both paths in one: one float32 addition of
// m = 2^(E + D) (E = a's exponent: a < 2m and ulp(m) = 2^(E - M), the target's step there) rounds a to
// the target's precision, ties to even (m adds nothing to the bit that decides evenness), and the
// subtraction is exact; below min normal m = magic = q * 2^23, the float path's constant, takes over
// (the max), as it does for 0 and float32 subnormals. m is formed on the exponent bits and capped at
// 2^127 (E + D past float32's range would give inf or wrap): magnitudes from 2^(105 + M) on then round
// to at least 2^(105 + M), which rne_float_exact() requires to be past max finite, so they overflow as
// they should. 6 operations, against 11 for the integer formula and the float path selected lane by lane.
// Uncapped (5 operations: finite() where every overflow gives max finite, by an unsigned min of the
// result's bits), magnitudes from 2^(127 - D) on give an e at or past inf's bits: m is then an inf or a
// NaN (the result an inf or a NaN, of either sign), or e wraps past the sign bit and m is magic (the
// result about a itself): each above max finite as unsigned bits, so the min gives max finite, as it
// should (session 7: +8-16% in cache on fp4_e2m1fn nearest-even and nearest-away).
ALWAYS v128_t round_rne_float(v128_t a, const Consts *c, int capped) {
  v128_t e = wasm_i32x4_add(wasm_v128_and(a, c->exp_mask), c->exp_shift);
  if (capped) e = wasm_u32x4_min(e, c->exp_cap);
  v128_t m = wasm_i32x4_max(e, c->magic);
  return wasm_f32x4_sub(wasm_f32x4_add(a, m), m);
}

// Toward zero, up and down of a value x anywhere in float32's finite range, both paths in one (on the
// signed value): the target's step at
// x is s = max(2^(E - M), q) (E = x's exponent; as bits, x's exponent field less M, or q's bits where
// that is smaller: below min normal and for float32 subnormals, whose field is 0), 1 / s has the bits
// (254 << 23) - s, m = x / s is exact (a power-of-two scaling: into [2^M, 2^(M+1)) at and above min
// normal, below 2^M under it, scaled up since q <= 1), one instruction rounds m to an integer in the mode
// (ceil, floor, trunc) and k * s is exact (inf past float32's max, which then overflows as it should).
// Exact where merged_exact() holds (q = 2^(emin - M) a normal float32 <= 1, M >= 1: then s and 1 / s
// are normal). 7 operations, against 8-12 for the two paths and their select. (Nearest-away took it too,
// as floor(m + (1/2 - 2^-25)) on the magnitude, 8 operations, until session 7: see rna_float_exact.)
ALWAYS v128_t round_merged(v128_t x, const Consts *c, int mode) {
  v128_t s = wasm_i32x4_max(wasm_i32x4_sub(wasm_v128_and(x, c->exp_mask), c->man_shift), c->q);
  v128_t m = wasm_f32x4_mul(x, wasm_i32x4_sub(c->inv_base, s));
  switch (mode) {
  case UP:
    m = wasm_f32x4_ceil(m);
    break;
  case DOWN:
    m = wasm_f32x4_floor(m);
    break;
  default: // RZ
    m = wasm_f32x4_trunc(m);
    break;
  }
  return wasm_f32x4_mul(m, s);
}

// float_path values (the kernel's paths: see chop_f32): 1, the integer path or, below lo, the float path
// (lo = 0: never); 0, the integer path alone (only inside run() for NAN_ONLY);
// MERGED, both paths in one where chop_f32 finds that exact: round_rne_float for nearest-even,
// round_merged for toward-zero, up and down, round_rne_float of a | 1 for nearest-away (see
// rna_float_exact; stochastic modes never take it).
#define MERGED 2
// NAN_ONLY: the integer path alone, whose window only NaN leaves (see Range)
#define NAN_ONLY 3
// AMAX: a Range gathered as the magnitudes' max alone (no range key), by run()'s finite() groups after a
// finite group: they only need to know whether the group held a lane at or past finite_limit
#define AMAX 4
// AMAX_EXP: the same from the exponent fields alone (inf and NaN have all ones there), for the directed
// modes' round_merged, which takes the field anyway; signed formats only (it drops the sign, which
// makes a negative input to an unsigned format special): run() gathers the whole range first otherwise
#define AMAX_EXP 5

// The rounded magnitude of a (bits), by the integer path, or the float path below lo.
ALWAYS v128_t round_magnitude(v128_t a, v128_t neg, v128_t u, const Consts *c, int mode, int float_path) {
  if (float_path == MERGED && mode == RNE) return round_rne_float(a, c, 1);
  v128_t r = round_int(a, neg, u, c, mode);
  if (!float_path) return r;
  return wasm_v128_bitselect(round_float(a, neg, u, c, mode), r, wasm_i32x4_lt(a, c->lo));
}

// Every lane, whatever it holds: both paths, overflow, inf, NaN, signed zeros, unsigned formats.
ALWAYS v128_t full(v128_t x, v128_t u, const Consts *c, int mode, int float_path) {
  v128_t a = wasm_v128_and(x, c->abs_mask);
  v128_t neg = wasm_i32x4_shr(x, 31);
  // (formats without zero: results below min normal are min normal)
  v128_t r = wasm_u32x4_max(round_magnitude(a, neg, u, c, mode, float_path), c->floor);
  v128_t over = wasm_u32x4_gt(r, c->hi);
  r = wasm_v128_bitselect(wasm_v128_bitselect(c->ovf_neg, c->ovf_pos, neg), r, over);
  r = wasm_v128_bitselect(c->inf_out, r, wasm_i32x4_eq(a, wasm_i32x4_splat(0x7f800000)));
  v128_t nan = wasm_i32x4_gt(a, wasm_i32x4_splat(0x7f800000));
  r = wasm_v128_bitselect(c->nan_out, r, nan);
  // the input's sign (none for NaN inputs: a format without NaN gives +0), and on zero results only
  // where the format has -0
  v128_t sign = wasm_v128_andnot(wasm_v128_andnot(x, c->abs_mask), nan);
  v128_t zero = wasm_i32x4_eq(r, wasm_i32x4_splat(0));
  r = wasm_v128_or(r, wasm_v128_bitselect(wasm_v128_and(sign, c->zero_sign), sign, zero));
  // +0 is zero_out (0, or nan_out for formats without zero); unsigned formats (abs_mask keeps the sign,
  // so their negative inputs are negative here): -0 is +0 (zero_out), any other negative input nan_out
  r = wasm_v128_bitselect(c->zero_out, r, wasm_i32x4_eq(x, wasm_i32x4_splat(0)));
  v128_t minus_zero = wasm_i32x4_eq(a, wasm_i32x4_splat((int32_t)0x80000000));
  v128_t negative = wasm_v128_bitselect(c->zero_out, c->nan_out, minus_zero);
  return wasm_v128_bitselect(negative, r, wasm_i32x4_lt(a, wasm_i32x4_splat(0)));
}

// Nearest-even of a magnitude a at the target's precision, both paths in one, by Veltkamp's splitting
// with a floor: c = a * (2^D + 1) (rounded), y = c - (c - a) is a rounded to nearest-even at M + 1
// significant bits (2 <= D <= 22), in 3 float operations at any normal exponent; below min normal the
// step must stay q, so c is at least magic2 = 1.5 * 2^23 * q (one max): where a * (2^D + 1) < magic2
// (a < 1.5 * min normal: the subnormals and the first normal binade, whose step is q too) c is magic2,
// c - a rounds at magic2's step q (it stays in magic2's binade while M <= 21) with ties to even (magic2
// is an even multiple of q) and c - (c - a) is exact. 4 operations against round_rne_float's 5-6
// (checked against an exact rounding on every float32 magnitude, in scalar C, for fp16, fp8_e4m3fn,
// fp6_e3m2fn, fp4_e2m1fn and M = 0 and 22: exact below the overflow). From a * (2^D + 1) >= 2^128
// on (a >= 2^(127 - D) about) c is inf and y a NaN: the overflow forms of finite() take that as an
// overflow (OVF_SAT: an unsigned min; OVF_NAN: a NaN anyway) or cap a first (OVF_INF).
ALWAYS v128_t round_vk(v128_t a, const Consts *c) {
  v128_t t = wasm_i32x4_max(wasm_f32x4_mul(a, c->vk_c), c->vk_magic);
  return wasm_f32x4_sub(t, wasm_f32x4_sub(t, a));
}

// How finite() turns a result past max finite into the mode's overflow value (see ovf_kind()): with
// v128.bitselect (OVF_BSEL, any value; three x86 instructions in V8 besides the compare), or where every
// overflow gives max finite by a min (OVF_SAT), where it gives a NaN by or-ing the compare's mask into
// the result (OVF_NAN: all ones, a NaN; 2 operations), where it gives inf and the first value past max
// finite is a power of two P (IEEE-like formats: fp16, fp8_e5m2, fp8_e4m3) by scaling the result up by
// 2^128 / P and back (OVF_INF: both exact below P, from P on the first gives inf; 2 operations).
// Nearest-even and nearest-away take the _T forms, whose finite() is exact on every input of the format
// (inf and NaN too; signed formats with -0), so their groups gather no range after a finite group.
// A NaN (all ones) in the lanes of mask, r elsewhere: an unsigned max (as an or, clang turns it into a
// select, which wasm has only as v128.bitselect: three x86 instructions in V8).
ALWAYS v128_t nan_where(v128_t r, v128_t mask) { return wasm_u32x4_max(r, mask); }
// OVF_INF: r times 2^128 / P and back (inf from P on, exact below it).
ALWAYS v128_t inf_from_p(v128_t r, const Consts *c) {
  return wasm_f32x4_mul(wasm_f32x4_mul(r, c->ovf_up), c->ovf_down);
}

enum { OVF_BSEL = 0, OVF_SAT = 1, OVF_NAN = 2, OVF_INF = 3, OVF_NAN_T = 6, OVF_INF_T = 7 };
#define OVF_TOTAL 4

// Lanes known to be finite (and non-negative for unsigned formats) of a format with -0: both paths,
// overflow, signs. The cheaper path for groups that touch the limits (subnormals, max finite, overflow)
// but hold no inf or NaN (the OVF_*_T forms: any lane).
ALWAYS v128_t finite(v128_t x, v128_t u, const Consts *c, int mode, int float_path, int ovf) {
  // Overflow: where every overflowed lane gives max finite (OVF_SAT: RZ always, formats without inf and
  // NaN, the saturate policy) one unsigned min (or pmin / pmax on signed values) replaces the compare
  // and the v128.bitselect (three x86 instructions in V8): fp4_e2m1fn limit data +20-30% in cache.
  // (Where overflow gives inf or NaN, above every finite result, an unsigned max with the overflow
  // bits on the overflowed lanes alone, 3 operations against 4, measured 7% slower: not kept; OVF_NAN
  // and OVF_INF take 2.)
  const int sat = ovf == OVF_SAT;
  if (float_path == MERGED && mode != RNE) {
    switch (mode) {
    case RZ: // never past max finite (IEEE 754 7.4): clamped to +-max finite (pmin / pmax: no NaN here)
      return wasm_f32x4_pmin(wasm_f32x4_pmax(round_merged(x, c, RZ), c->neg_hi), c->hi);
    case UP: { // negative values clamp at -max finite, positive ones past max finite overflow
      v128_t r = wasm_f32x4_pmax(round_merged(x, c, UP), c->neg_hi);
      if (sat) return wasm_f32x4_pmin(r, c->hi);
      if (ovf == OVF_NAN) return nan_where(r, wasm_f32x4_gt(r, c->hi));
      if (ovf == OVF_INF) return inf_from_p(r, c);
      return wasm_v128_bitselect(c->ovf_pos, r, wasm_f32x4_gt(r, c->hi));
    }
    case DOWN: {
      v128_t r = wasm_f32x4_pmin(round_merged(x, c, DOWN), c->hi);
      if (sat) return wasm_f32x4_pmax(r, c->neg_hi);
      if (ovf == OVF_NAN) return nan_where(r, wasm_f32x4_lt(r, c->neg_hi));
      if (ovf == OVF_INF) return inf_from_p(r, c);
      // (negative overflow bits: the sign and inf or NaN, above every negative result's bits)
      return wasm_v128_bitselect(c->ovf_neg_signed, r, wasm_f32x4_lt(r, c->neg_hi));
    }
    default:
      break; // RNA: below
    }
  }
  if (float_path == MERGED && ovf != OVF_BSEL) {
    // nearest-even (nearest-away: of a | 1, see rna_float_exact) by round_vk on the magnitude
    v128_t a = wasm_v128_and(x, c->abs_mask);
    if (ovf == OVF_INF_T) a = wasm_f32x4_pmin(a, c->vk_cap); // (pmin keeps a NaN, and takes inf to the cap)
    if (mode == RNA) a = wasm_v128_or(a, wasm_i32x4_splat(1));
    v128_t r = round_vk(a, c);
    if (sat) r = wasm_u32x4_min(r, c->hi); // (round_vk's NaN past 2^(127 - D): above hi as unsigned)
    else if (ovf == OVF_NAN_T) r = nan_where(r, wasm_i32x4_gt(r, c->hi));
    else r = inf_from_p(r, c);
    return wasm_v128_or(r, wasm_v128_andnot(x, c->abs_mask));
  }
  if (float_path == MERGED && mode == RNA) { // OVF_BSEL: nearest-even of a | 1 (see rna_float_exact)
    v128_t r = round_rne_float(wasm_v128_or(wasm_v128_and(x, c->abs_mask), wasm_i32x4_splat(1)), c, 1);
    r = wasm_v128_bitselect(c->ovf_pos, r, wasm_i32x4_gt(r, c->hi));
    return wasm_v128_or(r, wasm_v128_andnot(x, c->abs_mask));
  }
  v128_t neg = wasm_i32x4_shr(x, 31);
  v128_t r = round_magnitude(wasm_v128_and(x, c->abs_mask), neg, u, c, mode, float_path);
  // finite inputs round to at most 0x7f800000, so a signed compare finds the overflowed lanes
  v128_t over = wasm_i32x4_gt(r, c->hi);
  if (sat) r = wasm_u32x4_min(r, c->hi);
  else if (mode != UP && mode != DOWN) r = wasm_v128_bitselect(c->ovf_pos, r, over);
  else r = wasm_v128_bitselect(wasm_v128_bitselect(c->ovf_neg, c->ovf_pos, neg), r, over);
  return wasm_v128_or(r, wasm_v128_andnot(x, c->abs_mask)); // the sign (formats without -0 never get here)
}

// A group's range, which decides its path: the integer formula alone (every lane inside the window),
// finite() (subnormal results, overflow) or, with a lane at or past finite_limit (inf, NaN; for unsigned
// formats, negative inputs; formats without -0 or without zero: all), full(). Gathered as the max of
// the lanes' range keys (magnitude bits less lo, wrapping: below span iff inside the window) and, for
// the choice between finite() and full(), the max of their magnitudes (`whole`; without the float path
// the key is the magnitude). (A max and a min of the magnitudes, one pass for both, measured 4-5% slower
// than the key on clean fp16 data in cache: min and max share fewer x86 ports than a subtraction.)
// Where only NaN leaves the window (NAN_ONLY: bf16, tf32): four float32 sums, which a NaN makes NaN
// (an inf and a -inf in one sum too: such a group then takes full(), correctly, if more slowly), one
// operation per vector instead of two (the magnitude's mask and the max): bf16 nearest-even 6, not 7.
typedef struct {
  v128_t key, amax, sum[4];
} Range;

ALWAYS void range_init(Range *r) {
  r->key = r->amax = wasm_i32x4_splat(0);
  for (int j = 0; j < 4; j++) r->sum[j] = wasm_f32x4_splat(0);
}

ALWAYS void range_add(Range *r, v128_t x, int k, const Consts *c, int check, int whole) {
  if (check == NAN_ONLY) {
    // (the group's first four vectors start the sums: 0 + x is not x for x = -0, so clang keeps an
    // addition of 0 per sum otherwise; session 9, bf16 random data in cache +3-6% in every mode,
    // within the A/B's noise at 10M. Every caller adds k = 0..UNROLL-1 in order. The sums still run
    // after the group's stores, keeping its loaded vectors live (V8 spills some): clang's wasm puts them
    // there, and V8's scheduler does too when an empty asm statement after each addition keeps them in
    // place in the wasm: measured no faster, not kept.)
    r->sum[k & 3] = k < 4 ? x : wasm_f32x4_add(r->sum[k & 3], x);
    return;
  }
  if (check == AMAX) {
    r->amax = wasm_u32x4_max(r->amax, wasm_v128_and(x, c->abs_mask));
    return;
  }
  if (check == AMAX_EXP) { // (x's exponent field, which round_merged takes too: one operation, not two)
    r->amax = wasm_u32x4_max(r->amax, wasm_v128_and(x, c->exp_mask));
    return;
  }
  v128_t a = wasm_v128_and(x, c->abs_mask);
  r->key = wasm_u32x4_max(r->key, check ? wasm_i32x4_sub(a, c->lo) : a);
  if (check && whole) r->amax = wasm_u32x4_max(r->amax, a);
}

// Whether a lane lies outside the integer path's window [lo, window) (lo is 0 without the float path).
ALWAYS int out_of_window(const Range *r, const Consts *c, int check) {
  if (check == NAN_ONLY) {
    v128_t nan0 = wasm_v128_or(wasm_f32x4_ne(r->sum[0], r->sum[0]), wasm_f32x4_ne(r->sum[1], r->sum[1]));
    v128_t nan1 = wasm_v128_or(wasm_f32x4_ne(r->sum[2], r->sum[2]), wasm_f32x4_ne(r->sum[3], r->sum[3]));
    return wasm_v128_any_true(wasm_v128_or(nan0, nan1));
  }
  return wasm_v128_any_true(wasm_u32x4_ge(r->key, c->span));
}

// Whether a group outside the window needs full() (else finite()); the range gathered `whole`.
ALWAYS int special(const Range *r, const Consts *c, int check) {
  if (check == NAN_ONLY) return 1;
  return wasm_v128_any_true(wasm_u32x4_ge(check ? r->amax : r->key, c->finite_limit));
}

#define UNROLL 16
// After a finite group, every PROBE-th group gathers its range first (see run())
#define PROBE 16

// finite() over a group of UNROLL vectors (ovf: see finite()), gathering its whole range if r is given
// (none for the OVF_*_T forms: r stays empty, and special() false).
ALWAYS void finite_group(const v128_t *p, v128_t *o, Xoshiro *g, const Consts *c, int mode, int float_path,
                         int ovf, Range *r, int check) {
  for (int k = 0; k < UNROLL; k++) {
    v128_t x = wasm_v128_load(p + k);
    if (r && !(ovf & OVF_TOTAL)) range_add(r, x, k, c, check, 1);
    v128_t u = stochastic(mode) ? xo_next4(g) : wasm_i32x4_splat(0);
    wasm_v128_store(o + k, finite(x, u, c, mode, float_path, ovf));
  }
}

// The path a group took (and the next one is tried on, out of place).
enum { CLEAN, FINITE, FULL };

// finite_group() with the overflow form c->ovf (one site per form the mode and path can take).
ALWAYS void finite_sites(const v128_t *p, v128_t *o, Xoshiro *g, const Consts *c, int mode, int float_path,
                         Range *r, int check) {
  const int vk = float_path == MERGED && (mode == RNE || mode == RNA); // OVF_SAT, _NAN_T, _INF_T, _BSEL
  const int dir = float_path == MERGED && (mode == UP || mode == DOWN); // OVF_SAT, _NAN, _INF, _BSEL
  // (RZ's finite() clamps whatever the form: one site)
  switch ((float_path == MERGED && mode == RZ) ? OVF_SAT : c->ovf) {
  case OVF_SAT:
    finite_group(p, o, g, c, mode, float_path, OVF_SAT, r, check);
    break;
  case OVF_NAN_T:
    if (vk) finite_group(p, o, g, c, mode, float_path, OVF_NAN_T, r, check);
    break;
  case OVF_INF_T:
    if (vk) finite_group(p, o, g, c, mode, float_path, OVF_INF_T, r, check);
    break;
  case OVF_NAN:
    if (dir) finite_group(p, o, g, c, mode, float_path, OVF_NAN, r, check);
    break;
  case OVF_INF:
    if (dir) finite_group(p, o, g, c, mode, float_path, OVF_INF, r, check);
    break;
  default:
    finite_group(p, o, g, c, mode, float_path, OVF_BSEL, r, check);
    break;
  }
}

ALWAYS void run(const float *src, float *dst, uint32_t n, Xoshiro *g, const Consts *c, int mode, int float_path) {
  const int check = float_path; // how the group's range is gathered
  if (float_path == NAN_ONLY) float_path = 0; // and how it is rounded
  const int draws = stochastic(mode);
  v128_t zero = wasm_i32x4_splat(0);
  const v128_t *p = (const v128_t *)src;
  v128_t *o = (v128_t *)dst;
  uint32_t groups = n / (4 * UNROLL);
  // Out of place, deterministic modes take one pass on the path of the group before (its result stored
  // while the range is gathered; a group found to need another path is redone from the intact source):
  // the integer formula after a clean group, finite() after a finite one (finite() is exact on clean
  // lanes too, so only a group with an inf or a NaN is redone). In place, and for stochastic modes
  // (their draws), the range comes first. Each pass has one site in the loop (the module's size).
  const int one_pass = !draws && (const void *)p != (void *)o;
  const int amax_exp = float_path == MERGED && (mode == RZ || mode == UP || mode == DOWN);
  int last = CLEAN;
  for (uint32_t i = 0; i < groups; i++, p += UNROLL, o += UNROLL) {
    Range range;
    range_init(&range);
    // finite() first after a finite group, gathering only whether the group needs full() (AMAX: the
    // magnitudes' max, one or two operations per vector, against 3-4 for the whole range); every PROBE-th
    // such group gathers the range first instead, as after a full() group, to find clean data again
    const int spec = one_pass && last == FINITE && (i & (PROBE - 1)) != 0 && (!amax_exp || c->signed_fmt);
    if (!spec) {
      if (one_pass && last == CLEAN) {
        for (int k = 0; k < UNROLL; k++) {
          v128_t x = wasm_v128_load(p + k);
          range_add(&range, x, k, c, check, 0);
          wasm_v128_store(o + k, round_int(x, wasm_i32x4_shr(x, 31), zero, c, mode));
        }
        if (!out_of_window(&range, c, check)) continue;
        // (the one pass gathered no magnitude max: the path needs it)
        if (check && check != NAN_ONLY)
          for (int k = 0; k < UNROLL; k++)
            range.amax = wasm_u32x4_max(range.amax, wasm_v128_and(wasm_v128_load(p + k), c->abs_mask));
      } else {
        for (int k = 0; k < UNROLL; k++) range_add(&range, wasm_v128_load(p + k), k, c, check, 1);
        // (the rounding pass reloads the group from L1: cheaper than keeping UNROLL vectors live)
        if (!out_of_window(&range, c, check)) {
          for (int k = 0; k < UNROLL; k++) {
            v128_t x = wasm_v128_load(p + k);
            v128_t u = draws ? xo_next4(g) : zero;
            wasm_v128_store(o + k, round_int(x, wasm_i32x4_shr(x, 31), u, c, mode));
          }
          last = CLEAN;
          continue;
        }
      }
    }
    if (!spec && !special(&range, c, check)) {
      // (a site of its own: gathering the range here to no use cost in-place limit data 10-30%)
      finite_sites(p, o, g, c, mode, float_path, 0, check);
      last = FINITE;
      continue;
    }
    if (spec) {
      Range seen;
      range_init(&seen);
      finite_sites(p, o, g, c, mode, float_path, &seen, amax_exp ? AMAX_EXP : AMAX);
      if (!special(&seen, c, AMAX)) continue; // last stays FINITE
    }
    last = FULL;
    for (int k = 0; k < UNROLL; k++) {
      v128_t u = draws ? xo_next4(g) : zero;
      wasm_v128_store(o + k, full(wasm_v128_load(p + k), u, c, mode, float_path));
    }
  }
  // whole vectors left, then the last 0..3 lanes (draws only for lanes that exist)
  uint32_t done = groups * 4 * UNROLL;
  for (; done + 4 <= n; done += 4, p++, o++) {
    v128_t u = draws ? xo_next4(g) : zero;
    wasm_v128_store(o, full(wasm_v128_load(p), u, c, mode, float_path));
  }
  uint32_t rest = n - done; // 0..3
  if (rest > 0) {
    const uint32_t *w = (const uint32_t *)(src + done);
    uint32_t *wo = (uint32_t *)(dst + done);
    v128_t x = wasm_u32x4_make(w[0], rest > 1 ? w[1] : 0, rest > 2 ? w[2] : 0, 0);
    v128_t u = zero;
    if (draws) {
      uint32_t d0 = xo_step(g);
      uint32_t d1 = rest > 1 ? xo_step(g) : 0;
      uint32_t d2 = rest > 2 ? xo_step(g) : 0;
      u = xo_scramble(wasm_u32x4_make(d0, d1, d2, 0));
    }
    v128_t r = full(x, u, c, mode, float_path);
    wo[0] = wasm_u32x4_extract_lane(r, 0);
    if (rest > 1) wo[1] = wasm_u32x4_extract_lane(r, 1);
    if (rest > 2) wo[2] = wasm_u32x4_extract_lane(r, 2);
  }
}

// D, the mantissa bits the target drops (drop = 2^D - 1).
ALWAYS uint32_t dropped_bits(const ChopParams *p) { return (uint32_t)__builtin_popcount(p->drop); }

ALWAYS uint32_t f32_bits(float f) {
  union {
    float f;
    uint32_t u;
  } v = {f};
  return v.u;
}

// Whether the subnormal step q is 2^(emin - M), a normal float32 (not so with subnormals flushed, where q
// is min normal, nor where it is a float32 subnormal): below min normal (lo) the step is then q, at and
// above it 2^(E - M) >= q, so the step at any value is the larger of the two (round_rne_float,
// round_merged).
ALWAYS int step_is_max(const ChopParams *p) {
  uint32_t m = 23 - dropped_bits(p);
  return p->lo > (m << 23) && f32_bits(p->q) == p->lo - (m << 23);
}

// Whether round_rne_float is exact for the float path's format: step_is_max, and max finite below
// 2^(105 + M), where round_rne_float caps m (larger magnitudes then overflow).
ALWAYS int rne_float_exact(const ChopParams *p) {
  uint32_t d = dropped_bits(p);
  return step_is_max(p) && p->hi < (255 - d) << 23;
}

// Whether round_merged is exact: step_is_max, q <= 1 (x / q scales up: exact for float32 subnormals
// too) and M >= 1 (1 / s stays normal up to float32's largest binade).
ALWAYS int merged_exact(const ChopParams *p) {
  return step_is_max(p) && f32_bits(p->q) <= 0x3f800000u && p->drop != 0x7fffffu;
}

// Whether nearest-away on the finite path may take round_rne_float of a | 1 (a's last float32 bit set):
// with at least 2 bits dropped everywhere (M <= 21; below min normal more are), setting the last one
// moves an exact tie (dropped bits 10...0) just above it, so nearest-even rounds it away from zero, and
// leaves every other value on its side of the midpoint (dropped bits below 10...0 stay below it, and
// zero rounds to zero): nearest-away, in 7 operations against round_merged's 8 (session 7, same-process
// A/B in cache: +19-24% on fp8 / fp4 random and limit data). Exact where round_rne_float is.
ALWAYS int rna_float_exact(const ChopParams *p) {
  return rne_float_exact(p) && dropped_bits(p) >= 2;
}

// Whether only NaN leaves the integer path's window (formats without the float path whose window runs
// past inf: bf16, tf32 with the ieee policy).
ALWAYS int nan_only(const ChopParams *p) {
  return !p->float_path && p->window == 0x7f800001u && p->abs_mask == 0x7fffffffu;
}

// Whether round_vk is exact for the float path's format: the step at any value the larger of q and
// 2^(E - M) (step_is_max), 2 <= D <= 22 (the bounds of Veltkamp's splitting in the literature; M <= 21
// keeps c - a in magic2's binade; an exhaustive check over float32 also passed D = 1 and 23, not taken)
// and magic2 = 1.5 * 2^23 * q a float32.
ALWAYS int vk_exact(const ChopParams *p) {
  uint32_t d = dropped_bits(p);
  return step_is_max(p) && d >= 2 && d <= 22 && f32_bits(p->q) < (127u + 104u) << 23;
}

ALWAYS int is_nan_bits(uint32_t v) { return (v & 0x7fffffffu) > 0x7f800000u; }

// OVF_INF: the first value past max finite is a power of two P = 2^(emax + 1) (exponent field emax + 128),
// emax >= 1 (2^(emax - 127), the scaling back, is then normal), and round_vk's product of the cap 2P,
// 2^(emax + 2) * (2^D + 1), stays finite: emax + 2 + D <= 127.
ALWAYS int inf_ovf_ok(const ChopParams *p) {
  uint32_t d = dropped_bits(p);
  uint32_t big = p->hi + (1u << d);
  return (big & 0x7fffffu) == 0 && big < 0x7f800000u && (big >> 23) >= 129 && (big >> 23) + d <= 253;
}

// finite()'s overflow form for mode on path float_path (see OVF_BSEL).
ALWAYS int ovf_kind(const ChopParams *p, int mode, int float_path) {
  int sat = p->ovf_pos == p->hi && p->ovf_neg == p->hi;
  if (float_path != MERGED || mode == RZ) return sat ? OVF_SAT : OVF_BSEL;
  if (mode == UP || mode == DOWN) {
    uint32_t v = mode == UP ? p->ovf_pos : p->ovf_neg;
    if (sat) return OVF_SAT;
    if (is_nan_bits(v)) return OVF_NAN;
    if (v == 0x7f800000u && inf_ovf_ok(p)) return OVF_INF;
    return OVF_BSEL;
  }
  // RNE, RNA: round_vk
  if (!vk_exact(p)) return OVF_BSEL;
  if (sat) return OVF_SAT;
  // the _T forms: finite() exact on every input, inf and NaN too (signed formats with -0 and zero)
  if (p->finite_limit != 0x7f800000u || p->abs_mask != 0x7fffffffu || p->floor != 0 || !is_nan_bits(p->nan_out))
    return OVF_BSEL;
  if (is_nan_bits(p->ovf_pos) && is_nan_bits(p->ovf_neg) && is_nan_bits(p->inf_out)) return OVF_NAN_T;
  if (p->ovf_pos == 0x7f800000u && p->ovf_neg == 0x7f800000u && p->inf_out == 0x7f800000u && inf_ovf_ok(p))
    return OVF_INF_T;
  return OVF_BSEL;
}

// Constants splatted once per call (V8 keeps them in registers or one load away).
ALWAYS void splat(Consts *c, const ChopParams *p, int mode, int float_path) {
  c->abs_mask = wasm_u32x4_splat(p->abs_mask);
  c->lo = wasm_u32x4_splat(p->lo);
  c->span = wasm_u32x4_splat(p->window - p->lo);
  c->keep = wasm_u32x4_splat(p->keep);
  c->drop = wasm_u32x4_splat(p->drop);
  c->half = wasm_u32x4_splat(p->half);
  c->bias = wasm_u32x4_splat(p->half - 1);
  c->lsb = wasm_u32x4_splat(p->lsb);
  c->sr_drop = wasm_u32x4_splat(p->sr_drop);
  c->hi = wasm_u32x4_splat(p->hi);
  c->q = wasm_f32x4_splat(p->q);
  c->inv_q1 = wasm_f32x4_splat(p->inv_q1);
  c->inv_q2 = wasm_f32x4_splat(p->inv_q2);
  c->sr_scale = wasm_f32x4_splat(p->sr_scale);
  c->sr_unscale = wasm_f32x4_splat(p->sr_unscale);
  c->ovf_pos = wasm_u32x4_splat(p->ovf_pos);
  c->ovf_neg = wasm_u32x4_splat(p->ovf_neg);
  c->inf_out = wasm_u32x4_splat(p->inf_out);
  c->nan_out = wasm_u32x4_splat(p->nan_out);
  c->zero_sign = wasm_u32x4_splat(p->zero_sign);
  c->finite_limit = wasm_u32x4_splat(p->finite_limit);
  c->magic = wasm_f32x4_splat(p->q * 8388608.0f); // q * 2^23: its ulp is q
  c->exp_mask = wasm_u32x4_splat(0x7f800000);
  c->exp_cap = wasm_u32x4_splat(0x7f000000); // 2^127
  c->exp_shift = wasm_u32x4_splat(dropped_bits(p) << 23); // D in the exponent
  c->floor = wasm_u32x4_splat(p->floor);
  c->zero_out = wasm_u32x4_splat(p->zero_out);
  c->man_shift = wasm_u32x4_splat((23u - dropped_bits(p)) << 23); // M in the exponent
  c->inv_base = wasm_u32x4_splat(254u << 23); // 2^127 * 2^127: bits of 1 / s are inv_base - bits of s
  c->neg_hi = wasm_u32x4_splat(p->hi | 0x80000000u); // -max finite
  c->ovf_neg_signed = wasm_u32x4_splat(p->ovf_neg | 0x80000000u);
  c->sr_shift = p->sr_shift;
  c->ovf = ovf_kind(p, mode, float_path);
  c->signed_fmt = p->abs_mask == 0x7fffffffu;
  uint32_t d = dropped_bits(p);
  c->vk_c = wasm_f32x4_splat((float)((1u << d) + 1u)); // exact: d <= 23
  c->vk_magic = wasm_f32x4_splat(p->q * 12582912.0f);  // 1.5 * 2^23 * q
  uint32_t big = p->hi + (1u << d);                      // OVF_INF: P = 2^(emax + 1)
  c->vk_cap = wasm_u32x4_splat(big + (1u << 23));        // 2P
  c->ovf_up = wasm_u32x4_splat((382u - (big >> 23)) << 23);   // 2^(127 - emax)
  c->ovf_down = wasm_u32x4_splat(((big >> 23) - 128u) << 23); // 2^(emax - 127)
}

// One function per (mode, path) pair, not inlined into chop_f32 (issue 20 asked whether V8 would keep
// more constants in registers in a small function: measured no faster nor slower than all the loops in
// one function, in cache and out; kept as the plainer structure, and a smaller module).
#define VARIANT(m, fp)                                                                                 \
  __attribute__((noinline)) static void run_##m##_##fp(const float *src, float *dst, uint32_t n, ChopParams *p) { \
    Consts c;                                                                                          \
    splat(&c, p, m, fp);                                                                                    \
    Xoshiro g = {p->rng[0], p->rng[1], p->rng[2], p->rng[3]};                                          \
    run(src, dst, n, &g, &c, m, fp);                                                                   \
    p->rng[0] = g.s0;                                                                                  \
    p->rng[1] = g.s1;                                                                                  \
    p->rng[2] = g.s2;                                                                                  \
    p->rng[3] = g.s3;                                                                                  \
  }
// Paths: 1 (the integer path, with the float path below lo; lo = 0 where there is none), MERGED,
// NAN_ONLY. (Formats without the float path run path 1 with lo = 0 unless their window runs past inf:
// its float path is then never selected, and no variant of its own pays for the module's size.)
VARIANT(RNE, 1)
VARIANT(RNE, 2) // MERGED (a literal: ## pastes it unexpanded)
VARIANT(RNE, 3) // NAN_ONLY
VARIANT(RNA, 1)
VARIANT(RNA, 2)
VARIANT(RNA, 3)
VARIANT(RZ, 1)
VARIANT(RZ, 2)
VARIANT(RZ, 3)
VARIANT(UP, 1)
VARIANT(UP, 2)
VARIANT(UP, 3)
VARIANT(DOWN, 1)
VARIANT(DOWN, 2)
VARIANT(DOWN, 3)
VARIANT(SR, 1)
VARIANT(SR, 3)
VARIANT(SRE, 1)
VARIANT(SRE, 3)

#define CASE(m)                                                                                        \
  case m:                                                                                              \
    if (nan_only(p)) run_##m##_3(src, dst, n, p);                                                      \
    else if (p->float_path && merged_exact(p)) run_##m##_2(src, dst, n, p);                            \
    else run_##m##_1(src, dst, n, p);                                                                  \
    break;
#define CASE2(m)                                                                                       \
  case m:                                                                                              \
    if (nan_only(p)) run_##m##_3(src, dst, n, p);                                                      \
    else run_##m##_1(src, dst, n, p);                                                                  \
    break;

// Rounds src[0, n) into dst[0, n) with the parameters at p (see ChopParams) and updates p->rng. dst may
// be src (in place), not otherwise overlap it.
void chop_f32(const float *src, float *dst, uint32_t n, ChopParams *p) {
  switch (p->mode) {
  case RNE:
    if (nan_only(p)) run_RNE_3(src, dst, n, p);
    else if (p->float_path && rne_float_exact(p)) run_RNE_2(src, dst, n, p);
    else run_RNE_1(src, dst, n, p);
    break;
  case RNA:
    if (nan_only(p)) run_RNA_3(src, dst, n, p);
    else if (p->float_path && rna_float_exact(p)) run_RNA_2(src, dst, n, p);
    else run_RNA_1(src, dst, n, p);
    break;
    CASE(RZ)
    CASE(UP)
    CASE(DOWN)
    CASE2(SR)
    CASE2(SRE)
  default:
    break;
  }
}

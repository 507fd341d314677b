/**
 * Fast chop for float formats: integer arithmetic on the float32 bit patterns (a Uint32Array view of the
 * input), the way CPFloat and hardware round.
 *
 * Every value of every supported float format is a float32, and inside the target's normal range a float32
 * with D = 23 - M dropped mantissa bits rounds by integer operations on its bits: round-to-nearest-even is
 * `(a + 2^(D-1) - 1 + lsb) & ~(2^D - 1)`, where a carry out of the mantissa correctly bumps the exponent.
 * Below the target's min normal (subnormal results) nearest-even uses the FPU instead: adding
 * C = 2^(emin - M + 23) puts the value where float32's ulp equals the target's subnormal step, so
 * `fround(|x| + C) - C` rounds to nearest even exactly (|x| + C is exact in a double whenever it matters).
 * Other modes handle subnormal results with the shared decision of rounding.ts on m = |x| / step (exact).
 * Anything else (overflow region, inf, NaN, negatives of unsigned formats, flushed subnormals, e8m0)
 * takes the reference path `slow(x, u32)` with the same random draw, so fast and reference agree bit for
 * bit; test/formats/chop-fast.test.ts checks that on random bit patterns and every special case.
 */
import { f32ToBits } from '../core/bits.ts';
import type { FloatLayout } from './minifloat.ts';
import { CHUNK, DATA, memoryOf, rneInPlace, SIMD_BLOCK, scratchMemory } from './chop-simd.ts';
import { type ResolvedCast, roundsUp } from './rounding.ts';

let useSimd = true;

/** Turns the WebAssembly SIMD kernel on or off (tests and benchmarks compare both paths). */
export function setSimdEnabled(on: boolean): void {
  useSimd = on;
}

/** Returns false when no fast path applies (the caller then runs the reference). */
export function chopFloatFast(
  L: FloatLayout,
  input: Float32Array,
  dst: Float32Array,
  r: ResolvedCast,
  flush: boolean,
  slow: (x: number, u32: number) => number,
): boolean {
  if (r.rounding === 'nearest-odd') return false; // round-to-odd: the reference path (minifloat.ts)
  let src = input;
  const D = 23 - L.M;
  // With no mantissa bits the kept significand is the hidden 1 (odd), so in the normal range ties-to-even
  // rounds every tie up in magnitude (see minifloat.ts): the same as ties-away there.
  const mode = L.M === 0 && r.rounding === 'nearest-even' ? 'nearest-away' : r.rounding;
  // Data already in a kernel memory (chopBuffer, or views of its buffer): rounded there, no copy.
  const home = useSimd && src.buffer === dst.buffer ? memoryOf(dst.buffer) : undefined;
  if (home && src.byteOffset !== dst.byteOffset) {
    dst.set(src); // memmove within the memory (overlap-safe); then in place
    src = dst.subarray(0, input.length);
  }
  // Int32 views: V8 keeps everything in int32 registers (uint32 values above 2^30 would become doubles).
  const sb = new Int32Array(src.buffer, src.byteOffset, src.length);
  const db = new Int32Array(dst.buffer, dst.byteOffset, dst.length);
  // Fast window [lo, hi): target normal range (and float32 normal), strictly below max finite, so the
  // rounded result can never pass max finite.
  const lo = Math.max(f32ToBits(L.minNormal), 0x00800000) | 0;
  const hi = f32ToBits(L.maxFinite) | 0;
  // Unsigned formats keep the sign bit in `a`: every negative input is then a negative int32, outside
  // the window and refused by the subnormal branch too (slow path).
  const absMask = L.signed ? 0x7fffffff : -1;
  const n = src.length;
  if (mode === 'nearest-even' && D > 0) {
    const bias = (1 << (D - 1)) - 1;
    const keep = ~((1 << D) - 1);
    const subFast = L.subnormals && !flush;
    const C = 2 ** (L.emin - L.M + 23);
    const negZero = L.spec.nan === 'neg-zero' ? 0 : -0;
    let start = 0;
    // SIMD for whole groups of SIMD_BLOCK lanes (signed formats with a -0; the rest is rare and stays in
    // TypeScript). Below lo: integer formula when the target has float32's emin (bf16, tf32), the FPU
    // trick for other targets with subnormals, exceptions otherwise. One kernel per constant set.
    const sub = !subFast ? 'refuse' : L.emin === -126 ? 'int' : 'fpu';
    const simd = useSimd && L.signed && L.spec.nan !== 'neg-zero';
    const params = { lo, hi, D, C, sub } as const;
    const whole = n - (n % SIMD_BLOCK);
    const homeK = simd && home && dst.byteOffset >= DATA ? home.kernel(params) : null;
    const S = simd && !homeK ? scratchMemory() : null;
    const K = S?.kernel(params);
    if (home && homeK) {
      // in place in WebAssembly memory: no copies
      rneInPlace(home, homeK, dst.byteOffset, whole, slow);
      start = whole;
    } else if (S && K) {
      // one copy in, the kernel in place (exceptional groups by the reference), one copy out
      const base = DATA >>> 2;
      const full = S.f32.subarray(base, base + CHUNK);
      for (let c = 0; c < whole; c += CHUNK) {
        const len = Math.min(CHUNK, whole - c);
        S.f32.set(src.subarray(c, c + len), base);
        rneInPlace(S, K, DATA, len, slow);
        dst.set(len === CHUNK ? full : S.f32.subarray(base, base + len), c);
      }
      start = whole;
    }
    for (let i = start; i < n; i++) {
      const b = sb[i]!;
      const a = b & absMask;
      if (a >= lo && a < hi) {
        db[i] = (b & 0x80000000) | ((a + bias + ((a >>> D) & 1)) & keep);
      } else if (a < lo && a >= 0 && subFast) {
        const y = Math.fround(Math.abs(src[i]!) + C) - C;
        dst[i] = b >= 0 ? y : y === 0 ? negZero : -y;
      } else {
        dst[i] = slow(src[i]!, 0);
      }
    }
    return true;
  }
  const rng = r.rng;
  const dropMask = D > 0 ? (1 << D) - 1 : 0;
  const keep = ~dropMask;
  const ulp = D > 0 ? 1 << D : 0;
  const half = D > 0 ? 1 << (D - 1) : 0;
  // r-bit stochastic: compare the top rb bits of the residual with rb random bits (see rounding.ts).
  const rb = r.randomBits > 0 && r.randomBits < D ? r.randomBits : D;
  const uShift = 32 - rb;
  const dShift = D - rb;
  // Subnormal results (below lo): m = |x| / q is exact in a double, so the shared decision rule applies.
  const subFast = L.subnormals && !flush;
  const q = 2 ** (L.emin - L.M);
  const invq = 1 / q;
  const negZero = L.spec.nan === 'neg-zero' ? 0 : -0;
  for (let i = 0; i < n; i++) {
    const u = rng ? rng.nextU32() : 0;
    const b = sb[i]!;
    const a = b & absMask;
    if (a < lo || a >= hi) {
      if (a < lo && a >= 0 && subFast) {
        const mq = Math.abs(src[i]!) * invq;
        let k = Math.floor(mq);
        if (roundsUp(mode, k, mq - k, b < 0, u, r.randomBits)) k++;
        const y = k * q;
        dst[i] = b >= 0 ? y : y === 0 ? negZero : -y;
      } else {
        dst[i] = slow(src[i]!, u);
      }
      continue;
    }
    const dropped = a & dropMask;
    const neg = b < 0;
    let m = a & keep;
    if (dropped !== 0) {
      switch (mode) {
        case 'nearest-even':
          m = (a + half - 1 + ((a >>> D) & 1)) & keep;
          break;
        case 'nearest-away':
          m = (a + half) & keep;
          break;
        case 'toward-zero':
          break;
        case 'up':
          if (!neg) m += ulp;
          break;
        case 'down':
          if (neg) m += ulp;
          break;
        case 'stochastic':
          if (u >>> uShift < dropped >>> dShift) m += ulp;
          break;
        case 'stochastic-equal':
          if (u >>> 31 === 1) m += ulp;
          break;
      }
    }
    db[i] = (b & 0x80000000) | m;
  }
  return true;
}

/**
 * Codes of values that are already representable (the output of chop), by bit arithmetic: a normal
 * float32 result maps to ((e + bias) << M) | (mantissa >> D), a subnormal one to |y| / step. Zeros,
 * NaN, inf and e8m0's float32-subnormal values take `exact(y)`, the reference encoder (exact for
 * representable inputs). Used by encodeArray after chop, so both share the fast rounding.
 */
export function codesOfRepresentable(
  L: FloatLayout,
  values: Float32Array,
  dst: Uint8Array | Uint16Array | Uint32Array,
  exact: (y: number) => number,
): void {
  const vb = new Int32Array(values.buffer, values.byteOffset, values.length);
  const D = 23 - L.M;
  const lo = Math.max(f32ToBits(L.minNormal), 0x00800000) | 0;
  const hi = f32ToBits(L.maxFinite) | 0;
  const bias = L.bias;
  const M = L.M;
  const signBit = L.signBit;
  const subnormals = L.subnormals;
  const invq = 2 ** (L.M - L.emin);
  for (let i = 0; i < values.length; i++) {
    const b = vb[i]!;
    const a = b & 0x7fffffff;
    let code: number;
    if (a >= lo && a <= hi) code = ((((a >>> 23) - 127 + bias) << M) | ((a & 0x7fffff) >>> D)) >>> 0;
    else if (a !== 0 && a < lo && subnormals) code = Math.abs(values[i]!) * invq;
    else if (a > 0x7f800000 && L.nanCode >= 0 && L.spec.nan !== 'neg-zero') {
      code = L.nanCode; // keep the NaN's sign, as the reference encoder does on overflow to NaN
    } else {
      dst[i] = exact(values[i]!);
      continue;
    }
    dst[i] = b < 0 ? code + signBit : code;
  }
}

/**
 * Fast chop for float formats: which implementation runs (chosen by feature detection), and the
 * TypeScript fast path itself, which computes what the WebAssembly kernel computes (native/formats/chop.c)
 * one element at a time, for engines without WebAssembly SIMD. Both follow the plan of chop-plan.ts: integer arithmetic on float32 bit patterns in the target's
 * normal range (the way CPFloat and hardware round), exact float arithmetic below it, and every special
 * lane (overflow per mode and policy, inf, NaN, signed zeros, unsigned formats) handled in place.
 * test/formats/chop-fast.test.ts ties reference, TypeScript and WebAssembly together bit for bit.
 */
import { f32ToBits } from '../core/bits.ts';
import type { Rng } from '../core/rng.ts';
import type { ChopPlan } from './chop-plan.ts';
import { chopWasm } from './chop-wasm.ts';
import type { FloatLayout } from './minifloat.ts';
import { roundsUp } from './rounding.ts';

/**
 * The implementations: WebAssembly wherever WebAssembly SIMD runs (it is faster even for 8 elements:
 * its per-call cost is below the TypeScript path's), else TypeScript.
 */
export type ChopPath = 'wasm' | 'typescript';

let forced: ChopPath | undefined;

/**
 * Test hook: run every fast chop through one implementation (undefined: the automatic choice). The
 * WebAssembly path still falls back to TypeScript where WebAssembly SIMD is unavailable.
 */
export function forceChopPath(path: ChopPath | undefined): void {
  forced = path;
}

/** Rounds src into dst (same length; may be the same array, or overlap) with a plan of chopPlan. */
export function chopFloatFast(
  plan: ChopPlan,
  src: Float32Array,
  dst: Float32Array,
  rng: Rng | undefined,
): void {
  const n = src.length;
  if (src.buffer === dst.buffer && src.byteOffset !== dst.byteOffset) {
    const a = src.byteOffset;
    const b = dst.byteOffset;
    if (a < b + 4 * n && b < a + 4 * n) {
      dst.set(src); // overlapping views: memmove, then in place
      src = dst.subarray(0, n);
    }
  }
  if (forced !== 'typescript' && plan.kernel && chopWasm(plan, src, dst, rng)) return;
  chopTypeScript(plan, src, dst, rng);
}

const RNE = 0;
const RNA = 1;
const RZ = 2;
const UP = 3;
const DOWN = 4;
const SR = 5;
const SRE = 6;
const INF = 0x7f800000;

/** The TypeScript fast path: the kernel's algorithm, one element at a time (Int32 views: V8 keeps int32s). */
export function chopTypeScript(
  plan: ChopPlan,
  src: Float32Array,
  dst: Float32Array,
  rng: Rng | undefined,
): void {
  const n = src.length;
  const sb = new Int32Array(src.buffer, src.byteOffset, n);
  const db = new Int32Array(dst.buffer, dst.byteOffset, n);
  const { mode, absMask, lo, hi, keep, drop, half, lsb, srDrop, srShift, floatPath } = plan;
  const span = plan.window - lo;
  const invQ = plan.invQ1 * plan.invQ2;
  // integer path on bits v (sign included or not), neg: the value is negative, u: its draw
  const rint = (v: number, neg: boolean, u: number): number => {
    switch (mode) {
      case RNE:
        return (v + half - 1 + ((v & lsb) === lsb ? 1 : 0)) & keep;
      case RNA:
        return (v + half) & keep;
      case RZ:
        return v & keep;
      // up in magnitude iff residual + R >= 2^D (see chop.c): R = drop rounds every inexact value up
      case UP:
        return (v + (neg ? 0 : drop)) & keep;
      case DOWN:
        return (v + (neg ? drop : 0)) & keep;
      case SR:
        return (v + ((~u >>> srShift) & srDrop)) & keep;
      case SRE:
        return (v + (u >>> 31 === 1 ? drop : 0)) & keep;
      default:
        throw new Error(`chop plan mode ${mode}`);
    }
  };
  // any lane: float path below lo, overflow, inf, NaN, signed zeros, unsigned formats
  const full = (x: number, value: number, u: number): number => {
    const a = x & absMask;
    if (x === 0) return plan.zeroOut; // +0: 0, or NaN for formats without zero
    if (a < 0) return a === (0x80000000 | 0) ? plan.zeroOut : plan.nanOut; // negative input, unsigned format
    if (a > INF) return plan.nanOut;
    const neg = x < 0;
    let r: number;
    if (a === INF) r = plan.infOut;
    else {
      if (floatPath && a < lo) {
        const m = Math.abs(value) * invQ; // exact: a power of two
        let k = Math.floor(m);
        if (roundsUp(plan.rounding, k, m - k, neg, u, plan.randomBits)) k++;
        r = f32ToBits(k * plan.q);
      } else r = rint(a, neg, u);
      if (r < plan.floor) r = plan.floor; // formats without zero
      if (r >>> 0 > hi) r = neg ? plan.ovfNeg : plan.ovfPos;
    }
    const sign = x & 0x80000000;
    return r | (r === 0 ? sign & plan.zeroSign : sign);
  };
  for (let i = 0; i < n; i++) {
    const u = rng === undefined ? 0 : rng.nextU32();
    const x = sb[i]!;
    db[i] = ((x & absMask) - lo) >>> 0 < span ? rint(x, x < 0, u) : full(x, src[i]!, u);
  }
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

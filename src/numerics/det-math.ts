/**
 * Deterministic elementary functions and helpers for the studies: built from + - * / and sqrt only, which
 * IEEE 754 and ECMAScript define exactly, so a study gives the same bits on every engine and platform
 * (Math.exp / log / sin / cos are implementation-approximated and may differ in the last bit).
 * Accuracy is a few ulps, which is all a study needs.
 */
import type { Rng } from '../core/rng.ts';
import { exponentOf, pow2 } from '../formats/minifloat.ts';

const LN2_HI = 0.6931471803691238; // ln 2 split so that k * LN2_HI is exact for |k| < 2^20
const LN2_LO = 1.9082149292705877e-10;
const INV_LN2 = 1.4426950408889634;

/** e^x. */
export function expDet(x: number): number {
  if (x !== x) return x;
  if (x > 709.8) return Infinity;
  if (x < -745.2) return 0;
  const k = Math.round(x * INV_LN2);
  const r = x - k * LN2_HI - k * LN2_LO; // |r| <= ~0.35
  // Taylor series of e^r to degree 16 (error < 1e-17 for |r| < 0.35), Horner from the top
  let p = 1;
  for (let i = 16; i >= 1; i--) p = 1 + (p * r) / i;
  // 2^k in two steps keeps the scaling exact into the subnormals
  const k1 = Math.trunc(k / 2);
  return p * pow2(k1) * pow2(k - k1);
}

/** ln x for x > 0. */
export function logDet(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : Number.NaN;
  if (x === Infinity) return x;
  let e = exponentOf(x);
  let m = x / pow2(e); // [1, 2)
  if (m > Math.SQRT2) {
    m /= 2;
    e += 1;
  }
  const s = (m - 1) / (m + 1); // |s| < 0.172
  const s2 = s * s;
  let t = 0;
  for (let i = 41; i >= 1; i -= 2) t = 1 / i + s2 * t;
  return e * LN2_HI + (e * LN2_LO + 2 * s * t);
}

// 1 / (2k + 1)! for k = 0..14
const SIN_C = /* @__PURE__ */ (() => {
  const c: number[] = [];
  let f = 1;
  for (let k = 0; k <= 14; k++) {
    if (k > 0) f *= 2 * k * (2 * k + 1);
    c.push(1 / f);
  }
  return c;
})();

/** sin x for |x| <= 4 (the studies need sin(pi x) on [0, 1]): Taylor to degree 29, error < 1e-17. */
export function sinDet(x: number): number {
  const y = x * x;
  let t = SIN_C[14]!;
  for (let k = 13; k >= 0; k--) t = SIN_C[k]! - y * t;
  return x * t;
}

/** Standard normal by Marsaglia's polar method (log and sqrt only). */
export function normalDet(rng: Rng): number {
  for (;;) {
    const u = 2 * rng.nextFloat() - 1;
    const v = 2 * rng.nextFloat() - 1;
    const s = u * u + v * v;
    if (s > 0 && s < 1) return u * Math.sqrt((-2 * logDet(s)) / s);
  }
}

/**
 * 64-bit FNV-1a of the numbers' IEEE bit patterns, as 16 hex digits: the reproducibility fingerprint of a
 * study (equal on every run and platform for a given seed).
 */
export function hashNumbers(values: ArrayLike<number>): string {
  const f = Float64Array.from(values);
  const bytes = new Uint8Array(f.buffer);
  // little-endian byte order regardless of the platform
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = (1n << 64n) - 1n;
  for (let i = 0; i < f.length; i++) {
    for (let j = 0; j < 8; j++) {
      h ^= BigInt(bytes[i * 8 + (le ? j : 7 - j)]!);
      h = (h * prime) & mask;
    }
  }
  return h.toString(16).padStart(16, '0');
}

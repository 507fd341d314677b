/**
 * NVFP4 against a brute-force reference written from the recipe: per block, the E4M3 scale is the
 * E4M3 value nearest to amax / 6 / tensorScale (ties to the even code, saturating at 448), found by
 * scanning all 256 codes; each element is the E2M1 value nearest to x / (scale * tensorScale) (ties to
 * the even code, saturating at ±6), found by scanning the 16 codes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  NVFP4,
  nvfp4AutoTensorScale,
  nvfp4Decode,
  nvfp4Encode,
  nvfp4FakeQuant,
} from '../../src/blocks/nvfp4.ts';
import { MixqError } from '../../src/core/errors.ts';

const fr = Math.fround;

/** E4M3 (OCP fn) value of a code, from the bit layout: S.EEEE.MMM, bias 7, 0x7F/0xFF NaN. */
function e4m3Value(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15;
  const m = c & 7;
  if (e === 15 && m === 7) return Number.NaN;
  return s * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
}
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
function e2m1Value(c: number): number {
  return (c & 8 ? -1 : 1) * E2M1[c & 7]!;
}

/** Nearest code by scan; ties go to the even code (ties between +0/-0 cannot occur for v >= 0). */
function nearestCode(v: number, codes: number[], value: (c: number) => number): number {
  let best = -1;
  let bestErr = Infinity;
  for (const c of codes) {
    const t = value(c);
    if (Number.isNaN(t)) continue;
    const err = Math.abs(t - v);
    if (err < bestErr || (err === bestErr && c % 2 === 0 && best % 2 === 1)) {
      best = c;
      bestErr = err;
    }
  }
  return best;
}
const POS_E4M3 = Array.from({ length: 127 }, (_, c) => c); // 0..0x7E, non-negative finite
const E2M1_CODES = Array.from({ length: 16 }, (_, c) => c);

function bruteForce(x: Float32Array, g: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 16) {
    let amax = 0;
    for (let i = b; i < b + 16; i++) amax = Math.max(amax, Math.abs(x[i]!));
    const target = fr(fr(amax / 6) / g);
    const s = target >= 448 ? 448 : e4m3Value(nearestCode(target, POS_E4M3, e4m3Value));
    const denom = fr(s * g);
    for (let i = b; i < b + 16; i++) {
      if (denom === 0) {
        y[i] = x[i]! * 0;
        continue;
      }
      const v = fr(x[i]! / denom);
      const c = Math.abs(v) >= 6 ? (v < 0 ? 15 : 7) : nearestCode(v, E2M1_CODES, e2m1Value);
      // keep the sign of zero results like the codec (x/denom keeps its sign)
      const q = e2m1Value(c) === 0 ? (v < 0 || Object.is(v, -0) ? -0 : 0) : e2m1Value(c);
      y[i] = q * denom;
    }
  }
  return y;
}

const same = (a: Float32Array, b: Float32Array): boolean => {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
};

describe('NVFP4', () => {
  it('geometry: 16 elements, 9 bytes, 4.5 bits per element', () => {
    assert.equal(NVFP4.blockSize, 16);
    assert.equal(nvfp4Encode(new Float32Array(32)).bytes.length, 18);
    assert.equal(NVFP4.bitsPerElement, (9 * 8) / 16);
  });

  const values = fc.oneof(
    fc.float({ min: -1e4, max: 1e4, noNaN: true }),
    fc.float({ min: Math.fround(-1e-3), max: Math.fround(1e-3), noNaN: true }),
    fc.integer({ min: -12, max: 12 }).map((k) => k * 0.25), // exact E2M1 ties when the scale is 1
  );
  const block = fc
    .array(values, { minLength: 16, maxLength: 48 })
    .map((a) => a.slice(0, a.length - (a.length % 16)));

  it('matches the brute-force reference without a tensor scale', () => {
    fc.assert(
      fc.property(block, (arr) => {
        const x = Float32Array.from(arr);
        const got = nvfp4Decode(nvfp4Encode(x).bytes, x.length);
        assert.ok(same(got, bruteForce(x, 1)), `x=${Array.from(x)}`);
        assert.ok(same(nvfp4FakeQuant(x), got));
      }),
      { numRuns: 1500, seed: 3 },
    );
  });

  it("matches the brute-force reference with tensorScale 'auto' and a fixed one", () => {
    fc.assert(
      fc.property(block, fc.float({ min: Math.fround(1e-6), max: 100, noNaN: true }), (arr, t) => {
        const x = Float32Array.from(arr);
        const enc = nvfp4Encode(x, { tensorScale: 'auto' });
        assert.equal(enc.tensorScale, nvfp4AutoTensorScale(x));
        assert.ok(same(nvfp4Decode(enc.bytes, x.length, enc.tensorScale), bruteForce(x, enc.tensorScale)));
        const fixed = nvfp4Encode(x, { tensorScale: t });
        assert.ok(same(nvfp4Decode(fixed.bytes, x.length, fixed.tensorScale), bruteForce(x, fr(t))));
      }),
      { numRuns: 800, seed: 5 },
    );
  });

  it('the auto tensor scale lets the largest block scale reach E4M3 max 448', () => {
    const x = new Float32Array(16);
    x[0] = 1000;
    const enc = nvfp4Encode(x, { tensorScale: 'auto' });
    assert.equal(enc.bytes[0], 0x7e); // 448
    const y0 = nvfp4Decode(enc.bytes, 16, enc.tensorScale)[0]!;
    assert.equal(y0, fr(6 * fr(448 * enc.tensorScale)));
    assert.ok(Math.abs(y0 / 1000 - 1) < 1e-6);
  });

  it('NaN/Inf blocks decode to NaN; other blocks are unaffected', () => {
    const x = new Float32Array(32).fill(3);
    x[2] = Number.NaN;
    x[20] = 3;
    const enc = nvfp4Encode(x);
    assert.equal(enc.bytes[0], 0x7f);
    const y = nvfp4Decode(enc.bytes, 32);
    assert.ok(y.subarray(0, 16).every(Number.isNaN));
    assert.ok(y.subarray(16).every((v) => v === 3));
  });

  it('rejects bad lengths and bad tensor scales with MixqError', () => {
    assert.throws(() => nvfp4Encode(new Float32Array(15)), MixqError);
    assert.throws(() => nvfp4Encode(new Float32Array(0)), MixqError);
    assert.throws(() => nvfp4Encode(new Float32Array(16), { tensorScale: 0 }), MixqError);
    assert.throws(() => nvfp4Decode(new Uint8Array(8), 16), MixqError);
    assert.throws(() => nvfp4Decode(new Uint8Array(0), 0), MixqError);
  });
});

/**
 * The rounding helpers every ggml codec depends on, against independent definitions: nearest_int is
 * round-half-even (ggml's 1.5*2^23 trick), Q8_0's roundf is round-half-away-from-zero, and the fp16
 * fields round to nearest even.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readF16, roundHalfAway, roundTripF16, writeF16 } from '../../src/blocks/ggml/common.ts';
import { bestIndexInt8, maxByMagnitude, nearestInt } from '../../src/blocks/ggml/solvers.ts';
import { KVALUES_IQ4NL } from '../../src/blocks/index.ts';

/** Round half to even, from floor and the exact fractional part (doubles hold float32 values exactly). */
function rne(v: number): number {
  const f = Math.floor(v);
  const frac = v - f;
  if (frac < 0.5) return f;
  if (frac > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

describe('ggml rounding helpers', () => {
  it('nearestInt is round-half-even on float32 values with |v| < 2^22', () => {
    const v = fc.oneof(
      fc.float({ min: -4194303, max: 4194303, noNaN: true }),
      fc.integer({ min: -100000, max: 100000 }).map((k) => k + 0.5),
      fc.integer({ min: -1000, max: 1000 }).map((k) => Math.fround(k + 0.5 + 2 ** -12)),
      fc.integer({ min: -1000, max: 1000 }).map((k) => Math.fround(k + 0.5 - 2 ** -12)),
    );
    fc.assert(
      fc.property(v, (x) => {
        assert.equal(nearestInt(x), rne(x) + 0, `x=${x}`);
      }),
      { numRuns: 5000, seed: 1 },
    );
  });
  it('roundHalfAway is C roundf: ties away from zero', () => {
    assert.deepEqual(
      [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999998].map(roundHalfAway),
      [-3, -2, -1, 1, 2, 3, 2],
    );
  });
  it('fp16 fields: little-endian, nearest even, overflow to inf', () => {
    const b = new Uint8Array(2);
    writeF16(b, 0, 1 + 2 ** -11); // tie between 1 and 1 + 2^-10 -> 1
    assert.deepEqual(Array.from(b), [0x00, 0x3c]);
    writeF16(b, 0, 1 + 3 * 2 ** -11); // tie -> even mantissa 2
    assert.equal(readF16(b, 0), 1 + 2 ** -9);
    assert.equal(roundTripF16(70000), Infinity);
    assert.equal(roundTripF16(2 ** -25), 0); // half the smallest subnormal: tie to even (0)
  });
  it('maxByMagnitude: the signed value of largest |x| in the range, first on ties, NaN never, 0 if none', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.float(), fc.constantFrom(-2, 2, -0, Number.NaN)), { maxLength: 40 }),
        fc.nat(40),
        fc.nat(40),
        (vals, a, b) => {
          const x = Float32Array.from(vals);
          const start = Math.min(a, b, x.length);
          const end = Math.min(Math.max(a, b), x.length);
          let want = 0; // brute force: scan for a strictly larger magnitude (NaN compares false)
          for (let i = start; i < end; i++) if (Math.abs(x[i]!) > Math.abs(want)) want = x[i]!;
          assert.ok(Object.is(maxByMagnitude(x, start, end), want));
        },
      ),
    );
    assert.equal(maxByMagnitude(Float32Array.of(1, -3, 3, 2), 0, 4), -3);
    assert.equal(maxByMagnitude(Float32Array.of(1, -3, 3, 2), 2, 4), 3);
  });

  it('bestIndexInt8 finds the nearest IQ4_NL level (brute force), upper on ties', () => {
    fc.assert(
      fc.property(fc.float({ min: -200, max: 200, noNaN: true }), (x) => {
        let best = 0;
        for (let i = 1; i < 16; i++) {
          const d = Math.abs(KVALUES_IQ4NL[i]! - x);
          const bd = Math.abs(KVALUES_IQ4NL[best]! - x);
          if (d <= bd) best = i; // ascending table: '<=' prefers the upper level on ties
        }
        assert.equal(bestIndexInt8(KVALUES_IQ4NL, x), best, `x=${x}`);
      }),
      { numRuns: 3000, seed: 2 },
    );
  });
});

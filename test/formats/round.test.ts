/**
 * The rounding quantizers use (src/formats/round.ts) against the codec it must equal: the fast
 * nearest-even encoder = encode(..., { overflow: 'saturate' }) on every small format for adversarial inputs
 * (values, exact ties, float32 and double ulps either side of ties, zeros, the ends, inf, NaN) and random
 * doubles; integer rounding in every mode against the int codec's own decisions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import {
  encode,
  getFormat,
  nearestEvenEncoder,
  nearestEvenInt,
  ROUNDINGS,
  roundToInteger,
} from '../../src/formats/index.ts';
import { adversarialInputs, ladder } from './brute.ts';
import { SMALL } from './cases.ts';

const up = (x: number) => x + Math.abs(x) * 2 ** -52 + 5e-324;

test('nearestEvenEncoder = the codec (nearest-even, saturating) on every format of <= 16 bits', () => {
  const rng = new Rng(3);
  for (const spec of SMALL) {
    const enc = nearestEvenEncoder(spec);
    const L = ladder(spec);
    const max = L.values[L.values.length - 1]!;
    const xs = adversarialInputs(L, 300);
    for (let i = 0; i < L.values.length - 1 && i < 600; i++) {
      const mid = (L.values[i]! + L.values[i + 1]!) / 2; // exact ties in double, and a double ulp off
      xs.push(mid, up(mid), -up(-mid));
    }
    for (let i = 0; i < 300; i++) xs.push((rng.nextFloat() - 0.5) * 2.2 * max);
    for (const x of xs)
      assert.equal(enc(x), encode(spec, x, { overflow: 'saturate' }), `${spec.name} at ${x}`);
  }
});

test('roundToInteger: every mode as the int codec decides it; nearestEvenInt = round half to even', () => {
  const int16 = getFormat('int16');
  const rng = new Rng(5);
  const xs = [0, -0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.25, -3.75, 1e-9, -1e-9, 100.5, -100.5];
  for (let i = 0; i < 200; i++) xs.push((rng.nextFloat() - 0.5) * 1000);
  for (const mode of ROUNDINGS) {
    for (const x of xs) {
      const u = rng.nextU32();
      const code = encode(int16, x, { rounding: mode, rng: { nextU32: () => u } as never });
      const want = code >= 32768 ? code - 65536 : code;
      assert.equal(roundToInteger(x, mode, u, 0) + 0, want, `${mode} ${x}`);
    }
  }
  for (const x of xs) {
    const r = Math.round(x);
    const even = r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
    assert.equal(nearestEvenInt(x), even + 0, `${x}`);
  }
});

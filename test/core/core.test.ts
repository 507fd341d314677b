import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  bitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToBits,
  f32ToF16Bits,
  Rng,
  VERSION,
} from '../../src/index.ts';

test('VERSION matches package.json', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});

// Independent reference: nearest binary16 by exhaustive search over all finite codes (ties to even code).
function f16Nearest(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let best = 0;
  let bestErr = Infinity;
  for (let h = 0; h < 0x7c00; h++) {
    const err = Math.abs(f16BitsToF32(h) - a);
    if (err < bestErr || (err === bestErr && (h & 1) === 0)) {
      best = h;
      bestErr = err;
    }
  }
  return sign | best;
}

test('f16 decode/encode is the identity on every non-NaN code', () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16BitsToF32(h);
    if (Number.isNaN(v)) continue;
    assert.equal(f32ToF16Bits(v), h, `code 0x${h.toString(16)}`);
  }
});

test('f32ToF16Bits rounds to nearest-even (vs brute force) on ties and random inputs', () => {
  const rng = new Rng(1);
  const xs: number[] = [
    65504,
    65519.99,
    65520,
    -65520,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    2 ** -14,
    1 + 2 ** -11,
  ];
  for (let i = 0; i < 300; i++) xs.push(bitsToF32(rng.nextU32() & 0xc7ffffff));
  for (const x of xs) assert.equal(f32ToF16Bits(x), f16Nearest(Math.fround(x)), `x=${x}`);
});

test('bf16 rounding: ties to even, NaN stays NaN', () => {
  assert.equal(f32ToBf16Bits(bitsToF32(0x3f808000)), 0x3f80); // tie, even stays
  assert.equal(f32ToBf16Bits(bitsToF32(0x3f818000)), 0x3f82); // tie, odd rounds up
  assert.equal(f32ToBf16Bits(bitsToF32(0x3f808001)), 0x3f81);
  assert.ok(Number.isNaN(bitsToF32(f32ToBf16Bits(Number.NaN) << 16)));
  assert.equal(f32ToBits(1), 0x3f800000);
});

test('Rng is deterministic by seed and roughly uniform', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  let same = 0;
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = a.nextU32();
    assert.equal(x, b.nextU32());
    if (x === c.nextU32()) same++;
    sum += x * 2 ** -32;
  }
  assert.ok(same < 3);
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});

test('Rng state round-trips through getState / setState', () => {
  const a = new Rng(3);
  for (let i = 0; i < 5; i++) a.nextU32();
  const s = new Uint32Array(6);
  a.getState(s, 2);
  const b = new Rng(99);
  b.setState(s, 2);
  for (let i = 0; i < 10; i++) assert.equal(a.nextU32(), b.nextU32());
});

/**
 * Formats whose exponent range is float32's (bf16, tf32): only the mantissa is cut, so the kernel's
 * integer formula covers every lane but NaN (native/formats/chop.c: window past inf). Every
 * deterministic mode, with the options that move the window (saturate) or not, over (a) every float32
 * exponent (subnormals, max finite, inf / NaN) x both signs x the residuals that decide a rounding
 * (0, 1, just below / at / just above the tie, all ones) with the kept lsb even and odd, plus NaNs with
 * high and low payloads, and (b) 2^20 random bit patterns per case, compared bit for bit with the
 * reference, through chopBuffer in place and chop between two views of its memory (out of place).
 */
import { test } from 'node:test';
import { bitsToF32 } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import { forceChopPath } from '../../src/formats/chop-fast.ts';
import {
  type CastOptions,
  chop,
  chopBuffer,
  chopReference,
  type FloatSpec,
  getFormat,
  type Rounding,
} from '../../src/formats/index.ts';
import { assertSameBits } from './cases.ts';

const MODES: readonly Rounding[] = ['nearest-even', 'nearest-away', 'toward-zero', 'up', 'down'];
const RANDOM = 1 << 20;

function edgeBits(M: number): number[] {
  const D = 23 - M;
  const half = 1 << (D - 1);
  const drop = (1 << D) - 1;
  const residuals = [0, 1, half - 1, half, half + 1, drop];
  const out: number[] = [];
  for (let e = 0; e < 256; e++)
    for (const kept of [0, 1 << D, (0x7fffff & ~drop) >>> 0, (0x7fffff & ~drop) - (1 << D)])
      for (const r of residuals) for (const s of [0, 0x80000000]) out.push((s | (e << 23) | kept | r) >>> 0);
  // NaNs: quiet / signalling, high and low payloads, both signs
  for (const nan of [0x7fc00000, 0x7fffffff, 0x7f800001, 0x7f807fff, 0x7f808000, 0x7fbfffff, 0x7f8fffff])
    out.push(nan, (nan | 0x80000000) >>> 0);
  return out;
}

test('bf16 / tf32: every deterministic mode over edge values and random bits, bit for bit', () => {
  forceChopPath('wasm');
  try {
    const rng = new Rng(20);
    for (const name of ['bf16', 'tf32']) {
      const spec = getFormat(name) as FloatSpec;
      const edges = edgeBits(spec.manBits);
      const src = new Float32Array(edges.length + RANDOM + 3); // + a tail of 3 lanes
      src.set(edges.map(bitsToF32));
      const words = new Uint32Array(src.buffer);
      for (let i = edges.length; i < src.length; i++) words[i] = rng.nextU32();
      const n = src.length;
      const buf = chopBuffer(spec, 2 * n + 8);
      const v = buf.view;
      for (const rounding of MODES)
        for (const extra of [{}, { overflow: 'saturate' }] as CastOptions[]) {
          const o: CastOptions = { rounding, ...extra };
          const what = `${name} ${JSON.stringify(o)}`;
          const ref = chopReference(spec, src, o);
          v.set(src);
          assertSameBits(buf.chopInPlace(n, o), ref, `${what} in place`, src);
          v.set(src);
          assertSameBits(
            chop(spec, v.subarray(0, n), o, v.subarray(n + 4, 2 * n + 4)),
            ref,
            `${what} views`,
            src,
          );
        }
    }
  } finally {
    forceChopPath(undefined);
  }
});

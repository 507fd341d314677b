/**
 * Differential test of the fast chop (float32 bit arithmetic, chop-fast.ts) against the reference
 * decode(encode(x)) path: random float32 bit patterns (every exponent, NaNs, infs, subnormals, both signs)
 * plus special values, for every float format x rounding mode x option combination, bit for bit
 * (NaN payloads aside). Stochastic modes must make the same decisions from the same seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bitsToF32 } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  type CastOptions,
  chop,
  chopReference,
  decode,
  encode,
  encodeArray,
  FORMATS,
  type FormatSpec,
  formatInfo,
  ROUNDINGS,
} from '../../src/formats/index.ts';
import { setSimdEnabled } from '../../src/formats/chop-fast.ts';
import { CHUNK, simdAvailable } from '../../src/formats/chop-simd.ts';
import { assertSameBits, CUSTOM } from './cases.ts';

function inputs(spec: FormatSpec, n: number): Float32Array {
  const rng = new Rng(0xc0ffee);
  const info = formatInfo(spec);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.nextU32() % 4;
    if (r === 0)
      out.push(bitsToF32(rng.nextU32())); // any bit pattern
    else if (r === 1)
      out.push((rng.nextFloat() - 0.5) * 4 * info.maxFinite); // around the top of the range
    else if (r === 2)
      out.push((rng.nextFloat() - 0.5) * 4 * info.minNormal); // around the subnormals
    else out.push(rng.nextNormal() * 2 ** ((rng.nextU32() % 40) - 20));
  }
  const s = [0, -0, Infinity, -Infinity, Number.NaN, bitsToF32(0xffc00001), 2 ** -149, -(2 ** -149)];
  for (const v of [info.maxFinite, info.minNormal, info.minSubnormal]) {
    for (const k of [1, 0.5, 0.75, 1.5, 1 + 2 ** -10, 1 - 2 ** -10, 1 + 2 ** -24, 1 - 2 ** -24])
      s.push(v * k, -v * k);
  }
  return Float32Array.from([...s, ...out]);
}

const OPTIONS: readonly CastOptions[] = [
  {},
  { overflow: 'saturate' },
  { overflow: 'nan' },
  { flushSubnormals: true },
  { randomBits: 3 },
  { randomBits: 12 },
];

const FLOATS = [...FORMATS, ...CUSTOM].filter((f) => f.kind === 'float');

for (const spec of FLOATS) {
  test(`${spec.name}: fast chop equals the reference bit for bit`, () => {
    const src = inputs(spec, 2000);
    for (const rounding of ROUNDINGS) {
      for (const o of OPTIONS) {
        if (o.randomBits && rounding !== 'stochastic') continue;
        const opts: CastOptions = { ...o, rounding, seed: 42 };
        const ref = chopReference(spec, src, opts);
        setSimdEnabled(false);
        const ts = chop(spec, src, opts);
        setSimdEnabled(true);
        const fast = chop(spec, src, opts);
        assertSameBits(ts, ref, `${spec.name} ${JSON.stringify(opts)} TypeScript fast path`, src);
        assertSameBits(fast, ref, `${spec.name} ${JSON.stringify(opts)} SIMD path`, src);
        // in place gives the same result
        const copy = src.slice();
        chop(spec, copy, opts, copy);
        for (let i = 0; i < src.length; i++) assert.ok(Object.is(copy[i], fast[i]) || Number.isNaN(copy[i]!));
      }
    }
  });
}

test('SIMD kernel is available in Node 20 and crosses chunk boundaries and odd tails correctly', () => {
  assert.ok(simdAvailable(), 'WebAssembly SIMD should be available in Node >= 20');
  const rng = new Rng(77);
  // random bit patterns, so every 16-byte block has exception lanes now and then (NaN, inf, huge)
  const n = CHUNK + 4099;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = i % 3 === 0 ? bitsToF32(rng.nextU32()) : rng.nextNormal() * 8;
  for (const name of ['bf16', 'fp16', 'fp8_e4m3fn', 'fp4_e2m1fn', 'fp6_e3m2fn']) {
    const spec = FORMATS.find((f) => f.name === name)!;
    const ref = chopReference(spec, src);
    assertSameBits(chop(spec, src), ref, `${name} SIMD`, src);
    const inPlace = src.slice();
    chop(spec, inPlace, {}, inPlace);
    assertSameBits(inPlace, ref, `${name} SIMD in place`, src);
  }
});

test('integer fast chop (nearest-even, magic-number rounding) equals the reference', () => {
  const rng = new Rng(5);
  const xs: number[] = [
    0,
    -0,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    126.5,
    127.5,
    -127.5,
    -128.5,
    Infinity,
    -Infinity,
    Number.NaN,
  ];
  for (let i = 0; i < 20000; i++)
    xs.push(i % 2 ? bitsToF32(rng.nextU32()) : (rng.nextFloat() - 0.5) * 2 ** (rng.nextU32() % 20));
  const src = Float32Array.from(xs);
  for (const name of ['int1', 'int4', 'int8', 'uint8', 'int8_narrow', 'ternary', 'int16', 'uint16']) {
    const spec = FORMATS.find((f) => f.name === name)!;
    assertSameBits(chop(spec, src), chopReference(spec, src), `${name} integer fast path`, src);
  }
});

test('encodeArray fast path equals per-element encode (same random stream)', () => {
  const specs = [
    ...FLOATS,
    ...['int4', 'int8', 'uint8', 'int8_narrow', 'ternary', 'int16'].map((n) =>
      FORMATS.find((f) => f.name === n)!,
    ),
  ];
  for (const spec of specs) {
    const src = inputs(spec, 300); // plus ~60 special values; per-element encode() is the slow side
    for (const rounding of ROUNDINGS) {
      for (const o of [{}, { overflow: 'saturate' as const }, { flushSubnormals: true }, { randomBits: 5 }]) {
        if (o.randomBits && rounding !== 'stochastic') continue;
        const opts: CastOptions = { ...o, rounding, seed: 3 };
        const codes = encodeArray(spec, src, opts);
        const rng = new Rng(3);
        for (let i = 0; i < src.length; i++) {
          const want = encode(spec, src[i]!, { ...opts, rng });
          if (codes[i] === want) continue;
          const bothNan = Number.isNaN(decode(spec, codes[i]!)) && Number.isNaN(decode(spec, want));
          assert.ok(
            bothNan,
            `${spec.name} ${JSON.stringify(opts)} x=${src[i]}: code ${codes[i]} want ${want}`,
          );
        }
      }
    }
  }
});

test('SIMD kernel lanes without exceptions: normal, subnormal-range and tie inputs mixed within each 8-lane pair', () => {
  // Exceptional lanes (overflow region, inf, NaN) send the whole pair to the reference, so the other
  // tests exercise the kernel's own lanes less often than it seems; here every value is finite and
  // below max finite, with sub-min-normal values (FPU lane for fp16/fp8, integer lane for bf16/tf32) at
  // every lane position, next to normal values in the same pair, and exact ties at both grids.
  const rng = new Rng(2024);
  for (const name of ['bf16', 'tf32', 'fp16', 'fp8_e4m3fn', 'fp8_e5m2', 'fp6_e3m2fn', 'fp4_e2m1fn']) {
    const spec = FORMATS.find((f) => f.name === name)!;
    const info = formatInfo(spec);
    const lo = info.minNormal;
    const step = info.minSubnormal;
    const ties = Math.min(8, 1 / info.epsilon); // ties between 1 and 2, below max finite
    const n = 8 * 4096 + 5; // odd tail for the TypeScript loop
    const src = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const kind = rng.nextU32() % 8;
      let v: number;
      if (kind < 3)
        v = rng.nextNormal() * 2 ** ((rng.nextU32() % 12) - 4); // normal range
      else if (kind === 3)
        v = rng.nextFloat() * lo; // below min normal
      else if (kind === 4)
        v = ((rng.nextU32() % 64) + 0.5) * step; // ties at the subnormal grid
      else if (kind === 5)
        v = bitsToF32(rng.nextU32() & 0x007fffff); // float32 subnormals
      else if (kind === 6)
        v = 1 + ((rng.nextU32() % ties) + 0.5) * info.epsilon; // normal ties
      else v = rng.nextFloat() * info.maxFinite; // up to max finite
      src[i] = rng.nextU32() & 1 ? -v : v;
    }
    // some pairs entirely normal, some with exactly one tiny lane, and signed zeros
    for (let p = 0; p < 512; p++) {
      for (let l = 0; l < 8; l++) src[8 * p + l] = 1 + l / 3;
      src[8 * p + (p % 8)] = p % 3 === 0 ? -0 : (p % 3 === 1 ? -1 : 1) * rng.nextFloat() * lo;
    }
    for (const opts of [{}, { flushSubnormals: true }, { overflow: 'saturate' as const }]) {
      const ref = chopReference(spec, src, opts);
      assertSameBits(chop(spec, src, opts), ref, `${name} ${JSON.stringify(opts)} SIMD`, src);
    }
  }
});

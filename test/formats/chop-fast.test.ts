/**
 * The fast float chop against the plain reference decode(encode(x)), bit for bit (any NaN equals any
 * NaN), written once and run against each implementation: the TypeScript fast path and the WebAssembly
 * SIMD kernel (forced through forceChopPath). Every float format (registry and custom: bf16, fp16, tf32,
 * fp8 e4m3fn / e4m3 / e5m2 / fnuz, fp6, fp4, e2m0, unsigned, no-subnormal, saturating) x every rounding
 * mode x overflow policy / flush / r-bit options, on random bit patterns (every exponent, NaN payloads,
 * infs, float32 subnormals), exact ties on both grids, values around max finite and past it, the target's
 * subnormal range and signed zeros; plus an exhaustive enumeration of every float32 top half (all signs,
 * exponents and 7 leading mantissa bits) with the low halves that matter for each format's rounding.
 * Stochastic modes must make the same decisions from the same seed and leave an explicit generator
 * exactly where one draw per element leaves it.
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
  type FloatSpec,
  FORMATS,
  type FormatSpec,
  formatInfo,
  getFormat,
  ROUNDINGS,
  type Rounding,
} from '../../src/formats/index.ts';
import { type ChopPath, forceChopPath } from '../../src/formats/chop-fast.ts';
import { chopPlan, KERNEL_MODES } from '../../src/formats/chop-plan.ts';
import { wasmChopAvailable } from '../../src/formats/chop-wasm.ts';
import { floatLayout } from '../../src/formats/minifloat.ts';
import { assertSameBits, CUSTOM } from './cases.ts';

const PATHS: readonly ChopPath[] = ['typescript', 'wasm'];
const FLOATS = [...FORMATS, ...CUSTOM].filter((f): f is FloatSpec => f.kind === 'float');

/** chop through one implementation. */
function chopWith(
  path: ChopPath,
  spec: FormatSpec,
  src: Float32Array,
  opts: CastOptions,
  out?: Float32Array,
) {
  forceChopPath(path);
  try {
    return chop(spec, src, opts, out);
  } finally {
    forceChopPath(undefined);
  }
}

/** Random and adversarial float32 inputs for a format (n random ones plus a fixed set of specials). */
function inputs(spec: FormatSpec, n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const info = formatInfo(spec);
  const out: number[] = [
    0,
    -0,
    Infinity,
    -Infinity,
    Number.NaN,
    bitsToF32(0xffc00001),
    2 ** -149,
    -(2 ** -149),
  ];
  for (const v of [info.maxFinite, info.minNormal, info.minSubnormal]) {
    for (const k of [1, 0.5, 0.75, 1.5, 2, 1 + 2 ** -10, 1 - 2 ** -10, 1 + 2 ** -24, 1 - 2 ** -24])
      out.push(v * k, -v * k);
  }
  const ulpAtMax = info.maxFinite * info.epsilon; // at least the spacing just below max finite
  out.push(info.maxFinite + ulpAtMax / 2, info.maxFinite + ulpAtMax / 4, info.maxFinite + ulpAtMax);
  for (let i = 0; i < n; i++) {
    const kind = rng.nextU32() % 7;
    let v: number;
    if (kind === 0)
      v = bitsToF32(rng.nextU32()); // any bit pattern
    else if (kind === 1)
      v = (rng.nextFloat() - 0.5) * 4 * info.maxFinite; // around the top of the range
    else if (kind === 2)
      v = (rng.nextFloat() - 0.5) * 4 * info.minNormal; // around the subnormals
    else if (kind === 3)
      v = ((rng.nextU32() % 64) + 0.5) * info.minSubnormal; // ties on the subnormal grid
    else if (kind === 4)
      v = (1 + ((rng.nextU32() % 8) + 0.5) * info.epsilon) * 2 ** ((rng.nextU32() % 8) - 4); // normal ties
    else if (kind === 5)
      v = bitsToF32(rng.nextU32() & 0x807fffff); // float32 subnormals
    else v = rng.nextNormal() * 2 ** ((rng.nextU32() % 40) - 20);
    out.push(rng.nextU32() & 1 && kind > 2 ? -v : v);
  }
  return Float32Array.from(out);
}

const OPTIONS: readonly CastOptions[] = [
  {},
  { overflow: 'saturate' },
  { overflow: 'nan' },
  { overflow: 'ieee' },
  { flushSubnormals: true },
  { randomBits: 3 },
  { randomBits: 12 },
  { randomBits: 32 },
];

test('WebAssembly SIMD is available in Node 20, so the kernel is what these tests exercise', () => {
  assert.ok(wasmChopAvailable());
});

for (const path of PATHS) {
  for (const spec of FLOATS) {
    test(`${path}: ${spec.name}, every rounding and option, equals the reference bit for bit`, () => {
      const src = inputs(spec, 2000, 0xc0ffee);
      for (const rounding of ROUNDINGS) {
        for (const o of OPTIONS) {
          if (o.randomBits && rounding !== 'stochastic') continue;
          const opts: CastOptions = { ...o, rounding, seed: 42 };
          const what = `${path} ${spec.name} ${JSON.stringify(opts)}`;
          const ref = chopReference(spec, src, opts);
          assertSameBits(chopWith(path, spec, src, opts), ref, what, src);
          const copy = src.slice(); // in place
          assertSameBits(chopWith(path, spec, copy, opts, copy), ref, `${what} in place`, src);
        }
      }
    });
  }

  test(`${path}: every length 0..80 (kernel tails), stochastic draws in element order`, () => {
    const spec = getFormat('fp8_e4m3fn');
    const all = inputs(spec, 100, 3);
    for (let n = 0; n <= 80; n++) {
      const src = all.subarray(all.length - n);
      for (const rounding of ['nearest-even', 'up', 'stochastic'] as const) {
        const opts: CastOptions = { rounding, seed: n };
        assertSameBits(
          chopWith(path, spec, src, opts),
          chopReference(spec, src, opts),
          `${path} n=${n} ${rounding}`,
          src,
        );
      }
    }
  });

  test(`${path}: an explicit generator advances by exactly one draw per element`, () => {
    const spec = getFormat('bf16');
    const src = inputs(spec, 70_000, 4); // crosses the copying path's chunks
    for (const rounding of ['stochastic', 'stochastic-equal'] as const) {
      for (const randomBits of rounding === 'stochastic' ? [0, 5] : [0]) {
        const mine = new Rng(123);
        const theirs = new Rng(123);
        const got = chopWith(path, spec, src, { rounding, randomBits, rng: mine });
        const want = chopReference(spec, src, { rounding, randomBits, rng: theirs });
        assertSameBits(got, want, `${path} ${rounding} r=${randomBits}`, src);
        assert.equal(mine.nextU32(), theirs.nextU32(), 'the generators continue in step');
        assert.equal(mine.nextU32(), theirs.nextU32());
      }
    }
  });
}

/** A generator whose next draw is exactly u: xoshiro128**'s output depends on s1 alone (inverted here). */
function rngDrawing(u: number): Rng {
  const inv = (a: number): number => {
    let x = a; // Newton's iteration for the inverse of an odd number modulo 2^32
    for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x));
    return x;
  };
  const v = Math.imul(u, inv(9)) >>> 0;
  const s1 = Math.imul(((v >>> 7) | (v << 25)) >>> 0, inv(5)) >>> 0;
  const rng = new Rng(0);
  rng.setState(Uint32Array.of(0x9e3779b9, s1, 0x7f4a7c15, 0x85ebca6b));
  return rng;
}

test('rngDrawing: the crafted generator draws the requested number', () => {
  for (const u of [0, 1, 2 ** 31, 2 ** 32 - 1, 123456789]) assert.equal(rngDrawing(u).nextU32(), u);
});

for (const path of PATHS) {
  test(`${path}: stochastic decisions at the exact threshold draw (full and r-bit), normal and subnormal results`, () => {
    for (const name of ['bf16', 'fp16', 'fp8_e4m3fn', 'fp4_e2m1fn', 'fp8_e4m3fnuz']) {
      const spec = getFormat(name);
      const info = formatInfo(spec);
      const xs = [
        1 + info.epsilon / 3,
        -(1 + info.epsilon * 0.6),
        info.minSubnormal * 2.3,
        -info.minSubnormal / 1000,
      ];
      xs.push(info.minSubnormal * (1 + 2 ** -20), info.maxFinite * (1 - info.epsilon / 7));
      for (const x0 of xs) {
        const x = Math.fround(x0);
        const src = new Float32Array(33).fill(x); // a whole kernel group and a tail lane
        const down = chopReference(spec, src, { rounding: 'toward-zero' })[0]!;
        const away = chopReference(spec, src, { rounding: x > 0 ? 'up' : 'down' })[0]!;
        const frac = (Math.abs(x) - Math.abs(down)) / (Math.abs(away) - Math.abs(down));
        for (const r of [0, 3, 8]) {
          const t = r === 0 ? Math.ceil(frac * 2 ** 32) : Math.floor(frac * 2 ** r) * 2 ** (32 - r);
          for (const u of [t - 1, t]) {
            if (u < 0 || u >= 2 ** 32) continue;
            const want = u < t ? away : down;
            for (const n of [1, 33]) {
              const got = chopWith(path, spec, src.subarray(0, n), {
                rounding: 'stochastic',
                randomBits: r,
                rng: rngDrawing(u),
              });
              assert.ok(
                Object.is(got[0], want),
                `${path} ${name} x=${x} r=${r} u=${u} n=${n}: ${got[0]}, want ${want}`,
              );
            }
          }
        }
        for (const u of [2 ** 31 - 1, 2 ** 31]) {
          const got = chopWith(path, spec, src, { rounding: 'stochastic-equal', rng: rngDrawing(u) });
          assert.ok(
            Object.is(got[0], u >= 2 ** 31 ? away : down),
            `${path} ${name} x=${x} stochastic-equal u=${u}`,
          );
        }
      }
    }
  });
}

/**
 * Every float32 top half (sign, exponent, 7 leading mantissa bits) with the low halves that decide the
 * format's rounding: exact, the smallest and largest residuals, and the tie and its neighbours at the
 * format's ulp when that lies in the low half (M > 7); ties at M <= 7 vary in the top half itself.
 */
function topHalves(spec: FloatSpec): Float32Array {
  const D = 23 - spec.manBits;
  const lows = new Set([0, 1, 0x7fff, 0x8000, 0x8001, 0xffff]);
  if (D <= 16) {
    const half = D > 0 ? 1 << (D - 1) : 0;
    for (const v of [half - 1, half, half + 1, (1 << D) - 1, (1 << D) + half]) lows.add(v & 0xffff);
  }
  const low = [...lows];
  const bits = new Uint32Array(65536 * low.length);
  let i = 0;
  for (let top = 0; top < 65536; top++) for (const l of low) bits[i++] = ((top << 16) | l) >>> 0;
  return new Float32Array(bits.buffer);
}

const EXHAUSTIVE = [
  'bf16',
  'fp16',
  'tf32',
  'fp8_e4m3fn',
  'fp8_e4m3',
  'fp8_e5m2',
  'fp8_e4m3fnuz',
  'fp6_e3m2fn',
  'fp4_e2m1fn',
  'e8m0fnu',
];

for (const name of EXHAUSTIVE) {
  test(`${name}: every float32 top half x deciding low halves, every mode, both fast paths equal the reference`, () => {
    const spec = getFormat(name) as FloatSpec;
    const src = topHalves(spec);
    const modes: CastOptions[] = [...ROUNDINGS.map((rounding) => ({ rounding, seed: 9 }))];
    modes.push({ rounding: 'stochastic', randomBits: 4, seed: 9 });
    if (name === 'bf16' || name === 'fp8_e4m3fn')
      modes.push({ overflow: 'saturate' }, { flushSubnormals: true });
    for (const opts of modes) {
      const ref = chopReference(spec, src, opts);
      for (const path of PATHS)
        assertSameBits(chopWith(path, spec, src, opts), ref, `${path} ${name} ${JSON.stringify(opts)}`, src);
    }
  });
}

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
    const spec = getFormat(name);
    assertSameBits(chop(spec, src), chopReference(spec, src), `${name} integer fast path`, src);
  }
});

test('encodeArray fast path equals per-element encode (same random stream)', () => {
  const specs = [
    ...FLOATS,
    ...['int4', 'int8', 'uint8', 'int8_narrow', 'ternary', 'int16'].map((n) => getFormat(n)),
  ];
  for (const spec of specs) {
    const src = inputs(spec, 300, 8); // plus ~60 special values; per-element encode() is the slow side
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

test('a rounding mode without a kernel row gets no plan, so chop runs the reference for it', () => {
  const L = floatLayout(getFormat('bf16') as FloatSpec);
  assert.ok(chopPlan(L, 'nearest-even', 0, 'ieee', false));
  assert.equal(chopPlan(L, 'nearest-odd' as Rounding, 0, 'ieee', false), undefined);
  // e8m0fnu (unsigned, no zero) has a plan; a signed format without zero has none
  assert.ok(chopPlan(floatLayout(getFormat('e8m0fnu') as FloatSpec), 'nearest-even', 0, 'ieee', false));
  const signedNoZero: FloatSpec = {
    ...(getFormat('e8m0fnu') as FloatSpec),
    name: 'se7m0',
    expBits: 7,
    bias: 63,
    signed: true,
  };
  assert.equal(chopPlan(floatLayout(signedNoZero), 'nearest-even', 0, 'ieee', false), undefined);
  for (const m of KERNEL_MODES) assert.ok(ROUNDINGS.includes(m), `${m} is a rounding mode`);
});

/**
 * OCP MX block formats: golden vectors (test/golden/mx_reference.json, the spec's reference algorithm),
 * scale rules against their definitions evaluated in exact arithmetic, the NaN/Inf block policy, packing
 * round trips and a brute-force check of element rounding.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  floorLog2F32,
  MX_FORMATS,
  type MxFormatName,
  mxDecode,
  mxEncode,
  mxFakeQuant,
  mxSharedExponent,
} from '../../src/blocks/mx.ts';
import { MixqError } from '../../src/core/errors.ts';
import { type FormatSpec, valueTable } from '../../src/formats/index.ts';

interface MxGolden {
  emax_elem: Record<string, number>;
  inputs: string[];
  outputs: Record<string, string[]>;
  scale_e8m0_biased: Record<string, number[]>;
}
const golden = JSON.parse(
  readFileSync(new URL('../golden/mx_reference.json', import.meta.url), 'utf8'),
) as MxGolden;
const fromHex = (h: string[]): Float32Array =>
  new Float32Array(Uint32Array.from(h, (s) => Number.parseInt(s, 16)).buffer);
const bits = (f: Float32Array): number[] => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));

describe('MX golden (OCP v1.0 reference algorithm, floor rule)', () => {
  const x = fromHex(golden.inputs);
  for (const name of Object.keys(golden.outputs) as MxFormatName[]) {
    it(`${name}: scales, values and byte round trip bit-exact`, () => {
      const fmt = MX_FORMATS[name];
      assert.equal(fmt.emaxElem, golden.emax_elem[name]);
      const want = bits(fromHex(golden.outputs[name]!));
      assert.deepEqual(bits(mxFakeQuant(name, x)), want);
      const bytes = mxEncode(name, x);
      const scales = Array.from({ length: x.length / 32 }, (_, b) => bytes[b * fmt.bytesPerBlock]!);
      assert.deepEqual(scales, golden.scale_e8m0_biased[name]);
      assert.deepEqual(bits(mxDecode(name, bytes, x.length)), want);
    });
  }
});

describe('MX layout and bits per element', () => {
  it('bytes per block and bits per element include the scale', () => {
    const expect: Record<MxFormatName, [number, number]> = {
      mxfp8_e4m3: [33, 8.25],
      mxfp8_e5m2: [33, 8.25],
      mxfp6_e3m2: [25, 6.25],
      mxfp6_e2m3: [25, 6.25],
      mxfp4_e2m1: [17, 4.25],
      mxint8: [33, 8.25],
    };
    for (const [name, [bytes, bpe]] of Object.entries(expect) as [MxFormatName, [number, number]][]) {
      assert.equal(MX_FORMATS[name].bytesPerBlock, bytes, name);
      assert.equal(MX_FORMATS[name].bitsPerElement, bpe, name);
      assert.equal(mxEncode(name, new Float32Array(64)).length, 2 * bytes);
    }
  });
  it('MXFP4 packs element 2i in the low nibble, after the scale byte', () => {
    const x = new Float32Array(32);
    x[0] = 0.5; // E2M1 code 1
    x[1] = 6; // code 7; amax 6 -> E = 2 - 2 = 0, scale code 127
    x[2] = -1; // code 0b1010
    const b = mxEncode('mxfp4_e2m1', x);
    assert.equal(b[0], 127);
    assert.equal(b[1], 0x71);
    assert.equal(b[2], 0x0a);
  });
  it('MXINT8 elements are int8 * 2^-6, clamped to ±127', () => {
    const x = new Float32Array(32);
    x[0] = 1.5; // E = floor(log2 1.5) - 0 = 0 -> code 96
    x[1] = -1.984375;
    x[2] = 1 / 128; // 0.5 unit: tie -> even (0)
    x[3] = 3 / 128; // 1.5 units -> 2
    const y = mxFakeQuant('mxint8', x);
    assert.deepEqual(Array.from(y.subarray(0, 4)), [1.5, -1.984375, 0, 2 / 64]);
    const b = mxEncode('mxint8', x);
    assert.equal(b[0], 127);
    assert.equal(b[1], 96);
    assert.equal(b[2], 256 - 127);
  });
  it('rejects bad lengths with MixqError', () => {
    assert.throws(() => mxEncode('mxfp4_e2m1', new Float32Array(31)), MixqError);
    assert.throws(() => mxEncode('mxfp4_e2m1', new Float32Array(0)), MixqError);
    assert.throws(() => mxDecode('mxfp4_e2m1', new Uint8Array(16), 32), MixqError);
    assert.throws(() => mxDecode('mxfp4_e2m1', new Uint8Array(0), 0), MixqError);
    assert.throws(() => mxDecode('mxfp8_e4m3', new Uint8Array(33), 33), MixqError);
  });
});

/** Exact reference for the scale rules, with BigInt-free rational reasoning on powers of two. */
function refExponent(name: MxFormatName, amax: number, rule: string): number {
  const f = MX_FORMATS[name];
  const fl = Math.floor(Math.log2(amax)); // amax is float32; log2 in double is exact enough off powers of 2
  const exactFloor = 2 ** fl <= amax ? (2 ** (fl + 1) <= amax ? fl + 1 : fl) : fl - 1;
  if (rule === 'floor') return exactFloor - f.emaxElem;
  if (rule === 'ceil') return (2 ** exactFloor === amax ? exactFloor : exactFloor + 1) - f.emaxElem;
  if (rule === 'rceil') {
    const q = Math.fround(amax / f.maxElement);
    let e = -200;
    while (2 ** e < q) e++;
    return e;
  }
  // even: amax rounded (half up) to manBits fraction bits, then floor
  const ulp = 2 ** (exactFloor - f.manBits);
  const r = Math.floor(amax / ulp + 0.5) * ulp;
  return (r >= 2 ** (exactFloor + 1) ? exactFloor + 1 : exactFloor) - f.emaxElem;
}

describe('MX scale rules', () => {
  const names = Object.keys(MX_FORMATS) as MxFormatName[];
  it('floor / ceil / even / rceil match their definitions (random and boundary amax)', () => {
    const amaxArb = fc.oneof(
      fc.float({ min: Math.fround(1e-30), max: Math.fround(1e30), noNaN: true }),
      fc.integer({ min: -100, max: 100 }).map((k) => Math.fround(2 ** k)),
      fc.integer({ min: -100, max: 100 }).map((k) => Math.fround(2 ** k * 1.875)),
      fc.integer({ min: -100, max: 100 }).map((k) => Math.fround(2 ** k * 1.9375)),
      fc.integer({ min: -100, max: 100 }).map((k) => Math.fround(2 ** k * (2 - 2 ** -23))),
    );
    fc.assert(
      fc.property(
        amaxArb,
        fc.constantFrom(...names),
        fc.constantFrom('floor', 'ceil', 'even', 'rceil'),
        (a, n, r) => {
          if (!(a > 0)) return;
          assert.equal(
            mxSharedExponent(MX_FORMATS[n], a, r as 'floor'),
            refExponent(n, a, r),
            `${n} ${r} ${a}`,
          );
        },
      ),
      { numRuns: 3000, seed: 7 },
    );
  });
  it('floorLog2F32 is exact on float32 subnormals and powers of two', () => {
    assert.equal(floorLog2F32(2 ** -149), -149);
    assert.equal(floorLog2F32(3 * 2 ** -149), -148);
    assert.equal(floorLog2F32(Math.fround(2 ** -126 * (1 - 2 ** -23))), -127);
    assert.equal(floorLog2F32(1), 0);
    assert.equal(floorLog2F32(Math.fround(2 - 2 ** -23)), 0);
  });
  it("'rceil' and 'ceil' never clamp; 'floor' can", () => {
    const x = new Float32Array(32);
    x[0] = 7.9; // E2M1: floor -> E = 0, 7.9 clamps to 6
    assert.equal(mxFakeQuant('mxfp4_e2m1', x)[0], 6);
    assert.equal(mxFakeQuant('mxfp4_e2m1', x, { scaleRule: 'rceil' })[0], 8);
    assert.equal(mxFakeQuant('mxfp4_e2m1', x, { scaleRule: 'ceil' })[0], 8);
    // 'even': 7.9 rounds (1 mantissa bit) to 8 -> E = 3 - 2 = 1 -> 7.9/2 = 3.95 -> 4 -> 8
    assert.equal(mxFakeQuant('mxfp4_e2m1', x, { scaleRule: 'even' })[0], 8);
  });
  it('exponent clamps to [-127, 127]; all-zero block gets code 0', () => {
    assert.equal(mxEncode('mxfp8_e4m3', new Float32Array(32))[0], 0);
    const tiny = new Float32Array(32).fill(2 ** -149);
    // floor(log2) - 8 = -157 -> clamped to -127; 2^-149 / 2^-127 = 2^-22 underflows e4m3 -> 0
    assert.equal(mxEncode('mxfp8_e4m3', tiny)[0], 0);
    assert.equal(mxFakeQuant('mxfp8_e4m3', tiny)[0], 0);
  });
});

describe('MX special values and element rounding', () => {
  it('a NaN or Inf anywhere makes the whole block NaN (scale 0xFF); other blocks unaffected', () => {
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const x = new Float32Array(64).fill(1);
      x[5] = bad;
      for (const name of Object.keys(MX_FORMATS) as MxFormatName[]) {
        const b = mxEncode(name, x);
        assert.equal(b[0], 0xff);
        const y = mxDecode(name, b, 64);
        assert.ok(y.subarray(0, 32).every(Number.isNaN), name);
        assert.ok(
          y.subarray(32).every((v) => v === 1),
          name,
        );
      }
    }
  });
  it('MXFP4 exact ties round to even', () => {
    const x = new Float32Array(32);
    const ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -2.5, -5];
    x.set(ties);
    x[31] = 6; // E = 0
    const y = mxFakeQuant('mxfp4_e2m1', x);
    assert.deepEqual(Array.from(y.subarray(0, ties.length)), [0, 1, 1, 2, 2, 4, 4, -0, -2, -4]);
  });
  it('elements are the nearest representable value, ties to even, saturating (brute force)', () => {
    const rng = fc.float({ min: -1000, max: 1000, noNaN: true });
    fc.assert(
      fc.property(
        fc.array(rng, { minLength: 32, maxLength: 32 }),
        fc.constantFrom(
          'mxfp8_e4m3',
          'mxfp6_e2m3',
          'mxfp4_e2m1',
          'mxfp6_e3m2',
          'mxfp8_e5m2',
        ) as fc.Arbitrary<MxFormatName>,
        (arr, name) => {
          const x = Float32Array.from(arr);
          const fmt = MX_FORMATS[name];
          const y = mxFakeQuant(name, x);
          let amax = 0;
          for (const v of x) amax = Math.max(amax, Math.abs(v));
          const X = amax === 0 ? 2 ** -127 : 2 ** Math.max(-127, floorLog2F32(amax) - fmt.emaxElem);
          const table = Array.from(valueTable(fmt.element)).filter(Number.isFinite);
          for (let i = 0; i < 32; i++) {
            const v = x[i]! / X;
            let best = Infinity;
            let bestErr = Infinity;
            for (const t of table) {
              const err = Math.abs(t - v);
              // ties: prefer the value whose code is even = whose last mantissa bit is 0
              if (err < bestErr || (err === bestErr && isEvenValue(fmt.element, t))) {
                best = t;
                bestErr = err;
              }
            }
            assert.equal(Math.abs(y[i]! - best * X), 0, `${name} x=${x[i]} got ${y[i]} want ${best * X}`);
          }
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});

/** Whether value t of a float element format has an even code (zero last mantissa bit; 0 is even). */
function isEvenValue(spec: FormatSpec, t: number): boolean {
  if (spec.kind !== 'float') return Math.abs(t) % 2 === 0;
  const a = Math.abs(t);
  if (a === 0) return true;
  const emin = 1 - spec.bias; // subnormals share the spacing of the lowest binade
  const e = Math.max(Math.floor(Math.log2(a)), emin);
  return (a / 2 ** (e - spec.manBits)) % 2 === 0;
}

describe('MX fake-quant extras', () => {
  it('a last partial block is quantized as its own block', () => {
    const x = Float32Array.from({ length: 40 }, (_, i) => Math.sin(i) * (i < 32 ? 1 : 100));
    const y = mxFakeQuant('mxfp6_e2m3', x);
    assert.deepEqual(bits(y.subarray(0, 32)), bits(mxFakeQuant('mxfp6_e2m3', x.subarray(0, 32))));
    assert.deepEqual(bits(y.subarray(32)), bits(mxFakeQuant('mxfp6_e2m3', x.subarray(32))));
  });
  it('stochastic element rounding: reproducible by seed, only the two neighbours occur', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => 0.3 + i * 0.01);
    x[0] = 6; // E = 0 for block 0
    const a = mxFakeQuant('mxfp4_e2m1', x, { rounding: 'stochastic', seed: 9 });
    assert.deepEqual(bits(a), bits(mxFakeQuant('mxfp4_e2m1', x, { rounding: 'stochastic', seed: 9 })));
    const lo = mxFakeQuant('mxfp4_e2m1', x, { rounding: 'down' });
    const hi = mxFakeQuant('mxfp4_e2m1', x, { rounding: 'up' });
    for (let i = 0; i < 64; i++) assert.ok(a[i] === lo[i] || a[i] === hi[i], `i=${i}`);
  });
});

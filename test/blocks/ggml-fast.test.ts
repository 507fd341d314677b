/**
 * The WebAssembly ggml codecs (native/blocks/ggml.c via src/blocks/ggml/wasm.ts) against the TypeScript
 * reference (src/blocks/ggml/<type>.ts, itself tied to ggml by ggml-golden.test.ts), byte for byte:
 * every type, the ref quantizer, quantize_<t> with and without an importance matrix, and the decoder,
 * on the golden rows, on seeded random rows whose blocks mix the odd cases (all zero, constant, one
 * value, huge, tiny, subnormal, ties, signed zeros), on arbitrary finite floats (fast-check), across
 * the kernel's chunk boundaries, and on random block bytes for the decoders.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GGML_REFERENCE_CODECS, wasmCodec } from '../../src/blocks/ggml/index.ts';
import type { GgmlCodec, GgmlTypeName } from '../../src/blocks/ggml/index.ts';
import { mxfp4Thresholds } from '../../src/blocks/ggml/wasm.ts';
import { Rng } from '../../src/core/rng.ts';

const NAMES = Object.keys(GGML_REFERENCE_CODECS) as GgmlTypeName[];
const FAST = new Map(NAMES.map((n) => [n, wasmCodec(GGML_REFERENCE_CODECS[n])]));

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** First differing byte, with context, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function sameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const d = firstDiff(got, want);
  if (d >= 0) {
    assert.fail(
      `${what}: byte ${d}: fast ${hex(got.subarray(d, d + 8))} vs reference ${hex(want.subarray(d, d + 8))}`,
    );
  }
}

/** Same float32 bits, except that any NaN equals any NaN (payloads are the engine's). */
function sameFloats(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const gb = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wb = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < got.length; i++) {
    if (gb[i] !== wb[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      assert.fail(`${what}: value ${i}: fast ${got[i]} vs reference ${want[i]}`);
    }
  }
}

/** Every entry point of one type on x (rows of nPerRow), with each imatrix: fast == reference. */
function checkAll(
  name: GgmlTypeName,
  x: Float32Array,
  nPerRow: number,
  imatrices: Float32Array[],
  tag: string,
): void {
  const ref: GgmlCodec = GGML_REFERENCE_CODECS[name];
  const fast = FAST.get(name)!;
  const want = ref.quantizeRef(x);
  sameBytes(fast.quantizeRef(x), want, `${name} ${tag} quantizeRef`);
  sameFloats(fast.dequantize(want, x.length), ref.dequantize(want, x.length), `${name} ${tag} dequantize`);
  const plain = ref.quantize(x, nPerRow, null);
  sameBytes(fast.quantize(x, nPerRow, null), plain, `${name} ${tag} quantize`);
  sameBytes(fast.quantizeInto(x, nPerRow, null, new Uint8Array(plain.length)), plain, `${name} ${tag} into`);
  imatrices.forEach((im, k) => {
    const bytes = ref.quantize(x, nPerRow, im);
    sameBytes(fast.quantize(x, nPerRow, im), bytes, `${name} ${tag} quantize imatrix#${k}`);
    // into a reused buffer holding stale bytes: every byte is written
    const into = new Uint8Array(bytes.length).fill(0xa5);
    assert.equal(fast.quantizeInto(x, nPerRow, im, into), into);
    sameBytes(into, bytes, `${name} ${tag} quantizeInto imatrix#${k}`);
    sameFloats(
      fast.dequantize(bytes, x.length),
      ref.dequantize(bytes, x.length),
      `${name} ${tag} dequantize#${k}`,
    );
  });
  assert.ok(
    x.every((v, i) => Object.is(v, xCopies.get(x)?.[i] ?? v)),
    `${name} ${tag}: input modified`,
  );
}
const xCopies = new WeakMap<Float32Array, Float32Array>();

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.nextFloat() * xs.length)]!;

/** A row whose groups of `group` values (16 or 32) each draw one of the odd cases. */
function oddRow(rng: Rng, n: number, group: number): Float32Array {
  const x = new Float32Array(n);
  const kinds = [
    'normal',
    'zero',
    'constant',
    'one',
    'huge',
    'nearMax',
    'tiny',
    'subnormal',
    'mixed',
    'ties',
    'signedZeros',
    'zerosInPositive',
    'zerosInNegative',
    'negative',
    'positive',
    'outlier',
    'fp16Edge',
  ] as const;
  // fp16 scale fields at their rounding edges: max finite, the overflow tie 65520, subnormal steps
  const edges = [65504, 65519, 65520, 65536, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 6.1e-5];
  for (let g = 0; g < n; g += group) {
    const kind = pick(rng, kinds);
    const c = rng.nextNormal();
    for (let i = g; i < g + group; i++) {
      const z = rng.nextNormal();
      switch (kind) {
        case 'normal':
          x[i] = z;
          break;
        case 'zero':
          x[i] = 0;
          break;
        case 'constant':
          x[i] = c;
          break;
        case 'one':
          x[i] = i === g + 5 ? c : 0;
          break;
        case 'huge':
          x[i] = z * 1e30;
          break;
        case 'nearMax':
          x[i] = z * 1e38;
          break;
        case 'tiny':
          x[i] = z * 1e-30;
          break;
        case 'subnormal':
          x[i] = z * 1e-42;
          break;
        case 'mixed':
          x[i] = z * (rng.nextFloat() < 0.5 ? 1e20 : 1e-20);
          break;
        case 'ties':
          x[i] = Math.round(z * 8) / 4;
          break;
        case 'signedZeros':
          x[i] = rng.nextFloat() < 0.5 ? -0 : rng.nextFloat() < 0.8 ? 0 : z;
          break;
        case 'zerosInPositive':
        case 'zerosInNegative': {
          // the block minimum (maximum) is a zero: which signed zero comes first decides the stored m
          const r = rng.nextFloat();
          const v = r < 0.15 ? 0 : r < 0.3 ? -0 : Math.abs(z) + 0.1;
          x[i] = kind === 'zerosInPositive' ? v : -v;
          break;
        }
        case 'negative':
          x[i] = -Math.abs(z) - 0.5;
          break;
        case 'positive':
          x[i] = Math.abs(z) + 0.5;
          break;
        case 'outlier':
          x[i] = i === g + 3 ? z * 100 : z;
          break;
        case 'fp16Edge': {
          // one value sets d = edge for the symmetric (x 8, 16) and Q8_0 (x 127) rules, the rest smaller
          const e = edges[(g / group) % edges.length]!;
          const m = [8, 16, 127][(g / group) % 3]!;
          x[i] = i === g + 7 ? -m * e : z * e;
          break;
        }
      }
    }
  }
  return x;
}

/**
 * A Q3_K super-block whose 16 sub-blocks (16 normals from Rng(seed) each) all change a level in the
 * fifth and last refinement pass of make_q3_quants (seeds found by a dev-time search: 22 in 200 000).
 */
function q3FivePassRow(): Float32Array {
  const seeds = [12701, 19833, 23508, 67229, 71012, 80763, 96682, 97758, 99233, 99488, 107854, 108517];
  seeds.push(109870, 121554, 122226, 130688);
  const x = new Float32Array(256);
  seeds.forEach((seed, j) => {
    const rng = new Rng(seed);
    for (let i = 0; i < 16; i++) x[16 * j + i] = rng.nextNormal();
  });
  return x;
}

function imatrices(rng: Rng, n: number): Float32Array[] {
  return [
    Float32Array.from({ length: n }, () => 0.01 + 10 * rng.nextFloat()),
    Float32Array.from({ length: n }, () => (rng.nextFloat() < 0.3 ? 0 : rng.nextFloat())),
    Float32Array.from({ length: n }, () => 10 ** (12 * rng.nextFloat() - 6)),
  ];
}

/** Row length per type: odd block counts for the 32-weight types (lane padding), 2 super-blocks else. */
const rowLength = (name: GgmlTypeName): number =>
  GGML_REFERENCE_CODECS[name].info.blockSize === 32 ? 32 * 7 : 512;

describe('ggml fast codecs == reference (byte for byte)', () => {
  const golden = JSON.parse(readFileSync(new URL('../golden/ggml_quants.json', import.meta.url), 'utf8')) as {
    inputs: { name: string; f32hex: string }[];
  };
  const goldenRows = golden.inputs.map((r) => {
    const u = new Uint32Array(r.f32hex.length / 8);
    for (let i = 0; i < u.length; i++) u[i] = Number.parseInt(r.f32hex.slice(8 * i, 8 * i + 8), 16);
    return { name: r.name, x: new Float32Array(u.buffer) };
  });

  for (const name of NAMES) {
    it(`${name}: golden rows, random and odd rows, with and without imatrix`, () => {
      for (const { name: rowName, x } of goldenRows) {
        if (x.length % GGML_REFERENCE_CODECS[name].info.blockSize !== 0) continue;
        const rng = new Rng(x.length);
        checkAll(name, x, x.length, imatrices(rng, x.length), `golden ${rowName}`);
      }
      const rng = new Rng(2024);
      const n = rowLength(name);
      if (name === 'Q3_K') checkAll(name, q3FivePassRow(), 256, [], 'five refinement passes');
      for (let t = 0; t < 6; t++) {
        const x =
          t === 0
            ? Float32Array.from({ length: 3 * n }, () => rng.nextNormal())
            : oddRow(rng, 3 * n, t % 2 ? 16 : 32);
        xCopies.set(x, x.slice());
        checkAll(name, x, n, imatrices(rng, n), `random#${t}`);
      }
    });
  }

  it('arbitrary finite float32 rows (fast-check), every type', () => {
    const row = fc
      .integer({ min: 1, max: 2 })
      .chain((k) =>
        fc.float32Array({ minLength: 256 * k, maxLength: 256 * k, noNaN: true, noDefaultInfinity: true }),
      );
    fc.assert(
      fc.property(
        row,
        fc.float32Array({ minLength: 256, maxLength: 256, noNaN: true, min: 0, max: 1e6 }),
        (x, im) => {
          for (const name of NAMES) checkAll(name, x, 256, [im], 'fast-check');
        },
      ),
      { numRuns: 25, seed: 7 },
    );
  });

  it('chunk boundaries: the IQ4_NL ref carries the previous levels into a zero block; imatrix rows', () => {
    // the kernel encodes 2^18 values per call: a zero block right after the boundary takes the last
    // block's levels from the previous call, as in the reference
    const rng = new Rng(5);
    const x = Float32Array.from({ length: 66 * 4096 }, () => rng.nextNormal());
    x.fill(0, 1 << 18, (1 << 18) + 64);
    for (const name of ['IQ4_NL', 'Q4_0', 'Q5_1'] as const) {
      const ref = GGML_REFERENCE_CODECS[name];
      sameBytes(FAST.get(name)!.quantizeRef(x), ref.quantizeRef(x), `${name} long quantizeRef`);
      sameBytes(FAST.get(name)!.quantize(x, x.length, null), ref.quantize(x, x.length, null), `${name} long`);
    }
    // 65 rows of 4096 with an imatrix: whole rows per call, two calls
    const y = x.subarray(0, 65 * 4096);
    const im = imatrices(rng, 4096)[0]!;
    for (const name of ['Q4_0', 'Q6_K'] as const) {
      const ref = GGML_REFERENCE_CODECS[name];
      sameBytes(FAST.get(name)!.quantize(y, 4096, im), ref.quantize(y, 4096, im), `${name} imatrix rows`);
    }
  });

  it('MXFP4 shared exponent at every binade threshold of the rounded log2', () => {
    const t = mxfp4Thresholds();
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const bitsOf = (v: number): number => {
      f[0] = v;
      return u[0]!;
    };
    const valueOf = (b: number): number => {
      u[0] = b;
      return f[0]!;
    };
    const amaxes: number[] = [];
    for (let k = -149; k <= 127; k++) {
      const lo = k >= -126 ? (k + 127) << 23 : 1 << (k + 149);
      amaxes.push(valueOf(lo), valueOf(lo + 1));
      const th = t[k + 149]!;
      if (Number.isFinite(th)) {
        const b = bitsOf(th);
        // the threshold is exact: its rounded log2 floors above k, the float below does not
        assert.ok(Math.floor(Math.fround(Math.log2(th))) > k, `k=${k}`);
        assert.ok(Math.floor(Math.fround(Math.log2(valueOf(b - 1)))) <= k, `k=${k}`);
        amaxes.push(valueOf(b - 1), th, valueOf(b + 1));
      }
    }
    const x = new Float32Array(32 * amaxes.length);
    amaxes.forEach((a, i) => {
      for (let j = 0; j < 32; j++) x[32 * i + j] = a * (((j * 7) % 32) / 32) * (j % 2 ? -1 : 1);
      x[32 * i + (i % 32)] = i % 3 ? a : -a;
    });
    sameBytes(
      FAST.get('MXFP4')!.quantizeRef(x),
      GGML_REFERENCE_CODECS.MXFP4.quantizeRef(x),
      'MXFP4 thresholds',
    );
  });

  it('decoders on random block bytes (any fp16 scale: subnormal, inf, NaN)', () => {
    const rng = new Rng(11);
    for (const name of NAMES) {
      const { blockSize, bytesPerBlock } = GGML_REFERENCE_CODECS[name].info;
      const nb = 40;
      const bytes = Uint8Array.from({ length: nb * bytesPerBlock }, () => rng.nextU32() & 0xff);
      const n = nb * blockSize;
      sameFloats(
        FAST.get(name)!.dequantize(bytes, n),
        GGML_REFERENCE_CODECS[name].dequantize(bytes, n),
        `${name} random bytes`,
      );
    }
  });

  it('bad input: the same one-line errors as the reference', () => {
    for (const name of NAMES) {
      const ref = GGML_REFERENCE_CODECS[name];
      const fast = FAST.get(name)!;
      const bs = ref.info.blockSize;
      const message = (f: () => unknown): string => {
        try {
          f();
        } catch (e) {
          return (e as Error).message;
        }
        return 'no error';
      };
      const x = new Float32Array(bs * 2);
      const cases: [string, (c: GgmlCodec) => unknown][] = [
        ['odd length', (c) => c.quantizeRef(new Float32Array(bs + 1))],
        ['empty', (c) => c.quantizeRef(new Float32Array(0))],
        ['bad row', (c) => c.quantize(x, bs + 1, null)],
        ['rows', (c) => c.quantize(new Float32Array(bs * 3), bs * 2, null)],
        ['imatrix', (c) => c.quantize(x, bs, new Float32Array(bs - 1))],
        ['into bytes', (c) => c.quantizeInto(x, bs, null, new Uint8Array(ref.info.bytesPerBlock))],
        ['into rows', (c) => c.quantizeInto(x, bs + 1, null, new Uint8Array(2 * ref.info.bytesPerBlock))],
        ['decode n', (c) => c.dequantize(new Uint8Array(ref.info.bytesPerBlock), bs + 1)],
        ['decode bytes', (c) => c.dequantize(new Uint8Array(ref.info.bytesPerBlock + 1), bs)],
      ];
      for (const [what, f] of cases) {
        const want = message(() => f(ref));
        assert.notEqual(want, 'no error', `${name} ${what}`);
        assert.equal(
          message(() => f(fast)),
          want,
          `${name} ${what}`,
        );
      }
    }
  });
});

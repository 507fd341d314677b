/**
 * Float64 data rounded once (src/formats/round64.ts) against the exact BigInt oracle (oracle.ts), bit for
 * bit, for every float format we name (registered, custom, and wider than float32 up to e11m52) and every
 * rounding mode, on the cases that break a float32 detour: exact ties, values a hair off a tie (whose
 * float32 rounding lands on the tie), subnormal steps and the half-step below the smallest value, the
 * overflow threshold, double subnormals and specials, plus random doubles over the whole range. Three
 * implementations must agree with the oracle: the typed-array chop64, the per-value reference, and
 * decode(encode(x)) (formats of <= 53 bits); stochastic modes use the same Rng draws in the oracle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import {
  chop,
  chopReference,
  chop64Reference,
  decode,
  decodeBig,
  encode,
  encodeArray,
  encodeBig,
  type FloatSpec,
  type FormatSpec,
  FORMATS,
  formatInfo,
  getFormat,
  intSpec,
  parseFormat,
  ROUNDINGS,
  type Rounding,
} from '../../src/formats/index.ts';
import { floatLayout64 } from '../../src/formats/minifloat.ts';
import { round64Value } from '../../src/formats/round64.ts';
import { oracleRoundDouble, oracleRoundInt, residual32 } from './oracle.ts';

const WIDE = ['e8m40', 'e11m10', 'e11m52', 'fp64', 'e10m30', 'e11m51', 'e9m23', 'ue11m52', 'e5m30'].map((n) =>
  parseFormat(n),
);
const CUSTOM = [
  parseFormat('e3m4', { bias: 4, subnormals: false, nan: 'all-ones' }),
  parseFormat('ue5m3'),
  parseFormat('e2m0'),
  parseFormat('e5m10', { saturate: true }),
  parseFormat('fp8_e4m3', { subnormals: false }),
  parseFormat('e8m23', { bias: 100 }),
  parseFormat('e5m2', { bias: -20 }), // steps above 1 at tiny values: a/q underflows for double subnormals
];
const FLOATS = [...FORMATS.filter((f) => f.kind === 'float'), ...CUSTOM, ...WIDE] as FloatSpec[];

/** Same double, compared bit for bit (NaN equals NaN, -0 differs from 0). */
function same(a: number, b: number): boolean {
  return Object.is(a, b);
}

function ulp64(x: number): number {
  const a = Math.abs(x);
  if (a === 0 || !Number.isFinite(a)) return Number.MIN_VALUE;
  const e = Math.max(Math.floor(Math.log2(a)), -1022);
  let u = 2 ** (e - 52);
  // log2 can be off by one near powers of two; settle on the true spacing
  while (a + u / 2 !== a && u > Number.MIN_VALUE && a + u / 4 !== a) u /= 2;
  return Math.max(u, Number.MIN_VALUE);
}

/** The inputs that catch a double rounding or a wrong boundary, for one format. */
function casesFor(spec: FloatSpec, rng: Rng): number[] {
  const info = formatInfo(spec);
  const M = spec.manBits;
  const stepAt = (v: number): number => {
    const a = Math.abs(v);
    if (a < info.minNormal) return info.minSubnormal === info.minNormal ? info.minNormal : info.minSubnormal;
    return 2 ** (Math.floor(Math.log2(a)) - M);
  };
  const anchors = [
    1,
    1.5,
    3,
    info.minNormal,
    info.minNormal * 1.25,
    info.minSubnormal,
    3 * info.minSubnormal,
  ];
  anchors.push(info.maxFinite, info.maxFinite / 2, info.maxFinite / 3, 0.1, 1 / 3, 1e-5, 65504, 448, 2 ** 20);
  const xs: number[] = [];
  const push = (v: number) => {
    if (Number.isFinite(v)) xs.push(v, -v);
  };
  for (const a of anchors) {
    if (!(a > 0) || !Number.isFinite(a)) continue;
    const v = chop(spec, a); // a value of the format near the anchor (the inputs only need to be near)
    if (!Number.isFinite(v) || v === 0) continue;
    const q = stepAt(v);
    const tie = v + q / 2;
    push(v);
    push(tie);
    for (const d of [ulp64(tie), q * 2 ** -30, q * 2 ** -40, q * 2 ** -20]) {
      push(tie + d); // float32 rounds these onto the tie
      push(tie - d);
    }
    push(v + q / 4);
    push(v + (3 * q) / 4);
    push(v - ulp64(v));
    push(v + ulp64(v));
  }
  // below the smallest value and around the double's own subnormals
  const s = info.minSubnormal;
  for (const v of [
    s / 2,
    s / 2 + ulp64(s / 2),
    s / 2 - ulp64(s / 2),
    s / 4,
    (3 * s) / 4,
    5e-324,
    1e-310,
    1e-300,
  ])
    push(v);
  // overflow: max finite + half a step is the round-to-nearest threshold
  const big = info.maxFinite;
  const qb = stepAt(big);
  for (const v of [big + qb / 2, big + qb / 2 + ulp64(big), big + qb / 2 - ulp64(big), big * 1.5, big * 2])
    push(v);
  push(Number.MAX_VALUE);
  xs.push(0, -0, Infinity, -Infinity, Number.NaN);
  // random doubles: any bit pattern, and values spread over the format's exponent range
  const f64 = new Float64Array(1);
  const u32 = new Uint32Array(f64.buffer);
  for (let i = 0; i < 60; i++) {
    u32[0] = rng.nextU32();
    u32[1] = rng.nextU32();
    xs.push(f64[0]!);
    const e =
      Math.log2(info.minSubnormal) -
      2 +
      rng.nextFloat() * (Math.log2(info.maxFinite) - Math.log2(info.minSubnormal) + 3);
    xs.push((rng.nextFloat() < 0.5 ? -1 : 1) * 2 ** e * (1 + rng.nextFloat()));
  }
  return xs;
}

const MODES: { rounding: Rounding; randomBits?: number }[] = [
  ...ROUNDINGS.map((rounding) => ({ rounding })),
  { rounding: 'stochastic', randomBits: 5 },
];

test('float64 chop, the per-value reference and decode(encode) equal the exact oracle bit for bit', () => {
  const rng = new Rng(22);
  let checked = 0;
  for (const spec of FLOATS) {
    const xs = Float64Array.from(casesFor(spec, rng));
    const L = floatLayout64(spec);
    for (const m of MODES) {
      for (const flush of [false, true]) {
        const opts = { ...m, seed: 7, flushSubnormals: flush };
        const fast = chop(spec, xs, opts);
        const ref = chop64Reference(spec, xs, opts);
        const draws = new Rng(7);
        const stochastic = m.rounding.startsWith('stochastic');
        for (let i = 0; i < xs.length; i++) {
          const u = stochastic ? draws.nextU32() : 0;
          const want = oracleRoundDouble(spec, xs[i]!, { ...m, u32: u, flushSubnormals: flush });
          const where = `${spec.name} ${m.rounding}${m.randomBits ? `/${m.randomBits}` : ''}${flush ? ' flush' : ''} x=${xs[i]}`;
          assert.ok(same(ref[i]!, want), `${where}: reference ${ref[i]} oracle ${want}`);
          assert.ok(same(fast[i]!, want), `${where}: chop ${fast[i]} oracle ${want}`);
          if (L.bits <= 53 && !flush) {
            const c = encode(spec, xs[i]!, { rng: { nextU32: () => u } as Rng, ...m });
            assert.ok(
              same(decode(spec, c), want),
              `${where}: decode(encode) ${decode(spec, c)} oracle ${want}`,
            );
          }
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 100_000, `${checked} cases`);
});

test('stochastic draws at the threshold: up iff u32 < frac * 2^32, against the oracle', () => {
  for (const spec of [
    getFormat('fp16'),
    getFormat('bf16'),
    getFormat('fp8_e4m3fn'),
    parseFormat('e11m30'),
  ] as FloatSpec[]) {
    const L = floatLayout64(spec);
    for (const x of [1 + 2 ** -11 + 2 ** -40, 1.1, 1e-6, -3.3e-5, 5000.123]) {
      const t = residual32(spec, x);
      for (const u of [0, t - 1, t, t + 1, 2 ** 31, 2 ** 32 - 1]) {
        if (u < 0 || u >= 2 ** 32) continue;
        for (const randomBits of [0, 3, 31]) {
          const want = oracleRoundDouble(spec, x, { rounding: 'stochastic', u32: u, randomBits });
          const got = round64Value(L, x, 'stochastic', u, randomBits, spec.overflow, false);
          assert.ok(same(got, want), `${spec.name} x=${x} u=${u} r=${randomBits}: ${got} vs ${want}`);
        }
      }
    }
  }
});

test('integer formats round float64 data once (against the oracle)', () => {
  const rng = new Rng(5);
  const xs = [
    2.5,
    -2.5,
    3.5,
    0.5 + 2 ** -40,
    127.5,
    127.49999999999999,
    -128.5,
    1e300,
    -1e300,
    Number.NaN,
    4.5e15 + 0.5,
  ];
  for (let i = 0; i < 200; i++) xs.push((rng.nextFloat() - 0.5) * 600);
  for (const spec of [intSpec(8, true), intSpec(8, true, true), intSpec(4, false), intSpec(16, true)]) {
    for (const m of MODES) {
      const got = chop(spec, Float64Array.from(xs), { ...m, seed: 3 });
      const draws = new Rng(3);
      xs.forEach((x, i) => {
        const u = m.rounding.startsWith('stochastic') ? draws.nextU32() : 0;
        const want = oracleRoundInt(spec, x, { ...m, u32: u });
        assert.ok(same(got[i]!, want), `${spec.name} ${m.rounding} x=${x}: ${got[i]} vs ${want}`);
      });
    }
  }
});

test('fp64 as a target: identity on doubles, codes are the double bits; encodeBig/decodeBig round trip', () => {
  const fp64 = getFormat('fp64') as FloatSpec;
  const rng = new Rng(64);
  const f = new Float64Array(1);
  const w = new BigUint64Array(f.buffer);
  for (let i = 0; i < 2000; i++) {
    w[0] = (BigInt(rng.nextU32()) << 32n) | BigInt(rng.nextU32());
    const x = f[0]!;
    if (Number.isNaN(x)) continue;
    for (const rounding of ROUNDINGS) assert.ok(same(chop(fp64, x, { rounding }), x));
    assert.equal(encodeBig(fp64, x), w[0]);
    assert.ok(same(decodeBig(fp64, w[0]!), x));
  }
  for (const spec of [...WIDE, getFormat('fp16'), getFormat('fp8_e4m3fn')] as FloatSpec[]) {
    for (const x of [1.1, -2.5e-3, 1e300, -0, 0, Number.NaN, -Infinity, 7e-310]) {
      const v = chop(spec, x);
      const back = decodeBig(spec, encodeBig(spec, x));
      assert.ok(
        same(back, v) || (Number.isNaN(back) && Number.isNaN(v)),
        `${spec.name} ${x}: ${back} vs ${v}`,
      );
    }
  }
  assert.throws(() => encode(fp64, 1), /64 bits.*encodeBig/);
  // encodeArray of float64 data: the same codes as encode, one rounding each
  const xs = Float64Array.of(1 + 2 ** -11 + 2 ** -40, -3.3e-6, 70000, Number.NaN);
  const fp16 = getFormat('fp16');
  assert.deepEqual(
    [...encodeArray(fp16, xs)],
    [...xs].map((x) => encode(fp16, x)),
  );
  assert.equal(encodeArray(fp16, xs)[0], 0x3c01);
});

/**
 * The rows where the old path (a Float32Array: every input first rounded to float32, then to the format)
 * was wrong, by the exact oracle. These are the rows docs/numerics.md names.
 */
export const FLOAT32_PATH_WRONG: readonly { format: string; rounding: Rounding; x: number; why: string }[] = [
  {
    format: 'fp16',
    rounding: 'nearest-even',
    x: 1 + 2 ** -11 + 2 ** -40,
    why: 'float32 lands on the fp16 tie',
  },
  { format: 'fp16', rounding: 'up', x: 1 + 2 ** -52, why: 'float32 drops the residual' },
  { format: 'fp16', rounding: 'down', x: -(1 + 2 ** -52), why: 'float32 drops the residual' },
  {
    format: 'bf16',
    rounding: 'nearest-even',
    x: 1 + 2 ** -8 + 2 ** -30,
    why: 'float32 lands on the bf16 tie',
  },
  { format: 'fp8_e4m3fn', rounding: 'nearest-even', x: 1 + 2 ** -4 + 2 ** -30, why: 'tie after float32' },
  {
    format: 'fp16',
    rounding: 'nearest-even',
    x: 65519.99999999,
    why: 'float32 rounds up to the overflow tie',
  },
  { format: 'fp16', rounding: 'nearest-even', x: 2 ** -25 + 2 ** -60, why: 'subnormal tie after float32' },
  { format: 'fp16', rounding: 'up', x: 1e-50, why: 'float32 underflows to 0' },
  { format: 'bf16', rounding: 'toward-zero', x: 1e39, why: 'float32 overflows to inf' },
  { format: 'fp32', rounding: 'down', x: 0.1, why: 'float32 store rounds to nearest, up here' },
  { format: 'fp32', rounding: 'toward-zero', x: 1 / 3 + 1e-17, why: 'the format itself is float32' },
  { format: 'tf32', rounding: 'nearest-odd', x: 1 + 2 ** -30, why: 'float32 makes it exact' },
  { format: 'fp16', rounding: 'stochastic', x: 1 + 2 ** -40, why: 'P(up) = 2^-30 becomes 0' },
];

test('the float32 path was wrong on the named rows; the float64 path equals the oracle', () => {
  for (const row of FLOAT32_PATH_WRONG) {
    const spec = getFormat(row.format) as FloatSpec;
    // stochastic: find a draw that separates the two (u = 0 goes up iff the residual is > 0)
    const opts = { rounding: row.rounding, rng: { nextU32: () => 0 } as Rng };
    const want = oracleRoundDouble(spec, row.x, { rounding: row.rounding, u32: 0 });
    const now = chop(spec, row.x, { ...opts, rng: { nextU32: () => 0 } as Rng });
    // the float32 path's own reference (the fast kernels equal it bit for bit; they need a real Rng's state)
    const old = chopReference(spec, Float32Array.of(row.x), {
      ...opts,
      rng: { nextU32: () => 0 } as Rng,
    })[0]!;
    assert.ok(same(now, want), `${row.format} ${row.rounding} ${row.x}: ${now} vs oracle ${want}`);
    assert.ok(
      !same(old, want),
      `${row.format} ${row.rounding} ${row.x}: the float32 path gives ${old} = oracle`,
    );
  }
});

test('nearest-odd: exact values stay, others go to the odd neighbour, overflow stops at max finite', () => {
  const fp16 = getFormat('fp16');
  assert.equal(chop(fp16, 1 + 2 ** -12, { rounding: 'nearest-odd' }), 1 + 2 ** -10);
  assert.equal(chop(fp16, 1 + 2 ** -10 + 2 ** -12, { rounding: 'nearest-odd' }), 1 + 2 ** -10);
  assert.equal(chop(fp16, 1.5, { rounding: 'nearest-odd' }), 1.5);
  assert.equal(chop(fp16, 1e6, { rounding: 'nearest-odd' }), 65504);
  assert.equal(chop(getFormat('fp8_e4m3fn'), -460, { rounding: 'nearest-odd' }), -448);
  // Boldo-Melquiond: RN_p(RO_{p+2}(x)) = RN_p(x): fp16 (p = 11) via round-to-odd to e5m12 (p = 13)
  const mid = parseFormat('e5m12');
  const rng = new Rng(11);
  for (let i = 0; i < 5000; i++) {
    const x = (rng.nextFloat() - 0.5) * 2 ** (rng.nextFloat() * 30 - 15);
    assert.ok(same(chop(fp16, chop(mid, x, { rounding: 'nearest-odd' })), chop(fp16, x)), `x=${x}`);
  }
  // the float32 fast path falls back to the reference for it
  const xs = Float32Array.of(1 + 2 ** -12, -3.0001, 1e-7, 70000);
  assert.deepEqual(
    [...chop(fp16, xs, { rounding: 'nearest-odd' })],
    [...xs].map((x) => chop(fp16, x, { rounding: 'nearest-odd' })),
  );
});

test('wide formats are float64-only: the float32 APIs refuse them with one clear error', () => {
  for (const spec of WIDE as FormatSpec[]) {
    assert.throws(() => chop(spec, new Float32Array(2)), /not all float32/);
  }
});

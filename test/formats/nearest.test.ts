/**
 * Round-to-nearest (ties-to-even and ties-away) and the directed modes against brute force over each
 * format's value table, for random and adversarial inputs (exact ties, one float32 ulp either side of
 * ties, max, the overflow boundary, the subnormal boundary, tiny values, +-0, +-inf, NaN).
 * Checks encode+decode, chop (fast path) and chopReference.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import {
  type CastOptions,
  chop,
  chopReference,
  decode,
  encode,
  type FormatSpec,
  formatBits,
  formatInfo,
  getFormat,
  type Rounding,
} from '../../src/formats/index.ts';
import { adversarialInputs, bracket, bruteNearest, type Ladder, ladder, sameValue } from './brute.ts';
import { SMALL } from './cases.ts';

/** Expected value of a cast under the brute-force model, with the format's overflow/NaN/sign rules. */
function expected(L: Ladder, x: number, mode: Rounding): number {
  const spec = L.spec;
  const info = formatInfo(spec);
  const isFloat = spec.kind === 'float';
  if (Number.isNaN(x)) return info.hasNan ? Number.NaN : isFloat ? 0 : expected(L, 0, mode);
  if (isFloat && !spec.signed && x < 0) return info.hasNan ? Number.NaN : 0;
  if (isFloat && spec.zero === false && x === 0) return Number.NaN;
  const policy = isFloat ? spec.overflow : 'saturate';
  const overflow = (sign: number): number =>
    isFloat && policy === 'ieee' && info.hasInf
      ? sign * Infinity
      : isFloat && policy !== 'saturate' && info.hasNan
        ? Number.NaN
        : sign * info.maxFinite;
  if (!Number.isFinite(x)) {
    if (!isFloat) return x > 0 ? L.values[L.values.length - 1]! : L.values[0]!;
    if (info.hasInf) return x;
    return policy === 'saturate' || !info.hasNan ? Math.sign(x) * info.maxFinite : Number.NaN;
  }
  let r: number;
  if (mode === 'nearest-even' || mode === 'nearest-away') {
    r = bruteNearest(L, x, mode === 'nearest-away');
    if (!Number.isFinite(r)) return overflow(Math.sign(r));
  } else {
    const { down, up } = bracket(L, x);
    let towardZero = mode === 'toward-zero' ? (x >= 0 ? 'down' : 'up') : mode;
    // codebooks without 0: toward-zero between entries of opposite signs keeps x's sign (lut.ts)
    if (mode === 'toward-zero' && down !== undefined && up !== undefined && down < 0 && up > 0)
      towardZero = x > 0 ? 'up' : 'down';
    const pick = towardZero === 'down' ? down : up;
    if (pick === undefined) {
      // past an end of the finite range
      if (!isFloat) return towardZero === 'down' ? L.values[0]! : L.values[L.values.length - 1]!;
      if (spec.zero === false && x > 0 && towardZero === 'down' && x < info.minSubnormal)
        return info.minSubnormal;
      if (x > 0 && towardZero === 'down') return info.maxFinite;
      if (x < 0 && towardZero === 'up') return -info.maxFinite;
      return overflow(Math.sign(x));
    }
    r = pick;
  }
  if (r === 0) {
    const negZero = isFloat && spec.signed && spec.nan !== 'neg-zero' && (x < 0 || Object.is(x, -0));
    return negZero ? -0 : 0;
  }
  return r;
}

function randomInputs(L: Ladder, rng: Rng, n: number): number[] {
  const v = L.values;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.nextU32() % v.length;
    const a = v[k]!;
    const b = v[Math.min(k + 1, v.length - 1)]!;
    const span = b === a ? Math.abs(a) + 1 : b - a;
    const x = Math.fround(a + rng.nextFloat() * span * (rng.nextU32() % 8 === 0 ? 3 : 1));
    out.push(rng.nextU32() % 16 === 0 ? -x : x);
  }
  return out;
}

const MODES: readonly Rounding[] = ['nearest-even', 'nearest-away', 'toward-zero', 'up', 'down'];

function check(spec: FormatSpec, xs: number[], mode: Rounding): void {
  const L = ladder(spec);
  const opts: CastOptions = { rounding: mode };
  const src = Float32Array.from(xs);
  const fast = chop(spec, src, opts);
  const ref = chopReference(spec, src, opts);
  for (let i = 0; i < xs.length; i++) {
    const x = src[i]!;
    if (spec.kind === 'float' && !spec.signed && x < 0 && !Number.isNaN(x)) continue; // checked below
    const want = expected(L, x, mode);
    const got = decode(spec, encode(spec, x, opts));
    const msg = `${spec.name} ${mode} x=${x}: want ${want}`;
    assert.ok(sameValue(got, want), `${msg}, encode/decode gave ${got}`);
    assert.ok(sameValue(fast[i]!, want), `${msg}, chop gave ${fast[i]}`);
    assert.ok(sameValue(ref[i]!, want), `${msg}, chopReference gave ${ref[i]}`);
  }
}

for (const spec of SMALL) {
  // 16-bit formats: each brute-force search scans 65536 values, so fewer inputs (the fast-path
  // differential test covers them with many more)
  const big = formatBits(spec) > 12;
  if (spec.kind === 'int' && spec.bits > 8) continue; // int9..16 use the same arithmetic as int8
  test(`${spec.name}: nearest and directed modes match brute force`, () => {
    const L = ladder(spec);
    const rng = new Rng(0x5eed);
    const xs = [...adversarialInputs(L, big ? 6 : 400), ...randomInputs(L, rng, big ? 24 : 600)];
    for (const mode of MODES) check(spec, xs, mode);
  });
}

test('unsigned formats: negative inputs give NaN (or 0 without NaN), -0 gives +0', () => {
  for (const name of ['e8m0fnu', 'ue5m3']) {
    const spec = name === 'ue5m3' ? SMALL.find((f) => f.name === 'ue5m3')! : getFormat(name);
    assert.ok(Number.isNaN(decode(spec, encode(spec, -1))));
    assert.ok(Number.isNaN(chop(spec, Float32Array.of(-3))[0]!));
  }
  const u = SMALL.find((f) => f.name === 'ue5m3')!;
  assert.ok(Object.is(chop(u, Float32Array.of(-0))[0], 0));
});

test('signed zero is preserved; fnuz formats have no -0', () => {
  for (const name of ['fp16', 'bf16', 'fp8_e4m3fn', 'fp4_e2m1fn', 'fp6_e2m3fn']) {
    const spec = getFormat(name);
    const out = chop(spec, Float32Array.of(-0, -1e-44, 0, 1e-44));
    assert.ok(Object.is(out[0], -0) && Object.is(out[1], -0), name);
    assert.ok(Object.is(out[2], 0) && Object.is(out[3], 0), name);
  }
  const fnuz = getFormat('fp8_e4m3fnuz');
  assert.equal(encode(fnuz, -0), 0);
  assert.ok(Object.is(chop(fnuz, Float32Array.of(-1e-30))[0], 0));
});

test('overflow policies: ieee, saturate, nan', () => {
  const e4 = getFormat('fp8_e4m3fn');
  assert.ok(Number.isNaN(decode(e4, encode(e4, 1000)))); // no inf: ieee overflow is NaN
  assert.equal(decode(e4, encode(e4, 1000, { overflow: 'saturate' })), 448);
  assert.equal(decode(e4, encode(e4, -Infinity, { overflow: 'saturate' })), -448);
  const e5 = getFormat('fp8_e5m2');
  assert.equal(decode(e5, encode(e5, 1e6)), Infinity);
  assert.equal(decode(e5, encode(e5, 1e6, { overflow: 'saturate' })), 57344);
  assert.equal(decode(e5, encode(e5, Infinity, { overflow: 'saturate' })), Infinity); // inf stays inf
  assert.ok(Number.isNaN(decode(e5, encode(e5, 1e6, { overflow: 'nan' }))));
  const fp4 = getFormat('fp4_e2m1fn');
  assert.equal(decode(fp4, encode(fp4, 1e6)), 6);
  assert.equal(decode(fp4, encode(fp4, -Infinity)), -6);
  // directed modes never overflow toward smaller magnitude (IEEE 754 7.4)
  assert.equal(decode(e5, encode(e5, 1e6, { rounding: 'toward-zero' })), 57344);
  assert.equal(decode(e5, encode(e5, -1e6, { rounding: 'up' })), -57344);
  assert.equal(decode(e5, encode(e5, -1e6, { rounding: 'down' })), -Infinity);
});

test('NaN handling per format', () => {
  assert.equal(encode(getFormat('fp8_e4m3fn'), Number.NaN), 0x7f);
  assert.equal(encode(getFormat('fp8_e4m3fnuz'), Number.NaN), 0x80);
  assert.equal(encode(getFormat('fp16'), Number.NaN), 0x7e00);
  assert.equal(encode(getFormat('bf16'), Number.NaN), 0x7fc0);
  assert.equal(encode(getFormat('e8m0fnu'), Number.NaN), 0xff);
  assert.equal(encode(getFormat('fp4_e2m1fn'), Number.NaN), 0);
  assert.equal(encode(getFormat('int8'), Number.NaN), 0);
  assert.equal(encode(getFormat('nf4'), Number.NaN), 7);
});

test('flushSubnormals rounds to 0 or min normal like a format without subnormals', () => {
  const spec = getFormat('fp8_e4m3fn');
  const noSub = SMALL.find((f) => f.name === 'fp8_e4m3fn(no-subnormals)')!;
  const rng = new Rng(3);
  const xs = Float32Array.from({ length: 2000 }, () => (rng.nextFloat() - 0.5) * 2 ** -5);
  for (const mode of MODES) {
    const a = chop(spec, xs, { rounding: mode, flushSubnormals: true });
    const b = chop(noSub, xs, { rounding: mode });
    const c = chopReference(spec, xs, { rounding: mode, flushSubnormals: true });
    for (let i = 0; i < xs.length; i++) {
      assert.ok(sameValue(a[i]!, b[i]!) && sameValue(a[i]!, c[i]!), `${mode} ${xs[i]}`);
      assert.ok(a[i] === 0 || Math.abs(a[i]!) >= 2 ** -6, `${mode} ${xs[i]} -> ${a[i]}`);
    }
  }
});

/**
 * chopBuffer (data already in WebAssembly memory, rounded in place with no copy) and chop on views of
 * its memory, against the reference decode(encode(x)) and the TypeScript fast path, bit for bit:
 * random bit patterns plus NaN, +-inf, float32 and target subnormals, exact ties on both grids and
 * values around max finite, at lengths that cross the kernel's per-call chunk and leave odd tails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bitsToF32 } from '../../src/core/bits.ts';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  type CastOptions,
  chop,
  chopBuffer,
  chopReference,
  type FormatSpec,
  formatInfo,
  getFormat,
  kernelFloat32Array,
  ROUNDINGS,
} from '../../src/formats/index.ts';
import { forceChopPath } from '../../src/formats/chop-fast.ts';
import { CHUNK, memoryOf, wasmChopAvailable } from '../../src/formats/chop-wasm.ts';
import { assertSameBits } from './cases.ts';

function values(spec: FormatSpec, n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const info = formatInfo(spec);
  const specials = [0, -0, Infinity, -Infinity, Number.NaN, bitsToF32(0xffc00001), 2 ** -149, -(2 ** -149)];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const kind = rng.nextU32() % 10;
    let v: number;
    if (kind === 0)
      v = bitsToF32(rng.nextU32()); // any bit pattern: NaNs, infs, every exponent
    else if (kind === 1) v = specials[rng.nextU32() % specials.length]!;
    else if (kind === 2)
      v = bitsToF32(rng.nextU32() & 0x007fffff); // float32 subnormals
    else if (kind === 3)
      v = rng.nextFloat() * info.minNormal; // target subnormal range
    else if (kind === 4)
      v = ((rng.nextU32() % 64) + 0.5) * info.minSubnormal; // subnormal-grid ties
    else if (kind === 5)
      v = 1 + ((rng.nextU32() % 8) + 0.5) * info.epsilon; // normal ties
    else if (kind === 6)
      v = info.maxFinite * (0.9 + 0.2 * rng.nextFloat()); // around max finite
    else v = rng.nextNormal() * 2 ** ((rng.nextU32() % 24) - 12);
    out[i] = rng.nextU32() & 1 ? -v : v;
  }
  return out;
}

const NAMES = ['bf16', 'fp16', 'tf32', 'fp8_e4m3fn', 'fp8_e5m2', 'fp6_e3m2fn', 'fp4_e2m1fn'];

test('WebAssembly SIMD is available, so chopBuffer views live in WebAssembly memory', () => {
  assert.ok(wasmChopAvailable());
  const buf = chopBuffer(getFormat('bf16'), 1000);
  assert.ok(buf.wasm);
  assert.equal(buf.view.length, 1000);
  assert.equal(buf.capacity, 1000);
  assert.equal(buf.view.byteOffset % 64, 0, 'data is cache-line aligned');
});

test('chopInPlace equals the reference and the TypeScript path bit for bit (nearest-even, options)', () => {
  const n = 2 * CHUNK + 3 * 32 + 7; // three kernel calls, then an odd tail
  for (const name of NAMES) {
    const spec = getFormat(name);
    const src = values(spec, n, 11);
    const buf = chopBuffer(spec, n + 100);
    const opts: CastOptions[] = [
      {},
      { flushSubnormals: true },
      { overflow: 'saturate' },
      { overflow: 'nan' },
    ];
    for (const o of opts) {
      const ref = chopReference(spec, src, o);
      forceChopPath('typescript');
      const ts = chop(spec, src, o);
      forceChopPath(undefined);
      assertSameBits(ts, ref, `${name} ${JSON.stringify(o)} TypeScript`, src);
      buf.view.set(src);
      buf.view[n] = 12345; // past n: untouched
      const got = buf.chopInPlace(n, o);
      assert.equal(got.buffer, buf.view.buffer, 'result is a view of the buffer');
      assert.equal(buf.view[n], 12345);
      assertSameBits(got, ref, `${name} ${JSON.stringify(o)} chopInPlace`, src);
    }
  }
});

test('chopInPlace: exceptional lanes (NaN, inf, overflow) in every group position and at call boundaries', () => {
  for (const name of ['bf16', 'fp16', 'fp8_e4m3fn']) {
    const spec = getFormat(name);
    const info = formatInfo(spec);
    const n = CHUNK + 32;
    const rng = new Rng(3);
    const src = new Float32Array(n);
    for (let i = 0; i < n; i++) src[i] = rng.nextNormal();
    // one exceptional lane per group, walking through the lane positions; dense around the boundary
    const special = [Number.NaN, Infinity, -Infinity, info.maxFinite * 1.5, -info.maxFinite * 1.01];
    for (let g = 0; g < n / 32; g += 7) src[g * 32 + (g % 32)] = special[g % 5]!;
    for (let i = CHUNK - 40; i < CHUNK + 8; i += 3) src[i] = special[i % 5]!;
    const ref = chopReference(spec, src);
    const buf = chopBuffer(spec, n);
    buf.view.set(src);
    assertSameBits(buf.chopInPlace(), ref, `${name} chopInPlace`, src);
  }
});

test('chopInPlace with every rounding mode equals the reference (same random stream)', () => {
  const n = 3 * 32 * 37 + 5;
  for (const name of ['bf16', 'fp16', 'fp8_e4m3fn']) {
    const spec = getFormat(name);
    const src = values(spec, n, 5);
    const buf = chopBuffer(spec, n);
    for (const rounding of ROUNDINGS) {
      const o: CastOptions = { rounding, seed: 9 };
      buf.view.set(src);
      assertSameBits(buf.chopInPlace(n, o), chopReference(spec, src, o), `${name} ${rounding}`, src);
    }
  }
});

test('chop on views of a chopBuffer memory: in place, to another (overlapping) view, and out to JS', () => {
  const spec = getFormat('fp16');
  const n = CHUNK + 2 * 32 + 3;
  const src = values(spec, n, 21);
  const ref = chopReference(spec, src);
  const buf = chopBuffer(spec, n + 1000);
  const v = buf.view;
  // shifted by one element (overlapping, unaligned for v128 loads), both directions
  for (const [from, to] of [
    [0, 1],
    [1, 0],
    [0, 999],
  ] as const) {
    v.set(src, from);
    const got = chop(spec, v.subarray(from, from + n), {}, v.subarray(to, to + n));
    assertSameBits(got, ref, `view ${from} -> ${to}`, src);
  }
  // in place on a sub-view, and from WebAssembly memory out to a JavaScript array
  v.set(src, 4);
  assertSameBits(chop(spec, v.subarray(4, 4 + n), {}, v.subarray(4, 4 + n)), ref, 'in place at +4', src);
  v.set(src, 4);
  assertSameBits(chop(spec, v.subarray(4, 4 + n)), ref, 'out to a new array', src);
  // a view of the memory below the data start (the parameter block) goes through the copying path
  const low = new Float32Array(v.buffer, 0, 100);
  low.set(src.subarray(0, 100));
  assertSameBits(chop(spec, low, {}, low), ref.subarray(0, 100), 'below DATA', src);
  low.set(src.subarray(0, 100));
  const lowOut = new Float32Array(v.buffer, 4, 100); // overlapping, one element up
  assertSameBits(chop(spec, low, {}, lowOut), ref.subarray(0, 100), 'below DATA, shifted', src);
});

test('reserve grows the memory, keeps the contents and invalidates old views', () => {
  const spec = getFormat('bf16');
  const buf = chopBuffer(spec, 10);
  const old = buf.view;
  old.set([1.00390625, 3, 5]);
  assert.equal(buf.reserve(5), old, 'no growth needed');
  const grown = buf.reserve(200_000);
  assert.equal(buf.capacity, 200_000);
  assert.equal(buf.view, grown);
  assert.equal(old.length, 0, 'the old view is detached');
  assert.deepEqual([...grown.subarray(0, 3)], [1.00390625, 3, 5]);
  const src = values(spec, 200_000, 8);
  grown.set(src);
  assertSameBits(buf.chopInPlace(), chopReference(spec, src), 'after reserve', src);
});

test('chopBuffer rejects bad sizes with MixqError', () => {
  const spec = getFormat('bf16');
  assert.throws(() => chopBuffer(spec, -1), MixqError);
  assert.throws(() => chopBuffer(spec, 1.5), MixqError);
  const buf = chopBuffer(spec, 8);
  assert.throws(() => buf.chopInPlace(9), MixqError);
  assert.throws(() => buf.reserve(Number.NaN), MixqError);
});

test('with the TypeScript path forced, chopInPlace still equals the reference', () => {
  const spec = getFormat('fp16');
  const src = values(spec, 5000, 13);
  const buf = chopBuffer(spec, 5000);
  buf.view.set(src);
  forceChopPath('typescript');
  try {
    assertSameBits(buf.chopInPlace(), chopReference(spec, src), 'TypeScript in place', src);
  } finally {
    forceChopPath(undefined);
  }
});

test('kernelFloat32Array: chop into it (one copy), in place, and from another kernel memory, every mode', () => {
  const n = CHUNK + 3 * 32 + 7; // a whole scratch chunk and an odd tail
  for (const name of ['bf16', 'fp8_e4m3fn']) {
    const spec = getFormat(name);
    const src = values(spec, n, 21);
    const srcCopy = src.slice();
    const into = kernelFloat32Array(n);
    assert.equal(into.length, n);
    assert.equal(memoryOf(into.buffer) !== undefined, wasmChopAvailable(), 'a view of a kernel memory');
    const other = kernelFloat32Array(n + 4).subarray(4);
    other.set(src);
    for (const rounding of ROUNDINGS) {
      const o: CastOptions = { rounding, seed: 3 };
      const ref = chopReference(spec, src, o);
      into.fill(7);
      assert.equal(chop(spec, src, o, into), into);
      assertSameBits(into, ref, `${name} ${rounding}: JS array into it`, src);
      into.set(src);
      assertSameBits(chop(spec, into, o, into), ref, `${name} ${rounding}: in place`, src);
      assertSameBits(chop(spec, other, o, into), ref, `${name} ${rounding}: from another memory`, src);
      assertSameBits(chop(spec, src, o, new Float32Array(n)), ref, `${name} ${rounding}: JS to JS`, src);
    }
    assert.deepEqual(src, srcCopy, 'the input is not modified');
    assertSameBits(other, src, `${name}: the other memory's source is not modified`, src);
  }
  assert.throws(() => kernelFloat32Array(-1), MixqError);
  assert.throws(() => kernelFloat32Array(1.5), /kernelFloat32Array|length/);
});

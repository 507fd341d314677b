/**
 * The WebAssembly SIMD kernel's group logic (chop-simd.ts): the common path rounds and stores each block
 * at once, keeps the group's inputs in registers and decides per group, by the unsigned max of the range
 * keys, whether any lane was unusual; if so it stores the inputs back and redoes the group. So every
 * unusual kind of value (NaN, inf, overflow region, exactly at and around max finite, below min normal,
 * float32 subnormals, signed zeros) is put at every lane position of a group (every block of the unroll),
 * next to exact ties on the target grid, and the result is compared bit for bit with the reference
 * decode(encode(x)) through both kernel entry points: chop on a JavaScript array (scratch copy) and
 * chopBuffer in place. The kernel's own protocol (count of exceptional groups, their offsets, inputs
 * left intact) is checked directly on one memory.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bitsToF32, f32ToBits } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import { setSimdEnabled } from '../../src/formats/chop-fast.ts';
import { DATA, kernelMemory, SIMD_BLOCK, simdAvailable } from '../../src/formats/chop-simd.ts';
import {
  type CastOptions,
  chop,
  chopBuffer,
  chopReference,
  type FormatSpec,
  formatInfo,
  getFormat,
} from '../../src/formats/index.ts';
import { assertSameBits } from './cases.ts';

/** Values at the edges of the kernel's fast window [lo, hi) and beyond, both signs. */
function specials(spec: FormatSpec): number[] {
  const info = formatInfo(spec);
  const lo = Math.max(f32ToBits(info.minNormal), 0x00800000);
  const hi = f32ToBits(info.maxFinite);
  const bits = [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0x7f7fffff, 0x7f800000, 0x7fc00000, 0x7f800001];
  bits.push(0x7fffffff, 0x00000001, 0x007fffff, 0x00400000, 0);
  const ulp = info.maxFinite * info.epsilon; // spacing just below max finite (a power of two times eps)
  const vals = [...bits.map(bitsToF32), info.maxFinite + ulp / 2, info.maxFinite + ulp / 4];
  vals.push(info.minNormal / 2, info.minSubnormal / 2, info.minSubnormal * 1.5, 2 ** 127, 2 ** -126);
  return [...vals, ...vals.map((v) => -v)];
}

/** One group per (special value, lane position); other lanes: normal values and exact ties. */
function groups(spec: FormatSpec, seed: number): Float32Array {
  const info = formatInfo(spec);
  const rng = new Rng(seed);
  const sp = specials(spec);
  const src = new Float32Array(sp.length * SIMD_BLOCK * SIMD_BLOCK + 64); // + a quiet tail
  for (let i = 0; i < src.length; i++) {
    src[i] =
      i % 3 === 0
        ? (1 + ((rng.nextU32() % 8) + 0.5) * info.epsilon) * (rng.nextU32() & 1 ? -1 : 1) // ties
        : rng.nextNormal();
  }
  let g = 0;
  for (const v of sp) for (let lane = 0; lane < SIMD_BLOCK; lane++, g++) src[g * SIMD_BLOCK + lane] = v;
  return src;
}

const NAMES = ['bf16', 'tf32', 'fp16', 'fp8_e4m3fn', 'fp8_e5m2', 'fp6_e2m3fn', 'fp4_e2m1fn'];
const OPTIONS: CastOptions[] = [{}, { flushSubnormals: true }, { overflow: 'saturate' }];

test('SIMD kernel: every unusual value at every lane of a group, through chop and chopBuffer', () => {
  assert.ok(simdAvailable());
  for (const name of NAMES) {
    const spec = getFormat(name);
    const src = groups(spec, 7);
    const buf = chopBuffer(spec, src.length);
    for (const o of OPTIONS) {
      const what = `${name} ${JSON.stringify(o)}`;
      const ref = chopReference(spec, src, o);
      setSimdEnabled(false);
      const ts = chop(spec, src, o);
      setSimdEnabled(true);
      assertSameBits(ts, ref, `${what} TypeScript`, src);
      assertSameBits(chop(spec, src, o), ref, `${what} chop (scratch copy)`, src);
      buf.view.set(src);
      assertSameBits(buf.chopInPlace(src.length, o), ref, `${what} chopInPlace`, src);
    }
  }
});

test('SIMD kernel protocol: exceptional groups are listed by byte offset and keep their inputs', () => {
  const mem = kernelMemory(64 * SIMD_BLOCK)!;
  assert.ok(mem);
  // bf16 constants (the integer lane below min normal): window [0, 0x7f7f0000)
  const rne = mem.kernel({ lo: 0x00800000, hi: 0x7f7f0000, D: 16, C: 1, sub: 'int' })!;
  const n = 64 * SIMD_BLOCK;
  const base = DATA >>> 2;
  const rng = new Rng(5);
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = rng.nextNormal();
  const bad = new Map<number, number>([
    [3 * SIMD_BLOCK + 0, Number.NaN],
    [10 * SIMD_BLOCK + 31, Infinity],
    [11 * SIMD_BLOCK + 17, -3.4e38],
    [63 * SIMD_BLOCK + 5, bitsToF32(0x7f7f0000)], // hi itself: outside the window
  ]);
  for (const [i, v] of bad) src[i] = v;
  // not unusual for 'int': just below hi, min normal, float32 subnormals, zeros
  src[20 * SIMD_BLOCK + 9] = bitsToF32(0x7f7effff);
  src[21 * SIMD_BLOCK + 30] = -(2 ** -149);
  src[22 * SIMD_BLOCK + 1] = -0;
  mem.f32.set(src, base);
  const count = rne(DATA + 4 * n, DATA);
  const groupsBad = [...new Set([...bad.keys()].map((i) => Math.floor(i / SIMD_BLOCK)))];
  assert.equal(count, groupsBad.length);
  const listed = [...mem.i32.subarray(0, count)].map((b) => (b - DATA) / (4 * SIMD_BLOCK));
  assert.deepEqual(listed, groupsBad);
  const ref = chopReference(getFormat('bf16'), src);
  for (let g = 0; g < 64; g++) {
    const got = mem.f32.subarray(base + g * SIMD_BLOCK, base + (g + 1) * SIMD_BLOCK);
    const want = groupsBad.includes(g)
      ? src.subarray(g * SIMD_BLOCK, (g + 1) * SIMD_BLOCK) // inputs intact
      : ref.subarray(g * SIMD_BLOCK, (g + 1) * SIMD_BLOCK);
    assertSameBits(got, want, `group ${g}`, src.subarray(g * SIMD_BLOCK, (g + 1) * SIMD_BLOCK));
  }
});

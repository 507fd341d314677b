/**
 * The WebAssembly kernel's group dispatch (native/formats/chop.c): each group of 64 lanes takes the
 * integer path alone when every lane is inside its window, else the finite path (subnormal results,
 * overflow) or, with an inf, a NaN, a negative input to an unsigned format or a format without -0, the
 * full path. So every unusual kind of value (NaN, inf, the overflow region, exactly at and around max
 * finite, below min normal, float32 subnormals, signed zeros) is put at every lane position of a group,
 * next to exact ties on the target grid, and the result is compared bit for bit with the reference
 * through every entry: chop on a JavaScript array (chunks copied through the scratch memory), chopBuffer
 * in place, and chop between two views of one kernel memory (out of place, no copy). The kernel must
 * also leave every byte outside its output untouched.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bitsToF32, f32ToBits } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import { forceChopPath } from '../../src/formats/chop-fast.ts';
import { CHUNK, DATA } from '../../src/formats/chop-wasm.ts';
import {
  type CastOptions,
  chop,
  chopBuffer,
  chopReference,
  type FormatSpec,
  formatInfo,
  getFormat,
  parseFormat,
} from '../../src/formats/index.ts';
import { assertSameBits } from './cases.ts';

const GROUP = 64; // lanes per group: 4 x UNROLL in chop.c

/** Values at the edges of the integer path's window and beyond, both signs. */
function specials(spec: FormatSpec): number[] {
  const info = formatInfo(spec);
  const lo = Math.max(f32ToBits(info.minNormal), 0x00800000);
  const hi = f32ToBits(info.maxFinite);
  const bits = [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0x7f7fffff, 0x7f800000, 0x7fc00000, 0x7f800001];
  bits.push(0x7fffffff, 0x00000001, 0x007fffff, 0x00400000, 0);
  const ulp = info.maxFinite * info.epsilon;
  const vals = [...bits.map(bitsToF32), info.maxFinite + ulp / 2, info.maxFinite + ulp / 4];
  vals.push(info.minNormal / 2, info.minSubnormal / 2, info.minSubnormal * 1.5, 2 ** 127, 2 ** -126);
  return [...vals, ...vals.map((v) => -v)];
}

/** One group per (special value, lane position); other lanes: normal values and exact ties. */
function groups(spec: FormatSpec, seed: number): Float32Array {
  const info = formatInfo(spec);
  const rng = new Rng(seed);
  const sp = specials(spec);
  const src = new Float32Array(sp.length * GROUP * GROUP + 64 + 3); // + quiet groups and a tail
  for (let i = 0; i < src.length; i++) {
    const tie = (1 + ((rng.nextU32() % 8) + 0.5) * info.epsilon) * (rng.nextU32() & 1 ? -1 : 1);
    src[i] =
      i % 3 === 0 ? tie : Math.max(-info.maxFinite / 2, Math.min(info.maxFinite / 2, rng.nextNormal()));
  }
  let g = 0;
  for (const v of sp) for (let lane = 0; lane < GROUP; lane++, g++) src[g * GROUP + lane] = v;
  return src;
}

const SPECS = [
  ...['bf16', 'tf32', 'fp16', 'fp8_e4m3fn', 'fp8_e5m2', 'fp8_e4m3fnuz', 'fp6_e2m3fn', 'fp4_e2m1fn'].map(
    getFormat,
  ),
  parseFormat('ue4m3', { nan: 'all-ones' }),
  getFormat('e8m0fnu'),
];
const OPTIONS: CastOptions[] = [
  {},
  { flushSubnormals: true },
  { overflow: 'saturate' },
  { rounding: 'toward-zero' },
  { rounding: 'up' },
  { rounding: 'down' },
  { rounding: 'nearest-away' },
  { rounding: 'stochastic', seed: 3 },
  { rounding: 'stochastic-equal', seed: 4 },
];

test('kernel: every unusual value at every lane of a group, through every entry point', () => {
  forceChopPath('wasm');
  try {
    for (const spec of SPECS) {
      const src = groups(spec, 7);
      const n = src.length;
      const buf = chopBuffer(spec, 2 * n + 8);
      const v = buf.view;
      for (const o of OPTIONS) {
        const what = `${spec.name} ${JSON.stringify(o)}`;
        const ref = chopReference(spec, src, o);
        assertSameBits(chop(spec, src, o), ref, `${what} chop (scratch copies)`, src);
        v.set(src);
        assertSameBits(buf.chopInPlace(n, o), ref, `${what} chopInPlace`, src);
        v.set(src, 1); // out of place, unaligned source, no copy
        assertSameBits(
          chop(spec, v.subarray(1, n + 1), o, v.subarray(n + 4, 2 * n + 4)),
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

test('kernel: touches nothing outside its output, across chunk boundaries', () => {
  forceChopPath('wasm');
  try {
    const spec = getFormat('fp8_e4m3fn');
    const n = 2 * CHUNK + 37;
    const pattern = groups(spec, 9);
    const src = new Float32Array(n);
    for (let i = 0; i < n; i += pattern.length)
      src.set(pattern.subarray(0, Math.min(pattern.length, n - i)), i);
    const o: CastOptions = { rounding: 'stochastic', seed: 1 };
    const ref = chopReference(spec, src, o);
    const buf = chopBuffer(spec, n + 64);
    const v = buf.view;
    assert.equal(v.byteOffset, DATA, 'data starts after the parameter block');
    const js = new Float32Array(n + 64);
    // in place in kernel memory (one kernel call), and into a JavaScript array (chunks of CHUNK)
    for (const [where, out, input] of [
      ['kernel memory', v, v.subarray(16, 16 + n)],
      ['JavaScript array', js, src],
    ] as const) {
      const words = new Uint32Array(out.buffer, out.byteOffset, out.length);
      words.fill(0x7fa5a5a5);
      if (out === v) v.set(src, 16);
      assertSameBits(chop(spec, input, o, out.subarray(16, 16 + n)), ref, where, src);
      for (let i = 0; i < 16; i++)
        assert.equal(words[i], 0x7fa5a5a5, `${where}: element ${i} before the output`);
      for (let i = 16 + n; i < out.length; i++)
        assert.equal(words[i], 0x7fa5a5a5, `${where}: element ${i} after the output`);
    }
  } finally {
    forceChopPath(undefined);
  }
});

// Nearest-even on groups that need the float path takes one float32 addition of 2^(E + D), capped at
// 2^127 (chop.c round_rne_float): exact while max finite < 2^(105 + M), where the kernel uses it; the
// formats on both sides of that bound (and one whose max is near float32's) must agree with the
// reference, as must the cap (magnitudes up to float32's max in every group).
test('kernel: nearest-even by float addition at its range bound', () => {
  forceChopPath('wasm');
  try {
    const specs = [
      parseFormat('e7m2', { bias: 20 }), // max 1.75 * 2^106 < 2^107: the float addition
      parseFormat('e7m2', { bias: 19 }), // max 1.75 * 2^107: the two paths
      parseFormat('e7m2', { bias: 20, saturate: true }),
      parseFormat('e7m3', { bias: 1 }), // max 1.875 * 2^125: the two paths
    ];
    for (const spec of specs) {
      const src = groups(spec, 11);
      const rng = new Rng(12);
      for (let i = 0; i < src.length; i += 5)
        src[i] = bitsToF32(rng.nextU32() & 0x7fffffff) * (i & 2 ? -1 : 1);
      for (const o of [{}, { rounding: 'nearest-even', overflow: 'saturate' }] as CastOptions[]) {
        const ref = chopReference(spec, src, o);
        assertSameBits(chop(spec, src, o), ref, `${spec.name} ${JSON.stringify(o)}`, src);
      }
    }
  } finally {
    forceChopPath(undefined);
  }
});

// chop.c round_merged (toward-zero, up, down in one form: x scaled by 1 / s, s the step at
// x) is exact while the subnormal step q is a normal float32 <= 1 (x / q scales float32 subnormals up)
// and M >= 1 (1 / s normal up to 2^127), where the kernel uses it; formats on both sides of each bound
// (q = 1 and q = 2; M = 0), and flushed subnormals (q is then min normal), must agree with the reference;
// nearest-away takes nearest-even's float addition on the magnitude with its last bit set (chop.c
// rna_float_exact), exact with 2 or more dropped bits: M = 21 and 22 on both sides of that bound.
test('kernel: directed and nearest-away rounding in one form at its range bounds', () => {
  forceChopPath('wasm');
  try {
    const specs = [
      parseFormat('e2m1', { bias: 0 }), // q = 1: one form
      parseFormat('e2m1', { bias: -1 }), // q = 2: the two paths
      parseFormat('e3m2', { bias: -1 }), // q = 1
      parseFormat('e3m2', { bias: -2 }), // q = 2
      parseFormat('e3m0'), // M = 0: the two paths
      parseFormat('e4m2', { bias: 3 }),
      // nearest-away as nearest-even of a | 1 (chop.c rna_float_exact) needs 2 dropped bits: M = 21, 22
      parseFormat('e5m21'),
      parseFormat('e5m22'),
    ];
    const modes = ['toward-zero', 'up', 'down', 'nearest-away'] as const;
    for (const spec of specs) {
      const src = groups(spec, 21);
      const rng = new Rng(22);
      for (let i = 0; i < src.length; i += 5) src[i] = bitsToF32(rng.nextU32()) * (i & 2 ? -1 : 1);
      for (let i = 1; i < src.length; i += 7) src[i] = bitsToF32(rng.nextU32() & 0x807fffff); // subnormals
      for (const rounding of modes) {
        for (const o of [{ rounding }, { rounding, flushSubnormals: true }] as CastOptions[]) {
          const ref = chopReference(spec, src, o);
          assertSameBits(chop(spec, src, o), ref, `${spec.name} ${JSON.stringify(o)}`, src);
        }
      }
    }
  } finally {
    forceChopPath(undefined);
  }
});

// chop.c finite() rounds nearest-even and nearest-away on the float path by Veltkamp's splitting with a
// floor (round_vk: 2 <= D <= 22) and turns overflow into NaN by a mask, into inf by scaling up and back
// (inf_ovf_ok: the value past max finite a power of two 2^(emax + 1), emax >= 1, the cap 2^(emax + 2)
// times 2^D + 1 finite), or by a select elsewhere; nearest-even and nearest-away then round inf and NaN in
// finite() too (the _T forms). Formats on both sides of each bound, every policy, every deterministic mode,
// with infs and NaNs after finite lanes, out of place (the one-pass loop) and in place.
test('kernel: nearest-even by splitting and the overflow forms at their bounds', () => {
  forceChopPath('wasm');
  try {
    const specs = [
      parseFormat('e5m21'), // D = 2: round_vk
      parseFormat('e5m22'), // D = 1: the float addition
      parseFormat('e3m0'), // D = 23
      parseFormat('e7m2', { bias: 22 }), // emax 104: the cap 2^106 * (2^21 + 1) < 2^128
      parseFormat('e7m2', { bias: 21 }), // emax 105: not
      parseFormat('e3m3', { bias: 5 }), // emax 1: inf by scaling
      parseFormat('e3m3', { bias: 6 }), // emax 0: not
      getFormat('fp8_e4m3'), // max 240, inf: 256 past it
      getFormat('fp8_e5m2'),
    ];
    for (const spec of specs) {
      const info = formatInfo(spec);
      const src = groups(spec, 41);
      const rng = new Rng(42);
      const odd = [Infinity, -Infinity, NaN, -NaN, 0, -0, info.maxFinite * 1.01, -info.maxFinite * 3];
      for (let i = 0; i < src.length; i += 5) src[i] = bitsToF32(rng.nextU32()) * (i & 2 ? -1 : 1);
      for (let i = 1; i < src.length; i += 7) src[i] = bitsToF32(rng.nextU32() & 0x807fffff); // subnormals
      for (let i = 3; i < src.length; i += 97) src[i] = odd[rng.nextU32() % odd.length]!;
      for (const rounding of ['nearest-even', 'nearest-away', 'toward-zero', 'up', 'down'] as const) {
        for (const overflow of [undefined, 'saturate', 'nan'] as const) {
          const o: CastOptions = overflow ? { rounding, overflow } : { rounding };
          const what = `${spec.name} ${JSON.stringify(o)}`;
          const ref = chopReference(spec, src, o);
          assertSameBits(chop(spec, src, o), ref, `${what} chop`, src);
          const buf = chopBuffer(spec, src.length);
          buf.view.set(src);
          assertSameBits(buf.chopInPlace(src.length, o), ref, `${what} chopInPlace`, src);
        }
      }
    }
  } finally {
    forceChopPath(undefined);
  }
});

// After a group that took the finite path, out of place, the kernel rounds the next group by finite()
// first and checks afterwards only whether it held a lane that needs full() (an inf, a NaN; for unsigned
// formats a negative input); every 16th such group checks its range first (chop.c run(), PROBE). So runs
// of finite groups of random lengths are followed by a group with one such lane at a random position,
// then clean groups, and the result compared with the reference through the out-of-place entry points.
test('kernel: an inf, a NaN or a negative input after runs of finite groups', () => {
  forceChopPath('wasm');
  try {
    for (const spec of SPECS) {
      const info = formatInfo(spec);
      const rng = new Rng(31);
      const groupsN = 1200;
      const src = new Float32Array(groupsN * GROUP + 5);
      const finiteLane = [info.maxFinite * 4, info.minNormal / 3, -info.minNormal * 0.7, 2 ** 127];
      const odd = [Infinity, -Infinity, NaN, -1.5, -info.minNormal * 3];
      let g = 0;
      while (g < groupsN) {
        // a run of 1..40 groups needing the finite path (one such lane each, the rest normal values)
        const run = 1 + (rng.nextU32() % 40);
        for (let k = 0; k < run && g < groupsN; k++, g++) {
          for (let lane = 0; lane < GROUP; lane++) src[g * GROUP + lane] = (1 + rng.nextFloat()) * 0.75;
          src[g * GROUP + (rng.nextU32() % GROUP)] = finiteLane[rng.nextU32() % finiteLane.length]!;
        }
        if (g >= groupsN) break;
        // one group with a value that needs full() at a random lane (and a lane that needs finite())
        for (let lane = 0; lane < GROUP; lane++) src[g * GROUP + lane] = (1 + rng.nextFloat()) * -0.75;
        src[g * GROUP + (rng.nextU32() % GROUP)] = finiteLane[rng.nextU32() % finiteLane.length]!;
        src[g * GROUP + (rng.nextU32() % GROUP)] = odd[rng.nextU32() % odd.length]!;
        g++;
        // and a few clean groups
        const clean = rng.nextU32() % 3;
        for (let k = 0; k < clean && g < groupsN; k++, g++)
          for (let lane = 0; lane < GROUP; lane++) src[g * GROUP + lane] = 1 + rng.nextFloat();
      }
      const n = src.length;
      const buf = chopBuffer(spec, 2 * n + 8);
      const v = buf.view;
      for (const o of OPTIONS.filter((x) => !x.rounding?.startsWith('stochastic'))) {
        const what = `${spec.name} ${JSON.stringify(o)}`;
        const ref = chopReference(spec, src, o);
        assertSameBits(chop(spec, src, o), ref, `${what} chop (scratch copies)`, src);
        v.set(src);
        assertSameBits(chop(spec, v.subarray(0, n), o, v.subarray(n, 2 * n)), ref, `${what} views`, src);
      }
    }
  } finally {
    forceChopPath(undefined);
  }
});

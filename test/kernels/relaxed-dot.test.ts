/**
 * Relaxed SIMD integer dot products. In Node 20's V8, i32x4.relaxed_dot_i8x16_i7x16_add_s returns wrong sums
 * (shown below on a hand-assembled module), so the kernels use i16x8.relaxed_dot_i8x16_i7x16_s followed by
 * i32x4.extadd_pairwise_i16x8_s, which is right: the second test checks that pair against plain integer
 * arithmetic, and the third that no kernel source uses the broken instruction.
 *
 * Node 20 exposes relaxed SIMD only behind --experimental-wasm-relaxed-simd: without it the module is run
 * in a child node with the flag.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hasWasmRelaxedSimd } from '../../src/core/wasm.ts';
import { Rng } from '../../src/core/rng.ts';

const leb = (n: number): number[] => {
  const o: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    o.push(b);
  } while (n);
  return o;
};
// SIMD opcodes (WebAssembly SIMD and relaxed-SIMD proposals): 0xfd prefix, LEB128 opcode
const simd = (op: number): number[] => [0xfd, ...leb(op)];
const V128_LOAD = 0x00;
const V128_STORE = 0x0b;
const I32X4_EXTADD_PAIRWISE_I16X8_S = 0x7e;
const I32X4_ADD = 0xae;
const I16X8_RELAXED_DOT_I8X16_I7X16_S = 0x112;
const I32X4_RELAXED_DOT_I8X16_I7X16_ADD_S = 0x113;
const load = (off: number): number[] => [0x41, 0, ...simd(V128_LOAD), 4, ...leb(off)]; // i32.const 0; v128.load
const storeAt = (off: number, value: number[]): number[] => [
  0x41,
  0,
  ...value,
  ...simd(V128_STORE),
  4,
  ...leb(off),
];

/**
 * A module exporting memory 'm' and two functions over it (a: int8 x16 at 0, b: 0..127 x16 at 16, c: int32 x4
 * at 32, result at 48): 'f' = i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c), 'g' = the same sum through
 * i16x8.relaxed_dot_i8x16_i7x16_s + i32x4.extadd_pairwise_i16x8_s + i32x4.add.
 */
function dotModule(): Uint8Array {
  const f = storeAt(48, [...load(0), ...load(16), ...load(32), ...simd(I32X4_RELAXED_DOT_I8X16_I7X16_ADD_S)]);
  const g = storeAt(48, [
    ...load(0),
    ...load(16),
    ...simd(I16X8_RELAXED_DOT_I8X16_I7X16_S),
    ...simd(I32X4_EXTADD_PAIRWISE_I16X8_S),
    ...load(32),
    ...simd(I32X4_ADD),
  ]);
  const bodies = [f, g];
  const code = bodies.flatMap((b) => {
    const fn = [0, ...b, 0x0b];
    return [...leb(fn.length), ...fn];
  });
  const exps = [1, 0x66, 0, 0, 1, 0x67, 0, 1, 1, 0x6d, 2, 0]; // 'f' func 0, 'g' func 1, 'm' memory 0
  return Uint8Array.from([
    ...[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...[1, 4, 1, 0x60, 0, 0], // type () -> ()
    ...[3, 3, 2, 0, 0], // two functions of type 0
    ...[5, 3, 1, 0, 1], // one memory of one page
    ...[7, ...leb(1 + exps.length), 3, ...exps],
    ...[10, ...leb(1 + code.length), 2, ...code],
  ]);
}

/** Wrong results of each way over random inputs: [add_s, i16x8 dot + extadd]. */
function countWrong(trials: number): [number, number] {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(dotModule()));
  const m = inst.exports.m as WebAssembly.Memory;
  const fns = [inst.exports.f, inst.exports.g] as (() => void)[];
  const rng = new Rng(4);
  const wrong: [number, number] = [0, 0];
  for (let t = 0; t < trials; t++) {
    const a = Int8Array.from({ length: 16 }, () => (rng.nextU32() & 255) - 128);
    const b = Int8Array.from({ length: 16 }, () => rng.nextU32() & 127);
    const c = Int32Array.from({ length: 4 }, () => (rng.nextU32() % 2001) - 1000);
    const want = [0, 1, 2, 3].map((i) => {
      let s = c[i]!;
      for (let j = 0; j < 4; j++) s += a[4 * i + j]! * b[4 * i + j]!;
      return s;
    });
    fns.forEach((fn, k) => {
      new Int8Array(m.buffer).set(a, 0);
      new Int8Array(m.buffer).set(b, 16);
      new Int32Array(m.buffer, 32, 4).set(c);
      fn();
      if (Array.from(new Int32Array(m.buffer, 48, 4)).join() !== want.join()) wrong[k] = wrong[k]! + 1;
    });
  }
  return wrong;
}

const CHILD = process.env.MIXQ_RELAXED_DOT_CHILD === '1';

if (CHILD) {
  // run by the parent test below, with relaxed SIMD on: report the counts
  console.log(JSON.stringify({ node: process.version, wrong: countWrong(200) }));
} else {
  test('i16x8.relaxed_dot_i8x16_i7x16_s + extadd is right; i32x4.relaxed_dot_i8x16_i7x16_add_s is wrong in Node 20', () => {
    let wrong: [number, number];
    if (hasWasmRelaxedSimd()) wrong = countWrong(200);
    else {
      const env: Record<string, string | undefined> = { ...process.env, MIXQ_RELAXED_DOT_CHILD: '1' };
      delete env.NODE_TEST_CONTEXT;
      const r = spawnSync(
        process.execPath,
        ['--experimental-wasm-relaxed-simd', '--import', 'tsx', fileURLToPath(import.meta.url)],
        { env, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      wrong = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { wrong: [number, number] }).wrong;
    }
    assert.equal(wrong[1], 0, 'the i16x8 dot + extadd pair must be exact');
    if (process.versions.node.startsWith('20.'))
      assert.ok(wrong[0] > 0, 'Node 20: i32x4.relaxed_dot_i8x16_i7x16_add_s returns wrong sums (the V8 bug)');
  });

  test('no kernel source uses i32x4.relaxed_dot_i8x16_i7x16_add_s', () => {
    const dir = 'native/kernels';
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8')
        .replace(/\/\/.*$/gm, '')
        .replace(/\/\*[\s\S]*?\*\//g, '');
      assert.doesNotMatch(
        text,
        /relaxed_dot_i8x16_i7x16_add|dot_i8x16_i7x16_add/,
        `${f} uses the broken instruction`,
      );
    }
  });
}

/**
 * The formats CLI end to end: spawns `node --import tsx src/cli/main.ts chop|formats ...` and checks the
 * printed results, stdin input, --json, --bits, custom formats and error handling (one line, exit 2).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { chop, getFormat } from '../../src/formats/index.ts';

function mixq(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    input,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('chop: arguments, negative numbers after --, custom format with every override', () => {
  const r = mixq(['chop', '--format', 'e4m3', '1.07', '300', '1000', '--', '-1e-3', '-0']);
  assert.equal(r.code, 0, r.err);
  // e4m3 = fp8_e4m3fn: 1.07 -> 1.125, 300 -> 288, 1000 -> NaN (no inf), -0.001 -> -2^-9, -0 kept
  assert.deepEqual(r.out.trim().split('\n'), ['1.125', '288', 'NaN', '-0.001953125', '-0']);
  // E3M4, bias 4, no subnormals, NaN = all ones (so no inf): max 1.875 * 2^3 = 15, min normal 2^-3;
  // 0.05 -> 0, 0.1 -> 0.125, 15.2 -> 15, 15.3 -> NaN (rounds past max, no inf)
  const args = ['--format', 'e3m4', '--bias', '4', '--no-subnormals', '--nan', 'all-ones', '--json'];
  const c = mixq(['chop', ...args, '0.05', '0.1', '3.3', '15.2', '15.3']);
  assert.equal(c.code, 0, c.err);
  assert.deepEqual(JSON.parse(c.out), [0, 0.125, 3.25, 15, 'NaN']);
});

test('chop: stdin (decimal and 0x float32 bits), --bits output', () => {
  const r = mixq(['chop', '--format', 'bf16', '--bits'], '0.1\n0x3f800001\n-7\n');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n'), ['0x3dcd0000', '0x3f800000', '0xc0e00000']);
});

test('chop: --random-bits implies seeded stochastic rounding, same as the library', () => {
  const xs = Array(40).fill('2.7');
  const a = mixq(['chop', '--format', 'fp4', '--random-bits', '2', '--seed', '9', '--json', ...xs]);
  assert.equal(a.code, 0, a.err);
  const opts = { rounding: 'stochastic' as const, randomBits: 2, seed: 9 };
  const lib = chop(getFormat('fp4_e2m1fn'), new Float64Array(40).fill(2.7), opts);
  assert.deepEqual(JSON.parse(a.out), [...lib]);
  assert.ok(lib.includes(2) && lib.includes(3)); // frac 0.7 -> P(up) = floor(2.8) / 4 = 0.5
});

test('chop reads doubles and rounds them once (the inputs the float32 path rounded twice)', () => {
  // 1 + 2^-11 + 2^-40 is above the fp16 tie; its float32 rounding is the tie (-> 1)
  assert.deepEqual(mixq(['chop', '--format', 'fp16', '1.0004882812509095']).out.trim(), '1.0009765625');
  // 1 + 2^-52 rounded up; float32 made it 1
  const up = mixq(['chop', '--format', 'fp16', '--rounding', 'up', '1.0000000000000002']);
  assert.equal(up.out.trim(), '1.0009765625');
  // formats wider than float32, bit patterns of float64 in and out
  const wide = mixq(['chop', '--format', 'fp64', '--bits', '0.1', '0x3ff0000000000001']);
  assert.deepEqual(wide.out.trim().split('\n'), ['0x3fb999999999999a', '0x3ff0000000000001']);
  assert.equal(
    mixq(['chop', '--format', 'e8m40', '--rounding', 'nearest-odd', '0.1']).out.trim(),
    '0.0999999999999659',
  );
});

test('errors are one line on stderr with exit code 2', () => {
  const r = mixq(['chop', '--format', 'e4m3', '--rounding', 'upp', '1']);
  assert.equal(r.code, 2);
  assert.equal(r.out, '');
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err, /^mixq chop: .*unknown rounding 'upp'/);
});

test('formats: table and show', () => {
  const t = mixq(['formats']);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /^fp8_e4m3fn +8 +448 +2\^-6 +2\^-9 +2\^-3 +NaN/m);
  assert.match(t.out, /^fp4_e2m1fn +4 +6 +1 +2\^-1 +2\^-1 +- +saturate/m);
  const s = mixq(['formats', 'show', 'fp4']);
  assert.match(s.out, /^0x7 +0111 +6$/m);
  assert.match(s.out, /^0x8 +1000 +-0$/m);
});

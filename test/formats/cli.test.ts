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

test('chop: arguments, negative numbers after --, custom format with overrides', () => {
  const r = mixq(['chop', '--format', 'e4m3', '1.07', '300', '1000', '--', '-1e-3', '-0']);
  assert.equal(r.code, 0, r.err);
  // e4m3 = fp8_e4m3fn: 1.07 -> 1.125, 300 -> 288, 1000 -> NaN (no inf), -0.001 -> -2^-9, -0 kept
  assert.deepEqual(r.out.trim().split('\n'), ['1.125', '288', 'NaN', '-0.001953125', '-0']);
  // E3M4 with bias 4 and no subnormals: max 7.75, min normal 2^-3; 0.05 rounds to 0, 0.1 to 0.125
  const c = mixq([
    'chop',
    '--format',
    'e3m4',
    '--bias',
    '4',
    '--no-subnormals',
    '--json',
    '0.05',
    '0.1',
    '3.3',
    '1e9',
  ]);
  assert.equal(c.code, 0, c.err);
  assert.deepEqual(JSON.parse(c.out), [0, 0.125, 3.25, 'inf']);
});

test('chop: stdin (decimal and 0x float32 bits), --bits output', () => {
  const r = mixq(['chop', '--format', 'bf16', '--bits'], '0.1\n0x3f800001\n-7\n');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n'), ['0x3dcd0000', '0x3f800000', '0xc0e00000']);
});

test('chop: NaN/inf overrides, seeded stochastic rounding, r-bit stochastic', () => {
  const r = mixq(['chop', '--format', 'fp8_e4m3', '--no-inf', '--nan', 'all-ones', '--json', '464', '472']);
  assert.deepEqual(JSON.parse(r.out), [448, 'NaN']); // = fp8_e4m3fn: tie to even 448, 472 overflows
  const xs = Array(40).fill('2.5');
  const a = mixq(['chop', '--format', 'fp4', '--rounding', 'stochastic', '--seed', '9', '--json', ...xs]);
  const lib = chop(getFormat('fp4_e2m1fn'), new Float32Array(40).fill(2.5), {
    rounding: 'stochastic',
    seed: 9,
  });
  assert.deepEqual(JSON.parse(a.out), [...lib]);
  assert.ok(lib.includes(2) && lib.includes(3));
  const rb = mixq(['chop', '--format', 'fp4', '--random-bits', '1', '--json', '2.4', '2.4', '2.4']);
  assert.deepEqual(JSON.parse(rb.out), [2, 2, 2]); // frac 0.4 truncated to 1 bit is 0: never up
});

test('chop and formats: errors are one line on stderr with exit code 2', () => {
  for (const args of [
    ['chop', '--format', 'e4m3', '--rounding', 'upp', '1'],
    ['formats', 'show', 'nope'],
  ]) {
    const r = mixq(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.out, '');
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, /^mixq (chop|formats show): /);
  }
});

test('formats: table, --json, show', () => {
  const t = mixq(['formats']);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /^fp8_e4m3fn +8 +448 +2\^-6 +2\^-9 +2\^-3 +NaN/m);
  const s = mixq(['formats', 'show', 'fp4']);
  assert.match(s.out, /^0x7 +0111 +6$/m);
  assert.match(s.out, /^0x8 +1000 +-0$/m);
  const sj = JSON.parse(mixq(['formats', 'show', 'ue5m3', '--json']).out) as {
    codes: unknown[];
    signed: boolean;
  };
  assert.equal(sj.codes.length, 256);
  assert.equal(sj.signed, false);
});

/**
 * `mixq numerics` end to end: a study prints its tables and fingerprint and writes an SVG plot atomically;
 * bad arguments are one line on stderr with exit code 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

function mixq(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('mixq numerics heat --quick: table, fingerprint, SVG plot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-numerics-'));
  try {
    const out = join(dir, 'heat.svg');
    const r = mixq(['numerics', 'heat', '--quick', '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /u\(1\/2, T\)/);
    assert.match(r.out, /fingerprint 9a5269b7aa4390ec/);
    assert.match(readFileSync(out, 'utf8'), /^<svg[^>]*>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mixq numerics: unknown study and bad options are one line, exit 2', () => {
  const a = mixq(['numerics', 'lorenz']);
  assert.equal(a.code, 2);
  assert.match(
    a.err,
    /^mixq numerics: .*unknown study 'lorenz' \(expected lu-ir, harmonic, heat, train\)\n$/,
  );
  const b = mixq(['numerics', 'harmonic', '--terms', '-3']);
  assert.equal(b.code, 2);
  assert.match(
    b.err,
    /^mixq numerics: argument --terms: --terms -3 \(expected an integer in 1\.\.100000000\)\n$/,
  );
  const c = mixq(['numerics', 'train', '--configs', 'fp7', '--quick']);
  assert.equal(c.code, 2);
  assert.match(c.err, /unknown configuration 'fp7'/);
});

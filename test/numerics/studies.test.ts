/**
 * Reproducibility: each study's numbers (their fingerprint, hashNumbers over every number it computed)
 * are fixed for a given seed, on every run and platform: the studies use only + - * / sqrt (exact in
 * IEEE 754), deterministic exp / log / sin (det-math.ts) and the seeded xoshiro generator. The reduced
 * sizes are `mixq numerics <study> --quick`. A fingerprint changes only when a study or the arithmetic
 * under it changes on purpose: then update it here (and docs/numerics.md).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIGITS_PATH, QUICK, readDigits, runStudy } from '../../src/cli/commands/numerics.ts';
import { heatStudy } from '../../src/numerics/studies/rn-vs-sr.ts';

const FINGERPRINTS: Record<string, string> = {
  'lu-ir': '1ee6b782d2548f29',
  harmonic: 'eba56b2eac0b2b82',
  heat: '9a5269b7aa4390ec',
  train: '3da047ef04a06e42',
};

for (const name of ['lu-ir', 'harmonic', 'heat', 'train'] as const) {
  test(`study ${name} at the --quick size has its recorded fingerprint`, () => {
    const r = runStudy(name, { quick: true });
    assert.equal(r.hash, FINGERPRINTS[name], `${name}: ${r.headline}`);
    assert.ok(r.tables.length > 0 && r.plot.points.length > 0, 'a table and a plot');
  });
}

test('a study run twice gives the same numbers; another seed gives others', () => {
  const a = heatStudy({ ...QUICK.heat, seed: 5 });
  const b = heatStudy({ ...QUICK.heat, seed: 5 });
  const c = heatStudy({ ...QUICK.heat, seed: 6 });
  assert.equal(a.hash, b.hash);
  assert.notEqual(a.hash, c.hash);
});

test('the bundled digits: 1797 rows of 64 pixels in 0..16 and a label 0..9', () => {
  const d = readDigits(DIGITS_PATH);
  assert.equal(d.length, 1797 * 65);
  for (let r = 0; r < 1797; r++) {
    for (let c = 0; c < 64; c++) assert.ok(d[r * 65 + c]! <= 16, `pixel ${r},${c}`);
    assert.ok(d[r * 65 + 64]! <= 9, `label ${r}`);
  }
});

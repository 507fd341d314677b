// .npy reading against files NumPy wrote (test/golden/npy, see its README), refusals, and round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { MixqError } from '../../src/core/errors.ts';
import { readNpy, writeNpy, type NpyArray } from '../../src/io/npy.ts';

const dir = 'test/golden/npy';
const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as Record<
  string,
  { dtype: string; shape: number[]; values: number[] }
>;
const dtypeName: Record<string, string> = { bool: 'bool' };

for (const [name, want] of Object.entries(expected)) {
  test(`npy: ${name} reads as NumPy wrote it`, () => {
    const a = readNpy(readFileSync(`${dir}/${name}.npy`), name);
    assert.equal(a.dtype, dtypeName[want.dtype] ?? want.dtype);
    assert.deepEqual(a.shape, want.shape);
    assert.deepEqual(
      Array.from(a.data as ArrayLike<number | bigint>, (v) => Number(v)),
      want.values,
    );
  });
}

test('npy: big-endian and Fortran order are refused with one line naming the field', () => {
  assert.throws(() => readNpy(readFileSync(`${dir}/be_f4.npy`), 'be.npy'), /be\.npy: descr: big-endian/);
  assert.throws(
    () => readNpy(readFileSync(`${dir}/fortran_f4.npy`), 'f.npy'),
    /f\.npy: fortran_order: .*expected False/,
  );
});

test('npy: truncated or corrupt files are MixqErrors, never a crash', () => {
  const good = readFileSync(`${dir}/f4_2x3.npy`);
  fc.assert(
    fc.property(fc.nat(good.length - 1), fc.nat(good.length - 1), fc.nat(255), (cut, at, byte) => {
      const bad = Uint8Array.from(good.subarray(0, Math.max(cut, 1)));
      if (at < bad.length) bad[at] = byte;
      try {
        readNpy(bad, 'x.npy');
      } catch (e) {
        assert.ok(e instanceof MixqError, String(e));
      }
    }),
    { numRuns: 2000, seed: 11 },
  );
});

test('npy: writeNpy round trips every writable dtype', () => {
  const cases: NpyArray[] = [
    { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, -2, 3.5, 0) },
    { dtype: 'float64', shape: [3], data: Float64Array.of(Math.PI, -0, 1e300) },
    { dtype: 'int64', shape: [1], data: BigInt64Array.of(-(2n ** 62n)) },
    { dtype: 'uint8', shape: [], data: Uint8Array.of(200) },
  ];
  for (const c of cases) {
    const back = readNpy(writeNpy(c), 'rt');
    assert.equal(back.dtype, c.dtype);
    assert.deepEqual(back.shape, c.shape);
    assert.deepEqual(Array.from(back.data as ArrayLike<unknown>), Array.from(c.data as ArrayLike<unknown>));
  }
});

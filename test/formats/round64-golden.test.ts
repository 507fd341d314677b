/**
 * Float64 rounding against independent implementations on float64 inputs (test/golden/float64_rounding.json,
 * origin in test/golden/README.md): CPFloat's cpfloat() on double arrays for fp16, bf16, fp32, E4M3, E5M2
 * and formats wider than float32 (E8M40, E11M30, E11M51, E5M30) in every deterministic mode incl.
 * round-to-odd, with and without subnormals; numpy's float64 -> float16 / float32 casts. Bit for bit, with
 * one documented exception: CPFloat's directed-rounding underflow returns +0 for a negative input below the
 * smallest value (`*(y) > 0 ? ftzthreshold : 0`), where IEEE 754 (6.3) and mixq give -0; the sign of zero
 * is checked against the exact oracle in round64.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { chop, parseFormat, type Rounding } from '../../src/formats/index.ts';

interface Case {
  format: string;
  inputs: string;
  cpfloat: Record<string, string>;
  numpy?: Record<string, string>;
}
const golden = JSON.parse(
  readFileSync(new URL('../golden/float64_rounding.json', import.meta.url), 'utf8'),
) as {
  cases: Case[];
};

function f64(b64: string): Float64Array {
  const bytes = Buffer.from(b64, 'base64');
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

test('float64 chop equals CPFloat and numpy on float64 inputs, bit for bit', () => {
  let checked = 0;
  for (const c of golden.cases) {
    const spec = parseFormat(c.format);
    const xs = f64(c.inputs);
    const refs: [string, string, Record<string, string>][] = [
      ...Object.keys(c.cpfloat).map((k): [string, string, Record<string, string>] => [
        'CPFloat',
        k,
        c.cpfloat,
      ]),
      ...Object.keys(c.numpy ?? {}).map((k): [string, string, Record<string, string>] => [
        'numpy',
        k,
        c.numpy!,
      ]),
    ];
    for (const [who, key, table] of refs) {
      const [rounding, flush] = key.split(' ');
      const want = f64(table[key]!);
      const got = chop(spec, xs, { rounding: rounding as Rounding, flushSubnormals: flush === 'flush' });
      for (let i = 0; i < xs.length; i++) {
        const cpfloatPlusZero =
          who === 'CPFloat' && Object.is(want[i], 0) && Object.is(got[i], -0) && xs[i]! < 0;
        assert.ok(
          Object.is(got[i], want[i]) || cpfloatPlusZero,
          `${c.format} ${key} x=${xs[i]}: mixq ${got[i]}, ${who} ${want[i]}`,
        );
        checked++;
      }
    }
  }
  assert.ok(checked > 20_000, `${checked}`);
});

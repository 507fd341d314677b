/**
 * Golden vectors from an independent implementation: ml_dtypes 0.5.4 casts of 2000 float32 inputs to
 * 8 formats (test/golden/ml_dtypes_casts.json, see test/golden/README.md). Codes and decoded values must
 * match bit for bit, for encode, encodeArray, decodeArray, chop (fast path) and chopReference.
 * Any NaN equals any NaN; NaN inputs to FP6/FP4 are implementation-defined there and skipped.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bitsToF32, f32ToBits } from '../../src/core/bits.ts';
import {
  chop,
  chopReference,
  decode,
  decodeArray,
  encode,
  encodeArray,
  getFormat,
} from '../../src/formats/index.ts';

interface Golden {
  ml_dtypes_version: string;
  inputs: string[];
  types: Record<string, { bits: number; code: string[]; value: string[] }>;
}
const g = JSON.parse(readFileSync('test/golden/ml_dtypes_casts.json', 'utf8')) as Golden;
const xs = Float32Array.from(g.inputs, (h) => bitsToF32(Number.parseInt(h, 16)));

const NAMES: Record<string, string> = {
  float8_e4m3fn: 'fp8_e4m3fn',
  float8_e5m2: 'fp8_e5m2',
  float8_e4m3: 'fp8_e4m3',
  float6_e3m2fn: 'fp6_e3m2fn',
  float6_e2m3fn: 'fp6_e2m3fn',
  float4_e2m1fn: 'fp4_e2m1fn',
  bfloat16: 'bf16',
  float8_e8m0fnu: 'e8m0fnu',
};

test('golden file covers the 8 formats and 2000 inputs', () => {
  assert.equal(g.ml_dtypes_version, '0.5.4');
  assert.equal(xs.length, 2000);
  assert.deepEqual(Object.keys(g.types).sort(), Object.keys(NAMES).sort());
});

for (const [mlName, t] of Object.entries(g.types)) {
  const spec = getFormat(NAMES[mlName]!);
  test(`${spec.name} matches ml_dtypes ${mlName} bit for bit`, () => {
    const noNan = mlName.startsWith('float6') || mlName.startsWith('float4');
    const codes = encodeArray(spec, xs);
    const values = decodeArray(spec, codes);
    const fast = chop(spec, xs);
    const ref = chopReference(spec, xs);
    let compared = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      if (noNan && Number.isNaN(x)) continue;
      const wantCode = Number.parseInt(t.code[i]!, 16);
      const wantBits = Number.parseInt(t.value[i]!, 16);
      const want = bitsToF32(wantBits);
      const where = `${mlName} input ${g.inputs[i]} (${x})`;
      const code = encode(spec, x);
      if (Number.isNaN(want)) {
        assert.ok(Number.isNaN(decode(spec, code)), `${where}: code ${code.toString(16)} is not NaN`);
        assert.ok(Number.isNaN(decode(spec, wantCode)), `${where}: golden code is not NaN`);
        for (const v of [values[i]!, fast[i]!, ref[i]!]) assert.ok(Number.isNaN(v), `${where}: ${v}`);
      } else {
        assert.equal(code, wantCode, `${where}: code`);
        assert.equal(codes[i], wantCode, `${where}: encodeArray`);
        for (const v of [values[i]!, fast[i]!, ref[i]!])
          assert.equal(f32ToBits(v), wantBits, `${where}: value ${v}`);
      }
      compared++;
    }
    assert.ok(compared >= 1990);
  });
}

/**
 * Exhaustive over every code of every format of <= 16 bits: decode then encode is the identity (NaN codes
 * encode back to a NaN code), chop leaves every representable value unchanged, and the value tables agree
 * with independent definitions (core's binary16/bfloat16 decoders, the published FP4/E8M0/NF4 values).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bf16BitsToF32, f16BitsToF32 } from '../../src/core/bits.ts';
import {
  chop,
  chopReference,
  decode,
  encode,
  formatBits,
  getFormat,
  valueTable,
} from '../../src/formats/index.ts';
import { SMALL } from './cases.ts';
import { sameValue } from './brute.ts';

/** Codes that legitimately do not round-trip: they are not the canonical code of their value. */
function nonCanonical(spec: (typeof SMALL)[number], code: number): boolean {
  if (spec.kind === 'int') return spec.narrow && code === 2 ** (spec.bits - 1); // unused 100..0
  if (spec.kind === 'lut') {
    const v = spec.values[code];
    return v === undefined || spec.values.indexOf(v) !== code; // unused or duplicate entry
  }
  // subnormal codes of a format without subnormals decode to zero
  const M = spec.manBits;
  const mag = code % 2 ** (spec.expBits + M);
  return !spec.subnormals && mag < 2 ** M && mag !== 0;
}

// int9..int15 / uint9..uint15 use exactly the arithmetic of int8 and int16; skipping them keeps the run short
const EXHAUSTIVE = SMALL.filter((f) => f.kind !== 'int' || f.bits <= 8 || f.bits === 16);

for (const spec of EXHAUSTIVE) {
  test(`${spec.name}: decode -> encode is the identity on all ${2 ** formatBits(spec)} codes`, () => {
    const t = valueTable(spec);
    let checked = 0;
    for (let c = 0; c < t.length; c++) {
      const v = decode(spec, c);
      assert.ok(sameValue(v, t[c]!), `valueTable[${c}]`);
      if (nonCanonical(spec, c)) continue;
      const back = encode(spec, v);
      if (Number.isNaN(v)) assert.ok(Number.isNaN(decode(spec, back)), `NaN code ${c} -> ${back}`);
      else assert.equal(back, c, `code ${c} (value ${v}) encoded back to ${back}`);
      checked++;
    }
    assert.ok(checked >= t.length / 2);
    // chop is the identity on representable values (fast path and reference)
    const values = Float32Array.from(t);
    for (const out of [chop(spec, values), chopReference(spec, values)]) {
      for (let c = 0; c < t.length; c++) {
        const want = nonCanonical(spec, c) ? decode(spec, encode(spec, t[c]!)) : t[c]!;
        assert.ok(sameValue(out[c]!, want), `chop(${t[c]}) = ${out[c]}`);
      }
    }
  });
}

test('value tables match independent definitions', () => {
  const h = valueTable(getFormat('fp16'));
  for (let c = 0; c < 65536; c++) assert.ok(sameValue(h[c]!, f16BitsToF32(c)), `fp16 ${c}`);
  const b = valueTable(getFormat('bf16'));
  for (let c = 0; c < 65536; c++) assert.ok(sameValue(b[c]!, bf16BitsToF32(c)), `bf16 ${c}`);
  // OCP MX v1.0 table 5: FP4 E2M1 magnitudes
  assert.deepEqual(
    [...valueTable(getFormat('fp4_e2m1fn'))],
    [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6],
  );
  const e8 = valueTable(getFormat('e8m0fnu'));
  for (let c = 0; c < 255; c++) assert.equal(e8[c], 2 ** (c - 127));
  assert.ok(Number.isNaN(e8[255]!));
  const e4 = valueTable(getFormat('fp8_e4m3fn'));
  assert.equal(e4[0x7e], 448);
  assert.ok(Number.isNaN(e4[0x7f]!) && Number.isNaN(e4[0xff]!));
  assert.equal(e4[0x01], 2 ** -9);
  const fnuz = valueTable(getFormat('fp8_e4m3fnuz'));
  assert.ok(Number.isNaN(fnuz[0x80]!));
  assert.equal(fnuz[0x7f], 240);
  assert.equal(valueTable(getFormat('fp8_e4m3'))[0x77], 240);
  assert.equal(valueTable(getFormat('fp8_e4m3'))[0x78], Infinity);
  assert.equal(valueTable(getFormat('fp8_e5m2'))[0x7b], 57344);
  assert.equal(valueTable(getFormat('fp6_e3m2fn'))[0x1f], 28);
  assert.equal(valueTable(getFormat('fp6_e2m3fn'))[0x1f], 7.5);
  assert.deepEqual([...valueTable(getFormat('ternary'))], [0, 1, -1, -1]);
  assert.deepEqual([...valueTable(getFormat('int4'))].slice(6, 10), [6, 7, -8, -7]);
  assert.equal(valueTable(getFormat('nf4'))[7], 0);
  assert.equal(valueTable(getFormat('nf4'))[8], Math.fround(0.07958029955625534));
});

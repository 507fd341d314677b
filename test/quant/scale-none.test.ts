/**
 * Scale format 'none' (FP16 / BF16 weights stored as their own codes, scale 1): the quantizer is then the
 * format's plain cast. Checked against src/formats' chop with saturation (an independent path: the
 * quantizer rounds on the format's value table, chop on the bit layout), the storage formula, the byte
 * packing round trip and the refusals.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { chop, getFormat } from '../../src/formats/index.ts';
import {
  chooseQParams,
  fakeQuant,
  packQuantized,
  quantize,
  type QuantizerConfig,
  storageCost,
  unpackQuantized,
  dequantize,
} from '../../src/quant/index.ts';

const cfg = (format: string): QuantizerConfig => ({
  element: getFormat(format),
  granularity: { kind: 'axis', axis: 0 },
  symmetric: true,
  scaleFormat: 'none',
});

for (const format of ['fp16', 'bf16'])
  test(`${format} with scale format none = the format's saturating cast; 16 bits per weight, no scale`, () => {
    const spec = getFormat(format);
    const edge = Float32Array.of(
      0,
      -0,
      1,
      1 + 2 ** -11, // fp16 tie
      1 + 2 ** -8, // bf16 tie
      65504,
      65519, // fp16: rounds down to max
      65520, // fp16: would round to inf, saturates
      -1e6,
      2 ** -24, // fp16 smallest subnormal
      2 ** -25, // fp16 tie to 0
      3e-8,
      1e-40,
      3.4e38,
    );
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 1, maxLength: 64, noNaN: true, noDefaultInfinity: true }),
        (rnd) => {
          const x = Float32Array.from([...edge, ...rnd]);
          const rows = x.length;
          const got = fakeQuant(x, [rows, 1], cfg(format));
          const want = chop(spec, x, { rounding: 'nearest-even', overflow: 'saturate' });
          for (let i = 0; i < x.length; i++)
            assert.ok(Object.is(got[i], want[i]) || (got[i] === 0 && want[i] === 0), `${format} ${x[i]}`);
        },
      ),
      { numRuns: 200 },
    );
    const p = chooseQParams(Float32Array.of(0.5, -3, 7, 0), [2, 2], cfg(format));
    assert.deepEqual(Array.from(p.scale), [1, 1]);
    const cost = storageCost(cfg(format), [8, 12]);
    assert.equal(cost.bits, 8 * 12 * 16);
    assert.equal(cost.sections.scales, 0);
    // packed bytes = the codes alone, and they unpack to the same values
    const x = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
    const pq = chooseQParams(x, [8, 12], cfg(format));
    const qt = quantize(x, pq);
    const bytes = packQuantized(qt);
    assert.equal(bytes.length, 8 * 12 * 2);
    assert.deepEqual(dequantize(unpackQuantized(bytes, cfg(format), [8, 12])), dequantize(qt));
  });

test('scale format none refuses an asymmetric quantizer, naming the field', () => {
  assert.throws(
    () => chooseQParams(Float32Array.of(1, 2), [1, 2], { ...cfg('fp16'), symmetric: false }),
    (e: Error) => /asymmetric/.test(e.message) && /symmetric/.test(JSON.stringify(e)),
  );
});

/**
 * Registry, aliases, custom float parsing and format limits. Limits are checked against constants from the
 * specs (OCP OFP8, OCP MX v1.0, IEEE 754), derived by hand in the comments.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import {
  decode,
  encode,
  FORMATS,
  formatInfo,
  getFormat,
  lutSpec,
  parseFormat,
  valueTable,
} from '../../src/formats/index.ts';

test('every registered name is unique and resolves to itself', () => {
  const names = FORMATS.map((f) => f.name);
  assert.equal(new Set(names).size, names.length);
  for (const f of FORMATS) assert.equal(getFormat(f.name), f);
});

test('aliases', () => {
  const cases: [string, string][] = [
    ['e4m3', 'fp8_e4m3fn'],
    ['E4M3', 'fp8_e4m3fn'],
    ['bfloat16', 'bf16'],
    ['half', 'fp16'],
    ['float32', 'fp32'],
    ['e5m2', 'fp8_e5m2'],
    ['fp4', 'fp4_e2m1fn'],
    ['e8m0', 'e8m0fnu'],
    ['float8_e4m3fnuz', 'fp8_e4m3fnuz'],
    ['int2_narrow', 'ternary'],
    ['int8_narrow', 'int8_narrow'],
  ];
  for (const [alias, name] of cases) assert.equal(getFormat(alias).name, name, alias);
  assert.equal(getFormat('int6_narrow').name, 'int6_narrow');
  assert.equal(formatInfo(getFormat('int8_narrow')).lowest, -127);
});

test('unknown names throw MixqError naming the name and listing valid ones', () => {
  assert.throws(
    () => getFormat('fp7'),
    (e: unknown) =>
      e instanceof MixqError && /unknown format 'fp7'/.test(e.message) && /fp8_e4m3fn/.test(e.message),
  );
  assert.throws(() => getFormat('e3m4'), MixqError); // custom floats only through parseFormat
  assert.throws(() => parseFormat('e3m4x'), /unknown format/);
});

test('format limits from the specs', () => {
  const lim = (n: string) => formatInfo(getFormat(n));
  assert.equal(lim('fp8_e4m3fn').maxFinite, 448); // 1.75 * 2^(15-7)
  assert.equal(lim('fp8_e4m3').maxFinite, 240); // 1.875 * 2^(14-7)
  assert.equal(lim('fp8_e5m2').maxFinite, 57344); // 1.75 * 2^(30-15)
  assert.equal(lim('fp8_e4m3fnuz').maxFinite, 240); // 1.875 * 2^(15-8)
  assert.equal(lim('fp8_e5m2fnuz').maxFinite, 57344); // 1.75 * 2^(31-16)
  assert.equal(lim('fp8_e4m3fnuz').minSubnormal, 2 ** -10); // 2^(1-8-3)
  assert.equal(lim('fp16').maxFinite, 65504);
  assert.equal(lim('fp16').minNormal, 2 ** -14);
  assert.equal(lim('fp16').minSubnormal, 2 ** -24);
  assert.equal(lim('fp16').epsilon, 2 ** -10);
  assert.equal(lim('bf16').epsilon, 2 ** -7);
  assert.equal(lim('tf32').epsilon, 2 ** -10);
  assert.equal(lim('tf32').bits, 19);
  assert.equal(lim('fp32').maxFinite, 3.4028234663852886e38);
  assert.equal(lim('fp32').minSubnormal, 2 ** -149);
  assert.equal(lim('fp6_e3m2fn').maxFinite, 28);
  assert.equal(lim('fp6_e2m3fn').maxFinite, 7.5);
  assert.equal(lim('fp4_e2m1fn').maxFinite, 6);
  assert.equal(lim('fp4_e2m1fn').minSubnormal, 0.5);
  assert.equal(lim('e8m0fnu').maxFinite, 2 ** 127);
  assert.equal(lim('e8m0fnu').minSubnormal, 2 ** -127);
  assert.equal(lim('e8m0fnu').signed, false);
  assert.equal(lim('int4').lowest, -8);
  assert.equal(lim('uint4').maxFinite, 15);
  assert.equal(lim('ternary').lowest, -1);
  assert.deepEqual([lim('fp8_e4m3fn').hasInf, lim('fp8_e4m3fn').hasNan], [false, true]);
  assert.deepEqual([lim('fp8_e5m2').hasInf, lim('fp4_e2m1fn').hasNan], [true, false]);
});

test('custom floats: IEEE-like defaults, refined by overrides', () => {
  const e3m4 = parseFormat('e3m4');
  assert.equal(formatInfo(e3m4).maxFinite, 15.5); // bias 3, top binade reserved: 1.9375 * 2^(6-3)
  assert.equal(formatInfo(e3m4).hasInf, true);
  const e5m3 = parseFormat('e5m3');
  assert.equal(formatInfo(e5m3).maxFinite, 1.875 * 2 ** 15);
  const ue5m3 = parseFormat('ue5m3');
  assert.equal(formatInfo(ue5m3).bits, 8);
  assert.equal(formatInfo(ue5m3).signed, false);
  // E2M0: no room for NaN, so no inf/NaN by default; values 0, 1, 2, 4 (bias 1)
  assert.deepEqual([...valueTable(parseFormat('e2m0'))], [0, 1, 2, 4, -0, -1, -2, -4]);
  // e4m3 with --no-inf --nan all-ones and bias 7 is exactly OCP e4m3fn
  const ocp = parseFormat('fp8_e4m3', { inf: false, nan: 'all-ones' });
  assert.deepEqual(
    [...valueTable(ocp)],
    [...valueTable(getFormat('fp8_e4m3fn'))].map((v) => v),
  );
  assert.equal(formatInfo(parseFormat('e3m4', { bias: 4 })).maxFinite, 7.75);
  assert.equal(formatInfo(parseFormat('e3m4', { subnormals: false })).minSubnormal, 0.25);
  const sat = parseFormat('fp8_e5m2', { saturate: true });
  assert.equal(decode(sat, encode(sat, 1e9)), 57344);
  assert.throws(() => parseFormat('int8', { bias: 3 }), /only to float formats/);
  assert.throws(() => parseFormat('e12m3'), MixqError); // exponent field too wide for float64
  assert.throws(() => parseFormat('e5m53'), MixqError); // mantissa too wide for float64
  // wider than float32: a target for float64 data only; the float32 APIs refuse it with a clear error
  const e9m3 = parseFormat('e9m3');
  assert.equal(formatInfo(e9m3).float32, false);
  assert.throws(() => valueTable(e9m3), /not all float32.*float64 data/);
  assert.equal(getFormat('double'), getFormat('fp64'));
  assert.equal(formatInfo(getFormat('fp64')).maxFinite, Number.MAX_VALUE);
  assert.throws(() => parseFormat('e5m2', { nan: 'ieee', inf: true, bias: -2000 }), MixqError);
});

test('user codebooks', () => {
  const cb = lutSpec('cb', [0.5, -1, 0, 2]);
  assert.equal(cb.bits, 2);
  assert.equal(decode(cb, encode(cb, 0.3)), 0.5);
  assert.equal(decode(cb, encode(cb, -7)), -1);
  assert.equal(decode(cb, encode(cb, 1.2)), 0.5);
  assert.throws(() => lutSpec('bad', [0.1]), /not a finite float32/);
});

/**
 * Differential test of the fast chop (float32 bit arithmetic, chop-fast.ts) against the reference
 * decode(encode(x)) path: random float32 bit patterns (every exponent, NaNs, infs, subnormals, both signs)
 * plus special values, for every float format x rounding mode x option combination, bit for bit
 * (NaN payloads aside). Stochastic modes must make the same decisions from the same seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bitsToF32 } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  type CastOptions,
  chop,
  chopReference,
  FORMATS,
  type FormatSpec,
  formatInfo,
  ROUNDINGS,
} from '../../src/formats/index.ts';
import { CUSTOM } from './cases.ts';

function inputs(spec: FormatSpec, n: number): Float32Array {
  const rng = new Rng(0xc0ffee);
  const info = formatInfo(spec);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.nextU32() % 4;
    if (r === 0) out.push(bitsToF32(rng.nextU32())); // any bit pattern
    else if (r === 1) out.push((rng.nextFloat() - 0.5) * 4 * info.maxFinite); // around the top of the range
    else if (r === 2) out.push((rng.nextFloat() - 0.5) * 4 * info.minNormal); // around the subnormals
    else out.push(rng.nextNormal() * 2 ** ((rng.nextU32() % 40) - 20));
  }
  const s = [0, -0, Infinity, -Infinity, Number.NaN, bitsToF32(0xffc00001), 2 ** -149, -(2 ** -149)];
  for (const v of [info.maxFinite, info.minNormal, info.minSubnormal]) {
    for (const k of [1, 0.5, 0.75, 1.5, 1 + 2 ** -10, 1 - 2 ** -10, 1 + 2 ** -24, 1 - 2 ** -24]) s.push(v * k, -v * k);
  }
  return Float32Array.from([...s, ...out]);
}

const OPTIONS: readonly CastOptions[] = [
  {},
  { overflow: 'saturate' },
  { overflow: 'nan' },
  { flushSubnormals: true },
  { randomBits: 3 },
  { randomBits: 12 },
];

const FLOATS = [...FORMATS, ...CUSTOM].filter((f) => f.kind === 'float');

for (const spec of FLOATS) {
  test(`${spec.name}: fast chop equals the reference bit for bit`, () => {
    const src = inputs(spec, 3000);
    for (const rounding of ROUNDINGS) {
      for (const o of OPTIONS) {
        if (o.randomBits && rounding !== 'stochastic') continue;
        const opts: CastOptions = { ...o, rounding, seed: 42 };
        const fast = chop(spec, src, opts);
        const ref = chopReference(spec, src, opts);
        const fb = new Uint32Array(fast.buffer);
        const rb = new Uint32Array(ref.buffer);
        for (let i = 0; i < src.length; i++) {
          if (Number.isNaN(fast[i]!) && Number.isNaN(ref[i]!)) continue;
          if (fb[i] !== rb[i])
            assert.fail(`${spec.name} ${JSON.stringify(opts)} x=${src[i]}: fast ${fast[i]} reference ${ref[i]}`);
        }
        // in place gives the same result
        const copy = src.slice();
        chop(spec, copy, opts, copy);
        for (let i = 0; i < src.length; i++) assert.ok(Object.is(copy[i], fast[i]) || Number.isNaN(copy[i]!));
      }
    }
  });
}

/** The formats every formats test runs over: the registry's small formats plus custom floats. */
import assert from 'node:assert/strict';
import { f32ToBits } from '../../src/core/bits.ts';
import { FORMATS, type FormatSpec, formatBits, lutSpec, parseFormat } from '../../src/formats/index.ts';

export const CUSTOM: readonly FormatSpec[] = [
  parseFormat('e3m4'),
  parseFormat('e5m3'),
  parseFormat('ue5m3'),
  parseFormat('ue4m3', { nan: 'all-ones' }),
  parseFormat('e2m0'),
  parseFormat('e3m0'),
  parseFormat('e4m3', { subnormals: false }),
  parseFormat('e3m2', { bias: 2 }),
  parseFormat('fp8_e5m2', { saturate: true }),
  parseFormat('e4m3', { nan: 'ieee', inf: false }),
  parseFormat('int6_narrow'),
  lutSpec('skewed', [0.5, -2, 0, 1, -0.25, 3]),
];

/** Registered formats of <= 16 bits, plus CUSTOM. */
export const SMALL: readonly FormatSpec[] = [...FORMATS.filter((f) => formatBits(f) <= 16), ...CUSTOM];

/**
 * Fails unless `got` and `want` hold the same float32 bits at every index (any NaN matches any NaN),
 * naming the index, the input and its bit pattern.
 */
export function assertSameBits(got: Float32Array, want: Float32Array, what: string, src: Float32Array): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const gb = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wb = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(got[i]!) && Number.isNaN(want[i]!)) continue;
    if (gb[i] !== wb[i])
      assert.fail(
        `${what} [${i}] x=${src[i]} (0x${f32ToBits(src[i]!).toString(16)}): got ${got[i]}, reference ${want[i]}`,
      );
  }
}

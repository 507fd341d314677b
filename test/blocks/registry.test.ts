/**
 * The block-type traits table: ids and sizes against ggml's (from the golden file's `types`), F32/F16/
 * BF16 rows, the encode/decode contract (imatrix path = quantize_<t>), and MixqError on bad lengths for
 * every type.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  BLOCK_TYPES,
  type BlockTypeName,
  blockTypeById,
  getBlockType,
  rowBytes,
} from '../../src/blocks/index.ts';
import { f16BitsToF32 } from '../../src/core/bits.ts';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';

const golden = JSON.parse(readFileSync(new URL('../golden/ggml_quants.json', import.meta.url), 'utf8')) as {
  types: Record<string, { type_id: number; block_size: number; type_size: number }>;
  inputs: { name: string; f32hex: string }[];
  imatrix: Record<string, { f32hex: string }>;
  quantize_api: Record<string, { input: string; imatrix: string | null; bytes: string }[]>;
};
const f32 = (s: string): Float32Array =>
  new Float32Array(
    Uint32Array.from({ length: s.length / 8 }, (_, i) => Number.parseInt(s.slice(8 * i, 8 * i + 8), 16))
      .buffer,
  );

function normals(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.nextNormal());
}

describe('block type registry', () => {
  it('ids, block sizes and bytes per block are ggml’s', () => {
    for (const [name, t] of Object.entries(golden.types)) {
      const traits = getBlockType(name);
      assert.equal(traits.ggmlTypeId, t.type_id, name);
      assert.equal(traits.blockSize, t.block_size, name);
      assert.equal(traits.bytesPerBlock, t.type_size, name);
      assert.equal(traits.bitsPerWeight, (8 * t.type_size) / t.block_size, name);
      assert.equal(blockTypeById(t.type_id), traits);
    }
    assert.deepEqual(
      ['F32', 'F16', 'BF16'].map((n) => [
        BLOCK_TYPES[n as BlockTypeName].ggmlTypeId,
        BLOCK_TYPES[n as BlockTypeName].bytesPerBlock,
      ]),
      [
        [0, 4],
        [1, 2],
        [30, 2],
      ],
    );
    assert.equal(BLOCK_TYPES.Q4_K.bitsPerWeight, 4.5);
    assert.equal(getBlockType('q6_k').name, 'Q6_K');
    assert.equal(blockTypeById(999), undefined);
    assert.throws(() => getBlockType('Q9_9'), MixqError);
    assert.equal(rowBytes(BLOCK_TYPES.Q4_K, 512), 288);
    assert.throws(() => rowBytes(BLOCK_TYPES.Q4_K, 100), MixqError);
  });

  it('encode with an imatrix is quantize_<t> with n_per_row = imatrix.length (golden bytes)', () => {
    const inputs = new Map(golden.inputs.map((r) => [r.name, f32(r.f32hex)]));
    for (const [name, entries] of Object.entries(golden.quantize_api)) {
      // a sample per type (the full set runs in ggml-golden.test.ts)
      for (const e of entries.filter((_, i) => i % 5 === 0)) {
        const x = inputs.get(e.input)!;
        const qw = e.imatrix === null ? undefined : f32(golden.imatrix[e.imatrix]!.f32hex);
        const got = Buffer.from(getBlockType(name).encode(x, qw)).toString('hex');
        assert.equal(got, e.bytes, `${name}/${e.input}/${e.imatrix}`);
      }
    }
  });

  it('two rows with an imatrix equal two one-row calls', () => {
    const x = normals(512, 1);
    const qw = normals(256, 2).map((v) => v * v + 0.1);
    for (const name of ['Q4_K', 'IQ4_NL', 'Q2_K'] as const) {
      const t = BLOCK_TYPES[name];
      const both = t.encode(x, qw);
      const a = t.encode(x.subarray(0, 256), qw);
      const b = t.encode(x.subarray(256), qw);
      assert.deepEqual(both, Uint8Array.from([...a, ...b]), name);
    }
  });

  it('F32, F16, BF16 store little-endian and round to nearest even', () => {
    const x = Float32Array.of(1, -2.5, 65504, 1 + 2 ** -11, 1 + 2 ** -8, Number.NaN, -0);
    const f = BLOCK_TYPES.F32;
    assert.deepEqual(Array.from(f.encode(x).subarray(0, 4)), [0, 0, 0x80, 0x3f]);
    assert.ok(Object.is(f.decode(f.encode(x), 7)[6], -0));
    const h = BLOCK_TYPES.F16.encode(x);
    assert.deepEqual(Array.from(h.subarray(0, 2)), [0x00, 0x3c]);
    assert.equal(BLOCK_TYPES.F16.decode(h, 7)[3], 1); // 1 + 2^-11 is a tie -> even (1)
    assert.equal(BLOCK_TYPES.F16.decode(h, 7)[2], 65504);
    assert.equal(f16BitsToF32(h[8]! | (h[9]! << 8)), 1 + 2 ** -8);
    const b = BLOCK_TYPES.BF16.decode(BLOCK_TYPES.BF16.encode(x), 7);
    assert.equal(b[4], 1); // 1 + 2^-8 ties to even in bf16 (7 mantissa bits)
    assert.ok(Number.isNaN(b[5]));
  });

  it('every type: round trip keeps the shape; decode of 0 or wrong lengths throws MixqError', () => {
    for (const t of Object.values(BLOCK_TYPES)) {
      const n = Math.max(256, t.blockSize);
      const x = normals(n, 9);
      const bytes = t.encode(x);
      assert.equal(bytes.length, (n / t.blockSize) * t.bytesPerBlock, t.name);
      const y = t.decode(bytes, n);
      assert.equal(y.length, n);
      // every format here keeps a coarse image of N(0,1) data: relative RMS error below 0.6 (Q2_K ~0.35)
      let err = 0;
      let ref = 0;
      for (let i = 0; i < n; i++) {
        err += (y[i]! - x[i]!) ** 2;
        ref += x[i]! ** 2;
      }
      assert.ok(Math.sqrt(err / ref) < 0.6, `${t.name}: rel rms ${Math.sqrt(err / ref)}`);
      assert.throws(() => t.decode(new Uint8Array(0), 0), MixqError, `${t.name} empty`);
      assert.throws(() => t.decode(bytes.subarray(1), n), MixqError, `${t.name} short`);
      assert.throws(() => t.decode(Uint8Array.from([...bytes, 0]), n), MixqError, `${t.name} long`);
      assert.throws(() => t.encode(new Float32Array(0)), MixqError, `${t.name} encode empty`);
      if (t.blockSize > 1) {
        assert.throws(() => t.decode(bytes, n - 1), MixqError, `${t.name} n not a multiple`);
        assert.throws(
          () => t.encode(new Float32Array(t.blockSize + 1)),
          MixqError,
          `${t.name} encode length`,
        );
      }
    }
  });

  it('imatrix length must divide the input', () => {
    assert.throws(() => BLOCK_TYPES.Q4_K.encode(new Float32Array(512), new Float32Array(300)), MixqError);
    assert.throws(() => BLOCK_TYPES.Q4_0.encode(new Float32Array(96), new Float32Array(64)), MixqError);
  });
});

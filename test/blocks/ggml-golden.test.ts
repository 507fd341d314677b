/**
 * ggml block types against ggml's own output (test/golden/ggml_quants.json: ggml-org/ggml d99724f,
 * scalar reference code, gcc -O3 without FMA). For every type and input row: the ref quantizer's bytes
 * and the dequantized floats must match bit for bit, and so must `quantize_<t>` with and without the
 * imatrix. IQ4_NL's `unspecified` byte ranges (ggml packs an unfilled buffer there) are skipped.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { GGML_CODECS } from '../../src/blocks/ggml/index.ts';

interface Unspecified {
  byte_range: [number, number];
  elem_range: [number, number];
}
interface RefEntry {
  input: string;
  bytes: string;
  dequant_f32hex: string;
  unspecified?: Unspecified[];
}
interface ApiEntry {
  input: string;
  imatrix: string | null;
  n_per_row: number;
  bytes: string;
  dequant_f32hex: string;
  same_as_ref: boolean;
}
interface Golden {
  inputs: { name: string; n: number; f32hex: string }[];
  imatrix: Record<string, { n: number; f32hex: string }>;
  types: Record<string, { type_id: number; block_size: number; type_size: number }>;
  ref: Record<string, RefEntry[]>;
  quantize_api: Record<string, ApiEntry[]>;
}

const golden = JSON.parse(
  readFileSync(new URL('../golden/ggml_quants.json', import.meta.url), 'utf8'),
) as Golden;

function f32FromHex(s: string): Float32Array {
  const u = new Uint32Array(s.length / 8);
  for (let i = 0; i < u.length; i++) u[i] = Number.parseInt(s.slice(8 * i, 8 * i + 8), 16);
  return new Float32Array(u.buffer);
}
function bytesFromHex(s: string): Uint8Array {
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return b;
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bitsOf = (f: Float32Array): Uint32Array => new Uint32Array(f.buffer, f.byteOffset, f.length);

const inputs = new Map(golden.inputs.map((r) => [r.name, f32FromHex(r.f32hex)]));
const imatrices = new Map(Object.entries(golden.imatrix).map(([k, v]) => [k, f32FromHex(v.f32hex)]));

/** First differing index, for a readable failure. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

describe('ggml golden: ref quantizers and dequantizers', () => {
  for (const [name, entries] of Object.entries(golden.ref)) {
    const codec = GGML_CODECS[name as keyof typeof GGML_CODECS];
    it(`${name}: ${entries.length} rows, bytes and dequant bit-exact`, () => {
      assert.ok(codec, `no codec for ${name}`);
      assert.equal(codec.info.typeId, golden.types[name]!.type_id);
      assert.equal(codec.info.bytesPerBlock, golden.types[name]!.type_size);
      for (const e of entries) {
        const x = inputs.get(e.input)!;
        const want = bytesFromHex(e.bytes);
        const got = codec.quantizeRef(x);
        const skip = new Uint8Array(want.length);
        const elemSkip = new Uint8Array(x.length);
        for (const u of e.unspecified ?? []) {
          skip.fill(1, u.byte_range[0], u.byte_range[1]);
          elemSkip.fill(1, u.elem_range[0], u.elem_range[1]);
        }
        assert.equal(got.length, want.length, `${name}/${e.input}: length`);
        for (let i = 0; i < want.length; i++) {
          if (!skip[i] && got[i] !== want[i]) {
            assert.fail(`${name}/${e.input}: byte ${i} is ${got[i]}, ggml wrote ${want[i]}`);
          }
        }
        // decoding ggml's bytes must reproduce ggml's floats bit for bit
        const wantY = f32FromHex(e.dequant_f32hex);
        const y = codec.dequantize(want, x.length);
        const d = firstDiff(bitsOf(y), bitsOf(wantY));
        assert.equal(d, -1, `${name}/${e.input}: dequant differs at ${d}: ${y[d]} vs ${wantY[d]}`);
        // into a caller's array (filled with junk first): the same floats, the same array returned
        const out = new Float32Array(x.length).fill(Number.NaN);
        assert.equal(codec.dequantizeInto(want, out), out);
        assert.equal(firstDiff(bitsOf(out), bitsOf(wantY)), -1, `${name}/${e.input}: dequantizeInto`);
        // and our own bytes decode to the same values (unspecified elements are +-0 either way)
        const y2 = codec.dequantize(got, x.length);
        for (let i = 0; i < y2.length; i++) {
          if (elemSkip[i]) assert.ok(y2[i] === 0, `${name}/${e.input}: unspecified element ${i} must be +-0`);
          else if (bitsOf(y2)[i] !== bitsOf(wantY)[i]) assert.fail(`${name}/${e.input}: own dequant at ${i}`);
        }
      }
    });
  }
});

describe('ggml golden: quantize_<t> with and without imatrix', () => {
  for (const [name, entries] of Object.entries(golden.quantize_api)) {
    const codec = GGML_CODECS[name as keyof typeof GGML_CODECS];
    it(`${name}: ${entries.length} calls bit-exact`, () => {
      assert.ok(codec, `no codec for ${name}`);
      for (const e of entries) {
        const x = inputs.get(e.input)!;
        const qw = e.imatrix === null ? null : imatrices.get(e.imatrix)!;
        const got = codec.quantize(x, e.n_per_row, qw);
        const tag = `${name}/${e.input}/imatrix=${e.imatrix}`;
        const d = firstDiff(got, bytesFromHex(e.bytes));
        assert.equal(
          d,
          -1,
          `${tag}: byte ${d}: ${hex(got.subarray(d, d + 4))} vs ${e.bytes.slice(2 * d, 2 * d + 8)}`,
        );
        const y = codec.dequantize(got, x.length);
        assert.equal(firstDiff(bitsOf(y), bitsOf(f32FromHex(e.dequant_f32hex))), -1, `${tag}: dequant`);
        if (e.imatrix === null) {
          const same = firstDiff(got, codec.quantizeRef(x)) === -1;
          assert.equal(same, e.same_as_ref, `${tag}: same_as_ref`);
        }
      }
    });
  }
  it('Q8_0 and MXFP4 ignore the imatrix (ggml: identical to the ref quantizer)', () => {
    for (const name of ['Q8_0', 'MXFP4'] as const) {
      const codec = GGML_CODECS[name];
      for (const [rowName, x] of inputs) {
        const qw = imatrices.get(String(x.length))!;
        assert.equal(hex(codec.quantize(x, x.length, qw)), hex(codec.quantizeRef(x)), `${name}/${rowName}`);
      }
    }
  });
});

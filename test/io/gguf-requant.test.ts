/**
 * requantizeGguf on a llama-shaped fixture (test/fixtures/gguf/llama-tiny.ts) and on ggml's own
 * tiny.gguf. Expected tensor bytes come from the blocks registry encoders, which are golden-verified
 * against ggml (test/blocks/ggml-golden.test.ts), applied to the ORIGINAL f32 values in one call per
 * tensor (per expert slice) — not through requantize's chunked row loop — and, for tiny.gguf, to ggml's
 * own dequantized values from the golden sidecar (independent of mixq's decoders).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getBlockType } from '../../src/blocks/registry.ts';
import { MixqError } from '../../src/core/errors.ts';
import {
  compilePlan,
  concatBytes,
  fallbackType,
  isRequantizable,
  LLAMA_FTYPE,
  parseGguf,
  parseImatrixDat,
  requantizeGguf,
  writeImatrixDat,
} from '../../src/io/index.ts';
import { buildLlamaTiny, referenceEncode as expected } from '../fixtures/gguf/llama-tiny.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const fx = buildLlamaTiny();

const PLAN = [
  { pattern: 'blk.*.attn_v.weight', type: 'q6_k' },
  { pattern: 'blk.*.ffn_down.weight', type: 'q4_k' }, // 320 % 256 != 0 -> Q5_0
  { pattern: 'blk.0.odd.weight', type: 'q4_k' }, // 48: neither 256 nor 32 divides -> F16
  { pattern: '/attn_(q|k)\\./', type: 'Q8_0' },
  { pattern: 'token_embd.weight', type: 'q4_0' },
  { pattern: 'blk.0.attn_norm.weight', type: 'q8_0' }, // 1-D: never quantized
];
// name -> [type written, imatrix used]
const WANT: Record<string, [string, boolean]> = {
  'token_embd.weight': ['q4_0', false],
  'blk.0.attn_norm.weight': ['f32', false],
  'blk.0.attn_q.weight': ['q8_0', false], // ggml's quantize_q8_0 ignores the imatrix
  'blk.0.attn_k.weight': ['q8_0', false],
  'blk.0.attn_v.weight': ['q6_K', true],
  'blk.0.attn_output.weight': ['q4_K', true],
  'blk.0.ffn_norm.weight': ['f32', false],
  'blk.0.ffn_up.weight': ['q4_K', true],
  'blk.0.ffn_down.weight': ['q5_0', true],
  'blk.0.ffn_gate_exps.weight': ['q4_K', true],
  'blk.0.odd.weight': ['f16', false],
  'output_norm.weight': ['f32', false],
  'output.weight': ['q6_K', false], // LM head: Q6_K under a k-quant default, as llama.cpp
};

test('mixed plan + imatrix: bytes equal the registry encoders on the original f32, layout valid', async () => {
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const seen: number[] = [];
  const r = await requantizeGguf(src, PLAN, {
    defaultType: 'q4_k',
    imatrix: fx.imatrix,
    progress: (done, total) => seen.push(done / total),
  });
  const out = parseGguf(concatBytes(r.chunks), 'out.gguf');
  // names, dims, order intact
  assert.deepEqual(
    out.tensors.map((t) => [t.name, t.ne]),
    fx.tensors.map((t) => [t.name, t.ne]),
  );
  // alignment respected: general.alignment = 64 kept, every tensor at a multiple of it
  assert.equal(out.alignment, 64);
  assert.equal(out.dataOffset % 64, 0);
  for (const t of out.tensors) assert.equal(t.absOffset % 64, 0, t.name);
  for (const [i, t] of out.tensors.entries()) {
    const f = fx.tensors[i]!;
    const [type, useIm] = WANT[t.name]!;
    assert.equal(t.type.name, type, t.name);
    const rep = r.tensors[i]!;
    assert.equal(rep.to, type, t.name);
    assert.equal(rep.imatrix, useIm, t.name);
    const got = await out.readTensorBytes(t);
    const want =
      type === f.type
        ? await src.readTensorBytes(src.tensors[i]!)
        : expected(f.values, f.ne, type, fx.imatrix.get(t.name));
    assert.equal(rep.bytesOut, want.length, t.name);
    assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${t.name}: bytes differ from ${type}.encode`);
  }
  // the imatrix changes the result: the same tensor without it differs (so the test can fail)
  const noIm = expected(fx.tensors[5]!.values, fx.tensors[5]!.ne, 'q4_K');
  assert.ok(!Buffer.from(await out.readTensorBytes(out.tensors[5]!)).equals(Buffer.from(noIm)));
  // metadata: every KV kept in order with its value; file_type replaced in place; version appended
  const keys = out.kv.map((k) => k.key);
  assert.deepEqual(keys, [...fx.kv.map((k) => k.key), 'general.quantization_version']);
  for (const k of fx.kv) {
    if (k.key === 'general.file_type') continue;
    assert.deepEqual(out.get(k.key), k.value, k.key);
  }
  const ft = out.kv.find((k) => k.key === 'general.file_type')!;
  assert.deepEqual([ft.type, ft.value], ['u32', 15]); // MOSTLY_Q4_K_M: Q4_K holds the most weights
  const qv = out.kv.find((k) => k.key === 'general.quantization_version')!;
  assert.deepEqual([qv.type, qv.value], ['u32', 2]);
  assert.equal(r.fileType, 15);
  // fallbacks and ignored rules are reported
  assert.match(r.tensors[8]!.note ?? '', /fallback from q4_K/);
  assert.match(r.tensors[10]!.note ?? '', /fallback from q4_K/);
  assert.ok(r.notes.some((n) => n.includes('blk.0.attn_norm.weight')));
  // totals and progress
  assert.equal(
    r.totals.bytesOut,
    out.tensors.reduce((a, t) => a + t.nbytes, 0),
  );
  assert.equal(
    r.totals.elements,
    fx.tensors.reduce((a, t) => a + t.values.length, 0),
  );
  assert.equal(r.totals.bitsPerWeightOut, (8 * r.totals.bytesOut) / r.totals.elements);
  assert.ok(r.totals.bitsPerWeightOut < 6 && r.totals.bitsPerWeightIn > 28);
  assert.equal(seen.length, fx.tensors.length);
  assert.equal(seen.at(-1), 1);
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    seen,
  );
});

test('requantizing again to the same types copies bytes unchanged (llama.cpp: nothing to do)', async () => {
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const once = await requantizeGguf(src, PLAN, { defaultType: 'q4_k', imatrix: fx.imatrix });
  const mid = parseGguf(concatBytes(once.chunks), 'mid.gguf');
  const twice = await requantizeGguf(mid, PLAN, { defaultType: 'q4_k' });
  assert.ok(Buffer.from(concatBytes(twice.chunks)).equals(Buffer.from(concatBytes(once.chunks))));
  assert.ok(twice.tensors.every((t) => t.action === 'copy'));
});

test('re-quantizing quantized tensors dequantizes first: q4_K -> q8_0 equals Q8_0.encode(Q4_K.decode)', async () => {
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const q4 = parseGguf(
    concatBytes((await requantizeGguf(src, {}, { defaultType: 'q4_k' })).chunks),
    'q4.gguf',
  );
  const r = await requantizeGguf(q4, { 'blk.0.attn_q.weight': 'q8_0' });
  const out = parseGguf(concatBytes(r.chunks), 'q8.gguf');
  const i = out.tensors.findIndex((t) => t.name === 'blk.0.attn_q.weight');
  const dq = getBlockType('q4_k').decode(await q4.readTensorBytes(q4.tensors[i]!), 256 * 64);
  assert.ok(
    Buffer.from(await out.readTensorBytes(out.tensors[i]!)).equals(
      Buffer.from(getBlockType('q8_0').encode(dq)),
    ),
  );
  // everything else untouched; file_type follows the dominant type (still Q4_K)
  assert.equal(r.tensors.filter((t) => t.action === 'requantize').length, 1);
  assert.equal(r.fileType, LLAMA_FTYPE.Q4_K);
});

test('an ImatrixData from a file works like the Map it holds', async () => {
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const plan = { 'blk.0.attn_output.weight': 'q4_k' };
  const data = parseImatrixDat(writeImatrixDat({ entries: fx.imatrix }), 'im.dat');
  const a = await requantizeGguf(src, plan, { imatrix: data });
  const b = await requantizeGguf(src, plan, { imatrix: fx.imatrix });
  assert.ok(Buffer.from(concatBytes(a.chunks)).equals(Buffer.from(concatBytes(b.chunks))));
  assert.equal(a.tensors[5]!.imatrix, true);
  assert.ok(a.notes.some((n) => /importance-matrix entries unused/.test(n)));
});

test('tied embeddings: without output.weight, token_embd gets the LM-head type; q8_0 default leaves it', async () => {
  const { tensors } = buildLlamaTiny();
  const file = parseGguf(fx.bytes, 'x');
  const tied = { ...file, tensors: file.tensors.filter((t) => t.name !== 'output.weight') };
  const r = await requantizeGguf(tied, {}, { defaultType: 'q4_0' });
  assert.equal(r.tensors[0]!.to, 'q6_K');
  assert.equal(r.fileType, LLAMA_FTYPE.Q4_0);
  const r8 = await requantizeGguf(file, {}, { defaultType: 'q8_0' });
  assert.equal(r8.tensors.find((t) => t.name === 'output.weight')!.to, 'q8_0');
  assert.equal(r8.fileType, 7);
  assert.equal(tensors.length, file.tensors.length);
});

test('golden tiny.gguf (written by ggml): metadata kept, re-typing checked against ggml dequant values', async () => {
  const bytes = new Uint8Array(readFileSync(join(ROOT, 'test/golden/tiny.gguf')));
  const side = JSON.parse(readFileSync(join(ROOT, 'test/golden/tiny.gguf.json'), 'utf8')) as {
    tensors: { name: string; values_f32hex?: string; dequant_f32hex?: string; f16_bits?: string }[];
  };
  const hexF32 = (h: string) => {
    const out = new Float32Array(h.length / 8);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < out.length; i++)
      dv.setUint32(4 * i, Number.parseInt(h.slice(8 * i, 8 * i + 8), 16), true);
    return out;
  };
  const src = parseGguf(bytes, 'tiny.gguf');
  // llama.cpp's rule quantizes none of these names ('weight' suffix missing): all copied, KVs kept
  const plain = await requantizeGguf(src, {}, { defaultType: 'q4_k' });
  const p = parseGguf(concatBytes(plain.chunks), 'p.gguf');
  for (const [i, t] of p.tensors.entries()) {
    assert.ok(
      Buffer.from(await p.readTensorBytes(t)).equals(Buffer.from(await src.readTensorBytes(src.tensors[i]!))),
    );
  }
  assert.deepEqual(
    p.kv.map((k) => [k.key, k.type, k.value]),
    [
      ...src.kv.map((k) => [k.key, k.type, k.value]),
      ['general.quantization_version', 'u32', 2],
      ['general.file_type', 'u32', 0],
    ],
  );
  // with every tensor declared quantizable: f32 [3,5] -> q8_0 falls back to F16 (3 % 32), f16 -> q8_0,
  // q8_0 -> q4_0 (dequantize first), q4_K -> q6_K
  const r = await requantizeGguf(
    src,
    { tensor_f32: 'q8_0', tensor_f16: 'q8_0', 'blk.0.tensor_q8_0': 'q4_0', 'blk.0.tensor_q4_k': 'q6_k' },
    { quantizable: () => true },
  );
  const out = parseGguf(concatBytes(r.chunks), 'r.gguf');
  assert.deepEqual(
    out.tensors.map((t) => [t.name, t.type.name, t.ne]),
    [
      ['tensor_f32', 'f16', [3, 5]],
      ['tensor_f16', 'q8_0', [32, 2]],
      ['blk.0.tensor_q8_0', 'q4_0', [64, 2]],
      ['blk.0.tensor_q4_k', 'q6_K', [256]],
    ],
  );
  const values = (name: string): Float32Array => {
    const s = side.tensors.find((t) => t.name === name)!;
    if (s.dequant_f32hex) return hexF32(s.dequant_f32hex);
    if (s.values_f32hex) return hexF32(s.values_f32hex);
    throw new Error(`no values for ${name}`);
  };
  const f16 = getBlockType('f16').decode(await src.readTensorBytes(src.tensors[1]!), 64);
  const want = [
    getBlockType('f16').encode(values('tensor_f32')),
    getBlockType('q8_0').encode(f16),
    getBlockType('q4_0').encode(values('blk.0.tensor_q8_0')),
    getBlockType('q6_k').encode(values('blk.0.tensor_q4_k')),
  ];
  for (const [i, t] of out.tensors.entries()) {
    assert.ok(Buffer.from(await out.readTensorBytes(t)).equals(Buffer.from(want[i]!)), t.name);
  }
  assert.equal(r.fileType, LLAMA_FTYPE.Q6_K); // q6_K holds the most weights (256 of 463)
});

test('plan helpers: globs, /regex/, first match wins, unknown type and bad regex are MixqErrors', () => {
  const rules = compilePlan([
    { pattern: 'blk.?.attn_*', type: 'q8_0' },
    { pattern: '/ffn_(up|gate)/', type: 'q4_0' },
    { pattern: /^output\./, type: 'q6_k' },
    { pattern: '*', type: 'q4_k' },
  ]);
  const pick = (n: string) => rules.find((r) => r.test(n))?.type.name;
  assert.equal(pick('blk.3.attn_q.weight'), 'Q8_0');
  assert.equal(pick('blk.12.attn_q.weight'), 'Q4_K'); // '?' is one character
  assert.equal(pick('blk.12.ffn_gate.weight'), 'Q4_0');
  assert.equal(pick('output.weight'), 'Q6_K');
  assert.equal(pick('blkX0.attn_q'), 'Q4_K'); // '.' is literal in globs
  assert.throws(
    () => compilePlan({ x: 'q9_9' }),
    (e: unknown) => e instanceof MixqError && e.field === 'rules[0].type' && /Q4_K/.test(e.expected),
  );
  assert.throws(
    () => compilePlan([{ pattern: '/(/', type: 'q8_0' }]),
    (e: unknown) => e instanceof MixqError && e.field === 'rules[0].pattern',
  );
  // llama.cpp's fallback chain, exhaustively over the k-quants and a few row lengths
  const fb = (t: string, n: number) => fallbackType(getBlockType(t), n).name;
  assert.deepEqual(
    ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_0', 'IQ4_NL'].map((t) => [fb(t, 512), fb(t, 96), fb(t, 40)]),
    [
      ['Q2_K', 'IQ4_NL', 'F16'],
      ['Q3_K', 'IQ4_NL', 'F16'],
      ['Q4_K', 'Q5_0', 'F16'],
      ['Q5_K', 'Q5_1', 'F16'],
      ['Q6_K', 'Q8_0', 'F16'],
      ['Q4_0', 'Q4_0', 'F16'],
      ['IQ4_NL', 'IQ4_NL', 'F16'],
    ],
  );
  // quantizable rule
  assert.equal(isRequantizable({ name: 'blk.0.attn_q.weight', ne: [256, 256] }), true);
  assert.equal(isRequantizable({ name: 'blk.0.attn_q.weight', ne: [256, 1] }), false); // ggml_n_dims = 1
  assert.equal(isRequantizable({ name: 'blk.0.attn_norm.weight', ne: [256] }), false);
  assert.equal(isRequantizable({ name: 'blk.0.ffn_gate_inp.weight', ne: [256, 8] }), false);
  assert.equal(isRequantizable({ name: 'blk.0.attn_q.bias', ne: [256, 2] }), false);
});

test('bad inputs: imatrix of the wrong length, unknown default type, undecodable source type', async () => {
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  await assert.rejects(
    requantizeGguf(
      src,
      {},
      { defaultType: 'q4_k', imatrix: new Map([['blk.0.attn_q.weight', new Float32Array(100)]]) },
    ),
    (e: unknown) =>
      e instanceof MixqError &&
      e.source === 'llama-tiny.gguf' &&
      e.field === 'imatrix.blk.0.attn_q.weight' &&
      e.expected === '256 (ne[0])',
  );
  await assert.rejects(
    requantizeGguf(src, {}, { defaultType: 'q3_k_m' }),
    (e: unknown) => e instanceof MixqError && e.field === 'defaultType',
  );
  // an iq2_xxs tensor (no decoder in mixq): copying is fine, re-typing is a clear error
  const info = {
    ...src.tensors[2]!,
    typeId: 16,
    type: { id: 16, name: 'iq2_xxs', blockSize: 256, typeSize: 66, plain: false },
  };
  const fake = { ...src, tensors: [info], readTensorBytes: async () => new Uint8Array(66 * 64) };
  const copied = await requantizeGguf(fake, {}, {});
  assert.equal(copied.tensors[0]!.action, 'copy');
  await assert.rejects(
    requantizeGguf(fake, {}, { defaultType: 'q8_0' }),
    (e: unknown) =>
      e instanceof MixqError && e.field === 'tensors.blk.0.attn_q.weight.type' && /iq2_xxs/.test(e.message),
  );
});

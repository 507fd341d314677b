/**
 * safetensors reader/writer: byte vectors from the reference implementation's own tests
 * (huggingface/safetensors bindings/python/tests test_simple.py / test_pt_comparison.py), round trips of
 * every dtype, and the validation rules (each with a file that must be refused, naming the field).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MixqError } from '../../src/core/errors.ts';
import {
  concatBytes,
  floatBytesToF32,
  f32ToFloatBytes,
  parseSafetensors,
  readSafetensors,
  referenceOrder,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDtype,
  type SafetensorsTensorInput,
  safetensorsModelView,
  writeSafetensors,
} from '../../src/io/index.ts';

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

test('writer reproduces the reference serialization of {"test": int32 zeros [2,2]} byte for byte', () => {
  // from test_simple.py: save({"test": torch.zeros((2, 2), dtype=torch.int32)})
  const want = latin1(
    `@\x00\x00\x00\x00\x00\x00\x00{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    ${'\x00'.repeat(16)}`,
  );
  const got = concatBytes(
    writeSafetensors({ tensors: [{ name: 'test', dtype: 'I32', shape: [2, 2], data: new Uint8Array(16) }] }),
  );
  assert.deepEqual(got, want);
});

test('reader accepts the reference file with __metadata__ (header of 102 bytes: data not 8-aligned)', async () => {
  const bytes = latin1(
    `f\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}       ${'\x00'.repeat(16)}`,
  );
  const f = await parseSafetensors(bytes, 'ref.safetensors');
  assert.deepEqual({ ...f.metadata }, { framework: 'pt' });
  assert.equal(f.tensors.length, 1);
  const t = f.tensors[0]!;
  assert.deepEqual([t.name, t.dtype, t.shape, t.absOffset, t.nbytes], ['test1', 'I32', [2, 2], 110, 16]);
  assert.deepEqual(await f.readTensorBytes(t), new Uint8Array(16));
});

function rnd(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s & 0xff;
  }
  return b;
}

test('round trip of every dtype, scalars, empty tensors and metadata; re-writing gives identical bytes', async () => {
  const dtypes = Object.keys(SAFETENSORS_DTYPE_BYTES) as SafetensorsDtype[];
  const tensors: SafetensorsTensorInput[] = dtypes.map((dtype, i) => {
    const shape = [i % 3 === 0 ? 0 : 2, 3, i + 1];
    const n = shape.reduce((a, b) => a * b, 1);
    return { name: `t.${i}.${dtype}`, dtype, shape, data: rnd(n * SAFETENSORS_DTYPE_BYTES[dtype], i + 7) };
  });
  tensors.push({
    name: 'scalar',
    dtype: 'F32',
    shape: [],
    data: f32ToFloatBytes('F32', Float32Array.of(2.5)),
  });
  const ordered = referenceOrder(tensors);
  const bytes = concatBytes(
    writeSafetensors({ tensors: ordered, metadata: { format: 'pt', ünï: 'cödé "q"' } }),
  );
  assert.equal(
    (8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8,
    0,
    'data starts 8-aligned',
  );
  const f = await parseSafetensors(bytes);
  assert.deepEqual({ ...f.metadata }, { format: 'pt', ünï: 'cödé "q"' });
  assert.equal(f.tensors.length, tensors.length);
  for (const t of ordered) {
    const info = f.tensors.find((x) => x.name === t.name)!;
    assert.equal(info.dtype, t.dtype);
    assert.deepEqual(info.shape, t.shape);
    assert.deepEqual(await f.readTensorBytes(info), t.data);
    // every tensor naturally aligned in the file, as the reference order guarantees
    if (info.nbytes > 0) assert.equal(info.absOffset % SAFETENSORS_DTYPE_BYTES[t.dtype], 0, t.name);
  }
  const again = concatBytes(
    writeSafetensors({
      tensors: await Promise.all(
        f.tensors.map(async (t) => ({
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
          data: await f.readTensorBytes(t),
        })),
      ),
      ...(f.metadata ? { metadata: f.metadata } : {}),
    }),
  );
  assert.deepEqual(again, bytes);
});

/** Builds a file from a raw header string and data length. */
function file(header: string, dataLen: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

async function refused(bytes: Uint8Array, field: RegExp, message?: RegExp): Promise<void> {
  await assert.rejects(parseSafetensors(bytes, 'bad.safetensors'), (e: unknown) => {
    assert.ok(e instanceof MixqError, `expected MixqError, got ${String(e)}`);
    assert.equal(e.source, 'bad.safetensors');
    assert.match(e.field, field);
    if (message) assert.match(e.message, message);
    assert.ok(e.expected.length > 0, 'names what was expected');
    return true;
  });
}

test('validation: every malformed header is refused with the field named', async () => {
  const ok = (o: string) => `{"a":{"dtype":"F32","shape":[2],"data_offsets":${o}}}`;
  await refused(file(ok('[0,8]'), 8).subarray(0, 5), /header_length/);
  const huge = file(ok('[0,8]'), 8);
  new DataView(huge.buffer).setBigUint64(0, 1n << 62n, true);
  await refused(huge, /header_length/, /exceeds/);
  const past = file(ok('[0,8]'), 8);
  new DataView(past.buffer).setBigUint64(0, 1000n, true);
  await refused(past, /header_length/, /past the end/);
  await refused(file('[1,2]', 0), /header/);
  await refused(file('{"a":', 0), /header/, /JSON/);
  await refused(file(`{"a":${'['.repeat(50)}${']'.repeat(50)}}`, 0), /header/, /nested/);
  await refused(file(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, 1), /dtype/);
  await refused(file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0), /shape\[0\]/);
  await refused(file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}`, 0), /shape\[0\]/);
  await refused(file(ok('[0,4]'), 4), /data_offsets/, /needs 8/);
  await refused(file(ok('[8,0]'), 8), /data_offsets/, /begin/);
  await refused(file(ok('[4,12]'), 12), /data_offsets/, /gap/);
  await refused(file(ok('[0,8]'), 12), /data_offsets/, /cover 8/);
  await refused(file(ok('[0,8]'), 4), /data_offsets/, /cover 8/);
  await refused(
    file(
      `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`,
      12,
    ),
    /data_offsets/,
    /overlaps/,
  );
  await refused(file(`{"__metadata__":{"k":1}}`, 0), /__metadata__\.k/);
  await refused(file(`{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}`, 4), /shape/);
  const badUtf8 = file(ok('[0,8]'), 8);
  badUtf8[12] = 0xff;
  await refused(badUtf8, /header/, /UTF-8/);
});

test("'__proto__' in __metadata__ stays a plain key", async () => {
  const f = await parseSafetensors(file(`{"__metadata__":{"__proto__":"x"}}`, 0));
  assert.equal(Object.getPrototypeOf(f.metadata), null);
  assert.equal(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')?.value, 'x');
});

test('float conversions: F16/BF16/F8 decode exhaustively match the defining formulas', () => {
  const codes = new Uint8Array(256).map((_, i) => i);
  const e4m3 = floatBytesToF32('F8_E4M3', codes);
  const e5m2 = floatBytesToF32('F8_E5M2', codes);
  for (let c = 0; c < 256; c++) {
    const s = c & 0x80 ? -1 : 1;
    // e4m3fn: bias 7, 3 mantissa bits, only S.1111.111 is NaN, no inf
    const e = (c >> 3) & 15;
    const m = c & 7;
    const want4 =
      e === 15 && m === 7 ? Number.NaN : s * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
    assert.ok(
      Object.is(e4m3[c], Math.fround(want4)) || (Number.isNaN(want4) && Number.isNaN(e4m3[c]!)),
      `e4m3 ${c}`,
    );
    // e5m2: bias 15, 2 mantissa bits, IEEE inf/NaN
    const e5 = (c >> 2) & 31;
    const m2 = c & 3;
    const want5 =
      e5 === 31
        ? m2 === 0
          ? s * Infinity
          : Number.NaN
        : s * (e5 === 0 ? (m2 / 4) * 2 ** -14 : (1 + m2 / 4) * 2 ** (e5 - 15));
    assert.ok(Object.is(e5m2[c], want5) || (Number.isNaN(want5) && Number.isNaN(e5m2[c]!)), `e5m2 ${c}`);
  }
  assert.equal(e4m3[0x7e], 448); // e4m3fn max: 1.75 * 2^(15-7)
  const x = Float32Array.of(1, -2.5, 65504, 1e-7, 3.140625);
  assert.deepEqual(
    floatBytesToF32('F16', f32ToFloatBytes('F16', x)),
    Float32Array.of(1, -2.5, 65504, 2 ** -23, 3.140625),
  );
  assert.deepEqual(floatBytesToF32('BF16', f32ToFloatBytes('BF16', x)).slice(0, 2), Float32Array.of(1, -2.5));
  assert.deepEqual(floatBytesToF32('F32', f32ToFloatBytes('F32', x)), x);
});

test('ModelView roles from Hugging Face names', async () => {
  const mk = (name: string, shape: number[], dtype: SafetensorsDtype = 'F16'): SafetensorsTensorInput => ({
    name,
    dtype,
    shape,
    data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[dtype]),
  });
  const bytes = concatBytes(
    writeSafetensors({
      tensors: [
        mk('model.embed_tokens.weight', [64, 32]),
        mk('model.layers.3.self_attn.q_proj.weight', [32, 32]),
        mk('model.layers.3.self_attn.q_proj.bias', [32]),
        mk('model.layers.3.input_layernorm.weight', [32]),
        mk('model.norm.weight', [32]),
        mk('lm_head.weight', [64, 32]),
        mk('model.layers.0.mlp.down_proj.weight', [8, 8]),
        mk('position_ids', [1, 2048], 'I64'),
      ],
    }),
  );
  const v = safetensorsModelView(await parseSafetensors(bytes));
  const by = Object.fromEntries(v.tensors.map((t) => [t.name, t]));
  assert.equal(v.format, 'safetensors');
  assert.equal(by['model.embed_tokens.weight']?.role, 'embedding');
  assert.equal(by['model.embed_tokens.weight']?.quantizable, true);
  assert.equal(by['model.layers.3.self_attn.q_proj.weight']?.role, 'matmul-weight');
  assert.equal(by['model.layers.3.self_attn.q_proj.weight']?.layer, 3);
  assert.equal(by['model.layers.3.self_attn.q_proj.weight']?.quantizable, true);
  assert.equal(by['model.layers.3.self_attn.q_proj.bias']?.role, 'bias');
  assert.equal(by['model.layers.3.input_layernorm.weight']?.role, 'norm');
  assert.equal(by['model.norm.weight']?.role, 'norm');
  assert.equal(by['lm_head.weight']?.role, 'matmul-weight');
  assert.equal(by['model.layers.0.mlp.down_proj.weight']?.quantizable, false, '64 elements < 1024');
  assert.equal(by.position_ids?.quantizable, false, 'integers are never quantized');
  assert.equal(by['model.layers.3.self_attn.q_proj.weight']?.dtype, 'f16');
});

test('property: parse(write(tensors, metadata)) gives back names, dtypes, shapes, bytes; write is a fixed point', async () => {
  const dtypes = Object.keys(SAFETENSORS_DTYPE_BYTES) as SafetensorsDtype[];
  const str = fc.string({ unit: 'grapheme', maxLength: 10 });
  const tensorArb = fc.uniqueArray(
    fc.record({
      name: str.filter((s) => s !== '__metadata__'),
      dtype: fc.constantFrom(...dtypes),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
    }),
    { selector: (t) => t.name, maxLength: 6 },
  );
  const metaArb = fc.option(fc.dictionary(str, str, { maxKeys: 4 }), { nil: undefined });
  await fc.assert(
    fc.asyncProperty(tensorArb, metaArb, async (list, metadata) => {
      const tensors = referenceOrder(
        list.map((t, i) => {
          const n = t.shape.reduce((a, b) => a * b, 1);
          return { ...t, data: rnd(n * SAFETENSORS_DTYPE_BYTES[t.dtype], i + 1) };
        }),
      );
      const bytes = concatBytes(writeSafetensors({ tensors, ...(metadata ? { metadata } : {}) }));
      const f = await parseSafetensors(bytes);
      assert.deepEqual(f.metadata ? { ...f.metadata } : undefined, metadata ? { ...metadata } : undefined);
      const byName = new Map(f.tensors.map((t) => [t.name, t]));
      for (const t of tensors) {
        const info = byName.get(t.name)!;
        assert.deepEqual([info.dtype, info.shape], [t.dtype, t.shape]);
        assert.deepEqual(await f.readTensorBytes(info), t.data);
      }
      const again = writeSafetensors({
        tensors: await Promise.all(
          f.tensors.map(async (t) => ({
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
            data: await f.readTensorBytes(t),
          })),
        ),
        ...(f.metadata ? { metadata: f.metadata } : {}),
      });
      // tensors come back in data order, which is the written order (offsets only grow)
      assert.deepEqual(concatBytes(again), bytes);
    }),
    { numRuns: 200, seed: 20261122 },
  );
});

test('streaming: opening reads only the length and the header; tensor bytes are read on demand', async () => {
  const big = new Uint8Array(1 << 20).fill(7);
  const bytes = concatBytes(
    writeSafetensors({
      tensors: [
        { name: 'a', dtype: 'U8', shape: [big.length], data: big },
        { name: 'b', dtype: 'F32', shape: [2], data: f32ToFloatBytes('F32', Float32Array.of(1, 2)) },
      ],
    }),
  );
  const reads: [number, number][] = [];
  const src = {
    name: 's',
    size: bytes.length,
    read: (o: number, l: number) => {
      reads.push([o, l]);
      return Promise.resolve(bytes.subarray(o, o + l));
    },
  };
  const f = await readSafetensors(src);
  assert.equal(reads.length, 2);
  assert.equal(reads[0]![1] + reads[1]![1], f.dataOffset, 'nothing beyond the header');
  const b = f.tensors.find((t) => t.name === 'b')!;
  assert.deepEqual(floatBytesToF32('F32', await f.readTensorBytes(b)), Float32Array.of(1, 2));
  assert.deepEqual(reads[2], [b.absOffset, 8]);
});

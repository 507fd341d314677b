/**
 * GGUF reader/writer beyond the golden file: nested arrays and every value type round trip, alignment
 * handling, and the validation rules (each malformed file refused with a MixqError naming file + field).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { MixqError } from '../../src/core/errors.ts';
import {
  concatBytes,
  type GgufArray,
  type GgufKV,
  type GgufValue,
  type GgufValueType,
  type GgufTensorInput,
  ggufModelView,
  parseGguf,
  writeGguf,
} from '../../src/io/index.ts';

const golden = new Uint8Array(readFileSync(new URL('../golden/tiny.gguf', import.meta.url)));

const kvs: GgufKV[] = [
  { key: 'general.architecture', type: 'str', value: 'llama' },
  { key: 'general.alignment', type: 'u32', value: 64 },
  { key: 'u64.max', type: 'u64', value: (1n << 64n) - 1n },
  { key: 'i64.min', type: 'i64', value: -(1n << 63n) },
  { key: 'f32.nan', type: 'f32', value: Number.NaN },
  { key: 'f64.negzero', type: 'f64', value: -0 },
  { key: 'empty', type: 'arr', value: { itemType: 'f32', items: [] } },
  {
    key: 'nested',
    type: 'arr',
    value: {
      itemType: 'arr',
      items: [
        { itemType: 'i16', items: [-1, 2, -32768] },
        { itemType: 'str', items: ['a', '🦙'] },
        { itemType: 'arr', items: [{ itemType: 'bool', items: [true, false] }] },
      ],
    },
  },
];

function tensor(name: string, ne: number[], type: string, nbytes: number): GgufTensorInput {
  return { name, ne, type, data: new Uint8Array(nbytes).map((_, i) => (i * 7 + name.length) & 0xff) };
}

test('all value types incl. nested arrays, extreme u64/i64 and custom alignment round trip', () => {
  const tensors = [
    tensor('token_embd.weight', [32, 4], 'q8_0', 4 * 34),
    tensor('blk.0.attn_norm.weight', [32], 'f32', 128),
    tensor('blk.0.attn_q.weight', [256, 2], 'Q4_K', 2 * 144),
  ];
  const bytes = concatBytes(writeGguf({ kv: kvs, tensors }));
  const f = parseGguf(bytes, 'rt.gguf');
  assert.equal(f.alignment, 64);
  assert.equal(f.dataOffset % 64, 0);
  assert.deepEqual(
    f.kv.map((k) => k.key),
    kvs.map((k) => k.key),
  );
  assert.equal(f.get('u64.max'), (1n << 64n) - 1n);
  assert.equal(f.get('i64.min'), -(1n << 63n));
  assert.ok(Number.isNaN(f.get('f32.nan') as number));
  assert.ok(Object.is(f.get('f64.negzero'), -0));
  assert.deepEqual(f.get('nested'), kvs[7]!.value);
  assert.deepEqual(
    f.tensors.map((t) => [t.name, t.offset % 64, t.shape]),
    [
      ['token_embd.weight', 0, [4, 32]],
      ['blk.0.attn_norm.weight', 0, [32]],
      ['blk.0.attn_q.weight', 0, [2, 256]],
    ],
  );
  assert.deepEqual(concatBytes(writeGguf({ kv: f.kv, tensors })), bytes);
});

test('writer refuses values that do not fit their type, and wrong tensor sizes', () => {
  const w =
    (kv: GgufKV[], tensors: GgufTensorInput[] = []) =>
    () =>
      writeGguf({ kv, tensors });
  assert.throws(w([{ key: 'x', type: 'u8', value: 256 }]), /kv\[0\]\.value.*does not fit u8/);
  assert.throws(w([{ key: 'x', type: 'u64', value: -1n }]), /out of range/);
  assert.throws(w([{ key: 'x', type: 'i32', value: 1.5 }]), MixqError);
  assert.throws(w([{ key: 'x', type: 'str', value: 1 }]), /not a string/);
  assert.throws(
    w([
      { key: 'x', type: 'u8', value: 1 },
      { key: 'x', type: 'u8', value: 1 },
    ]),
    /duplicate key/,
  );
  assert.throws(w([], [tensor('t', [31], 'q8_0', 34)]), /multiple of 32/);
  assert.throws(w([], [tensor('t', [32], 'q8_0', 33)]), /34 bytes/);
  assert.throws(w([], [tensor('t', [32], 'q9_9', 33)]), /unknown ggml type/);
});

/** Offsets of fields in the golden file, found by walking it with the parser's own numbers. */
function patch(edit: (b: Uint8Array, dv: DataView) => void): Uint8Array {
  const b = golden.slice();
  edit(b, new DataView(b.buffer));
  return b;
}

function refused(bytes: Uint8Array, field: RegExp, message?: RegExp): void {
  assert.throws(
    () => parseGguf(bytes, 'bad.gguf'),
    (e: unknown) => {
      assert.ok(e instanceof MixqError, `expected MixqError, got ${String(e)}`);
      assert.equal(e.source, 'bad.gguf');
      assert.match(e.field, field);
      if (message) assert.match(e.message, message);
      assert.ok(e.expected.length > 0);
      return true;
    },
  );
}

// layout of tiny.gguf's first tensor info (from the parse): name 'tensor_f32' at tensor_info start
const first = parseGguf(golden);
const tiStart = (() => {
  const needle = new TextEncoder().encode('tensor_f32');
  outer: for (let i = 0; i < golden.length; i++) {
    for (let j = 0; j < needle.length; j++) if (golden[i + j] !== needle[j]) continue outer;
    return i - 8; // u64 length precedes the name
  }
  throw new Error('not found');
})();
const nDimsAt = tiStart + 8 + 10;

test('validation: malformed headers are refused with the field named', () => {
  refused(golden.subarray(0, 3), /magic/, /truncated/);
  refused(
    patch((b) => (b[0] = 0x48)),
    /magic/,
    /bad magic/,
  );
  refused(
    patch((_, dv) => dv.setUint32(4, 4, true)),
    /version/,
  );
  refused(
    patch((_, dv) => dv.setUint32(4, 0x03000000, true)),
    /version/,
    /big-endian/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(8, 1n << 40n, true)),
    /n_tensors/,
    /exceeds/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(8, 1000n, true)),
    /n_tensors/,
    /remain/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(16, 1n << 63n, true)),
    /n_kv/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(24, 1n << 50n, true)),
    /kv\[0\]\.key/,
    /string length/,
  );
  refused(
    patch((_, dv) => dv.setUint32(24 + 8 + 20, 13, true)),
    /kv\[0\]\.type/,
    /unknown value type/,
  );
  refused(
    patch((_, dv) => dv.setUint32(nDimsAt, 5, true)),
    /tensor_infos\[0\]\.n_dims/,
    /out of range/,
  );
  refused(
    patch((_, dv) => dv.setUint32(nDimsAt, 0, true)),
    /tensor_infos\[0\]\.n_dims/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(nDimsAt + 4, 1n << 60n, true)),
    /tensor_infos\[0\]\.ne\[0\]/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(nDimsAt + 4, 1n << 52n, true)),
    /tensor_infos\[0\]\.ne/,
    /overflows/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(nDimsAt + 4, 1n << 40n, true)),
    /tensor_infos\[0\]\.offset/,
    /outside/,
  );
  refused(
    patch((_, dv) => dv.setUint32(nDimsAt + 20, 4, true)),
    /tensor_infos\[0\]\.type/,
    /unknown ggml type/,
  );
  refused(
    patch((_, dv) => dv.setUint32(nDimsAt + 20, 8, true)),
    /tensor_infos\[0\]\.ne\[0\]/,
    /block size/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(nDimsAt + 24, 8n, true)),
    /tensor_infos\[0\]\.offset/,
    /aligned/,
  );
  refused(
    patch((_, dv) => dv.setBigUint64(nDimsAt + 24, 64n, true)),
    /tensor_infos\[\d\]\.offset/,
    /overlaps/,
  );
  refused(golden.subarray(0, 1000), /tensor_infos\[\d\]\.offset/, /outside the file/);
  refused(golden.subarray(0, 700), /tensor_infos/, /truncated/);
});

test('validation: duplicate keys/names, bad bool, bad alignment, deep nesting', () => {
  const kv = (k: GgufKV[]) => concatBytes(writeGguf({ kv: k, tensors: [] }));
  const dup = kv([
    { key: 'a', type: 'u8', value: 1 },
    { key: 'b', type: 'u8', value: 1 },
  ]);
  dup[24 + 8] = 'b'.charCodeAt(0); // rename key 'a' -> 'b' (header 24 B, key length 8 B)
  refused(dup, /kv\[1\]\.key/, /duplicate/);
  const bool = kv([{ key: 'a', type: 'bool', value: true }]);
  bool[24 + 8 + 1 + 4] = 2; // header, key length, key 'a', type, then the bool byte
  refused(bool, /kv\[0\]\.value/, /bool/);
  const align = kv([{ key: 'general.alignment', type: 'u32', value: 32 }]);
  align[24 + 8 + 17 + 4] = 3; // the u32 value follows key length, key and type
  refused(align, /general\.alignment/, /bad general\.alignment 3/);
  const align64 = kv([{ key: 'general.alignmenX', type: 'u64', value: 32n }]);
  align64[24 + 8 + 16] = 't'.charCodeAt(0); // the writer refuses a u64 alignment, so patch the key name
  refused(align64, /general\.alignment/, /of type u64/);
  let deep: { itemType: 'arr' | 'u8'; items: unknown[] } = { itemType: 'u8', items: [1] };
  for (let i = 0; i < 10; i++) deep = { itemType: 'arr', items: [deep] };
  refused(
    kv([{ key: 'd', type: 'arr', value: deep as never }]),
    /kv\[0\]\.value(\[0\])+/,
    /nested too deeply/,
  );
  const names = concatBytes(
    writeGguf({ kv: [], tensors: [tensor('aa', [1], 'f32', 4), tensor('ab', [1], 'f32', 4)] }),
  );
  names[24 + 34 + 8 + 1] = 'a'.charCodeAt(0); // 2nd info starts after the 34-byte 1st; 'ab' -> 'aa'
  refused(names, /tensor_infos\[1\]\.name/, /duplicate/);
});

test('a prefix read stops at the header cap instead of growing without bound', async () => {
  const { readGguf } = await import('../../src/io/gguf/index.ts');
  const big = concatBytes(
    writeGguf({ kv: [{ key: 's', type: 'str', value: 'x'.repeat(5000) }], tensors: [] }),
  );
  const src = {
    name: 'big.gguf',
    size: big.length,
    read: (o: number, l: number) => Promise.resolve(big.subarray(o, o + l)),
  };
  await assert.rejects(
    readGguf(src, { limits: { maxHeaderBytes: 1000 }, initialReadBytes: 64 }),
    /header is larger than the limit/,
  );
  await assert.rejects(
    readGguf(src, { limits: { maxStringBytes: 100 } }),
    /kv\[0\]\.value.*string length 5000/,
  );
  assert.equal((await readGguf(src, { initialReadBytes: 64 })).get('s'), 'x'.repeat(5000));
});

test('ModelView of a GGUF file: llama.cpp names -> roles, layers, logical shapes', () => {
  const bytes = concatBytes(
    writeGguf({
      kv: [{ key: 'general.architecture', type: 'str', value: 'llama' }],
      tensors: [
        tensor('token_embd.weight', [64, 100], 'f16', 64 * 100 * 2),
        tensor('blk.7.attn_q.weight', [64, 64], 'q8_0', 64 * 2 * 34),
        tensor('blk.7.attn_norm.weight', [64], 'f32', 256),
        tensor('blk.7.ffn_down.weight', [32, 4], 'f32', 512),
        tensor('output_norm.weight', [64], 'f32', 256),
        tensor('output.weight', [64, 100], 'q4_0', 100 * 2 * 18),
        tensor('blk.7.ffn_up_exps.weight', [64, 16, 4], 'f16', 64 * 16 * 4 * 2),
      ],
    }),
  );
  const v = ggufModelView(parseGguf(bytes));
  assert.equal(v.format, 'gguf');
  assert.equal(v.metadata['general.architecture'], 'llama');
  const r = v.tensors.map((t) => [t.name, t.role, t.layer, t.quantizable, t.dtype, t.shape.join('x')]);
  assert.deepEqual(r, [
    ['token_embd.weight', 'embedding', undefined, true, 'f16', '100x64'],
    ['blk.7.attn_q.weight', 'matmul-weight', 7, true, 'q8_0', '64x64'],
    ['blk.7.attn_norm.weight', 'norm', 7, false, 'f32', '64'],
    ['blk.7.ffn_down.weight', 'matmul-weight', 7, false, 'f32', '4x32'],
    ['output_norm.weight', 'norm', undefined, false, 'f32', '64'],
    ['output.weight', 'matmul-weight', undefined, true, 'q4_0', '100x64'],
    ['blk.7.ffn_up_exps.weight', 'matmul-weight', 7, true, 'f16', '4x16x64'],
  ]);
  assert.equal(first.tensors.length, 4);
});

test('ggml type table: ids, names, block sizes and bytes as in ggml type_traits (d99724f)', async () => {
  const { GGML_TYPES } = await import('../../src/io/gguf/types.ts');
  // [id, ggml name, block size, bytes per block]: independent transcription of ggml.c type_traits
  const want: [number, string, number, number][] = [
    [0, 'f32', 1, 4],
    [1, 'f16', 1, 2],
    [2, 'q4_0', 32, 18],
    [3, 'q4_1', 32, 20],
    [6, 'q5_0', 32, 22],
    [7, 'q5_1', 32, 24],
    [8, 'q8_0', 32, 34],
    [9, 'q8_1', 32, 36],
    [10, 'q2_K', 256, 84],
    [11, 'q3_K', 256, 110],
    [12, 'q4_K', 256, 144],
    [13, 'q5_K', 256, 176],
    [14, 'q6_K', 256, 210],
    [15, 'q8_K', 256, 292],
    [16, 'iq2_xxs', 256, 66],
    [17, 'iq2_xs', 256, 74],
    [18, 'iq3_xxs', 256, 98],
    [19, 'iq1_s', 256, 50],
    [20, 'iq4_nl', 32, 18],
    [21, 'iq3_s', 256, 110],
    [22, 'iq2_s', 256, 82],
    [23, 'iq4_xs', 256, 136],
    [24, 'i8', 1, 1],
    [25, 'i16', 1, 2],
    [26, 'i32', 1, 4],
    [27, 'i64', 1, 8],
    [28, 'f64', 1, 8],
    [29, 'iq1_m', 256, 56],
    [30, 'bf16', 1, 2],
    [34, 'tq1_0', 256, 54],
    [35, 'tq2_0', 256, 66],
    [39, 'mxfp4', 32, 17],
  ];
  assert.deepEqual(
    GGML_TYPES.map((t) => [t.id, t.name, t.blockSize, t.typeSize]),
    want,
  );
});

test('property: parse(write(kv, tensors)) gives back every value and tensor; write is a fixed point', async () => {
  const { GGML_TYPES } = await import('../../src/io/gguf/types.ts');
  type Scalar = Exclude<GgufValueType, 'arr'>;
  const str = fc.string({ unit: 'grapheme', maxLength: 12 });
  const scalar: Record<Scalar, fc.Arbitrary<GgufValue>> = {
    u8: fc.integer({ min: 0, max: 255 }),
    i8: fc.integer({ min: -128, max: 127 }),
    u16: fc.integer({ min: 0, max: 0xffff }),
    i16: fc.integer({ min: -0x8000, max: 0x7fff }),
    u32: fc.integer({ min: 0, max: 0xffffffff }),
    i32: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
    f32: fc.float(),
    f64: fc.double(),
    bool: fc.boolean(),
    str,
    u64: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    i64: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  };
  const scalarTypes = Object.keys(scalar) as Scalar[];
  // an array of scalars, or (depth > 0) an array of arrays: every element of one array has one type
  const arrayOf = (depth: number): fc.Arbitrary<GgufArray> =>
    fc.oneof(
      fc
        .constantFrom(...scalarTypes)
        .chain((itemType) =>
          fc.array(scalar[itemType], { maxLength: 6 }).map((items) => ({ itemType, items })),
        ),
      ...(depth > 0
        ? [
            fc
              .array(arrayOf(depth - 1), { maxLength: 3 })
              .map((items) => ({ itemType: 'arr' as const, items })),
          ]
        : []),
    );
  const entry: fc.Arbitrary<GgufKV> = fc.oneof(
    fc.constantFrom(...scalarTypes).chain((type) => scalar[type].map((value) => ({ key: '', type, value }))),
    arrayOf(2).map((value) => ({ key: '', type: 'arr' as const, value })),
  );
  const kvArb = fc.uniqueArray(fc.tuple(str, entry), { selector: (x) => x[0], maxLength: 8 });
  const tensorArb = fc.uniqueArray(
    fc.record({
      name: str,
      type: fc.constantFrom(...GGML_TYPES),
      ne: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }),
    }),
    { selector: (t) => t.name, maxLength: 5 },
  );
  fc.assert(
    fc.property(kvArb, tensorArb, (kvList, tlist) => {
      const kv: GgufKV[] = kvList.map(([key, e]) => ({ ...e, key }));
      const tensors = tlist.map((t, i) => {
        const ne = [t.ne[0]! * t.type.blockSize, ...t.ne.slice(1)];
        const n = ne.reduce((a, b) => a * b, 1);
        const data = new Uint8Array((n / t.type.blockSize) * t.type.typeSize).fill(i + 1);
        return { name: t.name, ne, type: t.type.id, data };
      });
      const bytes = concatBytes(writeGguf({ kv, tensors }));
      const f = parseGguf(bytes);
      assert.deepEqual(f.kv, kv);
      assert.deepEqual(
        f.tensors.map((t) => [t.name, t.ne, t.typeId, t.nbytes]),
        tensors.map((t) => [t.name, t.ne, t.type, t.data.length]),
      );
      for (const [i, t] of f.tensors.entries()) {
        assert.deepEqual(bytes.subarray(t.absOffset, t.absOffset + t.nbytes), tensors[i]!.data);
      }
      assert.deepEqual(concatBytes(writeGguf({ kv: f.kv, tensors })), bytes);
    }),
    { numRuns: 300, seed: 20261122 },
  );
});

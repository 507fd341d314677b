/**
 * GGUF against golden data written by ggml itself (test/golden/tiny.gguf + tiny.gguf.json): the parse
 * must match the sidecar field by field, and re-writing the parsed file must reproduce it byte for byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileSource } from '../../src/io/files.node.ts';
import {
  concatBytes,
  type GgufArray,
  type GgufValue,
  ggufValueTypeId,
  parseGguf,
  readGguf,
  writeGguf,
} from '../../src/io/gguf/index.ts';

const GOLDEN = new URL('../golden/tiny.gguf', import.meta.url);
const bytes = new Uint8Array(readFileSync(GOLDEN));
interface SideKv {
  key: string;
  type: string;
  type_id: number;
  value: unknown;
  bits?: string;
  utf8_bytes?: number | number[];
  array_type?: string;
  array_type_id?: number;
  n?: number;
}
interface SideTensor {
  name: string;
  type: string;
  type_id: number;
  n_dims: number;
  ne: number[];
  n_elements: number;
  offset: number;
  abs_offset: number;
  nbytes: number;
  data_hex: string;
}
const side = JSON.parse(readFileSync(new URL('../golden/tiny.gguf.json', import.meta.url), 'utf8')) as {
  file_size: number;
  sha256: string;
  version: number;
  alignment: number;
  alignment_key_present: boolean;
  n_tensors: number;
  n_kv: number;
  tensor_info_end: number;
  data_offset: number;
  kv: SideKv[];
  tensors: SideTensor[];
};

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const f32hex = (x: number) => {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  return hex(new Uint8Array(dv.buffer));
};
const f64hex = (x: number) => {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  return hex(new Uint8Array(dv.buffer));
};

test('golden file is the one the sidecar describes', () => {
  assert.equal(bytes.length, side.file_size);
  assert.equal(sha256(bytes), side.sha256);
});

test('header fields match the sidecar', async () => {
  const src = await fileSource(GOLDEN.pathname);
  try {
    const f = await readGguf(src);
    assert.equal(f.version, side.version);
    assert.equal(f.alignment, side.alignment);
    assert.equal(f.alignmentKeyPresent, side.alignment_key_present);
    assert.equal(f.tensors.length, side.n_tensors);
    assert.equal(f.kv.length, side.n_kv);
    assert.equal(f.tensorInfoEnd, side.tensor_info_end);
    assert.equal(f.dataOffset, side.data_offset);
    assert.equal(f.fileSize, side.file_size);
  } finally {
    await src.close();
  }
});

function checkScalar(
  type: string,
  got: GgufValue,
  want: unknown,
  bits: string | undefined,
  where: string,
): void {
  if (type === 'u64' || type === 'i64') {
    assert.equal(typeof got, 'bigint', where);
    assert.equal((got as bigint).toString(), want, where);
  } else if (type === 'f32') {
    assert.equal(f32hex(got as number), bits, where);
  } else if (type === 'f64') {
    assert.equal(f64hex(got as number), bits, where);
  } else {
    assert.equal(got, want, where);
  }
}

test('every KV matches: key, type, value (bit-exact floats, bigint u64/i64, UTF-8 strings)', () => {
  const f = parseGguf(bytes, 'tiny.gguf');
  side.kv.forEach((s, i) => {
    const kv = f.kv[i]!;
    assert.equal(kv.key, s.key);
    assert.equal(kv.type, s.type);
    assert.equal(ggufValueTypeId(kv.type), s.type_id);
    if (s.type === 'arr') {
      const a = kv.value as GgufArray;
      assert.equal(a.itemType, s.array_type);
      assert.equal(ggufValueTypeId(a.itemType), s.array_type_id);
      assert.equal(a.items.length, s.n);
      (s.value as unknown[]).forEach((w, j) => {
        checkScalar(a.itemType, a.items[j]!, w, undefined, `${s.key}[${j}]`);
      });
      if (Array.isArray(s.utf8_bytes)) {
        assert.deepEqual(
          a.items.map((x) => Buffer.byteLength(x as string, 'utf8')),
          s.utf8_bytes,
        );
      }
    } else {
      checkScalar(s.type, kv.value, s.value, s.bits, s.key);
      if (typeof s.utf8_bytes === 'number') assert.equal(Buffer.byteLength(kv.value as string), s.utf8_bytes);
    }
  });
});

test('every tensor info and its data bytes match', async () => {
  const f = parseGguf(bytes, 'tiny.gguf');
  for (const [i, s] of side.tensors.entries()) {
    const t = f.tensors[i]!;
    assert.equal(t.name, s.name);
    assert.equal(t.type.name, s.type);
    assert.equal(t.typeId, s.type_id);
    assert.equal(t.ne.length, s.n_dims);
    assert.deepEqual(t.ne, s.ne);
    assert.deepEqual(t.shape, [...s.ne].reverse());
    assert.equal(t.nElements, s.n_elements);
    assert.equal(t.offset, s.offset);
    assert.equal(t.absOffset, s.abs_offset);
    assert.equal(t.nbytes, s.nbytes);
    assert.equal(hex(await f.readTensorBytes(t)), s.data_hex);
  }
});

test('re-writing the parsed file gives identical bytes (sha256 from the sidecar)', async () => {
  const f = parseGguf(bytes, 'tiny.gguf');
  const tensors = await Promise.all(
    f.tensors.map(async (t) => ({
      name: t.name,
      ne: t.ne,
      type: t.typeId,
      data: await f.readTensorBytes(t),
    })),
  );
  const out = concatBytes(writeGguf({ kv: f.kv, tensors, version: f.version }));
  assert.equal(out.length, side.file_size);
  assert.equal(sha256(out), side.sha256);
});

test('reading through a small prefix window gives the same header as reading in memory', async () => {
  const calls: number[] = [];
  const src = {
    name: 'tiny.gguf',
    size: bytes.length,
    read: (o: number, l: number) => {
      calls.push(l);
      return Promise.resolve(bytes.subarray(o, o + l));
    },
  };
  const a = await readGguf(src, { limits: { maxHeaderBytes: 800 }, initialReadBytes: 40 });
  const b = parseGguf(bytes);
  assert.deepEqual(
    a.tensors.map((t) => [t.name, t.absOffset]),
    b.tensors.map((t) => [t.name, t.absOffset]),
  );
  assert.ok(calls.length > 3, 'the prefix grew several times');
  assert.ok(Math.max(...calls) <= 800, 'never reads more than the header cap at once');
});

/**
 * Importance-matrix readers (src/io/gguf/imatrix.ts). Files are built here byte by byte in the layouts
 * documented from llama.cpp (save_imatrix_legacy / save_imatrix), independently of mixq's writers, and
 * read back; the writers round-trip; bad files give MixqErrors naming file, field and expectation; the
 * legacy reader survives 2000 random mutations (only MixqError, never another exception).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  concatBytes,
  type GgufKV,
  type GgufTensorInput,
  imatrixFromGguf,
  parseGguf,
  parseImatrixDat,
  parseImatrixJson,
  readImatrixBytes,
  writeGguf,
  writeImatrixDat,
  writeImatrixGguf,
  writeImatrixJson,
} from '../../src/io/index.ts';

/** Little-endian builder for hand-made legacy files. */
function dat(
  parts: (['i32', number] | ['str', string] | ['f32', number[]] | ['raw', number[]])[],
): Uint8Array {
  const out: number[] = [];
  const b = new DataView(new ArrayBuffer(4));
  for (const [k, v] of parts) {
    if (k === 'i32') {
      b.setInt32(0, v, true);
      out.push(...new Uint8Array(b.buffer));
    } else if (k === 'str') out.push(...new TextEncoder().encode(v));
    else if (k === 'raw') out.push(...v);
    else
      for (const x of v) {
        b.setFloat32(0, x, true);
        out.push(...new Uint8Array(b.buffer));
      }
  }
  return Uint8Array.from(out);
}

const NAME_A = 'blk.0.attn_q.weight';
const NAME_B = 'blk.0.ffn_down.weight';
/** Two entries, ncall 4 and 0, then last_call 10 and the dataset name: what llama-imatrix writes. */
const LEGACY = dat([
  ['i32', 2],
  ['i32', NAME_A.length],
  ['str', NAME_A],
  ['i32', 4],
  ['i32', 3],
  ['f32', [4, 10, 0.5]],
  ['i32', NAME_B.length],
  ['str', NAME_B],
  ['i32', 0],
  ['i32', 2],
  ['f32', [7, 0.25]],
  ['i32', 10],
  ['i32', 8],
  ['str', 'wiki.txt'],
]);

function isMixq(source: string, field: string | RegExp, expected?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof MixqError, `not a MixqError: ${String(e)}`);
    assert.equal(e.source, source);
    if (typeof field === 'string') assert.equal(e.field, field);
    else assert.match(e.field, field);
    if (expected) assert.match(e.expected, expected);
    return true;
  };
}

test('legacy imatrix.dat: values / ncall (f32), ncall 0 kept, last_call and dataset read', () => {
  const d = parseImatrixDat(LEGACY, 'imatrix.dat');
  assert.equal(d.format, 'dat');
  assert.deepEqual([...d.entries.keys()], [NAME_A, NAME_B]);
  assert.deepEqual([...d.entries.get(NAME_A)!], [1, 2.5, 0.125]);
  assert.deepEqual([...d.entries.get(NAME_B)!], [7, 0.25]);
  assert.equal(d.chunkCount, 10);
  assert.deepEqual(d.datasets, ['wiki.txt']);
  // f32 division, not double: 1/3 rounds to the f32 nearest
  const third = parseImatrixDat(
    dat([
      ['i32', 1],
      ['i32', 1],
      ['str', 'x'],
      ['i32', 3],
      ['i32', 1],
      ['f32', [1]],
    ]),
  );
  assert.equal(third.entries.get('x')![0], Math.fround(1 / 3));
  assert.equal(third.chunkCount, undefined); // older files end right after the entries
  // last_call without a dataset name
  const lc = parseImatrixDat(
    dat([
      ['i32', 1],
      ['i32', 1],
      ['str', 'x'],
      ['i32', 1],
      ['i32', 1],
      ['f32', [2]],
      ['i32', 5],
    ]),
  );
  assert.equal(lc.chunkCount, 5);
});

test('legacy writer round-trips exactly (ncall = 1) and auto-detection picks the legacy reader', async () => {
  const rng = new Rng(7);
  const entries = new Map<string, Float32Array>();
  for (let i = 0; i < 5; i++) {
    entries.set(
      `blk.${i}.ffn_up.weight`,
      Float32Array.from({ length: 64 + i }, () => rng.nextFloat() * 3),
    );
  }
  const bytes = writeImatrixDat({ entries, datasets: ['calib.txt'], chunkCount: 42 });
  const back = await readImatrixBytes(bytes, 'w.dat');
  assert.equal(back.format, 'dat');
  assert.deepEqual(back.entries, entries);
  assert.deepEqual(back.datasets, ['calib.txt']);
  assert.equal(back.chunkCount, 42);
});

test('GGUF imatrix: mean = in_sum2 / count per matrix, count 0 -> 1, in_sum ignored, metadata read', async () => {
  const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);
  const kv: GgufKV[] = [
    { key: 'general.type', type: 'str', value: 'imatrix' },
    { key: 'imatrix.datasets', type: 'arr', value: { itemType: 'str', items: ['a.txt', 'b.txt'] } },
    { key: 'imatrix.chunk_count', type: 'u32', value: 12 },
    { key: 'imatrix.chunk_size', type: 'u32', value: 512 },
  ];
  const sums = [3, 6, 9, 1, 2, 4, 8, 16];
  const tensors: GgufTensorInput[] = [
    { name: `${NAME_A}.counts`, ne: [1], type: 'f32', data: f32([3]) },
    { name: `${NAME_A}.in_sum2`, ne: [4], type: 'f32', data: f32([3, 1, 0, 30]) },
    { name: `${NAME_A}.in_sum`, ne: [4], type: 'f32', data: f32([-1, -1, -1, -1]) },
    // an expert tensor: ne = [4 columns, 2 experts], the second expert never reached (count 0)
    { name: 'blk.0.ffn_up_exps.weight.in_sum2', ne: [4, 2], type: 'f32', data: f32(sums) },
    { name: 'blk.0.ffn_up_exps.weight.counts', ne: [1, 2], type: 'f32', data: f32([2, 0]) },
  ];
  const file = parseGguf(concatBytes(writeGguf({ kv, tensors })), 'imatrix.gguf');
  const d = await imatrixFromGguf(file);
  assert.equal(d.format, 'gguf');
  assert.deepEqual([...d.entries.get(NAME_A)!], [1, Math.fround(1 / 3), 0, 10]);
  assert.deepEqual([...d.entries.get('blk.0.ffn_up_exps.weight')!], [1.5, 3, 4.5, 0.5, 1, 1, 1, 1]);
  assert.deepEqual(d.datasets, ['a.txt', 'b.txt']);
  assert.equal(d.chunkCount, 12);
  // writer round trip, experts included, through auto-detection
  const nMat = new Map([['blk.0.ffn_up_exps.weight', 2]]);
  const back = await readImatrixBytes(concatBytes(writeImatrixGguf(d, { nMat })), 'w.gguf');
  assert.deepEqual(back.entries, d.entries);
  assert.deepEqual(back.datasets, d.datasets);
  const t = parseGguf(concatBytes(writeImatrixGguf(d, { nMat })), 'w.gguf').tensors.find((x) =>
    x.name.endsWith('exps.weight.in_sum2'),
  )!;
  assert.deepEqual(t.ne, [4, 2]);
});

test('JSON imatrix: round trip and auto-detection', async () => {
  const entries = new Map([
    [NAME_A, Float32Array.of(0.1, 2, 3.5)],
    [NAME_B, Float32Array.of(1e-30, 0)],
  ]);
  const text = writeImatrixJson(entries);
  const back = await readImatrixBytes(new TextEncoder().encode(`  ${text}`), 'im.json');
  assert.equal(back.format, 'json');
  assert.deepEqual(back.entries, entries);
  assert.throws(() => parseImatrixJson('[1,2]', 'im.json'), isMixq('im.json', 'json'));
  assert.throws(() => parseImatrixJson('{"a": [1, "x"]}', 'im.json'), isMixq('im.json', 'a[1]', /number/));
  assert.throws(() => parseImatrixJson('{"a": [1, -2]}', 'im.json'), isMixq('im.json', 'a[1]', />= 0/));
  assert.throws(() => parseImatrixJson('{"a": []}', 'im.json'), isMixq('im.json', 'a'));
  assert.throws(() => parseImatrixJson('{', 'im.json'), isMixq('im.json', 'json', /JSON/));
});

test('bad legacy files: MixqError naming the file, the field and what was expected', () => {
  const cases: [Uint8Array, string | RegExp, RegExp?][] = [
    [dat([['i32', 0]]), 'n_entries', /^1\.\./],
    [
      dat([
        ['i32', 1_000_000_000],
        ['raw', new Array(40).fill(0)],
      ]),
      'n_entries',
    ],
    [
      dat([
        ['i32', 1],
        ['i32', -5],
        ['raw', new Array(16).fill(0)],
      ]),
      'entries[0].name_len',
      /1\.\.4096/,
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 99],
        ['f32', [1, 2]],
      ]),
      'entries[0].nval',
      /1\.\.2/,
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['str', 'x'],
        ['i32', -1],
        ['i32', 1],
        ['f32', [1]],
      ]),
      'entries[0].ncall',
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 2],
        ['f32', [1, Number.NaN]],
      ]),
      'entries[0].values[1]',
      /finite/,
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 1],
        ['f32', [-1]],
      ]),
      'entries[0].values[0]',
      />= 0/,
    ],
    [
      dat([
        ['i32', 2],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 1],
        ['f32', [1]],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 1],
        ['f32', [1]],
      ]),
      'entries[1].name',
      /unique/,
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['raw', [0xff]],
        ['i32', 1],
        ['i32', 1],
        ['f32', [1]],
      ]),
      'entries[0].name',
      /UTF-8/,
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 1],
        ['f32', [1]],
        ['i32', 3],
        ['i32', 50],
        ['str', 'ab'],
      ]),
      'dataset',
    ],
    [
      dat([
        ['i32', 1],
        ['i32', 1],
        ['str', 'x'],
        ['i32', 1],
        ['i32', 1],
        ['f32', [1]],
        ['i32', 3],
        ['i32', 0],
        ['raw', [1, 2]],
      ]),
      'trailer',
      /end of file/,
    ],
    [LEGACY.subarray(0, 60), /entries\[1\]/],
  ];
  for (const [bytes, field, expected] of cases) {
    assert.throws(() => parseImatrixDat(bytes, 'bad.dat'), isMixq('bad.dat', field, expected));
  }
  // caps are configurable
  assert.throws(
    () => parseImatrixDat(LEGACY, 'bad.dat', { maxValues: 2 }),
    isMixq('bad.dat', 'entries[0].nval', /1\.\.2/),
  );
});

test('bad GGUF imatrix files: missing counts, wrong type, a model instead of an imatrix, shape mismatch', async () => {
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(1).buffer);
  const mk = (tensors: GgufTensorInput[], kv: GgufKV[] = []) =>
    parseGguf(concatBytes(writeGguf({ kv, tensors })), 'bad.gguf');
  await assert.rejects(
    imatrixFromGguf(mk([{ name: 'w.in_sum2', ne: [4], type: 'f32', data: f32(4) }])),
    isMixq('bad.gguf', 'tensors.w', /counts/),
  );
  await assert.rejects(
    imatrixFromGguf(
      mk([
        { name: 'w.in_sum2', ne: [4], type: 'f16', data: new Uint8Array(8) },
        { name: 'w.counts', ne: [1], type: 'f32', data: f32(1) },
      ]),
    ),
    isMixq('bad.gguf', 'tensors.w.in_sum2.type', /f32/),
  );
  await assert.rejects(
    imatrixFromGguf(
      mk([
        { name: 'w.in_sum2', ne: [4], type: 'f32', data: f32(4) },
        { name: 'w.counts', ne: [1, 3], type: 'f32', data: f32(3) },
      ]),
    ),
    isMixq('bad.gguf', 'tensors.w.in_sum2', /n_mat/),
  );
  await assert.rejects(
    imatrixFromGguf(
      mk(
        [{ name: 'token_embd.weight', ne: [4], type: 'f32', data: f32(4) }],
        [{ key: 'general.type', type: 'str', value: 'model' }],
      ),
    ),
    isMixq('bad.gguf', 'general.type', /imatrix/),
  );
  await assert.rejects(
    imatrixFromGguf(mk([{ name: 'token_embd.weight', ne: [4], type: 'f32', data: f32(4) }])),
    isMixq('bad.gguf', 'tensors'),
  );
  await assert.rejects(readImatrixBytes(new Uint8Array(2), 'tiny.bin'), isMixq('tiny.bin', 'size'));
});

test('fuzz: 2000 mutations of a legacy file parse or fail with MixqError only', () => {
  const rng = new Rng(2024);
  let ok = 0;
  let rejected = 0;
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) {
    let b = Uint8Array.from(LEGACY);
    const kind = rng.nextU32() % 4;
    const at = rng.nextU32() % b.length;
    if (kind === 0) {
      b[at] = rng.nextU32() & 0xff; // random byte
    } else if (kind === 1) {
      b[at] = b[at]! ^ (1 << (rng.nextU32() % 8)); // bit flip
    } else if (kind === 2) {
      b = b.subarray(0, at); // truncation
    } else {
      // overwrite an aligned i32 with an extreme value
      const v = [0, -1, 0x7fffffff, -0x80000000, 1 << 20][rng.nextU32() % 5]!;
      const o = at - (at % 4);
      if (o + 4 <= b.length) new DataView(b.buffer).setInt32(o, v, true);
    }
    try {
      const d = parseImatrixDat(b, 'fuzz.dat');
      for (const v of d.entries.values()) for (const x of v) assert.ok(x >= 0 && Number.isFinite(x));
      ok++;
    } catch (e) {
      assert.ok(e instanceof MixqError, `mutation ${i}: ${String(e)}`);
      assert.equal(e.source, 'fuzz.dat');
      rejected++;
    }
  }
  assert.ok(ok > 50 && rejected > 50, `ok ${ok}, rejected ${rejected}`);
  assert.ok(performance.now() - t0 < 5000);
});

/**
 * Streamed re-quantization (requantizeGgufTo + io/file-stream.node.ts writeFileAtomicSink): the written
 * file equals the whole-buffer output the way mixq built it before streaming (every tensor encoded in
 * full by the registry encoders, then writeGguf over the whole list); the header goes out before the
 * second tensor is read and no tensor is read before the previous one went to the sink (memory bounded
 * by one tensor); a failure of the writer or of the encoder leaves no partial file and an existing output
 * untouched; plan errors fail before the first byte.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type BlockTypeTraits, getBlockType } from '../../src/blocks/registry.ts';
import { writeFileAtomicSink } from '../../src/io/file-stream.node.ts';
import {
  concatBytes,
  type GgufFile,
  type GgufTensorInput,
  parseGguf,
  requantizeGguf,
  requantizeGgufTo,
  writeGguf,
} from '../../src/io/index.ts';
import { buildLlamaTiny, referenceEncode } from '../fixtures/gguf/llama-tiny.ts';

const fx = buildLlamaTiny();
const PLAN = [
  { pattern: 'blk.*.attn_v.weight', type: 'q6_k' },
  { pattern: 'blk.*.ffn_down.weight', type: 'q4_k' }, // fallback to Q5_0
  { pattern: 'blk.0.odd.weight', type: 'q4_k' }, // fallback to F16
  { pattern: '/attn_(q|k)\\./', type: 'Q8_0' },
  { pattern: 'token_embd.weight', type: 'q4_0' },
];
const OPTS = { defaultType: 'q4_k', imatrix: fx.imatrix } as const;

let dir = '';
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  dir ||= await mkdtemp(join(tmpdir(), 'mixq-stream-'));
  return dir;
}

test('streamed file equals the whole-buffer output (full-tensor encodes + writeGguf)', async () => {
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const out = join(await tmp(), 'streamed.gguf');
  const { value: report, bytes } = await writeFileAtomicSink(out, (w) =>
    requantizeGgufTo(src, PLAN, w, {
      ...OPTS,
      // the worker-thread path's contract (encodeRows), here on this thread
      encodeRows: async (x, _n, type, im) => type.encode(x, im),
    }),
  );
  const streamed = new Uint8Array(await readFile(out));
  assert.equal(bytes, streamed.length);
  // the old output: each tensor whole (copy, or one registry encode of the original f32), then writeGguf
  const tensors: GgufTensorInput[] = report.tensors.map((r, i) => {
    const f = fx.tensors[i]!;
    const data =
      r.action === 'copy'
        ? new Uint8Array(fx.bytes.buffer, src.tensors[i]!.absOffset, src.tensors[i]!.nbytes)
        : referenceEncode(f.values, f.ne, r.to, fx.imatrix.get(r.name));
    return { name: r.name, ne: r.ne, type: getBlockType(r.to).ggmlTypeId, data };
  });
  const whole = concatBytes(writeGguf({ kv: report.kv, tensors }));
  assert.ok(report.tensors.some((r) => r.action === 'copy') && report.tensors.some((r) => r.imatrix));
  assert.equal(streamed.length, whole.length);
  assert.ok(Buffer.from(streamed).equals(Buffer.from(whole)), 'streamed bytes differ from writeGguf');
  // runs of a few rows (not one per matrix): the same bytes, with and without encodeRows
  for (const encodeRows of [
    undefined,
    async (x: Float32Array, _n: number, type: BlockTypeTraits, im?: Float32Array) => type.encode(x, im),
  ]) {
    const small = await requantizeGguf(src, PLAN, {
      ...OPTS,
      runElements: 700,
      ...(encodeRows ? { encodeRows } : {}),
    });
    assert.ok(small.chunks.length > 3 * report.tensors.length, 'several runs per tensor');
    assert.ok(
      Buffer.from(concatBytes(small.chunks)).equals(Buffer.from(whole)),
      'runs of rows change the bytes',
    );
  }
  // and the in-memory requantizeGguf gives the same bytes and report
  const mem = await requantizeGguf(src, PLAN, OPTS);
  assert.ok(Buffer.from(concatBytes(mem.chunks)).equals(Buffer.from(whole)));
  const { chunks: _c, ...memReport } = mem;
  assert.deepEqual(memReport, report);
});

test('one tensor at a time: header first, each tensor written before the next is read', async () => {
  const base = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const log: string[] = [];
  const src: GgufFile = {
    ...base,
    readTensorBytes: (info) => {
      log.push(`read ${info.name}`);
      return base.readTensorBytes(info);
    },
  };
  const sizes: number[] = [];
  await requantizeGgufTo(
    src,
    PLAN,
    (c) => {
      log.push('write');
      sizes.push(c.length);
    },
    OPTS,
  );
  assert.equal(log[0], 'write', 'the header goes out before any tensor is read');
  const reads = log.flatMap((e, i) => (e.startsWith('read') ? [i] : []));
  assert.equal(reads.length, base.tensors.length);
  for (let k = 1; k < reads.length; k++)
    assert.ok(log.slice(reads[k - 1]! + 1, reads[k]).includes('write'), `${log[reads[k]!]} before a write`);
  // no chunk larger than the header or one tensor's output
  const biggest = Math.max(...base.tensors.map((t) => t.nElements * 4));
  assert.ok(Math.max(...sizes.slice(1)) <= biggest);
});

test('a writer or encoder failure leaves no partial file; plan errors fail before the first byte', async () => {
  const d = await tmp();
  const src = parseGguf(fx.bytes, 'llama-tiny.gguf');
  const kept = join(d, 'kept.gguf');
  await writeFile(kept, 'previous output');
  let n = 0;
  await assert.rejects(
    writeFileAtomicSink(kept, (w) =>
      requantizeGgufTo(
        src,
        PLAN,
        async (c) => {
          if (++n === 4) throw new Error('disk full');
          await w(c);
        },
        OPTS,
      ),
    ),
    /disk full/,
  );
  assert.equal(n, 4);
  assert.equal(await readFile(kept, 'utf8'), 'previous output');
  const fresh = join(d, 'fresh.gguf');
  let encoded = 0;
  await assert.rejects(
    writeFileAtomicSink(fresh, (w) =>
      requantizeGgufTo(src, PLAN, w, {
        ...OPTS,
        encodeRows: async (x, _n, type, im) => {
          if (++encoded === 3) throw new Error('worker died');
          return type.encode(x, im);
        },
      }),
    ),
    /worker died/,
  );
  // a wrong importance-matrix entry: refused before anything is written
  const writes: number[] = [];
  const bad = new Map([['blk.0.attn_v.weight', new Float32Array(7)]]);
  await assert.rejects(
    requantizeGgufTo(src, PLAN, (c) => void writes.push(c.length), { ...OPTS, imatrix: bad }),
    /importance matrix entry for 'blk.0.attn_v.weight' has 7 values/,
  );
  assert.equal(writes.length, 0);
  const left = await readdir(d);
  assert.ok(!left.includes('fresh.gguf'), 'no output after a failed encode');
  assert.deepEqual(
    left.filter((f) => f.endsWith('.tmp')),
    [],
    'temp files removed',
  );
});

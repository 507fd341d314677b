/**
 * `mixq convert` streamed (io/convert.ts convertModelTo, io/convert.node.ts convertFile): the output bytes
 * equal the whole-model writers (writeGguf / writeSafetensors over every tensor converted at once, built
 * here from whole-tensor registry decodes and encodes) for any run and piece size; a failure part-way
 * leaves no file; bad inputs are one line naming file, field and expectation, with no output written.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { getBlockType } from '../../src/blocks/registry.ts';
import { Rng } from '../../src/core/rng.ts';
import { convertFile } from '../../src/io/convert.node.ts';
import { writeFileAtomicSink } from '../../src/io/file-stream.node.ts';
import {
  concatBytes,
  convertModel,
  convertModelTo,
  type GgufTensorInput,
  parseGguf,
  parseSafetensors,
  referenceOrder,
  type SafetensorsDtype,
  writeGguf,
  writeSafetensors,
} from '../../src/io/index.ts';
import { planGguf } from '../../src/pipeline/gguf/plan.node.ts';
import { quantizeGgufLm } from '../../src/pipeline/llm/index.node.ts';
import { ROOT, runMixq } from '../cli-util.ts';

const dir = mkdtempSync(join(tmpdir(), 'mixq-convert-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A GGUF of every kind of tensor convert meets: plain floats, ggml blocks, integers, a 3-D tensor. */
function mixedGguf(): Uint8Array {
  const rng = new Rng(11);
  const vals = (n: number) => Float32Array.from({ length: n }, () => rng.nextNormal() * 0.05);
  const t = (name: string, ne: number[], type: string): GgufTensorInput => {
    const n = ne.reduce((a, b) => a * b, 1);
    const data =
      type === 'i32'
        ? new Uint8Array(Int32Array.from({ length: n }, (_, i) => i - 7).buffer)
        : getBlockType(type).encode(vals(n));
    return { name, ne, type, data };
  };
  return concatBytes(
    writeGguf({
      kv: [
        { key: 'general.architecture', type: 'str', value: 'llama' },
        { key: 'general.name', type: 'str', value: 'mixed' },
      ],
      tensors: [
        t('token_embd.weight', [256, 40], 'q4_K'),
        t('blk.0.attn_norm.weight', [256], 'f32'),
        t('blk.0.attn_q.weight', [256, 24], 'f16'),
        t('blk.0.ffn_up.weight', [256, 33], 'q8_0'),
        t('blk.0.ffn_down.weight', [96, 64], 'bf16'),
        t('blk.0.ffn_gate_exps.weight', [256, 5, 3], 'q6_K'),
        t('positions', [5], 'i32'),
      ],
    }),
  );
}

const F32_OF: Record<string, SafetensorsDtype> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32' };

test('streamed GGUF -> safetensors -> GGUF --type q4_k equals the whole-model writers, for any run size', async () => {
  const g = parseGguf(mixedGguf(), 'mixed.gguf');
  // reference: each tensor read whole, converted at once, written by writeSafetensors
  const st = [];
  for (const info of g.tensors) {
    const bytes = await g.readTensorBytes(info);
    const name = info.type.name.toLowerCase();
    const dtype = F32_OF[name];
    st.push(
      dtype
        ? { name: info.name, dtype, shape: info.shape, data: bytes }
        : {
            name: info.name,
            dtype: 'F32' as const,
            shape: info.shape,
            data: getBlockType('F32').encode(getBlockType(info.type.name).decode(bytes, info.nElements)),
          },
    );
  }
  const metadata = Object.create(null) as Record<string, string>;
  metadata['gguf.general.architecture'] = 'llama';
  metadata['gguf.general.name'] = 'mixed';
  const wantSt = concatBytes(writeSafetensors({ tensors: referenceOrder(st), metadata }));
  for (const opts of [{}, { runElements: 100, copyBytes: 1000 }, { runElements: 1, copyBytes: 1 }]) {
    const got = concatBytes((await convertModel({ format: 'gguf', file: g }, 'safetensors', opts)).chunks);
    assert.deepEqual(got, wantSt, JSON.stringify(opts));
  }
  // and back, quantizing every weight whose rows fit Q4_K (256), the rest as they are
  const s = await parseSafetensors(wantSt, 'mixed.safetensors');
  const gg: GgufTensorInput[] = [];
  for (const info of s.tensors) {
    const bytes = await s.readTensorBytes(info);
    const quantize = info.shape.length >= 2 && info.name.endsWith('weight') && info.shape.at(-1)! % 256 === 0;
    gg.push({
      name: info.name,
      ne: [...info.shape].reverse(),
      type: quantize ? 'Q4_K' : info.dtype.toLowerCase(),
      data: quantize
        ? getBlockType('Q4_K').encode(getBlockType(info.dtype).decode(bytes, info.nElements))
        : bytes,
    });
  }
  const kv = [
    { key: 'general.name', type: 'str' as const, value: 'mixed' },
    ...Object.entries(metadata).map(([k, v]) => ({
      key: `safetensors.${k}`,
      type: 'str' as const,
      value: v,
    })),
  ];
  const wantG = concatBytes(writeGguf({ kv, tensors: gg }));
  for (const opts of [{}, { runElements: 300, copyBytes: 7 }]) {
    const r = await convertModel({ format: 'safetensors', file: s }, 'gguf', {
      ...opts,
      type: 'q4_k',
      name: 'mixed',
    });
    assert.deepEqual(concatBytes(r.chunks), wantG, JSON.stringify(opts));
    assert.equal(r.bytes, wantG.length);
  }
});

test('a failure part-way through the tensors leaves no file (and no temp file)', async () => {
  const g = parseGguf(mixedGguf(), 'mixed.gguf');
  let reads = 0;
  const failing = {
    ...g,
    readTensorRange: (info: (typeof g.tensors)[number], o: number, l: number) => {
      if (++reads === 3) return Promise.reject(new Error('disk went away'));
      return g.readTensorRange(info, o, l);
    },
  };
  const out = join(dir, 'fail', 'out.safetensors');
  cpSync(join(ROOT, 'test/golden/tiny.gguf'), join(dir, 'fail', 'keep.gguf'));
  await assert.rejects(
    writeFileAtomicSink(out, (w) => convertModelTo({ format: 'gguf', file: failing }, 'safetensors', w)),
    /disk went away/,
  );
  assert.ok(reads >= 3);
  assert.deepEqual(readdirSync(join(dir, 'fail')), ['keep.gguf']);
  // the same path through convertFile works end to end and never writes over its input
  const ok = await convertFile(join(dir, 'fail', 'keep.gguf'), out);
  assert.equal(ok.bytes, readFileSync(out).length);
  await assert.rejects(convertFile(out, out), /refusing to overwrite the input file/);
  // a Hugging Face folder goes to GGUF under llama.cpp's names, matrices as asked
  const hf = await convertFile(join(ROOT, 'test/fixtures/stories-hf'), join(dir, 'fail', 'hf.gguf'), {
    type: 'f16',
  });
  const back = parseGguf(new Uint8Array(readFileSync(join(dir, 'fail', 'hf.gguf'))), 'hf.gguf');
  assert.equal(hf.bytes, back.fileSize);
  assert.equal(back.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.type.name.toUpperCase(), 'F16');
  assert.ok(hf.tensors.some((t) => t.name === 'token_embd.weight' && t.to === 'f16'));
});

test('bad input to convert / plan / quantize: one line naming file, field and expectation; no output', async () => {
  const bytes = mixedGguf();
  const mamba = concatBytes(
    writeGguf({
      kv: [{ key: 'general.architecture', type: 'str', value: 'mamba' }],
      tensors: [{ name: 'blk.0.ffn_up.weight', ne: [32, 2], type: 'f32', data: new Uint8Array(256) }],
    }),
  );
  const st = concatBytes(
    writeSafetensors({ tensors: [{ name: 'w', dtype: 'F32', shape: [4, 8], data: new Uint8Array(128) }] }),
  );
  const f = (name: string, b: Uint8Array) => {
    writeFileSync(join(dir, name), b);
    return join(dir, name);
  };
  const bigHeader = new Uint8Array(st);
  new DataView(bigHeader.buffer).setBigUint64(0, 200_000_000n, true);
  const bigKv = new Uint8Array(bytes);
  new DataView(bigKv.buffer).setBigUint64(16, 1n << 40n, true);
  const folder = (spoil: string) => {
    const d = join(dir, `hf-${spoil}`);
    cpSync(join(ROOT, 'test/fixtures/stories-hf'), d, { recursive: true });
    rmSync(join(d, spoil));
    return d;
  };
  const out = (ext: string) => join(dir, `out-${Math.random().toString(36).slice(2)}${ext}`);
  const convert = (i: string, o: string) => () => convertFile(i, o);
  const mambaPath = f('m.gguf', mamba);
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    [
      'truncated GGUF',
      convert(f('t.gguf', bytes.subarray(0, bytes.length - 40)), out('.safetensors')),
      /t\.gguf: tensor_infos\[\d\]\.offset: .*lies outside the file \(expected/,
    ],
    [
      'truncated GGUF header',
      convert(f('h.gguf', bytes.subarray(0, 300)), out('.safetensors')),
      /h\.gguf: .*file is truncated.*\(expected at least/,
    ],
    [
      'truncated safetensors',
      convert(f('t.safetensors', st.subarray(0, st.length - 8)), out('.gguf')),
      /t\.safetensors: data_offsets: .*\(expected the last tensor to end at/,
    ],
    [
      'safetensors header over the cap',
      convert(f('b.safetensors', bigHeader), out('.gguf')),
      /b\.safetensors: header_length: .*exceeds the limit \(expected at most 100000000/,
    ],
    [
      'GGUF count over the cap',
      convert(f('k.gguf', bigKv), out('.safetensors')),
      /k\.gguf: n_kv: .*exceeds the limit \(expected at most/,
    ],
    [
      'plan of a truncated GGUF',
      () => planGguf(join(dir, 't.gguf'), { budget: { kind: 'bitsPerWeight', bits: 4 } }),
      /t\.gguf: tensor_infos\[\d\]\.offset: .*\(expected/,
    ],
    [
      'unknown architecture',
      () =>
        quantizeGgufLm({
          model: mambaPath,
          calibration: join(ROOT, 'models/stories/README.md'),
          out: out(''),
        }),
      /m\.gguf: general\.architecture: architecture "mamba" is not supported \(expected llama/,
    ],
    [
      'folder without config',
      convert(folder('config.json'), out('.gguf')),
      /hf-config\.json: config\.json: no config\.json in the folder \(expected/,
    ],
    [
      'folder without tokenizer',
      convert(folder('tokenizer.json'), out('.gguf')),
      /hf-tokenizer\.json: tokenizer\.json: no tokenizer\.json in the folder \(expected/,
    ],
    [
      'folder to safetensors',
      convert(join(ROOT, 'test/fixtures/stories-hf'), out('.safetensors')),
      /\.safetensors: extension: a Hugging Face folder converts to GGUF only \(expected \.gguf/,
    ],
  ];
  const before = new Set(readdirSync(dir));
  for (const [what, run, re] of cases)
    await assert.rejects(run(), (e: Error) => {
      assert.equal(e.name, 'MixqError', `${what}: ${e.stack}`);
      assert.ok(!e.message.includes('\n'), what);
      assert.match(e.message, re, what);
      return true;
    });
  // the CLI prints such an error as its one line, with a non-zero exit
  const [a, b] = await Promise.all([
    runMixq('convert', join(dir, 't.gguf'), out('.safetensors')),
    runMixq('convert', folder('config.json'), out('.gguf')),
  ]);
  for (const [r, re] of [
    [a, cases[0]![2]],
    [b, cases[7]![2]],
  ] as const) {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^mixq convert: .*${re.source}`));
  }
  // nothing written: no output, no temp file
  assert.deepEqual(
    readdirSync(dir).filter((n) => !before.has(n) && !n.startsWith('hf-')),
    [],
  );
});

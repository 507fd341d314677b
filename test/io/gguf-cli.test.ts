/**
 * `mixq inspect` and `mixq convert` end to end: spawns the CLI on temp files (os.tmpdir()). Conversions
 * are checked against independent references: ggml's own dequantized values from the golden sidecar
 * (GGUF Q8_0/Q4_K -> safetensors F32) and the blocks registry's encoders (safetensors -> GGUF q4_k).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BLOCK_TYPES } from '../../src/blocks/registry.ts';
import { Rng } from '../../src/core/rng.ts';
import { MixqError } from '../../src/core/errors.ts';
import {
  bytesSource,
  concatBytes,
  convertModel,
  f32ToFloatBytes,
  floatBytesToF32,
  parseGguf,
  openModelView,
  parseSafetensors,
  sniffFormat,
  writeGguf,
  writeSafetensors,
} from '../../src/io/index.ts';
import { runMixq } from '../cli-util.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GOLDEN = join(ROOT, 'test/golden/tiny.gguf');
const side = JSON.parse(readFileSync(join(ROOT, 'test/golden/tiny.gguf.json'), 'utf8')) as {
  tensors: {
    name: string;
    ne: number[];
    values_f32hex?: string;
    f16_bits?: string;
    dequant_f32hex?: string;
  }[];
};
const dir = mkdtempSync(join(tmpdir(), 'mixq-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function mixq(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
/** The same, asynchronously, so independent cases run side by side. */
const mixqAsync = runMixq;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const hexF32 = (x: Float32Array) =>
  [...x]
    .map((v) =>
      f32ToFloatBytes('F32', Float32Array.of(v))
        .reverse()
        .reduce((s, b) => s + b.toString(16).padStart(2, '0'), ''),
    )
    .join('');

test('inspect --json: format, tensors, parameter count, bytes by dtype, bits per weight', () => {
  const text = mixq('inspect', GOLDEN);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /format: gguf/);
  assert.match(text.stdout, /parameters: 463/);
  assert.match(text.stdout, /blk\.0\.tensor_q4_k +\[256\] +q4_k +144 +other/);
  const r = mixq('inspect', GOLDEN, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.format, 'gguf');
  assert.equal(j.tensorCount, 4);
  assert.equal(j.parameterCount, 15 + 64 + 128 + 256);
  assert.deepEqual(j.bytesByDtype, { q4_k: 144, q8_0: 136, f16: 128, f32: 60 });
  assert.equal(j.averageBitsPerWeight, (8 * 468) / 463);
  assert.deepEqual(j.tensors[2], {
    name: 'blk.0.tensor_q8_0',
    shape: [2, 64],
    dtype: 'q8_0',
    bytes: 136,
    role: 'other',
    layer: 0,
    quantizable: false,
  });
});

test('convert GGUF -> safetensors: plain types copied, Q8_0 and Q4_K dequantized exactly as ggml does', async () => {
  const out = join(dir, 'tiny.safetensors');
  const before = sha(GOLDEN);
  const r = mixq('convert', GOLDEN, out);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(GOLDEN), before, 'input untouched');
  const f = await parseSafetensors(new Uint8Array(readFileSync(out)), out);
  for (const s of side.tensors) {
    const t = f.tensors.find((x) => x.name === s.name)!;
    assert.deepEqual(t.shape, [...s.ne].reverse());
    const bytes = await f.readTensorBytes(t);
    if (s.values_f32hex) {
      assert.equal(t.dtype, 'F32');
      assert.equal(hexF32(floatBytesToF32('F32', bytes)), s.values_f32hex);
    } else if (s.f16_bits) {
      assert.equal(t.dtype, 'F16');
      const bits = [...new Uint16Array(bytes.slice().buffer)]
        .map((h) => h.toString(16).padStart(4, '0'))
        .join('');
      assert.equal(bits, s.f16_bits);
    } else {
      assert.equal(t.dtype, 'F32', `${s.name} dequantized`);
      assert.equal(hexF32(floatBytesToF32('F32', bytes)), s.dequant_f32hex, s.name);
    }
  }
  assert.equal(f.metadata?.['gguf.general.architecture'], 'llama');
});

test('convert safetensors -> GGUF --type q4_k quantizes weights bit-exactly, keeps norms; and back', async () => {
  const rng = new Rng(42);
  const w = Float32Array.from({ length: 16 * 256 }, () => rng.nextNormal());
  const norm = Float32Array.from({ length: 256 }, () => 1 + 0.1 * rng.nextNormal());
  const small = Float32Array.from({ length: 8 * 8 }, () => rng.nextNormal());
  const input = join(dir, 'model.safetensors');
  writeFileSync(
    input,
    concatBytes(
      writeSafetensors({
        metadata: { format: 'pt' },
        tensors: [
          {
            name: 'model.layers.0.mlp.up_proj.weight',
            dtype: 'F32',
            shape: [16, 256],
            data: f32ToFloatBytes('F32', w),
          },
          {
            name: 'model.layers.0.post_attention_layernorm.weight',
            dtype: 'BF16',
            shape: [256],
            data: f32ToFloatBytes('BF16', norm),
          },
          { name: 'tiny.weight', dtype: 'F16', shape: [8, 8], data: f32ToFloatBytes('F16', small) },
        ],
      }),
    ),
  );
  const gguf = join(dir, 'model.gguf');
  const r = mixq('convert', input, gguf, '--type', 'q4_k');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /3 tensors \(1 quantize, 2 copy\)/);
  const g = parseGguf(new Uint8Array(readFileSync(gguf)), gguf);
  const [up, ln, tiny] = g.tensors;
  assert.deepEqual([up!.type.name, up!.ne], ['q4_K', [256, 16]]);
  assert.deepEqual(await g.readTensorBytes(up!), BLOCK_TYPES.Q4_K.encode(w));
  assert.deepEqual(
    [ln!.type.name, tiny!.type.name],
    ['bf16', 'f16'],
    'norm and small weight keep their types',
  );
  assert.equal(g.get('safetensors.format'), 'pt');

  // and back to safetensors (in-process: the CLI path is covered above)
  const back = await convertModel({ format: 'gguf', file: g }, 'safetensors');
  const f = await parseSafetensors(concatBytes(back.chunks));
  const t = f.tensors.find((x) => x.name === 'model.layers.0.mlp.up_proj.weight')!;
  assert.deepEqual(
    floatBytesToF32('F32', await f.readTensorBytes(t)),
    BLOCK_TYPES.Q4_K.decode(BLOCK_TYPES.Q4_K.encode(w), w.length),
  );
});

test('refusals are one line on stderr with a non-zero exit, never a stack trace', async () => {
  const input = join(dir, 'u8.safetensors');
  writeFileSync(
    input,
    concatBytes(
      writeSafetensors({ tensors: [{ name: 'mask', dtype: 'U8', shape: [4], data: new Uint8Array(4) }] }),
    ),
  );
  // each spawn costs ~1.5 s, so only one case per exit path here; the library refusals are checked in-process below
  const cases: [string[], number, RegExp][] = [
    [['convert', input, join(dir, 'x.gguf')], 1, /U8 has no GGUF tensor type/],
    [['convert', GOLDEN, join(dir, 'x.onnx')], 2, /ONNX is not supported/],
    [['convert', GOLDEN, GOLDEN], 1, /refusing to overwrite the input/],
    [['inspect', join(ROOT, 'package.json')], 1, /unrecognised model file/],
  ];
  const results = await Promise.all(cases.map(([args]) => mixqAsync(...args)));
  for (const [i, [args, code, msg]] of cases.entries()) {
    const r = results[i]!;
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.match(r.stderr, new RegExp(`^mixq ${args[0]}: [^\\n]*\\n$`), `one line: ${r.stderr}`);
  }
});

test('convert refusals in-process: blocks into safetensors, unknown --type, undecodable GGUF types, >4 dims', async () => {
  const golden = parseGguf(new Uint8Array(readFileSync(GOLDEN)), 'tiny.gguf');
  const m = { format: 'gguf' as const, file: golden };
  await assert.rejects(convertModel(m, 'safetensors', { type: 'q4_k' }), /safetensors cannot store Q4_K/);
  await assert.rejects(convertModel(m, 'gguf', { type: 'q9_z' }), /unknown block type 'q9_z'/);
  const iq = concatBytes(
    writeGguf({ kv: [], tensors: [{ name: 'w', ne: [256], type: 'iq2_xxs', data: new Uint8Array(66) }] }),
  );
  await assert.rejects(
    convertModel({ format: 'gguf', file: parseGguf(iq, 'iq.gguf') }, 'safetensors'),
    (e: unknown) =>
      e instanceof MixqError && /cannot decode tensor type iq2_xxs/.test(e.message) && e.source === 'iq.gguf',
  );
  const st5 = concatBytes(
    writeSafetensors({
      tensors: [{ name: 'c', dtype: 'F32', shape: [1, 1, 1, 1, 2], data: new Uint8Array(8) }],
    }),
  );
  await assert.rejects(
    convertModel({ format: 'safetensors', file: await parseSafetensors(st5, 'c.safetensors') }, 'gguf'),
    /5 dims cannot be stored in GGUF/,
  );
});

test('convert GGUF -> GGUF without --type reproduces the golden file byte for byte', async () => {
  const bytes = new Uint8Array(readFileSync(GOLDEN));
  const r = await convertModel({ format: 'gguf', file: parseGguf(bytes, 'tiny.gguf') }, 'gguf');
  assert.ok(r.tensors.every((t) => t.action === 'copy'));
  assert.deepEqual(concatBytes(r.chunks), bytes);
});

test('sniffFormat and openModelView dispatch on content, not on the file name', async () => {
  const gguf = new Uint8Array(readFileSync(GOLDEN));
  const st = concatBytes(
    writeSafetensors({ tensors: [{ name: 'w', dtype: 'F32', shape: [1], data: new Uint8Array(4) }] }),
  );
  assert.equal(sniffFormat(gguf.subarray(0, 16), 'model.safetensors'), 'gguf');
  assert.equal(sniffFormat(st.subarray(0, 16), 'model.gguf'), 'safetensors');
  assert.equal(sniffFormat(Uint8Array.of(0x08, 0x07, 0x12, 0x04), 'model.bin'), 'onnx');
  assert.equal(sniffFormat(Uint8Array.of(1, 2, 3), 'm.onnx'), 'onnx');
  assert.equal(sniffFormat(Uint8Array.of(1, 2, 3), 'm.bin'), undefined);
  assert.equal((await openModelView(bytesSource(gguf, 'a'))).format, 'gguf');
  assert.equal((await openModelView(bytesSource(st, 'b'))).tensors[0]?.name, 'w');
  await assert.rejects(
    openModelView(bytesSource(Uint8Array.of(1, 2, 3), 'c.bin')),
    /c\.bin: magic: unrecognised/,
  );
});

test('convert GGUF -> safetensors --type bf16: every float tensor (plain or block) becomes BF16 of its value', async () => {
  const g = parseGguf(new Uint8Array(readFileSync(GOLDEN)), 'tiny.gguf');
  const r = await convertModel({ format: 'gguf', file: g }, 'safetensors', { type: 'bf16' });
  assert.deepEqual(
    r.tensors.map((t) => [t.from, t.to, t.action]),
    [
      ['f32', 'bf16', 'convert'],
      ['f16', 'bf16', 'convert'],
      ['q8_0', 'bf16', 'dequantize'],
      ['q4_k', 'bf16', 'dequantize'],
    ],
  );
  const f = await parseSafetensors(concatBytes(r.chunks));
  for (const t of g.tensors) {
    const ref = BLOCK_TYPES[t.type.name.toUpperCase() as keyof typeof BLOCK_TYPES].decode(
      await g.readTensorBytes(t),
      t.nElements,
    );
    const info = f.tensors.find((x) => x.name === t.name)!;
    assert.equal(info.dtype, 'BF16');
    assert.deepEqual(
      floatBytesToF32('BF16', await f.readTensorBytes(info)),
      floatBytesToF32('BF16', f32ToFloatBytes('BF16', ref)),
    );
  }
});

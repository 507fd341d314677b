/**
 * A "with imatrix" baseline is what llama-quantize --imatrix writes: llama.cpp's Q4_K_M mix
 * (analysis/allocate/llama-mix.ts) on a llama-named GGUF whose rows are golden inputs, written by the
 * language-model job's own writer (pipeline/llm/measure.node.ts writeTypesGguf, what every candidate and
 * baseline file goes through) with an importance matrix, gives, tensor by tensor and row by row, the bytes
 * of ggml's quantize_<type>(row, imatrix) in test/golden/ggml_quants.json (ggml-org/ggml d99724f), and
 * without the matrix those of quantize_<type>(row, NULL). Tensors without an entry (token_embd, output)
 * are encoded without it, as llama-quantize does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { llamaMixTypes } from '../../../src/analysis/allocate/llama-mix.ts';
import { parseGguf } from '../../../src/io/gguf/read.ts';
import { concatBytes, type GgufTensorInput, writeGguf } from '../../../src/io/gguf/write.ts';
import { writeTypesGguf } from '../../../src/pipeline/llm/measure.node.ts';

interface Golden {
  inputs: { name: string; n: number; f32hex: string }[];
  imatrix: Record<string, { n: number; f32hex: string }>;
  quantize_api: Record<string, { input: string; imatrix: string | null; bytes: string }[]>;
}
const golden = JSON.parse(
  readFileSync(new URL('../../golden/ggml_quants.json', import.meta.url), 'utf8'),
) as Golden;
const f32 = (s: string) =>
  new Float32Array(Uint32Array.from(s.match(/.{8}/g)!, (h) => Number.parseInt(h, 16)).buffer);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const ROWS = ['normal_256', 'normal_outliers_256', 'smooth_cos_256'];
const NAMES = [
  'token_embd.weight',
  'blk.0.attn_q.weight',
  'blk.0.attn_k.weight',
  'blk.0.attn_v.weight',
  'blk.0.attn_output.weight',
  'blk.0.ffn_gate.weight',
  'blk.0.ffn_up.weight',
  'blk.0.ffn_down.weight',
  'output.weight',
];

test('Q4_K_M with an imatrix, written by the job: ggml quantize_<t>(row, imatrix) bytes per row', async () => {
  const rows = ROWS.map((r) => f32(golden.inputs.find((x) => x.name === r)!.f32hex));
  const data = new Float32Array(256 * rows.length);
  rows.forEach((r, i) => data.set(r, 256 * i));
  const tensors: GgufTensorInput[] = NAMES.map((name) => ({
    name,
    ne: [256, rows.length],
    type: 'f32',
    data: new Uint8Array(data.buffer.slice(0)),
  }));
  const src = parseGguf(
    concatBytes(writeGguf({ kv: [{ key: 'general.architecture', type: 'str', value: 'llama' }], tensors })),
    'golden-rows.gguf',
  );
  const mix = llamaMixTypes(
    src.tensors.map((t) => ({ name: t.name, ne: t.ne })),
    'Q4_K_M',
    { nGqa: 1, nLayer: 1 },
  );
  assert.ok(!('refused' in mix));
  const types = new Map([...mix.types].filter(([n]) => NAMES.includes(n)));
  assert.ok(new Set(types.values()).size >= 2, `a mix of types: ${[...types.values()].join()}`);
  const entry = f32(golden.imatrix['256']!.f32hex);
  const imatrix = {
    format: 'json' as const,
    datasets: [],
    entries: new Map(NAMES.filter((n) => n.startsWith('blk.')).map((n) => [n, entry] as const)),
  };
  const dir = mkdtempSync(join(tmpdir(), 'mixq-imatrix-baseline-'));
  try {
    for (const withIm of [true, false]) {
      const path = join(dir, `${withIm}.gguf`);
      await writeTypesGguf(src, types, path, withIm ? imatrix : undefined);
      const out = parseGguf(new Uint8Array(readFileSync(path)), path);
      for (const t of out.tensors) {
        const type = types.get(t.name)!;
        const used = withIm && imatrix.entries.has(t.name) ? '256' : null;
        const want = ROWS.map((r) => {
          const e = golden.quantize_api[type]?.find((x) => x.input === r && x.imatrix === used);
          assert.ok(e, `golden has no quantize_${type}(${r}, ${used})`);
          return e.bytes;
        }).join('');
        assert.equal(t.type.name.toUpperCase(), type, t.name);
        assert.equal(hex(await out.readTensorBytes(t)), want, `${t.name} as ${type}, imatrix ${used}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

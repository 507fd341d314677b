// Hugging Face folders: stories260K as an HF folder (test/fixtures/stories-hf, made by
// scripts/dev/stories-to-hf.ts from the llama2.c checkpoint) -> GGUF -> llama.cpp gives the same
// next-token distributions as llama.cpp's own GGUF of the checkpoint, and the same tokenization; the HF
// tokenizer.json tokenizes as llama.cpp; sharded folders; bad folders fail with one line.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseGguf, readGguf } from '../../../src/io/gguf/read.ts';
import { concatBytes } from '../../../src/io/gguf/write.ts';
import { fileSource } from '../../../src/io/files.node.ts';
import { sha256File } from '../../../src/io/file-stream.node.ts';
import { hfToGguf, openHfFolder } from '../../../src/io/llm/hf-folder.ts';
import { convertHfFolderToGguf, hfFolderSource } from '../../../src/io/llm/hf-folder.node.ts';
import { llmConfigFromGguf } from '../../../src/io/llm/config.ts';
import { tokenizerFromGguf } from '../../../src/io/llm/tokenizer.ts';
import { loadStoriesText, storiesModelPath } from '../../../src/runtime/bundled-stories.node.ts';
import {
  isLlamaCppAvailable,
  LLAMA_CPP_INSTALL_HINT,
  openLlamaModel,
} from '../../../src/runtime/llama.node.ts';
import { splitWindows } from '../../../src/runtime/lm-windows.ts';
import { writeSafetensors } from '../../../src/io/safetensors/write.ts';
import { parseSafetensors } from '../../../src/io/safetensors/read.ts';

const FIXTURE = 'test/fixtures/stories-hf';
const skip = (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT;

async function convert(dir: string): Promise<Uint8Array> {
  const folder = await hfFolderSource(dir);
  try {
    const chunks: Uint8Array[] = [];
    for await (const c of hfToGguf(await openHfFolder(folder), { name: 'stories' }).chunks()) chunks.push(c);
    return concatBytes(chunks);
  } finally {
    await folder.close();
  }
}

test("HF folder -> GGUF: the same tensors (q/k permuted back), config and vocabulary as llama.cpp's GGUF", async () => {
  const orig = parseGguf(new Uint8Array(readFileSync(storiesModelPath())), 'stories260K.gguf');
  const conv = parseGguf(await convert(FIXTURE), 'converted.gguf');
  const a = llmConfigFromGguf(orig);
  const b = llmConfigFromGguf(conv);
  // llama.cpp's converter wrote the shared embedding twice (output.weight) and context 2048; the HF
  // config ties the head and says the checkpoint's seq_len
  assert.deepEqual(
    { ...b, source: '', contextLength: 0 },
    { ...a, source: '', contextLength: 0, tieWordEmbeddings: true },
  );
  assert.equal(b.contextLength, 512);
  assert.equal(conv.tensors.length, orig.tensors.length - 1);
  const byName = (f: typeof orig, n: string) => f.readTensorBytes(f.tensors.find((x) => x.name === n)!);
  assert.deepEqual(await byName(orig, 'output.weight'), await byName(orig, 'token_embd.weight'));
  for (const t of orig.tensors) {
    if (t.name === 'output.weight') continue;
    const u = conv.tensors.find((x) => x.name === t.name);
    assert.ok(u, t.name);
    assert.deepEqual(u.ne, t.ne, t.name);
    assert.deepEqual(await conv.readTensorBytes(u), await orig.readTensorBytes(t), t.name);
  }
  const text = loadStoriesText().slice(0, 20_000);
  assert.deepEqual(tokenizerFromGguf(conv).encode(text), tokenizerFromGguf(orig).encode(text));
});

test(
  'HF folder -> GGUF -> llama.cpp: next-token distributions equal llama.cpp on its own GGUF',
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mixq-hf-'));
    const out = join(dir, 'stories-from-hf.gguf');
    const ref = await openLlamaModel(storiesModelPath());
    try {
      const r = await convertHfFolderToGguf(FIXTURE, out);
      assert.equal(r.tensors, 48 - 1); // 5 x 9 + embedding + norm; the LM head is tied
      const conv = await openLlamaModel(out);
      try {
        const text = loadStoriesText().slice(0, 2000);
        const ids = ref.tokenize(text);
        assert.deepEqual(conv.tokenize(text), ids);
        const hfTok = (await openHfFolder(await hfFolderSource(FIXTURE))).tokenizer();
        assert.deepEqual(hfTok.encode(text), ids);
        assert.equal(hfTok.bos, 1);
        assert.equal(hfTok.addBos, true);
        const windows = splitWindows(ids, { windowTokens: 256, bos: 1 });
        const base = await ref.recordReference(windows);
        const s = await conv.score(windows, { reference: base });
        const own = await ref.score(windows);
        assert.equal(s.klMax, 0);
        assert.equal(s.top1Agreement, 1);
        let maxDiff = 0;
        for (let i = 0; i < s.tokenLogProbs.length; i++)
          maxDiff = Math.max(maxDiff, Math.abs(s.tokenLogProbs[i]! - own.tokenLogProbs[i]!));
        assert.equal(maxDiff, 0);
        // Qwen2 path: the same weights (HF rotate_half layout) as a qwen2 folder with zero q/k/v biases
        // -> GGUF architecture qwen2 (NEOX RoPE, q/k not permuted, biases) -> the same distributions
        const qdir = qwen2Copy();
        try {
          await convertHfFolderToGguf(qdir, join(dir, 'qwen2.gguf'));
          const q = await openLlamaModel(join(dir, 'qwen2.gguf'));
          try {
            const sq = await q.score(windows, { reference: base });
            // measured: exactly 0 (NEOX RoPE on rotate_half rows = NORM RoPE on permuted rows)
            assert.ok(sq.klMax! < 1e-5 && sq.top1Agreement === 1, `${sq.klMax} ${sq.top1Agreement}`);
          } finally {
            await q.close();
          }
        } finally {
          rmSync(qdir, { recursive: true, force: true });
        }
        await base.close();
      } finally {
        await conv.close();
      }
    } finally {
      await ref.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** The fixture relabelled as Qwen2: model_type qwen2 and zero q/k/v biases (what Qwen2 adds to llama). */
function qwen2Copy(): string {
  const dir = copyFixture();
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ ...cfg, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] }),
  );
  const bytes = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const tensors = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, e]) => ({
      name,
      dtype: 'F32' as const,
      shape: e.shape,
      data: bytes.slice(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]),
    }));
  for (let l = 0; l < 5; l++)
    for (const [p, rows] of [
      ['q', 64],
      ['k', 32],
      ['v', 32],
    ] as const)
      tensors.push({
        name: `model.layers.${l}.self_attn.${p}_proj.bias`,
        dtype: 'F32',
        shape: [rows],
        data: new Uint8Array(rows * 4),
      });
  writeFileSync(join(dir, 'model.safetensors'), concatBytes(writeSafetensors({ tensors })));
  return dir;
}

function copyFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-hf-'));
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

test('sharded folders (model.safetensors.index.json) give the same GGUF; the output is streamed atomically', async () => {
  const dir = copyFixture();
  try {
    const st = await parseSafetensors(new Uint8Array(readFileSync(join(FIXTURE, 'model.safetensors'))));
    const tensors = await Promise.all(
      st.tensors.map(async (t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        data: await st.readTensorBytes(t),
      })),
    );
    const half = Math.ceil(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      const f = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(dir, f), concatBytes(writeSafetensors({ tensors: s })));
      for (const t of s) weightMap[t.name] = f;
    });
    rmSync(join(dir, 'model.safetensors'));
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const a = await convert(FIXTURE);
    await convertHfFolderToGguf(dir, join(dir, 'out.gguf'), { name: 'stories' });
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'out.gguf'))), a);
    const h = await sha256File(join(dir, 'out.gguf'), 1000); // chunks much smaller than the file
    assert.equal(h.size, a.length);
    assert.equal(h.sha256, createHash('sha256').update(a).digest('hex'));
    const src = await fileSource(join(dir, 'out.gguf'));
    assert.equal((await readGguf(src)).tensors.length, 47);
    await src.close();
    // a truncated shard
    const f2 = join(dir, 'model-00002-of-00002.safetensors');
    truncateSync(f2, readFileSync(f2).length - 10);
    await assert.rejects(
      convertHfFolderToGguf(dir, join(dir, 'x.gguf')),
      /model-00002-of-00002\.safetensors: .*data_offsets/,
    );
    // a shard the index names but the folder lacks
    rmSync(f2);
    await assert.rejects(
      convertHfFolderToGguf(dir, join(dir, 'x.gguf')),
      /model\.safetensors\.index\.json: weight_map\['.*'\]: shard .* is not in the folder/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad folders fail with one line naming file, field and expectation', async () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'no config',
      (d) => rmSync(join(d, 'config.json')),
      /: config\.json: no config\.json in the folder \(expected a Hugging Face model folder/,
    ],
    [
      'no tokenizer',
      (d) => rmSync(join(d, 'tokenizer.json')),
      /: tokenizer\.json: no tokenizer\.json in the folder/,
    ],
    [
      'no weights',
      (d) => rmSync(join(d, 'model.safetensors')),
      /model\.safetensors: no weights in the folder/,
    ],
    [
      'unknown architecture',
      (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'mamba' })),
      /config\.json: model_type: model_type "mamba" is not supported \(expected llama, mistral, qwen2, gpt2\)/,
    ],
    [
      'wrong shape',
      (d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
        writeFileSync(join(d, 'config.json'), JSON.stringify({ ...c, num_key_value_heads: 8 }));
      },
      /model\.safetensors: model\.layers\.0\.self_attn\.k_proj\.weight: shape \[32, 64\] \(expected \[64, 64\] \(from config\.json\)\)/,
    ],
    [
      'rope scaling',
      (d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
        writeFileSync(
          join(d, 'config.json'),
          JSON.stringify({ ...c, rope_scaling: { rope_type: 'llama3', factor: 8 } }),
        );
      },
      /config\.json: rope_scaling\.rope_type: rope scaling "llama3" is not supported/,
    ],
    [
      'corrupt tokenizer',
      (d) => writeFileSync(join(d, 'tokenizer.json'), '{"model":'),
      /tokenizer\.json: not valid JSON/,
    ],
  ];
  for (const [what, spoil, re] of cases) {
    const dir = copyFixture();
    try {
      spoil(dir);
      await assert.rejects(convertHfFolderToGguf(dir, join(dir, 'out.gguf')), (e: Error) => {
        assert.match(e.message, re, what);
        assert.equal(e.name, 'MixqError', what);
        assert.ok(!e.message.includes('\n'), what);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  await assert.rejects(hfFolderSource('/nonexistent-folder'), /not a folder/);
});

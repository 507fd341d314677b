// mixq's tokenizers (GGUF vocabularies through tokenizers.js) against llama.cpp's own tokenization
// (node-llama-cpp model.tokenize), token for token: the whole bundled TinyStories validation text with
// stories260K's SentencePiece vocabulary, and the bundled GPT's held-out text with its gpt2 GGUF. Also
// the SentencePiece algorithm on a hand-made vocabulary, and bad vocabularies.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { exportGptGguf } from '../../../src/export/gguf/gpt2.node.ts';
import { gpt2ByteToUnicode } from '../../../src/export/gguf/gpt2.ts';
import { llmConfigFromGguf, llmConfigToGgufKv } from '../../../src/io/llm/config.ts';
import { type GgufKV, parseGguf } from '../../../src/io/gguf/read.ts';
import { concatBytes, writeGguf } from '../../../src/io/gguf/write.ts';
import { tokenizerFromGguf, tokenizerFromJson, ggufTokenizerJson } from '../../../src/io/llm/tokenizer.ts';
import { ggufVocabFromTokenizerJson } from '../../../src/io/llm/tokenizer-gguf.ts';
import { GPT_DIR, loadGptBundle } from '../../../src/runtime/bundled.node.ts';
import { loadStoriesText, storiesModelPath } from '../../../src/runtime/bundled-stories.node.ts';
import {
  isLlamaCppAvailable,
  LLAMA_CPP_INSTALL_HINT,
  openLlamaModel,
} from '../../../src/runtime/llama.node.ts';

const skip = (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT;

function firstDiff(a: Int32Array, b: Int32Array): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

test(
  'stories260K: mixq tokenizes the whole validation text as llama.cpp does (295,299 tokens)',
  { skip },
  async () => {
    const path = storiesModelPath();
    const tok = tokenizerFromGguf(parseGguf(new Uint8Array(readFileSync(path)), path));
    assert.equal(tok.vocabSize, 512);
    assert.equal(tok.bos, 1);
    assert.equal(tok.addBos, true);
    const text = loadStoriesText();
    const m = await openLlamaModel(path);
    try {
      const ref = m.tokenize(text);
      const mine = tok.encode(text);
      assert.equal(firstDiff(mine, ref), -1);
      assert.equal(mine.length, 295_299);
      assert.equal(tok.decode(mine), text);
    } finally {
      await m.close();
    }
  },
);

test('bundled GPT as a gpt2 GGUF: mixq tokenizes the held-out text as llama.cpp does', { skip }, async () => {
  const { chunks } = await exportGptGguf(GPT_DIR, 'F32');
  const bytes = concatBytes(chunks);
  const tok = tokenizerFromGguf(parseGguf(bytes, 'gpt.gguf'));
  const text = loadGptBundle().heldout.slice(0, 20_000);
  const m = await openLlamaModel(bytes, { name: 'gpt.gguf' });
  try {
    const ref = m.tokenize(text);
    const mine = tok.encode(text);
    assert.equal(firstDiff(mine, ref), -1);
    assert.equal(mine.length, Array.from(text).length); // one token per character
    assert.equal(tok.addBos, false);
  } finally {
    await m.close();
  }
});

function vocabGguf(kv: GgufKV[]) {
  return parseGguf(concatBytes(writeGguf({ kv, tensors: [] })), 'vocab.gguf');
}
const strs = (items: string[]): GgufKV['value'] => ({ itemType: 'str', items });

test('SentencePiece merging: highest score first, leftmost on ties, byte fallback, space prefix', () => {
  // tokens: specials, bytes for 'x' (0x78) and '!' , pieces with scores
  const tokens = ['<unk>', '<s>', '</s>', '<0x78>', '<0x21>', '▁', 'a', 'b', 'ab', 'ba', '▁a', '▁ab', 'aba'];
  const scores = [0, 0, 0, 0, 0, -1, -2, -3, -10, -5, -20, -4, -30];
  const types = [2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1];
  const f = vocabGguf([
    { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'arr', value: strs(tokens) },
    { key: 'tokenizer.ggml.scores', type: 'arr', value: { itemType: 'f32', items: scores } },
    { key: 'tokenizer.ggml.token_type', type: 'arr', value: { itemType: 'i32', items: types } },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
  ]);
  const tok = tokenizerFromGguf(f);
  const text = (s: string) => Array.from(tok.encode(s), (i) => tokens[i]);
  // '▁aba': '▁a' + 'b' ... by score: 'ba' (-5) beats 'ab' (-10) and '▁a' (-20): ▁ a ba -> '▁a' 'ba'? '▁a'
  // needs '▁'+'a' (-20); 'aba' = 'a'+'ba' (-30) loses to '▁a'. Result: ['▁a', 'ba']
  assert.deepEqual(text('aba'), ['▁a', 'ba']);
  // 'x!' are not pieces: byte fallback
  assert.deepEqual(text('x!'), ['▁', '<0x78>', '<0x21>']);
  // '<s>' in text is not the control token (parse_special = false)
  assert.ok(!tok.encode('<s>').includes(1));
});

test('bad vocabularies fail with one line naming the key', () => {
  const base: GgufKV[] = [{ key: 'tokenizer.ggml.tokens', type: 'arr', value: strs(['a', 'b']) }];
  assert.throws(() => ggufTokenizerJson(vocabGguf(base)), /tokenizer\.ggml\.model: missing key/);
  assert.throws(
    () =>
      ggufTokenizerJson(vocabGguf([...base, { key: 'tokenizer.ggml.model', type: 'str', value: 'bert' }])),
    /tokenizer\.ggml\.model: .*not supported/,
  );
  assert.throws(
    () =>
      ggufTokenizerJson(vocabGguf([...base, { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' }])),
    /tokenizer\.ggml\.scores: missing key/,
  );
  assert.throws(
    () =>
      ggufTokenizerJson(
        vocabGguf([
          ...base,
          { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
          { key: 'tokenizer.ggml.pre', type: 'str', value: 'deepseek-llm' },
        ]),
      ),
    /tokenizer\.ggml\.pre: .*expected gpt-2, default, llama-bpe/,
  );
  assert.throws(
    () => tokenizerFromJson({ model: { type: 'BPE', vocab: [] } }, 'tokenizer.json'),
    /tokenizer.json: model.vocab/,
  );
  assert.throws(() => tokenizerFromJson([], 'tokenizer.json'), /not a JSON object/);
});

test('tokenizer.json -> GGUF vocabulary -> tokenizer: the same tokens (SentencePiece and byte-level kinds)', async () => {
  const path = storiesModelPath();
  const stories = parseGguf(new Uint8Array(readFileSync(path)), path);
  const gpt = parseGguf(concatBytes((await exportGptGguf(GPT_DIR, 'F32')).chunks), 'gpt.gguf');
  const samples = [loadStoriesText().slice(0, 5000), loadGptBundle().heldout.slice(0, 5000)];
  for (const [f, text] of [
    [stories, samples[0]!],
    [gpt, samples[1]!],
  ] as const) {
    const spec = ggufTokenizerJson(f);
    const kv = ggufVocabFromTokenizerJson(spec.json, 'tokenizer.json', { addBos: spec.addBos });
    const again = tokenizerFromGguf(vocabGguf([...kv]));
    assert.deepEqual(again.encode(text), tokenizerFromGguf(f).encode(text), f.source);
  }
  assert.throws(
    () => ggufVocabFromTokenizerJson({ model: { type: 'WordPiece', vocab: {} } }, 'tokenizer.json'),
    /tokenizer\.json: model\.type: .*expected BPE/,
  );
  assert.throws(
    () =>
      ggufVocabFromTokenizerJson(
        { model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, pre_tokenizer: { type: 'Whitespace' } },
        'tokenizer.json',
      ),
    /tokenizer\.json: pre_tokenizer: tokenizer kind not supported/,
  );
});

/** A byte-level BPE trained on `text` (greedy pair merges over GPT-2 pre-tokens), as GGUF tokens + merges. */
function trainByteBpe(text: string, nMerges: number): { tokens: string[]; merges: string[] } {
  const u = gpt2ByteToUnicode();
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const w of text.match(
    /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu,
  ) ?? []) {
    const k = Array.from(enc.encode(w), (b) => u[b]!).join('\u0000');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  let words = [...counts].map(([k, c]) => ({ s: k.split('\u0000'), c }));
  const tokens = [...u];
  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const pairs = new Map<string, number>();
    for (const w of words)
      for (let i = 0; i + 1 < w.s.length; i++) {
        const k = `${w.s[i]} ${w.s[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + w.c);
      }
    let best = '';
    let bc = 0;
    for (const [k, c] of pairs) if (c > bc || (c === bc && k < best)) [best, bc] = [k, c];
    if (!best) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push(best);
    tokens.push(a + b);
    words = words.map((w) => {
      const s: string[] = [];
      for (let i = 0; i < w.s.length; i++) {
        if (i + 1 < w.s.length && w.s[i] === a && w.s[i + 1] === b) {
          s.push(a + b);
          i++;
        } else s.push(w.s[i]!);
      }
      return { s, c: w.c };
    });
  }
  return { tokens, merges };
}

test(
  'byte-level BPE with the gpt-2, default, llama-bpe and qwen2 pre-tokenizers equals llama.cpp (vocab-only GGUFs)',
  { skip },
  async () => {
    const text = loadStoriesText().slice(0, 30_000);
    const { tokens, merges } = trainByteBpe(text, 600);
    const probe =
      text.slice(0, 3000) +
      " In 2024, 1234567 cats'd run. I'M HERE, DON'T!\r\n\n   spaced   out\ttabs naïve café 日本語 🙂 x  \n";
    for (const pre of ['gpt-2', 'default', 'llama-bpe', 'qwen2']) {
      const kv: GgufKV[] = [
        ...llmConfigToGgufKv({
          ...llmConfigFromGguf(parseGguf(readFileSync(storiesModelPath()), 's')),
          vocabSize: tokens.length,
        }),
        { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
        { key: 'tokenizer.ggml.pre', type: 'str', value: pre },
        { key: 'tokenizer.ggml.tokens', type: 'arr', value: strs(tokens) },
        {
          key: 'tokenizer.ggml.token_type',
          type: 'arr',
          value: { itemType: 'i32', items: tokens.map(() => 1) },
        },
        { key: 'tokenizer.ggml.merges', type: 'arr', value: strs(merges) },
      ];
      const bytes = concatBytes(writeGguf({ kv, tensors: [] }));
      const mine = tokenizerFromGguf(parseGguf(bytes, `${pre}.gguf`));
      const m = await openLlamaModel(bytes, { name: `${pre}.gguf`, vocabOnly: true });
      try {
        const ref = m.tokenize(probe);
        const got = mine.encode(probe);
        const fd = firstDiff(got, ref);
        const around = (ids: Int32Array) =>
          Array.from(ids.slice(Math.max(0, fd - 2), fd + 3), (t) => mine.tokenText(t));
        assert.equal(
          fd,
          -1,
          `${pre}: mixq ${JSON.stringify(around(got))} vs llama.cpp ${JSON.stringify(around(ref))}`,
        );
        assert.equal(mine.decode(got), probe);
      } finally {
        await m.close();
      }
      // and back: its tokenizer.json gives the same GGUF pre-tokenizer type
      const again = ggufVocabFromTokenizerJson(
        ggufTokenizerJson(parseGguf(bytes, 'x')).json,
        'tokenizer.json',
      );
      assert.equal(again.find((k) => k.key === 'tokenizer.ggml.pre')?.value, pre);
    }
  },
);

// mixq's tokenizers (GGUF vocabularies through tokenizers.js) against llama.cpp's own tokenization
// (node-llama-cpp model.tokenize), token for token: the whole bundled TinyStories validation text with
// stories260K's SentencePiece vocabulary, and the bundled GPT's held-out text with its gpt2 GGUF. Also
// the SentencePiece algorithm on a hand-made vocabulary, and bad vocabularies.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { exportGptGguf } from '../../../src/io/gguf/gpt2.node.ts';
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
          { key: 'tokenizer.ggml.pre', type: 'str', value: 'qwen2' },
        ]),
      ),
    /tokenizer\.ggml\.pre: .*expected default or gpt2/,
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

// llama.cpp's named mixes as llama-quantize builds them (src/analysis/allocate/llama-mix.ts). The expected
// types are derived by hand from llama.cpp src/llama-quant.cpp (llama_tensor_get_type_impl and
// tensor_type_fallback), written out below tensor by tensor, so a change to the rule code shows here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { llamaMixTypes, llamaShapeFallback } from '../../src/analysis/allocate/llama-mix.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { isRequantizable } from '../../src/io/gguf/requantize.ts';
import { storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';

function storiesWeights() {
  const path = storiesModelPath();
  return parseGguf(new Uint8Array(readFileSync(path)), path).tensors.filter((t) => isRequantizable(t));
}

test('Q4_K_M on stories260K: the types llama-quantize chooses (rows of 64 and 172 values)', () => {
  const r = llamaMixTypes(storiesWeights(), 'Q4_K_M', { nGqa: 2, nLayer: 5 });
  assert.ok('types' in r);
  const expected = new Map<string, string>([
    // output.weight: ne[0] = 64 is not a multiple of Q4_K's 256 -> Q8_0 (fits: 64 % 32 = 0)
    ['output.weight', 'Q8_0'],
    // untied token embedding keeps the default Q4_K -> fallback Q5_0
    ['token_embd.weight', 'Q5_0'],
  ]);
  for (let i = 0; i < 5; i++) {
    // default Q4_K -> Q5_0 (rows of 64)
    for (const n of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up'])
      expected.set(`blk.${i}.${n}.weight`, 'Q5_0');
    // use_more_bits(i, 5): n/8 = 0, 7n/8 = 4 -> i = 2 ((2 - 0) % 3 == 2) and i = 4: Q6_K -> Q8_0
    expected.set(`blk.${i}.attn_v.weight`, i === 2 || i === 4 ? 'Q8_0' : 'Q5_0');
    // rows of 172: Q6_K -> Q8_0 and Q4_K -> Q5_0 both need 32 | 172, which fails -> F16
    expected.set(`blk.${i}.ffn_down.weight`, 'F16');
  }
  assert.equal(r.types.size, expected.size);
  for (const [name, type] of expected) assert.equal(r.types.get(name), type, name);
  assert.equal(r.fallbacks.length, 37 - 1); // every quantized tensor but output.weight fell back
});

test('Q3_K_M / Q6_K / Q5_K_M on stories260K; Q8_0, Q4_0 and IQ4_NL stop at ffn_down (172 % 32 != 0)', () => {
  const w = storiesWeights();
  const q3 = llamaMixTypes(w, 'Q3_K_M', { nGqa: 2, nLayer: 5 });
  assert.ok('types' in q3);
  assert.equal(q3.types.get('token_embd.weight'), 'Q4_0'); // Q3_K -> Q4_0
  assert.equal(q3.types.get('output.weight'), 'Q8_0');
  assert.equal(q3.types.get('blk.0.attn_v.weight'), 'Q5_1'); // i < 2: Q5_K -> Q5_1
  assert.equal(q3.types.get('blk.1.attn_v.weight'), 'Q5_1');
  assert.equal(q3.types.get('blk.2.attn_v.weight'), 'Q5_0'); // Q4_K -> Q5_0
  assert.equal(q3.types.get('blk.3.attn_output.weight'), 'Q5_0'); // Q4_K -> Q5_0
  assert.equal(q3.types.get('blk.3.attn_q.weight'), 'Q4_0'); // Q3_K -> Q4_0
  assert.equal(q3.types.get('blk.4.ffn_down.weight'), 'F16');
  const q6 = llamaMixTypes(w, 'Q6_K', { nGqa: 2, nLayer: 5 });
  assert.ok('types' in q6);
  assert.deepEqual(new Set(q6.types.values()), new Set(['Q8_0', 'F16']));
  const q5 = llamaMixTypes(w, 'Q5_K_M', { nGqa: 2, nLayer: 5 });
  assert.ok('types' in q5);
  assert.equal(q5.types.get('blk.1.attn_q.weight'), 'Q5_1');
  assert.equal(q5.types.get('blk.4.attn_v.weight'), 'Q8_0');
  for (const mix of ['Q8_0', 'Q4_0', 'IQ4_NL'] as const) {
    const r = llamaMixTypes(w, mix, { nGqa: 2, nLayer: 5 });
    assert.ok('refused' in r, mix);
    assert.match(r.refused, /blk\.0\.ffn_down\.weight.*172/);
  }
});

test('a 32-layer 4096-wide llama: Q4_K_M gives Q6_K to attn_v / ffn_down in the use_more_bits layers', () => {
  const w = [
    { name: 'token_embd.weight', ne: [4096, 32000] },
    { name: 'output.weight', ne: [4096, 32000] },
  ];
  for (let i = 31; i >= 0; i--)
    for (const [n, ne] of [
      ['attn_v', [4096, 4096]],
      ['ffn_down', [11008, 4096]],
      ['attn_q', [4096, 4096]],
    ] as const)
      w.push({ name: `blk.${i}.${n}.weight`, ne: [...ne] });
  const r = llamaMixTypes(w, 'Q4_K_M', { nGqa: 1, nLayer: 32 });
  assert.ok('types' in r);
  const more = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
  for (let i = 0; i < 32; i++) {
    assert.equal(r.types.get(`blk.${i}.attn_v.weight`), more.includes(i) ? 'Q6_K' : 'Q4_K', `attn_v ${i}`);
    // 11008 = 43 * 256: K-quants fit
    assert.equal(
      r.types.get(`blk.${i}.ffn_down.weight`),
      more.includes(i) ? 'Q6_K' : 'Q4_K',
      `ffn_down ${i}`,
    );
    assert.equal(r.types.get(`blk.${i}.attn_q.weight`), 'Q4_K');
  }
  assert.equal(r.types.get('output.weight'), 'Q6_K');
  assert.equal(r.types.get('token_embd.weight'), 'Q4_K');
  assert.equal(r.fallbacks.length, 0);
  // tied embeddings: token_embd takes the output rule
  const tied = llamaMixTypes(
    w.filter((t) => t.name !== 'output.weight'),
    'Q4_K_M',
    { nGqa: 1, nLayer: 32 },
  );
  assert.ok('types' in tied);
  assert.equal(tied.types.get('token_embd.weight'), 'Q6_K');
  // Q3_K_M: ffn_down Q5_K below n/16 = 2, else Q4_K; attn_v Q5_K for the first two
  const q3 = llamaMixTypes(w, 'Q3_K_M', { nGqa: 1, nLayer: 32 });
  assert.ok('types' in q3);
  assert.equal(q3.types.get('blk.1.ffn_down.weight'), 'Q5_K');
  assert.equal(q3.types.get('blk.2.ffn_down.weight'), 'Q4_K');
  assert.equal(q3.types.get('blk.1.attn_v.weight'), 'Q5_K');
  assert.equal(q3.types.get('blk.2.attn_v.weight'), 'Q4_K');
  assert.equal(q3.types.get('blk.2.attn_q.weight'), 'Q3_K');
});

test('shape fallback chain: K-quants to legacy types, then F16; types without a fallback stop', () => {
  assert.equal(llamaShapeFallback('Q4_K', 64), 'Q5_0');
  assert.equal(llamaShapeFallback('Q3_K', 64), 'Q4_0');
  assert.equal(llamaShapeFallback('Q6_K', 172), 'F16');
  assert.equal(llamaShapeFallback('Q4_K', 512), 'Q4_K');
  assert.equal(llamaShapeFallback('Q8_0', 172), undefined);
});

test('Q4_K_M on the bundled GPT as gpt2 (4 layers, rows of 192 and 768): attn_qkv is attention-v-like', () => {
  const w = [
    { name: 'token_embd.weight', ne: [192, 63] },
    { name: 'output.weight', ne: [192, 63] },
  ];
  for (let i = 0; i < 4; i++)
    w.push(
      { name: `blk.${i}.attn_qkv.weight`, ne: [192, 576] },
      { name: `blk.${i}.attn_output.weight`, ne: [192, 192] },
      { name: `blk.${i}.ffn_up.weight`, ne: [192, 768] },
      { name: `blk.${i}.ffn_down.weight`, ne: [768, 192] },
    );
  const r = llamaMixTypes(w, 'Q4_K_M', { nGqa: 1, nLayer: 4 });
  assert.ok('types' in r);
  // use_more_bits(i, 4): n/8 = 0, 7n/8 = 3 -> i = 2 and 3
  for (let i = 0; i < 4; i++) {
    const more = i >= 2;
    assert.equal(r.types.get(`blk.${i}.attn_qkv.weight`), more ? 'Q8_0' : 'Q5_0'); // Q6_K / Q4_K on 192
    assert.equal(r.types.get(`blk.${i}.ffn_down.weight`), more ? 'Q6_K' : 'Q4_K'); // 768 = 3 * 256 fits
    assert.equal(r.types.get(`blk.${i}.attn_output.weight`), 'Q5_0');
  }
  assert.equal(r.types.get('output.weight'), 'Q8_0'); // 192 % 256 != 0
  assert.equal(r.types.get('token_embd.weight'), 'Q5_0');
});

// Model configurations from GGUF metadata and HF config.json, written back as GGUF metadata; tensor names
// HF <-> GGUF both ways on the real names of stories260K's GGUF (llama.cpp's converter) and of
// transformers' Llama / GPT-2 parameter lists; the RoPE row permutation against llama.cpp's formula.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseGguf } from '../../../src/io/gguf/read.ts';
import { concatBytes, writeGguf } from '../../../src/io/gguf/write.ts';
import { llmConfigFromGguf, llmConfigFromHf, llmConfigToGgufKv } from '../../../src/io/llm/config.ts';
import {
  ggufNameFromHf,
  hfNameFromGguf,
  onnxInitializerByHf,
  onnxWeightNames,
  ropeRowPermutation,
} from '../../../src/io/llm/names.ts';
import type { OnnxModel } from '../../../src/io/onnx/read.ts';
import { gpt2TensorPlan } from '../../../src/export/gguf/gpt2.ts';
import { storiesModelPath } from '../../../src/runtime/bundled-stories.node.ts';

const stories = parseGguf(new Uint8Array(readFileSync(storiesModelPath())), 'stories260K.gguf');

test('stories260K config from its GGUF metadata: GQA 8/4, head dim 8, RMSNorm 1e-5, RoPE 10000', () => {
  const c = llmConfigFromGguf(stories);
  assert.equal(c.architecture, 'llama');
  assert.deepEqual(
    [
      c.vocabSize,
      c.hiddenSize,
      c.intermediateSize,
      c.numLayers,
      c.numHeads,
      c.numKvHeads,
      c.headDim,
      c.contextLength,
    ],
    [512, 64, 172, 5, 8, 4, 8, 2048],
  );
  assert.equal(c.ropeTheta, 10000);
  assert.ok(Math.abs(c.normEps - 1e-5) < 1e-10);
  assert.equal(c.tieWordEmbeddings, false); // llama.cpp's converter wrote output.weight
  // written back and read again: the same configuration
  const kv = llmConfigToGgufKv(c);
  const tensors = stories.tensors.map((t) => ({
    name: t.name,
    ne: t.ne,
    type: t.typeId,
    data: new Uint8Array(t.nbytes),
  }));
  const again = llmConfigFromGguf(parseGguf(concatBytes(writeGguf({ kv, tensors })), 'again.gguf'));
  const { bosTokenId: _b, eosTokenId: _e, ...arch } = c; // token ids live with the vocabulary keys
  assert.deepEqual({ ...again, source: '' }, { ...arch, source: '' });
});

const llamaHf = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 5632,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  num_hidden_layers: 22,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  hidden_act: 'silu',
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
};

test('HF configs: TinyLlama (GQA 32/4), Mistral (sliding window -> context), Qwen2 (qkv bias, tied), GPT-2', () => {
  const t = llmConfigFromHf(llamaHf, 'config.json');
  assert.deepEqual(
    [t.numHeads, t.numKvHeads, t.headDim, t.qkvBias, t.contextLength],
    [32, 4, 64, false, 2048],
  );
  const m = llmConfigFromHf(
    { ...llamaHf, model_type: 'mistral', max_position_embeddings: 32768, sliding_window: 4096 },
    'c',
  );
  assert.equal(m.architecture, 'llama');
  assert.equal(m.contextLength, 4096);
  const q = llmConfigFromHf(
    { ...llamaHf, model_type: 'qwen2', tie_word_embeddings: true, rope_theta: 1e6 },
    'c',
  );
  assert.deepEqual(
    [q.architecture, q.qkvBias, q.outputBias, q.tieWordEmbeddings, q.ropeTheta],
    ['qwen2', true, false, true, 1e6],
  );
  assert.equal(q.ggufRopeMode, 'neox');
  assert.equal(t.ggufRopeMode, 'norm');
  const g = llmConfigFromHf(
    {
      model_type: 'gpt2',
      n_embd: 768,
      n_head: 12,
      n_layer: 12,
      n_positions: 1024,
      vocab_size: 50257,
      n_inner: null,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
    },
    'c',
  );
  assert.deepEqual(
    [g.family, g.intermediateSize, g.headDim, g.tieWordEmbeddings, g.norm],
    ['gpt2', 3072, 64, true, 'layer'],
  );
  const kv = llmConfigToGgufKv(q);
  assert.ok(kv.some((x) => x.key === 'qwen2.rope.freq_base' && x.value === 1e6));
});

test('configs that the graphs cannot express are refused, naming the field', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...llamaHf, hidden_act: 'gelu' }, /config\.json: hidden_act: .*expected 'silu'/],
    [
      { ...llamaHf, rope_scaling: { type: 'yarn', factor: 4 } },
      /rope_scaling\.rope_type: rope scaling "yarn"/,
    ],
    [{ ...llamaHf, num_key_value_heads: 5 }, /num_key_value_heads: .*expected a divisor of 32/],
    [{ ...llamaHf, model_type: 'qwen2', use_sliding_window: true }, /use_sliding_window/],
    [{ ...llamaHf, num_hidden_layers: -1 }, /num_hidden_layers: value "-1"/],
    [
      { ...llamaHf, model_type: 'falcon' },
      /model_type: model_type "falcon" is not supported \(expected llama, mistral, qwen2, gpt2\)/,
    ],
    [
      { model_type: 'gpt2', n_embd: 8, n_head: 2, n_layer: 1, vocab_size: 10, activation_function: 'relu' },
      /activation_function/,
    ],
  ];
  for (const [cfg, re] of bad) assert.throws(() => llmConfigFromHf(cfg, 'config.json'), re);
  const arch = (a: string) =>
    parseGguf(
      concatBytes(writeGguf({ kv: [{ key: 'general.architecture', type: 'str', value: a }], tensors: [] })),
      'm.gguf',
    );
  assert.throws(
    () => llmConfigFromGguf(arch('mamba')),
    /m\.gguf: general\.architecture: architecture "mamba" is not supported \(expected llama, qwen2, gpt2\)/,
  );
  assert.throws(() => llmConfigFromGguf(arch('llama')), /m\.gguf: token_embd\.weight: missing tensor/);
});

test('GGUF <-> HF names: every tensor of stories260K round-trips; q/k carry the RoPE permutation', () => {
  for (const t of stories.tensors) {
    const hf = hfNameFromGguf('llama', t.name);
    assert.ok(hf, t.name);
    const back = ggufNameFromHf('llama', hf.name);
    assert.deepEqual(back, { name: t.name, transform: hf.transform });
  }
  assert.deepEqual(ggufNameFromHf('llama', 'model.layers.21.self_attn.k_proj.weight'), {
    name: 'blk.21.attn_k.weight',
    transform: 'permute-k',
  });
  assert.deepEqual(ggufNameFromHf('qwen2', 'model.layers.3.self_attn.q_proj.bias'), {
    name: 'blk.3.attn_q.bias',
    transform: 'none',
  });
  assert.equal(ggufNameFromHf('llama', 'model.layers.0.self_attn.rotary_emb.inv_freq'), undefined);
  // transformers' GPT-2 names <-> the GGUF names mixq's GPT export writes (gpt2.ts)
  const gguf = gpt2TensorPlan({ nLayer: 2, dModel: 8, nHead: 2, context: 16, vocabSize: 10 }).map(
    (e) => e.gguf,
  );
  for (const n of gguf) {
    const hf = hfNameFromGguf('gpt2', n);
    assert.ok(hf, n);
    assert.equal(ggufNameFromHf('gpt2', hf.name)?.name, n);
  }
  assert.deepEqual(ggufNameFromHf('gpt2', 'h.1.attn.c_attn.weight'), {
    name: 'blk.1.attn_qkv.weight',
    transform: 'transpose',
  });
});

test("RoPE row permutation equals llama.cpp's reshape(n_head, 2, d/2).swapaxes(1, 2)", () => {
  const heads = 3;
  const d = 8;
  const perm = ropeRowPermutation(heads * d, heads);
  // brute force of the numpy expression on row indices
  const expected: number[] = [];
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < d / 2; i++)
      for (let two = 0; two < 2; two++) expected.push(h * d + two * (d / 2) + i);
  assert.deepEqual(Array.from(perm), expected);
  assert.deepEqual(
    [...perm].sort((a, b) => a - b),
    Array.from({ length: heads * d }, (_, i) => i),
  );
});

test('ONNX -> HF names on a real torch export of stories260K: 48 weights, 36 transposed MatMul', () => {
  const g = JSON.parse(readFileSync('test/golden/stories-onnx-names.json', 'utf8')) as {
    initializers: { name: string; dims: number[] }[];
    nodes: { name: string; op_type: string; input: string[] }[];
  };
  const model = { proto: { graph: { initializer: g.initializers, node: g.nodes } } } as unknown as OnnxModel;
  const hfShapes = new Map<string, number[]>();
  const hf = parseSafetensorsSync('test/fixtures/stories-hf/model.safetensors');
  for (const [n, s] of hf) hfShapes.set(n, s);
  hfShapes.set('lm_head.weight', hfShapes.get('model.embed_tokens.weight')!);
  const names = onnxWeightNames(model, (n) => hfShapes.has(n));
  assert.equal(names.size, 48);
  for (const [init, w] of names) {
    const dims = g.initializers.find((i) => i.name === init)!.dims;
    const want = hfShapes.get(w.hf)!;
    assert.deepEqual(dims, w.transposed ? [...want].reverse() : want, `${init} -> ${w.hf}`);
  }
  assert.deepEqual(
    names.get(g.nodes.find((n) => n.name === '/model/layers.4/mlp/down_proj/MatMul')!.input[1]!),
    {
      hf: 'model.layers.4.mlp.down_proj.weight',
      transposed: true,
    },
  );
  const back = onnxInitializerByHf(names);
  assert.equal(
    back.get('model.layers.0.self_attn.k_proj.weight'),
    g.nodes.find((n) => n.name === '/model/layers.0/self_attn/k_proj/MatMul')!.input[1],
  );
});

/** name -> shape of a safetensors file's header (no data read). */
function parseSafetensorsSync(path: string): Map<string, number[]> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape: number[] }>;
  return new Map(
    Object.entries(h)
      .filter(([k]) => k !== '__metadata__')
      .map(([k, v]) => [k, v.shape]),
  );
}

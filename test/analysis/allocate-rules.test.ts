import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  categorizeWeight,
  GGML_SHAPE_FALLBACK,
  Q4_K_M_SCHEMES,
  type RuleWeight,
  ruleMix,
  uniformMix,
  useMoreBits,
} from '../../src/analysis/allocate/index.ts';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const picked = (n: number) => range(n).filter((i) => useMoreBits(i, n));

describe("llama.cpp's use_more_bits", () => {
  it('matches hand-evaluated layer lists', () => {
    // n=8: n/8=1, 7n/8=7: {0} + {7} + (i-1)%3==2 -> {3, 6}
    assert.deepEqual(picked(8), [0, 3, 6, 7]);
    // n=32 (Llama-7B): {0..3} + {28..31} + i = 6, 9, ..., 27
    assert.deepEqual(picked(32), [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    // n=12 (GPT-2 small): 7*12/8 = 10 (integer division)
    assert.deepEqual(picked(12), [0, 3, 6, 9, 10, 11]);
    // n=4 (mixq's bundled GPT): n/8 = 0, 7n/8 = 3
    assert.deepEqual(picked(4), [2, 3]);
    assert.deepEqual(picked(1), [0]);
  });
});

function gguf(nLayers: number): RuleWeight[] {
  const out: RuleWeight[] = [{ name: 'token_embd.weight', role: 'embedding' }];
  for (const i of range(nLayers))
    for (const t of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'])
      out.push({ name: `blk.${i}.${t}.weight`, role: 'matmul-weight', layer: i });
  out.push({ name: 'output.weight', role: 'matmul-weight' });
  return out;
}

describe('Q4_K_M-style rule mix', () => {
  it('GGUF llama names: Q6_K for attn_v / ffn_down in the picked layers and for output', () => {
    const ws = gguf(8);
    const mix = ruleMix(ws, Q4_K_M_SCHEMES);
    for (const i of range(8)) {
      const more = [0, 3, 6, 7].includes(i);
      assert.equal(mix.get(`blk.${i}.attn_v.weight`), more ? 'Q6_K' : 'Q4_K', `attn_v ${i}`);
      assert.equal(mix.get(`blk.${i}.ffn_down.weight`), more ? 'Q6_K' : 'Q4_K', `ffn_down ${i}`);
      for (const t of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up'])
        assert.equal(mix.get(`blk.${i}.${t}.weight`), 'Q4_K');
    }
    assert.equal(mix.get('output.weight'), 'Q6_K');
    assert.equal(mix.get('token_embd.weight'), 'Q4_K');
    assert.equal(ruleMix(ws, Q4_K_M_SCHEMES, { tiedEmbeddings: true }).get('token_embd.weight'), 'Q6_K');
    // File order does not matter: layers are sorted before counting.
    const shuffled = [...ws].reverse();
    assert.deepEqual(new Map([...ruleMix(shuffled, Q4_K_M_SCHEMES)].sort()), new Map([...mix].sort()));
  });

  it('Hugging Face and GPT-2 names map to the same roles', () => {
    const hf = (i: number, t: string) => `model.layers.${i}.${t}.weight`;
    assert.equal(categorizeWeight({ name: hf(3, 'self_attn.v_proj') }), 'attn_v');
    assert.equal(categorizeWeight({ name: hf(3, 'self_attn.o_proj') }), 'other');
    assert.equal(categorizeWeight({ name: hf(3, 'mlp.down_proj') }), 'ffn_down');
    assert.equal(categorizeWeight({ name: hf(3, 'mlp.up_proj') }), 'other');
    assert.equal(categorizeWeight({ name: 'lm_head.weight' }), 'output');
    assert.equal(categorizeWeight({ name: 'model.embed_tokens.weight' }), 'token_embd');
    assert.equal(categorizeWeight({ name: 'transformer.h.2.attn.c_attn.weight' }), 'attn_qkv');
    assert.equal(categorizeWeight({ name: 'transformer.h.2.attn.c_proj.weight' }), 'other');
    assert.equal(categorizeWeight({ name: 'transformer.h.2.mlp.c_proj.weight' }), 'ffn_down');
    assert.equal(categorizeWeight({ name: 'transformer.wte.weight' }), 'token_embd');
    assert.equal(categorizeWeight({ name: 'blk.0.attn_output.weight' }), 'other');
  });

  it("mixq's bundled GPT: fused qkv -> Q5_K, mlp_proj in layers 2 and 3 -> Q6_K, head -> Q6_K", () => {
    const ws: RuleWeight[] = [{ name: 'wte', role: 'embedding' }];
    for (const i of range(4))
      for (const t of ['attn_qkv', 'attn_proj', 'mlp_fc', 'mlp_proj'])
        ws.push({ name: `blocks.${i}.${t}`, role: 'matmul-weight', layer: i });
    ws.push({ name: 'head', role: 'matmul-weight' });
    const mix = ruleMix(ws, Q4_K_M_SCHEMES);
    assert.deepEqual(
      range(4).map((i) => mix.get(`blocks.${i}.mlp_proj`)),
      ['Q4_K', 'Q4_K', 'Q6_K', 'Q6_K'],
    );
    assert.deepEqual(
      range(4).map((i) => mix.get(`blocks.${i}.attn_qkv`)),
      ['Q5_K', 'Q5_K', 'Q5_K', 'Q5_K'],
    );
    assert.equal(mix.get('blocks.1.attn_proj'), 'Q4_K');
    assert.equal(mix.get('head'), 'Q6_K');
    assert.equal(mix.get('wte'), 'Q4_K');
    // Generic scheme ids: the same rule over mixq schemes.
    const generic = ruleMix(ws, { base: 'int4_g32', more: 'int6_g32', output: 'int8_axis' });
    assert.equal(generic.get('blocks.3.mlp_proj'), 'int6_g32');
    assert.equal(generic.get('blocks.0.attn_qkv'), 'int4_g32');
    assert.equal(generic.get('head'), 'int8_axis');
  });

  it('an ONNX CNN: the last matmul/gemm weight is the output layer, convs take the base scheme', () => {
    const ws: RuleWeight[] = [
      { name: 'conv1_weights', role: 'conv-weight' },
      { name: 'onnx::Conv_301', role: 'conv-weight' },
      { name: 'onnx::MatMul_412', role: 'matmul-weight' },
      { name: 'onnx::MatMul_420', role: 'matmul-weight' },
      { name: 'onnx::Conv_500', role: 'conv-weight' },
    ];
    const mix = ruleMix(ws, Q4_K_M_SCHEMES);
    assert.deepEqual([...mix.values()], ['Q4_K', 'Q4_K', 'Q4_K', 'Q6_K', 'Q4_K']);
  });

  it('the shape fallback substitutes per weight; uniform gives one scheme everywhere', () => {
    const ws: RuleWeight[] = [
      { name: 'blk.0.ffn_down.weight', layer: 0 },
      { name: 'blk.0.attn_q.weight', layer: 0 },
      { name: 'output.weight' },
    ];
    const rows = new Map([
      ['blk.0.ffn_down.weight', 192],
      ['blk.0.attn_q.weight', 256],
      ['output.weight', 192],
    ]);
    const mix = ruleMix(ws, Q4_K_M_SCHEMES, {
      fallback: (s, w) => (rows.get(w.name)! % 256 === 0 ? s : (GGML_SHAPE_FALLBACK[s] ?? s)),
    });
    assert.deepEqual([...mix.values()], ['Q8_0', 'Q4_K', 'Q8_0']);
    assert.deepEqual([...uniformMix(ws, 'Q8_0').values()], ['Q8_0', 'Q8_0', 'Q8_0']);
  });

  it('PP-OCRv4 (Paddle names): a categorize callback maps the SVTR neck; the CTC head is the output', () => {
    const ws: RuleWeight[] = [
      ...range(3).map((i) => ({ name: `conv2d_${170 + i}.w_0`, role: 'conv-weight' })),
      ...range(9).map((i) => ({ name: `linear_${77 + i}.w_0`, role: 'matmul-weight' })),
    ];
    const byDefault = ruleMix(ws, Q4_K_M_SCHEMES);
    assert.equal(byDefault.get('linear_85.w_0'), 'Q6_K');
    assert.equal([...byDefault.values()].filter((s) => s !== 'Q4_K').length, 1);
    // Neck blocks: linear_77..80 = block 0 (qkv, proj, fc1, fc2), linear_81..84 = block 1.
    const categorize = (w: RuleWeight) => {
      const m = /^linear_(\d+)\.w_0$/.exec(w.name);
      const k = m ? Number(m[1]) - 77 : -1;
      if (k < 0 || k >= 8) return categorizeWeight(w);
      return k % 4 === 0 ? 'attn_qkv' : k % 4 === 3 ? 'ffn_down' : 'other';
    };
    const mix = ruleMix(ws, Q4_K_M_SCHEMES, { categorize });
    // Two ffn_down tensors: n/8 = 0 and 7n/8 = 1, so only the second (i = 1) gets more bits.
    assert.equal(mix.get('linear_80.w_0'), 'Q4_K');
    assert.equal(mix.get('linear_84.w_0'), 'Q6_K');
    assert.equal(mix.get('linear_77.w_0'), 'Q5_K');
    assert.equal(mix.get('linear_78.w_0'), 'Q4_K');
    assert.equal(mix.get('linear_85.w_0'), 'Q6_K');
    assert.equal(mix.get('conv2d_170.w_0'), 'Q4_K');
  });
});

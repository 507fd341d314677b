/** Layer indices from names, and the shared quantizable rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isQuantizableWeight, layerFromName } from '../../src/graph/index.ts';

test('layerFromName recognises the common exporters and rejects look-alikes', () => {
  const cases: [string, number | undefined][] = [
    ['model.layers.12.self_attn.q_proj.weight', 12],
    ['/model/layers.3/mlp/down_proj/MatMul', 3],
    ['transformer.h.7.attn.c_attn.weight', 7],
    ['bert.encoder.layer.11.output.dense.weight', 11],
    ['blk.0.attn_q.weight', 0],
    ['blocks.4.mlp.fc1', 4],
    ['backbone.stages.2.conv', 2],
    ['layer_5/dense', 5],
    ['model.embed_tokens.weight', undefined],
    ['conv2d_12.w_0', undefined],
    ['layers.3x.weight', undefined],
    ['ch.3.w', undefined],
    ['h.', undefined],
  ];
  for (const [name, want] of cases) assert.equal(layerFromName(name), want, name);
});

test('isQuantizableWeight: weight roles, float dtypes, 2-D linear / 3..5-D conv, >= 1024 elements', () => {
  assert.equal(isQuantizableWeight('matmul-weight', [64, 64], 'f32'), true);
  assert.equal(isQuantizableWeight('gemm-weight', [64, 16], 'F16'), true);
  assert.equal(isQuantizableWeight('embedding', [1000, 8], 'BF16'), true);
  assert.equal(isQuantizableWeight('conv-weight', [64, 16, 3, 3], 'f16'), true);
  assert.equal(isQuantizableWeight('conv-weight', [64, 1024], 'f16'), false);
  assert.equal(isQuantizableWeight('matmul-weight', [4, 64, 64], 'f32'), false);
  assert.equal(isQuantizableWeight('bias', [64, 64], 'f32'), false);
  assert.equal(isQuantizableWeight('norm', [64, 64], 'f32'), false);
  assert.equal(isQuantizableWeight('matmul-weight', [64, 64], 'i8'), false);
  assert.equal(isQuantizableWeight('matmul-weight', [64, 64], 'fp8_e4m3fn'), false);
  assert.equal(isQuantizableWeight('matmul-weight', [32, 31], 'f32'), false);
  assert.equal(isQuantizableWeight('matmul-weight', [4, 4], 'f32', 16), true);
});

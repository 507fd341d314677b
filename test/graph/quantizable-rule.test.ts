/**
 * The one quantizable rule (graph/layers.ts isQuantizableWeight) in its two parameterisations: the graph
 * rule (ONNX) and io/names.ts's rule for tensors known by name (GGUF, safetensors). Each is compared,
 * exhaustively over roles x ranks x dtypes x sizes, with the rule written out independently here (the
 * two hand-written versions the shared function replaced).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TensorRole } from '../../src/graph/index.ts';
import { isQuantizableWeight } from '../../src/graph/index.ts';
import { isQuantizable } from '../../src/io/names.ts';

const ROLES: TensorRole[] = [
  'matmul-weight',
  'gemm-weight',
  'conv-weight',
  'embedding',
  'bias',
  'norm',
  'other',
];
const DTYPES = [
  'f32',
  'F16',
  'bf16',
  'f64',
  'BF16',
  'Q4_K',
  'q8_0',
  'fp8_e4m3fn',
  'i8',
  'U8',
  'int4',
  'bool',
  'I64',
];
const SIZES = [1, 2, 31, 32, 33, 1023, 1024, 1025];

/** Shapes of rank 0..6 with `n` elements (rank 0 is a scalar: only for n = 1). */
function shapes(n: number): number[][] {
  const out: number[][] = n === 1 ? [[]] : [];
  for (let r = 1; r <= 6; r++) out.push([n, ...Array<number>(r - 1).fill(1)]);
  return out;
}

function graphRule(role: TensorRole, shape: number[], dtype: string, min: number): boolean {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n < min || !['f32', 'f16', 'bf16', 'f64'].includes(dtype.toLowerCase())) return false;
  if (role === 'matmul-weight' || role === 'gemm-weight' || role === 'embedding') return shape.length === 2;
  if (role === 'conv-weight') return shape.length >= 3 && shape.length <= 5;
  return false;
}

function namedRule(role: TensorRole, shape: number[], dtype: string): boolean {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = dtype.toLowerCase();
  if (n < 1024 || /^(?:i|u)\d+$/.test(d) || d === 'bool') return false;
  if (role === 'matmul-weight') return shape.length === 2 || shape.length === 3;
  if (role === 'embedding') return shape.length === 2;
  if (role === 'conv-weight') return shape.length >= 3 && shape.length <= 5;
  return false;
}

test('graph rule: exhaustive match with the written-out rule, default and custom minElements', () => {
  let yes = 0;
  for (const role of ROLES)
    for (const dtype of DTYPES)
      for (const n of SIZES)
        for (const shape of shapes(n)) {
          for (const min of [1, 32, 1024]) {
            const want = graphRule(role, shape, dtype, min);
            assert.equal(
              isQuantizableWeight(role, shape, dtype, min),
              want,
              `${role} ${shape} ${dtype} ${min}`,
            );
            if (want) yes++;
          }
          assert.equal(isQuantizableWeight(role, shape, dtype), graphRule(role, shape, dtype, 1024));
        }
  assert.ok(yes > 100, 'the enumeration reaches the accepting cases');
});

test('named-tensor rule (io/names.ts): exhaustive match, including 3-D experts and ggml block dtypes', () => {
  let yes = 0;
  for (const role of ROLES)
    for (const dtype of DTYPES)
      for (const n of SIZES)
        for (const shape of shapes(n)) {
          const want = namedRule(role, shape, dtype);
          assert.equal(isQuantizable(role, shape, dtype), want, `${role} ${shape} ${dtype}`);
          if (want) yes++;
        }
  assert.ok(yes > 20, 'the enumeration reaches the accepting cases');
  // where the two rules differ on purpose
  assert.equal(isQuantizable('matmul-weight', [8, 64, 64], 'f16'), true);
  assert.equal(isQuantizableWeight('matmul-weight', [8, 64, 64], 'f16'), false);
  assert.equal(isQuantizable('gemm-weight', [64, 64], 'f16'), false);
  assert.equal(isQuantizable('matmul-weight', [64, 64], 'Q4_K'), true);
  assert.equal(isQuantizableWeight('matmul-weight', [64, 64], 'Q4_K'), false);
});

/**
 * One scheme from candidate to file (src/quant/scheme.ts): exact round trips between the row frame of the
 * candidates and a weight's tensor axes (the plan's), ONNX storage per weight kind (export/onnx/assign.ts),
 * the output targets' candidate sets (pipeline/quantize/targets.ts) and the output layer's restriction.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fullCandidates,
  parseCandidateIds,
  schemeCost,
  schemeId,
  schemeStorage,
} from '../../src/analysis/sensitivity/candidates.ts';
import { quantizeScheme } from '../../src/analysis/sensitivity/apply-scheme.ts';
import { checkApplied } from '../../src/analysis/sensitivity/apply-scheme.ts';
import { Rng } from '../../src/core/rng.ts';
import { onnxAssignment } from '../../src/export/onnx/assign.ts';
import { outputLayerSchemes } from '../../src/pipeline/quantize/sensitivity.ts';
import { nativeCandidates, TARGETS } from '../../src/pipeline/quantize/targets.ts';
import { validatePlan } from '../../src/plan/parse.ts';
import { rowLayout, toRows } from '../../src/quant/layout.ts';
import { fakeQuant } from '../../src/quant/quantizer.ts';
import {
  quantizerOf,
  representable,
  type Scheme,
  schemeOnRows,
  schemeOnTensor,
} from '../../src/quant/scheme.ts';
import { DEFAULT_CANDIDATE_IDS } from '../candidate-ids.ts';
import { oneWeightPlan } from '../plan-util.ts';

const matmul = rowLayout([96, 40], 1); // MatMul B [K = 96, N = 40]
const conv1 = rowLayout([24, 64, 1, 1], 0); // 1 x 1 conv
const conv3 = rowLayout([16, 8, 3, 3], 0); // 3 x 3 conv, cols = 72
const wide = rowLayout([256, 24], 1); // MatMul B, K = 256 longer than every group

function randn(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.nextNormal());
}

const one = (id: string): Scheme => parseCandidateIds([id])[0]!;

test('schemeOnTensor -> schemeOnRows is the identity on every RTN candidate (quantizer, id, cost)', () => {
  for (const L of [matmul, conv1, conv3, wide]) {
    for (const c of fullCandidates().filter((x) => x.algorithm === 'rtn')) {
      if (!representable(c, L)) {
        assert.ok(L.kernel > 1, `${schemeId(c)} must be representable on a matrix`);
        assert.throws(() => schemeOnTensor(c, L), /16x8x3x3 kernel/);
        continue;
      }
      const s = schemeOnTensor(c, L);
      const back = schemeOnRows(s, L);
      assert.equal(back.algorithm, c.algorithm);
      assert.deepEqual(schemeCost(back, L), schemeStorage(c, L.rows, L.cols), `${schemeId(c)} cost`);
      // the same scheme, where no group covers a whole row (then 'g128' is stated per channel)
      if (L === wide) assert.deepEqual(back, c);
      const W = randn(L.rows * L.cols, 3);
      assert.deepEqual(quantizeScheme(W, L, back), quantizeScheme(W, L, c), `${schemeId(c)} on ${L.dims}`);
    }
  }
});

test('a scheme on the tensor axes quantizes the tensor like the row-frame candidate (independent path)', () => {
  // fakeQuant on the tensor itself with the plan's granularity = the candidate on the row matrix
  for (const id of ['int4-g32-rtn', 'int8-pc-rtn', 'int2-g32-rtn', 'nvfp4-rtn']) {
    const c = one(id);
    for (const L of [matmul, conv1]) {
      const W = randn(
        L.dims.reduce((p, d) => p * d, 1),
        5,
      );
      const s = schemeOnTensor(c, L);
      const viaTensor = fakeQuant(W, L.dims, {
        element: quantizerOf(c).element,
        granularity: s.granularity,
        symmetric: s.symmetric,
        scaleFormat: s.scaleFormat,
      });
      const viaRows = quantizeScheme(toRows(W, L), L, c);
      assert.deepEqual(toRows(viaTensor, L), viaRows, `${id} on ${L.dims}`);
    }
  }
});

test('schemes on tensor axes validate as plan file entries', () => {
  const s = schemeOnTensor(one('int4-g32-rtn'), matmul);
  assert.deepEqual(s.granularity, { kind: 'group', axis: 0, size: 32 });
  const cost = schemeCost(schemeOnRows(s, matmul), matmul);
  const plan = validatePlan(oneWeightPlan(s, [96, 40], cost), 'test');
  assert.equal(plan.weights[0]!.scheme.format, 'uint4');
});

test('onnxAssignment: native operators per weight kind; packed storage where onnxruntime has none', () => {
  const a = (id: string, L: typeof matmul, consumer: string, native = true) => {
    const c = one(id);
    return representable(c, L) ? onnxAssignment(schemeOnTensor(c, L), L, consumer, 21, native) : undefined;
  };
  assert.deepEqual(a('int4-g32-rtn', matmul, 'MatMul:1'), {
    scheme: 'matmulnbits',
    bits: 4,
    blockSize: 32,
    symmetric: false,
    scaleType: 'float16',
  });
  assert.equal(a('int2-g32-gptq', matmul, 'MatMul:1')?.scheme, 'matmulnbits');
  assert.deepEqual(a('int8-pc-rtn', matmul, 'MatMul:1'), {
    scheme: 'dequantizelinear',
    bits: 8,
    symmetric: true,
    scaleType: 'float32',
    granularity: 'channel',
  });
  // a group longer than the row (128 > 64 input channels) is one scale per output channel
  assert.deepEqual(a('int4-g128-rtn', conv1, 'Conv:1'), {
    scheme: 'dequantizelinear',
    bits: 4,
    symmetric: false,
    scaleType: 'float16',
    granularity: 'channel',
  });
  assert.deepEqual(a('int4-g32-rtn', conv1, 'Conv:1'), {
    scheme: 'dequantizelinear',
    bits: 4,
    blockSize: 32,
    symmetric: false,
    scaleType: 'float16',
    granularity: 'block',
  });
  assert.equal(a('int4-g32-rtn', conv3, 'Conv:1'), undefined);
  assert.equal(a('int4-pc-rtn', conv3, 'Conv:1')?.granularity, 'channel');
  assert.equal(a('int2-g32-rtn', conv1, 'Conv:1'), undefined, 'no 2-bit DequantizeLinear before opset 25');
  const noNative = [
    'int3-g32-rtn',
    'int5-g32-rtn',
    'fp6_e3m2fn-pc-rtn',
    'nvfp4-rtn',
    'mxfp4-rtn',
    'nf4-g64-rtn',
  ];
  for (const id of [...noNative, 'int4-g32-awq']) assert.equal(a(id, matmul, 'MatMul:1'), undefined, id);
  // without `native`: the same schemes bit-plane packed with their row-frame quantizer (not AWQ)
  for (const id of noNative)
    assert.deepEqual(
      a(id, matmul, 'MatMul:1', false),
      { scheme: 'packed', quantizer: quantizerOf(one(id)) },
      id,
    );
  assert.equal(a('int2-g32-rtn', conv1, 'Conv:1', false)?.scheme, 'packed');
  assert.equal(a('int4-g32-awq', matmul, 'MatMul:1', false), undefined, 'AWQ is not exported');
  assert.equal(a('int4-g32-rtn', matmul, 'MatMul:1', false)?.scheme, 'matmulnbits', 'native first');
  // packed needs opset 18 (BitwiseAnd): a model that cannot be raised gets none
  assert.equal(
    onnxAssignment(schemeOnTensor(one('int3-g32-rtn'), matmul), matmul, 'MatMul:1', 17),
    undefined,
  );
  // FP8 per channel: float8 DequantizeLinear from opset 13 models up (raised to 21), never at opset 9
  assert.deepEqual(a('fp8_e4m3fn-pc-rtn', matmul, 'MatMul:1'), {
    scheme: 'dequantizelinear',
    bits: 8,
    element: 'fp8_e4m3fn',
    symmetric: true,
    scaleType: 'float32',
    granularity: 'channel',
  });
  assert.equal(onnxAssignment(schemeOnTensor(one('fp8_e4m3-pc-rtn'), conv3), conv3, 'Conv:1', 9), undefined);
  // every native candidate is exportable on a matrix
  for (const c of nativeCandidates()) assert.ok(a(schemeId(c), matmul, 'MatMul:1'), schemeId(c));
});

test('clipping-search candidates: ids, plan round trip through the plan file, refusals', () => {
  const [mse, gmse, smse] = parseCandidateIds([
    'int3-g32-rtn-mse',
    'int2-g32-gptq-mse',
    'int3-g32-rtn-mse-sp1',
  ]);
  assert.deepEqual(mse!.scaleRule, { kind: 'mse' });
  assert.equal(gmse!.algorithm, 'gptq');
  assert.deepEqual(smse!.scaleRule, { kind: 'mse' });
  assert.deepEqual(smse!.outliers, { kind: 'salient', criterion: 'hessian', fraction: 0.01 });
  assert.throws(() => parseCandidateIds(['nf4-g64-rtn-mse']), /only offered on integer RTN \/ GPTQ/);
  assert.throws(() => parseCandidateIds(['int4-g32-awq-mse']), /only offered on integer RTN \/ GPTQ/);
  const W = randn(matmul.rows * matmul.cols, 5);
  for (const c of [mse!, smse!]) {
    const s = schemeOnTensor(c, matmul);
    assert.deepEqual(s.scaleRule, { kind: 'mse' });
    // through the file format: serialised, validated, read back
    const cost = schemeCost(schemeOnRows(s, matmul), matmul);
    const plan = validatePlan(JSON.parse(JSON.stringify(oneWeightPlan(s, [96, 40], cost))), 'test');
    const back = schemeOnRows(checkApplied(plan.weights[0]!.scheme), matmul);
    assert.equal(schemeId(back), schemeId(c));
    const st = {
      channels: matmul.cols,
      meanSquare: Float64Array.from({ length: matmul.cols }, (_, j) => 1 + j),
    };
    assert.deepEqual(quantizeScheme(W, matmul, back, st), quantizeScheme(W, matmul, c, st));
  }
  // the search changes the result (and lowers the squared error) against min-max
  const plain = one('int3-g32-rtn');
  const err = (c: Scheme) => {
    const q = quantizeScheme(W, matmul, c);
    let e = 0;
    for (let i = 0; i < W.length; i++) e += (q[i]! - W[i]!) ** 2;
    return e;
  };
  assert.ok(err(mse!) < err(plain), `${err(mse!)} < ${err(plain)}`);
  // a scale rule the plan format does not know, or on a float format, is refused naming the field
  const s = schemeOnTensor(mse!, matmul);
  assert.throws(
    () => checkApplied({ ...s, format: 'fp4_e2m1fn', symmetric: true }, 'weights[0].scheme'),
    /weights\[0\]\.scheme\.scaleRule/,
  );
  assert.throws(
    () =>
      validatePlan(
        {
          ...oneWeightPlan({ ...s, scaleRule: { kind: 'percentile' } as never }, [96, 40], {
            bits: 8,
            bytes: 1,
          }),
        },
        'plan.json',
      ),
    /scaleRule\.kind/,
  );
});

test('outputLayerSchemes: the output layer drops clipping-search candidates only while another remains', () => {
  const ids = (xs: readonly Scheme[] | undefined) => xs?.map(schemeId);
  const all = parseCandidateIds(['int8-pc-rtn', 'int4-g32-rtn-mse', 'int2-g32-gptq', 'int2-g32-gptq-mse']);
  assert.deepEqual(ids(outputLayerSchemes(all)), ['int8-pc-rtn', 'int2-g32-gptq']);
  // nothing to drop, or nothing else left: no restriction
  assert.equal(outputLayerSchemes(parseCandidateIds(['int8-pc-rtn', 'int2-g32-gptq'])), undefined);
  assert.equal(outputLayerSchemes(parseCandidateIds(['int4-g32-rtn-mse', 'int2-g32-gptq-mse'])), undefined);
});

test('output targets: the default candidate sets, in the order the allocator sees them', () => {
  const base = DEFAULT_CANDIDATE_IDS;
  const extras = [
    'int4-g128-gptq',
    'int4-g32-gptq',
    'int3-g32-gptq',
    'int2-g32-gptq',
    'int5-g32-rtn-mse',
    'int4-pc-rtn-mse',
    'int4-g32-rtn-mse',
    'int3-g32-rtn-mse',
    'int2-g32-rtn-mse',
    'int3-g32-gptq-mse',
    'int2-g32-gptq-mse',
  ];
  const native = [
    'int8-pc-rtn',
    'fp8_e4m3fn-pc-rtn',
    'int4-pc-rtn',
    'int4-g128-rtn',
    'int4-g128-gptq',
    'int4-g32-rtn',
    'int4-g32-gptq',
    'int2-g32-rtn',
    'int2-g32-gptq',
    'int4-pc-rtn-mse',
    'int4-g128-rtn-mse',
    'int4-g32-rtn-mse',
    'int2-g32-rtn-mse',
    'int2-g32-gptq-mse',
  ];
  const set = (t: keyof typeof TARGETS) => TARGETS[t].candidates().map(schemeId);
  assert.deepEqual(set('safetensors'), base);
  assert.deepEqual(set('none'), [...base, ...extras]);
  assert.deepEqual(set('onnx-native'), native);
  assert.deepEqual(set('onnx'), [...new Set([...base, ...extras, ...native])]);
  assert.deepEqual(set('gguf'), [
    'ggml-q8_0',
    'ggml-q6_k',
    'ggml-q5_k',
    'ggml-q5_1',
    'ggml-q5_0',
    'ggml-q4_k',
    'ggml-q4_1',
    'ggml-q4_0',
    'ggml-iq4_nl',
    'ggml-q3_k',
    'ggml-q2_k',
  ]);
});

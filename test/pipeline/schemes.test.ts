/**
 * The maps between sensitivity candidates, plan schemes and ONNX export assignments
 * (src/pipeline/schemes.ts): exact round trips, and native-operator choices per weight kind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { candidateCost, candidatesById, fullCandidates } from '../../src/analysis/sensitivity/candidates.ts';
import { rowLayout, toRows } from '../../src/quant/layout.ts';
import { quantizeCandidate } from '../../src/analysis/sensitivity/quantize.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  DEPLOY_CANDIDATE_IDS,
  onnxAssignment,
  outputLayerSchemes,
  planScheme,
  representable,
  rowCandidate,
  schemeCost,
} from '../../src/pipeline/schemes.ts';
import { fakeQuant } from '../../src/quant/quantizer.ts';
import { validatePlan } from '../../src/plan/parse.ts';
import { oneWeightPlan } from '../plan-util.ts';

const matmul = rowLayout([96, 40], 1); // MatMul B [K = 96, N = 40]
const conv1 = rowLayout([24, 64, 1, 1], 0); // 1 x 1 conv
const conv3 = rowLayout([16, 8, 3, 3], 0); // 3 x 3 conv, cols = 72
const wide = rowLayout([256, 24], 1); // MatMul B, K = 256 longer than every group

function randn(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.nextNormal());
}

test('planScheme -> rowCandidate is the identity on every RTN candidate (quantizer, id, cost)', () => {
  for (const L of [matmul, conv1, conv3, wide]) {
    for (const c of fullCandidates().filter((x) => x.algorithm === 'rtn')) {
      if (!representable(c, L)) {
        assert.ok(L.kernel > 1, `${c.id} must be representable on a matrix`);
        assert.throws(() => planScheme(c, L), /groups a 16x8x3x3 kernel/);
        continue;
      }
      const s = planScheme(c, L);
      const back = rowCandidate(s, L);
      assert.equal(back.algorithm, c.algorithm);
      assert.deepEqual(schemeCost(s, L), candidateCost(c, L.rows, L.cols), `${c.id} cost`);
      // the same name, where no group covers a whole row (then 'g128' is stated per channel)
      if (L === wide) assert.equal(back.id, c.id);
      const W = randn(L.rows * L.cols, 3);
      assert.deepEqual(quantizeCandidate(W, L, back), quantizeCandidate(W, L, c), `${c.id} on ${L.dims}`);
    }
  }
});

test('a plan scheme in tensor layout quantizes the tensor like the row-layout candidate (independent path)', () => {
  // fakeQuant on the tensor itself with the plan's granularity = the candidate on the row matrix
  for (const id of ['int4-g32-rtn', 'int8-pc-rtn', 'int2-g32-rtn', 'nvfp4-rtn']) {
    const c = candidatesById([id])[0]!;
    for (const L of [matmul, conv1]) {
      const W = randn(
        L.dims.reduce((p, d) => p * d, 1),
        5,
      );
      const s = planScheme(c, L);
      const viaTensor = fakeQuant(W, L.dims, {
        element: c.quantizer.element,
        granularity: s.granularity,
        symmetric: s.symmetric,
        scaleFormat: s.scaleFormat,
      });
      const viaRows = quantizeCandidate(toRows(W, L), L, c);
      assert.deepEqual(toRows(viaTensor, L), viaRows, `${id} on ${L.dims}`);
    }
  }
});

test('plan schemes validate as plan file entries', () => {
  const c = candidatesById(['int4-g32-rtn'])[0]!;
  const s = planScheme(c, matmul);
  assert.deepEqual(s.granularity, { kind: 'group', axis: 0, size: 32 });
  const cost = schemeCost(s, matmul);
  const plan = validatePlan(oneWeightPlan(s, [96, 40], cost), 'test');
  assert.equal(plan.weights[0]!.scheme.format, 'uint4');
});

test('onnxAssignment: native operators per weight kind; packed storage where onnxruntime has none', () => {
  const a = (id: string, L: typeof matmul, consumer: string, native = true) => {
    const c = candidatesById([id])[0]!;
    return representable(c, L) ? onnxAssignment(planScheme(c, L), L, consumer, 21, native) : undefined;
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
    'fp6_e3m2-pc-rtn',
    'nvfp4-rtn',
    'mxfp4-rtn',
    'nf4-g64-rtn',
  ];
  for (const id of [...noNative, 'int4-g32-awq']) assert.equal(a(id, matmul, 'MatMul:1'), undefined, id);
  // without `native`: the same schemes bit-plane packed with their row-layout quantizer (not AWQ)
  for (const id of noNative)
    assert.deepEqual(
      a(id, matmul, 'MatMul:1', false),
      { scheme: 'packed', quantizer: candidatesById([id])[0]!.quantizer },
      id,
    );
  assert.equal(a('int2-g32-rtn', conv1, 'Conv:1', false)?.scheme, 'packed');
  assert.equal(a('int4-g32-awq', matmul, 'MatMul:1', false), undefined, 'AWQ is not exported');
  assert.equal(a('int4-g32-rtn', matmul, 'MatMul:1', false)?.scheme, 'matmulnbits', 'native first');
  // packed needs opset 18 (BitwiseAnd): a model that cannot be raised gets none
  const c3 = candidatesById(['int3-g32-rtn'])[0]!;
  assert.equal(onnxAssignment(planScheme(c3, matmul), matmul, 'MatMul:1', 17), undefined);
  // FP8 per channel: float8 DequantizeLinear from opset 13 models up (raised to 21), never at opset 9
  assert.deepEqual(a('fp8_e4m3-pc-rtn', matmul, 'MatMul:1'), {
    scheme: 'dequantizelinear',
    bits: 8,
    element: 'fp8_e4m3fn',
    symmetric: true,
    scaleType: 'float32',
    granularity: 'channel',
  });
  const c8 = candidatesById(['fp8_e4m3-pc-rtn'])[0]!;
  assert.equal(onnxAssignment(planScheme(c8, conv3), conv3, 'Conv:1', 9), undefined);
  // every deploy candidate is exportable on a matrix
  for (const id of DEPLOY_CANDIDATE_IDS) assert.ok(a(id, matmul, 'MatMul:1'), id);
});

test('clipping-search candidates: ids, plan round trip through the plan file, refusals', () => {
  const [mse, gmse, smse] = candidatesById(['int3-g32-rtn-mse', 'int2-g32-gptq-mse', 'int3-g32-rtn-mse-sp1']);
  assert.deepEqual(mse!.quantizer.scaleRule, { kind: 'mse' });
  assert.equal(gmse!.algorithm, 'gptq');
  assert.deepEqual(smse!.quantizer.scaleRule, { kind: 'mse' });
  assert.equal(smse!.salient?.fraction, 0.01);
  assert.throws(() => candidatesById(['nf4-g64-rtn-mse']), /only offered on integer RTN \/ GPTQ/);
  assert.throws(() => candidatesById(['int4-g32-awq-mse']), /only offered on integer RTN \/ GPTQ/);
  const W = randn(matmul.rows * matmul.cols, 5);
  for (const c of [mse!, smse!]) {
    const s = planScheme(c, matmul);
    assert.deepEqual(s.scaleRule, { kind: 'mse' });
    // through the file format: serialised, validated, read back
    const cost = schemeCost(s, matmul);
    const plan = validatePlan(JSON.parse(JSON.stringify(oneWeightPlan(s, [96, 40], cost))), 'test');
    const back = rowCandidate(plan.weights[0]!.scheme, matmul);
    assert.equal(back.id, c.id);
    const st = {
      channels: matmul.cols,
      meanSquare: Float64Array.from({ length: matmul.cols }, (_, j) => 1 + j),
    };
    assert.deepEqual(quantizeCandidate(W, matmul, back, st), quantizeCandidate(W, matmul, c, st));
  }
  // the search changes the result (and lowers the squared error) against min-max
  const plain = candidatesById(['int3-g32-rtn'])[0]!;
  const err = (c: typeof plain) => {
    const q = quantizeCandidate(W, matmul, c);
    let e = 0;
    for (let i = 0; i < W.length; i++) e += (q[i]! - W[i]!) ** 2;
    return e;
  };
  assert.ok(err(mse!) < err(plain), `${err(mse!)} < ${err(plain)}`);
  // a scale rule the plan format does not know, or on a float format, is refused naming the field
  const s = planScheme(mse!, matmul);
  assert.throws(
    () => rowCandidate({ ...s, format: 'fp4_e2m1fn', symmetric: true }, matmul, 'weights[0].scheme'),
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
  const ids = ['int8-pc-rtn', 'int4-g32-rtn-mse', 'int2-g32-gptq', 'int2-g32-gptq-mse'];
  const byId = new Map(candidatesById(ids).map((c) => [c.id, c] as const));
  const rows = (xs: string[]) => xs.map((scheme) => ({ scheme }));
  assert.deepEqual(outputLayerSchemes(rows(ids), byId), ['int8-pc-rtn', 'int2-g32-gptq']);
  // nothing to drop, or nothing else left: no restriction
  assert.equal(outputLayerSchemes(rows(['int8-pc-rtn', 'int2-g32-gptq']), byId), undefined);
  assert.equal(outputLayerSchemes(rows(['int4-g32-rtn-mse', 'int2-g32-gptq-mse']), byId), undefined);
});

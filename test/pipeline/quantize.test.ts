/**
 * `mixq quantize` end to end on the bundled GPT, small settings (a few candidates, short evaluation):
 * the plan meets its budget, the written ONNX model run by onnxruntime scores what the simulation scored,
 * its stored bytes are the plan's, and `mixq apply` of the plan rebuilds the same file byte for byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyPlan } from '../../src/pipeline/apply.node.ts';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { type QuantizeOptions, quantizeModel } from '../../src/pipeline/quantize/index.ts';
import { bundledModelPath, encodeChars, loadGptBundle } from '../../src/runtime/bundled.node.ts';
import { evaluateLm } from '../../src/runtime/eval-lm.node.ts';
import { withEvalRunner } from '../../src/runtime/session-pool.node.ts';
import { parsePlan } from '../../src/plan/parse.ts';
import { serialisePlan } from '../../src/plan/serialise.ts';

test('quantize gpt at 3.5 b/w: budget met, ONNX file = simulation, stored bytes = plan bytes, apply rebuilds it', async () => {
  const r = await quantizeModel({
    model: 'gpt',
    budget: { kind: 'bitsPerWeight', bits: 3.5 },
    // native (MatMulNBits, DequantizeLinear) and packed (int3 GPTQ codes, NF4) schemes
    candidates: {
      schemes: parseCandidateIds([
        'int8-pc-rtn',
        'int4-g32-rtn',
        'int4-g32-gptq',
        'int3-g32-gptq',
        'nf4-g64-rtn',
        'int2-g32-gptq',
      ]),
    },
    task: { evalSize: 2048 },
    // this test checks the solver's mixed plan; selection is tested below
    evaluation: { sweep: [], baselines: false, select: false },
  });
  const t = r.plan.totals;
  assert.ok(t.bitsPerWeight <= 3.5 && t.bitsPerWeight > 3.3, `bits per weight ${t.bitsPerWeight}`);
  const schemes = new Set(r.plan.weights.map((w) => `${w.scheme.format}/${w.scheme.algorithm}`));
  assert.ok(schemes.size >= 2, `a mix: ${[...schemes].join(', ')}`);
  assert.ok(
    r.plan.weights.some((w) => w.scheme.algorithm === 'gptq'),
    'GPTQ weights are exported too',
  );
  const out = r.output;
  assert.ok(out?.weights && out.metric !== undefined, 'emit onnx writes a model and evaluates it');
  const ops = new Set(out.weights.map((w) => w.op));
  assert.ok(ops.has('packed') && ops.has('MatMulNBits'), `native and packed weights: ${[...ops].join(', ')}`);
  // onnxruntime's MatMulNBits sums in another order than the float simulation: small, not zero
  assert.ok(Math.abs(out.metric - r.metric) < 2e-3, `file ${out.metric} vs simulation ${r.metric}`);
  assert.ok(r.metric > r.fp32 - 0.01 && r.metric < r.fp32 + 0.5, `metric ${r.metric} vs fp32 ${r.fp32}`);
  // target onnx plans in the file's bytes: stored codes + scales + zero points = the plan's total
  const stored = out.weights.reduce((s, w) => s + w.codeBytes + w.scaleBytes + w.zeroPointBytes, 0);
  assert.equal(stored, t.bytes);
  assert.equal(out.weights.length, r.plan.weights.length);
  // the plan file round-trips and rebuilds the same model
  const plan = parsePlan(serialisePlan(r.plan), 'plan.json');
  const a = await applyPlan('gpt', plan);
  assert.equal(out.chunks.length, 1);
  assert.ok(Buffer.from(a.bytes).equals(Buffer.from(out.chunks[0]!)), 'apply rebuilds the same bytes');
  // a plan for another file is refused with the field named
  const other = { ...plan, model: { ...plan.model, sha256: '0'.repeat(64) } };
  await assert.rejects(applyPlan('gpt', other), /model\.sha256/);
});

test('quantize gpt --max-loss 1%: the smallest plan within 1% of fp32 on the validation split, found by real evaluations', async () => {
  const r = await quantizeModel({
    model: 'gpt',
    budget: { kind: 'maxLoss', relative: 0.01 },
    candidates: { schemes: parseCandidateIds(['int8-pc-rtn', 'int4-g32-rtn', 'int2-g32-rtn']) },
    task: { evalSize: 2048, validationSize: 2048, calibrationSize: 4 },
    evaluation: { sweep: [], baselines: false },
    output: { write: false },
  });
  const sel = r.report.plan.selection;
  assert.ok(sel?.fp32 !== undefined, 'the search is recorded with the fp32 validation metric');
  // the validation split is held-out characters 196608..198656, scored here independently of the task
  const b = loadGptBundle();
  const ids = encodeChars(
    Array.from(b.heldout)
      .slice(196608, 196608 + 2048 + 1)
      .join(''),
    b.chars,
  );
  const fp32Val = await withEvalRunner(
    bundledModelPath('gpt')!,
    async (run) => (await evaluateLm(run, ids, { context: b.context, stride: b.context })).bitsPerChar,
  );
  assert.equal(sel.fp32, fp32Val);
  assert.notEqual(sel.fp32, r.fp32, 'validation and evaluation are different text');
  assert.ok(sel.tried.length >= 3, 'bisection evaluated several plans');
  const kept = sel.tried.find((t) => t.label === sel.chosen);
  assert.ok(kept && kept.bytes === r.plan.totals.bytes, 'the plan is the kept one');
  assert.ok(kept.validation <= sel.fp32 * 1.01, `kept ${kept.validation} vs fp32 ${sel.fp32}`);
  // every evaluated plan smaller than the chosen one misses the target (the bisection's invariant)
  for (const t of sel.tried)
    if (t.bytes < kept.bytes) assert.ok(t.validation > sel.fp32 * 1.01, `${t.label}: ${t.validation}`);
  assert.ok(r.plan.totals.bitsPerWeight < 8, `smaller than int8 everywhere: ${r.plan.totals.bitsPerWeight}`);
  // reported on the evaluation split, which the search never saw (it may miss the target there)
  const point = r.report.series[0]!.points.find((p) => p.bytes === kept.bytes);
  assert.equal(point?.metric, r.metric);
  assert.equal(r.output, undefined);
});

test('quantize gpt: each budget keeps the best of the solver plan and the uniform plans that fit, on validation', async () => {
  const ids = ['int8-pc-rtn', 'fp8_e4m3fn-pc-rtn', 'int4-g32-rtn', 'int5-g32-rtn'];
  const opts: QuantizeOptions = {
    model: 'gpt',
    // int8 / fp8 per channel take 8.13 b/w in the file (fp32 scales per row)
    budget: { kind: 'bitsPerWeight', bits: 8.2 },
    candidates: { schemes: parseCandidateIds(ids) },
    task: { evalSize: 1024, validationSize: 2048, calibrationSize: 4 },
    evaluation: { sweep: [5, 5.7], baselines: false },
    output: { write: false },
  };
  const r = await quantizeModel(opts);
  const points = r.report.series[0]!.points;
  const withSel = points.filter((p) => p.selection);
  assert.ok(withSel.length >= 2, `selections recorded: ${points.map((p) => p.budget).join(', ')}`);
  for (const p of withSel) {
    const sel = p.selection!;
    const budget = p.budget === '--bits 8.2' ? 8.2 : Number.parseFloat(p.budget ?? '');
    assert.equal(sel.tried[0]?.label, 'proxy', 'the solver plan is tried first');
    for (const t of sel.tried) {
      assert.ok(t.bitsPerWeight <= budget + 1e-9, `${t.label} fits ${budget}: ${t.bitsPerWeight}`);
      if (t.label.startsWith('uniform ')) {
        assert.ok(ids.includes(t.label.slice(8)), t.label);
        assert.ok(t.bitsPerWeight >= 0.9 * budget - 1e-9, `${t.label} within 10% below the budget`);
      }
    }
    // the kept plan has the best validation metric; the solver's plan wins ties
    const best = Math.min(...sel.tried.map((t) => t.validation));
    const kept = sel.tried.find((t) => t.label === sel.chosen)!;
    assert.equal(kept.validation, best);
    assert.equal(sel.tried.find((t) => t.validation === best)!.label, sel.chosen);
    assert.equal(kept.bytes, p.bytes);
  }
  // at 8.2 b/w the uniform 8-bit plans fit and are tried (a uniform plan equal to the solver's is tried once)
  const top = r.report.plan.selection!;
  const uniform = top.tried.filter((t) => t.label.startsWith('uniform '));
  assert.ok(uniform.length >= 1, top.tried.map((t) => t.label).join(', '));
  for (const t of uniform) assert.match(t.label, /^uniform (int8|fp8_e4m3fn)-pc-rtn$/);
  // --no-select keeps the solver's plan
  const plain = await quantizeModel({ ...opts, evaluation: { ...opts.evaluation, select: false } });
  assert.equal(plain.report.plan.selection, undefined);
  assert.equal(plain.plan.totals.bytes, top.tried[0]!.bytes);
});

test('quantize gpt --native: only onnxruntime quantized operators; without it int3 is offered (packed)', async () => {
  const opts: QuantizeOptions = {
    model: 'gpt',
    budget: { kind: 'bitsPerWeight', bits: 3.7 },
    candidates: {
      schemes: parseCandidateIds(['int8-pc-rtn', 'int4-g32-rtn', 'int3-g32-rtn', 'int2-g32-rtn']),
    },
    task: { evalSize: 1024, calibrationSize: 4 },
    evaluation: { sweep: [], baselines: false, select: false },
    output: { write: false },
  };
  const formats = (r: Awaited<ReturnType<typeof quantizeModel>>) =>
    new Set(r.plan.weights.map((w) => w.scheme.format));
  const native = await quantizeModel({ ...opts, output: { ...opts.output, target: 'onnx-native' } });
  assert.ok(!formats(native).has('uint3'), `native: ${[...formats(native)].join(', ')}`);
  const all = await quantizeModel(opts);
  assert.ok(formats(all).has('uint3'), `packed allowed: ${[...formats(all)].join(', ')}`);
});

test('quantize gpt above 8 b/w: FP16 weights (Cast) where they pay, file = simulation, stored bytes = plan bytes', async () => {
  const r = await quantizeModel({
    model: 'gpt',
    budget: { kind: 'bitsPerWeight', bits: 10 },
    candidates: { schemes: parseCandidateIds(['fp16-rtn', 'int6-pc-rtn', 'int5-g32-rtn']) },
    task: { evalSize: 1024, calibrationSize: 2 },
    evaluation: { sweep: [], baselines: false },
  });
  const t = r.plan.totals;
  assert.ok(t.bitsPerWeight <= 10 && t.bitsPerWeight > 9, `bits per weight ${t.bitsPerWeight}`);
  const fp16 = r.plan.weights.filter((w) => w.scheme.format === 'fp16');
  assert.ok(fp16.length > 0 && fp16.length < r.plan.weights.length, `fp16 on ${fp16.length} weights`);
  for (const w of fp16) {
    assert.equal(w.scheme.scaleFormat, 'none');
    assert.equal(w.bytes, 2 * w.shape.reduce((p, d) => p * d, 1), w.name);
  }
  const out = r.output!;
  assert.ok(out.weights, 'emit onnx lists the stored weights');
  const cast = out.weights.filter((w) => w.op === 'Cast');
  assert.deepEqual(cast.map((w) => w.name).sort(), fp16.map((w) => w.name).sort());
  const stored = out.weights.reduce((s, w) => s + w.codeBytes + w.scaleBytes + w.zeroPointBytes, 0);
  assert.equal(stored, t.bytes);
  // Cast and packed weights decode to the simulated float32 weights exactly (int8 DequantizeLinear would
  // not: onnxruntime fuses it with the MatMul and sums in another order)
  assert.equal(out.metric, r.metric);
  const a = await applyPlan('gpt', parsePlan(serialisePlan(r.plan), 'plan.json'));
  assert.ok(Buffer.from(a.bytes).equals(Buffer.from(out.chunks[0]!)), 'apply rebuilds the same bytes');
});

test('a narrowed candidate set that fits no scheme on a weight keeps it in float and says why', async () => {
  const lines: string[] = [];
  const r = await quantizeModel({
    model: 'gpt',
    budget: { kind: 'bitsPerWeight', bits: 5 },
    // Q4_K needs rows that are multiples of 256: only the MLP down projections (rows of 768) fit
    candidates: { schemes: parseCandidateIds(['ggml-q4_k']) },
    task: { evalSize: 1024, calibrationSize: 2 },
    evaluation: { sweep: [], baselines: false, select: false },
    output: { target: 'none' },
    log: (l) => lines.push(l),
  });
  assert.deepEqual(
    r.plan.weights.map((w) => w.name),
    ['blocks.0.mlp_proj', 'blocks.1.mlp_proj', 'blocks.2.mlp_proj', 'blocks.3.mlp_proj'],
  );
  const why = lines.find((l) => l.startsWith('blocks.0.attn_qkv stays in float'));
  assert.match(
    why ?? '',
    /ggml-q4_k: rows of 192 are not whole Q4_K blocks\); add one that does to --candidates/,
  );
  assert.ok(
    // 13 matrices and the token embedding (a candidate too, rows of 192)
    r.report.notes?.some((n) => /14 weights stay in float/.test(n)),
    'the report says so',
  );
});

/**
 * `mixq quantize --emit runtime` and `--latency` on the bundled GPT (small settings), with a fixed cost
 * table (made here, so the plans do not depend on this machine's speed):
 *  - the engine file reads back equal to the simulation, opens in mixq's engine, scores the task metric
 *    the simulation predicted, and `mixq apply --emit runtime` rebuilds it byte for byte;
 *  - the plan's predicted ms/token is the cost table's sum over its weights (recomputed here);
 *  - the latency constraint binds: a tighter bound gives a faster plan with more damage; a latency budget
 *    alone (no size bound) does at least as well at the same bound; a latency for a target mixq's engine
 *    does not run is refused (a bound below the fastest plan: test/analysis allocation tests);
 *  - a plan for the engine's lookup-table mode (activations 'lut8') is costed with the table's '/lut'
 *    entries for its int1..int4 weights, records the mode, and its file is run so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { costFormatName, type CostEntry } from '../../src/engine/cost.ts';
import { openEngineModel } from '../../src/engine/load.node.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { applyPlan } from '../../src/pipeline/apply.node.ts';
import { parsePlan } from '../../src/plan/parse.ts';
import { quantizeOptions } from '../../src/cli/quantize-args.ts';
import { quantizeModel, type QuantizeOptions } from '../../src/pipeline/quantize/index.ts';
import { engineCostFormat } from '../../src/pipeline/quantize/targets.ts';
import { rowLayout } from '../../src/quant/layout.ts';
import { schemeOnRows } from '../../src/quant/scheme.ts';

const dir = mkdtempSync(join(tmpdir(), 'mixq-runtime-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const CANDIDATES = ['int8-pc-rtn', 'int4-g32-rtn', 'int3-g32-rtn', 'nvfp4-rtn'];
/** The GPT's weight shapes (rows = outputs, cols = inputs): qkv, attention out, MLP up, MLP down, head. */
const SHAPES = [
  [576, 192],
  [192, 192],
  [768, 192],
  [192, 768],
  [63, 192],
] as const;

/**
 * A made-up table: 1 us per product plus the weight bytes at 20 GB/s, slower for NVFP4 (x 2.5; fp16, not a
 * candidate here, x 3), so that speed is not simply size; int1..int4 in the lookup-table layout ('/lut'
 * entries) x 0.4.
 */
function costTable(): string {
  const entries: CostEntry[] = [];
  for (const s of parseCandidateIds(CANDIDATES))
    for (const [rows, cols] of SHAPES) {
      const f = engineCostFormat(s, cols)!;
      const bits = Number(/\d+/.exec(s.format)?.[0] ?? 16);
      const slow = s.format === 'fp16' ? 3 : s.format.startsWith('fp4') ? 2.5 : 1;
      const bytes = Math.ceil((rows * cols * bits) / 8);
      const lut = typeof f !== 'string' && /^u?int[1-4]$/.test(s.format);
      for (const layout of lut ? (['dot', 'lut'] as const) : (['dot'] as const)) {
        const sec = 1e-6 + ((rows * cols * bits) / 8 / 20e9) * slow * (layout === 'lut' ? 0.4 : 1);
        entries.push({
          format: costFormatName(layout === 'lut' && typeof f !== 'string' ? { ...f, layout } : f),
          rows,
          cols,
          batch: 1,
          mode: layout === 'lut' ? 'lut8' : 'q8',
          bytes,
          secondsPerCall: sec,
          secondsPerWeight: sec / (rows * cols),
          bytesPerSecond: bytes / sec,
        });
      }
    }
  const path = join(dir, 'cost.json');
  writeFileSync(path, JSON.stringify({ kind: 'mixq-cost-table', version: 1, machine: {}, entries }));
  return path;
}
const table = costTable();

const small = {
  model: 'gpt',
  task: { evalSize: 512, calibrationSize: 1 },
  evaluation: { sweep: [], baselines: false, select: false },
  candidates: { schemes: parseCandidateIds(CANDIDATES) },
  output: { target: 'runtime' },
} as const satisfies Partial<QuantizeOptions>;

let first: Promise<Awaited<ReturnType<typeof quantizeModel>>> | undefined;
/** The unbounded run at 5 bits per weight, written (shared by both tests). */
const unbounded = () =>
  (first ??= quantizeModel({
    ...small,
    budget: { kind: 'bitsPerWeight', bits: 5 },
    latency: { costTable: table },
  }));

test('emit runtime: engine file = simulation, runs in the engine at the simulated metric, apply rebuilds it', async () => {
  const r = await unbounded();
  const out = r.output!;
  assert.match(out.check ?? '', /read back: 18 weights equal the simulated weights bit for bit/);
  assert.match(out.check ?? '', /run by mixq's engine/);
  assert.ok(Math.abs(out.metric! - r.metric) < 2e-3, `engine ${out.metric} vs simulation ${r.metric}`);
  assert.ok(out.msPerToken! > 0 && out.productsMsPerToken! > 0 && out.productsMsPerToken! < out.msPerToken!);
  // predicted ms/token = the table's entries of the plan's schemes on its weights
  const byKey = new Map(
    JSON.parse((await import('node:fs')).readFileSync(table, 'utf8') as string).entries.map(
      (e: CostEntry) => [`${e.format}|${e.rows}x${e.cols}`, e.secondsPerCall] as const,
    ),
  );
  let ms = 0;
  for (const w of r.plan.weights) {
    if (w.name === 'wte') continue; // the token embedding: a row lookup per token, latency 0
    const L = rowLayout(w.shape, 1);
    const f = engineCostFormat(schemeOnRows(w.scheme, L), L.cols)!;
    ms += 1e3 * (byKey.get(`${costFormatName(f)}|${L.rows}x${L.cols}`) as number);
  }
  assert.ok(
    Math.abs(r.plan.latency!.predictedMsPerToken - ms) < 1e-9,
    `${r.plan.latency!.predictedMsPerToken} ${ms}`,
  );
  const bytes = concatBytes(out.chunks);
  const a = await applyPlan('gpt', r.plan, { target: 'runtime' });
  assert.ok(Buffer.from(a.bytes).equals(Buffer.from(bytes)), 'apply rebuilds the same engine file');
  const path = join(dir, out.fileName);
  writeFileSync(path, bytes);
  const m = await openEngineModel(path);
  assert.equal(m.config.architecture, 'gpt2');
  // weights at their stored size, up to the kernels' padding of K to a multiple of 128 (192 -> 256 here)
  assert.ok(m.load.weightBytes <= (bytes.length * 4) / 3, `${m.load.weightBytes} vs file ${bytes.length}`);
  await m.close();
});

test('--latency binds: tighter is faster and more damaging; a latency budget alone does at least as well', async () => {
  const plan = async (o: Partial<QuantizeOptions>) =>
    (
      await quantizeModel({
        ...small,
        budget: { kind: 'bitsPerWeight', bits: 5 },
        output: { target: 'runtime', write: false },
        ...o,
      })
    ).plan;
  const free = (await unbounded()).plan;
  const bound = 0.85 * free.latency!.predictedMsPerToken;
  const tight = await plan({ latency: { costTable: table, msPerToken: bound } });
  assert.equal(tight.latency!.maxMsPerToken, bound);
  assert.ok(
    tight.latency!.predictedMsPerToken <= bound + 1e-12,
    `${tight.latency!.predictedMsPerToken} <= ${bound}`,
  );
  assert.ok(tight.totals.predictedDamage > free.totals.predictedDamage, 'the bound costs accuracy');
  assert.ok(tight.totals.bitsPerWeight <= 5);
  const alone = await plan({
    budget: { kind: 'latency', msPerToken: bound },
    latency: { costTable: table },
  });
  assert.ok(alone.latency!.predictedMsPerToken <= bound + 1e-12);
  assert.ok(alone.totals.predictedDamage <= tight.totals.predictedDamage + 1e-12, 'no size bound: no worse');
  await assert.rejects(
    plan({ output: { target: 'onnx', write: false }, latency: { msPerToken: 1 } }),
    /no latency model/,
  );
  await assert.rejects(
    plan({ output: { target: 'onnx', write: false }, latency: { activations: 'lut8' } }),
    /not run by mixq's engine/,
  );
});

test("a plan for the engine's lookup-table mode: costed on '/lut' entries, recorded, run so", async (t) => {
  const r = await quantizeModel({
    ...small,
    budget: { kind: 'bitsPerWeight', bits: 4 },
    latency: { costTable: table, activations: 'lut8' },
  });
  assert.equal(r.plan.latency!.activations, 'lut8');
  const byKey = new Map(
    JSON.parse((await import('node:fs')).readFileSync(table, 'utf8') as string).entries.map(
      (e: CostEntry) => [`${e.format}|${e.rows}x${e.cols}`, e.secondsPerCall] as const,
    ),
  );
  let ms = 0;
  let luts = 0;
  for (const w of r.plan.weights) {
    if (w.name === 'wte') continue;
    const L = rowLayout(w.shape, 1);
    const f = engineCostFormat(schemeOnRows(w.scheme, L), L.cols)!;
    const lut = typeof f !== 'string' && /^u?int[1-4]$/.test(f.element);
    if (lut) luts++;
    ms +=
      1e3 * (byKey.get(`${costFormatName(lut ? { ...f, layout: 'lut' } : f)}|${L.rows}x${L.cols}`) as number);
  }
  assert.ok(luts > 0, 'the 4-bit plan has int3 / int4 weights');
  assert.ok(
    Math.abs(r.plan.latency!.predictedMsPerToken - ms) < 1e-9,
    `${r.plan.latency!.predictedMsPerToken} ${ms}`,
  );
  const out = r.output!;
  assert.match(out.check ?? '', /run by mixq's engine \(activations lut8\)/);
  t.diagnostic(`lut8: engine ${out.metric} vs simulation ${r.metric}; ${luts} lookup-table weights`);
  assert.ok(Math.abs(out.metric! - r.metric) < 3e-3, `engine ${out.metric} vs simulation ${r.metric}`);
  // the engine file says so: opened without options it runs in that mode
  const path = join(dir, `lut8-${out.fileName}`);
  writeFileSync(path, concatBytes(out.chunks));
  for (const [opts, want] of [
    [{}, true],
    [{ activations: 'auto' as const }, false],
  ] as const) {
    const m = await openEngineModel(path, opts);
    const lut = m.weights.layers
      .flatMap((l) => [...l.qkv, l.attnOut, ...l.ffnIn, l.ffnDown])
      .filter((p) => p.w.layout === 'lut');
    assert.equal(lut.length > 0, want, JSON.stringify(opts));
    await m.close();
  }
  // the plan file keeps the mode; a mode the engine does not plan for is refused
  assert.equal(parsePlan(JSON.stringify(r.plan), 'plan.json').latency!.activations, 'lut8');
  const bad = JSON.stringify({ ...r.plan, latency: { ...r.plan.latency, activations: 'f32' } });
  assert.throws(() => parsePlan(bad, 'plan.json'), /latency\.activations/);
});

test('--activations: lut8 goes to the latency options; anything else but auto is refused', () => {
  assert.equal(quantizeOptions({ activations: 'lut8', emit: 'runtime' }).latency?.activations, 'lut8');
  assert.equal(quantizeOptions({ activations: 'auto', emit: 'runtime' }).latency?.activations, undefined);
  assert.throws(() => quantizeOptions({ activations: 'f32', emit: 'runtime' }), /--activations/);
});

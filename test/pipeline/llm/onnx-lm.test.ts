// `mixq quantize <transformers.js folder> --calibration <text>` (pipeline/lm-task.node.ts in the one ONNX
// pipeline) on the committed stories260K fixture: the written folder is what transformers.js loads, its
// decoder keeps the past_key_values contract in onnxruntime (half + half with the cache = one full pass),
// the report's KL equals a separate onnxruntime run on the written file (KL computed here, not by mixq's
// code), the embedding table is planned with a measured damage, and mixq at the size of transformers.js's q4
// has a lower KL beyond the paired interval.
// Bad folders and short texts fail with one line naming file, field and what was expected.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { parseCandidateIds } from '../../../src/analysis/sensitivity/candidates.ts';
import { windowFeeds, writeLmFolder } from '../../../src/pipeline/lm-task.node.ts';
import { quantizeModel } from '../../../src/pipeline/quantize/index.ts';
import { resolveTask } from '../../../src/pipeline/tasks.node.ts';
import { loadStoriesText } from '../../../src/runtime/bundled-stories.node.ts';

const FIXTURE = 'test/fixtures/stories-onnx';
const KV_HEADS = 4;
const HEAD_DIM = 8;
const LAYERS = 5;

type AnyTensor = ort.Tensor | ortWeb.Tensor;

/** Feeds of tokens at positions past..past+T-1 with a cache (or an empty one), as tensors of `O`. */
function feeds(
  tokens: number[],
  past: number,
  cache?: Record<string, AnyTensor>,
  O: { Tensor: typeof ort.Tensor } | { Tensor: typeof ortWeb.Tensor } = ort,
): Record<string, ort.Tensor> {
  const T = tokens.length;
  const Tensor = O.Tensor as typeof ort.Tensor;
  const i64 = (xs: number[]) => new Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
  const f: Record<string, ort.Tensor> = {
    input_ids: i64(tokens),
    attention_mask: i64(Array(past + T).fill(1)),
    position_ids: i64(tokens.map((_, i) => past + i)),
  };
  for (let l = 0; l < LAYERS; l++)
    for (const k of ['key', 'value']) {
      const c = cache?.[`present.${l}.${k}`];
      f[`past_key_values.${l}.${k}`] = c
        ? new Tensor('float32', c.data as Float32Array, c.dims)
        : new Tensor('float32', new Float32Array(0), [1, KV_HEADS, 0, HEAD_DIM]);
    }
  return f;
}

/** Mean KL(p || q) per position of two logit tensors [1, T, V] over positions from..T-2 (own code). */
function klSum(p: Float32Array, q: Float32Array, V: number, from: number, to: number): number {
  let s = 0;
  const lse = (x: Float32Array, o: number) => {
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, x[o + i]!);
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(x[o + i]! - m);
    return m + Math.log(z);
  };
  for (let t = from; t < to; t++) {
    const o = t * V;
    const lp = lse(p, o);
    const lq = lse(q, o);
    for (let i = 0; i < V; i++) {
      const a = p[o + i]! - lp;
      s += Math.exp(a) * (a - (q[o + i]! - lq));
    }
  }
  return s;
}

test('transformers.js folder: quantized folder loads, cache contract holds, KL = a separate run, mixq < q4', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-tjs-'));
  try {
    const text = join(dir, 'text.txt');
    writeFileSync(text, loadStoriesText().slice(0, 40_000));
    const r = await quantizeModel({
      model: FIXTURE,
      task: { calibrationData: text, windows: { calibration: 1, validation: 1, evaluation: 3 } },
      budget: { kind: 'bitsPerWeight', bits: 4.5 },
      candidates: { schemes: parseCandidateIds(['int8-pc-rtn', 'int4-g32-rtn', 'int4-pc-rtn', 'fp16-rtn']) },
      evaluation: { sweep: [4.5] },
    });
    // the embedding table (Gather) is planned like every weight, its damage measured end to end (no
    // activation proxy applies: the prediction is the measurement), and the file stores it quantized
    const emb = r.plan.weights.find((w) => w.name === 'model.embed_tokens.weight')!;
    assert.ok(emb && emb.bitsPerWeight < 32, 'embedding quantized');
    assert.equal(emb.measuredDamage, emb.predictedDamage);
    assert.ok(emb.predictedDamage > 0);
    // the split never overlaps
    const task = r.task as typeof r.task & {
      split?: { [k in 'calibration' | 'validation' | 'evaluation']: { from: number; to: number } };
    };
    const s = task.split!;
    assert.ok(s.calibration.to <= s.validation.from && s.validation.to <= s.evaluation.from);
    // the folder transformers.js loads: config + tokenizer copied, onnx/model.onnx
    const out = join(dir, 'out');
    await writeLmFolder(FIXTURE, out, r.output!.chunks);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(FIXTURE, f)), f);
    assert.ok(existsSync(join(out, 'onnx/model.onnx')));
    const q = await ort.InferenceSession.create(join(out, 'onnx/model.onnx'));
    const fp = await ort.InferenceSession.create(join(FIXTURE, 'onnx/model.onnx'));
    // past_key_values: first half, then the second half with the cache = one full pass
    const ids = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 500));
    const full = (await q.run(feeds(ids, 0))).logits!.data as Float32Array;
    const a = await q.run(feeds(ids.slice(0, 20), 0));
    const b = (await q.run(feeds(ids.slice(20), 20, a))).logits!.data as Float32Array;
    const halves = new Float32Array([...(a.logits!.data as Float32Array), ...b]);
    let worst = 0;
    for (let i = 0; i < full.length; i++) worst = Math.max(worst, Math.abs(full[i]! - halves[i]!));
    assert.ok(worst < 1e-3, `cache vs full pass: max |diff| ${worst}`);
    // onnxruntime-web (transformers.js in the browser) runs the written decoder, cache included, as
    // onnxruntime-node does without graph optimizations (with them, node fuses DequantizeLinear + MatMul of
    // 4-bit blocks into MatMulNBits with int8 activations: session.qdq_matmulnbits_accuracy_level)
    const web = await ortWeb.InferenceSession.create(readFileSync(join(out, 'onnx/model.onnx')), {
      executionProviders: ['wasm'],
    });
    const plain = await ort.InferenceSession.create(join(out, 'onnx/model.onnx'), {
      graphOptimizationLevel: 'disabled',
    });
    const wa = await web.run(feeds(ids.slice(0, 20), 0, undefined, ortWeb) as Record<string, ortWeb.Tensor>);
    const wb = await web.run(feeds(ids.slice(20), 20, wa, ortWeb) as Record<string, ortWeb.Tensor>);
    const webLogits = [...(wa.logits!.data as Float32Array), ...(wb.logits!.data as Float32Array)];
    const plainLogits = (await plain.run(feeds(ids, 0))).logits!.data as Float32Array;
    let webWorst = 0;
    for (let i = 0; i < plainLogits.length; i++)
      webWorst = Math.max(webWorst, Math.abs(plainLogits[i]! - webLogits[i]!));
    assert.ok(webWorst < 1e-3, `onnxruntime-web vs node (no graph optimizations): max |diff| ${webWorst}`);
    // the report's KL (the written file run by the pipeline) = KL computed here on the evaluation windows
    const windows = await evaluationWindows(r.task.modelPath, text);
    let sum = 0;
    let n = 0;
    for (const w of windows) {
      const p = (await fp.run(feeds(w, 0))).logits!.data as Float32Array;
      const o = (await q.run(feeds(w, 0))).logits!.data as Float32Array;
      sum += klSum(p, o, 512, 0, w.length - 1);
      n += w.length - 1;
    }
    assert.ok(r.output!.metric !== undefined);
    assert.ok(
      Math.abs(sum / n - r.output!.metric!) <= 1e-6 * Math.max(1, sum / n) + 1e-9,
      `separate run ${sum / n} vs report ${r.output!.metric}`,
    );
    // the simulation that chose the plan agrees with the file
    assert.ok(
      Math.abs(r.metric - r.output!.metric!) < 0.05 * r.metric + 1e-4,
      `${r.metric} ${r.output!.metric}`,
    );
    // baselines: transformers.js's modes; at q4's size mixq's KL is lower beyond the paired interval
    const q4 = r.comparisons.find((c) => c.baseline.startsWith('transformers.js q4'))!;
    assert.ok(q4.lm && q4.differenceCi, 'q4 compared with rows and an interval');
    assert.ok(q4.mixqBytes <= q4.bytes);
    assert.ok(q4.differenceCi![1] < 0, `mixq - q4 KL ${q4.differenceCi}`);
    assert.ok(r.lm && r.lm.mixq.perplexity > 1 && r.lm.mixq.top1 <= 1 && r.lm.input.kl === 0);
    assert.match((r.report.notes ?? []).join('\n'), /perplexity .* of fp32's/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The evaluation windows' tokens as the task split them (BOS + 255 text tokens each). */
async function evaluationWindows(decoder: string, text: string): Promise<number[][]> {
  void decoder;
  const t = resolveTask(FIXTURE, {
    calibrationData: text,
    windows: { calibration: 1, validation: 1, evaluation: 3 },
  }) as ReturnType<typeof resolveTask> & {
    prepare(): Promise<void>;
    split: { evaluation: { windows: { tokens: Int32Array }[] } };
  };
  await t.prepare();
  const ws = t.split.evaluation.windows.map((w) => Array.from(w.tokens));
  assert.equal(ws[0]![0], 1, 'BOS first, as the tokenizer adds it');
  return ws;
}

test('bad transformers.js folders and texts: one line naming file, field and expected', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-tjs-bad-'));
  const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');
  try {
    const text = join(dir, 'text.txt');
    writeFileSync(text, loadStoriesText().slice(0, 40_000));
    for (const missing of ['config.json', 'tokenizer.json', 'onnx/model.onnx']) {
      const f = join(dir, missing.replace(/\W/g, '_'));
      cpSync(FIXTURE, f, { recursive: true });
      rmSync(join(f, missing));
      if (missing === 'onnx/model.onnx') writeFileSync(join(f, 'README.md'), '');
      assert.throws(
        () => resolveTask(f, { calibrationData: text }),
        oneLine(
          missing.endsWith('.onnx') ? /no decoder ONNX.*onnx\/model\.onnx/ : new RegExp(`no ${missing}`),
        ),
        missing,
      );
    }
    // no text, a text too short for the windows
    await assert.rejects(
      (resolveTask(FIXTURE, {}) as ReturnType<typeof resolveTask> & { prepare(): Promise<void> }).prepare(),
      oneLine(/--calibration.*text file/),
    );
    const short = join(dir, 'short.txt');
    writeFileSync(short, 'Once upon a time there was a cat.');
    const t = resolveTask(FIXTURE, { calibrationData: short }) as ReturnType<typeof resolveTask> & {
      prepare(): Promise<void>;
    };
    await assert.rejects(t.prepare(), oneLine(/short\.txt.*text.*at least \d+ tokens/));
    // a decoder without input_ids / logits
    const wrong = join(dir, 'wrong');
    cpSync(FIXTURE, wrong, { recursive: true });
    cpSync('test/fixtures/onnx/mlp.onnx', join(wrong, 'onnx/model.onnx'));
    const w = resolveTask(wrong, { calibrationData: text }) as ReturnType<typeof resolveTask> & {
      prepare(): Promise<void>;
    };
    await assert.rejects(w.prepare(), oneLine(/model\.onnx.*graph\.input.*input_ids/));
    // the command line: exit 2, one line naming the flag
    const cli = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'quantize',
        FIXTURE,
        '--calibration',
        text,
        '--eval',
        join(dir, 'none.txt'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr.trim(), /^mixq quantize: .*none\.txt: --eval: no such text file[^\n]*$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('window feeds: ids, mask, positions, empty cache shaped from the inputs (float16 too), use_cache_branch false', () => {
  const io = {
    inputIds: 'input_ids',
    attentionMask: 'attention_mask',
    positionIds: 'position_ids',
    useCacheBranch: 'use_cache_branch',
    logits: 'logits',
    layers: [
      {
        pastKey: 'past_key_values.0.key',
        pastValue: 'past_key_values.0.value',
        presentKey: 'present.0.key',
        presentValue: 'present.0.value',
      },
    ],
  };
  const inputs = [
    { name: 'past_key_values.0.key', type: 'float16', shape: ['batch', 2, 'past', 16] },
    { name: 'past_key_values.0.value', type: 'float32', shape: ['batch', 'heads', 'past', 'dim'] },
  ];
  const f = windowFeeds(io, inputs, { kvHeads: 3, headDim: 5 }, Int32Array.from([1, 7, 9]));
  assert.deepEqual(Array.from(f.input_ids!.data as BigInt64Array), [1n, 7n, 9n]);
  assert.deepEqual(f.input_ids!.dims, [1, 3]);
  assert.deepEqual(Array.from(f.attention_mask!.data as BigInt64Array), [1n, 1n, 1n]);
  assert.deepEqual(Array.from(f.position_ids!.data as BigInt64Array), [0n, 1n, 2n]);
  const k = f['past_key_values.0.key']!;
  assert.equal(k.type, 'float16');
  assert.deepEqual(k.dims, [1, 2, 0, 16]);
  const v = f['past_key_values.0.value']!;
  assert.equal(v.type, 'float32');
  assert.deepEqual(v.dims, [1, 3, 0, 5]);
  assert.equal(f.use_cache_branch!.type, 'bool');
  assert.deepEqual(Array.from(f.use_cache_branch!.data as Uint8Array), [0]);
  assert.throws(
    () =>
      windowFeeds(
        io,
        [{ name: 'past_key_values.0.key', type: 'int8', shape: [1, 1, 0, 1] }],
        { kvHeads: 1, headDim: 1 },
        Int32Array.from([1]),
      ),
    (e: Error) => /past_key_values\.0\.key/.test(e.message) && /float32 or float16/.test(e.message),
  );
});

// Evaluation on a pool of worker sessions (src/runtime/session-pool.node.ts) gives exactly the numbers of
// one session on the main thread: OCR predictions, per-line edits, CER and its bootstrap SE, fidelity; LM
// bits/char, per-window nats and fidelity. Runs finishing out of order are still consumed in input order.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import { listWeights, loadWeightFloat32 } from '../../src/io/onnx/weights.ts';
import {
  encodeChars,
  GPT_DIR,
  loadGptBundle,
  loadOcrCharset,
  loadOcrLines,
  ocrModelPath,
} from '../../src/runtime/bundled.node.ts';
import { evaluateLm, lmFidelity } from '../../src/runtime/eval-lm.node.ts';
import { evaluateOcr, ocrFidelity } from '../../src/runtime/eval-ocr.node.ts';
import { finishFidelity, newFidelityAccumulator } from '../../src/runtime/metrics.ts';
import { floatTensor, int64Tensor } from '../../src/runtime/ort.node.ts';
import { forEachInOrder, type ModelRunner, openRunner } from '../../src/runtime/runner.node.ts';
import {
  closeIdleEvalWorkers,
  type EvalRunner,
  openEvalRunner,
  openRunnerPool,
} from '../../src/runtime/session-pool.node.ts';
import { openVariantEvaluator } from '../../src/runtime/variants.node.ts';

const charset = loadOcrCharset();
const all = loadOcrLines();
// 6 clean and 6 degraded lines of different widths and texts (both variants, so byVariant is compared too)
const clean = all.filter((l) => l.variant === 'clean').slice(10, 16);
const cleanTexts = new Set(clean.map((l) => l.text));
const lines = [
  ...clean,
  ...all.filter((l) => l.variant === 'degraded' && !cleanTexts.has(l.text)).slice(10, 16),
];
const gpt = loadGptBundle();
const ids = encodeChars(Array.from(gpt.heldout).slice(30_000, 30_800).join(''), gpt.chars);
const gptPath = join(GPT_DIR, 'model.onnx');

/** A copy of the model with its first matrix weight rounded to a grid of 1/`steps` (a quantized stand-in). */
async function perturbed(path: string, steps: number): Promise<Uint8Array> {
  const file = await readOnnxFile(path);
  try {
    const w = listWeights(file).find(
      (x) => x.path === 'graph' && x.dims.length === 2 && x.elementCount > 1000,
    )!;
    const q = (await loadWeightFloat32(file, w)).map((v) => Math.round(v * steps) / steps);
    return (await openVariantEvaluator(path, [w.name])).bytes(new Map([[w.name, q]]));
  } finally {
    await file.close();
  }
}

/** Wraps a runner so that its runs finish in reverse order of submission (within `window`). */
function reversing(inner: ModelRunner, window: number): ModelRunner {
  let n = 0;
  return {
    inputNames: inner.inputNames,
    outputNames: inner.outputNames,
    inputMetadata: inner.inputMetadata,
    concurrency: window,
    async run(feeds, outputs) {
      const k = n++;
      const r = await inner.run(feeds, outputs);
      await new Promise((res) => setTimeout(res, 5 * (window - (k % window))));
      return r;
    },
  };
}

const pools: EvalRunner[] = [];
let ocrPool: EvalRunner;
let ocrVariantPool: EvalRunner;
let ocrVariantBytes: Uint8Array;
before(async () => {
  ocrVariantBytes = await perturbed(ocrModelPath(), 2);
  [ocrPool, ocrVariantPool] = await Promise.all([
    openRunnerPool(ocrModelPath(), 2),
    openRunnerPool(ocrVariantBytes, 2),
  ]);
  pools.push(ocrPool, ocrVariantPool);
});
after(async () => {
  await Promise.all(pools.map((p) => p.release()));
  await closeIdleEvalWorkers();
});

test('forEachInOrder: visits in index order with at most `window` runs in flight, whatever order they finish in', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const seen: number[] = [];
  await forEachInOrder(
    9,
    3,
    async (i) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((res) => setTimeout(res, 3 * (9 - i)));
      inFlight--;
      return i * i;
    },
    (r, i) => {
      assert.equal(r, i * i);
      seen.push(i);
    },
  );
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(maxInFlight, 3);
  // the first failure in index order is thrown; a later one does not surface unhandled
  await assert.rejects(
    forEachInOrder(
      4,
      4,
      (i) => (i >= 1 ? Promise.reject(new Error(`run ${i}`)) : Promise.resolve(i)),
      () => {},
    ),
    /run 1/,
  );
});

test('OCR: a pool of 2 worker sessions gives the single-session CER, per-line edits, predictions and SE exactly', async () => {
  const single = await evaluateOcr(await openRunner(ocrModelPath()), lines, charset);
  assert.equal(ocrPool.concurrency, 4);
  const pooled = await evaluateOcr(ocrPool, lines, charset);
  assert.deepEqual(pooled, single);
  // the comparison can fail: every line decodes to a different text, so results out of order differ
  assert.equal(new Set(single.predictions).size, lines.length);
  assert.ok(single.byVariant.clean && single.byVariant.degraded && single.cerStdError > 0);
  // runs that finish in reverse order are still scored in input order
  assert.deepEqual(await evaluateOcr(reversing(ocrPool, 4), lines, charset), single);
  // and the quantized stand-in scores differently (the check is not vacuous)
  const variant = await evaluateOcr(ocrVariantPool, lines, charset);
  assert.notDeepEqual(variant.perLine, single.perLine);
  assert.deepEqual(variant, await evaluateOcr(await openRunner(ocrVariantBytes), lines, charset));
});

test('OCR fidelity of a perturbed model to fp32: pooled sessions give the single-session KL / top-1 / SQNR exactly', async () => {
  const single = newFidelityAccumulator();
  await ocrFidelity(await openRunner(ocrVariantBytes), await openRunner(ocrModelPath()), lines, single);
  const pooled = newFidelityAccumulator();
  await ocrFidelity(ocrVariantPool, ocrPool, lines, pooled);
  const s = finishFidelity(single);
  assert.ok(s.klMean > 0 && s.top1Agreement < 1, JSON.stringify(s));
  assert.deepEqual(finishFidelity(pooled), s);
});

test('LM: pooled bits/char, per-window nats and fidelity equal the single-session ones exactly', async () => {
  const variantBytes = await perturbed(gptPath, 16);
  const [pool, variantPool] = await Promise.all([
    openEvalRunner(gptPath, 2),
    openEvalRunner(variantBytes, 2),
  ]);
  pools.push(pool, variantPool);
  // batches of 2 windows: 6 runs, spread over both sessions
  const opts = { context: gpt.context, batch: 2 };
  const single = await evaluateLm(await openRunner(gptPath), ids, opts);
  const pooled = await evaluateLm(pool, ids, opts);
  assert.deepEqual(pooled, single);
  assert.equal(new Set(Array.from(single.perWindow.nats)).size, single.windows);
  assert.deepEqual(await evaluateLm(reversing(pool, 4), ids, opts), single);

  const a = newFidelityAccumulator();
  await lmFidelity(await openRunner(variantBytes), await openRunner(gptPath), ids, opts, a);
  const b = newFidelityAccumulator();
  await lmFidelity(variantPool, pool, ids, opts, b);
  const s = finishFidelity(a);
  assert.ok(s.klMean > 0, JSON.stringify(s));
  assert.deepEqual(finishFidelity(b), s);
});

test('pool: a failing run rejects without breaking the pool; a released pool rejects runs; its thread serves the next model', async () => {
  const pool = await openRunnerPool(ocrModelPath(), 1);
  const line = lines[0]!;
  const feed = (r: ModelRunner, width: number) => ({
    [r.inputNames[0]!]: floatTensor(new Float32Array(3 * 48 * width), [1, 3, 48, width]),
  });
  try {
    await assert.rejects(pool.run({ nope: floatTensor(new Float32Array(1), [1]) }), /nope|input/i);
    const out = await pool.run(feed(pool, line.width), [pool.outputNames[0]!]);
    assert.equal(out[pool.outputNames[0]!]!.dims[2], charset.length);
  } finally {
    await pool.release();
  }
  await assert.rejects(pool.run(feed(pool, 8)), /released/);
  // the parked thread opens another model: the same outputs as a main-thread session of it
  const next = await openRunnerPool(gptPath, 1);
  try {
    const f = { [next.inputNames[0]!]: int64Tensor(ids.subarray(0, 32), [1, 32]) };
    const a = (await next.run(f))[next.outputNames[0]!]!;
    const b = (await (await openRunner(gptPath)).run(f))[next.outputNames[0]!]!;
    assert.deepEqual(a.data, b.data);
  } finally {
    await next.release();
  }
  await assert.rejects(openRunnerPool(new Uint8Array([1, 2, 3]), 1), /onnxruntime could not load/);
});

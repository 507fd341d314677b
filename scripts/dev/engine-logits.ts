/**
 * Dev-only: the logits table of docs/engine.md. mixq's engine against llama.cpp (node-llama-cpp) on the
 * same GGUF bytes, both against the float64 reference forward pass (src/engine/reference.ts) on exactly
 * decoded weights where it fits in memory, and mixq's engine on mixq's quantized output of a mixed plan
 * against onnxruntime on the ONNX export of the same plan.
 *
 * Every comparison is over log-softmax rows (log-probabilities: logits up to each row's constant, which
 * no runtime fixes) at every position of the evaluation text: max |Δ| over positions and tokens, mean KL
 * per position, top-1 agreement. Columns:
 *   engine vs llama   engine (int8 activations where ggml uses them, as llama.cpp) vs llama.cpp with
 *                     flash attention off and an F32 KV cache (the same arithmetic, up to rounding)
 *   engine f32 vs f64 engine with float32 activations vs the float64 reference (kernels' accuracy)
 *   llama vs f64      llama.cpp (exact settings) vs the float64 reference
 *   llama dflt vs f64 llama.cpp with node-llama-cpp's defaults (flash attention on, F16 KV cache)
 * Tolerances (engine vs llama; see `verdict`): F32 weights |Δ| <= 1e-4 (gpt2: 1e-2, llama.cpp's GELU
 * goes through an F16 table); F16 and quantized weights mean KL <= max(5e-3, 2 x llama.cpp's own KL to
 * exact arithmetic), plus a top-1 bound on trained models. test/engine/llama-cpp.test.ts holds stories260K
 * to the same.
 *
 * Models: stories260K re-quantized by mixq's GGUF requantizer to every ggml type whose block fits its rows
 * of 64 (ffn_down's rows of 172 fit no block and stay F16; no K-quant fits, so they run on the next two),
 * a random 256-wide llama in every type the kernels read, the bundled GPT (gpt2), the 1B widths in 2 layers
 * (16 positions, with the float64 reference) and the 1B-shaped synthetic llama itself (22 layers,
 * scripts/dev/synthetic-models.ts; 32 positions, no float64 reference: see fileRow).
 *
 *   MIXQ_DEV_MODELS=... node --experimental-wasm-relaxed-simd --import tsx scripts/dev/engine-logits.ts
 *     [--parts small,1b2l,1b,onnx]
 */
import { readFileSync } from 'node:fs';
import { loadEngineModel } from '../../src/engine/load.ts';
import { openEngineModel } from '../../src/engine/load.node.ts';
import { referenceForward } from '../../src/engine/reference.ts';
import { engineFileSource, ggufModelSource } from '../../src/engine/source.ts';
import { exportGptGguf } from '../../src/export/gguf/gpt2.node.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { getBlockType } from '../../src/blocks/registry.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { GGML_KERNEL_TYPES } from '../../src/kernels/ggml.ts';
import { loadStoriesText, storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { openLlamaModel } from '../../src/runtime/llama.node.ts';
import { requantized, SMALL_K, syntheticLlamaGguf } from '../../test/engine/synthetic.ts';
import { compareRows, ggufWeights, logSoftmaxRows, type RowComparison } from '../../test/engine/util.ts';
import { printTable } from '../../bench/util.ts';
import { schemeId } from '../../src/analysis/sensitivity/candidates.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { readSafetensors } from '../../src/io/safetensors/read.ts';
import { bytesSource } from '../../src/io/source.ts';
import { applyPlan } from '../../src/pipeline/apply.node.ts';
import { quantizeModel } from '../../src/pipeline/quantize/index.ts';
import { deterministicOptions, int64Tensor, ort } from '../../src/runtime/ort.node.ts';
import { syn1b } from './synthetic-models.ts';

const N = 128;

async function llamaRows(
  model: string | Uint8Array,
  tokens: Int32Array,
  exact: boolean,
): Promise<Float32Array> {
  const ll = await openLlamaModel(model, exact ? { kvCacheType: 'F32', flashAttention: false } : {});
  try {
    const ref = await ll.recordReference([{ tokens, scoreFrom: 1, textOffset: 0 }]);
    const rows = await ref.readWindow(0);
    await ref.close();
    return rows;
  } finally {
    await ll.close();
  }
}

const fmt = (c: RowComparison) => [
  c.maxAbs.toExponential(1),
  c.klMean.toExponential(1),
  (100 * c.top1).toFixed(1),
];

/**
 * The tolerance of engine vs llama.cpp. F32 weights: |Δ| <= 1e-4 (`floatTol`). Else llama.cpp rounds
 * activations (to F16, or to int8 blocks with an F16 scale, ties away from zero: Q8_0 / Q8_K) and so does
 * the engine (F16 weights: not at all; quantized: int8 blocks of 32 with a float32 scale, ties to even), two
 * roundings of the same size that each move the result about as far as llama.cpp's moves it from exact
 * arithmetic: mean KL(engine, llama.cpp) <= max(5e-3, 2 x KL(llama.cpp, exact)), exact = the float64
 * reference (or, for the 22-layer model, the engine with float32 activations). On trained models top-1
 * agreement is also at least min(95%, llama.cpp's own with exact); random models' logits are nearly flat
 * (argmax ties), so top-1 is printed there, not a criterion.
 */
function verdict(type: string, c: RowComparison, llamaVsExact: RowComparison, o: RowOptions): string {
  const tol = o.floatTol ?? 1e-4;
  if (type === 'F32') return c.maxAbs <= tol ? `ok (|Δ| <= ${tol})` : `FAIL (|Δ| > ${tol})`;
  const kl = Math.max(5e-3, 2 * llamaVsExact.klMean);
  const top = o.random ? 0 : Math.min(0.95, llamaVsExact.top1);
  const ok = c.klMean <= kl && c.top1 >= top - 1e-9;
  return `${ok ? 'ok' : 'FAIL'} (KL <= ${kl.toExponential(1)}${o.random ? '' : `, top-1 >= ${(100 * top).toFixed(1)}%`})`;
}

interface RowOptions {
  /** |Δ| bound for F32 weights (default 1e-4). */
  readonly floatTol?: number;
  /** Random weights: no top-1 criterion. */
  readonly random?: boolean;
}

/** One row: a GGUF in memory (small models: with the float64 reference). */
async function row(
  model: string,
  type: string,
  bytes: Uint8Array,
  tokens: Int32Array,
  o: RowOptions = {},
): Promise<string[]> {
  const file = parseGguf(bytes, `${model}-${type}`);
  const src = ggufModelSource(file);
  const V = src.config.vocabSize;
  const n = tokens.length - 1; // llama.cpp's rows: positions 0 .. n - 1
  const engine = async (activations: 'auto' | 'f32') => {
    const m = await loadEngineModel(await createKernels(), ggufModelSource(file), { activations });
    return logSoftmaxRows(m.forward(tokens.subarray(0, n), m.newCache(), 0), V);
  };
  const eAuto = await engine('auto');
  const eF32 = await engine('f32');
  const lExact = await llamaRows(bytes, tokens, true);
  const lDefault = await llamaRows(bytes, tokens, false);
  const ref = logSoftmaxRows(
    referenceForward(src.config, src.ropeMode, await ggufWeights(file), tokens.subarray(0, n)),
    V,
  );
  const c = compareRows(lExact, eAuto, V);
  const lRef = compareRows(lExact, ref, V);
  return [
    model,
    type,
    String(n),
    ...fmt(c),
    ...fmt(compareRows(eF32, ref, V)),
    ...fmt(lRef),
    ...fmt(compareRows(lDefault, ref, V)),
    verdict(type, c, lRef, o),
  ];
}

/**
 * One row of the 1B-shaped model (no float64 reference at 1.1 G weights; the engine with float32
 * activations stands in for exact arithmetic, which it matches to 5e-5 in |Δ log p| at these widths in
 * 2 layers): engine vs llama.cpp, llama.cpp vs exact, and the engine's own int8-activation rounding. On
 * this random, untrained 22-layer model every rounding is amplified layer after layer, so the three are
 * large together.
 */
async function fileRow(type: string, path: string, tokens: Int32Array): Promise<string[]> {
  const n = tokens.length - 1;
  const rows: Record<string, Float64Array> = {};
  let V = 0;
  for (const activations of ['auto', 'f32'] as const) {
    const m = await openEngineModel(path, { activations });
    V = m.config.vocabSize;
    rows[activations] = logSoftmaxRows(m.forward(tokens.subarray(0, n), m.newCache(), 0), V);
    await m.close();
  }
  const lExact = await llamaRows(path, tokens, true);
  const c = compareRows(lExact, rows.auto!, V);
  const lRef = compareRows(lExact, rows.f32!, V);
  return [
    type,
    String(n),
    ...fmt(c),
    ...fmt(lRef),
    ...fmt(compareRows(rows.f32!, rows.auto!, V)),
    verdict(type, c, lRef, { random: true }),
  ];
}

// --parts small,1b2l,1b,onnx (default all): small = stories260K, the 256-wide llama and the bundled GPT
const partsArg = process.argv.indexOf('--parts');
const parts = new Set(
  partsArg > 0 ? process.argv[partsArg + 1]!.split(',') : ['small', '1b2l', '1b', 'onnx'],
);
const rows: string[][] = [];
const bigRows: string[][] = [];
const log = (r: string[]) => {
  rows.push(r);
  console.error(r.join('  '));
};
if (parts.has('small')) {
  const stories = new Uint8Array(readFileSync(storiesModelPath()));
  const sTok = ggufModelSource(parseGguf(stories, 's')).tokenizer;
  const sIds = Int32Array.from([1, ...sTok.encode(loadStoriesText().slice(0, 1200)).slice(0, N)]);
  // the types whose block fits stories260K's rows of 64 (no K-quant: super-blocks of 256)
  const fits = GGML_KERNEL_TYPES.filter((t) => 64 % getBlockType(t).blockSize === 0);
  for (const type of ['F32', 'F16', ...fits])
    log(await row('stories260K', type, type === 'F32' ? stories : await requantized(stories, type), sIds));
  const base = syntheticLlamaGguf(SMALL_K);
  const kIds = Int32Array.from({ length: 65 }, (_, i) => (i * 37 + 1) % SMALL_K.vocab);
  for (const type of ['F32', 'F16', ...GGML_KERNEL_TYPES])
    log(await row('random 256-wide', type, await requantized(base, type), kIds, { random: true }));
  for (const type of ['F32', 'Q8_0']) {
    const g = await exportGptGguf('models/gpt', type, { fallback: true });
    const bytes = new Uint8Array(Buffer.concat(g.chunks));
    const tok = ggufModelSource(parseGguf(bytes, 'gpt')).tokenizer;
    const ids = tok.encode(readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 600)).slice(0, N);
    // llama.cpp's gpt2 GELU goes through an F16 lookup table (input and output rounded to F16): 1e-2
    log(await row('bundled GPT (gpt2)', type, bytes, ids, { floatTol: 1e-2 }));
  }
}
const ids1b = Int32Array.from({ length: 33 }, (_, i) => (i ? 300 + 7 * i : 1));
if (parts.has('1b2l')) {
  {
    // the 1B widths (2048 / 5632 / 32000) in 2 layers: shallow enough for the float64 reference and for
    // the activation roundings not to be amplified into chaos
    for (const type of ['F16', ...GGML_KERNEL_TYPES, 'Q4_K_M', 'mixed'])
      log(
        await row(
          '1B widths, 2 layers',
          type,
          new Uint8Array(readFileSync(await syn1b(type, 2))),
          ids1b.subarray(0, 17),
          { random: true },
        ),
      );
  }
}
if (parts.has('1b')) {
  for (const type of ['F16', ...GGML_KERNEL_TYPES, 'Q4_K_M', 'mixed']) {
    const r = await fileRow(type, await syn1b(type), ids1b);
    bigRows.push(r);
    console.error(r.join('  '));
  }
}

// ---- vs onnxruntime: a mixed plan of the bundled GPT, mixq's engine file vs the ONNX export of the same plan
async function onnxComparison(): Promise<{ title: string; rows: string[][] }> {
  const q = await quantizeModel({
    model: 'gpt',
    budget: { kind: 'bitsPerWeight', bits: 4 },
    output: { target: 'runtime' },
    task: { evalSize: 2048 },
    evaluation: { sweep: [], baselines: false },
  });
  const mix = new Map<string, number>();
  for (const w of q.plan.weights) {
    const id = schemeId(w.scheme).replace(/-rtn$/, '');
    mix.set(id, (mix.get(id) ?? 0) + 1);
  }
  const onnx = await applyPlan('gpt', q.plan, { target: 'onnx' });
  const engineFile = engineFileSource(
    await readSafetensors(bytesSource(concatBytes(q.output!.chunks), 'gpt-mixq-engine.safetensors')),
  );
  const W = 8;
  const C = 128;
  const text = readFileSync('models/gpt/heldout.txt', 'utf8').slice(16384, 16384 + W * C);
  const ids = engineFile.tokenizer.encode(text).slice(0, W * C);
  const V = engineFile.config.vocabSize;
  // onnxruntime as mixq evaluates with (graph optimizations 'all': it fuses a blocked DequantizeLinear +
  // MatMul into MatMulNBits, which by default quantizes activations to int8, accuracy level 4), and with
  // float compute everywhere (session.qdq_matmulnbits_accuracy_level = 0)
  const ortRows = async (level?: string) => {
    const sess = await ort.InferenceSession.create(onnx.bytes, {
      ...deterministicOptions(),
      ...(level ? { extra: { session: { qdq_matmulnbits_accuracy_level: level } } } : {}),
    });
    const res = await sess.run({ ids: int64Tensor(ids, [W, C]) });
    await sess.release();
    return logSoftmaxRows(res.logits!.data as Float32Array, V);
  };
  const engineRows = async (activations: 'auto' | 'f32') => {
    const m = await loadEngineModel(await createKernels(), engineFile, { activations });
    const out = new Float32Array(W * C * V);
    for (let w = 0; w < W; w++)
      out.set(m.forward(ids.subarray(w * C, (w + 1) * C), m.newCache(C), 0), w * C * V);
    return logSoftmaxRows(out, V);
  };
  const ortDefault = await ortRows();
  const ortFloat = await ortRows('0');
  const eF32 = await engineRows('f32');
  const eAuto = await engineRows('auto');
  const onnxRows: string[][] = [];
  const cmpRow = (what: string, a: Float64Array, b: Float64Array, exact: boolean) => {
    const c = compareRows(a, b, V);
    const ok = exact
      ? c.maxAbs <= 1e-4
        ? 'ok (|Δ| <= 1e-4)'
        : 'FAIL (|Δ| > 1e-4)'
      : c.klMean <= 5e-3 && c.top1 >= 0.95
        ? 'ok (KL <= 5e-3, top-1 >= 95%)'
        : 'FAIL';
    onnxRows.push([what, String(W * C), ...fmt(c), ok]);
  };
  cmpRow('engine f32 acts vs onnxruntime float (accuracy level 0)', ortFloat, eF32, true);
  cmpRow('engine f32 acts vs onnxruntime default (int8 acts in fused MatMulNBits)', ortDefault, eF32, false);
  cmpRow('engine default (int8 acts) vs onnxruntime default', ortDefault, eAuto, false);
  cmpRow('engine default (int8 acts) vs onnxruntime float', ortFloat, eAuto, false);
  return {
    title: `mixq engine on mixq's engine file vs onnxruntime on the ONNX export of the same plan (bundled GPT, ${q.plan.totals.bitsPerWeight.toFixed(2)} b/w: ${[...mix].map(([k, n]) => `${k} x${n}`).join(', ')}; ${W} windows of ${C} held-out characters)`,
    rows: onnxRows,
  };
}

const h = (s: string) => [`${s} max|Δ|`, 'KL', 'top1%'];
if (rows.length > 0) {
  console.log('\nmixq engine vs llama.cpp (log-softmax rows, every position of the evaluation text)');
  printTable(
    [
      'model',
      'type',
      'pos',
      ...h('engine vs llama'),
      ...h('engine f32 vs f64'),
      ...h('llama vs f64'),
      ...h('llama dflt vs f64'),
      'tolerance',
    ],
    rows,
  );
}
if (bigRows.length > 0) {
  console.log(
    '\nthe 1B-shaped synthetic llama (22 layers, 2048 / 5632, 32 / 4 heads, vocabulary 32000, random weights): 32 positions',
  );
  printTable(
    [
      'type',
      'pos',
      ...h('engine vs llama'),
      ...h('llama vs engine f32 acts'),
      ...h('engine default vs f32 acts'),
      'tolerance',
    ],
    bigRows,
  );
}
if (parts.has('onnx')) {
  const o = await onnxComparison();
  console.log(`\n${o.title}`);
  printTable(['comparison', 'pos', 'max|Δ|', 'KL', 'top1%', 'tolerance'], o.rows);
}
console.log(`loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()}`);

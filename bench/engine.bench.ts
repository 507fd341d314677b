/**
 * mixq's engine (src/engine) against llama.cpp (node-llama-cpp, its prebuilt CPU build) on the same GGUF
 * files, in the same run: a synthetic 1B-shaped llama (TinyLlama's shapes: 22 layers, hidden 2048, FFN
 * 5632, 32 / 4 heads, vocabulary 32000; random weights, which is fine for speed) in
 *   Q8_0, Q4_0                  one type for every matrix (llama.cpp's rule: output.weight Q6_K for Q4_0)
 *   Q4_K_M                      llama.cpp's Q4_K_M rule (analysis/allocate/rule-mix.ts) through mixq's
 *                               GGUF requantizer (`mixq requantize --rule ...`)
 *   mixed (plan)                a mixed-type plan as mixq's allocator writes one (per-tensor types
 *                               Q3_K..Q6_K, ~4 bits per weight)
 * on 1 and 2 threads: prefill (32 tokens, one batch) and decode (16 tokens, one at a time) in tokens per
 * second (best of MIXQ_ENGINE_REPEAT = 3 alternating runs per side), load time, resident memory (RSS)
 * after loading and after generating. Each measurement runs in
 * its own child process (RSS of one runtime and one model only); mixq's children run with
 * --experimental-wasm-relaxed-simd (Node 20; on by default in Node 22). llama.cpp runs with
 * node-llama-cpp's defaults (flash attention 'auto', F16 KV cache, mmap) and the same thread count.
 * Also: onnxruntime's RSS for the same matrices as MatMulNBits 4-bit g32 (what an ONNX export of a Q4_0-like
 * plan holds), and the engine's cost table (measureCostTable) for the model's shapes.
 *
 * Also stories260K at equal KL: mixq's smallest plan in its own formats whose KL to llama.cpp's F32
 * distributions is no larger than llama.cpp's Q4_K_M, run in mixq's engine, against that Q4_K_M in
 * llama.cpp (storiesEqualKl; `MIXQ_ENGINE_BENCH=stories` runs only this part).
 *
 * The model files are made on the first run (scripts/dev/synthetic-models.ts: synthetic-gguf.ts, then
 * `mixq requantize`; ~5 minutes, ~3.1 GB) in $MIXQ_DEV_MODELS (default ~/.cache/mixq/dev-models) and
 * reused. Never commit them. Figures are indicative on a shared machine: /proc/loadavg is printed around
 * them. RSS: "tensors + KV" is what the engine should hold (the file's tensor bytes and its KV cache).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CostEntry, measureCostTable } from '../src/engine/cost.ts';
import { makeNode, makeTensor } from '../src/export/onnx/build.ts';
import { writeFileAtomic } from '../src/io/files.node.ts';
import { DATA_TYPE_CODES as C } from '../src/io/onnx/index.ts';
import type { NodeProto, TensorProto } from '../src/io/onnx/proto-types.ts';
import { createKernels } from '../src/kernels/context.ts';
import { isLlamaCppAvailable } from '../src/runtime/llama.node.ts';
import { benchOnnxModel, printTable } from './util.ts';
import type { AllocCandidate, AllocWeight } from '../src/analysis/allocate/problem.ts';
import { paretoSweep } from '../src/analysis/allocate/pareto.ts';
import { Q4_K_M_SCHEMES, ruleMix } from '../src/analysis/allocate/rule-mix.ts';
import { intScheme, NVFP4_RTN, schemeCost, schemeId } from '../src/analysis/sensitivity/candidates.ts';
import { loadEngineModel } from '../src/engine/load.ts';
import { measureDecode } from '../src/engine/session.ts';
import { engineFileSource, ggufModelSource } from '../src/engine/source.ts';
import { writeEngineFile } from '../src/export/engine-file.ts';
import { parseGguf } from '../src/io/gguf/read.ts';
import { isRequantizable, requantizeGguf } from '../src/io/gguf/requantize.ts';
import { concatBytes } from '../src/io/gguf/write.ts';
import { readSafetensors } from '../src/io/safetensors/read.ts';
import { bytesSource } from '../src/io/source.ts';
import { rowLayout } from '../src/quant/layout.ts';
import { quantizerOf, type Scheme } from '../src/quant/scheme.ts';
import { loadStoriesText, storiesModelPath } from '../src/runtime/bundled-stories.node.ts';
import { EngineLm } from '../src/runtime/engine-lm.node.ts';
import { openLlamaModel } from '../src/runtime/llama.node.ts';
import { splitWindows } from '../src/runtime/lm-windows.ts';
import { devModelsDir, SYN1B, syn1b } from '../scripts/dev/synthetic-models.ts';

const HERE = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PROMPT = 32;
const DECODE = 16;
const THREADS = [1, 2];
const STORIES_DECODE = 128;
const H = SYN1B.hidden;
const F = SYN1B.ffn;
const KV = SYN1B.kvWidth;
const LAYERS = SYN1B.layers;
const VOCAB = SYN1B.vocab;

const loadavg = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
};
const mib = (b: number) => (b / 2 ** 20).toFixed(0);

interface ChildResult {
  loadSeconds: number;
  rssLoad: number;
  rssEnd: number;
  prefillMs: number;
  decodeMs: number;
  split?: Record<string, number>;
  /** mixq: the file's tensor bytes, and the KV cache's bytes after the run. */
  tensorBytes?: number;
  kvBytes?: number;
}

// ------------------------------------------------------------------------------------------ children

async function childMixq(file: string, threads: number): Promise<ChildResult> {
  const { openEngineModel } = await import('../src/engine/load.node.ts');
  const { EngineSession } = await import('../src/engine/session.ts');
  const { argmaxRow } = await import('../src/engine/sampling.ts');
  const t0 = performance.now();
  const m = await openEngineModel(file, { threads });
  const loadSeconds = (performance.now() - t0) / 1000;
  const rssLoad = process.memoryUsage().rss;
  const s = new EngineSession(m, PROMPT + DECODE + 2);
  const prompt = Int32Array.from({ length: PROMPT }, (_, i) => 300 + 7 * i);
  let t = performance.now();
  let logits = s.prefill(prompt);
  const prefillMs = (performance.now() - t) / PROMPT;
  logits = s.decode(argmaxRow(logits)); // warm-up
  m.resetTimes();
  t = performance.now();
  for (let i = 0; i < DECODE; i++) logits = s.decode(argmaxRow(logits));
  const decodeMs = (performance.now() - t) / DECODE;
  const split = Object.fromEntries(Object.entries(m.times).map(([k, v]) => [k, v / DECODE]));
  const rssEnd = process.memoryUsage().rss;
  const kvBytes = s.cache.bytes;
  await m.close();
  return {
    loadSeconds,
    rssLoad,
    rssEnd,
    prefillMs,
    decodeMs,
    split,
    tensorBytes: m.load.tensorBytes,
    kvBytes,
  };
}

async function childLlama(
  file: string,
  threads: number,
  decode = DECODE,
  vocab: number = VOCAB,
): Promise<ChildResult> {
  const m = await import('node-llama-cpp');
  const llama = await m.getLlama({
    build: 'never',
    gpu: false,
    logLevel: m.LlamaLogLevel.error,
    progressLogs: false,
  });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: 128, batchSize: PROMPT, threads });
  const loadSeconds = (performance.now() - t0) / 1000;
  const rssLoad = process.memoryUsage().rss;
  const seq = ctx.getSequence();
  const prompt = Array.from({ length: PROMPT }, (_, i) => (300 + 7 * i) % vocab);
  const next = { generateNext: { token: true } } as const;
  let t = performance.now();
  const first = await seq.controlledEvaluate(
    prompt.map((x, i) => (i === PROMPT - 1 ? [x, next] : x)) as never,
  );
  const prefillMs = (performance.now() - t) / PROMPT;
  let tok = (first[PROMPT - 1] as { next?: { token?: number } } | undefined)?.next?.token ?? 400;
  const step = async () => {
    const r = await seq.controlledEvaluate([[tok, next]] as never);
    tok = (r[0] as { next?: { token?: number } } | undefined)?.next?.token ?? 400;
  };
  await step(); // warm-up
  t = performance.now();
  for (let i = 0; i < decode; i++) await step();
  const decodeMs = (performance.now() - t) / decode;
  const rssEnd = process.memoryUsage().rss;
  await ctx.dispose();
  await model.dispose();
  return { loadSeconds, rssLoad, rssEnd, prefillMs, decodeMs };
}

async function childOrt(file: string, threads: number): Promise<ChildResult> {
  const { ort } = await import('../src/runtime/ort.node.ts');
  const base = process.memoryUsage().rss;
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const loadSeconds = (performance.now() - t0) / 1000;
  const rssLoad = process.memoryUsage().rss;
  const feeds = {
    x: new ort.Tensor('float32', new Float32Array(H).fill(0.01), [1, H]),
    x2: new ort.Tensor('float32', new Float32Array(F).fill(0.01), [1, F]),
  };
  await s.run(feeds);
  const t = performance.now();
  await s.run(feeds);
  const decodeMs = performance.now() - t;
  const rssEnd = process.memoryUsage().rss;
  await s.release();
  return { loadSeconds, rssLoad: rssLoad - base, rssEnd: rssEnd - base, prefillMs: 0, decodeMs };
}

const COST_FORMATS = [
  'F16',
  'Q8_0',
  'Q4_0',
  'Q4_K',
  'Q6_K',
  { element: 'int3', groups: 32 },
  { element: 'fp4_e2m1fn', groups: 16, scaleFormat: 'fp8_e4m3fn' as const },
  { element: 'int2', groups: 32, layout: 'lut' as const },
];

async function childCost(): Promise<CostEntry[]> {
  const k = await createKernels();
  const shapes = [
    { rows: H, cols: H },
    { rows: F, cols: H },
    { rows: H, cols: F },
  ];
  return measureCostTable(k, shapes, COST_FORMATS, { minMs: 60 });
}

function runChild(
  kind: 'mixq' | 'llama' | 'ort' | 'cost',
  file: string,
  threads: number,
): ChildResult | string {
  const r = spawnSync(
    process.execPath,
    [
      '--experimental-wasm-relaxed-simd',
      '--import',
      'tsx',
      HERE,
      '--engine-bench-child',
      kind,
      file,
      String(threads),
    ],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ChildResult;
  } catch {
    return `failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? r.status}`;
  }
}

if (process.argv[2] === '--engine-bench-child') {
  const [kind, file, threads] = process.argv.slice(3) as [string, string, string];
  const f =
    kind === 'mixq' ? childMixq : kind === 'llama' ? childLlama : kind === 'ort' ? childOrt : childCost;
  const r = await f(file, Number(threads));
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}

// -------------------------------------------------------------------------------------------- models

const MODELS = ['Q8_0', 'Q4_0', 'Q4_K_M', 'mixed'] as const;
/** Runs per (model, threads) and runtime, alternating (MIXQ_ENGINE_REPEAT, default 3). */
const REPEAT = Math.max(1, Number(process.env.MIXQ_ENGINE_REPEAT ?? 3));

/** The runs' best decode and best prefill (load time and memory of the first run); a failure if all failed. */
function bestOf(rs: readonly (ChildResult | string)[]): ChildResult | string {
  const good = rs.filter((r): r is ChildResult => typeof r !== 'string');
  if (good.length === 0) return rs[0]!;
  const first = good[0]!;
  const best = good.reduce((x, y) => (y.decodeMs < x.decodeMs ? y : x));
  return {
    ...first,
    decodeMs: best.decodeMs,
    split: best.split,
    prefillMs: Math.min(...good.map((r) => r.prefillMs)),
  };
}

/** The model's matrices as MatMulNBits 4-bit g32 (random codes, float32 scales), as an ONNX file. */
async function ensureOrtModel(): Promise<string> {
  const file = join(devModelsDir(), 'syn1b-int4.onnx');
  if (existsSync(file)) return file;
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const add = (name: string, n: number, k: number, input: string) => {
    const nb = k / 32;
    const b = new Uint8Array(n * nb * 16);
    for (let i = 0; i < b.length; i += 65536)
      crypto.getRandomValues(b.subarray(i, Math.min(b.length, i + 65536)));
    inits.push(makeTensor(`${name}.b`, C.UINT8, [n, nb, 16], b));
    inits.push(
      makeTensor(`${name}.s`, C.FLOAT, [n * nb], new Uint8Array(new Float32Array(n * nb).fill(0.01).buffer)),
    );
    nodes.push(
      makeNode('MatMulNBits', [input, `${name}.b`, `${name}.s`], [`${name}.y`], {
        name,
        domain: 'com.microsoft',
        attrs: { K: k, N: n, bits: 4, block_size: 32, accuracy_level: 4 },
      }),
    );
  };
  for (let l = 0; l < LAYERS; l++) {
    add(`q${l}`, H, H, 'x');
    add(`k${l}`, KV, H, 'x');
    add(`v${l}`, KV, H, 'x');
    add(`o${l}`, H, H, 'x');
    add(`g${l}`, F, H, 'x');
    add(`u${l}`, F, H, 'x');
    add(`d${l}`, H, F, 'x2');
  }
  add('head', VOCAB, H, 'x');
  const bytes = benchOnnxModel(
    'syn1b-int4',
    [
      ['x', [1, H]],
      ['x2', [1, F]],
    ],
    nodes.map((n) => [n.output[0]!, [1, 1]] as const),
    inits,
    nodes,
  );
  await writeFileAtomic(file, bytes);
  console.log('  made the onnxruntime MatMulNBits model');
  return file;
}

// ---------------------------------------------------------------- stories260K at equal KL (in-process)

/**
 * stories260K at equal KL: llama.cpp's Q4_K_M (through mixq's requantizer with llama.cpp's rules and
 * fallbacks: no K-quant block fits rows of 64, so it is a Q5_0 / Q8_0 / F16 mix) in llama.cpp, against
 * the smallest mixq plan in mixq's formats whose KL (to llama.cpp's F32 distributions, on the same text)
 * is no larger, in mixq's engine. The plan: each matrix's KL measured alone in the engine (2 windows),
 * summed as the allocator's damage (HiGHS over exact bytes), the Pareto sweep bisected with the full KL
 * measured on every window. Then decode tokens/s of both, one thread.
 */
async function storiesEqualKl(): Promise<void> {
  const kernels = await createKernels();
  const f32 = new Uint8Array(readFileSync(storiesModelPath()));
  const g = parseGguf(f32, 'stories260K.gguf');
  // llama.cpp's Q4_K_M rule over the quantizable tensors
  const quantizable = g.tensors.filter(isRequantizable);
  const rules = [
    ...ruleMix(
      quantizable.map((t) => {
        const l = /^blk\.(\d+)\./.exec(t.name);
        return { name: t.name, ...(l ? { layer: Number(l[1]) } : {}) };
      }),
      Q4_K_M_SCHEMES,
    ),
  ].map(([pattern, type]) => ({ pattern, type }));
  const q4km = concatBytes((await requantizeGguf(g, rules)).chunks);
  const q4kmFile = parseGguf(q4km, 'stories260K-Q4_K_M.gguf');
  const names = new Set(quantizable.map((t) => t.name));
  const llamaBytes = q4kmFile.tensors.filter((t) => names.has(t.name)).reduce((a, t) => a + t.nbytes, 0);
  const llamaTypes = new Map<string, number>();
  for (const t of q4kmFile.tensors)
    if (names.has(t.name)) llamaTypes.set(t.type.name, (llamaTypes.get(t.type.name) ?? 0) + 1);

  // the reference distributions (llama.cpp, F32, exact settings) and llama.cpp's Q4_K_M KL
  const tok = ggufModelSource(g).tokenizer;
  const windows = splitWindows(tok.encode(loadStoriesText().slice(0, 8000)), {
    windowTokens: 256,
    bos: tok.bos!,
  });
  // each matrix's damage on 2 short windows (the allocator's proxy), the plans' KL on every window
  const few = splitWindows(tok.encode(loadStoriesText().slice(0, 1200)), {
    windowTokens: 128,
    bos: tok.bos!,
  }).slice(0, 2);
  const exact = { kvCacheType: 'F32', flashAttention: false } as const;
  const llF32 = await openLlamaModel(f32, exact);
  const ref = await llF32.recordReference(windows);
  const refFew = await llF32.recordReference(few);
  await llF32.close();
  const llQ = await openLlamaModel(q4km, exact);
  const llamaKl = (await llQ.score(windows, { reference: ref })).klMean!;
  await llQ.close();

  // mixq plans: engine files of stories260K with a scheme per matrix
  const schemes = [
    intScheme(8, 'pc'),
    intScheme(5, 32),
    intScheme(4, 32),
    intScheme(3, 32),
    intScheme(2, 32),
    NVFP4_RTN,
  ];
  const floats = new Map<string, Float32Array>();
  for (const t of g.tensors)
    floats.set(t.name, new Float32Array((await g.readTensorBytes(t)).slice().buffer));
  const engineFile = (plan: ReadonlyMap<string, Scheme>) =>
    concatBytes(
      writeEngineFile(
        g.kv,
        g.tensors.map((t) => {
          const shape = [...t.ne].reverse();
          const s = plan.get(t.name);
          return s
            ? {
                kind: 'quantize' as const,
                name: t.name,
                shape: [shape[0]!, shape[1]!] as [number, number],
                values: floats.get(t.name)!,
                quantizer: quantizerOf(s),
              }
            : {
                kind: 'float' as const,
                name: t.name,
                shape,
                dtype: 'F32' as const,
                data: new Uint8Array(floats.get(t.name)!.buffer),
              };
        }),
      ),
    );
  const engineOf = async (bytes: Uint8Array) =>
    loadEngineModel(
      kernels,
      engineFileSource(await readSafetensors(bytesSource(bytes, 'stories-mixq.safetensors'))),
    );
  const klOf = async (plan: ReadonlyMap<string, Scheme>, all: boolean) =>
    (
      await new EngineLm(await engineOf(engineFile(plan))).score(all ? windows : few, {
        reference: all ? ref : refFew,
      })
    ).klMean!;
  const weights: AllocWeight[] = [];
  for (const t of quantizable) {
    const L = rowLayout([t.ne[1]!, t.ne[0]!], 0);
    const candidates: AllocCandidate[] = [];
    for (const s of schemes) {
      try {
        candidates.push({
          scheme: schemeId(s),
          ...schemeCost(s, L),
          damage: await klOf(new Map([[t.name, s]]), false),
        });
      } catch {
        // a scheme the kernels cannot run on these rows
      }
    }
    weights.push({ name: t.name, elements: L.rows * L.cols, candidates });
  }
  const byId = new Map(schemes.map((s) => [schemeId(s), s] as const));
  const sweep = await paretoSweep({ weights, budget: { kind: 'bytes', bytes: 0 } }, { points: 24 });
  const front = sweep.points.map((p) => p.allocation);
  const planOf = (a: (typeof front)[number]) =>
    new Map(weights.map((w, i) => [w.name, byId.get(a.schemes[i]!)!] as const));
  let lo = 0;
  let hi = front.length - 1;
  let best: { a: (typeof front)[number]; kl: number } | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const kl = await klOf(planOf(front[mid]!), true);
    if (kl <= llamaKl) {
      best = { a: front[mid]!, kl };
      hi = mid - 1;
    } else lo = mid + 1;
  }
  if (!best) {
    console.log(
      `\nstories260K: no mixq plan up to ${front[front.length - 1]!.bytes} B reaches llama.cpp's Q4_K_M KL ${llamaKl.toExponential(2)}`,
    );
    return;
  }
  const mixBytes = engineFile(planOf(best.a));
  const mixTypes = new Map<string, number>();
  for (const s of best.a.schemes) mixTypes.set(s, (mixTypes.get(s) ?? 0) + 1);

  // decode speed, one thread: llama.cpp on its Q4_K_M, mixq's engine on its plan (and on the same Q4_K_M)
  const tmp = mkdtempSync(join(tmpdir(), 'mixq-stories-'));
  try {
    const q4kmPath = join(tmp, 'stories260K-Q4_K_M.gguf');
    writeFileSync(q4kmPath, q4km);
    const ll = await childLlama(
      q4kmPath,
      1,
      STORIES_DECODE,
      g.tensors.find((t) => t.name === 'token_embd.weight')!.ne[1],
    );
    const mine = measureDecode(await engineOf(mixBytes), {
      prompt: PROMPT,
      tokens: STORIES_DECODE,
      repeats: 3,
    });
    const sameFile = measureDecode(await loadEngineModel(kernels, ggufModelSource(q4kmFile)), {
      prompt: PROMPT,
      tokens: STORIES_DECODE,
      repeats: 3,
    });
    const list = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} x${n}`).join(', ');
    console.log(
      `\nstories260K at equal KL (KL to llama.cpp's F32 distributions over ${windows.length} windows of 256 tokens; decode ${STORIES_DECODE} tokens after ${PROMPT}, 1 thread)`,
    );
    printTable(
      ['plan', 'runtime', 'matrix bytes', 'KL', 'decode tok/s'],
      [
        [
          `llama.cpp Q4_K_M (${list(llamaTypes)})`,
          'llama.cpp',
          String(llamaBytes),
          llamaKl.toExponential(2),
          (1000 / ll.decodeMs).toFixed(0),
        ],
        [`the same file`, 'mixq engine', String(llamaBytes), '', (1000 / sameFile.msPerToken).toFixed(0)],
        [
          `mixq plan (${list(mixTypes)})`,
          'mixq engine',
          String(best.a.bytes),
          best.kl.toExponential(2),
          (1000 / mine.msPerToken).toFixed(0),
        ],
      ],
    );
    const faster =
      1000 / mine.msPerToken > 1000 / ll.decodeMs
        ? "mixq's plan in mixq's engine"
        : "llama.cpp's Q4_K_M in llama.cpp";
    console.log(
      `  mixq's plan is ${((100 * best.a.bytes) / llamaBytes).toFixed(0)}% of Q4_K_M's bytes at KL ${best.kl.toExponential(2)} <= ${llamaKl.toExponential(2)}; faster: ${faster} (${(ll.decodeMs / mine.msPerToken).toFixed(2)}x mixq / llama.cpp)`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await ref.close();
    await refFew.close();
  }
}

// ---------------------------------------------------------------------------------------------- main

export default async function engineBench(): Promise<void> {
  // MIXQ_ENGINE_BENCH=stories: only the stories260K equal-KL part (no 1B models)
  if (process.env.MIXQ_ENGINE_BENCH === 'stories') {
    console.log(`loadavg ${loadavg()}`);
    await storiesEqualKl();
    console.log(`loadavg ${loadavg()}`);
    return;
  }
  console.log(`loadavg ${loadavg()}   models in ${devModelsDir()}`);
  const models: { label: string; file: string }[] = [];
  for (const label of MODELS) models.push({ label, file: await syn1b(label) });
  const llama = await isLlamaCppAvailable();
  if (!llama) console.log('llama.cpp peer not available (npm install node-llama-cpp): mixq rows only');
  const rows: string[][] = [];
  const splits: string[] = [];
  for (const { label, file } of models) {
    const size = statSync(file).size;
    for (const threads of THREADS) {
      // REPEAT alternating pairs (mixq, llama.cpp), each side's best decode and best prefill: one sample
      // of 16 tokens moved up to 25% between runs on this shared machine
      const as: (ChildResult | string)[] = [];
      const bs: (ChildResult | string)[] = [];
      for (let i = 0; i < REPEAT; i++) {
        as.push(runChild('mixq', file, threads));
        bs.push(llama ? runChild('llama', file, threads) : 'n/a');
      }
      const ok = (x: ChildResult | string): x is ChildResult => typeof x !== 'string';
      const [a, b] = [bestOf(as), bestOf(bs)];
      const tps = (ms: number) => (1000 / ms).toFixed(2);
      rows.push([
        label,
        mib(size),
        String(threads),
        ok(a) ? tps(a.decodeMs) : a,
        ok(b) ? tps(b.decodeMs) : String(b),
        ok(a) && ok(b) ? (b.decodeMs / a.decodeMs).toFixed(2) : '-',
        ok(a) ? tps(a.prefillMs) : '-',
        ok(b) ? tps(b.prefillMs) : '-',
        ok(a) && ok(b) ? (b.prefillMs / a.prefillMs).toFixed(2) : '-',
        ok(a) ? `${a.loadSeconds.toFixed(1)} s` : '-',
        ok(b) ? `${b.loadSeconds.toFixed(1)} s` : '-',
        ok(a) ? `${mib(a.rssLoad)} / ${mib(a.rssEnd)}` : '-',
        ok(a) ? `${mib(a.tensorBytes ?? 0)} + ${mib(a.kvBytes ?? 0)}` : '-',
        ok(b) ? `${mib(b.rssLoad)} / ${mib(b.rssEnd)}` : '-',
      ]);
      if (ok(a) && a.split)
        splits.push(
          `  ${label} ${threads}T: ${Object.entries(a.split)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', ')} ms/token`,
        );
    }
  }
  console.log(
    `\ndecode ${DECODE} tokens after a ${PROMPT}-token prefill (tokens/s, best of ${REPEAT} alternating runs each; ratio = mixq / llama.cpp)`,
  );
  printTable(
    [
      'model',
      'MiB',
      'thr',
      'mixq dec',
      'llama dec',
      'ratio',
      'mixq pre',
      'llama pre',
      'ratio',
      'mixq load',
      'llama load',
      'mixq RSS MiB load/end',
      'tensors + KV MiB',
      'llama RSS load/end',
    ],
    rows,
  );
  console.log('where a mixq decode token goes:');
  for (const s of splits) console.log(s);

  const onnx = await ensureOrtModel();
  const o = runChild('ort', onnx, 1);
  console.log(
    typeof o === 'string'
      ? `onnxruntime: ${o}`
      : `\nonnxruntime MatMulNBits 4-bit g32, the same matrices (${mib(statSync(onnx).size)} MiB file): ` +
          `session RSS ${mib(o.rssLoad)} MiB after load, ${mib(o.rssEnd)} MiB after a run (above the process's own)`,
  );

  const cost = spawnSync(
    process.execPath,
    ['--experimental-wasm-relaxed-simd', '--import', 'tsx', HERE, '--engine-bench-child', 'cost', '-', '1'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const table = JSON.parse(cost.stdout.trim().split('\n').pop() ?? '[]') as CostEntry[];
  console.log(
    '\ncost table (measureCostTable, 1 thread, weights rotated over 64 MiB): ps per weight, decode',
  );
  const byFormat = new Map<string, string[]>();
  for (const e of table) {
    const r = byFormat.get(e.format) ?? [];
    r.push(`${(e.secondsPerWeight * 1e12).toFixed(0)} (${(e.bytesPerSecond / 1e9).toFixed(1)} GB/s)`);
    byFormat.set(e.format, r);
  }
  printTable(
    ['format', '2048x2048', '5632x2048', '2048x5632'],
    [...byFormat].map(([f, r]) => [f, ...r]),
  );
  if (llama) await storiesEqualKl();
  else console.log('\nstories260K at equal KL: llama.cpp peer not available');
  console.log(`loadavg ${loadavg()}`);
}

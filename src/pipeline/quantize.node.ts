/**
 * The main job, `mixq quantize`: calibrate -> sensitivity -> budgeted allocation -> evaluate (plans,
 * uniform baselines, a llama.cpp-style rule mix) -> plan + report (+ the deployable ONNX model).
 *
 * Everything measured is measured with onnxruntime on the task's evaluation data (tasks.node.ts), with the
 * model rewritten once so that weights are inputs (src/runtime/weights.node.ts): a plan, a baseline and
 * fp32 are the same session fed different weights. The ONNX file written at the end is evaluated again as a
 * file, so the report shows that the deployed model scores what the simulation scored.
 *
 * Bits per weight and sizes count the quantized weights only (codes + scales + zero points); the float
 * parts (norms, biases, embeddings without an input activation) are reported separately.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  type AllocBudget,
  type Allocation,
  type AllocationProblem,
  type AllocWeight,
  exactBitsCapacity,
  uniformAllocations,
} from '../analysis/allocate/problem.ts';
import { solveGreedy } from '../analysis/allocate/greedy.ts';
import { solveMilp } from '../analysis/allocate/milp.ts';
import { paretoSweep } from '../analysis/allocate/pareto.ts';
import {
  GGML_SHAPE_FALLBACK,
  Q4_K_M_SCHEMES,
  ruleCategories,
  ruleMix,
} from '../analysis/allocate/rule-mix.ts';
import {
  candidateCost,
  candidatesById,
  DEFAULT_CANDIDATE_IDS,
  defaultCandidates,
  ggmlCandidates,
  type SensitivityCandidate,
} from '../analysis/sensitivity/candidates.ts';
import { fromRows, type RowLayout, toRows } from '../analysis/sensitivity/layout.ts';
import type { LayerStats } from '../analysis/sensitivity/proxies.ts';
import { applicable, gptqCandidate, quantizeCandidate } from '../analysis/sensitivity/quantize.ts';
import { type DamageSource, proxyCorrelation, toAllocWeights } from '../analysis/sensitivity/table.ts';
import { getBlockType } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import { opsetVersion } from '../export/onnx/build.ts';
import { canUpgradeOpset } from '../export/onnx/opset.ts';
import { inlineExternalData } from '../export/onnx/inline.ts';
import {
  type ExportedWeight,
  type PrequantizedBlocks,
  quantizeOnnxWeights,
  type WeightAssignment,
} from '../export/onnx/quantize.ts';
import type { TensorInfo } from '../graph/model.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import { gpt2TensorPlan } from '../io/gguf/gpt2.ts';
import { exportGptGguf, readGptConfig } from '../io/gguf/gpt2.node.ts';
import { readGguf } from '../io/gguf/read.ts';
import { concatBytes } from '../io/gguf/write.ts';
import { bytesSource } from '../io/source.ts';
import {
  type QuantizedSafetensorsInput,
  readQuantizedSafetensors,
  writeQuantizedSafetensors,
} from '../export/safetensors.ts';
import { getFormat } from '../formats/index.ts';
import { GPT_DIR } from '../runtime/bundled.node.ts';
import { onnxModelView } from '../io/onnx/view.ts';
import { writeOnnx } from '../io/onnx/read.ts';
import { validatePlan } from '../plan/parse.ts';
import {
  PLAN_SCHEMA_VERSION,
  type Plan,
  type PlanBudget,
  type PlanWeight,
  planTotals,
} from '../plan/schema.ts';
import { better, equalSizeBudget } from '../report/summary.ts';
import type {
  ReportData,
  ReportMetric,
  ReportPoint,
  ReportSelection,
  ReportSeries,
} from '../report/types.ts';
import { withEvalRunner } from '../runtime/session-pool.node.ts';
import { analyzeLoadedModel, type SensitivityAnalysis } from '../runtime/sensitivity.node.ts';
import { variantEvaluator } from '../runtime/variants.node.ts';
import { loadWeightFedModel, type WeightFedModel } from '../runtime/weights.node.ts';
import {
  DEPLOY_CANDIDATE_IDS,
  hasScaleSearch,
  outputLayerSchemes,
  prequantizedBlocks,
  onnxAssignment,
  onnxStorage,
  planScheme,
  representable,
  rtnWithBlocks,
} from './schemes.ts';
import { pairedChangeInterval } from '../runtime/metrics.ts';
import { type ChoiceMetric, type QuantTask, resolveTask, type TaskScore } from './tasks.node.ts';
import { biasCorrector, readBiases } from './bias.node.ts';
import { listWeights } from '../io/onnx/weights.ts';
import { setTensorFloat32 } from '../io/onnx/tensor-data.ts';
import { solverRecord } from '../plan/from-allocation.ts';

export type QuantizeBudget = PlanBudget;

export interface QuantizeOptions {
  /** 'gpt' (default), 'ocr' or a path to an .onnx model. */
  readonly model?: string;
  readonly budget: QuantizeBudget;
  /**
   * 'onnx' (default): the ONNX model is built; every candidate format (int2..8, FP8, MXFP4, NVFP4, NF4)
   * with onnxruntime's quantized operators where they take it, else bit-plane packed (decoded at load);
   * 'none': the same formats, simulated only.
   */
  readonly emit?: QuantizeEmit;
  /**
   * ONNX output with onnxruntime's quantized operators only (MatMulNBits, DequantizeLinear): weights stay
   * low-bit in memory at run time, formats are int2/4/8 and FP8. Default false.
   */
  readonly nativeOnly?: boolean;
  /** Candidate ids (src/analysis/sensitivity/candidates.ts) instead of the default set of `emit`. */
  readonly candidates?: readonly string[];
  /** Damage the allocator minimises: the noise-calibrated proxy (default) or the measured KL ('kl'). */
  readonly damage?: 'noiseCalibrated' | 'kl';
  /** Budgets (bits per weight) of the Pareto sweep drawn in the report. Default 3, 3.5, 4, 5. */
  readonly sweep?: readonly number[];
  /**
   * At every budget, score the solver's plan and the uniform plans of the candidate set within 10% below
   * the budget on the task's validation split and keep the best, so that a plan never measures worse
   * than one scheme everywhere at its size would. Default true; false keeps the solver's plan.
   */
  readonly select?: boolean;
  /** Evaluate uniform baselines and the rule mix, and mixq at each baseline's size. Default true. */
  readonly baselines?: boolean;
  /** Task evaluation size (see tasks.node.ts). */
  readonly evalSize?: number;
  /** Task validation size (see tasks.node.ts). */
  readonly validationSize?: number;
  /** Task calibration size (see tasks.node.ts). */
  readonly calibrationSize?: number;
  /** Build the output file (and for ONNX evaluate it). Default true. */
  readonly export?: boolean;
  /** HiGHS time limit per solve, seconds (default 20). */
  readonly timeLimitSec?: number;
  /**
   * Correct the float biases of quantized layers for the mean output shift (Q - W) E[x] on the calibration
   * data (src/quant/algorithms/bias-correction.ts), in every evaluation and in the ONNX file. Default on
   * for 'onnx' and 'none'; GGUF and safetensors outputs do not carry corrected biases (an error if asked).
   */
  readonly biasCorrection?: boolean;
  readonly onProgress?: (step: string, done: number, total: number) => void;
  readonly log?: (line: string) => void;
}

/** What `mixq quantize` writes: the model format, which also decides the candidate schemes. */
export type QuantizeEmit = 'onnx' | 'gguf' | 'safetensors' | 'none';

const EMIT_NOTE: Record<QuantizeEmit, string> = {
  onnx: "onnxruntime's quantized operators (MatMulNBits, DequantizeLinear) or bit-plane packed weights, sizes are the file's bytes",
  gguf: "ggml block types (llama.cpp's quantizers with the calibration importance matrix)",
  safetensors: 'every RTN element format, stored packed with a mixq quantization_config',
  none: 'every RTN element format and GPTQ at 2-4 bits, simulated only',
};

export interface QuantizeOutput {
  readonly format: Exclude<QuantizeEmit, 'none'>;
  readonly fileName: string;
  /** The file, in order. */
  readonly chunks: readonly Uint8Array[];
  readonly size: number;
  /** ONNX: the stored weights. */
  readonly weights?: readonly ExportedWeight[];
  readonly notes?: readonly string[];
  /** ONNX: the task metric of the file run by onnxruntime. */
  readonly metric?: number;
  /** How the written file was checked against the simulation. */
  readonly check: string;
}

export interface Comparison {
  readonly baseline: string;
  readonly bytes: number;
  readonly bitsPerWeight: number;
  readonly baselineMetric: number;
  /** mixq's plan at a size budget equal to the baseline's bytes. */
  readonly mixqMetric: number;
  readonly mixqBytes: number;
  /** mixq is better (strictly) on the metric. */
  readonly better: boolean;
  /** mixq's plan is the baseline's own (validation kept the uniform plan of the baseline's scheme). */
  readonly samePlan?: boolean;
  /**
   * 95% paired-bootstrap interval of mixq's metric minus the baseline's (same lines / windows): when it
   * holds 0 the two differ by less than the evaluation data can tell.
   */
  readonly differenceCi?: readonly [number, number];
}

export interface QuantizeResult {
  readonly task: QuantTask;
  readonly plan: Plan;
  readonly report: ReportData;
  /** Metric of the fp32 model and of the chosen plan (simulated). */
  readonly fp32: number;
  readonly metric: number;
  readonly comparisons: readonly Comparison[];
  /** The output model (unless emit 'none'). */
  readonly output?: QuantizeOutput;
  readonly sensitivity: SensitivityAnalysis;
  /** Elements and fp32 bytes of the weights left in float. */
  readonly floatElements: number;
}

interface Weight {
  readonly name: string;
  readonly L: RowLayout;
  readonly stats: LayerStats;
  readonly consumer: string;
  readonly layer?: number;
  readonly role?: string;
  readonly elements: number;
}

/** GPTQ candidates added to the simulated set (emit none); safetensors stores RTN only. */
const SIM_GPTQ_IDS: readonly string[] = [
  'int4-g128-gptq',
  'int4-g32-gptq',
  'int3-g32-gptq',
  'int2-g32-gptq',
  // clipping search (RTN and GPTQ): PP-OCRv4, every weight at int4 g32 RTN: CER 1.57% -> 1.21%
  'int5-g32-rtn-mse',
  'int4-pc-rtn-mse',
  'int4-g32-rtn-mse',
  'int3-g32-rtn-mse',
  'int2-g32-rtn-mse',
  'int3-g32-gptq-mse',
  'int2-g32-gptq-mse',
];

const UNIFORM_BASELINES: readonly { label: string; id: string }[] = [
  { label: 'INT8 per-channel', id: 'int8-pc-rtn' },
  { label: 'FP8 E4M3', id: 'fp8_e4m3-pc-rtn' },
  { label: 'INT4 RTN g128', id: 'int4-g128-rtn' },
  { label: 'INT4 GPTQ g128', id: 'int4-g128-gptq' },
  { label: 'INT4 RTN g32', id: 'int4-g32-rtn' },
  { label: 'INT4 GPTQ g32', id: 'int4-g32-gptq' },
  { label: 'NVFP4', id: 'nvfp4-rtn' },
  { label: 'MXFP4', id: 'mxfp4-rtn' },
];

/** The allocation for one budget: HiGHS, or greedy when HiGHS fails. */
export async function allocate(problem: AllocationProblem, timeLimitSec: number): Promise<Allocation> {
  try {
    return await solveMilp(problem, { timeLimitSec });
  } catch (e) {
    if (e instanceof MixqError && /infeasible|below the smallest/i.test(e.message)) throw e;
    return solveGreedy(problem);
  }
}

/** Runs the whole job. Writes nothing: the caller (the CLI) writes the returned files. */
export async function quantizeModel(opts: QuantizeOptions): Promise<QuantizeResult> {
  const log = opts.log ?? (() => {});
  const progress = opts.onProgress ?? (() => {});
  const timings: { step: string; ms: number }[] = [];
  let t0 = performance.now();
  const lap = (step: string) => {
    const t = performance.now();
    timings.push({ step, ms: t - t0 });
    t0 = t;
  };
  const task = resolveTask(opts.model ?? 'gpt', {
    ...(opts.evalSize ? { evalSize: opts.evalSize } : {}),
    ...(opts.validationSize ? { validationSize: opts.validationSize } : {}),
    ...(opts.calibrationSize ? { calibrationSize: opts.calibrationSize } : {}),
  });
  const target = opts.emit ?? 'onnx';
  if (target === 'gguf' && task.name !== 'gpt')
    throw new MixqError(
      `GGUF output is built for the bundled GPT (llama.cpp gpt2); ${task.name} is not one`,
      {
        source: '--emit',
        expected: "onnx, safetensors or none (GGUF inputs: 'mixq requantize')",
      },
    );
  const damage: DamageSource = opts.damage ?? 'noiseCalibrated';
  if (opts.biasCorrection && (target === 'gguf' || target === 'safetensors'))
    throw new MixqError(`bias correction is not written to ${target} outputs`, {
      source: '--bias-correction',
      expected: '--emit onnx or none (or --no-bias-correction)',
    });
  const useBias = opts.biasCorrection ?? (target === 'onnx' || target === 'none');
  if (opts.budget.kind === 'maxLoss' && !task.metric.relative)
    throw new MixqError(`--max-loss needs a task metric with a nonzero fp32 value; ${task.name} has none`, {
      source: 'budget',
      expected: '--bits or --size for this model (or the bundled gpt / ocr)',
    });

  // ---- load + calibrate + sensitivity
  const model = await loadWeightFedModel(task.modelPath, { captureInputs: true });
  const view = await modelInfo(task.modelPath);
  const axes = new Map<string, number>();
  for (const [name, t] of view.tensors) if (t.outputAxis !== undefined) axes.set(name, t.outputAxis);
  lap('load');
  const nativeOnly = target === 'onnx' && opts.nativeOnly === true;
  const simulatedIds = [...DEFAULT_CANDIDATE_IDS, ...SIM_GPTQ_IDS];
  const candidates = opts.candidates
    ? candidatesById(opts.candidates)
    : nativeOnly
      ? candidatesById(DEPLOY_CANDIDATE_IDS)
      : target === 'onnx'
        ? // every simulated format (packed where no native operator takes it) and the native int4 g128 ones
          candidatesById([...new Set([...simulatedIds, ...DEPLOY_CANDIDATE_IDS])])
        : target === 'gguf'
          ? ggmlCandidates()
          : target === 'none'
            ? candidatesById(simulatedIds)
            : defaultCandidates();
  if (target === 'safetensors' && candidates.some((c) => c.algorithm !== 'rtn' || c.blockType || c.salient))
    throw new MixqError('safetensors output stores RTN element formats only', {
      source: '--candidates',
      expected: 'RTN candidates (no gptq / awq / ggml ids) with --emit safetensors',
    });
  if (target === 'gguf' && candidates.some((c) => !c.blockType))
    throw new MixqError('GGUF output stores ggml block types only', {
      source: '--candidates',
      expected: 'ggml-* candidate ids with --emit gguf',
    });
  const found = useBias
    ? await readBiases(
        task.modelPath,
        model.weights.map((w) => w.name),
      )
    : undefined;
  const biasCorrected = found ? new Set(found.names.keys()) : undefined;
  const analysis = await analyzeLoadedModel(model, axes, {
    probe: (m) => task.probe(m),
    candidates,
    ...(biasCorrected ? { biasCorrected } : {}),
    measure: damage === 'kl',
    modelName: task.displayName,
    onProgress: (d, t) => progress('sensitivity', d, t),
  });
  lap('calibration + sensitivity');
  const byId = new Map(candidates.map((c) => [c.id, c]));
  const weights: Weight[] = analysis.table.weights.map((w) => {
    const fed = model.weights.find((x) => x.name === w.name)!;
    const info = view.tensors.get(w.name);
    return {
      name: w.name,
      L: analysis.layouts.get(w.name)!,
      stats: analysis.stats.get(w.name)!,
      consumer: fed.consumers[0] ?? '',
      ...(info?.layer !== undefined ? { layer: info.layer } : {}),
      ...(info?.role !== undefined ? { role: info.role } : {}),
      elements: w.elements,
    };
  });
  const wByName = new Map(weights.map((w) => [w.name, w]));
  // The candidates each weight can take: representable in its tensor layout and, for ONNX output, stored
  // by a native operator or packed, whose exact bytes (MatMulNBits pads blocks and zero-point rows) replace the
  // format's own cost.
  // the output layer: no clipping search (outputLayerSchemes)
  const cats = ruleCategories(weights.map((w) => ({ name: w.name, ...(w.role ? { role: w.role } : {}) })));
  const outputLayer = new Set(weights.filter((_, i) => cats[i] === 'output').map((w) => w.name));
  const allocWeights: AllocWeight[] = toAllocWeights(analysis.table, damage).map((aw) => {
    const w = wByName.get(aw.name)!;
    const cands = aw.candidates.flatMap((c) => {
      const cand = byId.get(c.scheme)!;
      if (!representable(cand, w.L)) return [];
      if (target !== 'onnx') return [c];
      const a = onnxAssignment(planScheme(cand, w.L), w.L, w.consumer, view.opset, nativeOnly);
      if (!a) return [];
      const bytes = onnxStorage(a, w.L);
      return [{ ...c, bytes, bits: 8 * bytes }];
    });
    if (cands.length === 0)
      throw new MixqError(`no candidate scheme can store weight '${aw.name}' for target ${target}`, {
        field: aw.name,
        expected: '--emit none / safetensors, or other --candidates',
      });
    const allowed = outputLayer.has(aw.name) ? outputLayerSchemes(cands, byId) : undefined;
    if (allowed) log(`output layer ${aw.name}: candidates without the clipping search only`);
    return { ...aw, candidates: cands, ...(allowed ? { allowed } : {}) };
  });
  const bias = found
    ? biasCorrector(found, new Map(weights.map((w) => [w.name, w.L] as const)), analysis.stats, (n) =>
        model.original(n),
      )
    : undefined;
  if (bias)
    log(
      `bias correction: ${bias.biases.size} of ${weights.length} quantized layers have a float bias to correct`,
    );
  const withBias = (rep: ReadonlyMap<string, Float32Array>): ReadonlyMap<string, Float32Array> =>
    bias ? new Map([...rep, ...bias.corrections(rep)]) : rep;
  const elements = allocWeights.reduce((s, w) => s + w.elements, 0);
  const floatElements = model.weights.reduce((s, w) => s + (wByName.has(w.name) ? 0 : w.elementCount), 0);

  // ---- simulation cache: dequantized weight per (weight, candidate)
  const cache = new Map<string, Float32Array>();
  const blocks = new Map<string, PrequantizedBlocks>(); // GPTQ codes for export, same keys
  const simulate = (name: string, c: SensitivityCandidate): Float32Array => {
    const key = `${name}\u0000${c.id}`;
    let q = cache.get(key);
    if (!q) {
      const w = wByName.get(name)!;
      const Wr = toRows(model.original(name), w.L);
      const cc = applicable(c, w.L, w.stats) ? c : rtnOf(c);
      if (cc.algorithm === 'gptq') {
        const g = gptqCandidate(Wr, w.L, cc, w.stats);
        if (target === 'onnx' && !g.perm) blocks.set(key, prequantizedBlocks(g, cc.quantizer));
        q = fromRows(g.Q, w.L);
      } else if (target === 'onnx' && hasScaleSearch(cc)) {
        // the exporter quantizes min-max itself; searched ranges are passed as codes
        const r = rtnWithBlocks(Wr, w.L, cc);
        blocks.set(key, r.blocks);
        q = fromRows(r.Q, w.L);
      } else q = fromRows(quantizeCandidate(Wr, w.L, cc, w.stats), w.L);
      cache.set(key, q);
    }
    return q;
  };
  // Evaluations run on plain sessions of the rewritten file (faster than weights as inputs).
  const variants = await variantEvaluator(task.modelPath);
  let evaluations = 0;
  let evalMs = 0;
  const scoreReplacements = async (rep: ReadonlyMap<string, Float32Array>): Promise<TaskScore> => {
    const t = performance.now();
    const m = await variants.run(withBias(rep), (runner) => task.score(runner));
    evaluations++;
    evalMs += performance.now() - t;
    return m;
  };
  const fp32Score = await scoreReplacements(new Map());
  const fp32 = fp32Score.value;
  // the 95% paired-bootstrap interval of a model's change from fp32 (same lines / windows)
  const changeCi = (s: TaskScore): { metricChangeCi?: [number, number] } =>
    s.items && fp32Score.items ? { metricChangeCi: pairedChangeInterval(fp32Score.items, s.items) } : {};
  lap('fp32 evaluation');
  const reportMetric: ReportMetric = {
    name: task.metric.name,
    fp32,
    direction: task.metric.direction,
    ...(task.metric.unit ? { unit: task.metric.unit } : {}),
  };
  log(`fp32 ${task.metric.name}: ${fmt(fp32)}${task.metric.unit ?? ''} (${task.evaluation})`);

  const problemAt = (budget: AllocationProblem['budget']): AllocationProblem => ({
    weights: allocWeights,
    budget,
  });
  const timeLimitSec = opts.timeLimitSec ?? 20;
  const mixqPoints: ReportPoint[] = [];
  const evaluated = new Map<string, TaskScore>(); // allocation key -> score
  const keyOf = (a: Allocation) => a.schemes.join('|');
  // the simulated weights of an allocation
  const replacementsOf = (a: Allocation) =>
    new Map(allocWeights.map((w, i) => [w.name, simulate(w.name, byId.get(a.schemes[i]!)!)] as const));
  const scoreCached = async (a: Allocation): Promise<TaskScore> => {
    const key = keyOf(a);
    let m = evaluated.get(key);
    if (m === undefined) {
      m = await scoreReplacements(replacementsOf(a));
      evaluated.set(key, m);
    }
    return m;
  };
  const evalCached = async (a: Allocation): Promise<number> => (await scoreCached(a)).value;
  // the change interval of an allocation already evaluated (every plan is, before it is reported)
  const allocationCi = (a: Allocation) => {
    const sc = evaluated.get(keyOf(a));
    return sc ? changeCi(sc) : {};
  };
  const selectionOf = (a: Allocation): { selection?: ReportSelection } => {
    const sel = selections.get(keyOf(a));
    return sel ? { selection: sel } : {};
  };
  const addPoint = (a: Allocation, metric: number, budget: string) =>
    mixqPoints.push({
      ...allocationCi(a),
      ...selectionOf(a),
      bitsPerWeight: a.bitsPerWeight,
      bytes: a.bytes,
      metric,
      budget,
      predictedDamage: a.damage,
    });

  // ---- the plan kept at a budget: the solver's, or an alternative that scores better on validation
  const select = opts.select ?? true;
  // what ranks plans on the validation split: the task's choice metric, else the task metric there
  const choice: ChoiceMetric = task.choice ?? {
    name: `${task.metric.name} on validation`,
    score: async (r) => (await task.validate(r)).value,
  };
  const choiceBetter = (a: number, b: number) => (task.choice ? a < b : better(reportMetric, a, b));
  const validated = new Map<string, number>(); // 'choice' | 'task', allocation key -> validation value
  const validateAlloc = async (a: Allocation | 'fp32', what: 'choice' | 'task'): Promise<number> => {
    const key = `${what}\u0000${a === 'fp32' ? '' : keyOf(a)}`;
    const known = validated.get(key);
    if (known !== undefined) return known;
    const t = performance.now();
    const rep = withBias(a === 'fp32' ? new Map() : replacementsOf(a));
    const m = await variants.run(rep, async (r) =>
      what === 'choice' ? choice.score(r) : (await task.validate(r)).value,
    );
    evaluations++;
    evalMs += performance.now() - t;
    validated.set(key, m);
    return m;
  };
  const uniforms = uniformAllocations(problemAt({ kind: 'bytes', bytes: Number.MAX_SAFE_INTEGER }));
  const costOf = (a: Allocation, b: AllocBudget) => (b.kind === 'bytes' ? a.bytes : a.bits);
  const capacityOf = (b: AllocBudget) => (b.kind === 'bytes' ? b.bytes : exactBitsCapacity(b.bits, elements));
  const selections = new Map<string, ReportSelection>(); // allocation key -> how it was chosen
  /** The solver's plan at `b`, or the alternative with the best validation metric. */
  const chooseAt = async (proxy: Allocation, b: AllocBudget): Promise<Allocation> => {
    if (!select) return proxy;
    const cap = capacityOf(b);
    const tried: { label: string; a: Allocation }[] = [{ label: 'proxy', a: proxy }];
    const fitting = uniforms.filter((u) => costOf(u, b) <= cap && costOf(u, b) >= 0.9 * cap);
    for (const u of fitting.slice(-2)) tried.push({ label: `uniform ${u.schemes[0]}`, a: u });
    const unique: typeof tried = [];
    for (const t of tried) if (!unique.some((u) => keyOf(u.a) === keyOf(t.a))) unique.push(t);
    if (unique.length === 1) return proxy;
    let best = unique[0]!;
    let bestM = await validateAlloc(best.a, 'choice');
    const scored = [{ ...best, m: bestM }];
    for (const t of unique.slice(1)) {
      const m = await validateAlloc(t.a, 'choice');
      scored.push({ ...t, m });
      if (choiceBetter(m, bestM)) ({ best, bestM } = { best: t, bestM: m });
    }
    selections.set(keyOf(best.a), {
      chosen: best.label,
      metric: choice.name,
      ...(task.choice || !task.metric.unit ? {} : { unit: task.metric.unit }),
      tried: scored.map((t) => ({
        label: t.label,
        bitsPerWeight: t.a.bitsPerWeight,
        bytes: t.a.bytes,
        validation: t.m,
      })),
    });
    return best.a;
  };

  // ---- Pareto sweep over bits-per-weight budgets
  const sweep = opts.sweep ?? [3, 3.5, 4, 5];
  const pareto = await paretoSweep(problemAt({ kind: 'bitsPerWeight', bits: 8 }), {
    budgets: sweep,
    timeLimitSec,
  });
  let done = 0;
  const sweepPlans = new Map<number, Allocation>();
  for (const p of pareto.points) {
    progress('sweep', done++, pareto.points.length);
    const a = await chooseAt(p.allocation, { kind: 'bitsPerWeight', bits: p.budget });
    sweepPlans.set(p.budget, a);
    const m = await evalCached(a);
    addPoint(a, m, `${p.budget} b/w`);
    log(`mixq at ${p.budget} b/w: ${task.metric.name} ${fmt(m)}`);
  }
  for (const b of pareto.infeasibleBudgets)
    log(`budget ${b} b/w is below the smallest plan for --emit ${target}`);
  lap('pareto sweep');

  // ---- the chosen plan
  let chosen: Allocation;
  let chosenMetric: number;
  const budget = opts.budget;
  if (budget.kind === 'maxLoss') ({ chosen, chosenMetric } = await searchMaxLoss(budget.relative));
  else {
    const b: AllocBudget = budget.kind === 'bytes' ? { kind: 'bytes', bytes: budget.bytes } : budget;
    chosen =
      (budget.kind === 'bitsPerWeight' ? sweepPlans.get(budget.bits) : undefined) ??
      (await chooseAt(await allocate(problemAt(b), timeLimitSec), b));
    chosenMetric = await evalCached(chosen);
    // a --bits budget that is also a sweep point is already on the curve
    if (!(budget.kind === 'bitsPerWeight' && sweep.includes(budget.bits)))
      addPoint(chosen, chosenMetric, budgetLabel(budget));
  }
  lap('allocation');

  async function searchMaxLoss(relative: number): Promise<{ chosen: Allocation; chosenMetric: number }> {
    // The real metric, not the proxy: bisect over the predicted-damage frontier with evaluations on the
    // validation split (the evaluation split only reports the plan found, so the target is not checked
    // on the numbers it is reported with).
    const front = await paretoSweep(problemAt({ kind: 'bitsPerWeight', bits: 8 }), {
      points: 24,
      timeLimitSec,
    });
    const allocs = front.points.map((p) => p.allocation);
    const fp32Val = await validateAlloc('fp32', 'task');
    const within = (m: number, ref: number) =>
      task.metric.direction === 'lower' ? m <= ref * (1 + relative) : m >= ref * (1 - relative);
    const ok = (m: number) => within(m, fp32Val);
    let lo = 0;
    let hi = allocs.length - 1;
    let best: Allocation | undefined;
    const tried: ReportSelection['tried'][number][] = [];
    const label = (a: Allocation) => `frontier ${a.bitsPerWeight.toFixed(2)} b/w`;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const a = allocs[mid]!;
      const m = await validateAlloc(a, 'task');
      tried.push({ label: label(a), bitsPerWeight: a.bitsPerWeight, bytes: a.bytes, validation: m });
      log(
        `max-loss search: ${a.bitsPerWeight.toFixed(3)} b/w -> validation ${fmt(m)} (fp32 ${fmt(fp32Val)}, ${ok(m) ? 'within' : 'outside'} target)`,
      );
      if (ok(m)) {
        best = a;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    if (!best)
      throw new MixqError(
        `no plan up to ${allocs[allocs.length - 1]!.bitsPerWeight.toFixed(2)} b/w stays within ${100 * relative}% of fp32 on the validation split`,
        {
          source: 'budget',
          expected: 'a larger --max-loss, or --emit none for more formats',
        },
      );
    selections.set(keyOf(best), {
      chosen: label(best),
      metric: `${task.metric.name} on validation`,
      ...(task.metric.unit ? { unit: task.metric.unit } : {}),
      tried,
      fp32: fp32Val,
    });
    const chosenMetric = await evalCached(best);
    addPoint(best, chosenMetric, budgetLabel(opts.budget));
    log(
      `max-loss plan: ${best.bitsPerWeight.toFixed(3)} b/w, ${task.metric.name} ${fmt(chosenMetric)} on the evaluation split (${within(chosenMetric, fp32) ? 'within' : 'OUTSIDE'} ${100 * relative}% of fp32 ${fmt(fp32)})`,
    );
    return { chosen: best, chosenMetric };
  }

  // ---- baselines and the equal-size comparison
  const series: ReportSeries[] = [];
  const comparisons: Comparison[] = [];
  if (opts.baselines ?? true) {
    const all = new Map(candidatesById(UNIFORM_BASELINES.map((b) => b.id)).map((c) => [c.id, c]));
    const jobs: {
      label: string;
      kind: 'uniform' | 'rule';
      /** The uniform baseline's candidate id. */
      id?: string;
      rep: Map<string, Float32Array>;
      bytes: number;
      bits: number;
    }[] = [];
    for (const b of UNIFORM_BASELINES) {
      const c = all.get(b.id)!;
      const rep = new Map<string, Float32Array>();
      let bytes = 0;
      let bits = 0;
      for (const w of weights) {
        rep.set(w.name, simulate(w.name, c));
        const cost = candidateCost(c, w.L.rows, w.L.cols);
        bytes += cost.bytes;
        bits += cost.bits;
      }
      jobs.push({ label: b.label, kind: 'uniform', id: b.id, rep, bytes, bits });
    }
    jobs.push({ label: 'Q4_K_M rule (ggml blocks)', kind: 'rule', ...ruleMixBaseline(weights, model) });
    log(`baseline weights quantized (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    let k = 0;
    for (const j of jobs) {
      progress('baselines', k++, jobs.length);
      const tj = performance.now();
      const jScore = await scoreReplacements(j.rep);
      const metric = jScore.value;
      log(
        `baseline ${j.label}: ${(j.bits / elements).toFixed(3)} b/w, ${task.metric.name} ${fmt(metric)} (${((performance.now() - tj) / 1000).toFixed(1)} s)`,
      );
      const bpw = j.bits / elements;
      series.push({
        name: j.label,
        kind: j.kind,
        points: [{ bitsPerWeight: bpw, bytes: j.bytes, metric, ...changeCi(jScore) }],
      });
      // mixq at the same size
      let a: Allocation;
      try {
        const b: AllocBudget = { kind: 'bytes', bytes: j.bytes };
        a = await chooseAt(await allocate(problemAt(b), timeLimitSec), b);
      } catch (e) {
        log(
          `no mixq plan fits ${j.label}'s ${j.bytes} bytes (${e instanceof Error ? e.message : String(e)})`,
        );
        continue;
      }
      const mScore = await scoreCached(a);
      const m = mScore.value;
      addPoint(a, m, equalSizeBudget(j.label));
      comparisons.push({
        ...(jScore.items && mScore.items
          ? { differenceCi: pairedChangeInterval(jScore.items, mScore.items) }
          : {}),
        baseline: j.label,
        bytes: j.bytes,
        bitsPerWeight: bpw,
        baselineMetric: metric,
        mixqMetric: m,
        mixqBytes: a.bytes,
        better: better(reportMetric, m, metric),
        ...(j.id !== undefined && a.solver === 'uniform' && a.schemes[0] === j.id ? { samePlan: true } : {}),
      });
    }
    lap('baselines');
    log(`${evaluations} evaluations so far, ${(evalMs / 1000).toFixed(0)} s in evaluation`);
  }
  mixqPoints.sort((a, b) => a.bytes - b.bytes);
  series.unshift({ name: 'mixq', kind: 'mixq', points: mixqPoints });

  // ---- plan
  const planWeights: PlanWeight[] = allocWeights.map((aw, i) => {
    const w = wByName.get(aw.name)!;
    const c = byId.get(chosen.schemes[i]!)!;
    const cand = aw.candidates.find((x) => x.scheme === c.id)!;
    const entry = analysis.table.weights
      .find((x) => x.name === aw.name)!
      .entries.find((e) => e.candidate === c.id);
    return {
      name: aw.name,
      shape: [...w.L.dims],
      scheme: planScheme(c, w.L),
      bitsPerWeight: (cand.bits ?? 8 * cand.bytes) / w.elements,
      bytes: cand.bytes,
      predictedDamage: cand.damage,
      ...(entry?.measured ? { measuredDamage: entry.measured.kl } : {}),
    };
  });
  const file = await fileIdentity(task.modelPath);
  const plan = validatePlan(
    {
      schemaVersion: PLAN_SCHEMA_VERSION,
      model: file,
      budget,
      objective: {
        damage: damage === 'kl' ? 'kl' : 'noise-calibrated-kl',
        metric: task.metric.name,
        calibration: { data: task.calibration, size: task.calibrationSize },
        ...(bias && bias.biases.size > 0 ? { biasCorrection: true } : {}),
      },
      weights: planWeights,
      totals: planTotals(planWeights),
      solver: solverRecord(chosen),
    },
    'quantize',
  );

  // ---- export
  let output: QuantizeOutput | undefined;
  if (target !== 'none' && (opts.export ?? true)) {
    if (target === 'onnx') {
      const pre = new Map<string, PrequantizedBlocks>();
      const sims = new Map<string, Float32Array>();
      for (const [i, aw] of allocWeights.entries()) {
        const c = byId.get(chosen.schemes[i]!)!;
        sims.set(aw.name, simulate(aw.name, c));
        const b = blocks.get(`${aw.name}\u0000${c.id}`);
        if (b) pre.set(aw.name, b);
      }
      const built = await exportOnnx(task.modelPath, plan, wByName, pre, view.opset, bias?.corrections(sims));
      const metric = await withEvalRunner(built.bytes, (r) => task.evaluate(r));
      output = {
        format: 'onnx',
        fileName: built.fileName,
        chunks: [built.bytes],
        size: built.bytes.length,
        weights: built.weights,
        notes: built.notes,
        metric,
        check: `run by onnxruntime: ${task.metric.name} ${fmt(metric)} (simulation ${fmt(chosenMetric)})`,
      };
    } else {
      const sims = replacementsOf(chosen);
      output =
        target === 'gguf'
          ? await exportGguf(plan, sims, analysis.stats)
          : await exportSafetensors(model, plan, sims);
    }
    lap(`export (${target})`);
  }

  const corr = (['noiseCalibrated', 'output', 'imatrix', 'weight'] as const)
    .map((p) => ({ p, c: proxyCorrelation(analysis.table, p) }))
    .filter((x) => x.c.pairs > 0 && damage === 'kl');
  const report: ReportData = {
    schemaVersion: 1,
    title: `mixq plan for ${task.displayName}`,
    model: { name: task.displayName, format: 'onnx', elements, fp32Bytes: 4 * elements },
    metric: reportMetric,
    budgets: [...sweep.map((b) => `${b} b/w`)],
    plan: {
      budget: budgetLabel(budget),
      weights: planWeights.length,
      elements,
      bytes: chosen.bytes,
      bitsPerWeight: chosen.bitsPerWeight,
      predictedDamage: chosen.damage,
      metric: chosenMetric,
      ...allocationCi(chosen),
      ...selectionOf(chosen),
      ...(select ? { validation: task.validation } : {}),
      solver: chosen.solver,
      solverStatus: chosen.status,
    },
    series,
    layers: planWeights.map((p) => {
      const w = wByName.get(p.name)!;
      return {
        name: p.name,
        ...(w.layer !== undefined ? { layer: w.layer } : {}),
        ...(w.role !== undefined ? { role: w.role } : {}),
        bitsPerWeight: p.bitsPerWeight,
        scheme: byId.get(chosen.schemes[allocWeights.findIndex((a) => a.name === p.name)]!)!.id,
        elements: w.elements,
        bytes: p.bytes,
      };
    }),
    sensitivity: {
      measure:
        damage === 'kl' ? 'KL divergence (measured, this weight alone)' : 'noise-calibrated KL (predicted)',
      candidates: candidates.map((c) => c.id),
      weights: analysis.table.weights.map((w) => {
        const info = wByName.get(w.name)!;
        return {
          name: w.name,
          ...(info.layer !== undefined ? { layer: info.layer } : {}),
          ...(info.role !== undefined ? { role: info.role } : {}),
          damage: candidates.map((c) => {
            const e = w.entries.find((x) => x.candidate === c.id);
            const v = e ? (damage === 'kl' ? e.measured?.kl : e.proxies.noiseCalibrated) : undefined;
            return v === undefined || !Number.isFinite(v) ? null : v;
          }),
        };
      }),
    },
    correlations: corr.map(({ p, c }) => ({
      proxy: p,
      model: task.displayName,
      spearman: c.overall,
      n: c.pairs,
    })),
    timings,
    generated: { at: new Date().toISOString(), by: 'mixq quantize' },
    notes: [
      `Calibration: ${task.calibration}. Evaluation: ${task.evaluation}.`,
      `Output ${target}: ${EMIT_NOTE[target]}; candidates ${candidates.map((c) => c.id).join(', ')}.`,
      `Sizes and bits per weight count the ${planWeights.length} quantized weights (${elements} elements, scales and zero points included); ${floatElements} elements stay in float.`,
      ...(output ? [`Output ${output.fileName} (${output.size} bytes): ${output.check}.`] : []),
    ],
  };
  return {
    task,
    plan,
    report,
    fp32,
    metric: chosenMetric,
    comparisons,
    ...(output ? { output } : {}),
    sensitivity: analysis,
    floatElements,
  };
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4);
}

function budgetLabel(b: QuantizeBudget): string {
  if (b.kind === 'bitsPerWeight') return `--bits ${b.bits}`;
  if (b.kind === 'bytes') return `--size ${b.bytes} B`;
  return `--max-loss ${100 * b.relative}%`;
}

/** The RTN twin of a GPTQ / AWQ candidate (used where the algorithm needs statistics it lacks). */
function rtnOf(c: SensitivityCandidate): SensitivityCandidate {
  const { salient: _, ...rest } = c;
  return { ...rest, id: `${c.scheme}-rtn`, algorithm: 'rtn' };
}

/**
 * llama.cpp's Q4_K_M rule on the model's weights, with ggml's own block quantizers (importance matrix =
 * the calibration E[x^2]) along each weight's reduction axis; K-quants fall back as llama.cpp does when a
 * row is not a multiple of 256, and weights whose rows are not a multiple of 32 stay at Q8_0's cost in
 * int8 per channel.
 */
function ruleMixBaseline(
  weights: readonly Weight[],
  model: WeightFedModel,
): { rep: Map<string, Float32Array>; bytes: number; bits: number } {
  const mix = ruleMix(
    weights.map((w) => ({
      name: w.name,
      ...(w.role ? { role: w.role } : {}),
      ...(w.layer !== undefined ? { layer: w.layer } : {}),
    })),
    Q4_K_M_SCHEMES,
  );
  const int8 = candidatesById(['int8-pc-rtn'])[0]!;
  const rep = new Map<string, Float32Array>();
  let bytes = 0;
  let bits = 0;
  for (const w of weights) {
    let type = mix.get(w.name)!;
    const cols = w.L.cols;
    if (cols % 256 !== 0) type = GGML_SHAPE_FALLBACK[type] ?? type;
    const bt = getBlockType(type.toLowerCase());
    const Wr = toRows(model.original(w.name), w.L);
    if (cols % bt.blockSize !== 0) {
      rep.set(w.name, fromRows(quantizeCandidate(Wr, w.L, int8), w.L));
      const c = candidateCost(int8, w.L.rows, cols);
      bytes += c.bytes;
      bits += c.bits;
      continue;
    }
    // importance per column (the column's input channel's E[x^2]); only for plain matrices / 1x1 kernels
    const imatrix = w.L.kernel === 1 && w.L.groups === 1 ? Float32Array.from(w.stats.meanSquare) : undefined;
    const enc = bt.encode(Wr, imatrix);
    rep.set(w.name, fromRows(bt.decode(enc, Wr.length), w.L));
    bytes += enc.length;
    bits += 8 * enc.length;
  }
  return { rep, bytes, bits };
}

/** What the pipeline reads from the model's graph view: its ai.onnx opset and every tensor's facts. */
export interface ModelInfo {
  /**
   * The ai.onnx opset the quantized file can have: the model's own, or 21 when its operators can be
   * converted exactly (canUpgradeOpset), which opens int4 and blocked DequantizeLinear.
   */
  readonly opset: number;
  /** Role, layer, consumers and output axis per tensor name. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
}

/** Reads the model once for its graph view (roles, layers, output axes, consumers) and opset. */
export async function modelInfo(path: string): Promise<ModelInfo> {
  const file = await readOnnxFile(path);
  try {
    const own = opsetVersion(file.proto, '') ?? 1;
    return {
      opset: canUpgradeOpset(file.proto, 21) ? Math.max(own, 21) : own,
      tensors: new Map(onnxModelView(file).tensors.map((t) => [t.name, t] as const)),
    };
  } finally {
    await file.close();
  }
}

/** The plan's identity of a model file: name, size and sha256. */
export async function fileIdentity(path: string): Promise<{ file: string; size: number; sha256: string }> {
  const data = await readFile(path);
  return { file: basename(path), size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

/** Builds the deployable ONNX model of a plan (every weight must map to a native operator or packed storage). */
export async function exportOnnx(
  modelPath: string,
  plan: Plan,
  layouts: ReadonlyMap<string, { L: RowLayout; consumer: string }>,
  quantized: ReadonlyMap<string, PrequantizedBlocks> = new Map(),
  opset = 21,
  /** Float initializers to replace first (corrected biases), by name. */
  floats: ReadonlyMap<string, Float32Array> = new Map(),
): Promise<{
  bytes: Uint8Array;
  fileName: string;
  weights: readonly ExportedWeight[];
  notes: readonly string[];
}> {
  const assignments: Record<string, WeightAssignment> = {};
  for (const [i, pw] of plan.weights.entries()) {
    const w = layouts.get(pw.name);
    if (!w)
      throw new MixqError(`plan weight '${pw.name}' is not a quantizable weight of the model`, {
        source: 'plan',
        field: `weights[${i}].name`,
      });
    const a = onnxAssignment(pw.scheme, w.L, w.consumer, opset);
    if (!a)
      throw new MixqError(`scheme ${JSON.stringify(pw.scheme)} cannot be stored in ONNX for '${pw.name}'`, {
        source: 'plan',
        field: `weights[${i}].scheme`,
        expected:
          'an RTN or GPTQ element format without salient outliers (AWQ and ggml block types are not exported to ONNX)',
      });
    const pre = quantized.get(pw.name);
    if ((pw.scheme.algorithm === 'gptq' || hasScaleSearch(pw.scheme)) && !pre)
      throw new MixqError(
        `weight '${pw.name}' (${pw.scheme.algorithm === 'gptq' ? 'GPTQ' : 'searched ranges'}) needs its codes to be exported`,
        { source: 'plan', field: `weights[${i}]` },
      );
    assignments[pw.name] = pre ? { ...a, quantized: pre } : a;
  }
  const file = await readOnnxFile(modelPath);
  try {
    if (floats.size > 0) {
      const dense = new Map(listWeights(file).map((w) => [w.name, w] as const));
      for (const [name, v] of floats) {
        const w = dense.get(name);
        if (!w || w.sparse)
          throw new MixqError(`no dense float initializer '${name}' to replace`, {
            source: modelPath,
            field: name,
          });
        setTensorFloat32(w.tensor, v, w.dims);
      }
    }
    const q = await quantizeOnnxWeights(file, assignments);
    await inlineExternalData(q.model);
    const stem = basename(modelPath).replace(/\.onnx$/, '');
    return { bytes: writeOnnx(q.model), fileName: `${stem}_q4.onnx`, weights: q.weights, notes: q.notes };
  } finally {
    await file.close();
  }
}

/**
 * The bundled GPT as a llama.cpp gpt2 GGUF with the plan's block type per matrix (embeddings, norms and
 * biases F32), encoded by ggml's quantizers with the calibration importance matrix; then read back with
 * mixq's GGUF reader and compared with the simulated weights, which must be identical.
 */
export async function exportGguf(
  plan: Plan,
  sims: ReadonlyMap<string, Float32Array>,
  stats: ReadonlyMap<string, LayerStats>,
): Promise<QuantizeOutput> {
  const config = await readGptConfig(GPT_DIR);
  const entries = gpt2TensorPlan(config);
  const bySource = new Map(plan.weights.map((w) => [w.name, w] as const));
  const byGguf = new Map(entries.map((e) => [e.gguf, e] as const));
  const r = await exportGptGguf(
    GPT_DIR,
    (gguf) => {
      const e = byGguf.get(gguf);
      return (e && bySource.get(e.source)?.scheme.blockType) ?? 'F32';
    },
    {
      imatrix: (gguf) => {
        const e = byGguf.get(gguf);
        const st = e ? stats.get(e.source) : undefined;
        return st ? Float32Array.from(st.meanSquare) : undefined;
      },
    },
  );
  const bytes = concatBytes(r.chunks);
  // read back: every planned tensor dequantizes to the simulated weight ([in, out] source = [out, in] rows)
  const file = await readGguf(bytesSource(bytes, 'model-mixq.gguf'));
  let checked = 0;
  for (const e of entries) {
    const w = bySource.get(e.source);
    if (!w) continue;
    const t = file.tensors.find((x) => x.name === e.gguf);
    if (!t) throw new MixqError(`GGUF output lacks ${e.gguf}`, { source: 'gguf export', field: e.gguf });
    const got = getBlockType(t.type.name).decode(await file.readTensorBytes(t), t.nElements);
    const sim = sims.get(w.name)!;
    const [k, n] = w.shape as [number, number];
    for (let o = 0; o < n; o++)
      for (let i = 0; i < k; i++)
        if (!Object.is(got[o * k + i], sim[i * n + o]))
          throw new MixqError(`GGUF tensor ${e.gguf} differs from the simulation at [${o}, ${i}]`, {
            source: 'gguf export',
            field: e.gguf,
          });
    checked++;
  }
  return {
    format: 'gguf',
    fileName: 'model-mixq.gguf',
    chunks: r.chunks,
    size: bytes.length,
    check: `read back by mixq's GGUF reader: ${checked} quantized tensors equal the simulated weights bit for bit (llama.cpp gpt2 layout)`,
  };
}

/**
 * Quantized safetensors (docs/safetensors-quantized.md): the plan's weights packed with their scales and
 * zero points, every other float tensor of the model unchanged; read back and compared with the simulation.
 */
export async function exportSafetensors(
  model: WeightFedModel,
  plan: Plan,
  sims: ReadonlyMap<string, Float32Array>,
): Promise<QuantizeOutput> {
  const planned = new Map(plan.weights.map((w) => [w.name, w] as const));
  const inputs: QuantizedSafetensorsInput[] = [];
  for (const w of model.weights) {
    const p = planned.get(w.name);
    const values = model.original(w.name);
    if (!p) {
      inputs.push({
        kind: 'float',
        name: w.name,
        dtype: 'F32',
        shape: w.dims,
        data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      });
      continue;
    }
    inputs.push({
      kind: 'quantize',
      name: w.name,
      values,
      shape: w.dims,
      quantizer: {
        element: getFormat(p.scheme.format),
        granularity: p.scheme.granularity,
        symmetric: p.scheme.symmetric,
        scaleFormat: p.scheme.scaleFormat,
        ...(p.scheme.scaleRule ? { scaleRule: p.scheme.scaleRule } : {}),
      },
      algorithm: p.scheme.algorithm,
      ...(p.scheme.outliers !== undefined ? { outliers: p.scheme.outliers } : {}),
    });
  }
  const chunks = writeQuantizedSafetensors(inputs);
  const bytes = concatBytes(chunks);
  const back = await readQuantizedSafetensors(bytes);
  for (const p of plan.weights) {
    const got = await back.dequantize(p.name);
    const sim = sims.get(p.name)!;
    for (let i = 0; i < sim.length; i++)
      if (!Object.is(got[i], sim[i]))
        throw new MixqError(`safetensors weight ${p.name} differs from the simulation at ${i}`, {
          source: 'safetensors export',
          field: p.name,
        });
  }
  return {
    format: 'safetensors',
    fileName: 'model-mixq.safetensors',
    chunks,
    size: bytes.length,
    check: `read back by mixq's quantized-safetensors reader: ${plan.weights.length} weights equal the simulated weights bit for bit; weights outside the model's graph-fed float weights are not included`,
  };
}

/**
 * End-to-end sensitivity measurement: for every quantizable weight and every candidate scheme, the KL
 * divergence of the model's outputs from fp32 (and the task metric) when ONLY that weight is quantized,
 * on a fixed small calibration subset, next to the cheap proxies of src/analysis/sensitivity/.
 *
 * Speed: the model is rewritten once with its weights as feeds (weights.node.ts), so a variant is one
 * session run per probe feed; the fp32 outputs are computed once and cached. Calibration statistics
 * (E[x^2] and X^T X per layer input) come from the same probe feeds (calibration.node.ts).
 * Determinism: single-threaded sessions (ort.node.ts), seeded noise, fixed data subsets.
 *
 * Weights analysed: float weights read by a MatMul / Gemm / Conv (their input activation can be
 * captured) with a known output axis, and tables read only by Gather (embeddings): they have no input
 * activation, so no proxy applies; every candidate on them is measured end to end (also without
 * `measure`), and the measured KL is also their noise-calibrated damage (what that proxy predicts).
 */

import {
  bestOutputError,
  centeredStats,
  errorMatrix,
  injectNoise,
  type LayerStats,
  type NoisePoint,
  noiseCalibratedCurve,
} from '../analysis/sensitivity/proxies.ts';
import { fittedToData, type ScoredCandidate, scoreCandidate } from '../analysis/sensitivity/score.ts';
import { createScorePool, defaultPoolSize, shareWeight } from './sensitivity-pool.node.ts';
import { defaultCandidates, schemeId, schemeStorage } from '../analysis/sensitivity/candidates.ts';
import { fromRows, type RowLayout, rowLayout, toRows } from '../quant/layout.ts';
import type {
  MeasuredDamage,
  SensitivityEntry,
  SensitivityTable,
  WeightSensitivity,
} from '../analysis/sensitivity/table.ts';
import { MixqError } from '../core/errors.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import { onnxModelView } from '../io/onnx/view.ts';
import { encodeChars, loadGptBundle, loadOcrCharset, loadOcrLines, ocrInput } from './bundled.node.ts';
import { type ActivationStats, captureActivationStats } from './calibration.node.ts';
import { ctcGreedyDecode } from './ctc.ts';
import { syntheticFeeds, type SyntheticInputOptions } from './fidelity.node.ts';
import {
  accumulateFidelity,
  crossEntropyAt,
  detectOutputKind,
  finishFidelity,
  levenshtein,
  newFidelityAccumulator,
  type OutputKind,
} from './metrics.ts';
import { type Feeds, floatTensor, int64Tensor } from './ort.node.ts';
import { concurrencyOf, forEachInOrder, type ModelRunner } from './runner.node.ts';
import type { Scheme } from '../quant/scheme.ts';
import { type FedWeight, loadWeightFedModel, type WeightFedModel } from './weights.node.ts';

/** One output of one probe feed. */
export interface ProbeOutput {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** What a variant is run on and how its outputs are scored. */
export interface DamageProbe {
  readonly feeds: readonly Feeds[];
  /** The outputs read on every feed (float32). */
  readonly outputs: readonly string[];
  /** What the damage is, for messages ('KL of the logits', a task's measures, ...). */
  readonly measure: string;
  /**
   * The damage of a variant from its outputs and fp32's (per feed, per output in `outputs` order): 0 for
   * identical outputs, larger is worse.
   */
  damage(ref: readonly (readonly ProbeOutput[])[], out: readonly (readonly ProbeOutput[])[]): number;
  /** Task metric from the first output of all feeds (in feed order). */
  readonly metric?: {
    readonly name: string;
    compute(outputs: readonly ProbeOutput[]): number;
  };
}

/** The damage of one output as a distribution along its last axis (mean KL per row, nats). */
export function klDamage(kind: OutputKind): DamageProbe['damage'] {
  return (ref, out) => {
    const acc = newFidelityAccumulator();
    out.forEach((o, i) => {
      const r = ref[i]![0]!;
      accumulateFidelity(acc, r.data, o[0]!.data, r.dims[r.dims.length - 1]!, kind);
    });
    return finishFidelity(acc).klMean;
  };
}

/** The mean squared difference of one output. */
export const mseDamage: DamageProbe['damage'] = (ref, out) => {
  let s = 0;
  let n = 0;
  out.forEach((o, i) => {
    const r = ref[i]![0]!.data;
    const d = o[0]!.data;
    for (let k = 0; k < r.length; k++) s += (r[k]! - d[k]!) ** 2;
    n += r.length;
  });
  return n ? s / n : 0;
};

export interface DamageMeter {
  readonly baselineMetric?: number;
  /** Model evaluations so far (one per measure call). */
  readonly evaluations: number;
  /** Damage (and metric) of the model with `replacements` vs the cached fp32 outputs. */
  measure(replacements: ReadonlyMap<string, Float32Array>): Promise<MeasuredDamage>;
}

/**
 * The named float32 outputs of every feed, in feed order (as many runs in flight as the runner takes).
 * @example const outs = await runOutputs(runner, feeds, ['logits'])
 */
export async function runOutputs(
  runner: ModelRunner,
  feeds: readonly Feeds[],
  names: readonly string[],
): Promise<ProbeOutput[][]> {
  const outs: ProbeOutput[][] = [];
  await forEachInOrder(
    feeds.length,
    concurrencyOf(runner),
    (i) => runner.run(feeds[i]!, names),
    (res) =>
      outs.push(
        names.map((name) => {
          const t = res[name];
          if (t?.type !== 'float32')
            throw new MixqError('probe output is not float32', { field: name, expected: 'float32' });
          return { data: t.data as Float32Array, dims: t.dims };
        }),
      ),
  );
  return outs;
}

const runProbe = (runner: ModelRunner, probe: DamageProbe): Promise<ProbeOutput[][]> =>
  runOutputs(runner, probe.feeds, probe.outputs);

/** Runs the fp32 model once on the probe and returns a meter for variants. */
export async function createDamageMeter(model: WeightFedModel, probe: DamageProbe): Promise<DamageMeter> {
  const ref = await runProbe(model.baseline, probe);
  const first = (outs: ProbeOutput[][]) => outs.map((o) => o[0]!);
  const baselineMetric = probe.metric?.compute(first(ref));
  let evaluations = 0;
  return {
    ...(baselineMetric !== undefined ? { baselineMetric } : {}),
    get evaluations() {
      return evaluations;
    },
    async measure(replacements) {
      evaluations++;
      const out = await runProbe(model.withWeights(replacements), probe);
      const kl = probe.damage(ref, out);
      const metric = probe.metric?.compute(first(out));
      return metric !== undefined ? { kl, metric } : { kl };
    },
  };
}

/** Relative std of the noise of `checkMeasureSees`' damaged model. */
export const VISIBLE_NOISE_REL_STD = 0.1;

/**
 * Refuses a probe whose damage cannot see a clearly damaged model: every analysable weight with seeded
 * Gaussian noise of VISIBLE_NOISE_REL_STD of its RMS (a model no plan should look like). A measure that
 * scores it at most `minDamage` (a Softmax over an axis of length 1 scores every model 0) would let the
 * planner pick anything; `advice` says what to pass instead.
 */
export async function checkMeasureSees(
  model: WeightFedModel,
  probe: DamageProbe,
  opts: { readonly source: string; readonly advice: string; readonly minDamage: number },
): Promise<number> {
  const meter = await createDamageMeter(model, probe);
  const noisy = new Map<string, Float32Array>();
  for (const w of model.weights) {
    const x = model.original(w.name);
    // the whole tensor as one row: noise relative to the tensor's RMS
    const flat: RowLayout = {
      dims: [x.length],
      outputAxis: 0,
      rows: 1,
      cols: x.length,
      kernel: 1,
      inPerGroup: x.length,
      groups: 1,
    };
    noisy.set(w.name, injectNoise(x, flat, VISIBLE_NOISE_REL_STD, 0x5eed + noisy.size));
  }
  const { kl } = await meter.measure(noisy);
  if (!(kl > opts.minDamage) && !Number.isNaN(kl))
    throw new MixqError(
      `the measure (${probe.measure}) cannot see damage: a model with ${VISIBLE_NOISE_REL_STD * 100}% noise on every weight scores ${kl}, the same as fp32; no plan was made`,
      { source: opts.source, expected: opts.advice },
    );
  return kl;
}

// ------------------------------------------------------------------------------------------ probes

/**
 * GPT probe: `windows` consecutive non-overlapping windows of the held-out text (from `offset`), in one
 * batch; KL over every position, metric = bits per character of the next-token predictions.
 */
export function gptProbe(
  model: WeightFedModel,
  opts: { windows?: number; offset?: number } = {},
): DamageProbe {
  const b = loadGptBundle();
  const nw = opts.windows ?? 4;
  const ctx = b.context;
  const off = opts.offset ?? 0;
  const text = Array.from(b.heldout)
    .slice(off, off + nw * ctx + 1)
    .join('');
  const ids = encodeChars(text, b.chars, 'heldout.txt');
  if (ids.length < nw * ctx + 1)
    throw new MixqError('held-out text too short', { expected: `${nw * ctx + 1} chars` });
  const input = model.baseline.inputNames[0]!;
  const output = model.baseline.outputNames[0]!;
  return {
    feeds: [{ [input]: int64Tensor(ids.subarray(0, nw * ctx), [nw, ctx]) }],
    outputs: [output],
    measure: 'KL of the next-character distributions',
    damage: klDamage('logits'),
    metric: {
      name: 'bpc',
      compute(outs) {
        const { data, dims } = outs[0]!;
        const vocab = dims[2]!;
        let nats = 0;
        for (let p = 0; p < nw * ctx; p++) nats += crossEntropyAt(data, p * vocab, vocab, ids[p + 1]!);
        return nats / (nw * ctx) / Math.LN2;
      },
    },
  };
}

/** OCR probe: the first `clean` clean and `degraded` degraded lines; metric = CER. */
export function ocrProbe(
  model: WeightFedModel,
  opts: { clean?: number; degraded?: number } = {},
): DamageProbe {
  const all = loadOcrLines();
  const lines = [
    ...all.filter((l) => l.variant === 'clean').slice(0, opts.clean ?? 1),
    ...all.filter((l) => l.variant === 'degraded').slice(0, opts.degraded ?? 1),
  ];
  const charset = loadOcrCharset();
  const input = model.baseline.inputNames[0]!;
  return {
    feeds: lines.map((l) => ({ [input]: floatTensor(ocrInput(l), [1, 3, l.height, l.width]) })),
    outputs: [model.baseline.outputNames[0]!],
    measure: 'KL of the per-frame character distributions',
    damage: klDamage('probabilities'),
    metric: {
      name: 'cer',
      compute(outs) {
        let edits = 0;
        let chars = 0;
        outs.forEach((o, i) => {
          const text = ctcGreedyDecode(o.data, o.dims[1]!, charset);
          edits += levenshtein(lines[i]!.text, text);
          chars += Array.from(lines[i]!.text).length;
        });
        return edits / chars;
      },
    },
  };
}

/**
 * Probe for any model: seeded synthetic inputs (fidelity.node.ts), no task metric. Compares the first
 * output as a distribution (kind detected) unless `compare: 'mse'`.
 */
export async function syntheticProbe(
  model: WeightFedModel,
  samples = 4,
  opts: SyntheticInputOptions & { readonly compare?: 'kl' | 'mse' } = {},
): Promise<DamageProbe> {
  const feeds = syntheticFeeds(model.baseline.inputMetadata, samples, opts);
  const output = model.baseline.outputNames[0]!;
  const first = (await model.baseline.run(feeds[0]!, [output]))[output];
  if (first?.type !== 'float32') throw new MixqError('first output is not float32', { field: output });
  const row = first.dims[first.dims.length - 1]!;
  if (opts.compare === 'mse') return { feeds, outputs: [output], measure: 'output MSE', damage: mseDamage };
  const kind = detectOutputKind(first.data as Float32Array, row);
  return { feeds, outputs: [output], measure: `KL of the first output's ${kind}`, damage: klDamage(kind) };
}

// ------------------------------------------------------------------------------------------ analysis

/** Per-weight activation statistics in the proxies' form (means over the captured rows). */
export async function captureLayerStats(
  model: WeightFedModel,
  feeds: readonly Feeds[],
  maxGram = 1024,
): Promise<Map<string, LayerStats>> {
  return layerStats(await captureActivationStats(model, feeds, { maxGram }));
}

function layerStats(raw: ReadonlyMap<string, ActivationStats>): Map<string, LayerStats> {
  const out = new Map<string, LayerStats>();
  for (const [name, s] of raw) {
    const n = Math.max(s.rows, 1);
    out.set(name, {
      channels: s.channels,
      meanSquare: Float64Array.from(s.sumSquares, (v) => v / n),
      mean: Float64Array.from(s.sums, (v) => v / n),
      ...(s.gram ? { gram: Float64Array.from(s.gram, (v) => v / n) } : {}),
    });
  }
  return out;
}

/** The sums of two captures of the same model (what one capture of both sample sets gives). */
function mergeCaptures(
  a: ReadonlyMap<string, ActivationStats>,
  b: ReadonlyMap<string, ActivationStats>,
): Map<string, ActivationStats> {
  const add = (x: Float64Array, y: Float64Array) => Float64Array.from(x, (v, i) => v + y[i]!);
  const out = new Map<string, ActivationStats>();
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y) continue;
    out.set(name, {
      ...x,
      rows: x.rows + y.rows,
      absMax: Float32Array.from(x.absMax, (v, i) => Math.max(v, y.absMax[i]!)),
      sums: add(x.sums, y.sums),
      sumSquares: add(x.sumSquares, y.sumSquares),
      ...(x.gram && y.gram ? { gram: add(x.gram, y.gram) } : {}),
    });
  }
  return out;
}

/** The calibration of a model on a probe: per-weight activation statistics, and two folds of them. */
export interface Calibration {
  readonly probe: DamageProbe;
  /** Statistics of all calibration samples. */
  readonly all: ReadonlyMap<string, LayerStats>;
  /** Statistics of the even and odd samples, for held-out scoring of fitted candidates. */
  readonly folds?: readonly [ReadonlyMap<string, LayerStats>, ReadonlyMap<string, LayerStats>];
}

/**
 * Statistics of all calibration samples and, with `folds` and two or more samples, of two folds (even and
 * odd samples) for held-out scoring of candidates fitted to the data (heldOutProxies).
 */
export async function calibrateModel(
  model: WeightFedModel,
  probe: DamageProbe,
  opts: { readonly maxGram?: number; readonly folds: boolean },
): Promise<Calibration> {
  const maxGram = opts.maxGram ?? 1024;
  const feeds = probe.feeds;
  if (!opts.folds || feeds.length < 2)
    return { probe, all: layerStats(await captureActivationStats(model, feeds, { maxGram })) };
  const a = await captureActivationStats(
    model,
    feeds.filter((_, i) => i % 2 === 0),
    { maxGram },
  );
  const b = await captureActivationStats(
    model,
    feeds.filter((_, i) => i % 2 === 1),
    { maxGram },
  );
  return { probe, all: layerStats(mergeCaptures(a, b)), folds: [layerStats(a), layerStats(b)] };
}

export interface SensitivityOptions {
  /** Builds the probe on the loaded model (gptProbe, ocrProbe, syntheticProbe). */
  readonly probe: (model: WeightFedModel) => DamageProbe | Promise<DamageProbe>;
  /** The calibration already captured on the model (its probe is used); default: captured here. */
  readonly calibration?: Calibration;
  /** Candidate schemes (row frame). Default defaultCandidates(). */
  readonly candidates?: readonly Scheme[];
  /** Restrict to these weight names (default: every analysable weight). */
  readonly weights?: readonly string[];
  /** Keep X^T X for inputs with at most this many channels. Default 1024. */
  readonly maxGram?: number;
  /** Injected noise std relative to each output row's RMS. Default 0.05. */
  readonly noiseRelStd?: number;
  /**
   * Further noise levels measured per weight for the power-law fit of noiseCalibratedCurve (default
   * [5 * noiseRelStd]; [] = the one-level linear proxy of the proxy study).
   */
  readonly noiseLevels?: readonly number[];
  /**
   * Score candidates fitted to the calibration data (GPTQ, AWQ) out of sample: fitted on one half of the
   * calibration samples, scored on the other (heldOutProxies). Default true.
   */
  readonly heldOut?: boolean;
  /** Measure every (weight, candidate) pair end to end. Default true; false = proxies + noise only. */
  readonly measure?: boolean;
  /**
   * Weights whose layer bias will be corrected (bias correction): their candidates' proxies use the
   * centered statistics (centeredStats). The injected-noise calibration is measured as is.
   */
  readonly biasCorrected?: ReadonlySet<string>;
  /** Name recorded in the table. Default the path. */
  readonly modelName?: string;
  /**
   * Worker threads that score the candidates (sensitivity-pool.node.ts); 0 = inline. Default
   * defaultPoolSize() (the cores, up to 4) unless the weights x candidates are fewer than 2e6 elements.
   * Results are equal either way.
   */
  readonly workers?: number;
  readonly onProgress?: (done: number, total: number, label: string) => void;
}

/** Output axis of every weight read by a linear op, from the format-neutral view of the original file. */
export async function outputAxes(path: string): Promise<Map<string, number>> {
  const file = await readOnnxFile(path);
  try {
    const view = onnxModelView(file);
    const m = new Map<string, number>();
    for (const t of view.tensors) if (t.outputAxis !== undefined) m.set(t.name, t.outputAxis);
    return m;
  } finally {
    await file.close();
  }
}

/**
 * Whether a weight is a table read only by Gather (an embedding): [rows, row length], gathered along axis
 * 0 (output axis 0). Tables that also feed a product (a tied head) are not: the ONNX exporter stores a
 * weight for one kind of consumer.
 */
export function isGatherTable(w: FedWeight, axis: number | undefined): boolean {
  return (
    axis === 0 && w.dims.length === 2 && w.consumers.length > 0 && w.consumers.every((c) => c === 'Gather:0')
  );
}

/**
 * The statistics of a weight without an input activation: every column weighs 1, no X^T X (so RTN
 * candidates apply, GPTQ / AWQ do not, and scale searches minimise the weight's own squared error).
 */
function unitStats(channels: number): LayerStats {
  return { channels, meanSquare: new Float64Array(channels).fill(1) };
}

/** A sensitivity table with what produced it: the calibration statistics and row layouts per weight. */
export interface SensitivityAnalysis {
  readonly table: SensitivityTable;
  readonly stats: ReadonlyMap<string, LayerStats>;
  readonly layouts: ReadonlyMap<string, RowLayout>;
  readonly probe: DamageProbe;
}

/**
 * The sensitivity table of the model at `path`: per analysable weight, per applicable candidate, exact
 * bytes, all proxies (noise-calibrated included) and, unless `measure: false`, the measured damage.
 */
export async function analyzeSensitivity(path: string, opts: SensitivityOptions): Promise<SensitivityTable> {
  const model = await loadWeightFedModel(path, { captureInputs: true });
  return (await analyzeLoadedModel(model, await outputAxes(path), { modelName: path, ...opts })).table;
}

/**
 * analyzeSensitivity on a model already loaded with `captureInputs: true`, given the output axis of every
 * weight (from the graph view); also returns the statistics and layouts, which applying a plan needs.
 */
export async function analyzeLoadedModel(
  model: WeightFedModel,
  axes: ReadonlyMap<string, number>,
  opts: SensitivityOptions,
): Promise<SensitivityAnalysis> {
  const candidates = opts.candidates ?? defaultCandidates();
  const captured =
    opts.calibration ??
    (await calibrateModel(model, await opts.probe(model), {
      ...(opts.maxGram !== undefined ? { maxGram: opts.maxGram } : {}),
      folds: (opts.heldOut ?? true) && candidates.some(fittedToData),
    }));
  const probe = captured.probe;
  const meter = await createDamageMeter(model, probe);
  const relStd = opts.noiseRelStd ?? 0.05;
  const wanted = opts.weights ? new Set(opts.weights) : undefined;
  // tables read only by Gather: the unit statistics of their row length (weights' own error)
  const tables = new Set(model.weights.filter((w) => isGatherTable(w, axes.get(w.name))).map((w) => w.name));
  const allStats = new Map(captured.all);
  for (const w of model.weights) if (tables.has(w.name)) allStats.set(w.name, unitStats(w.dims[1]!));
  const stats: ReadonlyMap<string, LayerStats> = allStats;
  const targets = model.weights.filter((w) => {
    const axis = axes.get(w.name);
    return (
      stats.has(w.name) &&
      (axis === 0 || (axis === 1 && w.dims.length === 2)) &&
      (!wanted || wanted.has(w.name))
    );
  });
  const weights: WeightSensitivity[] = [];
  const doMeasure = opts.measure ?? true;
  const total = targets.reduce(
    (n, w) => n + (tables.has(w.name) ? candidates.length : 1 + (doMeasure ? candidates.length : 0)),
    0,
  );
  let done = 0;
  const layouts = new Map<string, RowLayout>();
  // candidates are scored in worker threads while this thread measures the next weight's noise curve
  // (tiny models stay inline: starting the workers would cost more than it saves)
  const work = targets.reduce((n, w) => n + w.elementCount, 0) * candidates.length;
  const poolSize = opts.workers ?? (work >= 2e6 ? defaultPoolSize() : 0);
  const pool = poolSize > 0 ? createScorePool(poolSize) : undefined;
  type Queued = {
    w: (typeof targets)[number];
    L: RowLayout;
    curve: NoisePoint[];
    scored: Promise<(ScoredCandidate | undefined)[]>;
  };
  const queued: Queued[] = [];
  // a weight's entries, once its candidates are scored (and measured end to end when asked), in order
  const finish = async ({ w, L, curve, scored }: Queued): Promise<void> => {
    const results = await scored;
    const entries: SensitivityEntry[] = [];
    const table = tables.has(w.name);
    for (const [i, c] of candidates.entries()) {
      const r = results[i];
      if (!r) continue;
      const p = r.proxies;
      const outErr = p.output ?? p.imatrix;
      const cost = schemeStorage(c, L.rows, L.cols);
      const measured = r.Q ? await meter.measure(new Map([[w.name, fromRows(r.Q, L)]])) : undefined;
      const id = schemeId(c);
      if (doMeasure || table) opts.onProgress?.(++done, total, `${w.name} ${id}`);
      // a Gather table has no activation proxy: its measured damage is its prediction
      const noiseCalibrated = table ? measured!.kl : noiseCalibratedCurve(curve, outErr);
      entries.push({
        candidate: id,
        scheme: c,
        bits: cost.bits,
        bytes: cost.bytes,
        proxies: { ...p, noiseCalibrated },
        ...(r.heldOut ? { heldOut: true } : {}),
        ...(measured ? { measured } : {}),
      });
    }
    weights.push({
      name: w.name,
      dims: w.dims,
      elements: w.elementCount,
      ...(curve.length > 0
        ? { noise: { relStd, kl: curve[0]!.kl, outputError: curve[0]!.outputError }, noiseCurve: curve }
        : { measuredOnly: true as const }),
      entries,
    });
  };
  try {
    for (const w of targets) {
      const st = stats.get(w.name)!;
      const L = rowLayout(w.dims, axes.get(w.name)!, st.channels);
      layouts.set(w.name, L);
      const W = toRows(model.original(w.name), L);
      const curve: NoisePoint[] = [];
      const table = tables.has(w.name);
      for (const level of table ? [] : [relStd, ...(opts.noiseLevels ?? [5 * relStd])]) {
        const noisy = injectNoise(W, L, level);
        const outputError = bestOutputError(errorMatrix(W, noisy), L, st);
        const kl = (await meter.measure(new Map([[w.name, fromRows(noisy, L)]]))).kl;
        curve.push({ kl, outputError });
      }
      if (!table) opts.onProgress?.(++done, total, `${w.name} noise`);
      const fa = captured.folds?.[0].get(w.name);
      const fb = captured.folds?.[1].get(w.name);
      const folds = fa && fb ? ([fa, fb] as const) : undefined;
      // candidates are scored by the error left after bias correction where the bias will be corrected
      const centered = opts.biasCorrected?.has(w.name) ?? false;
      const scoring = centered
        ? {
            st: centeredStats(st),
            ...(folds ? { folds: [centeredStats(folds[0]), centeredStats(folds[1])] as const } : {}),
          }
        : { st, ...(folds ? { folds } : {}) };
      // at most four weights in flight (their shared copies and quantized matrices): finish the oldest
      if (queued.length >= 4) await finish(queued.shift()!);
      const own = { W, st, ...(folds ? { folds } : {}), scoring };
      const parts = pool ? shareWeight(own) : own;
      const jobs = candidates.map((scheme) => ({ ...parts, L, scheme, keepQ: doMeasure || table }));
      const scored = pool
        ? Promise.all(jobs.map((j) => pool.score(j)))
        : Promise.resolve(jobs.map(scoreCandidate));
      // awaited in finish(); if an earlier step throws, the pool's rejection must not surface unhandled
      scored.catch(() => undefined);
      queued.push({ w, L, curve, scored });
    }
    for (const q of queued.splice(0)) await finish(q);
  } finally {
    await pool?.close();
  }
  const table: SensitivityTable = {
    model: opts.modelName ?? 'model',
    ...(probe.metric ? { metricName: probe.metric.name } : {}),
    ...(meter.baselineMetric !== undefined ? { baselineMetric: meter.baselineMetric } : {}),
    weights,
  };
  return { table, stats, layouts, probe };
}

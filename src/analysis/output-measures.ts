/**
 * How close a quantized model's outputs are to its fp32 original's, with a measure that fits what each
 * output IS. One number per output, its `damage` (0 for identical outputs, larger is worse), is what the
 * planner minimises; the other statistics are for the report.
 *
 *   kind              for                                  damage                      also reported
 *   distribution      class logits / probabilities along   mean KL(fp32 || quantized)  top-1 agreement
 *                     an axis (Softmax, LogSoftmax, LM      per row, nats
 *                     logits)
 *   probability-map   independent probabilities in [0, 1]  mean binary KL per element, mask agreement at a
 *                     (Sigmoid maps: detectors, masks)      nats                        threshold, relative L2
 *   embedding         vectors compared by direction        mean 1 - cosine per row     mean cosine
 *   tensor            anything else                         relative MSE                SQNR (dB)
 *                                                           sum (a - b)^2 / sum a^2
 *
 * The kind is chosen from the graph (the operator that produces the output) and from the values of one
 * fp32 sample (`chooseMeasure`), with a stated reason, and can be overridden. Several outputs are combined
 * with stated weights (default equal). A measure must be able to SEE damage: `separates` checks, on a
 * deliberately damaged model, that it does (a Softmax over an axis of length 1 is constant 1 and scores
 * every model 0, which is how a broken detector was once reported as lossless).
 */
import { MixqError } from '../core/errors.ts';

export type MeasureKind = 'distribution' | 'probability-map' | 'embedding' | 'tensor';

export const MEASURE_KINDS: readonly MeasureKind[] = [
  'distribution',
  'probability-map',
  'embedding',
  'tensor',
];

/** How one model output is compared with its fp32 version. */
export interface OutputMeasure {
  readonly output: string;
  readonly kind: MeasureKind;
  /**
   * distribution / embedding: the axis the rows run along (non-negative; resolved against the output's
   * rank). With `flattenFrom`, every axis from `axis` on forms the row (ONNX Softmax before opset 13).
   */
  readonly axis?: number;
  readonly flattenFrom?: boolean;
  /** distribution: what the values are. */
  readonly values?: 'logits' | 'probabilities' | 'log-probabilities';
  /** probability-map: the mask threshold (p > threshold). */
  readonly threshold?: number;
  /** Weight in the combined damage. */
  readonly weight: number;
  /** Why this measure was chosen, for the report. */
  readonly reason: string;
}

/** Statistics of one output over all samples. */
export interface MeasureResult {
  readonly output: string;
  readonly kind: MeasureKind;
  /** What the planner minimises (0 = identical). */
  readonly damage: number;
  /** Rows (distribution / embedding) or elements (probability-map / tensor) compared. */
  readonly count: number;
  readonly klMean?: number;
  readonly top1Agreement?: number;
  readonly binaryKlMean?: number;
  readonly maskAgreement?: number;
  readonly relativeL2?: number;
  readonly cosineMean?: number;
  readonly relativeMse?: number;
  readonly sqnrDb?: number;
}

/** Running sums of one measure. */
export interface MeasureAccumulator {
  readonly measure: OutputMeasure;
  count: number;
  damageSum: number;
  agree: number;
  signal: number;
  noise: number;
}

export function newMeasureAccumulator(measure: OutputMeasure): MeasureAccumulator {
  return { measure, count: 0, damageSum: 0, agree: 0, signal: 0, noise: 0 };
}

type Values = ArrayLike<number>;

/** Rows of `dims` along `axis`: count, length and the stride between a row's elements. */
function rowGeometry(dims: readonly number[], axis: number, flatten: boolean) {
  if (axis < 0 || axis >= dims.length)
    throw new MixqError(`axis ${axis} is outside an output of rank ${dims.length}`, {
      field: 'axis',
      expected: `0..${dims.length - 1}`,
    });
  const before = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  if (flatten) {
    const length = dims.slice(axis).reduce((a, b) => a * b, 1);
    return { rows: before, length, stride: 1, inner: 1 };
  }
  const length = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return { rows: before * inner, length, stride: inner, inner };
}

/** Visits every row: base offset of the row's first element; elements at base + i * stride. */
function forEachRow(
  dims: readonly number[],
  axis: number,
  flatten: boolean,
  fn: (base: number, length: number, stride: number) => void,
): void {
  const g = rowGeometry(dims, axis, flatten);
  const outer = g.rows / g.inner;
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < g.inner; j++) fn(o * g.length * g.inner + j, g.length, g.stride);
}

/** log p_i of one row into out, from logits, probabilities or log-probabilities. */
function logProbs(
  x: Values,
  base: number,
  n: number,
  stride: number,
  values: OutputMeasure['values'],
  out: Float64Array,
): void {
  if (values === 'log-probabilities') {
    for (let i = 0; i < n; i++) out[i] = x[base + i * stride]!;
  } else if (values === 'probabilities') {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.max(x[base + i * stride]!, 0);
    for (let i = 0; i < n; i++) out[i] = Math.log(Math.max(Math.max(x[base + i * stride]!, 0) / s, 1e-30));
  } else {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[base + i * stride]!);
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[base + i * stride]! - m);
    const lse = m + Math.log(s);
    for (let i = 0; i < n; i++) out[i] = x[base + i * stride]! - lse;
  }
}

/** Binary KL(p || q) of two probabilities, clamped away from 0 and 1 by 1e-7 (float32 sigmoid range). */
export function binaryKl(p: number, q: number): number {
  const e = 1e-7;
  const pc = Math.min(Math.max(p, e), 1 - e);
  const qc = Math.min(Math.max(q, e), 1 - e);
  return Math.max(0, pc * Math.log(pc / qc) + (1 - pc) * Math.log((1 - pc) / (1 - qc)));
}

/**
 * Adds one sample's output pair (same dims) to the accumulator.
 * @example accumulateMeasure(acc, refOut.data, candOut.data, refOut.dims)
 */
export function accumulateMeasure(
  acc: MeasureAccumulator,
  ref: Values,
  cand: Values,
  dims: readonly number[],
): void {
  const m = acc.measure;
  if (ref.length !== cand.length)
    throw new MixqError(`output '${m.output}' has ${cand.length} values, fp32 ${ref.length}`, {
      field: m.output,
      expected: String(ref.length),
    });
  for (let i = 0; i < ref.length; i++) {
    const a = ref[i]!;
    const d = a - cand[i]!;
    acc.signal += a * a;
    acc.noise += d * d;
  }
  switch (m.kind) {
    case 'distribution': {
      const axis = m.axis ?? dims.length - 1;
      const g = rowGeometry(dims, axis, m.flattenFrom ?? false);
      const lp = new Float64Array(g.length);
      const lq = new Float64Array(g.length);
      forEachRow(dims, axis, m.flattenFrom ?? false, (base, n, stride) => {
        logProbs(ref, base, n, stride, m.values, lp);
        logProbs(cand, base, n, stride, m.values, lq);
        let kl = 0;
        let ap = 0;
        let aq = 0;
        for (let i = 0; i < n; i++) {
          const p = Math.exp(lp[i]!);
          if (p > 0) kl += p * (lp[i]! - lq[i]!);
          if (lp[i]! > lp[ap]!) ap = i;
          if (lq[i]! > lq[aq]!) aq = i;
        }
        acc.damageSum += Math.max(kl, 0);
        if (ap === aq) acc.agree++;
        acc.count++;
      });
      break;
    }
    case 'probability-map': {
      const t = m.threshold ?? 0.5;
      for (let i = 0; i < ref.length; i++) {
        const p = ref[i]!;
        const q = cand[i]!;
        acc.damageSum += binaryKl(p, q);
        if (p > t === q > t) acc.agree++;
      }
      acc.count += ref.length;
      break;
    }
    case 'embedding': {
      const axis = m.axis ?? dims.length - 1;
      forEachRow(dims, axis, false, (base, n, stride) => {
        let ab = 0;
        let aa = 0;
        let bb = 0;
        for (let i = 0; i < n; i++) {
          const a = ref[base + i * stride]!;
          const b = cand[base + i * stride]!;
          ab += a * b;
          aa += a * a;
          bb += b * b;
        }
        const cos = aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
        acc.damageSum += 1 - cos;
        acc.count++;
      });
      break;
    }
    case 'tensor':
      acc.count += ref.length;
      break;
  }
}

export function finishMeasure(acc: MeasureAccumulator): MeasureResult {
  const { measure: m, count } = acc;
  const mean = count ? acc.damageSum / count : 0;
  const relMse = acc.signal > 0 ? acc.noise / acc.signal : acc.noise > 0 ? Infinity : 0;
  const sqnr = acc.noise === 0 ? Infinity : 10 * Math.log10(acc.signal / acc.noise);
  const base = { output: m.output, kind: m.kind, count };
  switch (m.kind) {
    case 'distribution':
      return {
        ...base,
        damage: mean,
        klMean: mean,
        top1Agreement: count ? acc.agree / count : 1,
        sqnrDb: sqnr,
      };
    case 'probability-map':
      return {
        ...base,
        damage: mean,
        binaryKlMean: mean,
        maskAgreement: count ? acc.agree / count : 1,
        relativeL2: Math.sqrt(relMse),
      };
    case 'embedding':
      return { ...base, damage: mean, cosineMean: 1 - mean, sqnrDb: sqnr };
    case 'tensor':
      return { ...base, damage: relMse, relativeMse: relMse, sqnrDb: sqnr };
  }
}

/** One output's statistics in a line, e.g. 'sigmoid_0.tmp_0: mask 99.2% · rel L2 3.1% · binary KL 0.0058'. */
export function describeResult(r: MeasureResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(x > 0.999 && x < 1 ? 2 : 1)}%`;
  const parts: string[] = [];
  if (r.maskAgreement !== undefined) parts.push(`mask ${pct(r.maskAgreement)}`);
  if (r.relativeL2 !== undefined) parts.push(`rel L2 ${pct(r.relativeL2)}`);
  if (r.binaryKlMean !== undefined) parts.push(`binary KL ${r.binaryKlMean.toPrecision(3)}`);
  if (r.top1Agreement !== undefined) parts.push(`top-1 ${pct(r.top1Agreement)}`);
  if (r.klMean !== undefined) parts.push(`KL ${r.klMean.toPrecision(3)}`);
  if (r.cosineMean !== undefined) parts.push(`cosine ${r.cosineMean.toFixed(5)}`);
  if (r.relativeMse !== undefined) parts.push(`rel MSE ${r.relativeMse.toPrecision(3)}`);
  if (r.sqnrDb !== undefined && Number.isFinite(r.sqnrDb)) parts.push(`SQNR ${r.sqnrDb.toFixed(1)} dB`);
  return `${r.output}: ${parts.join(' · ')}`;
}

/** The weighted damage of several outputs (weights as given; they need not sum to 1). */
export function combinedDamage(
  results: readonly MeasureResult[],
  measures: readonly OutputMeasure[],
): number {
  let s = 0;
  for (const r of results) {
    const m = measures.find((x) => x.output === r.output);
    s += (m?.weight ?? 0) * r.damage;
  }
  return s;
}

/** What is known of an output before measuring: its producer in the graph and one fp32 sample. */
export interface OutputDescription {
  readonly name: string;
  /** The operator that produces it (through Identity / Cast), if the graph says. */
  readonly producer?: {
    readonly op: string;
    /** The op's axis attribute as written (may be negative), if any. */
    readonly axis?: number;
    /** ONNX Softmax / LogSoftmax before opset 13 coerce the input to 2-D at `axis`. */
    readonly coerce2d?: boolean;
  };
  /** One fp32 sample of the output (dims resolved). */
  readonly sample?: { readonly dims: readonly number[]; readonly data: ArrayLike<number> };
  /** Float outputs are measured; others are skipped with a reason. */
  readonly float: boolean;
}

function inUnitInterval(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!(x[i]! >= 0 && x[i]! <= 1)) return false;
  return true;
}

function rowsSumToOne(x: ArrayLike<number>, dims: readonly number[]): boolean {
  const n = dims[dims.length - 1] ?? 0;
  if (n < 2) return false;
  const rows = Math.min(Math.floor(x.length / n), 64);
  if (rows === 0) return false;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[r * n + i]!;
    if (Math.abs(s - 1) > 1e-3) return false;
  }
  return true;
}

const EMBEDDING_NAME = /embed|pooler|sentence|feature/i;
const LOGITS_NAME = /logit/i;

/**
 * The measure for one output, with the reason, from its producer and one fp32 sample (rules in order:
 * Softmax / LogSoftmax -> distribution along their axis; Sigmoid -> probability map; values in [0, 1]
 * whose last-axis rows sum to 1 -> distribution; other values in [0, 1] -> probability map; an output
 * named like logits -> distribution; LpNormalization or a name like an embedding -> embedding; else
 * tensor). `threshold` is the probability-map mask threshold (default 0.5).
 */
export function chooseMeasure(out: OutputDescription, weight: number, threshold = 0.5): OutputMeasure | null {
  if (!out.float) return null;
  const dims = out.sample?.dims;
  const rank = dims?.length;
  const resolve = (axis: number) => (rank !== undefined && axis < 0 ? axis + rank : axis);
  const base = { output: out.name, weight };
  const p = out.producer;
  if (p && (p.op === 'Softmax' || p.op === 'LogSoftmax')) {
    const axis = resolve(p.axis ?? (p.coerce2d ? 1 : -1));
    const values = p.op === 'Softmax' ? 'probabilities' : 'log-probabilities';
    const length = dims
      ? p.coerce2d
        ? dims.slice(axis).reduce((a, b) => a * b, 1)
        : (dims[axis] ?? 0)
      : undefined;
    return {
      ...base,
      kind: 'distribution',
      axis,
      flattenFrom: p.coerce2d && rank !== undefined && axis < rank - 1 ? true : undefined,
      values,
      reason: `produced by ${p.op} over axis ${axis}${length !== undefined ? ` (length ${length})` : ''}: KL of the class distributions`,
    };
  }
  if (p && p.op === 'Sigmoid')
    return {
      ...base,
      kind: 'probability-map',
      threshold,
      reason: `produced by Sigmoid: independent probabilities, binary KL and mask agreement at ${threshold}`,
    };
  if (out.sample && dims && inUnitInterval(out.sample.data)) {
    if (rowsSumToOne(out.sample.data, dims))
      return {
        ...base,
        kind: 'distribution',
        axis: dims.length - 1,
        values: 'probabilities',
        reason: `values in [0, 1] whose rows along the last axis (length ${dims[dims.length - 1]}) sum to 1: KL of the distributions`,
      };
    return {
      ...base,
      kind: 'probability-map',
      threshold,
      reason: `values in [0, 1] that do not sum to 1 along an axis: binary KL and mask agreement at ${threshold}`,
    };
  }
  if (LOGITS_NAME.test(out.name) && dims && (dims[dims.length - 1] ?? 0) > 1)
    return {
      ...base,
      kind: 'distribution',
      axis: dims.length - 1,
      values: 'logits',
      reason: `named like logits, last axis of length ${dims[dims.length - 1]}: KL of the softmax distributions`,
    };
  if ((p && p.op === 'LpNormalization') || EMBEDDING_NAME.test(out.name))
    return {
      ...base,
      kind: 'embedding',
      axis: rank !== undefined ? rank - 1 : undefined,
      reason:
        p?.op === 'LpNormalization'
          ? 'produced by LpNormalization: cosine'
          : 'named like an embedding: cosine',
    };
  return {
    ...base,
    kind: 'tensor',
    reason: `${p ? `produced by ${p.op}` : 'no distribution, probability or embedding structure'}: relative MSE`,
  };
}

/**
 * Parses a `--metric` override: `kind`, `kind:threshold` (probability-map) or `kind:axis`
 * (distribution / embedding), optionally prefixed `output=`.
 * @example parseMeasureOverride('sigmoid_0.tmp_0=probability-map:0.3')
 */
export function parseMeasureOverride(
  text: string,
  source = 'argument --metric',
): { output?: string; kind: MeasureKind; threshold?: number; axis?: number } {
  const eq = text.lastIndexOf('=');
  const output = eq > 0 ? text.slice(0, eq) : undefined;
  const [kindText, arg] = text.slice(eq + 1).split(':');
  const kind = MEASURE_KINDS.find((k) => k === kindText);
  if (!kind)
    throw new MixqError(`unknown measure '${kindText}'`, { source, expected: MEASURE_KINDS.join(', ') });
  if (arg === undefined) return { output, kind };
  const v = Number(arg);
  if (kind === 'probability-map') {
    if (!(v > 0 && v < 1))
      throw new MixqError(`threshold ${arg}`, { source, expected: 'a number strictly between 0 and 1' });
    return { output, kind, threshold: v };
  }
  if (kind === 'tensor' || !Number.isInteger(v))
    throw new MixqError(`'${arg}' after ${kind}`, {
      source,
      expected: kind === 'tensor' ? 'no argument' : 'an integer axis',
    });
  return { output, kind, axis: v };
}

/**
 * Damage the measure must see on a deliberately damaged model before it may choose anything: at least
 * this much in absolute terms. A blind measure gives exactly 0 (constant outputs) or float noise.
 */
export const MIN_VISIBLE_DAMAGE = 1e-9;

/** Whether a measure saw the damage of a deliberately damaged model. */
export function separates(damaged: MeasureResult): boolean {
  return Number.isFinite(damaged.damage) ? damaged.damage > MIN_VISIBLE_DAMAGE : true;
}

/**
 * The per-weight x per-candidate sensitivity table (bytes, proxies, measured end-to-end damage), its
 * conversion to the allocator's input (src/analysis/allocate/problem.ts: AllocWeight[]), and the rank
 * correlation of every proxy with the measured KL, over all (weight, candidate) pairs and within each
 * candidate (across weights: the comparison an allocator actually makes).
 *
 * Browser-safe: plain data, filled by src/runtime/sensitivity.node.ts.
 */
import { MixqError } from '../../core/errors.ts';
import type { Scheme } from '../../quant/scheme.ts';
import type { AllocWeight } from '../allocate/problem.ts';
import type { ProxyName, ProxyValues } from './proxies.ts';
import { spearman } from './spearman.ts';

export interface MeasuredDamage {
  /**
   * Mean KL(fp32 || quantized) per output row (nats) on the calibration subset (the output MSE instead
   * when the probe compares with 'mse').
   */
  readonly kl: number;
  /** The task metric with only this weight quantized (bpc for the GPT, CER for OCR), when defined. */
  readonly metric?: number;
}

export interface SensitivityEntry {
  /** Candidate id (schemeId of `scheme`; the allocator's scheme key). */
  readonly candidate: string;
  /** The candidate scheme (row frame). */
  readonly scheme: Scheme;
  readonly bits: number;
  readonly bytes: number;
  readonly proxies: ProxyValues & { readonly noiseCalibrated?: number };
  readonly measured?: MeasuredDamage;
  /** The proxies were scored out of sample (fitted on one calibration fold, scored on the other). */
  readonly heldOut?: boolean;
}

export interface WeightSensitivity {
  readonly name: string;
  readonly dims: readonly number[];
  readonly elements: number;
  /** Measured KL and output error of the injected Gaussian noise (the noise-calibrated proxy's scale). */
  readonly noise?: { readonly relStd: number; readonly kl: number; readonly outputError: number };
  /** Every measured noise level (the first is `noise`), for the power-law fit. */
  readonly noiseCurve?: readonly { readonly kl: number; readonly outputError: number }[];
  /**
   * No proxy applies (a Gather table: no input activation): every entry is measured end to end and its
   * noise-calibrated damage is the measured KL.
   */
  readonly measuredOnly?: true;
  readonly entries: readonly SensitivityEntry[];
}

export interface SensitivityTable {
  readonly model: string;
  /** Name of the task metric in `measured.metric` ('bpc', 'cer'), if any. */
  readonly metricName?: string;
  readonly baselineMetric?: number;
  readonly weights: readonly WeightSensitivity[];
}

export type DamageSource = ProxyName | 'kl' | 'metric';

/**
 * The damage of an entry from `src`: a proxy, the measured KL, or the task metric's increase over the
 * baseline; undefined when the entry lacks it.
 */
export function entryDamage(e: SensitivityEntry, src: DamageSource, baseline?: number): number | undefined {
  if (src === 'kl') return e.measured?.kl;
  if (src === 'metric') {
    const m = e.measured?.metric;
    return m === undefined || baseline === undefined ? undefined : m - baseline;
  }
  return e.proxies[src];
}

/** One entry of a weight as an allocation candidate: its price and damage. */
export interface WeightOption {
  readonly entry: SensitivityEntry;
  readonly bytes: number;
  readonly bits: number;
  readonly damage: number;
}

/**
 * A weight's entries with a finite damage from `source`, in table order, priced by `price` (default the
 * entry's own bytes and bits; undefined leaves the entry out, e.g. a format an output cannot store).
 */
export function weightOptions(
  w: WeightSensitivity,
  source: DamageSource,
  baseline?: number,
  price: (e: SensitivityEntry) => { bytes: number; bits: number } | undefined = (e) => e,
): WeightOption[] {
  const out: WeightOption[] = [];
  for (const e of w.entries) {
    const d = entryDamage(e, source, baseline);
    if (d === undefined || !Number.isFinite(d)) continue;
    const p = price(e);
    if (p) out.push({ entry: e, bytes: p.bytes, bits: p.bits, damage: d });
  }
  return out;
}

/**
 * The allocator's input: per weight, one candidate per entry with exact bytes / bits and the damage from
 * `source` (a proxy, the measured KL, or the task metric's increase over fp32). Entries without that
 * value are left out; a weight left with none is an error.
 */
export function toAllocWeights(table: SensitivityTable, source: DamageSource): AllocWeight[] {
  return table.weights.map((w) => {
    const options = weightOptions(w, source, table.baselineMetric);
    if (options.length === 0)
      throw new MixqError(`weight '${w.name}' has no '${source}' damage`, {
        field: w.name,
        expected: 'a table with that proxy or measurement',
      });
    return {
      name: w.name,
      elements: w.elements,
      candidates: options.map((o) => ({
        scheme: o.entry.candidate,
        bytes: o.bytes,
        bits: o.bits,
        damage: o.damage,
      })),
    };
  });
}

export interface ProxyCorrelation {
  readonly proxy: DamageSource;
  /** Spearman rho over all (weight, candidate) pairs that have both values. */
  readonly overall: number;
  readonly pairs: number;
  /** Spearman rho across weights, per candidate id. */
  readonly perCandidate: Readonly<Record<string, number>>;
  /** Mean of perCandidate over candidates where it is defined. */
  readonly meanWithin: number;
  /** Mean Spearman rho across candidates, within each weight. */
  readonly meanWithinWeight: number;
}

/** Rank correlation of `proxy` with `target` (default the measured KL). */
export function proxyCorrelation(
  table: SensitivityTable,
  proxy: DamageSource,
  target: DamageSource = 'kl',
): ProxyCorrelation {
  const xs: number[] = [];
  const ys: number[] = [];
  const byCand = new Map<string, { x: number[]; y: number[] }>();
  const withinWeight: number[] = [];
  for (const w of table.weights) {
    // a measured-only weight's noise-calibrated value is its measured KL: no proxy to correlate
    if (w.measuredOnly) continue;
    const wx: number[] = [];
    const wy: number[] = [];
    for (const e of w.entries) {
      const x = entryDamage(e, proxy, table.baselineMetric);
      const y = entryDamage(e, target, table.baselineMetric);
      if (x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y)) continue;
      xs.push(x);
      ys.push(y);
      wx.push(x);
      wy.push(y);
      const c = byCand.get(e.candidate) ?? { x: [], y: [] };
      c.x.push(x);
      c.y.push(y);
      byCand.set(e.candidate, c);
    }
    const r = spearman(wx, wy);
    if (!Number.isNaN(r)) withinWeight.push(r);
  }
  const perCandidate: Record<string, number> = {};
  const defined: number[] = [];
  for (const [id, c] of byCand) {
    const r = spearman(c.x, c.y);
    perCandidate[id] = r;
    if (!Number.isNaN(r)) defined.push(r);
  }
  const mean = (a: number[]) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : Number.NaN);
  return {
    proxy,
    overall: spearman(xs, ys),
    pairs: xs.length,
    perCandidate,
    meanWithin: mean(defined),
    meanWithinWeight: mean(withinWeight),
  };
}

/**
 * Derived numbers and number formatting shared by the HTML and terminal renderers: the comparison of
 * every baseline against the mixq curve at equal size, relative change against fp32, and compact
 * formatting of bytes, bits and metric values. Pure functions, browser-safe.
 */
import type { ReportData, ReportMetric, ReportPoint, ReportSelection, ReportSeries } from './types.ts';

/** A baseline point next to the mixq curve at the same bits per weight. */
export interface EqualSizeRow {
  readonly series: string;
  readonly kind: ReportSeries['kind'];
  readonly point: ReportPoint;
  /** mixq metric at the same bits per weight (linear interpolation between plans), if within range. */
  readonly mixqMetric?: number;
  /** True when mixq is better than the baseline at this size (per the metric's direction). */
  readonly mixqBetter?: boolean;
}

/**
 * Linear interpolation of a curve's metric at `bits` (bits per weight). Undefined outside the curve's
 * range: extrapolating a quantization curve is not honest.
 */
export function metricAt(points: readonly ReportPoint[], bits: number): number | undefined {
  const p = [...points].sort((a, b) => a.bitsPerWeight - b.bitsPerWeight);
  for (let i = 0; i < p.length; i++) {
    const a = p[i] as ReportPoint;
    if (a.bitsPerWeight === bits) return a.metric;
    const b = p[i + 1];
    if (b && a.bitsPerWeight < bits && bits < b.bitsPerWeight) {
      const t = (bits - a.bitsPerWeight) / (b.bitsPerWeight - a.bitsPerWeight);
      return a.metric + t * (b.metric - a.metric);
    }
  }
  return undefined;
}

/** True when `a` is strictly better than `b` for this metric. */
export function better(metric: ReportMetric, a: number, b: number): boolean {
  return metric.direction === 'lower' ? a < b : a > b;
}

/** The budget label of the mixq plan made at a baseline's exact size (a mixq point's `budget`). */
export function equalSizeBudget(baseline: string): string {
  return `= ${baseline}`;
}

/**
 * Every baseline (uniform and rule) point with the mixq metric at its size: the mixq plan made for that
 * baseline's bytes when there is one (it may use a few bits fewer than the baseline), else the mixq
 * curve at its bits per weight (mixq curves are pooled).
 */
export function equalSizeRows(data: ReportData): EqualSizeRow[] {
  const mixq = data.series.filter((s) => s.kind === 'mixq').flatMap((s) => s.points);
  const rows: EqualSizeRow[] = [];
  for (const s of data.series) {
    if (s.kind === 'mixq') continue;
    const own = mixq.find((p) => p.budget === equalSizeBudget(s.name));
    for (const point of [...s.points].sort((a, b) => a.bitsPerWeight - b.bitsPerWeight)) {
      const m = own && s.points.length === 1 ? own.metric : metricAt(mixq, point.bitsPerWeight);
      rows.push({
        series: s.name,
        kind: s.kind,
        point,
        ...(m === undefined ? {} : { mixqMetric: m, mixqBetter: better(data.metric, m, point.metric) }),
      });
    }
  }
  return rows;
}

/** Relative change of `v` against the fp32 value, e.g. +0.031 = 3.1% higher. NaN when fp32 is 0. */
export function relativeToFp32(metric: ReportMetric, v: number): number {
  return metric.fp32 === 0 ? Number.NaN : (v - metric.fp32) / Math.abs(metric.fp32);
}

/** fp32 bytes of the quantizable weights, when known. */
export function fp32Bytes(data: ReportData): number | undefined {
  return data.model.fp32Bytes ?? (data.model.elements === undefined ? undefined : 4 * data.model.elements);
}

/**
 * '1.23 MB', '512 kB', '900 B' (decimal units, as the plan's --size flag), or with `binary` '1.50 MiB',
 * '12.0 KiB' (as llama.cpp prints GGUF sizes).
 */
export function formatBytes(n: number, binary = false): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  const [k, name] = binary ? [1024, ['KiB', 'MiB', 'GiB']] : [1000, ['kB', 'MB', 'GB']];
  if (a >= k ** 3) return `${(n / k ** 3).toFixed(2)} ${name[2]}`;
  if (a >= k ** 2) return `${(n / k ** 2).toFixed(2)} ${name[1]}`;
  if (a >= k) return `${(n / k).toFixed(1)} ${name[0]}`;
  return `${n} B`;
}

/** A metric value in log lines: four significant digits, one decimal from 100 up (2.032, 1.57, 312.4). */
export function formatMetric(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4);
}

/** Four significant digits, no exponent for ordinary magnitudes: 12.35, 0.004512, 1.235e-7. */
export function formatFigure(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}

/**
 * A 95% interval of a metric change: '+0.17..+0.62' (signed, 3 significant digits, the metric's unit
 * after it), with 'within noise' when it holds 0.
 */
export function formatChangeCi(ci: readonly [number, number], unit = ''): string {
  const f = (v: number) => {
    const t = formatFigure(Number(v.toPrecision(3)));
    return v > 0 ? `+${t}` : t;
  };
  const noise = ci[0] <= 0 && ci[1] >= 0;
  return `${f(ci[0])}..${f(ci[1])}${unit}${noise ? ' (within noise)' : ''}`;
}

/** '+3.1%', '-0.4%', '0.0%'. */
export function formatPercent(r: number, digits = 1): string {
  if (!Number.isFinite(r)) return '—';
  const s = (r * 100).toFixed(digits);
  return r > 0 && Number(s) !== 0
    ? `+${s}%`
    : s === `-${(0).toFixed(digits)}`
      ? `${(0).toFixed(digits)}%`
      : `${s}%`;
}

/** Milliseconds as '850 ms', '12.3 s', '2 min 05 s'. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * The plans tried at a budget with their validation metric, e.g. 'proxy 4.00 b/w 2.06312 (kept)': six
 * significant digits, since plans near fp32 differ in the fourth.
 */
export function selectionItems(sel: ReportSelection): string[] {
  const unit = sel.unit ?? '';
  const fp32 = sel.fp32 === undefined ? [] : [`fp32 ${formatFigure(sel.fp32, 6)}${unit}`];
  return [
    ...fp32,
    ...sel.tried.map(
      (t) =>
        `${t.label} ${t.bitsPerWeight.toFixed(2)} b/w ${formatFigure(t.validation, 6)}${unit}${t.label === sel.chosen ? ' (kept)' : ''}`,
    ),
  ];
}

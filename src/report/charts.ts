/**
 * The report's three charts as Vega-Lite specifications (https://vega.github.io/vega-lite/), built from
 * ReportData by pure functions. Rendering them (Vega-Lite -> Vega -> static SVG) is src/report/svg.ts;
 * keeping the specs apart keeps this file free of the plotting library and lets tests inspect the specs.
 *
 * (a) Pareto: x = bits per weight (scales included), y = task metric, a line with markers per series
 *     (mixq plans, uniform baselines, rule mix), fp32 as a dashed reference line; log y when the metric
 *     spans more than 20x (perplexity blows up at 2-3 bits).
 * (b) Bits map: one bar per weight, ordered by layer, height = bits per weight, colour = scheme.
 * (c) Sensitivity: damage per weight (ordered as in (b)) for each candidate scheme, log y.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ReportData, ReportLayer } from './types.ts';

/** Marker per series kind: plans stand out as filled circles, baselines squares, rule mixes diamonds. */
const SHAPE = { mixq: 'circle', uniform: 'square', rule: 'diamond' } as const;
const DASH = { mixq: [1, 0], uniform: [1, 0], rule: [6, 3] } as const;
/** Plans in a strong blue; baselines from a palette without that blue (Tableau 10, reordered). */
const MIXQ_COLORS = ['#1f4e9c', '#6a3d9a', '#b15928'];
const BASE_COLORS = [
  '#e15759',
  '#f28e2b',
  '#59a14f',
  '#b07aa1',
  '#9c755f',
  '#76b7b2',
  '#edc948',
  '#ff9da7',
  '#bab0ac',
  '#8c564b',
  '#17becf',
  '#bcbd22',
];
/** Colours for schemes / candidates (categorical, colour-blind aware order). */
export const CATEGORY_COLORS = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
  '#1f4e9c',
  '#8c564b',
];

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

/** Shared look: no ARIA descriptions (they would double the SVG size), readable fonts, light grid. */
const CONFIG = {
  aria: false,
  font: FONT,
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 600, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 220, symbolStrokeWidth: 2 },
  title: { fontSize: 14, fontWeight: 600, anchor: 'start' },
} as const;

/** Weights in bits-map order: by layer index, weights without one keep their place before/after. */
export function orderLayers<T extends { readonly layer?: number }>(weights: readonly T[]): T[] {
  const firstLayered = weights.findIndex((w) => w.layer !== undefined);
  const key = (w: T, i: number) =>
    w.layer ?? (firstLayered < 0 || i < firstLayered ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY);
  return weights
    .map((w, i) => ({ w, k: key(w, i), i }))
    .sort((a, b) => a.k - b.k || a.i - b.i)
    .map((x) => x.w);
}

/** Unique axis labels for weights (names should be unique; duplicates get their position appended). */
function uniqueLabels(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const c = seen.get(n) ?? 0;
    seen.set(n, c + 1);
    return c === 0 ? n : `${n} #${c + 1}`;
  });
}

/** Width of one band so that `n` bars fill about `target` pixels, within readable limits. */
function bandStep(n: number, target = 900): number {
  return Math.max(4, Math.min(28, Math.floor(target / Math.max(1, n))));
}

export function paretoSpec(data: ReportData): TopLevelSpec {
  const series = data.series.filter((s) => s.points.length > 0);
  const values = series.flatMap((s) =>
    s.points.map((p) => ({
      series: s.name,
      kind: s.kind,
      bpw: p.bitsPerWeight,
      mb: p.bytes / 1e6,
      metric: p.metric,
    })),
  );
  const metrics = [...values.map((v) => v.metric), data.metric.fp32];
  const lo = Math.min(...metrics);
  const hi = Math.max(...metrics);
  const logY = lo > 0 && hi / lo > 20;
  let mixqIdx = 0;
  let baseIdx = 0;
  const colors = series.map((s) =>
    s.kind === 'mixq'
      ? (MIXQ_COLORS[mixqIdx++ % MIXQ_COLORS.length] as string)
      : (BASE_COLORS[baseIdx++ % BASE_COLORS.length] as string),
  );
  const names = series.map((s) => s.name);
  const kinds = ['mixq', 'uniform', 'rule'] as const;
  const better = data.metric.direction === 'lower' ? 'lower is better' : 'higher is better';
  return {
    config: CONFIG,
    width: 640,
    height: 380,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: { filled: true, size: 60 }, clip: true },
        encoding: {
          x: {
            field: 'bpw',
            type: 'quantitative',
            title: 'bits per weight (scales included)',
            scale: { zero: false, nice: false, padding: 12 },
          },
          y: {
            field: 'metric',
            type: 'quantitative',
            title: `${data.metric.name} (${better})`,
            scale: { type: logY ? 'log' : 'linear', zero: false, padding: 12 },
            ...(logY ? { axis: { values: decades(metrics), format: '~g' } } : {}),
          },
          order: { field: 'bpw', type: 'quantitative' },
          color: {
            field: 'series',
            type: 'nominal',
            title: 'model',
            scale: { domain: names, range: colors },
          },
          shape: {
            field: 'series',
            type: 'nominal',
            title: 'model',
            scale: { domain: names, range: series.map((s) => SHAPE[s.kind]) },
          },
          strokeDash: {
            field: 'kind',
            type: 'nominal',
            legend: null,
            scale: { domain: [...kinds], range: kinds.map((k) => [...DASH[k]]) },
          },
          strokeWidth: {
            field: 'kind',
            type: 'nominal',
            legend: null,
            scale: { domain: [...kinds], range: [3, 1.6, 1.6] },
          },
        },
      },
      {
        data: { values: [{ fp32: data.metric.fp32, label: `fp32 ${fmt(data.metric.fp32)}` }] },
        layer: [
          {
            mark: { type: 'rule', color: '#555', strokeDash: [2, 3], strokeWidth: 1.2 },
            encoding: { y: { field: 'fp32', type: 'quantitative' } },
          },
          {
            // Left end: the curves approach fp32 from above/below at the large sizes on the right.
            mark: {
              type: 'text',
              align: 'left',
              baseline: 'bottom',
              dy: -3,
              x: 4,
              color: '#444',
              fontSize: 11,
            },
            encoding: { y: { field: 'fp32', type: 'quantitative' }, text: { field: 'label' } },
          },
        ],
      },
    ],
  } as TopLevelSpec;
}

/** Powers of ten spanning the positive values: tick positions for a log axis (1-2-5 ticks crowd it). */
export function decades(vals: readonly number[]): number[] {
  const pos = vals.filter((v) => v > 0 && Number.isFinite(v));
  if (pos.length === 0) return [];
  const lo = Math.floor(Math.log10(Math.min(...pos)));
  const hi = Math.ceil(Math.log10(Math.max(...pos)));
  const out: number[] = [];
  for (let k = lo; k <= hi; k++) out.push(Number(`1e${k}`));
  return out;
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(4)));
}

export function bitsMapSpec(data: ReportData): TopLevelSpec {
  const ordered = orderLayers(data.layers);
  const labels = uniqueLabels(ordered.map((l) => l.name));
  const values = ordered.map((l: ReportLayer, i) => ({
    w: labels[i],
    bpw: l.bitsPerWeight,
    scheme: l.scheme,
    layer: l.layer ?? '',
  }));
  // Legend and colours in increasing bits, so the legend reads as a scale (ties: first appearance).
  const bitsOf = new Map<string, number>();
  for (const l of ordered) if (!bitsOf.has(l.scheme)) bitsOf.set(l.scheme, l.bitsPerWeight);
  const schemes = [...bitsOf.keys()].sort((a, b) => (bitsOf.get(a) as number) - (bitsOf.get(b) as number));
  const top = Math.max(4, Math.ceil(Math.max(0, ...ordered.map((l) => l.bitsPerWeight))));
  const n = values.length;
  return {
    config: CONFIG,
    width: { step: bandStep(n) },
    height: 220,
    data: { values },
    mark: { type: 'bar', stroke: 'white', strokeWidth: n > 60 ? 0 : 0.5 },
    encoding: {
      x: {
        field: 'w',
        type: 'ordinal',
        sort: labels,
        title: `weights, ordered by layer (${n})`,
        axis: { labelAngle: -60, labelLimit: 170, labelFontSize: n > 50 ? 8 : 10, labelOverlap: n > 40 },
      },
      y: { field: 'bpw', type: 'quantitative', title: 'bits per weight', scale: { domain: [0, top] } },
      color: {
        field: 'scheme',
        type: 'nominal',
        title: 'scheme',
        sort: schemes,
        scale: {
          domain: schemes,
          range: schemes.map((_, i) => CATEGORY_COLORS[i % CATEGORY_COLORS.length] as string),
        },
      },
    },
  } as TopLevelSpec;
}

/** Number of sensitivity values left out of the log chart (zero, negative, missing or non-finite). */
export function droppedSensitivity(data: ReportData): number {
  let n = 0;
  for (const w of data.sensitivity.weights)
    for (let c = 0; c < data.sensitivity.candidates.length; c++) {
      const d = w.damage[c];
      if (d === null || d === undefined || !(d > 0) || !Number.isFinite(d)) n++;
    }
  return n;
}

export function sensitivitySpec(data: ReportData): TopLevelSpec {
  const s = data.sensitivity;
  const ordered = orderLayers(s.weights);
  const labels = uniqueLabels(ordered.map((w) => w.name));
  const values = ordered.flatMap((w, i) =>
    s.candidates.flatMap((c, j) => {
      const d = w.damage[j];
      return d !== null && d !== undefined && d > 0 && Number.isFinite(d)
        ? [{ w: labels[i], candidate: c, damage: d }]
        : [];
    }),
  );
  const n = ordered.length;
  return {
    config: CONFIG,
    width: { step: bandStep(n) },
    height: 300,
    data: { values },
    mark: { type: 'line', point: { filled: true, size: 24 }, strokeWidth: 1.4 },
    encoding: {
      x: {
        field: 'w',
        type: 'ordinal',
        sort: labels,
        scale: { domain: labels },
        title: `weights, ordered by layer (${n})`,
        axis: { labelAngle: -60, labelLimit: 170, labelFontSize: n > 50 ? 8 : 10, labelOverlap: n > 40 },
      },
      y: {
        field: 'damage',
        type: 'quantitative',
        title: `${s.measure} (log)`,
        scale: { type: 'log' },
        axis: { values: decades(values.map((v) => v.damage)), format: '.0e' },
      },
      color: {
        field: 'candidate',
        type: 'nominal',
        title: 'candidate',
        sort: [...s.candidates],
        scale: {
          domain: [...s.candidates],
          range: s.candidates.map((_, i) => CATEGORY_COLORS[i % CATEGORY_COLORS.length] as string),
        },
      },
    },
  } as TopLevelSpec;
}

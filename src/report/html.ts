/**
 * The self-contained HTML report: one file, no network (no scripts, no CDN, no web fonts — system font
 * stack), charts as inline static SVG rendered by Vega-Lite/Vega (src/report/svg.ts), tables for the
 * plan, the baselines at equal size, proxy correlations and timings. Print-friendly (figures and tables
 * do not split across pages). Every text that comes from data is escaped with escapeHtml.
 *
 * Async because Vega renders asynchronously; load this module lazily (the CLI does) since it pulls the
 * plotting libraries in.
 */
import { bitsMapSpec, droppedSensitivity, paretoSpec, sensitivitySpec } from './charts.ts';
import {
  formatChangeCi,
  equalSizeRows,
  formatBytes,
  formatMs,
  formatFigure,
  formatPercent,
  fp32Bytes,
  relativeToFp32,
  selectionItems,
} from './summary.ts';
import { renderSvg } from './svg.ts';
import type { ReportData } from './types.ts';

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const e = escapeHtml;

/**
 * Prefix the element ids inside one inline SVG (Vega's clip paths) and the references to them, so ids
 * of different charts cannot collide in the one HTML document whatever the renderer's numbering.
 */
function scopeIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1d232b;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #e3e6ea; }
.sub { color: #5a6470; margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; margin: 16px 0 8px; }
.card { border: 1px solid #e3e6ea; border-radius: 8px; padding: 10px 14px; }
.card .k { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: #5a6470; }
.card .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .d { font-size: 13px; color: #5a6470; }
figure { margin: 12px 0 0; break-inside: avoid; page-break-inside: avoid; }
figure .chart { overflow-x: auto; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #5a6470; font-size: 13px; margin-top: 6px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; font-variant-numeric: tabular-nums;
  break-inside: avoid; page-break-inside: avoid; }
th, td { padding: 4px 12px; border-bottom: 1px solid #e9ecef; text-align: left; }
th { font-weight: 600; background: #f3f5f7; }
td.n, th.n { text-align: right; }
td.win { color: #1b7a3a; font-weight: 600; }
td.loss { color: #b3261e; font-weight: 600; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.notes li { color: #3d4650; }
footer { margin-top: 40px; color: #8a939c; font-size: 12px; }
@media print {
  body { background: #fff; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
`;

function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly boolean[],
): string {
  // A key/value table has no header row.
  const th = head.every((h) => h === '')
    ? ''
    : `<thead><tr>${head.map((h, i) => `<th${numeric[i] ? ' class="n"' : ''}>${h}</th>`).join('')}</tr></thead>`;
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => (c.startsWith('<td') ? c : `<td${numeric[i] ? ' class="n"' : ''}>${c}</td>`)).join('')}</tr>`,
    )
    .join('\n');
  return `<table>${th}<tbody>\n${body}\n</tbody></table>`;
}

function card(k: string, v: string, d: string): string {
  return `<div class="card"><div class="k">${k}</div><div class="v">${v}</div><div class="d">${d}</div></div>`;
}

/** The four summary cards: plan, size, metric, predicted damage. */
function summaryCards(data: ReportData): string {
  const m = data.metric;
  const p = data.plan;
  const fp32 = fp32Bytes(data);
  return [
    card('plan', `${p.bitsPerWeight.toFixed(2)} b/w`, `budget ${e(p.budget)}, ${p.weights} weights`),
    card(
      'size',
      formatBytes(p.bytes),
      fp32 ? `${((100 * p.bytes) / fp32).toFixed(1)}% of fp32 (${formatBytes(fp32)})` : 'quantized weights',
    ),
    card(
      e(m.name),
      p.metric === undefined ? '—' : e(formatFigure(p.metric) + (m.unit ?? '')),
      `${p.metric === undefined ? 'not evaluated' : `${formatPercent(relativeToFp32(m, p.metric))} vs`} fp32 ${e(formatFigure(m.fp32) + (m.unit ?? ''))} (${m.direction} is better)`,
    ),
    card(
      'predicted damage',
      e(formatFigure(p.predictedDamage)),
      p.measuredDamage === undefined ? 'proxy total' : `measured ${e(formatFigure(p.measuredDamage))}`,
    ),
  ].join('');
}

/** The plan's table rows. */
function planTable(data: ReportData): string[][] {
  const m = data.metric;
  const p = data.plan;
  const fp32 = fp32Bytes(data);
  return [
    ['model', `${e(data.model.name)} <span class="sub">(${e(data.model.format)})</span>`],
    ['budget', e(p.budget)],
    ['budgets swept', e(data.budgets.join(', ') || '—')],
    ['weights quantized', `${p.weights} (${p.elements.toLocaleString('en-US')} elements)`],
    ['bits per weight', `${p.bitsPerWeight.toFixed(3)} (scales included)`],
    ['stored bytes', `${p.bytes.toLocaleString('en-US')} (${formatBytes(p.bytes)})`],
    ...(fp32 ? [['compression vs fp32', `${(fp32 / p.bytes).toFixed(2)}x`]] : []),
    [
      e(m.name),
      p.metric === undefined
        ? '—'
        : `${e(formatFigure(p.metric))} (fp32 ${e(formatFigure(m.fp32))}, ${formatPercent(relativeToFp32(m, p.metric))})`,
    ],
    ...(p.metricChangeCi ? [['change vs fp32 (95% CI)', e(formatChangeCi(p.metricChangeCi, m.unit))]] : []),
    ['predicted damage', e(formatFigure(p.predictedDamage))],
    ...(p.measuredDamage === undefined ? [] : [['measured damage', e(formatFigure(p.measuredDamage))]]),
    ...(p.solver ? [['solver', e(`${p.solver}${p.solverStatus ? ` (${p.solverStatus})` : ''}`)]] : []),
    ...(p.selection
      ? [
          [
            'chosen on validation',
            `${selectionItems(p.selection).map(e).join('<br>')}<br><span class="sub">${e(p.selection.metric)}${p.validation ? `; ${e(p.validation)}` : ''}</span>`,
          ],
        ]
      : []),
  ];
}

/** Weights, share of elements and bytes per scheme of the plan. */
function schemeTable(data: ReportData): string[][] {
  const schemeUse = new Map<string, { n: number; elements: number; bytes: number }>();
  for (const l of data.layers) {
    const u = schemeUse.get(l.scheme) ?? { n: 0, elements: 0, bytes: 0 };
    schemeUse.set(l.scheme, {
      n: u.n + 1,
      elements: u.elements + (l.elements ?? 0),
      bytes: u.bytes + (l.bytes ?? 0),
    });
  }
  const totalElements = [...schemeUse.values()].reduce((s, u) => s + u.elements, 0);
  return [...schemeUse].map(([s, u]) => [
    `<code>${e(s)}</code>`,
    String(u.n),
    totalElements > 0 ? `${((100 * u.elements) / totalElements).toFixed(1)}%` : '—',
    u.bytes > 0 ? formatBytes(u.bytes) : '—',
  ]);
}

/** The mixq plans per budget. */
function mixqTable(data: ReportData): string[][] {
  const m = data.metric;
  return data.series
    .filter((s) => s.kind === 'mixq')
    .flatMap((s) =>
      [...s.points]
        .sort((a, b) => a.bitsPerWeight - b.bitsPerWeight)
        .map((pt) => [
          e(s.name),
          e(pt.budget ?? '—'),
          pt.bitsPerWeight.toFixed(2),
          formatBytes(pt.bytes),
          e(formatFigure(pt.metric)),
          formatPercent(relativeToFp32(m, pt.metric)),
          pt.metricChangeCi ? e(formatChangeCi(pt.metricChangeCi, m.unit)) : '—',
          pt.predictedDamage === undefined ? '—' : e(formatFigure(pt.predictedDamage)),
          e(pt.selection?.chosen ?? 'proxy'),
        ]),
    );
}

/** The baselines at equal size, and how many of them mixq beats. */
function equalSizeTable(data: ReportData): { rows: string[][]; compared: number; wins: number } {
  const eq = equalSizeRows(data);
  const rows = eq.map((r) => [
    e(r.series),
    r.kind === 'rule' ? 'rule mix' : 'uniform',
    r.point.bitsPerWeight.toFixed(2),
    formatBytes(r.point.bytes),
    e(formatFigure(r.point.metric)),
    r.mixqMetric === undefined
      ? '<td class="n">— (outside the plans\' range)</td>'
      : `<td class="n ${r.mixqBetter ? 'win' : 'loss'}">${e(formatFigure(r.mixqMetric))}</td>`,
    r.mixqMetric === undefined
      ? '—'
      : formatPercent((r.mixqMetric - r.point.metric) / Math.abs(r.point.metric)),
  ]);
  const compared = eq.filter((r) => r.mixqBetter !== undefined);
  const wins = compared.filter((r) => r.mixqBetter).length;
  return { rows, compared: compared.length, wins };
}

/** Proxy correlations and step timings. */
function correlationTable(data: ReportData): string[][] {
  return data.correlations.map((c) => [
    e(c.proxy),
    e(c.model ?? '—'),
    c.spearman.toFixed(3),
    c.kendall === undefined ? '—' : c.kendall.toFixed(3),
    String(c.n),
  ]);
}

function timingTable(data: ReportData): string[][] {
  const totalMs = data.timings.reduce((s, t) => s + t.ms, 0);
  return [
    ...data.timings.map((t) => [
      e(t.step),
      formatMs(t.ms),
      totalMs > 0 ? `${((100 * t.ms) / totalMs).toFixed(0)}%` : '—',
    ]),
    ['<b>total</b>', `<b>${formatMs(totalMs)}</b>`, ''],
  ];
}

/** Render the report; resolves to the complete HTML document. */
export async function renderHtmlReport(data: ReportData): Promise<string> {
  const m = data.metric;
  const p = data.plan;
  const title = data.title ?? `mixq report: ${data.model.name}`;
  const [pareto, bits, sens] = (
    await Promise.all([
      renderSvg(paretoSpec(data)),
      renderSvg(bitsMapSpec(data)),
      renderSvg(sensitivitySpec(data)),
    ])
  ).map((svg, i) => scopeIds(svg, ['pareto', 'bits', 'sens'][i] as string));

  const cards = summaryCards(data);

  const planRows = planTable(data);
  const schemeRows = schemeTable(data);

  const mixqRows = mixqTable(data);
  const eq = equalSizeTable(data);
  const eqRows = eq.rows;

  const corrRows = correlationTable(data);
  const timingRows = timingTable(data);
  const dropped = droppedSensitivity(data);
  const series = data.series.filter((s) => s.points.length > 0);

  const gen = data.generated;
  const footer = [gen?.by, gen?.at, gen?.command ? `<code>${e(gen.command)}</code>` : undefined]
    .filter((x): x is string => Boolean(x))
    .map((x, i) => (i < 2 ? e(x) : x))
    .join(' · ');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${e(title)}</h1>
<p class="sub">${e(data.model.name)} (${e(data.model.format)}) · ${e(m.name)}, ${m.direction} is better · fp32 ${e(formatFigure(m.fp32) + (m.unit ?? ''))}</p>
<div class="cards">${cards}</div>
${data.notes && data.notes.length > 0 ? `<ul class="notes">${data.notes.map((n) => `<li>${e(n)}</li>`).join('')}</ul>` : ''}

<h2>Size vs ${e(m.name)}</h2>
<figure id="pareto"><div class="chart">${pareto}</div>
<figcaption>${series.length} series: mixq plans (one point per budget) against uniform baselines and the rule mix.
Size in bits per weight including scales; the dashed line is fp32.${eq.compared > 0 ? ` At equal size mixq is better than ${eq.wins} of ${eq.compared} baseline points.` : ''}</figcaption></figure>

<h2>Bits per weight, by layer</h2>
<figure id="bits"><div class="chart">${bits}</div>
<figcaption>The chosen plan (${e(p.budget)}): one bar per weight, coloured by scheme.</figcaption></figure>

<h2>Sensitivity</h2>
<figure id="sensitivity"><div class="chart">${sens}</div>
<figcaption>${e(data.sensitivity.measure)} of each weight quantized alone, per candidate scheme (log scale).${dropped > 0 ? ` ${dropped} zero or missing values not shown.` : ''}</figcaption></figure>

<h2>Plan</h2>
${table(['', ''], planRows, [false, false])}
${schemeRows.length > 0 ? table(['scheme', 'weights', 'elements', 'bytes'], schemeRows, [false, true, true, true]) : ''}

<h2>mixq plans per budget</h2>
${mixqRows.length > 0 ? table(['series', 'budget', 'b/w', 'size', e(m.name), 'vs fp32', 'change, 95% CI', 'predicted damage', 'plan kept'], mixqRows, [false, false, true, true, true, true, true, true, false]) : '<p>No plans evaluated.</p>'}

<h2>Baselines at equal size</h2>
${eqRows.length > 0 ? table(['baseline', 'kind', 'b/w', 'size', e(m.name), `mixq ${e(m.name)} at this size`, 'mixq vs baseline'], eqRows, [false, false, true, true, true, true, true]) : '<p>No baselines evaluated.</p>'}
<p class="sub">mixq at a baseline's size is interpolated linearly between the two nearest plans; green = mixq better.</p>

<h2>Proxy vs measured damage</h2>
${corrRows.length > 0 ? table(['proxy', 'model', 'Spearman ρ', 'Kendall τ', 'pairs'], corrRows, [false, false, true, true, true]) : '<p>Not measured.</p>'}

<h2>Timings</h2>
${table(['step', 'time', 'share'], timingRows, [false, true, true])}

<footer>${footer || 'mixq'}</footer>
</main>
</body>
</html>
`;
}

/**
 * HTML report: one inline SVG per chart with the number of series / marks / legend entries the data
 * implies (counted in the SVG Vega writes), no network references, every untrusted name escaped.
 * Vega is loaded once; each full render takes a second or two.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { droppedSensitivity } from '../../src/report/charts.ts';
import { escapeHtml, renderHtmlReport } from '../../src/report/html.ts';
import type { ReportData } from '../../src/report/types.ts';
import { demoReport, HOSTILE_NAME } from './fixture.ts';

/** The markup of the first `<g class="CLASS...">` group at or after `from`, up to its matching `</g>`. */
function groupsWithClass(svg: string, classPrefix: string): string[] {
  const out: string[] = [];
  let i = svg.indexOf(`<g class="${classPrefix}`);
  while (i >= 0) {
    let depth = 0;
    const re = /<g[\s>]|<\/g>/g;
    re.lastIndex = i;
    let end = -1;
    for (let m = re.exec(svg); m; m = re.exec(svg)) {
      depth += m[0] === '</g>' ? -1 : 1;
      if (depth === 0) {
        end = m.index + 4;
        break;
      }
    }
    assert.ok(end > 0, 'unbalanced <g>');
    out.push(svg.slice(i, end));
    i = svg.indexOf(`<g class="${classPrefix}`, end);
  }
  return out;
}
const count = (s: string, needle: string) => s.split(needle).length - 1;
const paths = (groups: readonly string[]) => groups.reduce((n, g) => n + count(g, '<path'), 0);
/** Text of legend labels, in order (Vega writes one <text> per label). */
const legendLabels = (svg: string) =>
  groupsWithClass(svg, 'mark-text role-legend-label').flatMap((g) =>
    [...g.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] as string),
  );

function figureSvg(html: string, id: string): string {
  const start = html.indexOf(`<figure id="${id}">`);
  assert.ok(start >= 0, `figure ${id}`);
  const end = html.indexOf('</figure>', start);
  const fig = html.slice(start, end);
  assert.equal(count(fig, '<svg'), 1, `one svg in ${id}`);
  return fig.slice(fig.indexOf('<svg'), fig.indexOf('</svg>') + 6);
}

describe('renderHtmlReport', () => {
  let data: ReportData;
  let html: string;
  before(async () => {
    data = demoReport();
    html = await renderHtmlReport(data);
  });

  test('is one self-contained document: three inline SVGs, no script, no network references', () => {
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.equal(count(html, '<svg'), 3);
    assert.equal(count(html, '</svg>'), 3);
    assert.ok(
      !/<script|<link|<img|<iframe|@import|url\((?!#)/i.test(html),
      'no scripts, links, images, imports',
    );
    const urls = [...html.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'<)]*/gi)].map((m) => m[0]);
    const allowed = new Set(['http://www.w3.org/2000/svg', 'http://www.w3.org/1999/xlink']);
    assert.deepEqual(
      urls.filter((u) => !allowed.has(u)),
      [],
    );
  });

  test('Pareto chart: a line per series, a marker per point, a legend entry per series', () => {
    const svg = figureSvg(html, 'pareto');
    const series = data.series.filter((s) => s.points.length > 0);
    const lines = groupsWithClass(svg, 'mark-line role-mark');
    assert.equal(lines.length, series.length);
    assert.equal(paths(lines), series.length);
    const points = series.reduce((n, s) => n + s.points.length, 0);
    assert.equal(points, 17); // fixture: 7 plans + 8 single-point baselines + 2 rule-mix points
    assert.equal(paths(groupsWithClass(svg, 'mark-symbol role-mark')), points);
    assert.deepEqual(
      legendLabels(svg),
      series.map((s) => s.name),
    );
    assert.equal(groupsWithClass(svg, 'mark-rule role-mark').length, 1, 'the fp32 reference line');
  });

  test('bits map: a bar per weight, a legend entry per scheme', () => {
    const svg = figureSvg(html, 'bits');
    assert.equal(paths(groupsWithClass(svg, 'mark-rect role-mark')), data.layers.length);
    const byBits = [...new Map(data.layers.map((l) => [l.scheme, l.bitsPerWeight])).entries()]
      .sort((a, b) => a[1] - b[1])
      .map(([s]) => s);
    assert.deepEqual(legendLabels(svg), byBits, 'schemes in increasing bits');
  });

  test('sensitivity chart: a line per candidate, a marker per (weight, candidate), log axis', () => {
    const svg = figureSvg(html, 'sensitivity');
    const s = data.sensitivity;
    const lines = groupsWithClass(svg, 'mark-line role-mark');
    assert.equal(lines.length, s.candidates.length);
    assert.equal(droppedSensitivity(data), 0);
    assert.equal(
      paths(groupsWithClass(svg, 'mark-symbol role-mark')),
      s.weights.length * s.candidates.length,
    );
    assert.deepEqual(legendLabels(svg), [...s.candidates]);
    assert.ok(svg.includes('>1e-6<'), 'decade tick labels');
    // Clip-path ids are scoped per chart and every reference resolves within the document.
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'ids unique');
    for (const m of html.matchAll(/url\(#([^)]+)\)/g))
      assert.ok(ids.includes(m[1]), `url(#${m[1]}) resolves`);
  });

  test('sensitivity values that cannot go on a log axis are left out and counted', async () => {
    const d = demoReport({ blocks: 2 });
    const weights = d.sensitivity.weights.map((w, i) =>
      i === 0 ? { ...w, damage: w.damage.map((x, j) => (j === 0 ? 0 : j === 1 ? null : x)) } : w,
    );
    const d2: ReportData = { ...d, sensitivity: { ...d.sensitivity, weights } };
    assert.equal(droppedSensitivity(d2), 2);
    const svg = figureSvg(await renderHtmlReport(d2), 'sensitivity');
    const n = d2.sensitivity.weights.length * d2.sensitivity.candidates.length - 2;
    assert.equal(paths(groupsWithClass(svg, 'mark-symbol role-mark')), n);
  });

  test('tables: plan totals, one row per baseline point at equal size, correlations, timings', () => {
    assert.ok(html.includes(data.plan.bytes.toLocaleString('en-US')));
    const eq = html.slice(html.indexOf('<h2>Baselines at equal size'), html.indexOf('<h2>Proxy'));
    const baselinePoints = data.series
      .filter((s) => s.kind !== 'mixq')
      .reduce((n, s) => n + s.points.length, 0);
    assert.equal(count(eq, '<tr>') - 1, baselinePoints);
    assert.equal(count(eq, 'outside the plans'), 2, 'INT8 and FP8 lie beyond the largest plan');
    for (const c of data.correlations) assert.ok(html.includes(c.spearman.toFixed(3)));
    assert.ok(html.includes('1 min 49 s'), 'timings total');
  });

  test('untrusted names are escaped everywhere, in tables and inside the SVG charts', async () => {
    const d = demoReport({ blocks: 2, hostile: true });
    const weird = 'x" onload="alert(1)';
    const d2: ReportData = {
      ...d,
      series: [
        ...d.series,
        {
          name: HOSTILE_NAME.replace('x', 'y'),
          kind: 'uniform',
          points: [{ bitsPerWeight: 4.2, bytes: 1000, metric: 6 }],
        },
      ],
      layers: d.layers.map((l, i) => (i === 2 ? { ...l, scheme: `${weird}<marquee>` } : l)),
      timings: [{ step: '<img src=x>', ms: 5 }],
    };
    const h = await renderHtmlReport(d2);
    assert.ok(!h.includes('<script'), 'no raw <script');
    assert.ok(!h.includes('<img'), 'no raw <img');
    assert.ok(!h.includes('<marquee'), 'no raw tag from a scheme label');
    // A quote inside text content is harmless; what must not happen is a tag gaining an attribute.
    assert.ok(!/<[^>]*\sonload=/i.test(h), 'no attribute break-out');
    assert.ok(h.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'), 'escaped in the HTML tables');
    // Inside the SVGs the names appear as escaped text (axis labels, legend entries).
    const bits = figureSvg(h, 'bits');
    assert.ok(bits.includes('&lt;script&gt;'), 'weight name escaped in the bits map axis');
    assert.ok(figureSvg(h, 'pareto').includes('&lt;script&gt;'), 'series name escaped in the legend');
  });

  test('a minimal report (one plan, no baselines, no sensitivity, no timings) still renders', async () => {
    const d = demoReport({ blocks: 1 });
    const min: ReportData = {
      ...d,
      series: [{ name: 'mixq', kind: 'mixq', points: [{ bitsPerWeight: 4, bytes: 100, metric: 5.5 }] }],
      sensitivity: { measure: 'KL', candidates: [], weights: [] },
      correlations: [],
      timings: [],
    };
    const h = await renderHtmlReport(min);
    assert.equal(count(h, '<svg'), 3);
    assert.equal(groupsWithClass(figureSvg(h, 'pareto'), 'mark-line role-mark').length, 1);
    assert.ok(h.includes('No baselines evaluated.') && h.includes('Not measured.'));
  });

  test('escapeHtml', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

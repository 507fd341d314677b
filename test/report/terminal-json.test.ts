/**
 * Terminal summary (fixed-width layout, colour only on request, totals shown, control characters from
 * names neutralised), stable JSON (round trip, key order independence, refusals), and the equal-size
 * comparison against a brute-force reference.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MixqError } from '../../src/core/errors.ts';
import { parseReportJson, reportJson } from '../../src/report/json.ts';
import {
  equalSizeBudget,
  equalSizeRows,
  formatBytes,
  formatPercent,
  metricAt,
} from '../../src/report/summary.ts';
import { renderHtmlReport } from '../../src/report/html.ts';
import { renderTerminalSummary, stripAnsi } from '../../src/report/terminal.ts';
import type { ReportData, ReportPoint } from '../../src/report/types.ts';
import { demoReport, HOSTILE_NAME } from './fixture.ts';

const data = demoReport();

describe('renderTerminalSummary', () => {
  test('no colour codes unless asked; with colour the visible text is identical', () => {
    const plain = renderTerminalSummary(data, { color: false, width: 100 });
    const color = renderTerminalSummary(data, { color: true, width: 100 });
    assert.ok(!plain.includes('\u001b'));
    assert.ok(color.includes('\u001b[1m') && color.includes('\u001b[32m'));
    assert.equal(stripAnsi(color), plain);
  });

  for (const width of [60, 80, 100, 140]) {
    test(`lines up at width ${width}: every line fits, table rows have one width and aligned columns`, () => {
      const lines = stripAnsi(renderTerminalSummary(data, { color: true, width })).split('\n');
      for (const l of lines) assert.ok(l.length <= width, `${l.length} > ${width}: ${l}`);
      const rules = lines.flatMap((l, i) => (/^-+$/.test(l) ? [i] : []));
      assert.equal(rules.length, 2);
      const [a, b] = rules as [number, number];
      const rowW = (lines[a] as string).length;
      const header = lines[a - 1] as string;
      assert.equal(header.length, rowW);
      const body = lines.slice(a + 1, b);
      const points = data.series.reduce((n, s) => n + s.points.length, 0);
      assert.equal(body.length, points, 'one row per evaluated model');
      // Right-aligned numeric columns: each column's last character sits at the header's column end.
      const ends = [...header.replace('vs fp32', 'vs_fp32').matchAll(/\S+/g)]
        .map((m) => (m.index as number) + m[0].length)
        .slice(1);
      for (const row of body) {
        assert.equal(row.length, rowW, row);
        for (const end of ends.slice(0, 4)) assert.notEqual(row[end - 1], ' ', `column end ${end}: ${row}`);
      }
    });
  }

  test('shows the plan totals, the fp32 metric, the baselines and the total time', () => {
    const s = renderTerminalSummary(data, { color: false });
    assert.ok(s.includes(`${data.plan.bitsPerWeight.toFixed(2)} b/w`));
    assert.ok(s.includes(formatBytes(data.plan.bytes)));
    assert.ok(s.includes(`${data.plan.weights} weights`));
    assert.ok(s.includes(`fp32 = ${data.metric.fp32}`));
    for (const x of data.series) assert.ok(s.includes(x.name), x.name);
    assert.ok(s.includes('total 1 min 49 s'));
    assert.ok(s.includes('mixq better at equal size than 8 of 8 baseline points'));
  });

  test('control characters and markup in names cannot move the cursor', () => {
    const d = demoReport({ hostile: true });
    const evil: ReportData = {
      ...d,
      series: [
        ...d.series,
        { name: 'bad\u001b[2J\rname', kind: 'uniform', points: [{ bitsPerWeight: 4, bytes: 9, metric: 6 }] },
      ],
    };
    const s = renderTerminalSummary(evil, { color: false, width: 80 });
    assert.ok(!s.includes('\u001b') && !s.includes('\r'));
    assert.ok(s.includes('bad?[2J?name'));
    assert.ok(s.includes(HOSTILE_NAME.slice(0, 10)), 'markup is harmless in a terminal and kept');
  });
});

describe('reportJson', () => {
  test('round trip', () => {
    const text = reportJson(data);
    assert.deepEqual(parseReportJson(text), JSON.parse(JSON.stringify(data)));
    assert.equal(reportJson(parseReportJson(text)), text);
    assert.ok(text.endsWith('}\n'));
  });

  test('stable: output does not depend on key insertion order', () => {
    const reversed = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reversed)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reversed(x)]),
            )
          : v;
    assert.equal(reportJson(reversed(data) as ReportData), reportJson(data));
    const keys = [...reportJson(data).matchAll(/^ {2}"(\w+)":/gm)].map((m) => m[1]);
    assert.deepEqual(keys, [...keys].sort());
  });

  test('refuses non-finite numbers and malformed input, with a MixqError naming the field', () => {
    const bad = { ...data, plan: { ...data.plan, metric: Number.NaN } };
    assert.throws(
      () => reportJson(bad),
      (e: unknown) => e instanceof MixqError && e.field === 'plan.metric',
    );
    assert.throws(() => parseReportJson('{'), MixqError);
    assert.throws(() => parseReportJson(reportJson({ ...data, schemaVersion: 2 as 1 })), /schemaVersion/);
    const t = JSON.parse(reportJson(data));
    t.series[3].points[0].metric = 'x';
    assert.throws(() => parseReportJson(JSON.stringify(t)), /series\[3\]\.points\[0\]/);
  });
});

describe('equal-size comparison', () => {
  // Reference: the metric at `x` on the piecewise-linear curve, by scanning every segment.
  function reference(points: readonly ReportPoint[], x: number): number | undefined {
    let hit: number | undefined;
    for (const a of points)
      for (const b of points) {
        if (a.bitsPerWeight === x) hit = a.metric;
        const between = points.every(
          (p) => p.bitsPerWeight <= a.bitsPerWeight || p.bitsPerWeight >= b.bitsPerWeight,
        );
        if (a.bitsPerWeight < x && x < b.bitsPerWeight && between)
          hit =
            a.metric + ((x - a.bitsPerWeight) / (b.bitsPerWeight - a.bitsPerWeight)) * (b.metric - a.metric);
      }
    return hit;
  }
  test('metricAt matches a brute-force segment scan (property)', () => {
    const pt = fc.record({
      bitsPerWeight: fc.integer({ min: 2, max: 40 }).map((v) => v / 4),
      metric: fc.double({ min: 1, max: 100, noNaN: true }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(pt, { minLength: 1, maxLength: 8, selector: (p) => p.bitsPerWeight }),
        fc.integer({ min: 0, max: 44 }),
        (ps, xi) => {
          const points = ps.map((p) => ({ ...p, bytes: 0 }));
          const x = xi / 4;
          const got = metricAt(points, x);
          const want = reference(points, x);
          if (want === undefined) assert.equal(got, undefined);
          else assert.ok(got !== undefined && Math.abs(got - want) <= 1e-9 * Math.abs(want));
        },
      ),
    );
  });

  test('rows: one per baseline point; mixq better decided by the metric direction', () => {
    const rows = equalSizeRows(data);
    assert.equal(rows.length, 10);
    const int4 = rows.find((r) => r.series === 'INT4 RTN g32');
    assert.ok(int4 && int4.mixqMetric !== undefined);
    assert.equal(int4.mixqMetric, data.series[0]?.points.find((p) => p.bitsPerWeight === 4.5)?.metric);
    assert.equal(int4.mixqBetter, true);
    const flipped = equalSizeRows({ ...data, metric: { ...data.metric, direction: 'higher' } });
    assert.equal(flipped.find((r) => r.series === 'INT4 RTN g32')?.mixqBetter, false);
    assert.equal(formatPercent(0.0312), '+3.1%');
    assert.equal(formatPercent(-0.00001), '0.0%');
  });

  test("rows: the mixq plan made for a baseline's bytes counts even below the baseline's bits", () => {
    // a plan with FP16 layers at INT8's size uses a few bits fewer than INT8 and no mixq point lies above
    const top = Math.max(...data.series.flatMap((s) => s.points.map((p) => p.bitsPerWeight)));
    const base = {
      name: 'INT16-ish',
      kind: 'uniform' as const,
      points: [{ bitsPerWeight: top + 1, bytes: 1e9, metric: 5 }],
    };
    const plain = { ...data, series: [...data.series, base] };
    assert.equal(equalSizeRows(plain).find((r) => r.series === 'INT16-ish')?.mixqMetric, undefined);
    const mixq = data.series[0]!;
    const own = {
      bitsPerWeight: top + 0.999,
      bytes: 1e9 - 1,
      metric: 4,
      budget: equalSizeBudget('INT16-ish'),
    };
    const made = {
      ...data,
      series: [{ ...mixq, points: [...mixq.points, own] }, ...data.series.slice(1), base],
    };
    const row = equalSizeRows(made).find((r) => r.series === 'INT16-ish');
    assert.equal(row?.mixqMetric, 4);
    assert.equal(row?.mixqBetter, data.metric.direction === 'lower');
  });
});

describe('module boundaries', () => {
  test('only svg.ts touches the plotting libraries, and only through dynamic import()', () => {
    const dir = 'src/report';
    for (const f of readdirSync(dir)) {
      const src = readFileSync(join(dir, f), 'utf8');
      const staticImports = [...src.matchAll(/^import\s(?!type\b)[^;]*from\s+'(vega[^']*)'/gm)].map(
        (m) => m[1],
      );
      assert.deepEqual(staticImports, [], `${f} statically imports ${staticImports.join(', ')}`);
      if (f !== 'svg.ts') assert.ok(!/import\(\s*'vega/.test(src), f);
      if (f === 'index.ts')
        assert.ok(!/export[^;]*'\.\/html\.ts'/.test(src), 'index.ts does not export the HTML renderer');
    }
  });
});

test('the change interval vs fp32: shown on the plan line, marked within noise when it holds 0, validated', () => {
  const withCi = (ci: [number, number]): ReportData => ({
    ...data,
    plan: { ...data.plan, metricChangeCi: ci },
    series: data.series.map((s, i) =>
      i === 0 ? { ...s, points: s.points.map((p) => ({ ...p, metricChangeCi: ci })) } : s,
    ),
  });
  const unit = data.metric.unit ?? '';
  const out = renderTerminalSummary(withCi([0.12, 0.4]), { color: false, width: 140 });
  assert.ok(out.includes(`95% CI +0.12..+0.4${unit}`), out);
  assert.ok(!out.includes('within noise'));
  const noisy = renderTerminalSummary(withCi([-0.3, 0.2]), { color: false, width: 140 });
  assert.ok(noisy.includes(`-0.3..+0.2${unit} (within noise)`), noisy);
  // round trip; an interval with low > high is refused with its field named
  const ok = withCi([-0.3, 0.2]);
  assert.deepEqual(parseReportJson(reportJson(ok)).plan.metricChangeCi, [-0.3, 0.2]);
  const bad = JSON.parse(reportJson(ok)) as { series: { points: { metricChangeCi: number[] }[] }[] };
  bad.series[0]!.points[0]!.metricChangeCi = [0.2, -0.3];
  assert.throws(() => parseReportJson(JSON.stringify(bad)), /series\[0\]\.points\[0\]\.metricChangeCi/);
});

test('the plans tried on validation: listed under the plan with the kept one marked, escaped, validated', async () => {
  const selection = {
    chosen: 'uniform fp8_e4m3-pc-rtn',
    metric: 'bits/char on validation',
    tried: [
      { label: 'proxy', bitsPerWeight: 8.1, bytes: 1000, validation: 2.0626 },
      { label: 'uniform fp8_e4m3-pc-rtn', bitsPerWeight: 8.125, bytes: 1003, validation: 2.0618 },
      { label: HOSTILE_NAME, bitsPerWeight: 8.125, bytes: 1003, validation: 2.0623 },
    ],
  };
  const withSel: ReportData = { ...data, plan: { ...data.plan, selection } };
  const out = renderTerminalSummary(withSel, { color: false, width: 200 });
  assert.match(out, /chosen on validation \(bits\/char on validation\): proxy 8\.10 b\/w 2\.0626/);
  assert.ok(out.includes('uniform fp8_e4m3-pc-rtn 8.13 b/w 2.0618 (kept)'), out);
  assert.equal(out.match(/\(kept\)/g)?.length, 1);
  const html = await renderHtmlReport(withSel);
  assert.ok(html.includes('uniform fp8_e4m3-pc-rtn 8.13 b/w 2.0618 (kept)'));
  assert.ok(!html.includes(HOSTILE_NAME), 'labels are escaped');
  assert.deepEqual(parseReportJson(reportJson(withSel)).plan.selection, selection);
  const bad = JSON.parse(reportJson(withSel)) as { plan: { selection: { tried: unknown } } };
  bad.plan.selection.tried = 'proxy';
  assert.throws(() => parseReportJson(JSON.stringify(bad)), /plan\.selection/);
});

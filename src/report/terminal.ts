/**
 * The compact terminal summary `mixq quantize` prints: a header (model, metric, plan totals), one table
 * row per evaluated model (mixq plans per budget, then each baseline with the mixq metric at its size),
 * and the timings. Fixed-width columns; the name column shrinks to fit `width`. ANSI colour only when
 * asked (the CLI passes `color: process.stdout.isTTY`): bold header, green/red where mixq wins/loses.
 */
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
import type { ReportData } from './types.ts';
import { describeResult } from '../analysis/output-measures.ts';

export interface TerminalOptions {
  /** Emit ANSI colour codes (only for a TTY). */
  readonly color: boolean;
  /** Target line width in columns (default 100, at least 60). */
  readonly width?: number;
}

const ESC = '\u001b[';
/** Strip ANSI colour codes (for measuring and for tests). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex -- matching the escape character is the point
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}

/** Cut to `n` visible characters with an ellipsis; names from model files can be long. */
function fit(s: string, n: number): string {
  // Control characters from untrusted names would move the cursor: show them as '?'.
  // eslint-disable-next-line no-control-regex -- replacing control characters is the point
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length <= n ? clean : `${clean.slice(0, Math.max(0, n - 1))}…`;
}

/** Word-wrap `items` joined by ' · ' into lines of at most `width`, each starting with `lead`. */
function wrap(lead: string, items: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let cur = lead;
  for (const it of items) {
    const sep = cur === lead ? '' : ' · ';
    if (cur !== lead && cur.length + sep.length + it.length > width) {
      lines.push(cur);
      cur = ' '.repeat(lead.length) + it;
    } else cur += sep + it;
  }
  lines.push(cur);
  return lines.map((l) => fit(l, width));
}

/** Render the summary; every line is at most `width` visible characters. */
export function renderTerminalSummary(data: ReportData, opts: TerminalOptions): string {
  const width = Math.max(60, Math.floor(opts.width ?? 100));
  const paint = (code: string, s: string) => (opts.color ? `${ESC}${code}m${s}${ESC}0m` : s);
  const m = data.metric;
  const out: string[] = [];

  out.push(paint('1', fit(`mixq report: ${data.title ?? data.model.name} (${data.model.format})`, width)));
  out.push(fit(`${m.name}, ${m.direction} is better; fp32 = ${formatFigure(m.fp32)}${m.unit ?? ''}`, width));
  const p = data.plan;
  const fp32 = fp32Bytes(data);
  const planItems = [
    `${p.bitsPerWeight.toFixed(2)} b/w`,
    `${formatBytes(p.bytes)}${fp32 ? ` (${((100 * p.bytes) / fp32).toFixed(1)}% of fp32)` : ''}`,
    `${p.weights} weights`,
    ...(p.metric === undefined
      ? []
      : [`${m.name} ${formatFigure(p.metric)} (${formatPercent(relativeToFp32(m, p.metric))})`]),
    ...(p.metricChangeCi ? [`change vs fp32, 95% CI ${formatChangeCi(p.metricChangeCi, m.unit)}`] : []),
    `predicted damage ${formatFigure(p.predictedDamage)}`,
    ...(p.measuredDamage === undefined ? [] : [`measured ${formatFigure(p.measuredDamage)}`]),
    ...(p.solver ? [`${p.solver}${p.solverStatus ? ` ${p.solverStatus}` : ''}`] : []),
  ];
  out.push(...wrap(`plan ${fit(p.budget, 24)}: `, planItems, width));
  if (p.selection)
    out.push(...wrap(`chosen on validation (${p.selection.metric}): `, selectionItems(p.selection), width));
  out.push('');

  // Table. Fixed columns after a flexible name column.
  const cols = [
    { title: 'b/w', w: 6 },
    { title: 'size', w: 10 },
    { title: fit(m.name, 11), w: 11 },
    { title: 'vs fp32', w: 8 },
    { title: 'mixq@size', w: 10 },
  ];
  const fixed = cols.reduce((s, c) => s + c.w + 1, 0);
  const nameW = Math.max(10, Math.min(32, width - fixed));
  const row = (name: string, cells: readonly string[]) =>
    fit(name, nameW).padEnd(nameW) +
    cells.map((c, i) => ` ${c.padStart((cols[i] as { w: number }).w)}`).join('');
  out.push(
    paint(
      '1',
      row(
        'model',
        cols.map((c) => c.title),
      ),
    ),
  );
  out.push('-'.repeat(nameW + fixed));
  const mixq = data.series.filter((s) => s.kind === 'mixq');
  for (const s of mixq) {
    for (const pt of [...s.points].sort((a, b) => a.bitsPerWeight - b.bitsPerWeight)) {
      const label = pt.budget ? `${s.name} ${pt.budget}` : s.name;
      out.push(
        row(label, [
          pt.bitsPerWeight.toFixed(2),
          formatBytes(pt.bytes),
          formatFigure(pt.metric),
          formatPercent(relativeToFp32(m, pt.metric)),
          '',
        ]),
      );
    }
  }
  for (const r of equalSizeRows(data)) {
    let vs = '—'.padStart(10);
    if (r.mixqMetric !== undefined) {
      const cell = formatFigure(r.mixqMetric).padStart(10);
      vs = r.mixqBetter ? paint('32', cell) : paint('31', cell);
    }
    const cells = [
      r.point.bitsPerWeight.toFixed(2),
      formatBytes(r.point.bytes),
      formatFigure(r.point.metric),
      formatPercent(relativeToFp32(m, r.point.metric)),
    ];
    // The last cell may carry colour codes, so it is padded before painting (above), not by row().
    out.push(`${row(r.series, [...cells, ''])}`.slice(0, nameW + fixed - 10) + vs);
  }
  const rows = equalSizeRows(data).filter((r) => r.mixqBetter !== undefined);
  const wins = rows.filter((r) => r.mixqBetter).length;
  out.push('-'.repeat(nameW + fixed));
  out.push(...outputLines(data, width));
  if (rows.length > 0)
    out.push(fit(`mixq better at equal size than ${wins} of ${rows.length} baseline points`, width));
  if (data.timings.length > 0) {
    const total = data.timings.reduce((s, t) => s + t.ms, 0);
    out.push(
      ...wrap(
        'timings: ',
        [...data.timings.map((t) => `${fit(t.step, 30)} ${formatMs(t.ms)}`), `total ${formatMs(total)}`],
        width,
      ),
    );
  }
  return `${out.join('\n')}\n`;
}

/** Each plan's measured outputs vs fp32 (user models), one line per plan and output. */
function outputLines(data: ReportData, width: number): string[] {
  const lines: string[] = [];
  for (const s of data.series)
    for (const pt of s.points)
      for (const r of pt.outputs ?? [])
        lines.push(fit(`${pt.budget ? `${s.name} ${pt.budget}` : s.name}  ${describeResult(r)}`, width));
  return lines.length ? ['outputs vs fp32 on the evaluation data:', ...lines.map((l) => `  ${l}`)] : [];
}

/**
 * Render the demo report (synthetic fixture shaped like the bundled GPT, test/report/fixture.ts) so a
 * person can look at the layout: writes the HTML, the JSON and prints the terminal summary.
 * Usage: node --import tsx scripts/dev/demo-report.ts [out-dir] [blocks]
 *   (default /tmp/mixq-demo-report, 6 blocks = 26 weights; 22 blocks ~ PP-OCRv4's weight count)
 * Then e.g.: chromium --headless --no-sandbox --screenshot=/tmp/report.png --window-size=1200,2400 file:///tmp/mixq-demo-report/report.html
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reportJson, renderTerminalSummary } from '../../src/report/index.ts';
import { demoReport } from '../../test/report/fixture.ts';

const out = process.argv[2] ?? '/tmp/mixq-demo-report';
mkdirSync(out, { recursive: true });
const data = demoReport({ blocks: Number(process.argv[3] ?? 6) });
const t0 = performance.now();
const { renderHtmlReport } = await import('../../src/report/html.ts');
const html = await renderHtmlReport(data);
const ms = performance.now() - t0;
// A second render shows the steady-state cost once Vega is loaded.
const t1 = performance.now();
await renderHtmlReport(data);
const warm = performance.now() - t1;
writeFileSync(join(out, 'report.html'), html);
writeFileSync(join(out, 'report.json'), reportJson(data));
process.stdout.write(
  renderTerminalSummary(data, { color: Boolean(process.stdout.isTTY), width: process.stdout.columns ?? 100 }),
);
console.log(
  `\nwrote ${join(out, 'report.html')} (${(html.length / 1024).toFixed(0)} KiB, rendered in ${ms.toFixed(0)} ms incl. loading Vega, ${warm.toFixed(0)} ms warm) and report.json`,
);

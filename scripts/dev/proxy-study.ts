/**
 * Proxy study (dev script): how well each cheap sensitivity proxy predicts the measured end-to-end damage
 * (KL of the outputs vs fp32 with only one weight quantized), by Spearman rank correlation, on the
 * bundled models. Prints the tables and writes docs/sensitivity-study.md (numbers, command, date).
 *
 * Usage: npx tsx scripts/dev/proxy-study.ts [--models ocr,gpt] [--set default|full] [--ocr-lines 1]
 *        [--gpt-windows 4] [--max-weights N] [--json out.json] [--no-doc]
 */
import { writeFileSync } from 'node:fs';
import { defaultCandidates, fullCandidates } from '../../src/analysis/sensitivity/candidates.ts';
import { PROXY_NAMES } from '../../src/analysis/sensitivity/proxies.ts';
import {
  type DamageSource,
  type ProxyCorrelation,
  proxyCorrelation,
  type SensitivityTable,
} from '../../src/analysis/sensitivity/table.ts';
import { bundledModelPath } from '../../src/runtime/bundled.node.ts';
import { analyzeSensitivity, gptProbe, ocrProbe } from '../../src/runtime/sensitivity.node.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const models = arg('models', 'ocr,gpt').split(',');
const set = arg('set', 'default');
const ocrLines = Number(arg('ocr-lines', '1'));
const gptWindows = Number(arg('gpt-windows', '4'));
const maxWeights = Number(arg('max-weights', '0'));
const jsonPath = arg('json', '');
const writeDoc = !process.argv.includes('--no-doc');
const candidates = set === 'full' ? fullCandidates() : defaultCandidates();

const f = (x: number) => (Number.isNaN(x) ? '  n/a' : x.toFixed(3).padStart(6));

interface Study {
  model: string;
  table: SensitivityTable;
  seconds: number;
  evaluations: number;
  klRows: ProxyCorrelation[];
  metricRows: ProxyCorrelation[];
}

const studies: Study[] = [];
for (const name of models) {
  const path = bundledModelPath(name);
  if (!path) throw new Error(`unknown bundled model ${name}`);
  const t0 = performance.now();
  let evaluations = 0;
  let weightNames: string[] | undefined;
  if (maxWeights > 0) {
    // a quick pass without measurement just to list the analysable weights, then take an even spread
    const t = await analyzeSensitivity(path, {
      probe: (m) => (name === 'gpt' ? gptProbe(m, { windows: 1 }) : ocrProbe(m, { clean: 1, degraded: 0 })),
      candidates: candidates.slice(0, 1),
      measure: false,
    });
    const all = t.weights.map((w) => w.name);
    const step = all.length / maxWeights;
    weightNames = Array.from({ length: Math.min(maxWeights, all.length) }, (_, i) => all[Math.floor(i * step)]!);
  }
  const table = await analyzeSensitivity(path, {
    probe: (m) =>
      name === 'gpt'
        ? gptProbe(m, { windows: gptWindows })
        : ocrProbe(m, { clean: ocrLines, degraded: ocrLines }),
    candidates,
    modelName: name,
    ...(weightNames ? { weights: weightNames } : {}),
    onProgress: (done, total, label) => {
      evaluations = done;
      if (done % 25 === 0 || done === total) process.stderr.write(`  ${name} ${done}/${total} ${label}\n`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const sources: DamageSource[] = [...PROXY_NAMES];
  const klRows = sources.map((p) => proxyCorrelation(table, p, 'kl'));
  const metricRows = [...sources, 'kl' as const].map((p) => proxyCorrelation(table, p, 'metric'));
  studies.push({ model: name, table, seconds, evaluations, klRows, metricRows });

  const pairs = table.weights.reduce((s, w) => s + w.entries.length, 0);
  console.log(
    `\n${name}: ${table.weights.length} weights x ${candidates.length} candidates = ${pairs} pairs, ${evaluations} evaluations, ${seconds.toFixed(0)} s; fp32 ${table.metricName} ${table.baselineMetric?.toFixed(4)}`,
  );
  console.log('proxy            rho(all pairs)  mean rho within candidate  mean rho within weight  rho vs metric');
  for (const r of klRows) {
    const m = metricRows.find((x) => x.proxy === r.proxy)!;
    console.log(
      `${r.proxy.padEnd(16)} ${f(r.overall)}          ${f(r.meanWithin)}                     ${f(r.meanWithinWeight)}                ${f(m.overall)}`,
    );
  }
  const klVsMetric = metricRows.find((x) => x.proxy === 'kl')!;
  console.log(`measured KL vs metric change: rho ${f(klVsMetric.overall)}`);
  console.log('per candidate (rho across weights):');
  console.log(`candidate         ${klRows.map((r) => r.proxy.slice(0, 9).padStart(10)).join('')}`);
  for (const c of candidates) {
    if (!(c.id in klRows[0]!.perCandidate)) continue;
    console.log(`${c.id.padEnd(17)} ${klRows.map((r) => `    ${f(r.perCandidate[c.id] ?? Number.NaN)}`).join('')}`);
  }
}

if (jsonPath) writeFileSync(jsonPath, JSON.stringify(studies.map((s) => ({ ...s })), null, 1));

if (writeDoc) {
  const cmd = `npx tsx scripts/dev/proxy-study.ts ${process.argv.slice(2).join(' ')}`.trim();
  const lines: string[] = [];
  lines.push('# Sensitivity study: which proxy predicts end-to-end damage');
  lines.push('');
  lines.push(`Generated ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`${cmd}\`.`);
  lines.push('');
  for (const s of studies) {
    const t = s.table;
    const pairs = t.weights.reduce((a, w) => a + w.entries.length, 0);
    lines.push(`## ${s.model}`);
    lines.push('');
    lines.push(
      `${t.weights.length} weights x ${candidates.length} candidates (${set} set) = ${pairs} pairs; ` +
        `${s.evaluations} model evaluations in ${s.seconds.toFixed(0)} s on 2 shared cores. ` +
        `fp32 ${t.metricName} on the probe: ${t.baselineMetric?.toFixed(4)}.`,
    );
    lines.push('');
    lines.push('Spearman rho of each proxy with the measured KL (and with the task-metric change):');
    lines.push('');
    lines.push('| proxy | all pairs | mean within candidate | mean within weight | vs metric change |');
    lines.push('|---|---|---|---|---|');
    for (const r of s.klRows) {
      const m = s.metricRows.find((x) => x.proxy === r.proxy)!;
      lines.push(`| ${r.proxy} | ${f(r.overall)} | ${f(r.meanWithin)} | ${f(r.meanWithinWeight)} | ${f(m.overall)} |`);
    }
    const km = s.metricRows.find((x) => x.proxy === 'kl')!;
    lines.push(`| *measured KL* | | | | ${f(km.overall)} |`);
    lines.push('');
    lines.push('Per candidate (rho across weights):');
    lines.push('');
    lines.push(`| candidate | ${s.klRows.map((r) => r.proxy).join(' | ')} |`);
    lines.push(`|---|${s.klRows.map(() => '---').join('|')}|`);
    for (const c of candidates) {
      if (!(c.id in s.klRows[0]!.perCandidate)) continue;
      lines.push(`| ${c.id} | ${s.klRows.map((r) => f(r.perCandidate[c.id] ?? Number.NaN)).join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('<!-- conclusions are written by hand below this line -->');
  writeFileSync('docs/sensitivity-study.generated.md', `${lines.join('\n')}\n`);
  console.log('\nwrote docs/sensitivity-study.generated.md');
}

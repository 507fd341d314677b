#!/usr/bin/env node
// Dependency-direction check (see docs/architecture.md): every relative import in src/ must point
// along an allowed edge, and the browser-safe core must not import Node built-ins.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';

const ALLOWED = {
  core: [],
  formats: ['core'],
  blocks: ['core', 'formats'],
  quant: ['core', 'formats', 'blocks'],
  analysis: ['core', 'formats', 'blocks', 'quant', 'graph'],
  graph: ['core', 'formats', 'blocks'],
  io: ['core', 'formats', 'blocks', 'graph'],
  kernels: ['core', 'formats', 'blocks'],
  engine: ['core', 'formats', 'blocks', 'kernels', 'io', 'graph'],
  numerics: ['core', 'formats', 'blocks'],
  export: ['core', 'formats', 'blocks', 'quant', 'graph', 'io'],
  runtime: ['core', 'formats', 'blocks', 'quant', 'analysis', 'graph', 'io', 'export', 'kernels', 'engine'],
  report: ['core', 'formats', 'blocks', 'quant', 'analysis', 'graph'],
  // the plan file: browser-safe, exported from src/index.ts; building plans from models is the pipeline's
  plan: ['core', 'formats', 'blocks', 'quant', 'analysis'],
  pipeline: [
    'core',
    'formats',
    'blocks',
    'quant',
    'analysis',
    'graph',
    'io',
    'export',
    'runtime',
    'report',
    'plan',
    'kernels',
    'engine',
  ],
  cli: ['*'],
};
// Folders whose code must run in a browser: no node: imports (Node-only files end in .node.ts).
const BROWSER_SAFE = [
  'core',
  'formats',
  'blocks',
  'quant',
  'analysis',
  'graph',
  'io',
  'kernels',
  'engine',
  'numerics',
  'report',
  'export',
  'plan',
];

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}
const root = resolve('src');
const problems = [];
for (const file of walk('src', [])) {
  const area = relative(root, resolve(file)).split(sep)[0];
  if (area.endsWith('.ts')) continue; // top-level entry points (index.ts, node.ts) may re-export anything
  const src = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of src.matchAll(re)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.')) {
      const target = relative(root, resolve(dirname(file), spec)).split(sep)[0];
      if (target === area || target.endsWith('.ts')) continue;
      const allowed = ALLOWED[area];
      if (!allowed) problems.push(`${file}: folder src/${area} has no entry in scripts/check-deps.mjs`);
      else if (!allowed.includes('*') && !allowed.includes(target))
        problems.push(`${file}: src/${area} may not import src/${target} ('${spec}')`);
    } else if (spec.startsWith('node:') && BROWSER_SAFE.includes(area) && !file.endsWith('.node.ts')) {
      problems.push(
        `${file}: browser-safe src/${area} imports Node built-in '${spec}' (move it to a *.node.ts edge file)`,
      );
    }
  }
}
if (problems.length) {
  console.error(`depcheck: ${problems.length} problem(s)\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('depcheck: ok');

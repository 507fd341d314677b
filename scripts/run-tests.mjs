#!/usr/bin/env node
// Finds every test file under test/ and runs them with Node's test runner (TypeScript via tsx).
// Usage: node scripts/run-tests.mjs [substring filters...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk('test', [])
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
// two test files at a time (Node's default on a 2-core machine is one); MIXQ_TEST_CONCURRENCY overrides
const concurrency = process.env.MIXQ_TEST_CONCURRENCY ?? '2';
const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec'];
const r = spawnSync(process.execPath, [...args, ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);

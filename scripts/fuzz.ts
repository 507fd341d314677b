/**
 * Long fuzz run of the model-file readers (the test suite runs 10k cases each).
 * Usage: node --import tsx scripts/fuzz.ts [--cases N] [--seed S] [--target gguf|safetensors|all]
 * Prints per target: cases, parsed, rejected, max allocation estimate, largest single read, time, and the
 * fields that rejections named. Exits 1 on the first case that throws anything but a MixqError.
 */
import { fuzzGguf, fuzzSafetensors } from '../test/io/fuzz-targets.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const cases = Number(arg('cases', '100000'));
const seed = Number(arg('seed', String(Date.now() % 1e9)));
const target = arg('target', 'all');
const targets = { gguf: fuzzGguf, safetensors: fuzzSafetensors };

try {
  for (const [name, run] of Object.entries(targets)) {
    if (target !== 'all' && target !== name) continue;
    const s = await run(cases, seed);
    const fields = [...s.fields.entries()].sort((a, b) => b[1] - a[1]);
    console.log(
      `${name}: ${s.cases} cases (seed ${seed}), ${s.parsed} parsed, ${s.rejected} rejected with MixqError, ` +
        `max allocation estimate ${s.maxCharged} B, largest read ${s.maxRead} B, ${(s.ms / 1000).toFixed(1)} s ` +
        `(${((s.ms * 1000) / s.cases).toFixed(0)} us/case)`,
    );
    console.log(`  rejected fields: ${fields.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
} catch (e) {
  console.error(String((e as Error).message ?? e));
  process.exit(1);
}

/**
 * Fuzz tests: 10k mutated files per reader (MIXQ_FUZZ_CASES overrides; scripts/fuzz.ts runs longer).
 * Each case must parse (with all tensor bytes readable) or throw a MixqError naming the file and field;
 * reads stay inside the file and allocation estimates within the caps (see test/io/fuzz-util.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzGguf, fuzzSafetensors } from './fuzz-targets.ts';

const CASES = Number(process.env.MIXQ_FUZZ_CASES ?? 10_000);

test(`GGUF reader survives ${CASES} mutated files`, { timeout: 60_000 }, async () => {
  const s = await fuzzGguf(CASES, 0x6747);
  assert.equal(s.cases, CASES);
  // the mutations must reach deep into the format, not just break the magic
  assert.ok(s.parsed > CASES / 50, `some mutants still parse (${s.parsed})`);
  assert.ok(s.fields.size >= 15, `rejections spread over many fields (${[...s.fields.keys()].join(', ')})`);
});

test(`safetensors reader survives ${CASES} mutated files`, { timeout: 60_000 }, async () => {
  const s = await fuzzSafetensors(CASES, 0x5afe);
  assert.equal(s.cases, CASES);
  assert.ok(s.parsed > CASES / 50, `some mutants still parse (${s.parsed})`);
  assert.ok(s.fields.size >= 6, `rejections spread over many fields (${[...s.fields.keys()].join(', ')})`);
});

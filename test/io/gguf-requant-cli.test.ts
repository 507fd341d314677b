/**
 * `mixq requantize` end to end: spawns the CLI on temp files. The output file must be byte-identical to
 * requantizeGguf with the same plan (whose bytes test/io/gguf-requant.test.ts checks against the
 * registry encoders); the input is never modified; errors are one line with exit codes 1/2.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { concatBytes, parseGguf, requantizeGguf, writeImatrixDat } from '../../src/io/index.ts';
import { buildLlamaTiny } from '../fixtures/gguf/llama-tiny.ts';
import { runMixq } from '../cli-util.ts';

const dir = mkdtempSync(join(tmpdir(), 'mixq-requant-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fx = buildLlamaTiny();
const IN = join(dir, 'in.gguf');
const IM = join(dir, 'imatrix.dat');
writeFileSync(IN, fx.bytes);
writeFileSync(IM, writeImatrixDat({ entries: fx.imatrix }));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const inSha = sha(IN);

const mixq = (...args: string[]) => runMixq('requantize', ...args);

test('requantize --json with rules and an imatrix: output equals the library, input untouched', async () => {
  const out = join(dir, 'out.gguf');
  const out2 = join(dir, 'out2.gguf');
  const rules = ['--rule', 'blk.*.attn_v.weight=q6_k', '--rule=/attn_(q|k)\\./=q8_0'];
  const [j, t] = await Promise.all([
    mixq(IN, out, '--type', 'q4_k', ...rules, '--imatrix', IM, '--json'),
    mixq(IN, out2, '--type', 'q4_k', ...rules, '--imatrix', IM),
  ]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(j.stderr, '');
  const rep = JSON.parse(j.stdout);
  const lib = await requantizeGguf(
    parseGguf(fx.bytes, IN),
    [
      { pattern: 'blk.*.attn_v.weight', type: 'q6_k' },
      { pattern: '/attn_(q|k)\\./', type: 'q8_0' },
    ],
    { defaultType: 'q4_k', imatrix: fx.imatrix },
  );
  assert.ok(readFileSync(out).equals(Buffer.from(concatBytes(lib.chunks))));
  assert.ok(readFileSync(out2).equals(readFileSync(out)));
  assert.equal(sha(IN), inSha);
  assert.deepEqual(rep.totals, lib.totals);
  assert.equal(rep.fileType, 15);
  assert.deepEqual(rep.imatrix, { format: 'dat', entries: fx.imatrix.size });
  assert.deepEqual(rep.tensors.map((x: { name: string; to: string }) => [x.name, x.to]).slice(2, 5), [
    ['blk.0.attn_q.weight', 'q8_0'],
    ['blk.0.attn_k.weight', 'q8_0'],
    ['blk.0.attn_v.weight', 'q6_K'],
  ]);
  // human output: one row per tensor with old/new type and bytes, then totals
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /blk\.0\.attn_v\.weight +f32 +q6_K +13440 +imatrix/);
  assert.match(t.stdout, /blk\.0\.ffn_down\.weight +f32 +q5_0 +\d+ +imatrix; fallback from q4_K/);
  assert.match(
    t.stdout,
    /total: .* -> .*, 30\.646 -> \d\.\d{3} bits per weight \(\d+ weights\); file_type 15/,
  );
  assert.equal(t.stderr, ''); // not a TTY: no progress bar
});

test('requantize errors: bad rule, nothing to do, output over input, bad imatrix', async () => {
  const bad = join(dir, 'bad.dat');
  writeFileSync(bad, Uint8Array.of(0, 0, 0, 0));
  const [rule, none, same, im] = await Promise.all([
    mixq(IN, join(dir, 'x.gguf'), '--rule', 'noequals'),
    mixq(IN, join(dir, 'x.gguf')),
    mixq(IN, IN, '--type', 'q8_0'),
    mixq(IN, join(dir, 'y.gguf'), '--type', 'q8_0', '--imatrix', bad),
  ]);
  assert.equal(rule.code, 2);
  assert.match(
    rule.stderr,
    /^mixq requantize: argument --rule: bad rule 'noequals' \(expected 'pattern=type'/,
  );
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^mixq requantize: .*nothing to do/);
  assert.equal(same.code, 1);
  assert.match(same.stderr, /^mixq requantize: .*refusing to overwrite the input/);
  assert.equal(im.code, 1);
  assert.match(im.stderr, /^mixq requantize: .*bad\.dat: n_entries: 0 entries \(expected 1\.\./);
  for (const r of [rule, none, same, im]) {
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
  assert.equal(sha(IN), inSha);
});

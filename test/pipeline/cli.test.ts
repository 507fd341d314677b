// `mixq plan` + `mixq apply` end to end through the CLI, and the one-line errors of quantize / plan / apply.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

function mixq(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function oneLineError(r: { code: number | null; err: string }, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.err);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1, `one line, no stack trace: ${r.err}`);
  assert.match(lines[0]!, pattern);
}

test('quantize / plan / apply: bad arguments are one-line errors with exit code 2', () => {
  oneLineError(mixq('quantize', '--bits', '4', '--size', '1MB'), 2, /^mixq quantize: .*--bits and --size/);
  oneLineError(mixq('quantize', '--size', '1.5 parsecs'), 2, /^mixq quantize: .*--size.*1\.5MB/);
  oneLineError(mixq('plan', '--max-loss', '150%'), 2, /^mixq plan: .*--max-loss.*between 0 and 100%/);
  oneLineError(mixq('quantize', '--emit', 'tflite'), 2, /^mixq quantize: .*--emit.*'onnx', 'gguf'/);
  oneLineError(
    mixq('quantize', '--emit', 'none', '--native'),
    2,
    /^mixq quantize: .*--native.*--emit onnx only/,
  );
  oneLineError(
    mixq('quantize', 'ocr', '--emit', 'gguf'),
    2,
    /^mixq quantize: --emit: GGUF output is built for the bundled GPT/,
  );
  oneLineError(
    mixq('quantize', 'notes.txt'),
    2,
    /^mixq quantize: .*'notes.txt' is neither a bundled model nor an \.onnx file/,
  );
  oneLineError(mixq('quantize', '--candidates', 'int4-g33-rtn'), 2, /unknown candidate 'int4-g33-rtn'/);
  oneLineError(mixq('apply', 'gpt', 'no-such-plan.json'), 1, /^mixq apply: cannot read no-such-plan\.json/);
});

test('mixq plan then mixq apply: a plan file, then the ONNX model it describes (inputs never overwritten)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-plan-'));
  try {
    const planPath = join(dir, 'plan.json');
    const p = mixq(
      'plan',
      'gpt',
      '--bits',
      '6',
      '--candidates',
      'int8-pc-rtn,int4-g32-rtn',
      '--eval-size',
      '1024',
      '--out',
      planPath,
      '--json',
    );
    assert.equal(p.code, 0, p.err);
    const pj = JSON.parse(p.out) as { totals: { bitsPerWeight: number; bytes: number } };
    assert.ok(pj.totals.bitsPerWeight <= 6 && pj.totals.bitsPerWeight > 5);
    const plan = JSON.parse(readFileSync(planPath, 'utf8')) as { weights: { scheme: { format: string } }[] };
    assert.deepEqual(new Set(plan.weights.map((w) => w.scheme.format)), new Set(['int8', 'uint4']));
    const out = join(dir, 'model_q.onnx');
    const a = mixq('apply', 'gpt', planPath, '--out', out, '--json');
    assert.equal(a.code, 0, a.err);
    const aj = JSON.parse(a.out) as { bytes: number; storedBytes: number; bitsPerWeight: number };
    assert.equal(aj.storedBytes, pj.totals.bytes, 'stored bytes = the plan bytes');
    assert.equal(statSync(out).size, aj.bytes);
    // the input model is never an output
    const before = statSync('models/gpt/model.onnx').mtimeMs;
    oneLineError(
      mixq('apply', 'gpt', planPath, '--out', 'models/gpt/model.onnx'),
      1,
      /refusing to overwrite the input/,
    );
    assert.equal(statSync('models/gpt/model.onnx').mtimeMs, before);
    assert.ok(!existsSync(join(dir, 'model_q.onnx.tmp')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mixq w8a8: an int8 weight + activation model of the bundled GPT, and one-line errors', () => {
  oneLineError(mixq('w8a8', '--clip', 'p99'), 2, /^mixq w8a8: .*--clip.*'minmax' or 'percentile'/);
  oneLineError(mixq('w8a8', '--alpha', '0.5'), 2, /^mixq w8a8: .*--alpha.*--smoothquant/);
  const dir = mkdtempSync(join(tmpdir(), 'mixq-w8a8-'));
  try {
    const out = join(dir, 'gpt_w8a8.onnx');
    const r = mixq('w8a8', 'gpt', '--smoothquant', '--no-eval', '--out', out, '--json');
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { bytes: number; layers: number; smoothed: number; out: string };
    assert.equal(j.out, out);
    assert.equal(statSync(out).size, j.bytes);
    // 4 blocks x (qkv, attn proj, mlp fc, mlp proj); the logits projection stays float
    assert.equal(j.layers, 16);
    assert.equal(j.smoothed, 8); // qkv and mlp fc follow a LayerNorm
    const bytes = readFileSync(out);
    assert.ok(bytes.includes(Buffer.from('QuantizeLinear')), 'QDQ nodes in the file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a command whose output pipe closes exits quietly (no EPIPE stack trace)', async () => {
  const { spawn } = await import('node:child_process');
  // `mixq formats show fp16 --json` prints 2.4 MB; the reader takes 100 bytes and closes the pipe
  const p = spawn(process.execPath, [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'formats',
    'show',
    'fp16',
    '--json',
  ]);
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  let got = 0;
  p.stdout.on('data', (d: Buffer) => {
    got += d.length;
    if (got >= 100) p.stdout.destroy();
  });
  const code = await new Promise<number | null>((res) => p.on('close', (c) => res(c)));
  assert.equal(err, '', 'nothing on stderr');
  assert.equal(code, 0);
});

test('bin/mixq.js in a clone without dist/ says what to run, in one line', () => {
  if (existsSync(join('dist', 'cli', 'main.js'))) return; // built: the entry point runs the CLI
  const r = spawnSync(process.execPath, ['bin/mixq.js', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^mixq: the compiled CLI \(dist\/\) is missing: run `npm run build`[^\n]*\n$/);
});

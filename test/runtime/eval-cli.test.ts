// `mixq eval` end to end: JSON output on the bundled GPT (fidelity of the model to itself is exact, the
// bpc report carries its noise floor) and one-line errors with exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function mixq(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'eval', ...args], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('mixq eval gpt --json: bits per character with its standard error', () => {
  const r = mixq('gpt', '--limit', '400', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as {
    metric: string;
    result: { bitsPerChar: number; bitsPerCharStdError: number; scoredTokens: number };
  };
  assert.equal(j.metric, 'bpc');
  assert.equal(j.result.scoredTokens, 399);
  assert.ok(j.result.bitsPerChar > 0.5 && j.result.bitsPerChar < 2.5);
  assert.ok(j.result.bitsPerCharStdError > 0);
});

test('mixq eval <model> --metric fidelity --reference <same>: KL 0, agreement 1', () => {
  const r = mixq(
    'models/gpt/model.onnx',
    '--metric',
    'fidelity',
    '--reference',
    'gpt',
    '--limit',
    '300',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as {
    inputs: string;
    result: { klMean: number; top1Agreement: number; sqnrDb: number | null };
  };
  assert.equal(j.inputs, 'lm');
  assert.equal(j.result.klMean, 0);
  assert.equal(j.result.top1Agreement, 1);
  assert.equal(j.result.sqnrDb, null); // infinite: identical outputs
});

test('mixq eval errors are one line with a non-zero exit code', () => {
  const a = mixq('models/gpt/model.onnx', '--metric', 'fidelity');
  assert.equal(a.code, 1);
  assert.match(a.err, /^mixq eval: .*reference.*\n$/);
  const b = mixq('gpt', '--metric', 'nope');
  assert.equal(b.code, 2);
  assert.equal(b.err.split('\n').length, 2);
  const c = mixq('no-such-model.onnx', '--metric', 'fidelity', '--reference', 'gpt');
  assert.equal(c.code, 1);
  assert.doesNotMatch(c.err, /\n\s+at /); // no stack trace
});

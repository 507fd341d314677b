// `mixq quantize` on a GGUF language model from the command line: one-line refusals (exit 2) for a GGUF
// without --calibration, a budget below the smallest plan, --max-loss and --emit onnx.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLlamaCppAvailable, LLAMA_CPP_INSTALL_HINT } from '../../../src/runtime/llama.node.ts';

function mixq(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
  });
  return { code: r.status, err: r.stderr.trim() };
}

test('quantize <gguf>: one-line refusals with exit code 2', () => {
  const gguf = 'models/stories/stories260K.gguf';
  const cases: [string[], RegExp][] = [
    [['quantize', gguf], /^mixq quantize: .*needs text.*--calibration <text file>/],
    [['quantize', 'stories', '--max-loss', '1%'], /--max-loss is not available for GGUF language models/],
    [['quantize', 'stories', '--emit', 'onnx'], /argument --emit: bad value 'onnx'/],
    [['quantize', 'stories', '--windows', '4,8'], /argument --windows/],
    [['quantize', 'stories', '--no-imatrix', '--imatrix-out', 'im.gguf'], /--imatrix-out with --no-imatrix/],
    [['quantize', 'gpt', '--imatrix', 'im.dat'], /argument --imatrix: --imatrix is for GGUF language models/],
  ];
  for (const [args, re] of cases) {
    const r = mixq(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.err.split('\n').length, 1, r.err);
    assert.match(r.err, re);
  }
});

test(
  'quantize stories --bits 4.5: below the smallest plan (rows of 172 stay F16), said before any measurement',
  { skip: (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT },
  () => {
    const out = join(tmpdir(), `mixq-never-written-${process.pid}`);
    const r = mixq('quantize', 'stories', '--bits', '4.5', '--out', out);
    assert.ok(!existsSync(out));
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--bits 4\.5 is below the smallest plan.*at least 6\.6670 bits per weight/);
  },
);

test(
  'quantize stories --imatrix <corrupted file>: one line naming the file and field, nothing written',
  { skip: (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'mixq-bad-imatrix-'));
    try {
      const bad = join(dir, 'imatrix.dat');
      // a legacy file whose one entry claims 1000 values but holds 2
      const b = Buffer.alloc(4 + 4 + 6 + 4 + 4 + 8);
      let o = b.writeInt32LE(1, 0);
      o = b.writeInt32LE(6, o);
      o += b.write('blk.0.', o);
      o = b.writeInt32LE(1, o);
      b.writeInt32LE(1000, o);
      writeFileSync(bad, b);
      const out = join(dir, 'out');
      const r = mixq('quantize', 'stories', '--imatrix', bad, '--out', out);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.err.split('\n').length, 1, r.err);
      assert.match(r.err, /imatrix\.dat: entries\[0\]\.nval: 1000 values \(expected 1\.\.2\)/);
      assert.ok(!existsSync(out));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('which models go to the GGUF language-model job', async () => {
  const { isGgufLmModel } = await import('../../../src/cli/quantize-llm.ts');
  assert.equal(isGgufLmModel('stories'), true);
  assert.equal(isGgufLmModel('x.GGUF'), true);
  assert.equal(isGgufLmModel('test/fixtures/stories-hf'), true); // config.json + model.safetensors
  assert.equal(isGgufLmModel('gpt'), false);
  assert.equal(isGgufLmModel('models/gpt/model.onnx'), false);
  assert.equal(isGgufLmModel('test/fixtures'), false);
});

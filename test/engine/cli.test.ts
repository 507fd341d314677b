// `mixq run`: streamed text on stdout (prompt echoed, nothing on stderr when not a terminal), --json with
// the token ids the library generates, bad arguments as one line with exit code 2.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadEngineModel } from '../../src/engine/load.ts';
import { generateTokens } from '../../src/engine/session.ts';
import { ggufModelSource } from '../../src/engine/source.ts';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { runMixq } from '../cli-util.ts';

const MODEL = 'models/stories/stories260K.gguf';

test('mixq run: text, --json, errors', async () => {
  const m = await loadEngineModel(
    await createKernels(),
    ggufModelSource(parseGguf(new Uint8Array(readFileSync(MODEL)), MODEL)),
  );
  const want: number[] = [];
  let text = '';
  for await (const t of generateTokens(m, 'Once upon a time', { maxTokens: 12 })) {
    want.push(t.id);
    text += t.text;
  }
  const [plain, json, bad] = await Promise.all([
    runMixq('run', MODEL, '--prompt', 'Once upon a time', '--max-tokens', '12', '--threads', '2'),
    runMixq('run', MODEL, '--prompt', 'Once upon a time', '--max-tokens', '12', '--json'),
    runMixq('run', MODEL, '--prompt', 'x', '--temperature', '-1'),
  ]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, `Once upon a time${text}\n`);
  assert.equal(plain.stderr, '');
  assert.equal(json.code, 0);
  const r = JSON.parse(json.stdout) as {
    tokens: number[];
    text: string;
    promptTokens: number;
    weightBytes: number;
  };
  assert.deepEqual(r.tokens, want);
  assert.equal(r.text, text);
  assert.equal(r.promptTokens, 5);
  assert.equal(r.weightBytes, 1171200);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "mixq run: argument --temperature: bad value '-1' (expected >= 0)\n");
});

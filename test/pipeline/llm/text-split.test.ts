// The language-model text split (src/pipeline/llm/text-split.ts) and the job's one-line refusals of bad
// input: a GGUF without --calibration, an unknown architecture, a text shorter than the windows need.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { MixqError } from '../../../src/core/errors.ts';
import { concatBytes, writeGguf } from '../../../src/io/gguf/write.ts';
import { quantizeGgufLm } from '../../../src/pipeline/llm/index.node.ts';
import { describeSplit, splitLmText } from '../../../src/pipeline/llm/text-split.ts';
import { isLlamaCppAvailable, LLAMA_CPP_INSTALL_HINT } from '../../../src/runtime/llama.node.ts';

test('split: calibration, validation, evaluation are consecutive, disjoint and BOS-led', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 3, max: 9 }),
      fc.integer({ min: 0, max: 20 }),
      (nc, nv, ne, w, extra) => {
        const ids = Int32Array.from({ length: (nc + nv + ne) * (w - 1) + extra }, (_, i) => 100 + i);
        const s = splitLmText(
          { source: 't', ids },
          { calibration: nc, validation: nv, evaluation: ne },
          {
            windowTokens: w,
            bos: 1,
          },
        );
        const seen = new Set<number>();
        for (const [k, n] of [
          ['calibration', nc],
          ['validation', nv],
          ['evaluation', ne],
        ] as const) {
          const p = s[k];
          assert.equal(p.windows.length, n);
          for (const win of p.windows) {
            assert.equal(win.tokens[0], 1);
            assert.equal(win.tokens.length, w);
            for (const t of win.tokens.subarray(1)) {
              assert.ok(!seen.has(t), `token ${t} twice`);
              assert.ok(t - 100 >= p.from && t - 100 < p.to);
              seen.add(t);
            }
          }
        }
        assert.equal(s.calibration.from, 0);
        assert.equal(s.validation.from, s.calibration.to);
        assert.equal(s.evaluation.from, s.validation.to);
      },
    ),
  );
});

test('split: a separate evaluation text; a short text is a one-line error naming it', () => {
  const ids = Int32Array.from({ length: 40 }, (_, i) => i);
  const s = splitLmText(
    { source: 'a.txt', ids },
    { calibration: 2, validation: 2, evaluation: 3 },
    {
      windowTokens: 9,
      bos: 1,
      evalText: { source: 'b.txt', ids: Int32Array.from({ length: 30 }, (_, i) => i) },
    },
  );
  assert.equal(s.evaluation.source, 'b.txt');
  assert.equal(s.evaluation.from, 0);
  assert.match(describeSplit(s)[2]!, /^evaluation: tokens \[0, 24\) of b\.txt, 3 windows of 9 tokens$/);
  assert.throws(
    () =>
      splitLmText(
        { source: 'a.txt', ids },
        { calibration: 2, validation: 2, evaluation: 3 },
        { windowTokens: 9, bos: 1 },
      ),
    (e: unknown) =>
      e instanceof MixqError &&
      e.source === 'a.txt' &&
      /40 tokens/.test(e.message) &&
      /56 tokens/.test(e.expected ?? ''),
  );
});

test('a GGUF without --calibration, and one of an unknown architecture: one-line errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mixq-llm-bad-'));
  try {
    const path = join(dir, 'bert.gguf');
    await writeFile(
      path,
      concatBytes(
        writeGguf({
          kv: [{ key: 'general.architecture', type: 'str', value: 'bert' }],
          tensors: [{ name: 'blk.0.attn_q.weight', ne: [32, 2], type: 'F32', data: new Uint8Array(256) }],
        }),
      ),
    );
    const budget = { kind: 'bitsPerWeight', bits: 8 } as const;
    await assert.rejects(quantizeGgufLm({ model: path, budget, out: dir }), (e: unknown) => {
      return e instanceof MixqError && e.field === '--calibration' && e.source === path;
    });
    const text = join(dir, 'text.txt');
    await writeFile(text, 'Once upon a time.');
    await assert.rejects(
      quantizeGgufLm({ model: path, budget, calibration: text, out: dir }),
      (e: unknown) => {
        return e instanceof MixqError && e.field === 'general.architecture' && /bert/.test(e.message);
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(
  'stories with a calibration text too short for the windows: names the file and the tokens needed',
  { skip: (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mixq-llm-short-'));
    try {
      const text = join(dir, 'short.txt');
      await writeFile(text, 'Once upon a time there was a little dog.');
      await assert.rejects(
        quantizeGgufLm({
          model: 'stories',
          budget: { kind: 'bitsPerWeight', bits: 8 },
          calibration: text,
          out: dir,
        }),
        (e: unknown) =>
          e instanceof MixqError && e.source === text && /at least \d+ tokens/.test(e.expected ?? ''),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

// llama.cpp through node-llama-cpp on the bundled stories260K: nats/token on the first 8,000 characters
// of its validation text (the number issue 18 measured), KL / top-1 against itself and against an F16
// copy, the reference on disk equal to the one in memory. Skipped, with the reason, when the optional
// package is not installed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseGguf } from '../../src/io/gguf/read.ts';
import { requantizeGguf } from '../../src/io/gguf/requantize.ts';
import { concatBytes } from '../../src/io/gguf/write.ts';
import { loadStoriesText, storiesModelPath } from '../../src/runtime/bundled-stories.node.ts';
import { isLlamaCppAvailable, LLAMA_CPP_INSTALL_HINT, openLlamaModel } from '../../src/runtime/llama.node.ts';
import { lmItems, splitWindows } from '../../src/runtime/lm-windows.ts';
import { pairedChangeInterval } from '../../src/runtime/metrics.ts';

const skip = (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT;

test(
  'stories260K: 1.50 nats/token on the first 8,000 characters (windows of BOS + 255 tokens)',
  { skip },
  async () => {
    const m = await openLlamaModel(storiesModelPath());
    try {
      const ids = m.tokenize(loadStoriesText().slice(0, 8000));
      assert.equal(ids.length, 3868);
      assert.equal(m.bos, 1);
      const windows = splitWindows(ids, { windowTokens: 256, bos: m.bos });
      assert.equal(windows.length, 16);
      const s = await m.score(windows);
      assert.equal(s.tokens, 3868);
      assert.ok(Math.abs(s.natsPerToken - 1.502) < 0.002, `${s.natsPerToken}`);
      assert.equal(s.klMean, undefined);
    } finally {
      await m.close();
    }
  },
);

test(
  'KL / top-1 against a reference: 0 and 1 for the model itself, small for an F16 copy; disk = memory',
  { skip },
  async () => {
    const path = storiesModelPath();
    const ref = await openLlamaModel(path);
    const f16bytes = concatBytes(
      (await requantizeGguf(parseGguf(new Uint8Array(readFileSync(path)), path), {}, { defaultType: 'f16' }))
        .chunks,
    );
    const f16 = await openLlamaModel(f16bytes, { name: 'stories-f16' });
    try {
      const ids = ref.tokenize(loadStoriesText().slice(0, 1500));
      const windows = splitWindows(ids, { windowTokens: 128, bos: ref.bos!, minContext: 64 });
      const mem = await ref.recordReference(windows);
      const disk = await ref.recordReference(windows, { maxMemoryBytes: 0 });
      assert.equal(mem.onDisk, false);
      assert.equal(disk.onDisk, true);
      const self = await ref.score(windows, { reference: mem });
      assert.equal(self.klMean, 0);
      assert.equal(self.top1Agreement, 1);
      const a = await f16.score(windows, { reference: mem });
      const b = await f16.score(windows, { reference: disk });
      assert.deepEqual(a, b);
      // feeding a window in chunks of 7 changes llama.cpp's batch shapes and so its float rounding (~1e-6)
      const c = await f16.score(windows, { reference: mem, maxRowsInFlight: 7 });
      assert.ok(Math.abs(c.natsPerToken - a.natsPerToken) < 1e-4 && Math.abs(c.klMean! - a.klMean!) < 1e-6);
      assert.ok(a.klMean! > 0 && a.klMean! < 1e-3, `${a.klMean}`);
      assert.ok(a.top1Agreement! > 0.97, `${a.top1Agreement}`);
      assert.ok(Math.abs(a.natsPerToken - self.natsPerToken) < 0.01);
      const [lo, hi] = pairedChangeInterval(lmItems(self, 'nll'), lmItems(a, 'nll'));
      assert.ok(lo <= hi && Number.isFinite(lo));
      await mem.close();
      await disk.close();
    } finally {
      await ref.close();
      await f16.close();
    }
  },
);

test('a file llama.cpp cannot load is one MixqError line naming it', { skip }, async () => {
  const bytes = new Uint8Array(readFileSync(storiesModelPath()));
  const cut = bytes.slice(0, 600_000); // truncated inside the tensor data
  await assert.rejects(openLlamaModel(cut, { name: 'cut.gguf' }), (e: Error) => {
    assert.equal(e.name, 'MixqError');
    assert.match(
      e.message,
      /^cut\.gguf: llama\.cpp could not load the model: .*\(expected a GGUF file llama\.cpp can load\)$/,
    );
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  const m = await openLlamaModel(storiesModelPath());
  try {
    const long = splitWindows(m.tokenize(loadStoriesText().slice(0, 20_000)), { windowTokens: 4096, bos: 1 });
    await assert.rejects(
      m.score(long),
      /windowTokens: a window of .* tokens is longer than the model's context \(expected at most 2048/,
    );
  } finally {
    await m.close();
  }
});

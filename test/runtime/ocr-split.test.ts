// The bundled OCR validation split: 50 clean + 50 degraded lines at height 48, no text shared with the
// test split (lines.json), errors that name the split's own file, and `mixq eval` data paths to
// validation.json reading that split.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { loadOcrLines, OCR_DATA_DIR, type OcrSplit } from '../../src/runtime/bundled.node.ts';
import { evaluateModel } from '../../src/runtime/evaluate.node.ts';

test('validation split: 50 clean + 50 degraded lines at height 48, same texts in both variants', () => {
  const lines = loadOcrLines(undefined, 'validation');
  assert.equal(lines.length, 100);
  const clean = lines.filter((l) => l.variant === 'clean');
  const degraded = lines.filter((l) => l.variant === 'degraded');
  assert.equal(clean.length, 50);
  assert.equal(degraded.length, 50);
  for (const l of lines) {
    assert.equal(l.height, 48);
    assert.ok(l.width > 0);
    assert.equal(l.pixels.length, l.width * 48);
  }
  assert.deepEqual(
    degraded.map((l) => l.text),
    clean.map((l) => l.text),
  );
  assert.equal(new Set(clean.map((l) => l.text)).size, 50, 'a text repeats within the split');
});

test('no text appears in both the test and the validation split', () => {
  const testTexts = new Set(loadOcrLines().map((l) => l.text));
  assert.equal(loadOcrLines(undefined, 'test').length, 300);
  const shared = loadOcrLines(undefined, 'validation').filter((l) => testTexts.has(l.text));
  assert.deepEqual(
    shared.map((l) => l.text),
    [],
  );
});

test('a missing split file or an unknown split is a MixqError naming the file or the split', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-ocr-split-'));
  try {
    assert.throws(
      () => loadOcrLines(dir, 'validation'),
      (e: unknown) => e instanceof MixqError && e.source === join(dir, 'validation.json'),
    );
    assert.throws(
      () => loadOcrLines(dir),
      (e: unknown) => e instanceof MixqError && e.source === join(dir, 'lines.json'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(
    () => loadOcrLines(undefined, 'train' as OcrSplit),
    (e: unknown) => e instanceof MixqError && e.expected === 'test or validation',
  );
});

test('eval data: validation.json reads the validation split, lines.json and the folder the test split', async () => {
  const chars = (split: OcrSplit) =>
    loadOcrLines(undefined, split)
      .slice(0, 3)
      .reduce((n, l) => n + Array.from(l.text).length, 0);
  assert.notEqual(chars('validation'), chars('test'));
  const cer = async (data: string) => {
    const r = await evaluateModel({ model: 'ocr', metric: 'cer', data, limit: 3 });
    assert.equal(r.metric, 'cer');
    return r.metric === 'cer' ? r.result.chars : -1;
  };
  assert.equal(await cer(join(OCR_DATA_DIR, 'validation.json')), chars('validation'));
  assert.equal(await cer(join(OCR_DATA_DIR, 'lines.json')), chars('test'));
  assert.equal(await cer(OCR_DATA_DIR), chars('test'));
});

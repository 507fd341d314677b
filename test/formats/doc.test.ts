/** docs/formats.md is exactly what scripts/gen-formats-doc.ts generates from the registry. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatsDoc } from '../../scripts/gen-formats-doc.ts';

test('docs/formats.md equals the generated text (run scripts/gen-formats-doc.ts to update)', () => {
  assert.equal(readFileSync('docs/formats.md', 'utf8'), formatsDoc());
});

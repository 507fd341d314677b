/**
 * Fuzzing the ONNX reader: mutated fixtures (bit flips, truncation, runs of 0xff that make huge varint
 * lengths, inserted and duplicated spans) must either parse — and then list, decode, view and re-encode
 * without trouble — or fail with a MixqError. Nothing else: no other exception, no hang, no huge
 * allocation. 2400 + 600 cases in the normal run (well under a few seconds); MIXQ_FUZZ_CASES=N for a longer run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  getTensorFloat32,
  listWeights,
  loadTensorFloat32,
  onnxModelView,
  readOnnx,
  sparseToDenseFloat32,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { bytesSource } from '../../src/io/source.ts';
import { fixture } from './onnx-util.ts';

const CASES = Number(process.env.MIXQ_FUZZ_CASES ?? 2400);

function mutate(src: Uint8Array, rng: Rng): Uint8Array {
  const pick = (n: number) => rng.nextU32() % Math.max(1, n);
  const kind = pick(5);
  if (kind === 0) {
    const out = src.slice();
    for (let k = 0, n = 1 + pick(4); k < n; k++) {
      const i = pick(out.length);
      out[i] = (out[i] as number) ^ (1 << pick(8));
    }
    return out;
  }
  if (kind === 1) return src.slice(0, pick(src.length));
  if (kind === 2) {
    const out = src.slice();
    const at = pick(out.length);
    out.fill(0xff, at, at + 1 + pick(10));
    return out;
  }
  if (kind === 3) {
    const at = pick(src.length);
    const junk = Uint8Array.from({ length: 1 + pick(16) }, () => pick(256));
    return Uint8Array.from([...src.subarray(0, at), ...junk, ...src.subarray(at)]);
  }
  const a = pick(src.length);
  const b = Math.min(src.length, a + 1 + pick(64));
  const at = pick(src.length);
  return Uint8Array.from([...src.subarray(0, at), ...src.subarray(a, b), ...src.subarray(at)]);
}

/** Everything a caller may do with a parsed model. */
function exercise(bytes: Uint8Array): void {
  const model = readOnnx(bytes, { source: 'fuzz.onnx' });
  for (const w of listWeights(model)) {
    if (!w.external && w.elementCount < 1e6) {
      try {
        if (w.sparse) sparseToDenseFloat32(w.sparse, 'fuzz.onnx');
        else getTensorFloat32(w.tensor, 'fuzz.onnx');
      } catch (e) {
        if (!(e instanceof MixqError)) throw e;
      }
    }
  }
  onnxModelView(model);
  writeOnnx(model);
}

test(`fuzz: ${CASES} mutated models parse or fail with MixqError`, () => {
  const seeds = ['mlp.onnx', 'ifsub.onnx', 'constants.onnx', 'sparse.onnx'].map((n) => fixture(n));
  const rng = new Rng(20261122);
  let parsed = 0;
  let rejected = 0;
  const t0 = performance.now();
  for (let c = 0; c < CASES; c++) {
    const src = seeds[c % seeds.length] as Uint8Array;
    const bytes = mutate(src, rng);
    try {
      exercise(bytes);
      parsed++;
    } catch (e) {
      if (!(e instanceof MixqError)) {
        assert.fail(`case ${c}: ${(e as Error)?.stack ?? String(e)}`);
      }
      assert.ok(
        e.source === 'fuzz.onnx' && e.field.length > 0,
        `case ${c}: error without source/field: ${e.message}`,
      );
      rejected++;
    }
  }
  const ms = performance.now() - t0;
  // Both outcomes must occur, or the mutations are not reaching the parser's interesting paths.
  assert.ok(parsed > CASES / 20 && rejected > CASES / 20, `parsed ${parsed}, rejected ${rejected}`);
  console.log(`onnx fuzz: ${CASES} cases, ${parsed} parsed, ${rejected} rejected, ${ms.toFixed(0)} ms`);
});

test('fuzz: 600 mutated external-data models: offsets/lengths checked against the data file', async () => {
  const src = fixture('external.onnx');
  const data = fixture('external.onnx_data');
  const rng = new Rng(7);
  let loaded = 0;
  for (let c = 0; c < 600; c++) {
    const bytes = mutate(src, rng);
    try {
      const model = readOnnx(bytes, {
        source: 'fuzz.onnx',
        externalData: () => bytesSource(data, 'fuzz.onnx_data'),
      });
      for (const w of listWeights(model)) {
        if (w.elementCount > 1e6) continue;
        await loadTensorFloat32(model, w.tensor);
        loaded++;
      }
    } catch (e) {
      if (!(e instanceof MixqError)) assert.fail(`case ${c}: ${(e as Error)?.stack ?? String(e)}`);
    }
  }
  assert.ok(loaded > 600, `loaded ${loaded}`);
});

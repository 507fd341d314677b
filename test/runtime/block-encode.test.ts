/**
 * Block encoding of a whole tensor on worker threads (runtime/block-encode.node.ts): the same bytes as one
 * GGML_CODECS call for 1, 2 and 3 threads, with and without an importance matrix, on row counts that do
 * not divide evenly; bad input fails as on one thread.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { GGML_CODECS } from '../../src/blocks/ggml/index.ts';
import { getBlockType } from '../../src/blocks/registry.ts';
import { encodeTensor, encodeTensorWith } from '../../src/io/gguf/requantize.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  closeBlockEncodeWorkers,
  encodeRowsOnThreads,
  quantizeOnThreads,
} from '../../src/runtime/block-encode.node.ts';

after(closeBlockEncodeWorkers);

describe('quantizeOnThreads', () => {
  const rng = new Rng(9);
  const cols = 4096; // 67 x 4096 values: enough for 3 parts of at least 2^16 values
  const rows = 67;
  const x = Float32Array.from(
    { length: rows * cols },
    () => rng.nextNormal() * (rng.nextFloat() < 0.01 ? 30 : 1),
  );
  const im = Float32Array.from({ length: cols }, () => Math.exp(rng.nextNormal()));
  const before = x.slice();

  for (const name of ['Q4_K', 'IQ4_NL', 'Q5_0', 'Q8_0'] as const) {
    it(`${name}: same bytes for 1, 2 and 3 threads`, async () => {
      for (const imatrix of [null, im]) {
        const want = Buffer.from(GGML_CODECS[name].quantize(x, cols, imatrix));
        for (const threads of [1, 2, 3]) {
          const got = await quantizeOnThreads(name, x, cols, imatrix, threads);
          assert.ok(want.equals(got), `${name} imatrix=${imatrix !== null} threads=${threads}`);
        }
      }
      assert.deepEqual(x, before, 'input unchanged');
    });
  }

  it('bad input: the one-thread error', async () => {
    await assert.rejects(quantizeOnThreads('Q4_K', x, 1000, null, 2), /bad row length 1000/);
    await assert.rejects(quantizeOnThreads('Q4_K', x, cols, new Float32Array(3), 2), /imatrix has 3 weights/);
  });

  it('GGUF re-quantization: encodeTensorWith(encodeRowsOnThreads) == encodeTensor (stacked experts)', async () => {
    // 3 expert matrices of 24 rows, one imatrix slice per expert
    const ne = [cols, 24, 3];
    const t = x.subarray(0, cols * 24 * 3);
    const imExperts = Float32Array.from({ length: cols * 3 }, (_, i) => im[i % cols]! * (1 + (i >> 12)));
    for (const name of ['Q4_K', 'IQ4_NL', 'F16']) {
      const type = getBlockType(name);
      for (const imatrix of [undefined, imExperts]) {
        const want = Buffer.from(encodeTensor(t, ne, type, imatrix));
        const got = await encodeTensorWith(t, ne, type, imatrix, encodeRowsOnThreads);
        assert.ok(want.equals(got), `${name} imatrix=${imatrix !== undefined}`);
      }
    }
  });
});

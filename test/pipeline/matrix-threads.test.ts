/**
 * The pipeline's GPTQ / AWQ matrix work on worker threads (quantize/context.ts openMatrixEngine, the
 * engine simulate.ts passes to apply-scheme.ts): the simulated weights and GPTQ's codes are the same bytes
 * on one thread and on a two-thread matrix pool; runs without GPTQ / AWQ start no workers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { intScheme, parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { Rng } from '../../src/core/rng.ts';
import { rowLayout } from '../../src/quant/layout.ts';
import { inlineEngine } from '../../src/quant/matrix/engine.ts';
import { openMatrixEngine } from '../../src/pipeline/quantize/context.ts';
import { simulateWeight } from '../../src/pipeline/quantize/simulate.ts';

const bits = (x: Float32Array | Uint16Array | Uint8Array): Uint8Array =>
  new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

describe('pipeline matrix engine', () => {
  it('GPTQ and AWQ simulated weights: same bytes on 1 thread and on a 2-thread pool', async () => {
    const rng = new Rng(11);
    const rows = 96;
    const cols = 160; // not a multiple of the engine's row chunk or GPTQ's block
    const n = 256;
    const X = Float64Array.from({ length: n * cols }, () => rng.nextNormal() * (1 + rng.nextFloat()));
    const gram = new Float64Array(cols * cols);
    const meanSquare = new Float64Array(cols);
    for (let s = 0; s < n; s++)
      for (let i = 0; i < cols; i++) {
        const xi = X[s * cols + i]!;
        meanSquare[i]! += (xi * xi) / n;
        for (let j = 0; j < cols; j++) gram[i * cols + j]! += (xi * X[s * cols + j]!) / n;
      }
    const stats = { channels: cols, meanSquare, gram };
    const W = Float32Array.from({ length: rows * cols }, () => rng.nextNormal());
    const L = rowLayout([rows, cols], 0);
    const schemes = [
      intScheme(4, 32, 'gptq'),
      intScheme(3, 'pc', 'gptq'),
      ...parseCandidateIds(['int4-g32-awq']),
    ];
    const pool = await openMatrixEngine(schemes, 2);
    try {
      assert.equal(pool.engine.threads, 2);
      for (const s of schemes) {
        const one = simulateWeight(W, L, s, stats, true, inlineEngine());
        const two = simulateWeight(W, L, s, stats, true, pool.engine);
        assert.deepEqual(bits(two.Q), bits(one.Q), `${s.algorithm} ${s.format}: Q`);
        assert.deepEqual(two.codes, one.codes, `${s.algorithm} ${s.format}: codes`);
      }
    } finally {
      await pool.close();
    }
    const rtnOnly = await openMatrixEngine([intScheme(4, 32)], 2);
    assert.equal(rtnOnly.engine.threads, 1, 'no workers without GPTQ / AWQ');
    await rtnOnly.close();
  });
});

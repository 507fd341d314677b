/**
 * Worker threads: products on 2 and 3 threads (rows split between the calling thread and the workers over
 * one shared memory) equal the single-threaded kernels bit for bit, for every layout and mode, on shapes
 * whose rows do not split evenly, with the waiting threads polling (the default) or sleeping at once; a pool
 * keeps working after memory growth, and closes; a bad polling budget is refused before any thread starts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createKernels } from '../../src/kernels/context.ts';
import { createKernelPool } from '../../src/kernels/pool.node.ts';
import { activations, ggmlCase, type KernelCase, MIXQ_SPECS, mixqCase } from './cases.ts';

test('the same results on 1, 2 and 3 threads', async () => {
  const cases: KernelCase[] = [
    ggmlCase('Q4_K', false, 53),
    ggmlCase('Q6_K', false, 53),
    ggmlCase('Q5_K', false, 53),
    ggmlCase('Q3_K', false, 53),
    ggmlCase('Q2_K', false, 53),
    ggmlCase('Q4_0', false, 53),
    ggmlCase('Q8_0', false, 53),
    ggmlCase('F16', false, 53),
    await mixqCase(
      MIXQ_SPECS.find((s) => s.format === 'uint4' && s.groups === 32)!,
      53,
    ),
    await mixqCase(
      MIXQ_SPECS.find((s) => s.format === 'fp4_e2m1fn' && s.groups === 16)!,
      53,
    ),
    await mixqCase(
      MIXQ_SPECS.find((s) => s.format === 'int2' && s.groups === 16)!,
      53,
    ),
    await mixqCase(
      MIXQ_SPECS.find((s) => s.lut && s.format === 'uint2')!,
      53,
    ),
  ];
  const one = await createKernels();
  const pools = [
    await createKernelPool({ threads: 2, pollMicros: 0 }),
    await createKernelPool({ threads: 3 }),
  ];
  try {
    for (const c of cases) {
      const w1 = one.prepare(c.source, c.options);
      for (const p of pools) {
        const w = p.prepare(c.source, c.options);
        for (const mode of w1.modes)
          for (const batch of [1, 6, 33]) {
            const x = activations(w1.cols * batch, batch);
            const want = one.matmul(w1, x, batch, { mode });
            const got = p.matmul(w, x, batch, { mode });
            assert.ok(
              got.every((v, i) => Object.is(v, want[i])),
              `${c.name} ${mode} batch ${batch} on ${p.threads} threads differs from 1 thread`,
            );
          }
      }
    }
    // growth of the shared memory: a large weight after the others, then a product on all threads
    const p = pools[1]!;
    const big = p.prepare({ kind: 'float32', rows: 256, cols: 4096, data: activations(256 * 4096, 3) });
    const w1 = one.prepare({ kind: 'float32', rows: 256, cols: 4096, data: activations(256 * 4096, 3) });
    const x = activations(4096, 4);
    assert.deepEqual(Array.from(p.matvec(big, x)), Array.from(one.matvec(w1, x)));
  } finally {
    for (const p of pools) await p.close();
  }
});

test('a bad polling budget is refused in one line', async () => {
  await assert.rejects(
    createKernelPool({ threads: 2, pollMicros: -1 }),
    /pollMicros -1.*0\.\.1000000 microseconds/,
  );
  await assert.rejects(createKernelPool({ threads: 2, pollMicros: Number.NaN }), /pollMicros NaN/);
});

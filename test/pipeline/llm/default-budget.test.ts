// The default budget of `mixq quantize <GGUF language model>` without --bits / --size (plans.ts
// defaultLmBudget) on the bundled stories260K: the size of llama.cpp's Q4_K_M mix, checked against the
// bytes requantizeGgufTo writes for that mix (llama-mix.ts types), feasible where today's 4.5 bits is not;
// and, where Q4_K_M cannot be built from the candidates, the smallest file they allow (feasible at it,
// infeasible one byte below). No llama.cpp needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { llamaMixTypes } from '../../../src/analysis/allocate/llama-mix.ts';
import { requantizeGgufTo } from '../../../src/io/gguf/requantize.ts';
import { llmConfigFromGguf } from '../../../src/io/llm/config.ts';
import { ggufAllocationProblem, ggufDamageTable } from '../../../src/pipeline/gguf/damage.ts';
import { openGguf } from '../../../src/pipeline/gguf/plan.node.ts';
import { defaultLmBudget } from '../../../src/pipeline/llm/plans.ts';
import { storiesModelPath } from '../../../src/runtime/bundled-stories.node.ts';

test('default budget on stories260K: the Q4_K_M file size (as written), else the smallest file', async () => {
  await openGguf(storiesModelPath(), async (f) => {
    const config = llmConfigFromGguf(f);
    const table = await ggufDamageTable(f);
    // today's fixed 4.5 bits cannot be met: ffn_down rows of 172 values fit no block and stay F16
    assert.throws(
      () => ggufAllocationProblem(table, { kind: 'bitsPerWeight', bits: 4.5 }),
      /below the smallest plan/,
    );
    const d = defaultLmBudget(table, config);
    const mix = llamaMixTypes(
      table.weights.map((w) => ({ name: w.name, ne: w.ne })),
      'Q4_K_M',
      { nGqa: config.numHeads / config.numKvHeads, nLayer: config.numLayers },
    );
    assert.ok('types' in mix);
    let written = 0;
    await requantizeGgufTo(f, Object.fromEntries(mix.types), (c) => void (written += c.length));
    assert.deepEqual(d.budget, { kind: 'bytes', bytes: written });
    assert.match(d.reason, /Q4_K_M/);
    ggufAllocationProblem(table, d.budget); // feasible

    // candidates from which Q4_K_M cannot be built (its Q5_0 / Q4_K / Q6_K are missing)
    const narrow = await ggufDamageTable(f, { types: ['Q8_0', 'F16'] });
    const m = defaultLmBudget(narrow, config);
    assert.match(m.reason, /cannot be built.*smallest file/);
    assert.equal(m.budget.kind, 'bytes');
    const bytes = m.budget.kind === 'bytes' ? m.budget.bytes : NaN;
    ggufAllocationProblem(narrow, m.budget);
    assert.throws(
      () => ggufAllocationProblem(narrow, { kind: 'bytes', bytes: bytes - 1 }),
      /below the smallest/,
    );
  });
});

// `mixq quantize stories` end to end (src/pipeline/llm/): the written GGUF loads in llama.cpp, the report's
// KL and perplexity equal a separate llama.cpp run on the written file (same windows, reference recorded
// anew), and mixq's plan has a KL no higher than the baselines (written with mixq's importance matrix, as
// llama-quantize --imatrix) at the same size. Small windows (the
// numbers are real, the intervals wide). --bits 7, not 4.5: on stories260K the ffn_down rows of 172 values
// fit no ggml block, so they stay F16 and the smallest plan is 6.667 bits per weight over the quantized
// tensors. Skipped, with the reason, without node-llama-cpp.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePlan } from '../../../src/plan/parse.ts';
import { quantizeGgufLm } from '../../../src/pipeline/llm/index.node.ts';
import { storiesModelPath } from '../../../src/runtime/bundled-stories.node.ts';
import {
  isLlamaCppAvailable,
  LLAMA_CPP_INSTALL_HINT,
  openLlamaModel,
} from '../../../src/runtime/llama.node.ts';
import { serialisePlan } from '../../../src/plan/serialise.ts';
import { applyPlanToGguf } from '../../../src/pipeline/gguf/apply.node.ts';

const skip = (await isLlamaCppAvailable()) ? false : LLAMA_CPP_INSTALL_HINT;

test(
  'quantize stories --bits 7: written GGUF runs in llama.cpp, report KL = a separate run, mixq <= uniform',
  { skip },
  async () => {
    const out = await mkdtemp(join(tmpdir(), 'mixq-llm-test-'));
    try {
      const r = await quantizeGgufLm({
        model: 'stories',
        budget: { kind: 'bitsPerWeight', bits: 7 },
        windows: { calibration: 1, validation: 1, evaluation: 2 },
        // the baselines as llama-quantize --imatrix writes them, with mixq's own importance matrix
        baselines: ['uniform Q4_1 + imatrix', 'Q3_K_M + imatrix'],
        out,
      });
      // the split never overlaps and is what the report says
      const { calibration: c, validation: v, evaluation: e } = r.split;
      assert.ok(c.to <= v.from && v.to <= e.from, r.splitLines.join('\n'));
      assert.equal(e.windows.length, 2);
      assert.ok(r.plan.totals.bitsPerWeight <= 7 + 1e-9);
      // a separate llama.cpp run on the written file, same windows, reference recorded again
      const input = await openLlamaModel(storiesModelPath());
      const written = await openLlamaModel(r.output.path);
      try {
        const ref = await input.recordReference(e.windows);
        const s = await written.score(e.windows, { reference: ref });
        await ref.close();
        assert.ok(Math.abs(s.klMean! - r.mixq.kl) <= 1e-6 * r.mixq.kl, `${s.klMean} vs ${r.mixq.kl}`);
        assert.ok(Math.abs(s.perplexity - r.mixq.perplexity) <= 1e-6 * r.mixq.perplexity);
        assert.equal(s.top1Agreement, r.mixq.top1);
        assert.ok(r.mixq.kl > 0 && r.mixq.kl < 0.2, `${r.mixq.kl}`);
      } finally {
        await written.close();
        await input.close();
      }
      // the report carries the same number
      assert.equal(r.report.plan.metric, r.mixq.kl);
      // mixq at the uniform baseline's size is no worse than it, and neither is the chosen plan (same budget)
      assert.deepEqual(
        r.baselines.map((b) => b.label),
        ['Q3_K_M + imatrix', 'uniform Q4_1 + imatrix'],
      );
      const u = r.comparisons.find((x) => x.baseline === 'uniform Q4_1 + imatrix')!;
      assert.ok(u.mixqBytes <= u.baselineBytes);
      assert.ok(u.mixqKl <= u.baselineKl, `${u.mixqKl} vs ${u.baselineKl}`);
      const q3 = r.comparisons.find((x) => x.baseline === 'Q3_K_M + imatrix')!;
      assert.ok(q3.mixqKl <= q3.baselineKl, `${q3.mixqKl} vs ${q3.baselineKl}`);
      // plan.json + the saved importance matrix + mixq apply reproduce the written file byte for byte
      assert.equal(r.imatrix?.origin, 'computed');
      assert.equal(r.imatrix.path, join(out, 'stories260K-imatrix.gguf'));
      const plan = parsePlan(serialisePlan(r.plan), 'plan.json');
      assert.match(plan.objective.calibration?.data ?? '', /^imatrix stories260K-imatrix\.gguf sha256:/);
      const again = await applyPlanToGguf(storiesModelPath(), plan, {
        out: join(out, 'again.gguf'),
        imatrix: r.imatrix.path,
      });
      assert.deepEqual(await readFile(again.out), await readFile(r.output.path));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  },
);

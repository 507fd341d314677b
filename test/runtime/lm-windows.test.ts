// Window splits score every target exactly once (or only those with enough context), and the per-window
// reductions match brute force: log-softmax, KL(P||Q) with p = 0 entries skipped, top-1 agreement.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  klFromLogProbs,
  LmAccumulator,
  lmItems,
  logProbsFromLogits,
  scoredTargets,
  splitWindows,
} from '../../src/runtime/lm-windows.ts';

test('splitWindows: each text token is scored once, a window start without BOS has no context', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 2, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      fc.boolean(),
      (n, W, strideRaw, withBos) => {
        const ids = Int32Array.from({ length: n }, (_, i) => i + 10);
        const text = W - (withBos ? 1 : 0);
        const stride = Math.min(strideRaw, text);
        const ws = splitWindows(ids, { windowTokens: W, stride, ...(withBos ? { bos: 1 } : {}) });
        const scored: number[] = [];
        for (const w of ws) {
          assert.ok(w.tokens.length <= W && w.scoreFrom >= 1);
          if (withBos) assert.equal(w.tokens[0], 1);
          for (let j = w.scoreFrom; j < w.tokens.length; j++) scored.push(w.tokens[j]!);
        }
        // without a BOS a token that starts a window and is in no earlier window has no context: only the
        // very first token with overlapping windows, every window start with disjoint ones
        const expected = Array.from(ids).filter(
          (_, i) => withBos || (stride < text ? i > 0 : i % text !== 0),
        );
        assert.deepEqual(scored, expected);
        assert.equal(scoredTargets(ws), expected.length);
      },
    ),
  );
});

test('splitWindows: minContext scores only the second half of each window (llama-perplexity)', () => {
  const ids = Int32Array.from({ length: 20 }, (_, i) => i);
  const ws = splitWindows(ids, { windowTokens: 8, bos: 99, minContext: 4 });
  assert.deepEqual(
    ws.map((w) => [w.textOffset, w.scoreFrom, w.tokens.length]),
    [
      [0, 4, 8],
      [7, 4, 8],
      [14, 4, 7],
    ],
  );
  assert.throws(() => splitWindows(ids, { windowTokens: 1 }), /windowTokens/);
  assert.throws(() => splitWindows(ids, { windowTokens: 8, stride: 9 }), /stride/);
});

test('KL, top-1 and nll per window match brute force; identical rows give 0 and 1', () => {
  const V = 5;
  const ref = new Float64Array(V);
  const cand = new Float64Array(V);
  logProbsFromLogits([1, 2, 0.5, -30, 3], ref);
  logProbsFromLogits([1.1, 2.5, 0.4, -29, 2.4], cand);
  let brute = 0;
  for (let i = 0; i < V; i++) brute += Math.exp(ref[i]!) * (ref[i]! - cand[i]!);
  assert.ok(Math.abs(klFromLogProbs(ref, 0, cand, 0, V) - brute) < 1e-15);
  assert.equal(klFromLogProbs(ref, 0, ref, 0, V), 0);
  const windows = splitWindows([3, 4, 1], { windowTokens: 3, bos: 0 });
  const acc = new LmAccumulator(windows, V, true);
  acc.beginWindow(0);
  acc.add(cand, 0, 3, ref, 0); // argmax ref = 4, cand = 1: disagree
  acc.add(ref, 0, 4, ref, 0);
  acc.beginWindow(1);
  acc.add(cand, 0, 1, ref, 0);
  const s = acc.finish();
  assert.equal(s.tokens, 3);
  assert.ok(Math.abs(s.natsPerToken - -(cand[3]! + ref[4]! + cand[1]!) / 3) < 1e-12);
  assert.ok(Math.abs(s.klMean! - (2 * brute) / 3) < 1e-12);
  assert.equal(s.top1Agreement, 1 / 3);
  assert.deepEqual(Array.from(lmItems(s, 'top1').num), [1, 0]);
  assert.throws(() => acc.beginWindow(5), /out of order/);
});

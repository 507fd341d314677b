// Metrics of the evaluation harness against brute-force references: edit distance against the textbook
// recursion, KL / cross-entropy against direct formulas, and the LM window schedule against a
// per-target count.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import fc from 'fast-check';
import { paddleCharset, ctcGreedyDecode } from '../../src/runtime/ctc.ts';
import { lmWindows } from '../../src/runtime/eval-lm.node.ts';
import {
  accumulateFidelity,
  bootstrapStdError,
  crossEntropyAt,
  detectOutputKind,
  finishFidelity,
  levenshtein,
  logSumExp,
  newFidelityAccumulator,
  pairedChangeInterval,
  coarseKlSum,
  topKRows,
} from '../../src/runtime/metrics.ts';

function levRec(a: string, b: string): number {
  // Exponential textbook recursion: fine for the short strings fast-check draws.
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  const sub = levRec(a.slice(1), b.slice(1)) + (a[0] === b[0] ? 0 : 1);
  return Math.min(sub, levRec(a.slice(1), b) + 1, levRec(a, b.slice(1)) + 1);
}

test('levenshtein matches the brute-force recursion', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 7 }),
      fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 7 }),
      (a, b) => {
        assert.equal(levenshtein(a, b), levRec(a, b));
      },
    ),
    { numRuns: 300, seed: 11 },
  );
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  assert.equal(levenshtein('漢字', '漢'), 1); // by code point
});

test('logSumExp and cross-entropy match the direct formulas', () => {
  const x = Float32Array.from([0.5, -1, 2, 3.25]);
  const direct = Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
  assert.ok(Math.abs(logSumExp(x, 0, 4) - direct) < 1e-12);
  assert.ok(Math.abs(crossEntropyAt(x, 0, 4, 2) - (direct - 2)) < 1e-12);
  // Large logits do not overflow.
  assert.ok(Math.abs(logSumExp([1000, 1000], 0, 2) - (1000 + Math.LN2)) < 1e-9);
});

test('fidelity: identical outputs give KL 0, agreement 1, infinite SQNR', () => {
  const ref = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i * 1.7) * 3);
  const acc = newFidelityAccumulator();
  accumulateFidelity(acc, ref, ref.slice(), 6, 'logits');
  const r = finishFidelity(acc);
  assert.deepEqual(r, { klMean: 0, klMax: 0, top1Agreement: 1, sqnrDb: Number.POSITIVE_INFINITY, rows: 10 });
});

test('fidelity: KL, top-1 and SQNR match hand computation', () => {
  const ref = Float32Array.from([0, 1, 2, 3, 0, 0]);
  const cand = Float32Array.from([0, 1, 3, 2, 0, 1]);
  const acc = newFidelityAccumulator();
  accumulateFidelity(acc, ref, cand, 3, 'logits');
  const r = finishFidelity(acc);
  const kl = (p: number[], q: number[]) => {
    const sp = p.reduce((s, v) => s + Math.exp(v), 0);
    const sq = q.reduce((s, v) => s + Math.exp(v), 0);
    return p.reduce((s, v, i) => s + (Math.exp(v) / sp) * (v - Math.log(sp) - (q[i]! - Math.log(sq))), 0);
  };
  const want = (kl([0, 1, 2], [0, 1, 3]) + kl([3, 0, 0], [2, 0, 1])) / 2;
  assert.ok(Math.abs(r.klMean - want) < 1e-12);
  assert.equal(r.top1Agreement, 1);
  assert.ok(Math.abs(r.sqnrDb - 10 * Math.log10(14 / 3)) < 1e-9);
  // Probability rows are recognised and compared as given.
  assert.equal(detectOutputKind([0.25, 0.75, 0.5, 0.5], 2), 'probabilities');
  assert.equal(detectOutputKind([0.25, 0.75, 1.5, 0.5], 2), 'logits');
});

test('bootstrap standard error is reproducible and near the analytic value for a mean', () => {
  const x = Array.from({ length: 400 }, (_, i) => (i * 7919) % 101);
  const ones = x.map(() => 1);
  const a = bootstrapStdError(x, ones, 500, 3);
  assert.equal(bootstrapStdError(x, ones, 500, 3), a);
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
  const analytic = sd / Math.sqrt(x.length);
  assert.ok(Math.abs(a - analytic) / analytic < 0.15, `${a} vs ${analytic}`);
});

test('LM windows score every target exactly once, with at least context - stride history', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 300 }),
      (ctx, s, extra) => {
        const stride = Math.min(s, ctx);
        const n = ctx + 1 + extra;
        const seen = new Int32Array(n);
        for (const w of lmWindows(n, ctx, stride)) {
          assert.ok(w.start >= 0 && w.start + ctx + 1 <= n);
          for (let p = w.firstScored; p < ctx; p++) {
            seen[w.start + p + 1]!++;
            if (w.start > 0) assert.ok(p >= ctx - stride, 'history');
          }
        }
        assert.equal(seen[0], 0);
        for (let t = 1; t < n; t++) assert.equal(seen[t], 1, `target ${t}`);
      },
    ),
    { numRuns: 300, seed: 5 },
  );
});

test('CTC greedy decoding merges repeats, drops blanks, keeps repeats split by a blank', () => {
  const charset = paddleCharset('a\nb\n');
  assert.deepEqual(charset, ['', 'a', 'b', ' ']);
  const path = [1, 1, 0, 1, 2, 2, 3, 0, 0, 2];
  const scores = new Float32Array(path.length * 4);
  path.forEach((c, t) => {
    scores[t * 4 + c] = 1;
  });
  assert.equal(ctcGreedyDecode(scores, path.length, charset), 'aab b');
});

test('pairedChangeInterval: 0 for the same model, brackets a real change, refuses unpaired items', () => {
  const rng = new Rng(5);
  const n = 300;
  const chars = Array.from({ length: n }, () => 10 + Math.floor(rng.nextFloat() * 30));
  const ref = chars.map((c) => Math.floor(rng.nextFloat() * c * 0.05));
  const items = (num: number[]) => ({ num, den: chars, scale: 100 });
  assert.deepEqual(pairedChangeInterval(items(ref), items(ref)), [0, 0]);
  // one more edit on every fifth line: the change is 100 * 60 / sum(chars) on the full set
  const worse = ref.map((e, i) => e + (i % 5 === 0 ? 1 : 0));
  const total = chars.reduce((a, b) => a + b, 0);
  const change = (100 * 60) / total;
  const [lo, hi] = pairedChangeInterval(items(ref), items(worse));
  assert.ok(lo > 0 && lo < change && change < hi, `${lo} < ${change} < ${hi}`);
  assert.throws(() => pairedChangeInterval(items(ref), items(ref.slice(1))), /paired items differ/);
});

{
  const softmaxRows = (logits: number[][]) =>
    Float32Array.from(
      logits.flatMap((row) => {
        const m = Math.max(...row);
        const e = row.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        return e.map((x) => x / z);
      }),
    );
  const rowsArb = (n: number) =>
    fc.array(fc.array(fc.double({ min: -6, max: 6, noNaN: true }), { minLength: n, maxLength: n }), {
      minLength: 1,
      maxLength: 4,
    });

  test("topKRows keeps each row's k largest probabilities, largest first", () => {
    fc.assert(
      fc.property(rowsArb(12), fc.integer({ min: 1, max: 14 }), (rows, k) => {
        const p = softmaxRows(rows);
        const t = topKRows(p, 12, k);
        assert.equal(t.k, Math.min(k, 12));
        rows.forEach((_, r) => {
          const row = Array.from(p.subarray(r * 12, r * 12 + 12));
          const sorted = [...row].sort((a, b) => b - a).slice(0, t.k);
          const got = Array.from(t.prob.subarray(r * t.k, (r + 1) * t.k));
          assert.deepEqual(got, sorted);
          for (let j = 0; j < t.k; j++) assert.equal(row[t.index[r * t.k + j]!], got[j]);
        });
      }),
    );
  });

  test('coarseKlSum is the full KL with k = all classes, a lower bound with fewer, 0 against itself', () => {
    fc.assert(
      fc.property(rowsArb(10), rowsArb(10), fc.integer({ min: 1, max: 9 }), (a, b, k) => {
        const n = Math.min(a.length, b.length);
        const p = softmaxRows(a.slice(0, n));
        const q = softmaxRows(b.slice(0, n));
        const acc = newFidelityAccumulator();
        accumulateFidelity(acc, p, q, 10, 'probabilities');
        const full = coarseKlSum(topKRows(p, 10, 10), q, 10);
        assert.ok(Math.abs(full - acc.klSum) <= 1e-5 * Math.max(1, acc.klSum), `${full} vs ${acc.klSum}`);
        // up to float32 rounding of the probabilities (their sum is 1 within ~1e-7)
        assert.ok(coarseKlSum(topKRows(p, 10, k), q, 10) <= full + 1e-6);
        assert.ok(coarseKlSum(topKRows(p, 10, k), p, 10) < 1e-9);
      }),
    );
  });
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AllocationProblem,
  type AllocWeight,
  exactBitsCapacity,
  lowerHull,
  paretoSweep,
  reduceProblem,
  solveDp,
  solveGreedy,
  solveMilp,
  uniformAllocations,
} from '../../src/analysis/allocate/index.ts';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import { bruteForce, smallProblem } from './allocate-util.ts';

const close = (a: number, b: number, tol = 1e-7): boolean =>
  Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

/** Runs a solver, mapping "no feasible assignment" MixqErrors to undefined. */
async function attempt<T>(f: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    if (
      e instanceof MixqError &&
      /smallest achievable|no assignment meets|no assignment fits/.test(e.message)
    )
      return undefined;
    throw e;
  }
}

function checkFeasible(p: AllocationProblem, choice: readonly number[]): void {
  let bytes = 0;
  let lat = 0;
  p.weights.forEach((w, i) => {
    bytes += w.candidates[choice[i]!]!.bytes;
    lat += w.candidates[choice[i]!]!.latency ?? 0;
  });
  if (p.budget.kind === 'bytes') assert.ok(bytes <= p.budget.bytes, `bytes ${bytes} > ${p.budget.bytes}`);
  if (p.maxLatency !== undefined) assert.ok(lat <= p.maxLatency);
  for (const g of p.groups ?? []) {
    const s = g.map((n) => {
      const i = p.weights.findIndex((w) => w.name === n);
      return p.weights[i]!.candidates[choice[i]!]!.scheme;
    });
    assert.ok(
      s.every((x) => x === s[0]),
      'group members share a scheme',
    );
  }
}

describe('allocation: exact solvers vs brute force', () => {
  it('HiGHS MILP matches exhaustive enumeration (N <= 6, <= 4 candidates)', async () => {
    await fc.assert(
      fc.asyncProperty(smallProblem(), async (p) => {
        const ref = bruteForce(p);
        const a = await attempt(() => solveMilp(p, { relGap: 0 }));
        assert.equal(a === undefined, ref === undefined, 'feasibility agrees');
        if (!a || !ref) return;
        checkFeasible(p, a.choice);
        assert.ok(close(a.damage, ref.damage), `milp ${a.damage} vs brute ${ref.damage}`);
        assert.equal(a.status, 'optimal');
      }),
      { numRuns: 150, seed: 1 },
    );
  });

  it('MILP with latency bounds and tied groups matches enumeration', async () => {
    await fc.assert(
      fc.asyncProperty(smallProblem({ latency: true, groups: true }), async (p) => {
        const ref = bruteForce(p);
        let a: Awaited<ReturnType<typeof solveMilp>> | undefined;
        try {
          a = await solveMilp(p, { relGap: 0 });
        } catch (e) {
          // Infeasible: by size, by latency, or jointly; groups may leave no common scheme.
          assert.ok(e instanceof MixqError, String(e));
          assert.equal(ref, undefined, `solver failed (${(e as Error).message}) but brute force found one`);
          return;
        }
        assert.ok(ref, 'brute force finds a solution too');
        checkFeasible(p, a.choice);
        assert.ok(close(a.damage, ref.damage), `milp ${a.damage} vs brute ${ref.damage}`);
      }),
      { numRuns: 100, seed: 2 },
    );
  });

  it('DP (quantum 1) matches exhaustive enumeration, groups included', async () => {
    await fc.assert(
      fc.asyncProperty(smallProblem({ groups: true }), async (p) => {
        const ref = bruteForce(p);
        let a: ReturnType<typeof solveDp> | undefined;
        try {
          a = solveDp(p, { quantum: 1 });
        } catch (e) {
          assert.ok(e instanceof MixqError);
          assert.equal(ref, undefined);
          return;
        }
        assert.ok(ref);
        checkFeasible(p, a.choice);
        assert.ok(close(a.damage, ref.damage, 1e-9), `dp ${a.damage} vs brute ${ref.damage}`);
      }),
      { numRuns: 200, seed: 3 },
    );
  });

  it('DP with a coarse quantum stays feasible and never beats the optimum', async () => {
    await fc.assert(
      fc.asyncProperty(smallProblem(), async (p) => {
        const ref = bruteForce(p);
        const a = await attempt(() => solveDp(p, { quantum: 7 }));
        if (!a) return;
        assert.ok(ref);
        checkFeasible(p, a.choice);
        assert.ok(a.damage >= ref.damage - 1e-9);
      }),
      { numRuns: 100, seed: 4 },
    );
  });
});

describe('allocation: greedy', () => {
  it('is feasible, never better than the optimum, and its LP bound is below the optimum', async () => {
    await fc.assert(
      fc.asyncProperty(smallProblem({ groups: true }), async (p) => {
        const ref = bruteForce(p);
        const g = await attempt(() => solveGreedy(p));
        if (!ref) return;
        assert.ok(g, 'greedy finds a solution whenever one exists (it starts from the smallest)');
        checkFeasible(p, g.choice);
        assert.ok(g.damage >= ref.damage - 1e-9, `greedy ${g.damage} < optimum ${ref.damage}`);
        assert.ok(g.lowerBound! <= ref.damage + 1e-9, `LP bound ${g.lowerBound} > optimum ${ref.damage}`);
        assert.equal(g.status, 'heuristic');
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  it('is exact on convex equal-step instances', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            start: fc.double({ min: 1, max: 100, noNaN: true }),
            // decreasing positive drops -> convex decreasing damage per equal byte step
            drops: fc.array(fc.double({ min: 0.01, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.nat({ max: 30 }),
        async (ws, steps) => {
          const step = 16;
          const weights: AllocWeight[] = ws.map((w, i) => {
            const drops = [...w.drops].sort((a, b) => b - a).map((d, k) => d * 10 ** -k);
            let d = w.start;
            const candidates = [{ scheme: 'b0', bytes: 64, damage: d }];
            drops.forEach((x, k) => {
              d -= x * w.start * 0.2;
              candidates.push({ scheme: `b${k + 1}`, bytes: 64 + step * (k + 1), damage: d });
            });
            return { name: `w${i}`, elements: 128, candidates };
          });
          const p: AllocationProblem = {
            weights,
            budget: { kind: 'bytes', bytes: 64 * ws.length + step * steps },
          };
          const ref = bruteForce(p)!;
          const g = solveGreedy(p);
          assert.ok(close(g.damage, ref.damage, 1e-9), `greedy ${g.damage} vs optimum ${ref.damage}`);
        },
      ),
      { numRuns: 200, seed: 6 },
    );
  });

  it('is not always exact (a knapsack instance where skipping an upgrade matters)', () => {
    // Upgrades: w0 +10 bytes saves 10 (ratio 1.0), w1 +6 saves 5.9 (0.98), w2 +5 saves 4.9 (0.98).
    // With 11 spare bytes greedy takes w0 first and then nothing fits (damage 10.8 left); the optimum
    // upgrades w1 and w2 instead (damage 10 left).
    const mk = (name: string, extra: number, save: number): AllocWeight => ({
      name,
      elements: 8,
      candidates: [
        { scheme: 'lo', bytes: 1, damage: save },
        { scheme: 'hi', bytes: 1 + extra, damage: 0 },
      ],
    });
    const p: AllocationProblem = {
      weights: [mk('w0', 10, 10), mk('w1', 6, 5.9), mk('w2', 5, 4.9)],
      budget: { kind: 'bytes', bytes: 3 + 11 },
    };
    const g = solveGreedy(p);
    const ref = bruteForce(p)!;
    assert.ok(close(g.damage, 10 + 5.9 + 4.9 - 10), `greedy ${g.damage}`);
    assert.ok(close(ref.damage, 10), `optimum ${ref.damage}`);
    assert.ok(g.gap! > 0);
  });

  it('lowerHull drops dominated and non-convex options', () => {
    const opts = [
      { cost: 4, damage: 10 },
      { cost: 5, damage: 9.9 }, // above the chord from (4,10) to (6,5)
      { cost: 6, damage: 5 },
      { cost: 7, damage: 6 }, // dominated
      { cost: 8, damage: 4 },
      { cost: 4, damage: 12 }, // dominated at equal cost
    ];
    assert.deepEqual(lowerHull(opts), [0, 2, 4]);
  });
});

describe('allocation: budgets, groups, errors', () => {
  it('converts bits per weight exactly, reading the decimal', () => {
    assert.equal(exactBitsCapacity(4.1, 10), 41);
    assert.equal(exactBitsCapacity(4, 1000), 4000);
    assert.equal(exactBitsCapacity(3.5, 3), 10);
    assert.equal(exactBitsCapacity(0.1, 30), 3);
  });

  it('a bits-per-weight budget counts exact bits (scales included), not rounded bytes', async () => {
    const w = (name: string): AllocWeight => ({
      name,
      elements: 10,
      candidates: [
        { scheme: 'int4', bytes: 6, bits: 41, damage: 1 }, // 4.1 bits per weight
        { scheme: 'int8', bytes: 11, bits: 81, damage: 0 },
      ],
    });
    const p: AllocationProblem = { weights: [w('a'), w('b')], budget: { kind: 'bitsPerWeight', bits: 4.1 } };
    const a = await solveMilp(p);
    assert.deepEqual(a.schemes, ['int4', 'int4']);
    assert.equal(a.bits, 82);
    assert.ok(close(a.bitsPerWeight, 4.1));
    const b = await solveMilp({ ...p, budget: { kind: 'bitsPerWeight', bits: 6.1 } });
    assert.equal(b.bits, 122);
  });

  it('infeasible budgets name the smallest achievable size', async () => {
    const p: AllocationProblem = {
      weights: [
        { name: 'a', elements: 64, candidates: [{ scheme: 'x', bytes: 40, damage: 1 }] },
        {
          name: 'b',
          elements: 64,
          candidates: [
            { scheme: 'x', bytes: 24, damage: 1 },
            { scheme: 'y', bytes: 30, damage: 0 },
          ],
        },
      ],
      budget: { kind: 'bytes', bytes: 50 },
    };
    await assert.rejects(solveMilp(p), (e: unknown) => {
      assert.ok(e instanceof MixqError);
      assert.match(e.message, /smallest achievable size 64 bytes \(4\.0000 bits per weight\)/);
      return true;
    });
    assert.throws(
      () => solveGreedy({ ...p, budget: { kind: 'bitsPerWeight', bits: 3 } }),
      /smallest achievable size 512 bits/,
    );
  });

  it('tied weights share a scheme; forced and allowed sets are respected', async () => {
    const cands = (d: number[]) =>
      ['q2', 'q4', 'q8'].map((s, j) => ({ scheme: s, bytes: [2, 4, 8][j]!, damage: d[j]! }));
    const p: AllocationProblem = {
      weights: [
        { name: 'emb', elements: 16, candidates: cands([9, 1, 0]) },
        { name: 'head', elements: 16, candidates: cands([0.5, 0.4, 0]) },
        { name: 'mid', elements: 16, candidates: cands([5, 1, 0]), forced: 'q8' },
        { name: 'x', elements: 16, candidates: cands([5, 1, 0]), allowed: ['q2', 'q4'] },
      ],
      budget: { kind: 'bytes', bytes: 4 + 4 + 8 + 4 },
      groups: [['emb', 'head']],
    };
    const a = await solveMilp(p, { relGap: 0 });
    assert.deepEqual(a.schemes, ['q4', 'q4', 'q8', 'q4']);
    assert.ok(close(a.damage, 1 + 0.4 + 0 + 1));
    // Alone, head would drop to q2 and emb... the group forces them together; check against enumeration.
    assert.ok(close(a.damage, bruteForce(p)!.damage));
  });

  it('rejects malformed problems with the field path', () => {
    const base: AllocWeight = { name: 'a', elements: 4, candidates: [{ scheme: 'x', bytes: 1, damage: 0 }] };
    const bad = (w: Partial<AllocWeight>, re: RegExp) =>
      assert.throws(
        () => reduceProblem({ weights: [{ ...base, ...w }], budget: { kind: 'bytes', bytes: 9 } }),
        re,
      );
    bad({ candidates: [] }, /weights\[0\]\.candidates: weight 'a' has no candidates/);
    bad({ candidates: [{ scheme: 'x', bytes: 1.5, damage: 0 }] }, /weights\[0\]\.candidates\[0\]\.bytes/);
    bad({ candidates: [{ scheme: 'x', bytes: 1, damage: Number.NaN }] }, /candidates\[0\]\.damage/);
    bad(
      {
        candidates: [
          { scheme: 'x', bytes: 1, damage: 0 },
          { scheme: 'x', bytes: 2, damage: 0 },
        ],
      },
      /duplicate scheme 'x'/,
    );
    bad({ forced: 'nope' }, /weights\[0\]\.forced: scheme 'nope' is not a candidate \(expected one of x\)/);
    bad({ elements: 0 }, /weights\[0\]\.elements/);
  });
});

/** A realistic random instance: schemes at 2..8 bits with damage ~ n * 4^-bits, like quantization noise. */
function randomRealistic(n: number, seed: number): AllocWeight[] {
  const rng = new Rng(seed);
  const bitsList = [2, 3, 4, 5, 6, 8];
  return Array.from({ length: n }, (_, i) => {
    const elements = 256 * (1 + Math.floor(rng.nextFloat() * 8));
    const sens = Math.exp(3 * rng.nextNormal());
    return {
      name: `w${i}`,
      elements,
      candidates: bitsList.map((b) => ({
        scheme: `int${b}`,
        bytes: (elements * b) / 8 + 2 * (elements / 32),
        damage: sens * elements * 4 ** -b * (0.8 + 0.4 * rng.nextFloat()),
      })),
    };
  });
}

describe('allocation: Pareto sweep', () => {
  it('damage is non-increasing in the budget, matches the DP optimum, and the frontier is non-dominated', async () => {
    const weights = randomRealistic(12, 7);
    const p: AllocationProblem = { weights, budget: { kind: 'bitsPerWeight', bits: 4 } };
    const budgets = [2.5, 3, 3.5, 4, 4.5, 5, 6, 7];
    const milp = await paretoSweep(p, { budgets, relGap: 0 });
    const dp = await paretoSweep(p, { budgets, solver: 'dp' });
    const greedy = await paretoSweep(p, { budgets, solver: 'greedy' });
    assert.equal(milp.points.length, budgets.length);
    for (let t = 0; t < budgets.length; t++) {
      const m = milp.points[t]!.allocation;
      assert.ok(m.bitsPerWeight <= budgets[t]! + 1e-12);
      assert.ok(close(m.damage, dp.points[t]!.allocation.damage, 1e-6), `budget ${budgets[t]}`);
      assert.ok(greedy.points[t]!.allocation.damage >= m.damage - 1e-9);
      if (t > 0) assert.ok(m.damage <= milp.points[t - 1]!.allocation.damage);
    }
    const f = milp.frontier;
    for (let t = 1; t < f.length; t++) {
      assert.ok(f[t]!.bits > f[t - 1]!.bits);
      assert.ok(f[t]!.damage < f[t - 1]!.damage);
    }
  });

  it('with a latency bound, budgets only jointly infeasible are listed, not thrown; the others meet it', async () => {
    // int2 is slow here (latency 10 per element, b per element otherwise): small budgets break the bound
    const weights = randomRealistic(8, 3).map((w) => ({
      ...w,
      candidates: w.candidates.map((c) => {
        const b = Number(c.scheme.slice(3));
        return { ...c, latency: w.elements * (b === 2 ? 10 : b) };
      }),
    }));
    const maxLatency = weights.reduce((s, w) => s + 3 * w.elements, 0); // every weight at int3
    const p: AllocationProblem = { weights, budget: { kind: 'bitsPerWeight', bits: 4 }, maxLatency };
    const r = await paretoSweep(p, { budgets: [2.2, 4, 6] });
    assert.deepEqual(r.infeasibleBudgets, [2.2]);
    assert.deepEqual(
      r.points.map((pt) => pt.budget),
      [4, 6],
    );
    for (const pt of r.points) assert.ok(pt.allocation.latency! <= maxLatency, `${pt.budget}`);
    await assert.rejects(
      paretoSweep({ ...p, maxLatency: maxLatency / 10 }, { budgets: [4] }),
      /below the smallest achievable latency/,
    );
  });

  it('automatic budgets span the smallest to the largest size', async () => {
    const p: AllocationProblem = { weights: randomRealistic(6, 9), budget: { kind: 'bytes', bytes: 0 } };
    const r = await paretoSweep(p, { points: 5, solver: 'dp' });
    assert.equal(r.points.length, 5);
    const first = r.points[0]!.allocation;
    const last = r.points[4]!.allocation;
    assert.ok(first.schemes.every((s) => s === 'int2'));
    assert.ok(last.schemes.every((s) => s === 'int8'));
    assert.ok(
      r.points.every((pt, t) => t === 0 || pt.allocation.damage <= r.points[t - 1]!.allocation.damage),
    );
  });

  it('MILP on a larger instance: small gap, within budget, never worse than greedy', async () => {
    const p: AllocationProblem = {
      weights: randomRealistic(200, 11),
      budget: { kind: 'bitsPerWeight', bits: 4 },
    };
    const a = await solveMilp(p);
    const g = solveGreedy(p);
    assert.ok(a.gap !== undefined && a.gap <= 1.001e-4, `gap ${a.gap}`);
    assert.ok(a.bitsPerWeight <= 4);
    assert.ok(g.damage >= a.damage * (1 - 1e-6));
    assert.ok(g.lowerBound! <= a.damage * (1 + 1e-9));
  });

  it('a time limit returns the best assignment found with its gap', async () => {
    const p: AllocationProblem = {
      weights: randomRealistic(150, 13),
      budget: { kind: 'bitsPerWeight', bits: 3 },
    };
    const g = solveGreedy(p);
    const a = await solveMilp(p, { relGap: 0, timeLimitSec: 0.2 });
    assert.ok(a.bitsPerWeight <= 3);
    assert.ok(a.damage <= g.damage * (1 + 1e-12), 'greedy is the starting incumbent');
    assert.ok(a.lowerBound! <= a.damage);
    if (a.status === 'time-limit') assert.ok(a.gap! > 0 && Number.isFinite(a.gap!), `gap ${a.gap}`);
    else assert.equal(a.status, 'optimal'); // a fast machine may prove it within 0.2 s
    assert.ok(a.timeMs < 10_000, `took ${a.timeMs} ms`);
  });
});

describe('uniformAllocations', () => {
  it('gives one plan per scheme every weight has and may use, with the exact totals, smallest first', () => {
    fc.assert(
      fc.property(smallProblem(), (p) => {
        const us = uniformAllocations(p);
        const usable = (w: AllocWeight, s: string) =>
          w.candidates.some((c) => c.scheme === s) &&
          (w.forced !== undefined ? w.forced === s : !w.allowed || w.allowed.includes(s));
        const schemes = new Set(p.weights.flatMap((w) => w.candidates.map((c) => c.scheme)));
        const expected = [...schemes].filter((s) => p.weights.every((w) => usable(w, s)));
        assert.deepEqual(new Set(us.map((u) => u.schemes[0])), new Set(expected));
        const elements = p.weights.reduce((s, w) => s + w.elements, 0);
        for (const u of us) {
          const s = u.schemes[0]!;
          assert.ok(u.schemes.every((x) => x === s));
          let bytes = 0;
          let damage = 0;
          p.weights.forEach((w, i) => {
            const c = w.candidates[u.choice[i]!]!;
            assert.equal(c.scheme, s);
            bytes += c.bytes;
            damage += c.damage;
          });
          assert.equal(u.bytes, bytes);
          assert.ok(close(u.damage, damage));
          assert.ok(close(u.bitsPerWeight, u.bits / elements));
          assert.equal(u.solver, 'uniform');
        }
        for (let i = 1; i < us.length; i++) assert.ok(us[i - 1]!.bits <= us[i]!.bits);
      }),
      { numRuns: 200 },
    );
  });

  it('leaves out schemes a weight lacks, is not allowed, or is forced away from', () => {
    const c = (scheme: string, bytes: number) => ({ scheme, bytes, damage: 1 / bytes });
    const p: AllocationProblem = {
      weights: [
        { name: 'a', elements: 8, candidates: [c('x', 8), c('y', 4), c('z', 2), c('v', 1)] },
        { name: 'b', elements: 8, candidates: [c('x', 8), c('y', 4), c('z', 2)], allowed: ['x', 'z'] },
        { name: 'c', elements: 8, candidates: [c('z', 2), c('x', 8), c('y', 4)] },
      ],
      budget: { kind: 'bytes', bytes: 1 },
    };
    assert.deepEqual(
      uniformAllocations(p).map((u) => [u.schemes[0], u.bytes, u.choice]),
      [
        ['z', 6, [2, 2, 0]],
        ['x', 24, [0, 0, 1]],
      ],
    );
    const forced = { ...p, weights: [...p.weights.slice(0, 2), { ...p.weights[2]!, forced: 'x' }] };
    assert.deepEqual(
      uniformAllocations(forced).map((u) => u.schemes[0]),
      ['x'],
    );
  });
});

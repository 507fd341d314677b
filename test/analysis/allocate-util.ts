/** Shared helpers for the allocation tests: random instances and the brute-force reference. */
import fc from 'fast-check';
import type { AllocationProblem, AllocWeight } from '../../src/analysis/allocate/index.ts';

/**
 * Exhaustive enumeration over every per-weight choice (respecting allowed / forced / groups by checking
 * them directly, not through reduceProblem): the minimum damage of a feasible assignment, or undefined.
 */
export function bruteForce(p: AllocationProblem): { damage: number; choice: number[] } | undefined {
  const ws = p.weights;
  const totalEl = ws.reduce((s, w) => s + w.elements, 0);
  const okScheme = (w: AllocWeight, j: number): boolean => {
    const s = w.candidates[j]!.scheme;
    if (w.forced !== undefined) return s === w.forced;
    return !w.allowed || w.allowed.includes(s);
  };
  let best: { damage: number; choice: number[] } | undefined;
  const choice = new Array<number>(ws.length).fill(0);
  const rec = (i: number): void => {
    if (i === ws.length) {
      let bytes = 0;
      let bits = 0;
      let damage = 0;
      let lat = 0;
      ws.forEach((w, k) => {
        const c = w.candidates[choice[k]!]!;
        bytes += c.bytes;
        bits += c.bits ?? 8 * c.bytes;
        damage += c.damage;
        lat += c.latency ?? 0;
      });
      if (p.budget.kind === 'bytes' ? bytes > p.budget.bytes : bits > p.budget.bits * totalEl + 1e-9) return;
      if (p.maxLatency !== undefined && lat > p.maxLatency) return;
      for (const g of p.groups ?? []) {
        const s = g.map((n) => {
          const k = ws.findIndex((w) => w.name === n);
          return ws[k]!.candidates[choice[k]!]!.scheme;
        });
        if (s.some((x) => x !== s[0])) return;
      }
      if (!best || damage < best.damage) best = { damage, choice: [...choice] };
      return;
    }
    for (let j = 0; j < ws[i]!.candidates.length; j++) {
      if (!okScheme(ws[i]!, j)) continue;
      choice[i] = j;
      rec(i + 1);
    }
  };
  rec(0);
  return best;
}

const SCHEMES = ['s0', 's1', 's2', 's3'];

/** A random small instance: N <= 6 weights, <= 4 candidates (scheme ids drawn from a shared pool). */
export const smallProblem = (
  opts: { latency?: boolean; groups?: boolean } = {},
): fc.Arbitrary<AllocationProblem> =>
  fc
    .record({
      weights: fc.array(
        fc.record({
          elements: fc.integer({ min: 1, max: 64 }),
          cands: fc.array(
            fc.record({
              bytes: fc.integer({ min: 0, max: 100 }),
              damage: fc.double({ min: 0, max: 10, noNaN: true }),
              latency: fc.integer({ min: 0, max: 20 }),
            }),
            { minLength: 1, maxLength: 4 },
          ),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      budgetFrac: fc.double({ min: 0, max: 1.1, noNaN: true }),
      latFrac: fc.double({ min: 0.2, max: 1.1, noNaN: true }),
      groupPair: fc.boolean(),
    })
    .map(({ weights, budgetFrac, latFrac, groupPair }) => {
      const ws: AllocWeight[] = weights.map((w, i) => ({
        name: `w${i}`,
        elements: w.elements,
        candidates: w.cands.map((c, j) => ({
          scheme: SCHEMES[j]!,
          bytes: c.bytes,
          damage: c.damage,
          ...(opts.latency ? { latency: c.latency } : {}),
        })),
      }));
      const minB = ws.reduce((s, w) => s + Math.min(...w.candidates.map((c) => c.bytes)), 0);
      const maxB = ws.reduce((s, w) => s + Math.max(...w.candidates.map((c) => c.bytes)), 0);
      const bytes = Math.floor(minB + (maxB - minB) * budgetFrac);
      const p: AllocationProblem = { weights: ws, budget: { kind: 'bytes', bytes } };
      let out: AllocationProblem = p;
      if (opts.latency) {
        const maxL = ws.reduce((s, w) => s + Math.max(...w.candidates.map((c) => c.latency ?? 0)), 0);
        out = { ...out, maxLatency: Math.floor(maxL * latFrac) };
      }
      if (opts.groups && groupPair && ws.length >= 2) out = { ...out, groups: [['w0', 'w1']] };
      return out;
    });

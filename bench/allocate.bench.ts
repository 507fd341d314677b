/**
 * Allocation solvers: HiGHS MILP vs greedy (and the exact DP where its table fits) on random realistic
 * instances of N weights x 12 candidate schemes (INT2..INT8 at two group sizes, element counts of real
 * layer shapes, damage ~ sensitivity * n * 4^-bits with noise). Prints solve times, their ratio, and the
 * greedy optimality gap (greedy damage / MILP damage - 1) at 3, 4 and 5 bits per weight.
 */
import { type AllocWeight, loadHighs, solveGreedy, solveMilp } from '../src/analysis/allocate/index.ts';
import { Rng } from '../src/core/rng.ts';
import { printTable } from './util.ts';

function instance(n: number, seed: number): AllocWeight[] {
  const rng = new Rng(seed);
  const dims = [256, 512, 768, 1024, 2048, 3072, 4096];
  const schemes: { bits: number; group: number }[] = [];
  for (const bits of [2, 3, 4, 5, 6, 8]) for (const group of [32, 128]) schemes.push({ bits, group });
  return Array.from({ length: n }, (_, i) => {
    const rows = dims[Math.floor(rng.nextFloat() * dims.length)]!;
    const cols = dims[Math.floor(rng.nextFloat() * dims.length)]!;
    const elements = rows * cols;
    const sens = Math.exp(2 * rng.nextNormal());
    return {
      name: `w${i}`,
      elements,
      candidates: schemes.map(({ bits, group }) => {
        // fp16 scale per group; smaller groups cost more and clip less.
        const totalBits = elements * bits + (elements / group) * 16;
        const groupGain = group === 32 ? 0.8 : 1;
        return {
          scheme: `int${bits}_g${group}`,
          bytes: Math.ceil(totalBits / 8),
          bits: totalBits,
          damage: sens * elements * 4 ** -bits * groupGain * (0.9 + 0.2 * rng.nextFloat()),
        };
      }),
    };
  });
}

export default async function bench(): Promise<void> {
  const t0 = performance.now();
  await loadHighs();
  console.log(`HiGHS WebAssembly load: ${(performance.now() - t0).toFixed(0)} ms (once per process)`);
  const rows: string[][] = [];
  for (const n of [100, 500, 2000]) {
    const weights = instance(n, n);
    for (const bits of [3, 4, 5]) {
      const p = { weights, budget: { kind: 'bitsPerWeight' as const, bits } };
      const m = await solveMilp(p, { timeLimitSec: 30 });
      const g = solveGreedy(p);
      // Greedy again for a steadier time (it is sub-millisecond on small N).
      const tg0 = performance.now();
      for (let k = 0; k < 5; k++) solveGreedy(p);
      const tg = (performance.now() - tg0) / 5;
      rows.push([
        String(n),
        String(bits),
        m.timeMs.toFixed(1),
        m.status,
        (m.gap ?? Number.NaN).toExponential(1),
        tg.toFixed(2),
        (m.timeMs / tg).toFixed(0),
        ((g.damage / m.damage - 1) * 100).toFixed(4),
        ((1 - g.lowerBound! / g.damage) * 100).toFixed(4),
      ]);
    }
  }
  printTable(
    [
      'N',
      'bpw',
      'milp ms',
      'status',
      'milp gap',
      'greedy ms',
      'milp/greedy',
      'greedy excess %',
      'greedy cert. gap %',
    ],
    rows,
  );
  console.log('12 candidates per weight; greedy excess = greedy damage / MILP damage - 1;');
  console.log('cert. gap = greedy vs its own LP lower bound (what greedy alone can prove).');
}

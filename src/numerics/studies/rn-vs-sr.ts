/**
 * Studies `harmonic` and `heat`: long accumulations in bf16 / fp16 under round-to-nearest (RN) and
 * stochastic rounding (SR). Under RN an update smaller than half an ulp of the running value is lost, so
 * the computation stagnates; SR rounds up with probability proportional to the lost part, so the result
 * is right on average (Connolly, Higham & Mary, "Stochastic rounding and its probabilistic backward error
 * analysis", SISC 2021; Paxton et al., "Climate modeling in low precision: effects of both deterministic
 * and stochastic rounding", J. Climate 2022). Every operation is rounded by a withPrecision context; SR runs
 * are repeated over `seeds` seeds and reported as mean and standard deviation.
 */
import { withPrecision } from '../context.ts';
import { hashNumbers, sinDet } from '../det-math.ts';
import { twoSumErr } from '../eft.ts';
import { type Cell, NumberLog, sci, type StudyResult } from './study.ts';

export interface HarmonicOptions {
  /** Terms (default 65536). */
  terms?: number;
  /** SR repetitions (default 8), with seeds seed, seed + 1, ... */
  seeds?: number;
  seed?: number;
  formats?: readonly string[];
}

/** Points 1, 2, 3, ..., then ~24 per octave up to n: where a study records its trajectory. */
function checkpoints(n: number): number[] {
  const out: number[] = [];
  for (let k = 1; k <= n; k = Math.max(k + 1, Math.floor(k * 1.03))) out.push(k);
  if (out[out.length - 1] !== n) out.push(n);
  return out;
}

function meanStd(xs: readonly number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1);
  return [m, Math.sqrt(v)];
}

/**
 * sum_{k=1}^{n} 1/k with every term and partial sum rounded: the values at the checkpoints, and the first
 * k from which the sum never changes again (stagnation).
 */
function harmonicRun(
  format: string,
  rounding: 'nearest-even' | 'stochastic',
  seed: number,
  at: number[],
): { sums: number[]; stall: number } {
  const ctx = withPrecision({ format, rounding, seed });
  const sums: number[] = [];
  let s = 0;
  let c = 0;
  let stall = 1;
  for (let k = 1; k <= at[at.length - 1]!; k++) {
    const next = ctx.add(s, ctx.div(1, k));
    if (next !== s) stall = k + 1;
    s = next;
    if (k === at[c]) {
      sums.push(s);
      c++;
    }
  }
  return { sums, stall };
}

export function harmonicStudy(opts: HarmonicOptions = {}): StudyResult {
  const n = opts.terms ?? 65536;
  const seeds = opts.seeds ?? 8;
  const seed0 = opts.seed ?? 1;
  const formats = opts.formats ?? ['fp16', 'bf16'];
  const at = checkpoints(n);
  const log = new NumberLog();
  // float64 reference, compensated (TwoSum): accurate to ~1e-16
  const exact: number[] = [];
  {
    let s = 0;
    let c = 0;
    let j = 0;
    for (let k = 1; k <= n; k++) {
      const t = s + 1 / k;
      c += twoSumErr(s, 1 / k, t);
      s = t;
      if (k === at[j]) {
        exact.push(s + c);
        j++;
      }
    }
  }
  log.addAll(exact);
  const points: { x: number; y: number; series: string }[] = at.map((k, i) => ({
    x: k,
    y: exact[i]!,
    series: 'float64',
  }));
  const rows: Cell[][] = [];
  const final = exact[exact.length - 1]!;
  let headline = '';
  for (const f of formats) {
    const { sums: rn, stall } = harmonicRun(f, 'nearest-even', 0, at);
    log.addAll(rn);
    log.add(stall);
    const last = rn[rn.length - 1]!;
    const stalled = stall <= n ? `from k = ${stall}` : 'none';
    rows.push([f, 'nearest', String(last), '-', sci(Math.abs(last - final) / final), stalled]);
    at.forEach((k, i) => points.push({ x: k, y: rn[i]!, series: `${f} RN` }));
    const runs = Array.from({ length: seeds }, (_, s) => harmonicRun(f, 'stochastic', seed0 + s, at).sums);
    for (const r of runs) log.addAll(r);
    const stats = at.map((_, i) => meanStd(runs.map((r) => r[i]!)));
    const [m, sd] = stats[stats.length - 1]!;
    rows.push([
      f,
      `stochastic (${seeds} seeds)`,
      m.toFixed(4),
      sci(sd),
      sci(Math.abs(m - final) / final),
      '-',
    ]);
    at.forEach((k, i) => points.push({ x: k, y: stats[i]![0], series: `${f} SR mean` }));
    if (f === 'fp16')
      headline = `fp16 harmonic sum of ${n} terms: RN stalls at ${last} from k = ${stall}; SR mean ${m.toFixed(4)} +- ${sd.toFixed(4)} vs ${final.toFixed(4)}`;
  }
  rows.unshift(['float64', 'nearest', final.toFixed(4), '-', '0', '-']);
  return {
    name: 'harmonic',
    title: 'The harmonic sum in fp16 / bf16: round-to-nearest stagnates, stochastic rounding does not',
    params: { terms: n, seeds, seed: seed0, formats: formats.join(' ') },
    tables: [
      {
        title: `sum_{k=1}^{${n}} 1/k, each term and each partial sum rounded`,
        columns: ['format', 'rounding', 'sum', 'std', 'rel. error', 'stagnation'],
        rows,
      },
    ],
    plot: {
      title: `Partial sums of the harmonic series (SR: mean of ${seeds} seeds)`,
      x: { label: 'k', log: true },
      y: { label: 'sum_{j<=k} 1/j' },
      points,
    },
    headline,
    hash: hashNumbers(log.all()),
  };
}

export interface HeatOptions {
  /** Interior grid points (default 30). */
  points?: number;
  /** r = dt / dx^2 (default 0.02; stable for r <= 1/2). */
  r?: number;
  /** Final time (default 0.1). */
  time?: number;
  /** SR repetitions (default 5), with seeds seed, seed + 1, ... */
  seeds?: number;
  seed?: number;
  formats?: readonly string[];
}

/**
 * u_t = u_xx on [0, 1], u(0) = u(1) = 0, u(x, 0) = sin(pi x), explicit Euler on `m` interior points:
 * u_i <- u_i + r * ((u_{i-1} - 2 u_i) + u_{i+1}), every operation rounded (float64 when format is null).
 * Returns the midpoint value at each recorded step and the final profile.
 */
function heatRun(
  format: string | null,
  rounding: 'nearest-even' | 'stochastic',
  seed: number,
  m: number,
  r: number,
  steps: number,
  every: number,
): { mid: number[]; profile: Float64Array } {
  const ctx = format ? withPrecision({ format, rounding, seed }) : null;
  const dx = 1 / (m + 1);
  let u: Float64Array = Float64Array.from({ length: m }, (_, i) => sinDet(Math.PI * (i + 1) * dx));
  if (ctx) u = ctx.roundArray(u);
  const rr = ctx ? ctx.round(r) : r;
  let v: Float64Array = new Float64Array(m);
  const mid: number[] = [];
  const c = (m - 1) >> 1;
  for (let t = 0; t <= steps; t++) {
    if (t % every === 0) mid.push(m % 2 === 1 ? u[c]! : (u[c]! + u[c + 1]!) / 2);
    if (t === steps) break;
    for (let i = 0; i < m; i++) {
      const left = i > 0 ? u[i - 1]! : 0;
      const right = i < m - 1 ? u[i + 1]! : 0;
      if (ctx) {
        const lap = ctx.add(ctx.sub(left, ctx.mul(2, u[i]!)), right);
        v[i] = ctx.add(u[i]!, ctx.mul(rr, lap));
      } else {
        v[i] = u[i]! + rr * (left - 2 * u[i]! + right);
      }
    }
    [u, v] = [v, u];
  }
  return { mid, profile: u };
}

export function heatStudy(opts: HeatOptions = {}): StudyResult {
  const m = opts.points ?? 31;
  const r = opts.r ?? 0.02;
  const T = opts.time ?? 0.1;
  const seeds = opts.seeds ?? 5;
  const seed0 = opts.seed ?? 1;
  const formats = opts.formats ?? ['fp16', 'bf16'];
  const dx = 1 / (m + 1);
  const steps = Math.round(T / (r * dx * dx));
  const every = Math.max(1, Math.floor(steps / 100));
  const log = new NumberLog();
  const ref = heatRun(null, 'nearest-even', 0, m, r, steps, every);
  log.addAll(ref.mid);
  log.addAll(ref.profile);
  const times = ref.mid.map((_, i) => i * every * r * dx * dx);
  const points = ref.mid.map((y, i) => ({ x: times[i]!, y, series: 'float64' }));
  const l2 = (p: Float64Array): number => {
    let s = 0;
    let q = 0;
    for (let i = 0; i < m; i++) {
      s += (p[i]! - ref.profile[i]!) ** 2;
      q += ref.profile[i]! ** 2;
    }
    return Math.sqrt(s / q);
  };
  const refEnd = ref.mid[ref.mid.length - 1]!;
  const rows: Cell[][] = [['float64', 'nearest', refEnd.toFixed(4), '-', '0']];
  let headline = '';
  for (const f of formats) {
    const rn = heatRun(f, 'nearest-even', 0, m, r, steps, every);
    log.addAll(rn.mid);
    log.addAll(rn.profile);
    const rnEnd = rn.mid[rn.mid.length - 1]!;
    rows.push([f, 'nearest', rnEnd.toFixed(4), '-', sci(l2(rn.profile))]);
    rn.mid.forEach((y, i) => points.push({ x: times[i]!, y, series: `${f} RN` }));
    const runs = Array.from({ length: seeds }, (_, s) =>
      heatRun(f, 'stochastic', seed0 + s, m, r, steps, every),
    );
    for (const run of runs) {
      log.addAll(run.mid);
      log.addAll(run.profile);
    }
    const mean = runs[0]!.mid.map((_, i) => meanStd(runs.map((run) => run.mid[i]!))[0]);
    const [me, sd] = meanStd(runs.map((run) => run.mid[run.mid.length - 1]!));
    const errs = meanStd(runs.map((run) => l2(run.profile)));
    rows.push([f, `stochastic (${seeds} seeds)`, me.toFixed(4), sci(sd), `${sci(errs[0])} (mean)`]);
    mean.forEach((y, i) => points.push({ x: times[i]!, y, series: `${f} SR mean` }));
    if (f === 'bf16')
      headline = `heat equation, bf16: RN holds u(1/2) at ${rnEnd.toFixed(3)} (float64 ${refEnd.toFixed(3)}); SR mean ${me.toFixed(3)} +- ${sd.toFixed(3)}`;
  }
  return {
    name: 'heat',
    title:
      'Heat equation in fp16 / bf16: round-to-nearest freezes the solution, stochastic rounding follows it',
    params: { points: m, r, time: T, steps, seeds, seed: seed0, formats: formats.join(' ') },
    tables: [
      {
        title: `u_t = u_xx, u(x,0) = sin(pi x), explicit Euler, ${m} points, r = dt/dx^2 = ${r}, ${steps} steps to t = ${T}`,
        columns: ['format', 'rounding', 'u(1/2, T)', 'std', 'rel. L2 error vs float64'],
        rows,
      },
    ],
    plot: {
      title: 'Midpoint temperature u(1/2, t) (SR: mean over seeds)',
      x: { label: 't' },
      y: { label: 'u(1/2, t)' },
      points,
    },
    headline,
    hash: hashNumbers(log.all()),
  };
}

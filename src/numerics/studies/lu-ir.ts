/**
 * Study `lu-ir`: LU factorization with partial pivoting in fp16 / bf16 and mixed-precision iterative
 * refinement to float64 accuracy (Carson & Higham, "Accelerating the solution of linear systems by
 * iterative refinement in three precisions", SIAM J. Sci. Comput. 40(2), 2018).
 *
 * For each condition number kappa (randsvd matrices, mode 2 by default, n x n) and factorization format u_f:
 * - A = LU in u_f, every operation rounded (withPrecision); the plain solve in u_f is the baseline;
 * - LU-IR: x_0 from the u_f solve; repeat r = b - A x_i in u_r = u^2 (compensated Dot2), d = (LU)^-1 r in
 *   u_f (r scaled by 1/||r||_inf so it cannot underflow fp16), x_{i+1} = x_i + d in u = float64;
 *   converges when kappa_inf(A) u_f < ~1;
 * - GMRES-IR: the correction from float64 GMRES on the system preconditioned by the u_f factors (at most
 *   `gmresMax` iterations per step, tolerance 1e-6); converges for kappa_inf(A) up to ~ u^(-1/2) u_f^-1.
 * Both stop when ||d||_inf / ||x||_inf <= u = 2^-53, or fail when the correction stops shrinking (no
 * convergence) or after `maxIter` steps. Errors are forward errors ||x - x*||_inf / ||x*||_inf against x*,
 * the float64 LU solution refined with the compensated residual (accurate to ~kappa u^2).
 */
import { Rng } from '../../core/rng.ts';
import { withPrecision } from '../context.ts';
import { hashNumbers, normalDet } from '../det-math.ts';
import {
  gmres,
  type Lu,
  luFactor,
  luSolve,
  luSolve64,
  matNormInf,
  normInf,
  randsvd,
  residual2,
} from './linalg.ts';
import { type Cell, NumberLog, sci, type StudyPlot, type StudyResult } from './study.ts';

export interface LuIrOptions {
  /** Matrix size (default 100). */
  n?: number;
  /** log10 of the condition numbers (default 1..10). */
  log10Kappas?: readonly number[];
  /** Factorization formats (default fp16, bf16). */
  formats?: readonly string[];
  /** Refinement steps at most (default 20 for LU-IR, 10 for GMRES-IR). */
  maxIter?: number;
  /** GMRES iterations per refinement step at most (default min(n, 30)). */
  gmresMax?: number;
  /** randsvd mode: 2 (one small singular value, default, as Carson-Higham) or 3 (geometric: harder for GMRES). */
  mode?: 2 | 3;
  seed?: number;
}

const U64 = 2 ** -53;

interface Run {
  readonly errors: number[];
  readonly converged: boolean;
  readonly steps: number;
  readonly gmresSteps: number;
}

/** Refinement from x0: `correction` gives d for a residual r. */
function refine(
  A: Float64Array,
  b: Float64Array,
  xStar: Float64Array,
  x0: Float64Array,
  n: number,
  maxIter: number,
  correction: (r: Float64Array) => { d: Float64Array; inner: number },
): Run {
  const x = Float64Array.from(x0);
  const err = (): number => {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(x[i]! - xStar[i]!));
    return m / normInf(xStar);
  };
  const errors = [err()];
  let last = Infinity;
  let inner = 0;
  for (let it = 1; it <= maxIter; it++) {
    const r = residual2(A, x, b, n);
    const { d, inner: k } = correction(r);
    inner += k;
    for (let i = 0; i < n; i++) x[i] = x[i]! + d[i]!;
    errors.push(err());
    const rel = normInf(d) / normInf(x);
    if (!Number.isFinite(rel) || !Number.isFinite(errors[errors.length - 1]!))
      return { errors, converged: false, steps: it, gmresSteps: inner };
    if (rel <= U64) return { errors, converged: true, steps: it, gmresSteps: inner };
    if (rel >= last && it > 2) return { errors, converged: false, steps: it, gmresSteps: inner };
    last = rel;
  }
  return { errors, converged: false, steps: maxIter, gmresSteps: inner };
}

/** The float64 reference solution: LU in float64 refined with the compensated residual. */
function referenceSolution(A: Float64Array, f: Lu, b: Float64Array, n: number): Float64Array {
  const x = luSolve64(f, b);
  for (let it = 0; it < 10; it++) {
    const d = luSolve64(f, residual2(A, x, b, n));
    for (let i = 0; i < n; i++) x[i] = x[i]! + d[i]!;
  }
  return x;
}

function condInf(A: Float64Array, f: Lu, n: number): number {
  // ||A^-1||_inf from the float64 factors, column by column
  let m = 0;
  const rows = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const e = new Float64Array(n);
    e[j] = 1;
    const c = luSolve64(f, e);
    for (let i = 0; i < n; i++) rows[i] = rows[i]! + Math.abs(c[i]!);
  }
  for (let i = 0; i < n; i++) m = Math.max(m, rows[i]!);
  return matNormInf(A, n) * m;
}

export function luIrStudy(opts: LuIrOptions = {}): StudyResult {
  const n = opts.n ?? 100;
  const kappas = opts.log10Kappas ?? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const formats = opts.formats ?? ['fp16', 'bf16'];
  const maxIter = opts.maxIter ?? 20;
  // GMRES steps per refinement step: a Krylov space of size n solves any system in exact arithmetic, so
  // the cap is what makes the preconditioner's quality (and so u_f) matter
  const gmresMax = opts.gmresMax ?? Math.min(n, 30);
  const seed = opts.seed ?? 1;
  const mode = opts.mode ?? 2;
  const rng = new Rng(seed);
  const log = new NumberLog();
  const rows: Cell[][] = [];
  const points: { x: number; y: number; series: string; panel: string }[] = [];
  const limits: Record<string, { lu: number; gmres: number }> = {};
  for (const f of formats) limits[f] = { lu: 0, gmres: 0 };
  for (const lk of kappas) {
    let kappa = 1;
    for (let i = 0; i < lk; i++) kappa *= 10; // exact powers of ten (no Math.pow)
    const A = randsvd(n, kappa, rng, mode);
    const b = Float64Array.from({ length: n }, () => normalDet(rng));
    const f64 = luFactor(withPrecision({ format: 'fp64' }), A, n);
    const xStar = referenceSolution(A, f64, b, n);
    const kInf = condInf(A, f64, n);
    log.add(kInf);
    for (const fmt of formats) {
      const ctx = withPrecision({ format: fmt });
      const f = luFactor(ctx, A, n);
      // x0: the u_f solve of b scaled into range; the solution itself can exceed fp16's range (|x| ~ kappa),
      // in which case refinement starts from 0 (the first correction is then the scaled solve)
      const scaled = (r: Float64Array): Float64Array => {
        const s = normInf(r);
        if (s === 0) return new Float64Array(n);
        return luSolve(
          ctx,
          f,
          r.map((v) => v / s),
        ).map((v) => v * s);
      };
      const plain = f.ok ? scaled(b) : new Float64Array(n).fill(Number.NaN);
      const x0 = plain.every(Number.isFinite) ? plain : new Float64Array(n);
      const solveErr = (() => {
        let m = 0;
        for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(plain[i]! - xStar[i]!));
        return m / normInf(xStar);
      })();
      const luIr = f.ok
        ? refine(A, b, xStar, x0, n, maxIter, (r) => ({ d: scaled(r), inner: 0 }))
        : { errors: [Number.NaN], converged: false, steps: 0, gmresSteps: 0 };
      const gm = f.ok
        ? refine(A, b, xStar, x0, n, Math.min(maxIter, 10), (r) => {
            const g = gmres(A, f, r, n, 1e-6, gmresMax);
            return { d: g.d, inner: g.steps };
          })
        : { errors: [Number.NaN], converged: false, steps: 0, gmresSteps: 0 };
      log.add(solveErr, ...luIr.errors, luIr.steps, ...gm.errors, gm.steps, gm.gmresSteps);
      if (luIr.converged) limits[fmt]!.lu = Math.max(limits[fmt]!.lu, kInf);
      if (gm.converged) limits[fmt]!.gmres = Math.max(limits[fmt]!.gmres, kInf);
      const last = (r: Run) => r.errors[r.errors.length - 1]!;
      rows.push([
        `1e${lk}`,
        sci(kInf),
        fmt,
        !f.ok ? 'breakdown' : Number.isFinite(solveErr) ? sci(solveErr) : 'overflow',
        luIr.converged ? `${luIr.steps}` : 'no',
        sci(last(luIr)),
        gm.converged ? `${gm.steps} (${gm.gmresSteps})` : 'no',
        sci(last(gm)),
      ]);
      luIr.errors.forEach((e, it) =>
        points.push({ x: it, y: e, series: `kappa 1e${lk}`, panel: `LU-IR, LU in ${fmt}` }),
      );
      gm.errors.forEach((e, it) =>
        points.push({ x: it, y: e, series: `kappa 1e${lk}`, panel: `GMRES-IR, LU in ${fmt}` }),
      );
    }
  }
  const limitRows = formats.map((f) => {
    const uf = f === 'bf16' ? 2 ** -8 : f === 'fp16' ? 2 ** -11 : Number.NaN;
    return [
      f,
      sci(uf),
      sci(1 / uf),
      sci(limits[f]!.lu),
      sci(1 / (uf * Math.sqrt(U64))),
      sci(limits[f]!.gmres),
    ];
  });
  const plot: StudyPlot = {
    title: `Forward error per refinement step, n = ${n} (randsvd, kappa_2 as labelled)`,
    x: { label: 'refinement step' },
    y: { label: 'forward error ||x - x*|| / ||x*||', log: true },
    points: points.map((p) => ({ ...p, y: Math.max(p.y, 1e-17) })),
  };
  const fp16 = limits['fp16'];
  return {
    name: 'lu-ir',
    title: 'LU in fp16 / bf16 and iterative refinement to float64 accuracy',
    params: {
      n,
      seed,
      mode,
      kappas: kappas.map((k) => `1e${k}`).join(' '),
      formats: formats.join(' '),
      maxIter,
      gmresMax,
    },
    tables: [
      {
        title:
          'Per matrix: plain low-precision solve, LU-IR and GMRES-IR (steps, and GMRES iterations in total)',
        columns: [
          'kappa_2',
          'kappa_inf',
          'LU in',
          'solve error',
          'LU-IR steps',
          'LU-IR error',
          'GMRES-IR steps',
          'GMRES-IR error',
        ],
        rows,
      },
      {
        title:
          'Condition-number limits: theory (Carson-Higham) and the largest kappa_inf that converged here',
        columns: [
          'LU in',
          'u_f',
          'LU-IR 1/u_f',
          'LU-IR measured',
          'GMRES-IR 1/(u_f sqrt u)',
          'GMRES-IR measured',
        ],
        rows: limitRows,
      },
    ],
    plot,
    headline: fp16
      ? `fp16 LU + refinement reaches float64 accuracy up to kappa_inf ${sci(fp16.lu)} (LU-IR) and ${sci(fp16.gmres)} (GMRES-IR)`
      : 'see the table',
    hash: hashNumbers(log.all()),
  };
}

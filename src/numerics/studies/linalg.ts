/**
 * Dense linear algebra for the LU / iterative-refinement study: test matrices of a given condition
 * number, LU with partial pivoting and triangular solves in an arithmetic context (every operation
 * rounded), and float64 helpers (matrix-vector products, a compensated residual, GMRES). Row-major n x n.
 */
import type { Rng } from '../../core/rng.ts';
import type { Precision } from '../context.ts';
import { expDet, logDet, normalDet } from '../det-math.ts';
import { twoProductErr, twoSumErr } from '../eft.ts';

/** A random orthogonal matrix: Householder QR of a Gaussian matrix, Q with a positive-diagonal R. */
function randomOrthogonal(n: number, rng: Rng): Float64Array {
  const A = Float64Array.from({ length: n * n }, () => normalDet(rng));
  const Q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) Q[i * n + i] = 1;
  const v = new Float64Array(n);
  for (let k = 0; k < n - 1; k++) {
    let norm = 0;
    for (let i = k; i < n; i++) norm += A[i * n + k]! ** 2;
    norm = Math.sqrt(norm);
    const alpha = A[k * n + k]! >= 0 ? -norm : norm;
    let vnorm = 0;
    for (let i = k; i < n; i++) {
      v[i] = A[i * n + k]! - (i === k ? alpha : 0);
      vnorm += v[i]! ** 2;
    }
    if (vnorm === 0) continue;
    // A <- (I - 2 v v^T / v^T v) A, Q <- Q (I - 2 v v^T / v^T v)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = k; i < n; i++) s += v[i]! * A[i * n + j]!;
      const f = (2 * s) / vnorm;
      for (let i = k; i < n; i++) A[i * n + j] = A[i * n + j]! - f * v[i]!;
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = k; j < n; j++) s += Q[i * n + j]! * v[j]!;
      const f = (2 * s) / vnorm;
      for (let j = k; j < n; j++) Q[i * n + j] = Q[i * n + j]! - f * v[j]!;
    }
  }
  return Q;
}

/**
 * Higham's randsvd: A = U diag(sigma) V^T, U and V random orthogonal, kappa_2(A) = kappa. Mode 2: one small
 * singular value (sigma = 1, ..., 1, 1/kappa); mode 3: geometrically spaced, sigma_i = kappa^(-(i-1)/(n-1)).
 */
export function randsvd(n: number, kappa: number, rng: Rng, mode: 2 | 3 = 3): Float64Array {
  const U = randomOrthogonal(n, rng);
  const V = randomOrthogonal(n, rng);
  const A = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    // not Math.pow: the same bits on every engine
    const s = mode === 2 ? (k === n - 1 ? 1 / kappa : 1) : expDet((-k / (n - 1)) * logDet(kappa));
    for (let i = 0; i < n; i++) {
      const us = U[i * n + k]! * s;
      for (let j = 0; j < n; j++) A[i * n + j] = A[i * n + j]! + us * V[j * n + k]!;
    }
  }
  return A;
}

/** LU factors with partial pivoting: L (unit lower) and U packed in `lu`, row i of PA is row perm[i] of A. */
export interface Lu {
  readonly n: number;
  readonly lu: Float64Array;
  readonly perm: Int32Array;
  /** False when a pivot was zero or a factor overflowed / became NaN in the working format. */
  readonly ok: boolean;
}

/** LU with partial pivoting, every operation rounded by the context (l = a / pivot, a - l * u as mul, sub). */
export function luFactor(ctx: Precision, A: ArrayLike<number>, n: number): Lu {
  const a = ctx.roundArray(A);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  let ok = true;
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i * n + k]!) > Math.abs(a[p * n + k]!)) p = i;
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        const t = a[k * n + j]!;
        a[k * n + j] = a[p * n + j]!;
        a[p * n + j] = t;
      }
      const t = perm[k]!;
      perm[k] = perm[p]!;
      perm[p] = t;
    }
    const piv = a[k * n + k]!;
    if (piv === 0 || !Number.isFinite(piv)) ok = false;
    for (let i = k + 1; i < n; i++) {
      const l = ctx.div(a[i * n + k]!, piv);
      a[i * n + k] = l;
      for (let j = k + 1; j < n; j++) a[i * n + j] = ctx.sub(a[i * n + j]!, ctx.mul(l, a[k * n + j]!));
    }
  }
  for (let i = 0; i < n * n; i++) if (!Number.isFinite(a[i]!)) ok = false;
  return { n, lu: a, perm, ok };
}

/** Solve L U x = P b in the context (forward then back substitution, every operation rounded). */
export function luSolve(ctx: Precision, f: Lu, b: ArrayLike<number>): Float64Array {
  const { n, lu, perm } = f;
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = ctx.round(b[perm[i]!]!);
    for (let j = 0; j < i; j++) s = ctx.sub(s, ctx.mul(lu[i * n + j]!, y[j]!));
    y[i] = s;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let j = i + 1; j < n; j++) s = ctx.sub(s, ctx.mul(lu[i * n + j]!, y[j]!));
    y[i] = ctx.div(s, lu[i * n + i]!);
  }
  return y;
}

/** The same solve in float64 arithmetic with the (low-precision) factors: GMRES-IR's preconditioner. */
export function luSolve64(f: Lu, b: ArrayLike<number>): Float64Array {
  const { n, lu, perm } = f;
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[perm[i]!]!;
    for (let j = 0; j < i; j++) s -= lu[i * n + j]! * y[j]!;
    y[i] = s;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let j = i + 1; j < n; j++) s -= lu[i * n + j]! * y[j]!;
    y[i] = s / lu[i * n + i]!;
  }
  return y;
}

export function matvec64(A: Float64Array, x: ArrayLike<number>, n: number): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += A[i * n + j]! * x[j]!;
    y[i] = s;
  }
  return y;
}

/**
 * r = b - A x with Ogita-Rump-Oishi's compensated dot product (Dot2): as accurate as if computed in twice
 * the working precision, the residual precision u_r = u^2 of three-precision refinement.
 */
export function residual2(
  A: Float64Array,
  x: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
): Float64Array {
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    let c = 0;
    for (let j = 0; j < n; j++) {
      const p = -A[i * n + j]! * x[j]!;
      const pe = twoProductErr(-A[i * n + j]!, x[j]!, p);
      const t = s + p;
      c += twoSumErr(s, p, t) + pe;
      s = t;
    }
    r[i] = s + c;
  }
  return r;
}

export function normInf(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** ||A||_inf of a row-major n x n matrix. */
export function matNormInf(A: Float64Array, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(A[i * n + j]!);
    m = Math.max(m, s);
  }
  return m;
}

/**
 * GMRES in float64 on the left-preconditioned system M^-1 A d = M^-1 r, M = the low-precision LU factors
 * (Carson & Higham 2017), from d = 0, until the preconditioned residual drops by `tol` or `maxIter` steps.
 * Returns d and the number of steps.
 */
export function gmres(
  A: Float64Array,
  f: Lu,
  r: Float64Array,
  n: number,
  tol: number,
  maxIter: number,
): { d: Float64Array; steps: number } {
  const z = luSolve64(f, r);
  const beta = Math.sqrt(z.reduce((s, v) => s + v * v, 0));
  const d = new Float64Array(n);
  if (beta === 0 || !Number.isFinite(beta)) return { d, steps: 0 };
  const V: Float64Array[] = [z.map((v) => v / beta)];
  const H: number[][] = [];
  const cs: number[] = [];
  const sn: number[] = [];
  const g = [beta];
  let k = 0;
  for (; k < maxIter; k++) {
    const w = luSolve64(f, matvec64(A, V[k]!, n));
    const h = new Array<number>(k + 2).fill(0);
    for (let i = 0; i <= k; i++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += w[t]! * V[i]![t]!;
      h[i] = s;
      for (let t = 0; t < n; t++) w[t] = w[t]! - s * V[i]![t]!;
    }
    const hn = Math.sqrt(w.reduce((s, v) => s + v * v, 0));
    h[k + 1] = hn;
    for (let i = 0; i < k; i++) {
      const t = cs[i]! * h[i]! + sn[i]! * h[i + 1]!;
      h[i + 1] = -sn[i]! * h[i]! + cs[i]! * h[i + 1]!;
      h[i] = t;
    }
    const den = Math.sqrt(h[k]! * h[k]! + h[k + 1]! * h[k + 1]!);
    cs[k] = den === 0 ? 1 : h[k]! / den;
    sn[k] = den === 0 ? 0 : h[k + 1]! / den;
    h[k] = den;
    h[k + 1] = 0;
    g[k + 1] = -sn[k]! * g[k]!;
    g[k] = cs[k]! * g[k]!;
    H.push(h);
    if (Math.abs(g[k + 1]!) <= tol * beta || hn === 0) {
      k++;
      break;
    }
    V.push(w.map((v) => v / hn));
  }
  // back substitution on the k x k triangle, d = V y
  const y = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = g[i]!;
    for (let j = i + 1; j < k; j++) s -= H[j]![i]! * y[j]!;
    y[i] = s / H[i]![i]!;
  }
  for (let j = 0; j < k; j++) for (let t = 0; t < n; t++) d[t] = d[t]! + y[j]! * V[j]![t]!;
  return { d, steps: k };
}

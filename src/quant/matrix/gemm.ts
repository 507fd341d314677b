/**
 * Matrix products on an engine: one gemm cut into parts along the rows or the columns of C, each part a
 * kernel call on its own block of C (native/quant/matrix.h gives every element of C the same operations
 * whatever the cut, so the bytes do not depend on the thread count).
 */
import type { MatrixEngine } from './engine.ts';
import { GEMM, type ThreadContext } from './kernels.ts';

/** C (+)= alpha op(A) op(B) on engine memory (byte offsets); see GEMM for the flags. */
export interface GemmCall {
  readonly flags: number;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly alpha?: number;
  readonly A: number;
  readonly lda: number;
  readonly B: number;
  readonly ldb: number;
  readonly C: number;
  readonly ldc: number;
  readonly triOff?: number;
  readonly kOff?: number;
  /** float64 operands (dgemm); default float32. */
  readonly f64?: boolean;
}

/** How a gemm is cut into parts. */
export interface GemmSplit {
  readonly axis: 'rows' | 'cols';
  /** Rows (or columns) of C per part: a multiple of 8. */
  readonly chunk: number;
  /** Hand out the last chunk first (for triangles, whose last chunks are the largest). */
  readonly lastFirst?: boolean;
  /** After a part, copy its block of C (float32) to `dst` with leading dimension `ld`. */
  readonly copyTo?: { readonly dst: number; readonly ld: number };
}

const enc = (c: GemmCall, s: GemmSplit): number[] => [
  c.f64 ? 1 : 0,
  c.flags,
  c.M,
  c.N,
  c.K,
  c.alpha ?? 1,
  c.A,
  c.lda,
  c.B,
  c.ldb,
  c.C,
  c.ldc,
  c.triOff ?? 0,
  c.kOff ?? 0,
  s.axis === 'cols' ? 1 : 0,
  s.chunk,
  s.lastFirst ? 1 : 0,
  s.copyTo?.dst ?? 0,
  s.copyTo?.ld ?? 0,
];

/** Runs the gemm on the engine, cut as `split` says. */
export function gemm(engine: MatrixEngine, call: GemmCall, split: GemmSplit): void {
  const dim = split.axis === 'cols' ? call.N : call.M;
  if (dim === 0) return;
  engine.run('gemm', enc(call, split), Math.ceil(dim / split.chunk));
}

/** One part of a gemm task (the task table's entry). */
export function gemmPart(ctx: ThreadContext, a: ArrayLike<number>, part: number): void {
  const [
    f64,
    flags,
    M,
    N,
    K,
    alpha,
    A,
    lda,
    B,
    ldb,
    C,
    ldc,
    triOff,
    kOff,
    cols,
    chunk,
    rev,
    copyDst,
    copyLd,
  ] = Array.from(a);
  const dim = cols ? N! : M!;
  const parts = Math.ceil(dim / chunk!);
  const q = rev ? parts - 1 - part : part;
  const s0 = q * chunk!;
  const n = Math.min(dim, s0 + chunk!) - s0;
  const es = f64 ? 8 : 4;
  const k = ctx.kernels;
  const call = f64 ? k.dgemm : k.sgemm;
  if (!cols) {
    const Ap = flags! & GEMM.TA ? A! + s0 * es : A! + s0 * lda! * es;
    const Cp = C! + s0 * ldc! * es;
    const ko = flags! & GEMM.ALOWER ? kOff! + s0 : kOff!;
    call(flags!, n, N!, K!, alpha!, Ap, lda!, B!, ldb!, Cp, ldc!, triOff! + s0, ko, ctx.work);
    if (copyDst) k.copy_f32(n, N!, Cp, ldc!, copyDst + s0 * copyLd! * 4, copyLd!);
  } else {
    const Bp = flags! & GEMM.TB ? B! + s0 * ldb! * es : B! + s0 * es;
    const Cp = C! + s0 * es;
    const ko = flags! & GEMM.BUPPER ? kOff! + s0 : kOff!;
    call(flags!, M!, n, K!, alpha!, A!, lda!, Bp, ldb!, Cp, ldc!, triOff! - s0, ko, ctx.work);
    if (copyDst) k.copy_f32(M!, n, Cp, ldc!, copyDst + s0 * 4, copyLd!);
  }
}

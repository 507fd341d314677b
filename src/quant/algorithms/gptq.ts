/**
 * GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers", 2022), following the original implementation IST-DASLab/gptq (gptq.py fasterquant,
 * commit 2d65066) step by step, so that test/golden/gptq_reference.json is reproduced:
 *
 *  1. per-row parameters from the whole W (used when groupSize = -1);
 *  2. dead inputs (H[i,i] = 0): H[i,i] = 1, W[:, i] = 0; static groups: params of each natural-order group;
 *  3. act-order: columns sorted by diag(H) descending (stable);
 *  4. damping H[i,i] += percdamp * mean(diag H);
 *  5. U = upper Cholesky factor of H^-1;
 *  6. columns in blocks of `blockSize`: quantize column i, err = (w - q) / U[i,i], update the rest of the
 *     block at once (W1[:, i:] -= err U[i, i:]); after the block, the lazy update of all later columns
 *     W[:, i2:] -= Err1 U[i1:i2, i2:]. With groups, a group's parameters come from the OUTER W (updated
 *     only at block boundaries), exactly as in the reference.
 *
 * Two implementations of the same steps:
 *
 * - `gptqReference`: the steps as written above, float64, plain TypeScript (linalg.ts). The oracle: it
 *   reproduces the golden codes, scales and Q bit for bit.
 * - `gptq`: the same result computed at matrix-kernel speed on a MatrixEngine (matrix/engine.ts), float32
 *   like the reference's PyTorch, without ever forming H^-1. With H = V V^T (V upper triangular; V = U^-1)
 *   and D = W0 - Q, the reference's errors satisfy E U = D, hence E_a = D_a V_aa for the first columns a,
 *   and since U_ab = -U_aa V_ab U_bb, the outer W at the start of block b is
 *       S_b = W0_b - E_a U_ab = W0_b + (D_a V_ab) U_bb.
 *   So each block takes one product with the finished columns (D_a V_ab: rows x i1 x B, the same work the
 *   reference spends on its lazy updates) and U_bb = V_bb^-1 of its own diagonal block; then the block's
 *   columns run the reference's recurrence with U_bb. One Cholesky (of H reversed, which gives V) replaces
 *   the reference's Cholesky, cholesky_inverse and second Cholesky, and a triangular solve replaces the
 *   explicit inverse, which is also the more stable way. Rows of W are independent given H, so the work is
 *   cut into chunks of rows that any number of threads can share with the same bytes as one.
 *   Precision: products and the working W in float32 (as the reference); pivots of the factorization and
 *   the diagonal-block inverses in float64.
 *
 * `prepareGptq` factors H once; matrices that share an input (q, k, v) can share the factor.
 * Works with any element format of the quantizer (int, float, codebook) and any scale rule / storage.
 * A quantizer that is a block format of blocks/registry.ts (MX: E8M0 per 32; NVFP4: E4M3 per 16 times the
 * FP32 tensor scale) takes that table's scales for every group (gptq-steps.ts gptqBlock; NVFP4's tensor
 * scale from the original W) and its elements' quotient, so with a diagonal H the result is the scheme's
 * RTN quantizer bit for bit (test/quant/block-formats.test.ts).
 */
import { MixqError } from '../../core/errors.ts';
import type { FormatSpec } from '../../formats/spec.ts';
import { gridToCode } from '../element.ts';
import { gram, subMatMul, upperCholeskyOfInverse } from '../linalg.ts';
import { choleskyLowerF32 } from '../matrix/cholesky.ts';
import { inlineEngine, type MatrixEngine, scoped } from '../matrix/engine.ts';
import { gramSymF32 } from '../matrix/gram.ts';
import { encodePlainData } from '../matrix/plain-data.ts';
import {
  chooseQParams,
  fakeQuantValue,
  gridToValue,
  type QParams,
  quantizerGrid,
  type ScaleRule,
} from '../qparams.ts';
import { isIndependent, type ScaleFormat } from '../scale-format.ts';
import {
  blockRowScales,
  encodeGptqArgs,
  gptqBlock,
  gptqGridValue,
  type GptqBlockArgs,
  TRANSPOSE_COLS,
} from './gptq-steps.ts';

export interface GptqConfig {
  readonly element: FormatSpec;
  readonly symmetric: boolean;
  /** Columns per group, or -1 for one parameter set per output row. Default -1. */
  readonly groupSize?: number;
  readonly scaleRule?: ScaleRule;
  readonly scaleFormat?: ScaleFormat;
  /** Damping as a fraction of mean(diag H). Default 0.01. */
  readonly percdamp?: number;
  /** Lazy-update block width. Default 128. */
  readonly blockSize?: number;
  /** Quantize columns in order of decreasing H[i,i]. Default false. */
  readonly actOrder?: boolean;
  /** With groups: compute all group parameters up front in natural order (needed with act-order for
   * contiguous groups at inference). Default false. */
  readonly staticGroups?: boolean;
  /** Where the matrix work runs (gptq only; default: the one-thread inline engine). */
  readonly engine?: MatrixEngine;
}

export interface GptqResult {
  /** Dequantized weight [rows, cols], original column order. */
  readonly Q: Float32Array;
  /** Storage code of every element [rows, cols], original column order. */
  readonly codes: Uint16Array;
  /** Stored scale [rows, nGroups] (and zero / offset, as in QParams) of each group. */
  readonly scale: Float32Array;
  readonly zero: Float32Array;
  readonly offset: Float32Array;
  readonly nGroups: number;
  /** Group of each ORIGINAL column. */
  readonly gIdx: Int32Array;
  /** perm[k] = original column quantized at step k (act-order), else null. */
  readonly perm: Int32Array | null;
  /** GPTQ's own proxy loss: sum over columns of (w - q)^2 / U[i,i]^2 / 2. */
  readonly loss: number;
}

/** A Hessian [cols, cols], row-major (gptqHessian gives float32, calibration statistics float64). */
export type Hessian = Float32Array | Float64Array;

const isHessian = (h: Hessian | GptqFactor): h is Hessian =>
  h instanceof Float32Array || h instanceof Float64Array;

/** What prepareGptq needs from the configuration. */
export interface GptqFactorOptions {
  readonly percdamp?: number;
  readonly blockSize?: number;
  readonly actOrder?: boolean;
  readonly engine?: MatrixEngine;
}

/**
 * H prepared for gptq (damped, permuted, factored): reusable for every weight that shares the input.
 * Plain arrays; holds no engine memory.
 */
export interface GptqFactor {
  readonly kind: 'gptq-factor';
  readonly cols: number;
  readonly blockSize: number;
  readonly percdamp: number;
  readonly actOrder: boolean;
  /** perm[k] = original column quantized at step k, or null (natural order). */
  readonly perm: Int32Array | null;
  /** 1 for inputs with H[i,i] = 0 (original order): their column of W is zeroed. */
  readonly dead: Uint8Array;
  /** V [cols, cols], upper triangular, float32, in step order: permuted damped H = V V^T. */
  readonly V: Float32Array;
  /** U's diagonal blocks (V's inverted), block b at b * blockSize^2, width min(blockSize, cols - b blockSize). */
  readonly Ublocks: Float32Array;
}

/**
 * H = 2/n X^T X for calibration inputs X [n, d] (the GPTQ Hessian of the layer-wise squared error), float32
 * as the reference computes and stores it (float32 products; beyond 512 rows summed in float64).
 */
export function gptqHessian(X: Float32Array, n: number, d: number, engine?: MatrixEngine): Float32Array {
  if (X.length !== n * d)
    throw new MixqError('X has the wrong length', { field: 'X', expected: `${n}x${d}` });
  return gramSymF32(engine ?? inlineEngine(), X, n, d, 2 / n);
}

/** The reference Hessian: 2/n X^T X in plain float64 TypeScript (linalg.gram). */
export function gptqHessianReference(X: Float32Array, n: number, d: number): Float64Array {
  const G = gram(X, n, d);
  for (let i = 0; i < G.length; i++) G[i] = (2 / n) * G[i]!;
  return G;
}

interface Settings {
  readonly gs: number;
  readonly B: number;
  readonly percdamp: number;
  readonly actOrder: boolean;
  readonly staticGroups: boolean;
}

function settings(cfg: GptqConfig | GptqFactorOptions): Settings {
  const gs = 'groupSize' in cfg ? (cfg.groupSize ?? -1) : -1;
  const B = cfg.blockSize ?? 128;
  if (!(gs === -1 || (Number.isInteger(gs) && gs >= 1)))
    throw new MixqError('bad group size', { field: 'groupSize', expected: '-1 or a positive integer' });
  if (!(Number.isInteger(B) && B >= 1))
    throw new MixqError('bad block size', { field: 'blockSize', expected: '>= 1' });
  const percdamp = cfg.percdamp ?? 0.01;
  if (!(percdamp >= 0)) throw new MixqError('bad damping', { field: 'percdamp', expected: '>= 0' });
  const staticGroups = 'staticGroups' in cfg ? (cfg.staticGroups ?? false) : false;
  return { gs, B, percdamp, actOrder: cfg.actOrder ?? false, staticGroups };
}

function checkShapes(W: Float32Array, rows: number, cols: number, H: Hessian | undefined): void {
  if (!(Number.isInteger(rows) && rows >= 1 && Number.isInteger(cols) && cols >= 1))
    throw new MixqError('bad shape', { field: 'rows, cols', expected: 'positive integers' });
  if (W.length !== rows * cols)
    throw new MixqError('W has the wrong length', { field: 'W', expected: `${rows}x${cols}` });
  if (H && H.length !== cols * cols)
    throw new MixqError('H has the wrong size', { field: 'H', expected: `${cols}x${cols}` });
}

/** Stable order of decreasing diagonal (act-order). */
function actOrderPermutation(diag: ArrayLike<number>): Int32Array {
  const n = diag.length;
  return Int32Array.from(Array.from({ length: n }, (_, i) => i).sort((a, b) => diag[b]! - diag[a]! || a - b));
}

type Params = Pick<QParams, 'scale' | 'zero' | 'offset' | 'grid'>;

/** Parameters of W[:, c0:c1] per row (W row-major with row stride `ld`), as the reference's find_params. */
function rowQuantizer(cfg: GptqConfig) {
  return {
    element: cfg.element,
    granularity: { kind: 'axis', axis: 0 } as const,
    symmetric: cfg.symmetric,
    ...(cfg.scaleRule ? { scaleRule: cfg.scaleRule } : {}),
    ...(cfg.scaleFormat ? { scaleFormat: cfg.scaleFormat } : {}),
  };
}

function paramFinder(rows: number, gs: number, cfg: GptqConfig, W0: Float32Array) {
  const qcfg = rowQuantizer(cfg);
  // a block format (MX, NVFP4) takes its own scales, with the tensor scale of the original weight
  const block = gptqBlock(qcfg, gs);
  const tensorScale = block ? block.tensorScale(W0) : 1;
  const grid = quantizerGrid(qcfg);
  const slice = new Float32Array(rows * Math.max(gs, 1));
  const find = (at: (r: number, j: number) => number, k: number): Params => {
    const s = k === gs ? slice : new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) s[r * k + j] = at(r, j);
    if (block) {
      const scale = blockRowScales(block, tensorScale, s, rows, k);
      return { scale, zero: new Float32Array(rows), offset: new Float32Array(rows), grid };
    }
    const p = chooseQParams(s.subarray(0, rows * k), [rows, k], qcfg);
    return { scale: p.scale, zero: p.zero, offset: p.offset, grid: p.grid };
  };
  return { find, block, tensorScale, grid };
}

/** Per-group parameter outputs [rows, nGroups] and the function that records a group's parameters. */
function groupOutputs(rows: number, nGroups: number) {
  const scale = new Float32Array(rows * nGroups);
  const zero = new Float32Array(rows * nGroups);
  const offset = new Float32Array(rows * nGroups);
  const record = (g: number, p: Params) => {
    for (let r = 0; r < rows; r++) {
      scale[r * nGroups + g] = p.scale[r]!;
      zero[r * nGroups + g] = p.zero[r]!;
      offset[r * nGroups + g] = p.offset[r]!;
    }
  };
  return { scale, zero, offset, record };
}

/** Inverse of the upper-triangular block V[c0:c1, c0:c1] (V row-major, ld), float64 back-substitution. */
function invertUpperBlock(V: Float32Array, ld: number, c0: number, c1: number): Float64Array {
  const m = c1 - c0;
  const U = new Float64Array(m * m);
  const acc = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    const vi = (c0 + i) * ld + c0;
    const inv = 1 / V[vi + i]!;
    acc.fill(0, i + 1);
    for (let k = i + 1; k < m; k++) {
      const t = V[vi + k]!;
      if (t === 0) continue;
      const uk = k * m;
      for (let j = k; j < m; j++) acc[j]! += t * U[uk + j]!;
    }
    U[i * m + i] = inv;
    for (let j = i + 1; j < m; j++) U[i * m + j] = -acc[j]! * inv;
  }
  return U;
}

/** H damped, ordered and factored, with V in engine memory (the current arena scope owns it). */
interface EngineFactor {
  readonly perm: Int32Array | null;
  readonly dead: Uint8Array;
  /** byte offset of V [cols, cols] (float32, upper triangular, step order) */
  readonly Vp: number;
  readonly Ublocks: Float32Array;
}

/**
 * Dead inputs, act-order and damping as the reference, then one float32 Cholesky (engine) of H in reversed
 * step order, which is V (H = V V^T) read backwards. Allocates V in the caller's arena scope.
 */
function factorInEngine(engine: MatrixEngine, H0: Hessian, n: number, s: Settings): EngineFactor {
  const dead = new Uint8Array(n);
  const diag = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const h = H0[i * n + i]!;
    dead[i] = h === 0 ? 1 : 0;
    diag[i] = h === 0 ? 1 : h;
  }
  const perm = s.actOrder ? actOrderPermutation(diag) : null;
  const orig = (k: number) => (perm ? perm[k]! : k);
  let meanDiag = 0;
  for (let k = 0; k < n; k++) meanDiag += diag[orig(k)]!;
  const damp = s.percdamp * (meanDiag / n);
  const arena = engine.arena;
  // rows in reversed step order: row i of A is step n-1-i
  const q = Int32Array.from({ length: n }, (_, i) => orig(n - 1 - i));
  const dg = Float64Array.from(q, (o) => diag[o]! + damp);
  const Vp = arena.alloc(n * n * 4);
  arena.f32(Vp, n * n).fill(0);
  const m = arena.mark();
  const gather =
    H0 instanceof Float64Array
      ? engine.main.kernels.gather_lower_f64_to_f32
      : engine.main.kernels.gather_lower_f32;
  gather(n, arena.put(H0), arena.put(q), arena.put(dg), Vp);
  arena.release(m);
  const st = choleskyLowerF32(engine, Vp, n);
  if (st !== 0) {
    const i = orig(n - st);
    throw new MixqError('matrix is not positive definite (increase damping)', {
      field: `H[${i},${i}]`,
      expected: '> 0 pivot',
    });
  }
  engine.main.kernels.reverse_f32(n * n, Vp);
  const V = arena.f32(Vp, n * n);
  const B = s.B;
  const nb = Math.ceil(n / B);
  const Ublocks = new Float32Array(nb * B * B);
  for (let b = 0; b < nb; b++)
    Ublocks.set(invertUpperBlock(V, n, b * B, Math.min(n, (b + 1) * B)), b * B * B);
  return { perm, dead, Vp, Ublocks };
}

/**
 * Damps, orders and factors H once for several gptq calls (weights that share an input): the factor holds
 * V as a plain array, so it is not tied to an engine.
 */
export function prepareGptq(H0: Hessian, cols: number, opts: GptqFactorOptions = {}): GptqFactor {
  const s = settings(opts);
  if (!(Number.isInteger(cols) && cols >= 1) || H0.length !== cols * cols)
    throw new MixqError('H has the wrong size', { field: 'H', expected: `${cols}x${cols}` });
  const engine = opts.engine ?? inlineEngine();
  return scoped(engine, () => {
    const f = factorInEngine(engine, H0, cols, s);
    const V = engine.arena.f32(f.Vp, cols * cols).slice();
    const { perm, dead, Ublocks } = f;
    return {
      kind: 'gptq-factor',
      cols,
      blockSize: s.B,
      percdamp: s.percdamp,
      actOrder: s.actOrder,
      perm,
      dead,
      V,
      Ublocks,
    };
  });
}

function checkFactor(f: GptqFactor, cols: number, s: Settings): void {
  const bad = (field: string, expected: string) => {
    throw new MixqError('the prepared H does not fit this call', { field, expected });
  };
  if (f.cols !== cols) bad('factor.cols', String(cols));
  if (f.blockSize !== s.B) bad('factor.blockSize', `the call's blockSize ${s.B}`);
  if (f.percdamp !== s.percdamp) bad('factor.percdamp', `the call's percdamp ${s.percdamp}`);
  if (f.actOrder !== s.actOrder) bad('factor.actOrder', `the call's actOrder ${s.actOrder}`);
}

/** Rows per task part (a multiple of 8; fixed, so results do not depend on the thread count). */
const ROW_CHUNK = 256;

/**
 * Runs GPTQ on W [rows, cols] with Hessian H [cols, cols] (or a factor from prepareGptq) on the matrix
 * engine (cfg.engine, default the inline one). Same contract as gptqReference; float32 arithmetic.
 * Example: `gptq(W, 64, 128, gptqHessian(X, 512, 128), { element: intSpec(4, false), symmetric: false,
 * groupSize: 32, actOrder: true })`.
 */
export function gptq(
  W0: Float32Array,
  rows: number,
  cols: number,
  H: Hessian | GptqFactor,
  cfg: GptqConfig,
): GptqResult {
  const s = settings(cfg);
  checkShapes(W0, rows, cols, isHessian(H) ? H : undefined);
  const engine = cfg.engine ?? inlineEngine();
  if (!isHessian(H)) checkFactor(H, cols, s);
  return scoped(engine, () => {
    const factor: EngineFactor = isHessian(H)
      ? factorInEngine(engine, H, cols, s)
      : { ...H, Vp: engine.arena.put(H.V) };
    return gptqBlocks(engine, W0, rows, cols, factor, cfg, s);
  });
}

/**
 * The engine buffers and numeric arguments of one gptq call (allocated in the current arena scope):
 * group parameters with the padding rows at scale 1 (they quantize 0 to 0, so they stay 0 in every
 * product), block scratch, outputs in step order, and the row quantizer as plain data for the parts.
 */
function blockArgs(
  engine: MatrixEngine,
  rows: number,
  cols: number,
  nGroups: number,
  groupOf: Int32Array,
  perm: Int32Array,
  cfg: GptqConfig,
  s: Settings,
  tensorScale: number,
): GptqBlockArgs {
  const arena = engine.arena;
  const ld = Math.ceil(rows / 8) * 8;
  const parts = Math.ceil(ld / ROW_CHUNK);
  const bwMax = Math.min(cols, s.B + (s.gs > 0 && !s.staticGroups ? s.gs : 0));
  const grid = quantizerGrid(rowQuantizer(cfg));
  const qcfgBytes = encodePlainData(rowQuantizer(cfg));
  const qcfgJson = arena.alloc(qcfgBytes.length);
  new Uint8Array(arena.memory.buffer, qcfgJson, qcfgBytes.length).set(qcfgBytes);
  const a: GptqBlockArgs = {
    rows,
    ld,
    cols,
    chunk: ROW_CHUNK,
    i1: 0,
    cnt: 0,
    bw: 0,
    perm: arena.put(perm),
    groupOf: arena.put(groupOf),
    nGroups,
    scale: arena.alloc(nGroups * ld * 4),
    zero: arena.alloc(nGroups * ld * 4),
    offset: arena.alloc(nGroups * ld * 4),
    Vb: arena.alloc(cols * bwMax * 4),
    Ub: arena.alloc(bwMax * bwMax * 4),
    Yt: arena.alloc(bwMax * ld * 4),
    St: arena.alloc(bwMax * ld * 4),
    Qt: arena.alloc(cols * ld * 4),
    Ct: arena.alloc(cols * ld * 2),
    lossPart: arena.alloc(parts * 8),
    intGrid: grid.kind === 'int' ? 1 : 0,
    qmin: grid.qmin,
    qmax: grid.qmax,
    codeBase: grid.kind === 'int' ? grid.codeBase : 0,
    groupStart: -1,
    gs: s.gs,
    qcfgJson,
    qcfgJsonBytes: qcfgBytes.length,
    Wt: arena.alloc(cols * ld * 4),
    Q: 0,
    codes: 0,
    tensorScale,
  };
  arena.f32(a.scale, nGroups * ld).fill(1);
  arena.f32(a.zero, nGroups * ld).fill(0);
  arena.f32(a.offset, nGroups * ld).fill(0);
  arena.f32(a.Qt, cols * ld).fill(0);
  arena.f64(a.lossPart, parts).fill(0);
  return a;
}

/** The blocks of gptq on the engine, with the factor in engine memory (inside the caller's arena scope). */
function gptqBlocks(
  engine: MatrixEngine,
  W0: Float32Array,
  rows: number,
  cols: number,
  factor: EngineFactor,
  cfg: GptqConfig,
  s: Settings,
): GptqResult {
  const { gs, B, staticGroups } = s;
  const { find, block, tensorScale, grid } = paramFinder(rows, gs, cfg, W0);
  const dead = factor.dead;
  const perm = factor.perm;
  const orig = (k: number) => (perm ? perm[k]! : k);
  const nGroups = gs === -1 ? 1 : Math.ceil(cols / gs);
  const out = groupOutputs(rows, nGroups);
  const groupOf = new Int32Array(cols);
  const staticParams: Params[] = [];
  // one parameter set per row from the whole W (as the reference, before dead columns are zeroed)
  const initial = gs === -1 ? find((r, j) => W0[r * cols + j]!, cols) : undefined;
  if (initial) out.record(0, initial);
  else {
    for (let k = 0; k < cols; k++) groupOf[k] = Math.floor((staticGroups ? orig(k) : k) / gs);
    if (staticGroups)
      for (let c = 0, g = 0; c < cols; c += gs, g++) {
        const p = find((r, j) => (dead[c + j] ? 0 : W0[r * cols + c + j]!), Math.min(gs, cols - c));
        staticParams.push(p);
        out.record(g, p);
      }
  }
  const gIdx = new Int32Array(cols);
  for (let k = 0; k < cols; k++) gIdx[orig(k)] = groupOf[k]!;

  const { Q, codes, loss } = (() => {
    const arena = engine.arena;
    const a = blockArgs(
      engine,
      rows,
      cols,
      nGroups,
      groupOf,
      Int32Array.from({ length: cols }, (_, k) => orig(k)),
      cfg,
      s,
      tensorScale,
    );
    const { ld } = a;
    const parts = Math.ceil(ld / ROW_CHUNK);
    // rows are independent for every scale format but the shared-scale ones: then the parts choose the
    // parameters of their own rows
    const paramsInParts =
      gs !== -1 && !staticGroups && (block !== undefined || isIndependent(cfg.scaleFormat ?? 'fp32'));
    const setParams = (g: number, p: Params) => {
      arena.f32(a.scale + g * ld * 4, rows).set(p.scale.subarray(0, rows));
      arena.f32(a.zero + g * ld * 4, rows).set(p.zero.subarray(0, rows));
      arena.f32(a.offset + g * ld * 4, rows).set(p.offset.subarray(0, rows));
    };
    if (initial) setParams(0, initial);
    else staticParams.forEach((p, g) => setParams(g, p));
    // Wt: W transposed into step order, dead columns and the padding rows zero
    const m = arena.mark();
    const Wsrc = arena.put(W0);
    engine.run('gptqTranspose', [rows, cols, Wsrc, a.perm, a.Wt, ld], Math.ceil(cols / TRANSPOSE_COLS));
    arena.release(m);
    const Wt = arena.f32(a.Wt, cols * ld);
    for (let k = 0; k < cols; k++) {
      if (dead[orig(k)]) Wt.fill(0, k * ld, (k + 1) * ld);
      else if (ld > rows) Wt.fill(0, k * ld + rows, (k + 1) * ld);
    }

    for (let i1 = 0; i1 < cols; i1 += B) {
      const i2 = Math.min(i1 + B, cols);
      const cnt = i2 - i1;
      // groups that start in this block take their parameters from the block-start state of their columns
      const starts: number[] = [];
      let cEnd = i2;
      if (gs !== -1 && !staticGroups)
        for (let c = Math.ceil(i1 / gs) * gs; c < i2; c += gs) {
          starts.push(c);
          cEnd = Math.max(cEnd, Math.min(c + gs, cols));
        }
      const bw = cEnd - i1;
      if (i1 > 0) engine.main.kernels.copy_f32(i1, bw, factor.Vp + i1 * 4, cols, a.Vb, bw);
      const Ub = arena.f32(a.Ub, bw * bw);
      if (bw === cnt) Ub.set(factor.Ublocks.subarray((i1 / B) * B * B, (i1 / B) * B * B + cnt * cnt));
      else Ub.set(invertUpperBlock(arena.f32(factor.Vp, cols * cols), cols, i1, cEnd));
      const args: GptqBlockArgs = { ...a, i1, cnt, bw, groupStart: starts[0] ?? -1 };
      engine.run('gptqPrepare', encodeGptqArgs(args), parts);
      if (starts.length && paramsInParts) {
        engine.run('gptqParams', encodeGptqArgs(args), parts);
        const view = (p: number, g: number) => arena.f32(p + g * ld * 4, rows);
        for (const c of starts) {
          const g = c / gs;
          out.record(g, { scale: view(a.scale, g), zero: view(a.zero, g), offset: view(a.offset, g), grid });
        }
      } else if (starts.length) {
        const St = arena.f32(a.St, bw * ld);
        for (const c of starts) {
          const p = find((r, j) => St[(c - i1 + j) * ld + r]!, Math.min(gs, cols - c));
          setParams(c / gs, p);
          out.record(c / gs, p);
        }
      }
      engine.run('gptqColumns', encodeGptqArgs(args), parts);
    }
    let total = 0;
    for (const v of arena.f64(a.lossPart, parts)) total += v;
    // Q and codes back in W's layout
    const Q = arena.alloc(rows * cols * 4);
    const codes = arena.alloc(rows * cols * 2);
    const scatter = { ...a, i1: 0, cnt: 0, bw: 0, Q, codes };
    engine.run('gptqScatter', encodeGptqArgs(scatter), Math.ceil(rows / ROW_CHUNK));
    return {
      Q: arena.f32(Q, rows * cols).slice(),
      codes: arena.u16(codes, rows * cols).slice(),
      loss: total,
    };
  })();
  const { scale, zero, offset } = out;
  return { Q, codes, scale, zero, offset, nGroups, gIdx, perm: perm ? Int32Array.from(perm) : null, loss };
}

/**
 * The reference GPTQ: the steps of the header in plain float64 TypeScript (upper Cholesky factor of the
 * explicit inverse, right-looking lazy updates). Reproduces the golden vectors bit for bit; the oracle the
 * fast `gptq` is tested against.
 */
export function gptqReference(
  W0: Float32Array,
  rows: number,
  cols: number,
  H0: Hessian,
  cfg: GptqConfig,
): GptqResult {
  const { gs, B, percdamp, actOrder, staticGroups } = settings(cfg);
  checkShapes(W0, rows, cols, H0);
  const { find, block } = paramFinder(rows, gs, cfg, W0);
  const findIn = (Wm: Float64Array | Float32Array, c0: number, c1: number) =>
    find((r, j) => Wm[r * cols + c0 + j]!, c1 - c0);

  // 1-2. initial parameters, dead columns
  let cur = findIn(W0, 0, cols);
  const grid = cur.grid;
  const W = Float64Array.from(W0);
  const H = Float64Array.from(H0);
  for (let i = 0; i < cols; i++) {
    if (H[i * cols + i] === 0) {
      H[i * cols + i] = 1;
      for (let r = 0; r < rows; r++) W[r * cols + i] = 0;
    }
  }
  const staticParams: Params[] = [];
  if (gs !== -1 && staticGroups)
    for (let c = 0; c < cols; c += gs) staticParams.push(findIn(W, c, Math.min(c + gs, cols)));

  // 3. act-order permutation (stable sort on descending diagonal)
  let perm: Int32Array | null = null;
  if (actOrder) {
    perm = actOrderPermutation(Array.from({ length: cols }, (_, i) => H[i * cols + i]!));
    const Wp = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) Wp[r * cols + k] = W[r * cols + perm[k]!]!;
    W.set(Wp);
    const Hp = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++)
      for (let j = 0; j < cols; j++) Hp[i * cols + j] = H[perm[i]! * cols + perm[j]!]!;
    H.set(Hp);
  }

  // 4-5. damping and the inverse factor
  let meanDiag = 0;
  for (let i = 0; i < cols; i++) meanDiag += H[i * cols + i]!;
  meanDiag /= cols;
  for (let i = 0; i < cols; i++) H[i * cols + i]! += percdamp * meanDiag;
  const U = upperCholeskyOfInverse(H, cols, (k) => {
    const i = perm ? perm[k]! : k;
    return `H[${i},${i}]`;
  });

  // 6. blocked quantization with error feedback
  const nGroups = gs === -1 ? 1 : Math.ceil(cols / gs);
  const out = groupOutputs(rows, nGroups);
  if (gs === -1) out.record(0, cur);
  else if (staticGroups) for (const [g, p] of staticParams.entries()) out.record(g, p);
  const Qp = new Float32Array(rows * cols);
  const codesP = new Uint16Array(rows * cols);
  const gOfStep = new Int32Array(cols);
  let loss = 0;
  const W1 = new Float64Array(rows * B);
  const Err1 = new Float64Array(rows * B);
  for (let i1 = 0; i1 < cols; i1 += B) {
    const i2 = Math.min(i1 + B, cols);
    const cnt = i2 - i1;
    for (let r = 0; r < rows; r++) for (let j = 0; j < cnt; j++) W1[r * cnt + j] = W[r * cols + i1 + j]!;
    for (let i = 0; i < cnt; i++) {
      const col = i1 + i;
      if (gs !== -1) {
        if (!staticGroups) {
          if (col % gs === 0) {
            cur = findIn(W, col, Math.min(col + gs, cols));
            out.record(col / gs, cur);
          }
          gOfStep[col] = Math.floor(col / gs);
        } else {
          const g = Math.floor((perm ? perm[col]! : col) / gs);
          cur = staticParams[g]!;
          gOfStep[col] = g;
        }
      }
      const d = U[col * cols + col]!;
      const uRow = col * cols + i1; // U[col, i1 + j]
      for (let r = 0; r < rows; r++) {
        const w = W1[r * cnt + i]!;
        const s = cur.scale[r]!;
        const z = cur.zero[r]!;
        const o = cur.offset[r]!;
        const gv = gptqGridValue(grid, block, s, z, o, w);
        const q = block ? gridToValue(grid, s, z, o, gv) : fakeQuantValue(grid, s, z, o, w);
        Qp[r * cols + col] = q;
        codesP[r * cols + col] = gridToCode(grid, gv);
        const e = (w - q) / d;
        loss += ((w - q) * (w - q)) / (d * d) / 2;
        Err1[r * cnt + i] = e;
        const rb = r * cnt;
        for (let j = i + 1; j < cnt; j++) W1[rb + j]! -= e * U[uRow + j]!;
      }
    }
    // lazy batch update of every later column: W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    if (i2 < cols) subMatMul(W, i2, cols, Err1, 0, cnt, U, i1 * cols + i2, cols, rows, cnt, cols - i2);
  }

  // 7. undo the permutation
  const Q = new Float32Array(rows * cols);
  const codes = new Uint16Array(rows * cols);
  const gIdx = new Int32Array(cols);
  for (let k = 0; k < cols; k++) {
    const j = perm ? perm[k]! : k;
    gIdx[j] = gOfStep[k]!;
    for (let r = 0; r < rows; r++) {
      Q[r * cols + j] = Qp[r * cols + k]!;
      codes[r * cols + j] = codesP[r * cols + k]!;
    }
  }
  const { scale, zero, offset } = out;
  return { Q, codes, scale, zero, offset, nGroups, gIdx, perm, loss };
}

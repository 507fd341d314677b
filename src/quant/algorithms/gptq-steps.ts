/**
 * The per-block steps of the fast GPTQ (gptq.ts), written as task parts over chunks of rows so that an
 * engine can run them on any number of threads: GPTQ treats the rows of W independently (they share only H),
 * so a chunk of rows needs nothing from the others within a block.
 *
 * Layout: everything is transposed — row c of `Wt` is column c of W (in quantization order), `ld` floats
 * apart (the rows of W padded to a multiple of 8 with zeros). Row c of Wt holds W0 until column c is done,
 * then D = W0 - Q (what the next blocks' products read). Qt / Ct collect q and the codes in the same layout;
 * `gptqScatter` puts them back in W's layout at the end.
 *
 * Quantizing a column: integer grids run inside the kernel (gptq_block_int, the same float32 arithmetic as
 * qparams.ts gridValue / gridToValue / gridToCode, whose rounding is the formats library's nearest-even:
 * f32x4.nearest there — test/quant/gptq-fast.test.ts ties them); any other grid calls qparams.ts per
 * element (the formats codec), then the kernel feeds the error forward (gptq_column).
 */
import type { BlockScaling } from '../../blocks/registry.ts';
import { type ElementGrid, gridToCode } from '../element.ts';
import { GEMM, type ThreadContext } from '../matrix/kernels.ts';
import { decodePlainData } from '../matrix/plain-data.ts';
import {
  blockOf,
  chooseQParams,
  gridToValue,
  gridValue,
  type QuantizerConfig,
  quantizerGrid,
} from '../qparams.ts';

/** Numeric arguments of one block (byte offsets into the engine memory, counts). */
export interface GptqBlockArgs {
  /** real rows, padded row stride, columns, rows per part */
  readonly rows: number;
  readonly ld: number;
  readonly cols: number;
  readonly chunk: number;
  /** first column of the block, its width, and the width whose start state is needed (>= cnt) */
  readonly i1: number;
  readonly cnt: number;
  readonly bw: number;
  /** Wt [cols x ld]; Vb = V[0:i1, i1:i1+bw] [i1 x bw]; Ub = inverse of V[i1:, i1:] block [bw x bw] */
  readonly Wt: number;
  readonly Vb: number;
  readonly Ub: number;
  /** Yt, St [bw x ld] */
  readonly Yt: number;
  readonly St: number;
  /** group parameters [nGroups x ld] (f32), group of each step (i32), original column of each step (i32) */
  readonly scale: number;
  readonly zero: number;
  readonly offset: number;
  readonly nGroups: number;
  readonly groupOf: number;
  readonly perm: number;
  /** q and codes in step order [cols x ld] (f32, u16); outputs Q [rows x cols] f32, codes u16 */
  readonly Qt: number;
  readonly Ct: number;
  readonly Q: number;
  readonly codes: number;
  /** loss per part (f64) */
  readonly lossPart: number;
  /** integer grid: 1 and its clamp range and code base; else 0 (the parts build the grid from the quantizer) */
  readonly intGrid: number;
  readonly qmin: number;
  readonly qmax: number;
  readonly codeBase: number;
  /** groups whose parameters the parts choose: the first group start in the block (-1: none), the group
   * size; and the row quantizer (plain data: element format, scale rule and storage) */
  readonly groupStart: number;
  readonly gs: number;
  readonly qcfgJson: number;
  readonly qcfgJsonBytes: number;
  /** a block format's (gptqBlock) tensor scale; 1 otherwise */
  readonly tensorScale: number;
}

const FIELDS = [
  'rows',
  'ld',
  'cols',
  'chunk',
  'i1',
  'cnt',
  'bw',
  'Wt',
  'Vb',
  'Ub',
  'Yt',
  'St',
  'scale',
  'zero',
  'offset',
  'nGroups',
  'groupOf',
  'perm',
  'Qt',
  'Ct',
  'Q',
  'codes',
  'lossPart',
  'intGrid',
  'qmin',
  'qmax',
  'codeBase',
  'groupStart',
  'gs',
  'qcfgJson',
  'qcfgJsonBytes',
  'tensorScale',
] as const satisfies readonly (keyof GptqBlockArgs)[];

export function encodeGptqArgs(a: GptqBlockArgs): number[] {
  return FIELDS.map((f) => a[f]);
}

function decode(args: ArrayLike<number>): GptqBlockArgs {
  const o: Record<string, number> = {};
  FIELDS.forEach((f, i) => (o[f] = args[i]!));
  return o as unknown as GptqBlockArgs;
}

/**
 * The row quantizer of a call and its grid, decoded from engine memory (plain data: a grid holds the
 * formats codec's encoder, a function, so each thread builds it from the format; the last one is kept).
 */
interface RowQuantizer {
  readonly cfg: QuantizerConfig;
  readonly grid: ElementGrid;
  readonly block: BlockScaling | undefined;
}
let lastQuantizer: (RowQuantizer & { key: string }) | undefined;
function quantizerOf(buf: ArrayBufferLike, a: GptqBlockArgs): RowQuantizer {
  const bytes = new Uint8Array(buf, a.qcfgJson, a.qcfgJsonBytes).slice();
  const key = `${a.gs} ${new TextDecoder().decode(bytes)}`;
  if (lastQuantizer?.key !== key) {
    const cfg = decodePlainData<QuantizerConfig>(bytes);
    lastQuantizer = { key, cfg, grid: quantizerGrid(cfg), block: gptqBlock(cfg, a.gs) };
  }
  return lastQuantizer;
}

/**
 * The block format (blocks/registry.ts: MX, NVFP4) GPTQ's row quantizer in groups of `gs` is, if any: its
 * groups then take that format's own scales (MX: the shared-exponent rule; NVFP4: an E4M3 scale per block
 * times the FP32 tensor scale of the original weight), as the RTN quantizer of the same scheme does.
 */
export function gptqBlock(cfg: QuantizerConfig, gs: number): BlockScaling | undefined {
  return gs > 0 ? blockOf({ ...cfg, granularity: { kind: 'group', axis: 1, size: gs } }) : undefined;
}

/**
 * Scales of `nr` rows of `k` values (x row-major) by a block format's rule: each row's block scale from its
 * largest finite |x| and the tensor scale `t` (as qparams.ts does for the whole tensor).
 */
export function blockRowScales(
  block: BlockScaling,
  t: number,
  x: ArrayLike<number>,
  nr: number,
  k: number,
): Float32Array {
  const scale = new Float32Array(nr);
  for (let r = 0; r < nr; r++) {
    let amax = 0;
    for (let j = 0; j < k; j++) {
      const v = Math.abs(x[r * k + j]!);
      if (v > amax && v <= 3.4028234663852886e38) amax = v;
    }
    scale[r] = block.blockScale(amax, t).scale;
  }
  return scale;
}

/** Grid value of w: a block format's element code of its quotient as the format computes it, else qparams'. */
export function gptqGridValue(
  grid: ElementGrid,
  block: BlockScaling | undefined,
  s: number,
  z: number,
  o: number,
  w: number,
): number {
  return block ? gridValue(grid, 1, 0, 0, block.quotient(w, s)) : gridValue(grid, s, z, o, w);
}

/** The padded row range [r0, r1) of a part. */
function range(a: GptqBlockArgs, part: number): [number, number] {
  const r0 = part * a.chunk;
  return [r0, Math.min(a.ld, r0 + a.chunk)];
}

/**
 * Start state of the block for the part's rows: St = Wt[i1 : i1+bw] + Ub^T (Vb^T Dt[0 : i1]), the value the
 * reference's outer W has at the block boundary (gptq.ts derives it).
 */
export function gptqPreparePart(ctx: ThreadContext, args: ArrayLike<number>, part: number): void {
  const a = decode(args);
  const [r0, r1] = range(a, part);
  const n = r1 - r0;
  const k = ctx.kernels;
  k.copy_f32(a.bw, n, a.Wt + (a.i1 * a.ld + r0) * 4, a.ld, a.St + r0 * 4, a.ld);
  if (a.i1 === 0) return;
  const Yt = a.Yt + r0 * 4;
  k.sgemm(GEMM.TA, a.bw, n, a.i1, 1, a.Vb, a.bw, a.Wt + r0 * 4, a.ld, Yt, a.ld, 0, 0, ctx.work);
  k.sgemm(
    GEMM.TA | GEMM.ACC | GEMM.ALOWER,
    a.bw,
    n,
    a.bw,
    1,
    a.Ub,
    a.bw,
    Yt,
    a.ld,
    a.St + r0 * 4,
    a.ld,
    0,
    0,
    ctx.work,
  );
}

/**
 * Parameters of the groups that start in this block, for the part's rows, from the block-start state St
 * (quantizers whose rows are independent: every scale format but the shared-scale ones).
 */
export function gptqParamsPart(ctx: ThreadContext, args: ArrayLike<number>, part: number): void {
  const a = decode(args);
  const [r0, r1] = range(a, part);
  const nr = Math.min(a.rows, r1) - r0;
  if (nr <= 0 || a.groupStart < 0) return;
  const buf = ctx.memory.buffer;
  const { cfg: qcfg, block } = quantizerOf(buf, a);
  const { ld, i1 } = a;
  const St = new Float32Array(buf, a.St, a.bw * ld);
  const out = [a.scale, a.zero, a.offset].map((p) => new Float32Array(buf, p, a.nGroups * ld));
  for (let c = a.groupStart; c < i1 + a.cnt; c += a.gs) {
    const k = Math.min(a.gs, a.cols - c);
    const x = new Float32Array(nr * k);
    for (let j = 0; j < k; j++) {
      const so = (c - i1 + j) * ld + r0;
      for (let r = 0; r < nr; r++) x[r * k + j] = St[so + r]!;
    }
    const g = c / a.gs;
    if (block) {
      // zero points and offsets stay 0 (the buffers start so)
      out[0]!.set(blockRowScales(block, a.tensorScale, x, nr, k), g * ld + r0);
      continue;
    }
    const p = chooseQParams(x, [nr, k], qcfg);
    out[0]!.set(p.scale.subarray(0, nr), g * ld + r0);
    out[1]!.set(p.zero.subarray(0, nr), g * ld + r0);
    out[2]!.set(p.offset.subarray(0, nr), g * ld + r0);
  }
}

/**
 * The block's columns for the part's rows, in order: quantize column i with its group's parameters, feed
 * the error forward to the block's later columns, store D = W0 - Q in Wt. Adds the part's GPTQ loss
 * (sum (w - q)^2 / (2 U_ii^2)) to lossPart[part].
 */
export function gptqColumnsPart(ctx: ThreadContext, args: ArrayLike<number>, part: number): void {
  const a = decode(args);
  const [r0, r1] = range(a, part);
  const buf = ctx.memory.buffer;
  const { ld, bw, i1 } = a;
  const k = ctx.kernels;
  let loss = 0;
  if (a.intGrid) {
    // block-relative group rows, in the part's scratch
    const gp = ctx.work;
    const groupOf = new Int32Array(buf, a.groupOf, a.cols);
    new Int32Array(buf, gp, a.cnt).set(groupOf.subarray(i1, i1 + a.cnt));
    const at = (base: number, row: number) => base + (row * ld + r0) * 4;
    loss = k.gptq_block_int(
      a.cnt,
      r1 - r0,
      a.St + r0 * 4,
      ld,
      a.Ub,
      bw,
      a.scale + r0 * 4,
      a.zero + r0 * 4,
      ld,
      gp,
      a.qmin,
      a.qmax,
      a.codeBase,
      at(a.Wt, i1),
      at(a.Qt, i1),
      a.Ct + (i1 * ld + r0) * 2,
    );
  } else loss = columnsGeneric(ctx, a, r0, r1);
  new Float64Array(buf, a.lossPart, part + 1)[part]! += loss;
}

/** Any grid: the per-element quantizer of qparams.ts, then gptq_column per column. */
function columnsGeneric(ctx: ThreadContext, a: GptqBlockArgs, r0: number, r1: number): number {
  const buf = ctx.memory.buffer;
  const { grid, block } = quantizerOf(buf, a);
  const { ld, cols, bw } = a;
  const rEnd = Math.min(a.rows, r1);
  const St = new Float32Array(buf, a.St, bw * ld);
  const Ub = new Float32Array(buf, a.Ub, bw * bw);
  const groupOf = new Int32Array(buf, a.groupOf, cols);
  const Qt = new Float32Array(buf, a.Qt, cols * ld);
  const Ct = new Uint16Array(buf, a.Ct, cols * ld);
  const scale = new Float32Array(buf, a.scale, a.nGroups * ld);
  const zero = new Float32Array(buf, a.zero, a.nGroups * ld);
  const offset = new Float32Array(buf, a.offset, a.nGroups * ld);
  let loss = 0;
  for (let i = 0; i < a.cnt; i++) {
    const col = a.i1 + i;
    const po = groupOf[col]! * ld;
    const wo = i * ld;
    const qo = col * ld;
    for (let r = r0; r < rEnd; r++) {
      const s = scale[po + r]!;
      const z = zero[po + r]!;
      const o = offset[po + r]!;
      const g = gptqGridValue(grid, block, s, z, o, St[wo + r]!);
      Qt[qo + r] = gridToValue(grid, s, z, o, g);
      Ct[qo + r] = gridToCode(grid, g);
    }
    const wcol = a.Wt + (qo + r0) * 4;
    const sq = ctx.kernels.gptq_column(
      i,
      a.cnt,
      r1 - r0,
      a.St + r0 * 4,
      ld,
      a.Qt + (qo + r0) * 4,
      a.Ub + i * bw * 4,
      wcol,
      wcol,
    );
    const d = Ub[i * bw + i]!;
    loss += sq / (2 * d * d);
  }
  return loss;
}

/** Q and codes back to W's layout (original column order) for the part's rows. */
export function gptqScatterPart(ctx: ThreadContext, args: ArrayLike<number>, part: number): void {
  const a = decode(args);
  const r0 = part * a.chunk;
  const n = Math.min(a.rows, r0 + a.chunk) - r0;
  if (n <= 0) return;
  const k = ctx.kernels;
  k.scatter_transpose_f32(a.cols, n, a.Qt + r0 * 4, a.ld, a.perm, a.Q + r0 * a.cols * 4, a.cols);
  k.scatter_transpose_u16(a.cols, n, a.Ct + r0 * 2, a.ld, a.perm, a.codes + r0 * a.cols * 2, a.cols);
}

/** Rows of Wt (columns of W) per part of the initial transpose. */
export const TRANSPOSE_COLS = 256;

/**
 * Part of Wt[k][r] = W[r][perm[k]] (W copied into engine memory as Wsrc, rows x cols): steps
 * [part * TRANSPOSE_COLS, ...). Args: rows, cols, Wsrc, perm, Wt, ld.
 */
export function gptqTransposePart(ctx: ThreadContext, a: ArrayLike<number>, part: number): void {
  const [rows, cols, Wsrc, perm, Wt, ld] = Array.from(a) as [number, number, number, number, number, number];
  const k0 = part * TRANSPOSE_COLS;
  const n = Math.min(cols, k0 + TRANSPOSE_COLS) - k0;
  ctx.kernels.transpose_gather_f32(rows, n, Wsrc, cols, perm + k0 * 4, Wt + k0 * ld * 4, ld);
}

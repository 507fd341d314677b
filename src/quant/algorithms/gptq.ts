/**
 * GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers", 2022), following the original implementation IST-DASLab/gptq (gptq.py fasterquant,
 * commit 2d65066) step by step, so that test/golden/gptq_reference.json is reproduced:
 *
 *  1. per-row parameters from the whole W (used when groupSize = -1);
 *  2. dead inputs (H[i,i] = 0): H[i,i] = 1, W[:, i] = 0; static groups: params of each natural-order group;
 *  3. act-order: columns sorted by diag(H) descending (stable);
 *  4. damping H[i,i] += percdamp * mean(diag H);
 *  5. U = upper Cholesky factor of H^-1 (float64 here; see linalg.upperCholeskyOfInverse);
 *  6. columns in blocks of `blockSize`: quantize column i, err = (w - q) / U[i,i], update the rest of the
 *     block at once (W1[:, i:] -= err U[i, i:]); after the block, the lazy update of all later columns
 *     W[:, i2:] -= Err1 U[i1:i2, i2:]. With groups, a group's parameters come from the OUTER W (updated
 *     only at block boundaries), exactly as in the reference.
 *
 * Works with any element format of the quantizer (int, float, codebook) and any scale rule / storage.
 */
import { MixqError } from '../../core/errors.ts';
import type { FormatSpec } from '../../formats/spec.ts';
import { gridToCode } from '../element.ts';
import { gram, subMatMul, upperCholeskyOfInverse } from '../linalg.ts';
import { chooseQParams, fakeQuantValue, gridValue, type ScaleRule } from '../qparams.ts';
import type { ScaleFormat } from '../scale-format.ts';

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

/** H = 2/n X^T X for calibration inputs X [n, d] (the GPTQ Hessian of the layer-wise squared error). */
export function gptqHessian(X: Float32Array, n: number, d: number): Float64Array {
  const G = gram(X, n, d);
  for (let i = 0; i < G.length; i++) G[i] = (2 / n) * G[i]!;
  return G;
}

/**
 * Runs GPTQ on W [rows, cols] with Hessian H [cols, cols].
 * Example: `gptq(W, 64, 128, gptqHessian(X, 512, 128), { element: intSpec(4, false), symmetric: false,
 * groupSize: 32, actOrder: true })`.
 */
export function gptq(
  W0: Float32Array,
  rows: number,
  cols: number,
  H0: Float64Array,
  cfg: GptqConfig,
): GptqResult {
  const gs = cfg.groupSize ?? -1;
  const B = cfg.blockSize ?? 128;
  const percdamp = cfg.percdamp ?? 0.01;
  const actOrder = cfg.actOrder ?? false;
  const staticGroups = cfg.staticGroups ?? false;
  if (W0.length !== rows * cols)
    throw new MixqError('W has the wrong length', { field: 'W', expected: `${rows}x${cols}` });
  if (H0.length !== cols * cols)
    throw new MixqError('H has the wrong size', { field: 'H', expected: `${cols}x${cols}` });
  if (!(gs === -1 || (Number.isInteger(gs) && gs >= 1)))
    throw new MixqError('bad group size', { field: 'groupSize', expected: '-1 or a positive integer' });
  if (!(Number.isInteger(B) && B >= 1))
    throw new MixqError('bad block size', { field: 'blockSize', expected: '>= 1' });

  const qcfg = {
    element: cfg.element,
    granularity: { kind: 'axis', axis: 0 } as const,
    symmetric: cfg.symmetric,
    ...(cfg.scaleRule ? { scaleRule: cfg.scaleRule } : {}),
    ...(cfg.scaleFormat ? { scaleFormat: cfg.scaleFormat } : {}),
  };
  // parameters of W[:, c0:c1] per row, from a float64 working matrix with row stride `ld`
  const slice = new Float32Array(rows * Math.max(gs, 1));
  const findParams = (Wm: Float64Array | Float32Array, ld: number, c0: number, c1: number) => {
    const k = c1 - c0;
    const s = k === gs ? slice : new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) s[r * k + j] = Wm[r * ld + c0 + j]!;
    const p = chooseQParams(s.subarray(0, rows * k), [rows, k], qcfg);
    return { scale: p.scale, zero: p.zero, offset: p.offset, grid: p.grid };
  };

  // 1-2. initial parameters, dead columns
  let cur = findParams(W0, cols, 0, cols);
  const grid = cur.grid;
  const W = Float64Array.from(W0);
  const H = Float64Array.from(H0);
  for (let i = 0; i < cols; i++) {
    if (H[i * cols + i] === 0) {
      H[i * cols + i] = 1;
      for (let r = 0; r < rows; r++) W[r * cols + i] = 0;
    }
  }
  const staticParams: ReturnType<typeof findParams>[] = [];
  if (gs !== -1 && staticGroups)
    for (let c = 0; c < cols; c += gs) staticParams.push(findParams(W, cols, c, Math.min(c + gs, cols)));

  // 3. act-order permutation (stable sort on descending diagonal)
  let perm: Int32Array | null = null;
  if (actOrder) {
    const diag = Array.from({ length: cols }, (_, i) => H[i * cols + i]!);
    perm = Int32Array.from(
      Array.from({ length: cols }, (_, i) => i).sort((a, b) => diag[b]! - diag[a]! || a - b),
    );
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
  const U = upperCholeskyOfInverse(H, cols);

  // 6. blocked quantization with error feedback
  const nGroups = gs === -1 ? 1 : Math.ceil(cols / gs);
  const scale = new Float32Array(rows * nGroups);
  const zero = new Float32Array(rows * nGroups);
  const offset = new Float32Array(rows * nGroups);
  const record = (g: number, p: typeof cur) => {
    for (let r = 0; r < rows; r++) {
      scale[r * nGroups + g] = p.scale[r]!;
      zero[r * nGroups + g] = p.zero[r]!;
      offset[r * nGroups + g] = p.offset[r]!;
    }
  };
  if (gs === -1) record(0, cur);
  else if (staticGroups) for (const [g, p] of staticParams.entries()) record(g, p);
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
            cur = findParams(W, cols, col, Math.min(col + gs, cols));
            record(col / gs, cur);
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
        const q = fakeQuantValue(grid, s, z, o, w);
        Qp[r * cols + col] = q;
        codesP[r * cols + col] = gridToCode(grid, gridValue(grid, s, z, o, w));
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
  return { Q, codes, scale, zero, offset, nGroups, gIdx, perm, loss };
}

/**
 * Applies one sensitivity candidate to a weight in row-matrix layout: RTN (src/quant/algorithms/rtn.ts),
 * GPTQ (gptq.ts, H = 2 X^T X / n) or AWQ (awq.ts, scale + clip search on X^T X).
 *
 * GPTQ and AWQ need the full Hessian proxy over the reduction axis, which the calibration capture gives
 * for matrices and 1 x 1, ungrouped convolutions only (for a kh x kw kernel it would need the im2col
 * Gram). On other weights, or without X^T X, they are not applicable (`applicable` says so).
 * AWQ wants mean |x| per channel; the capture keeps E[x^2], so sqrt(E[x^2]) (the RMS) stands in.
 *
 * Salient candidates (candidates.ts `salient`) run outliers.ts salientSparse on the row matrix with the
 * RTN quantizer: 'hessian' saliency (w - rtn(w))^2 * H_jj with H_jj = E[x^2] of the channel column j reads
 * (layout.ts channelOf), 'activation' |w| * sqrt(E[x^2]). They need the statistics (any layout).
 */
import { getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { awq } from '../../quant/algorithms/awq.ts';
import { gptq, type GptqResult } from '../../quant/algorithms/gptq.ts';
import { salientSparse, type SalientResult } from '../../quant/algorithms/outliers.ts';
import { rtn } from '../../quant/algorithms/rtn.ts';
import type { SensitivityCandidate } from './candidates.ts';
import { channelOf, type RowLayout } from './layout.ts';
import type { LayerStats } from './proxies.ts';

/** Whether `c` can be applied to a weight with this layout and statistics. */
export function applicable(c: SensitivityCandidate, L: RowLayout, stats?: LayerStats): boolean {
  // ggml blocks tile whole rows
  if (c.blockType) return L.cols % getBlockType(c.blockType).blockSize === 0;
  if (c.salient) return c.algorithm === 'rtn' && stats !== undefined;
  if (c.algorithm === 'rtn') return true;
  return stats?.gram !== undefined && L.kernel === 1 && L.groups === 1;
}

/** Dequantized row matrix of `W` (row matrix) under candidate `c`. */
export function quantizeCandidate(
  W: Float32Array,
  L: RowLayout,
  c: SensitivityCandidate,
  stats?: LayerStats,
): Float32Array {
  const shape = [L.rows, L.cols];
  if (c.blockType) {
    if (!applicable(c, L))
      throw new MixqError(`rows of ${L.cols} are not whole ${c.blockType} blocks`, {
        field: c.id,
        expected: `a row length that is a multiple of ${getBlockType(c.blockType).blockSize}`,
      });
    const bt = getBlockType(c.blockType);
    // the importance matrix (E[x^2] per column) of plain matrices; ggml's quantize_* with imatrix
    const imatrix =
      stats && L.kernel === 1 && L.groups === 1 ? Float32Array.from(stats.meanSquare) : undefined;
    return bt.decode(bt.encode(W, imatrix), W.length);
  }
  if (c.salient) return salientCandidateResult(W, L, c, stats).Q;
  if (c.algorithm === 'rtn') return rtn(W, shape, { quantizer: c.quantizer }).Q;
  if (!applicable(c, L, stats) || !stats?.gram)
    throw new MixqError(`candidate ${c.id} needs X^T X of a matrix or 1x1 convolution`, {
      field: c.id,
      expected: 'an RTN candidate for this weight',
    });
  const q = c.quantizer;
  if (c.algorithm === 'gptq') return gptqCandidate(W, L, c, stats).Q;
  const actMeanAbs = Float32Array.from(stats.meanSquare, (v) => Math.sqrt(v));
  return awq(W, L.rows, L.cols, { actMeanAbs, gram: Float64Array.from(stats.gram) }, { quantizer: q }).Q;
}

/** GPTQ of a candidate with its full result (codes, scales, zero points per group: what export stores). */
export function gptqCandidate(
  W: Float32Array,
  L: RowLayout,
  c: SensitivityCandidate,
  stats: LayerStats,
): GptqResult {
  if (c.algorithm !== 'gptq' || !applicable(c, L, stats) || !stats.gram)
    throw new MixqError(`candidate ${c.id} is not a GPTQ candidate applicable to this weight`, {
      field: c.id,
      expected: 'a gptq candidate on a matrix or 1x1 convolution with X^T X',
    });
  const q = c.quantizer;
  const H = Float64Array.from(stats.gram, (v) => 2 * v);
  const g = q.granularity;
  return gptq(W, L.rows, L.cols, H, {
    element: q.element,
    symmetric: q.symmetric,
    groupSize: g.kind === 'group' ? g.size : -1,
    ...(q.scaleRule ? { scaleRule: q.scaleRule } : {}),
    ...(q.scaleFormat ? { scaleFormat: q.scaleFormat } : {}),
  });
}

/**
 * E[x^2] of the channel each row-matrix element multiplies (layout.ts channelOf), as salientSparse takes
 * it: one value per column when all rows read the same channels (groups = 1), else one per element.
 */
function channelMeanSquare(L: RowLayout, meanSquare: ArrayLike<number>): Float64Array {
  if (meanSquare.length !== L.groups * L.inPerGroup)
    throw new MixqError(`meanSquare has ${meanSquare.length} values`, {
      field: 'stats.meanSquare',
      expected: String(L.groups * L.inPerGroup),
    });
  const rows = L.groups === 1 ? 1 : L.rows;
  const out = new Float64Array(rows * L.cols);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < L.cols; j++) out[r * L.cols + j] = meanSquare[channelOf(L, r, j)]!;
  return out;
}

/** A salient candidate's full result (dense part + CSR side matrix of fp16 values, exact bits). */
export function salientCandidateResult(
  W: Float32Array,
  L: RowLayout,
  c: SensitivityCandidate,
  stats: LayerStats | undefined,
): SalientResult {
  const sp = c.salient;
  if (!sp || !applicable(c, L, stats) || !stats)
    throw new MixqError(`candidate ${c.id} is not a salient candidate applicable to this weight`, {
      field: c.id,
      expected: 'a salient RTN candidate and the calibration statistics (E[x^2]) of the weight',
    });
  const ms = channelMeanSquare(L, stats.meanSquare);
  const salStats =
    sp.criterion === 'hessian'
      ? { hessianDiag: ms }
      : { actScale: Float64Array.from(ms, (v) => Math.sqrt(v)) };
  return salientSparse(W, L.rows, L.cols, salStats, {
    quantizer: c.quantizer,
    fraction: sp.fraction,
    criterion: sp.criterion,
  });
}

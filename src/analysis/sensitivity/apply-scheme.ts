/**
 * Applies one scheme (row frame, src/quant/scheme.ts) to a weight in row-matrix layout: RTN
 * (src/quant/algorithms/rtn.ts), GPTQ (gptq.ts, H = 2 X^T X / n), AWQ (awq.ts, scale + clip search on
 * X^T X) or a ggml block type (src/blocks, with the importance matrix E[x^2] where known).
 *
 * GPTQ and AWQ need the full Hessian proxy over the reduction axis, which the calibration capture gives
 * for matrices and 1 x 1, ungrouped convolutions only (for a kh x kw kernel it would need the im2col
 * Gram). On other weights, or without X^T X, they are not applicable (`applicable` says so).
 * AWQ wants mean |x| per channel; the capture keeps E[x^2], so sqrt(E[x^2]) (the RMS) stands in.
 *
 * Salient schemes (outliers { kind: 'salient' }) run outliers.ts salientSparse on the row matrix with the
 * RTN quantizer: 'hessian' saliency (w - rtn(w))^2 * H_jj with H_jj = E[x^2] of the channel column j reads
 * (layout.ts channelOf), 'activation' |w| * sqrt(E[x^2]). They need the statistics (any layout).
 */
import { getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { awq } from '../../quant/algorithms/awq.ts';
import { gptq, type GptqResult } from '../../quant/algorithms/gptq.ts';
import { salientSparse, type SalientResult } from '../../quant/algorithms/outliers.ts';
import { rtn } from '../../quant/algorithms/rtn.ts';
import { getFormat } from '../../formats/index.ts';
import { quantizerOf, salientOf, type Scheme } from '../../quant/scheme.ts';
import { schemeId } from './candidates.ts';
import { channelOf, type RowLayout } from '../../quant/layout.ts';
import type { MatrixEngine } from '../../quant/matrix/engine.ts';
import type { LayerStats } from './proxies.ts';

/** Whether `s` can be applied to a weight with this layout and statistics. */
export function applicable(s: Scheme, L: RowLayout, stats?: LayerStats): boolean {
  // ggml blocks tile whole rows
  if (s.blockType !== undefined) return L.cols % getBlockType(s.blockType).blockSize === 0;
  if (salientOf(s)) return s.algorithm === 'rtn' && stats !== undefined;
  if (s.algorithm === 'rtn') return true;
  return stats?.gram !== undefined && L.kernel === 1 && L.groups === 1;
}

/**
 * The scheme a weight gets when `s` needs calibration statistics it lacks (GPTQ / AWQ on a weight without
 * X^T X): the same quantizer with RTN.
 */
export function fallbackScheme(s: Scheme, L: RowLayout, stats?: LayerStats): Scheme {
  if (applicable(s, L, stats)) return s;
  const { outliers: _, ...rest } = s;
  return { ...rest, algorithm: 'rtn' };
}

/** The importance matrix (E[x^2] per column) of plain matrices, as ggml's quantize_* takes it. */
export function importanceOf(L: RowLayout, stats?: LayerStats): Float32Array | undefined {
  return stats && L.kernel === 1 && L.groups === 1 ? Float32Array.from(stats.meanSquare) : undefined;
}

/**
 * A scheme as mixq applies it, refusing what it cannot apply (MixqError naming `field` and the reason):
 * salient outliers only on RTN element formats and as a fraction (default 1%), algorithms rtn / gptq /
 * awq (a ggml block type's own), a scale search only on integer RTN / GPTQ.
 */
export function checkApplied(s: Scheme, field = 'scheme'): Scheme {
  const o = s.outliers;
  if (o !== undefined) {
    if (o.kind !== 'salient')
      throw new MixqError(`outliers '${o.kind}' are not applied by mixq apply`, {
        field: `${field}.outliers.kind`,
        expected: "'salient' (int8-decomposition is not offered as a candidate)",
      });
    if (s.blockType !== undefined || s.algorithm !== 'rtn')
      throw new MixqError(
        `salient outliers with ${s.blockType !== undefined ? `ggml block type ${s.blockType}` : `algorithm '${s.algorithm}'`}`,
        { field: `${field}.outliers`, expected: "salient outliers on an 'rtn' scheme without blockType" },
      );
    if (o.count !== undefined)
      throw new MixqError('salient outliers given as a count', {
        field: `${field}.outliers.count`,
        expected: 'a fraction in (0, 1) instead of a count',
      });
    const fraction = o.fraction ?? 0.01;
    if (!(fraction > 0 && fraction < 1))
      throw new MixqError(`salient fraction ${fraction}`, {
        field: `${field}.outliers.fraction`,
        expected: 'a number in (0, 1)',
      });
    s = { ...s, outliers: { ...o, fraction } };
  }
  if (s.blockType === undefined && s.algorithm !== 'rtn' && s.algorithm !== 'gptq' && s.algorithm !== 'awq')
    throw new MixqError(`algorithm '${s.algorithm}' is not applied by mixq apply yet`, {
      field: `${field}.algorithm`,
      expected: 'rtn, gptq or awq',
    });
  const rule = s.scaleRule?.kind === 'minmax' ? undefined : s.scaleRule;
  if (rule && s.blockType === undefined && (getFormat(s.format).kind !== 'int' || s.algorithm === 'awq'))
    throw new MixqError(`scale rule '${rule.kind}' on a ${getFormat(s.format).name} ${s.algorithm} scheme`, {
      field: `${field}.scaleRule`,
      expected: 'an integer format with rtn or gptq (or no scaleRule)',
    });
  return s;
}

/**
 * Dequantized row matrix of `W` (row matrix) under scheme `s`. GPTQ and AWQ run their dense work on
 * `engine` (a worker-thread matrix pool from mixq/node, or one thread): the same bytes either way.
 */
export function quantizeScheme(
  W: Float32Array,
  L: RowLayout,
  s: Scheme,
  stats?: LayerStats,
  engine?: MatrixEngine,
): Float32Array {
  const shape = [L.rows, L.cols];
  if (s.blockType !== undefined) {
    const bt = getBlockType(s.blockType);
    if (!applicable(s, L))
      throw new MixqError(`rows of ${L.cols} are not whole ${s.blockType} blocks`, {
        field: schemeId(s),
        expected: `a row length that is a multiple of ${bt.blockSize}`,
      });
    return bt.decode(bt.encode(W, importanceOf(L, stats)), W.length);
  }
  if (salientOf(s)) return salientResult(W, L, s, stats).Q;
  if (s.algorithm === 'rtn') return rtn(W, shape, { quantizer: quantizerOf(s) }).Q;
  if (!applicable(s, L, stats) || !stats?.gram)
    throw new MixqError(`candidate ${schemeId(s)} needs X^T X of a matrix or 1x1 convolution`, {
      field: schemeId(s),
      expected: 'an RTN candidate for this weight',
    });
  if (s.algorithm === 'gptq') return gptqScheme(W, L, s, stats, engine).Q;
  if (s.algorithm !== 'awq')
    throw new MixqError(`algorithm '${s.algorithm}' is not applied to element formats`, {
      field: `${schemeId(s)}.algorithm`,
      expected: 'rtn, gptq or awq (imatrix with a ggml block type)',
    });
  const actMeanAbs = Float32Array.from(stats.meanSquare, (v) => Math.sqrt(v));
  const cfg = { quantizer: quantizerOf(s), ...(engine ? { engine } : {}) };
  return awq(W, L.rows, L.cols, { actMeanAbs, gram: Float64Array.from(stats.gram) }, cfg).Q;
}

/** GPTQ of a scheme with its full result (codes, scales, zero points per group: what export stores). */
export function gptqScheme(
  W: Float32Array,
  L: RowLayout,
  s: Scheme,
  stats: LayerStats,
  engine?: MatrixEngine,
): GptqResult {
  if (s.algorithm !== 'gptq' || !applicable(s, L, stats) || !stats.gram)
    throw new MixqError(`candidate ${schemeId(s)} is not a GPTQ candidate applicable to this weight`, {
      field: schemeId(s),
      expected: 'a gptq candidate on a matrix or 1x1 convolution with X^T X',
    });
  const q = quantizerOf(s);
  const H = Float64Array.from(stats.gram, (v) => 2 * v);
  const g = q.granularity;
  return gptq(W, L.rows, L.cols, H, {
    element: q.element,
    symmetric: q.symmetric,
    groupSize: g.kind === 'group' ? g.size : -1,
    ...(q.scaleRule ? { scaleRule: q.scaleRule } : {}),
    ...(q.scaleFormat ? { scaleFormat: q.scaleFormat } : {}),
    ...(engine ? { engine } : {}),
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

/** A salient scheme's full result (dense part + CSR side matrix of fp16 values, exact bits). */
export function salientResult(
  W: Float32Array,
  L: RowLayout,
  s: Scheme,
  stats: LayerStats | undefined,
): SalientResult {
  const sp = salientOf(s);
  if (!sp || !applicable(s, L, stats) || !stats)
    throw new MixqError(`candidate ${schemeId(s)} is not a salient candidate applicable to this weight`, {
      field: schemeId(s),
      expected: 'a salient RTN candidate and the calibration statistics (E[x^2]) of the weight',
    });
  const ms = channelMeanSquare(L, stats.meanSquare);
  const salStats =
    sp.criterion === 'hessian'
      ? { hessianDiag: ms }
      : { actScale: Float64Array.from(ms, (v) => Math.sqrt(v)) };
  return salientSparse(W, L.rows, L.cols, salStats, {
    quantizer: quantizerOf(s),
    fraction: sp.fraction,
    criterion: sp.criterion,
  });
}

/**
 * A scheme: one quantization choice for a weight, the same record from the candidate list to the written
 * file. It is what the plan file calls `scheme` (src/plan/schema.ts): the element format, granularity,
 * algorithm, scale storage, symmetry and optional scale rule, ggml block type and salient outliers. The
 * quantizer that applies it (quantizerOf), its exact storage (analysis), its identifier for printing
 * (analysis/sensitivity/candidates.ts schemeId) and how an output stores it (src/export) are all derived
 * from this record; nothing is looked up by name.
 *
 * Frames. A scheme's granularity is stated either on the row matrix [rows = output channels, cols =
 * reduction] every quantizer works in (layout.ts; per channel = { kind: 'axis', axis: 0 }, groups =
 * { kind: 'group', axis: 1, size }) or on the weight's own tensor axes, as a plan file states it (MatMul B
 * [K, N]: per channel = axis 1, groups along axis 0). Candidate lists are in the row frame (they hold for
 * any weight); schemeOnTensor / schemeOnRows convert for one weight, and are exact inverses wherever the
 * row groups are runs of one tensor axis (representable).
 *
 * Example (int4 in groups of 32 along the reduction, GPTQ, on the row frame):
 *   { format: 'uint4', granularity: { kind: 'group', axis: 1, size: 32 }, algorithm: 'gptq',
 *     scaleFormat: 'fp16', symmetric: false }
 */
import { MixqError } from '../core/errors.ts';
import { getFormat } from '../formats/registry.ts';
import type { Granularity } from './granularity.ts';
import type { RowLayout } from './layout.ts';
import type { QuantizerConfig, ScaleRule } from './qparams.ts';
import type { ScaleFormat } from './scale-format.ts';

/** Algorithms a scheme may name (src/quant/algorithms; 'imatrix' = ggml's importance-weighted block fit). */
export const SCHEME_ALGORITHMS = ['rtn', 'gptq', 'awq', 'smoothquant', 'imatrix'] as const;
export type SchemeAlgorithm = (typeof SCHEME_ALGORITHMS)[number];

/** Salient / outlier weights kept at higher precision (src/quant/algorithms/outliers.ts). */
export type SchemeOutliers =
  | { readonly kind: 'int8-decomposition'; readonly threshold?: number }
  | {
      readonly kind: 'salient';
      readonly criterion: 'activation' | 'hessian';
      readonly fraction?: number;
      readonly count?: number;
    };

export interface Scheme {
  /** Element format name or alias (getFormat), e.g. 'int4', 'fp8_e4m3fn', 'nf4', 'e2m1'. */
  readonly format: string;
  readonly granularity: Granularity;
  readonly algorithm: SchemeAlgorithm;
  readonly scaleFormat: ScaleFormat;
  readonly symmetric: boolean;
  /**
   * How each group's range is chosen (src/quant/qparams.ts): absent = min-max; { kind: 'mse' } = the
   * clipping ratio with the least squared error (optional grid, minRatio, norm).
   */
  readonly scaleRule?: ScaleRule;
  /**
   * A ggml block layout (src/blocks registry name, e.g. 'Q4_K'): the weight is encoded by ggml's own
   * quantizer and stored in that layout; format / granularity / symmetry then only describe it.
   */
  readonly blockType?: string;
  readonly outliers?: SchemeOutliers;
}

/** The quantizer of a scheme (element format resolved; the scale rule only when it is not min-max). */
export function quantizerOf(s: Scheme): QuantizerConfig {
  return {
    element: getFormat(s.format),
    granularity: s.granularity,
    symmetric: s.symmetric,
    scaleFormat: s.scaleFormat,
    ...(s.scaleRule && s.scaleRule.kind !== 'minmax' ? { scaleRule: s.scaleRule } : {}),
  };
}

/**
 * Whether a scheme's ranges come from a search (not min-max): an exporter that quantizes min-max itself
 * then needs the codes.
 */
export function hasScaleSearch(s: Scheme): boolean {
  return s.scaleRule !== undefined && s.scaleRule.kind !== 'minmax';
}

/** The salient fraction of a scheme's outliers, if it keeps salient weights. */
export function salientOf(s: Scheme): { fraction: number; criterion: 'activation' | 'hessian' } | undefined {
  const o = s.outliers;
  return o?.kind === 'salient' && o.fraction !== undefined
    ? { fraction: o.fraction, criterion: o.criterion }
    : undefined;
}

/** Group size of a row-frame granularity along the reduction (cols), or undefined for per-channel. */
function rowGroupSize(g: Granularity, cols: number): number | undefined {
  if (g.kind === 'axis') return undefined;
  if (g.kind === 'group') return g.size >= cols ? undefined : g.size;
  throw new MixqError(`granularity '${g.kind}' has no row-layout meaning`, {
    field: 'granularity',
    expected: 'axis or group',
  });
}

/**
 * Whether a row-frame scheme's groups can be stated on the tensor's own axes: always for matrices and
 * 1 x 1 convolutions; for larger kernels only per channel (a run of the flattened [in, kh, kw] reduction
 * is not a run along one tensor axis).
 */
export function representable(s: Scheme, L: RowLayout): boolean {
  return L.kernel === 1 || rowGroupSize(s.granularity, L.cols) === undefined;
}

/** Tensor axes of a weight: the output channels' and the reduction's. */
function tensorAxes(L: RowLayout): { out: number; red: number } {
  // MatMul B [K, N]: outputs on axis 1, reduction on axis 0. Output-first tensors: outputs on axis 0,
  // reduction on axis 1 (the whole reduction for a matrix, the input channels of a 1 x 1 conv).
  return L.outputAxis === 1 ? { out: 1, red: 0 } : { out: 0, red: 1 };
}

/**
 * A row-frame scheme stated on the weight's tensor axes, as a plan records it. A group that covers a
 * whole row is stated per channel.
 */
export function schemeOnTensor(s: Scheme, L: RowLayout): Scheme {
  if (!representable(s, L))
    throw new MixqError(`a grouped scheme on a ${L.dims.join('x')} kernel groups across kernel positions`, {
      field: 'granularity',
      expected: 'a per-channel scheme for convolutions with kernels larger than 1 x 1',
    });
  const { out, red } = tensorAxes(L);
  const g = s.granularity;
  if (s.blockType !== undefined)
    return { ...s, granularity: { kind: 'group', axis: red, size: g.kind === 'group' ? g.size : L.cols } };
  const size = rowGroupSize(g, L.cols);
  return {
    ...s,
    granularity: size === undefined ? { kind: 'axis', axis: out } : { kind: 'group', axis: red, size },
  };
}

/**
 * A scheme stated on a weight's tensor axes (a plan's) on the row frame: the inverse of schemeOnTensor.
 * Refuses what mixq cannot apply to the weight, naming `field`.
 */
export function schemeOnRows(s: Scheme, L: RowLayout, field = 'scheme'): Scheme {
  const g = s.granularity;
  if (s.blockType !== undefined) {
    if (g.kind !== 'group')
      throw new MixqError(`block type ${s.blockType} with granularity '${g.kind}'`, {
        field: `${field}.granularity`,
        expected: "the block type's groups along the reduction",
      });
    return { ...s, granularity: { kind: 'group', axis: 1, size: g.size } };
  }
  const { out, red } = tensorAxes(L);
  let rows: Granularity;
  if (g.kind === 'axis' && g.axis === out) rows = { kind: 'axis', axis: 0 };
  else if (g.kind === 'group' && g.axis === red && (L.kernel === 1 || g.size >= L.cols))
    rows = g.size >= L.cols ? { kind: 'axis', axis: 0 } : { kind: 'group', axis: 1, size: g.size };
  else
    throw new MixqError(
      `granularity ${JSON.stringify(g)} is not supported for a [${L.dims.join(', ')}] weight`,
      {
        field: `${field}.granularity`,
        expected: `{ kind: 'axis', axis: ${out} } or { kind: 'group', axis: ${red}, size }`,
      },
    );
  return { ...s, granularity: rows };
}

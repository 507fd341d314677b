/**
 * Weights as "row matrices" [rows = output channels, cols = reduction elements], the layout every
 * quantizer, proxy and PTQ algorithm of the sensitivity analysis works in, and the map from a column to
 * the input activation channel it multiplies.
 *
 * - MatMul B [K, N] (outputAxis 1): the row matrix is the transpose [N, K]; column j reads channel j.
 * - Gemm B with transB / Conv W [O, I, kh, kw] (outputAxis 0): the tensor itself, cols = I * kh * kw;
 *   column j reads channel i = floor(j / (kh kw)) of the row's group. Grouped / depthwise convolutions
 *   are recognised from the activation channel count C: groups = C / I, and row o belongs to group
 *   floor(o / (O / groups)).
 */
import { MixqError } from '../core/errors.ts';

export interface RowLayout {
  /** Original tensor dims. */
  readonly dims: readonly number[];
  /** 1: MatMul B [K, N] (transposed on the way in); 0: output channels first. */
  readonly outputAxis: 0 | 1;
  readonly rows: number;
  readonly cols: number;
  /** Spatial kernel elements per input channel (kh * kw for a Conv, 1 for a matrix). */
  readonly kernel: number;
  /** Input channels per group (= cols / kernel). */
  readonly inPerGroup: number;
  /** Convolution groups (1 for a matrix); channels of the activation = groups * inPerGroup. */
  readonly groups: number;
}

/**
 * Describes a weight. `channels` is the activation's channel count when known (needed to recognise
 * grouped convolutions); by default groups = 1.
 */
export function rowLayout(dims: readonly number[], outputAxis: number, channels?: number): RowLayout {
  if (dims.length < 2)
    throw new MixqError('a weight needs at least 2 dimensions', { field: 'dims', expected: 'rank >= 2' });
  if (outputAxis === 1) {
    if (dims.length !== 2)
      throw new MixqError('output axis 1 is only supported for matrices', {
        field: 'outputAxis',
        expected: '0 for rank > 2',
      });
    const [k, n] = dims as [number, number];
    return { dims, outputAxis: 1, rows: n, cols: k, kernel: 1, inPerGroup: k, groups: 1 };
  }
  if (outputAxis !== 0)
    throw new MixqError(`unsupported output axis ${outputAxis}`, { field: 'outputAxis', expected: '0 or 1' });
  const rows = dims[0]!;
  const inPerGroup = dims[1]!;
  const kernel = dims.slice(2).reduce((a, b) => a * b, 1);
  let groups = 1;
  if (channels !== undefined && channels !== inPerGroup) {
    groups = channels / inPerGroup;
    if (!(Number.isInteger(groups) && rows % groups === 0))
      throw new MixqError(`activation has ${channels} channels, weight reads ${inPerGroup} per group`, {
        field: 'channels',
        expected: `a multiple of ${inPerGroup} dividing into ${rows} outputs`,
      });
  }
  return { dims, outputAxis: 0, rows, cols: inPerGroup * kernel, kernel, inPerGroup, groups };
}

/** Row-major [rows, cols] -> [cols, rows] (a copy of the same type): the one transpose of weights. */
export function transpose<T extends Float32Array | Int32Array>(x: T, rows: number, cols: number): T {
  const out = new (x.constructor as new (n: number) => T)(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

/** Tensor (original layout) -> row matrix. A copy. */
export function toRows(w: Float32Array, L: RowLayout): Float32Array {
  return L.outputAxis === 0 ? w.slice() : transpose(w, L.cols, L.rows);
}

/** Row matrix -> tensor in the original layout. A copy. */
export function fromRows(m: Float32Array, L: RowLayout): Float32Array {
  return L.outputAxis === 0 ? m.slice() : transpose(m, L.rows, L.cols);
}

/** First activation channel of row r's group (its columns read channels base .. base + inPerGroup). */
export function groupBase(L: RowLayout, r: number): number {
  return Math.floor(r / (L.rows / L.groups)) * L.inPerGroup;
}

/** Activation channel that element (r, c) of the row matrix multiplies. */
export function channelOf(L: RowLayout, r: number, c: number): number {
  return groupBase(L, r) + Math.floor(c / L.kernel);
}

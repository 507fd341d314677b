/**
 * Bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction",
 * 2019, section 4.2, the empirical variant): quantizing W to Q shifts the expected output of a linear layer
 * by (Q - W) E[x]; subtracting that shift from the layer's bias restores the mean of every output channel
 * on the calibration data. Networks of depthwise / pointwise convolutions after ReLU-like activations
 * (inputs with large nonzero means) suffer most from the uncorrected shift, which accumulates layer after
 * layer; on PP-OCRv4 rec it turns uniform INT4 RTN g32 from 26% CER into 1.6% (docs/bias-correction.md).
 *
 * Geometry: W and Q as [rows = output channels, cols] row-major (src/quant/layout.ts
 * toRows): column j of row o reads input channel g * inPerGroup + floor(j / kernel), g = the row's group
 * floor(o / (rows / groups)). For a convolution the per-tap mean is approximated by the channel mean
 * (exact away from the zero-padded border).
 */
import { MixqError } from '../../core/errors.ts';

export interface BiasGeometry {
  readonly rows: number;
  readonly cols: number;
  /** Kernel taps per input channel (kh * kw; 1 for a matrix). */
  readonly kernel: number;
  readonly inPerGroup: number;
  readonly groups: number;
}

/** The expected output shift (Q - W) E[x] per output channel (float64). */
export function biasShift(
  W: Float32Array,
  Q: Float32Array,
  g: BiasGeometry,
  mean: ArrayLike<number>,
): Float64Array {
  const { rows, cols, kernel, inPerGroup, groups } = g;
  if (W.length !== rows * cols || Q.length !== rows * cols)
    throw new MixqError(`weights of ${W.length} / ${Q.length} values`, {
      field: 'W / Q',
      expected: `${rows} x ${cols} = ${rows * cols}`,
    });
  if (mean.length !== groups * inPerGroup || cols !== inPerGroup * kernel || rows % groups !== 0)
    throw new MixqError(`${mean.length} channel means for ${groups} groups of ${inPerGroup} channels`, {
      field: 'mean',
      expected: `${groups * inPerGroup} values, cols = inPerGroup * kernel, rows divisible by groups`,
    });
  const perGroup = rows / groups;
  const shift = new Float64Array(rows);
  for (let o = 0; o < rows; o++) {
    const base = Math.floor(o / perGroup) * inPerGroup;
    let s = 0;
    for (let j = 0, r = o * cols; j < cols; j++, r++) {
      const d = Q[r]! - W[r]!;
      if (d !== 0) s += d * mean[base + Math.floor(j / kernel)]!;
    }
    shift[o] = s;
  }
  return shift;
}

/** bias - shift, as float32 (a new array; the input is not modified). */
export function correctBias(bias: Float32Array, shift: Float64Array): Float32Array {
  if (bias.length !== shift.length)
    throw new MixqError(`bias of ${bias.length} values`, { field: 'bias', expected: `${shift.length}` });
  return Float32Array.from(bias, (b, i) => b - shift[i]!);
}

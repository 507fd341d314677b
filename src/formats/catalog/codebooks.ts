/**
 * Codebook formats.
 *
 * nf4: 4-bit NormalFloat, Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (2023),
 * appendix E; the exact float32 values of bitsandbytes' csrc/kernels.cu `nf4_dequantization_lut`
 * (code i = values[i]; 0 is exact at code 7; range [-1, 1]).
 * binary: {-1, +1}, code 0 = -1, code 1 = +1 (1 bit).
 */
import type { LutSpec } from '../spec.ts';

export const nf4: LutSpec = {
  kind: 'lut',
  name: 'nf4',
  bits: 4,
  values: [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023,
    1.0,
  ],
  description: 'QLoRA 4-bit NormalFloat codebook',
};

export const binary: LutSpec = {
  kind: 'lut',
  name: 'binary',
  bits: 1,
  values: [-1, 1],
  description: 'binary {-1, +1}',
};

export const codebookFormats: readonly LutSpec[] = [binary, nf4];

/**
 * RTN: round-to-nearest with the quantizer's own scale rule, no error feedback. The baseline every other
 * algorithm is measured against (and the "RTN" of the GPTQ paper when the rule is min-max).
 */
import { chooseQParams } from '../qparams.ts';
import type { QuantizerConfig } from '../qparams.ts';
import { dequantize, type QuantizedTensor, quantize, type StorageCost, storageCost } from '../quantizer.ts';

export interface RtnConfig {
  readonly quantizer: QuantizerConfig;
}

export interface RtnResult {
  /** Dequantized weight, same shape as the input. */
  readonly Q: Float32Array;
  readonly quantized: QuantizedTensor;
  readonly cost: StorageCost;
}

/** RTN-quantizes a weight. `rtn(w, [64, 128], { quantizer: { element: intSpec(4, false), ... } })`. */
export function rtn(W: Float32Array, shape: readonly number[], cfg: RtnConfig): RtnResult {
  const params = chooseQParams(W, shape, cfg.quantizer);
  const quantized = quantize(W, params);
  return { Q: dequantize(quantized), quantized, cost: storageCost(cfg.quantizer, shape) };
}

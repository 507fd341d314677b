/**
 * mixq/numerics: whole computations in a chosen format and rounding mode. `withPrecision` gives an
 * arithmetic context (correctly rounded scalar operations, dot / axpy / norm / matvec / matmul with
 * hardware accumulation forms), `dfp*` the shared-exponent integer (DFP) FMA, and the studies behind
 * `mixq numerics` (LU and iterative refinement, harmonic sum and heat equation under RN / SR, low-precision
 * training of a small network), all reproducible from a seed.
 */
export { type AccumulatorOptions, Precision, type PrecisionOptions, withPrecision } from './context.ts';
export { type AccumulationPlan, IntAccumulator } from './accumulate.ts';
export {
  dfpDequantize,
  dfpDot,
  type DfpFmaOptions,
  dfpMatmul,
  type DfpOptions,
  dfpQuantize,
  type DfpTensor,
} from './dfp.ts';
export { hashNumbers } from './det-math.ts';
export type { StudyPlot, StudyResult, StudyTable } from './studies/study.ts';
export { type LuIrOptions, luIrStudy } from './studies/lu-ir.ts';
export { type HarmonicOptions, harmonicStudy, type HeatOptions, heatStudy } from './studies/rn-vs-sr.ts';
export {
  DEFAULT_TRAIN_CONFIGS,
  TRAIN_CONFIGS,
  type TrainConfig,
  type TrainOptions,
  trainStudy,
} from './studies/train.ts';

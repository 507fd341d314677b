/**
 * mixq/kernels: WebAssembly SIMD matrix x vector and matrix x matrix kernels for every weight format mixq
 * writes (float, int1..8, FP8 / FP6 / FP4, MX, NVFP4, NF4, ggml's block types as GGUF stores them, T-MAC
 * lookup tables), on float32 or int8 activations, with the plain TypeScript reference of each and their error
 * budgets. Browser-safe; worker threads: createKernelPool in mixq/node.
 */
export {
  createKernels,
  KernelContext,
  type KernelOptions,
  type PreparedWeight,
  type PrepareOptions,
  type ProductOptions,
  type RowExecutor,
} from './context.ts';
export {
  type ActivationMode,
  KERNEL_FORMATS,
  type KernelFormat,
  type KernelFormatName,
  LAYOUTS,
  type LayoutKernels,
} from './registry.ts';
export {
  type Float32Source,
  type GgmlSource,
  type MixqSafetensorsEntry,
  type MixqSafetensorsTensors,
  type MixqScaleFormat,
  type MixqSource,
  mixqSafetensorsSource,
  type WeightSource,
} from './source.ts';
export {
  dequantizeQ8,
  q8Bytes,
  q8kBytes,
  type Q8Vector,
  quantizeQ8KReference,
  quantizeQ8Reference,
} from './activations.ts';
export { type LutActivations, lutActivationsReference, lutRowReference } from './lut.ts';
export { type ReferenceProduct, referenceProduct, type RowDecoder, rowBlockAbs } from './reference.ts';
export { q8ActivationBudget, roundingBudget, UNIT_ROUNDOFF } from './budget.ts';
export { KernelKvStore, type KvViews } from './attention.ts';
export { kernelExp, kernelSwiglu } from './elementwise.ts';
export { chooseVariant, type KernelVariant } from './module.ts';
/** Feature detection the kernels use (relaxed SIMD picks the faster variant). */
export { hasWasmRelaxedSimd, hasWasmSimd } from '../core/wasm.ts';
export { KernelMemory, MAX_KERNEL_MEMORY_BYTES } from './memory.ts';

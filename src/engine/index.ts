/**
 * mixq/engine: mixq's own transformer executor (not to be confused with src/runtime, the adapters to
 * onnxruntime and llama.cpp). Decoder-only llama / gpt2 models from a GGUF of any ggml type mix or from
 * mixq's quantized safetensors, weights at their stored size in kernel memory, a KV cache, prefill and
 * decode steps returning logits, sampling, generation. Browser-safe; files and threads: mixq/node
 * (`openEngineModel`).
 *
 * @example
 *   const model = await loadEngineModel(await createKernels(), ggufModelSource(await readGguf(blobSource(file))));
 *   for await (const t of generateTokens(model, 'Once upon a time', { maxTokens: 64 })) out.append(t.text);
 */
export { type LoadOptions, type LoadReport, loadEngineModel } from './load.ts';
export {
  type EngineActivations,
  type EngineOps,
  EngineModel,
  type EngineOptions,
  type EngineTimes,
  KvCache,
  type LayerWeights,
  type ModelWeights,
  type NormWeights,
  type ProductInputHook,
  type ProductSite,
  type Projection,
} from './model.ts';
export { type CollectImatrixOptions, collectImatrix, imatrixFromSums, type ImatrixSums } from './imatrix.ts';
export { type RopeMode, type RopeParams } from './ops.ts';
export { argmaxRow, Sampler, type SamplingOptions } from './sampling.ts';
export {
  type DecodeSpeed,
  EngineSession,
  measureDecode,
  generateTokens,
  type GenerateOptions,
  type GeneratedToken,
  promptIds,
} from './session.ts';
export {
  engineFileSource,
  ggufModelSource,
  hfModelSource,
  type MixqStorage,
  type ModelSource,
  type RawStorage,
  type ReadInto,
  type StoredTensor,
} from './source.ts';
export {
  type CostEntry,
  type CostFormat,
  type CostOptions,
  type CostShape,
  costFormatName,
  costSource,
  measureCostTable,
} from './cost.ts';
export { referenceForward, type ReferenceWeights } from './reference.ts';

// Node-only entry point (`mixq/node`): file access and runtimes. Re-exports only.
export * from './io/files.node.ts';
export * from './export/gguf/gpt2.node.ts';
export * from './io/onnx/file.node.ts';
export * from './runtime/index.node.ts';
export * from './io/file-stream.node.ts';
export * from './io/llm/hf-folder.node.ts';
export * from './io/convert.node.ts';
export * from './runtime/bundled-stories.node.ts';
export * from './runtime/llama.node.ts';
export * from './runtime/lm-windows.ts';
export { createKernelPool, KernelPool, type KernelPoolOptions } from './kernels/pool.node.ts';
export { type LoadedModel, openEngineModel, type OpenModelOptions } from './engine/load.node.ts';
export { EngineLm, engineRunner, openEngineLm } from './runtime/engine-lm.node.ts';

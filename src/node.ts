// Node-only entry point (`mixq/node`): file access and runtimes. Re-exports only.
export * from './io/files.node.ts';
export * from './io/gguf/gpt2.node.ts';
export * from './io/onnx/file.node.ts';
export * from './runtime/index.node.ts';
export { createKernelPool, KernelPool, type KernelPoolOptions } from './kernels/pool.node.ts';

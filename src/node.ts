// Node-only entry point (`mixq/node`): file access and runtimes. Re-exports only.
export * from './io/files.node.ts';
export * from './export/gguf/gpt2.node.ts';
export * from './io/onnx/file.node.ts';
export * from './runtime/index.node.ts';

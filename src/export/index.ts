// Deployable outputs: quantized model files that run in other runtimes (ONNX, quantized safetensors, GGUF
// conversions of known models). Re-exports only.
export * from './gguf/gpt2.ts';
export * from './onnx/index.ts';
export * from './safetensors.ts';
export * from './engine-file.ts';

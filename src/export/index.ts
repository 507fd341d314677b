// Deployable outputs: quantized model files that run in other runtimes. Re-exports only.
export * from './onnx/index.ts';
export * from './safetensors.ts';

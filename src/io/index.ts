/**
 * Model file adapters: format sniffing and the one entry point that turns any supported file into the
 * format-neutral ModelView (open.ts), one adapter per file type (onnx/, gguf/, safetensors/), size limits,
 * conversions between the weight containers. Browser-safe: works on any ByteSource. Re-exports only.
 */
export * from './convert.ts';
export * from './gguf/index.ts';
export * from './limits.ts';
export * from './llm/index.ts';
export * from './names.ts';
export * from './open.ts';
export * from './onnx/index.ts';
export { ByteReader, NeedMoreBytes } from './reader.ts';
export * from './safetensors/index.ts';
export * from './source.ts';
export * from './summary.ts';

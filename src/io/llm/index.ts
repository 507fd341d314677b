/** Language models as they ship: configurations, tensor names, tokenizers, Hugging Face folders. */
export * from './config.ts';
export * from './hf-folder.ts';
export * from './names.ts';
export * from './onnx-decoder.ts';
export * from './tokenizer.ts';
export * from './tokenizer-gguf.ts';

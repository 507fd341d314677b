/** GGUF adapter: reader, writer, type tables, and the ModelView of a GGUF file. */
export * from './imatrix.ts';
export * from './read.ts';
export * from './requantize.ts';
export * from './types.ts';
export * from './view.ts';
export * from './write.ts';
export * from './kv-json.ts';

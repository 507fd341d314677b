/** safetensors adapter: reader, writer, dtype table, and the ModelView of a safetensors file. */
export * from './dtypes.ts';
export * from './read.ts';
export * from './view.ts';
export * from './write.ts';

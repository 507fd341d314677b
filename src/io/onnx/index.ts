/** ONNX adapter: read/write ModelProto, list and edit weights, build the ModelView. Browser-safe. */
export * from './clone.ts';
export * from './dtypes.ts';
export * from './inline.ts';
export * from './patch.ts';
export type * from './proto-types.ts';
export * from './read.ts';
export { ATTRIBUTE_TYPE_CODES, DATA_TYPE_CODES, modelProtoType, onnxMessageType } from './schema.ts';
export * from './tensor-data.ts';
export * from './view.ts';
export * from './walk.ts';
export * from './weights.ts';
export * from './external-write.ts';

/** Deployable quantized ONNX export (MatMulNBits, DequantizeLinear, GatherBlockQuantized, bit-plane packed). Browser-safe. */
export * from './activations.ts';
export * from './auto.ts';
export * from './fold-scales.ts';
export * from './layouts.ts';
export * from './opset.ts';
export * from './quantize.ts';
export { makeNode, makeTensor, opsetVersion, requireOpset } from './build.ts';
export * from './packed.ts';
export * from './dynamic-int8.ts';

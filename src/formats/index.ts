/**
 * mixq/formats: element number formats (floats of any shape, integers, codebooks) with one generic codec,
 * every rounding mode, and sub-byte packing. Block formats (MX, NVFP4, ggml) build on this in src/blocks.
 */
export type {
  CastOptions,
  FloatSpec,
  FormatSpec,
  IntSpec,
  LutSpec,
  NanEncoding,
  OverflowPolicy,
  Rounding,
} from './spec.ts';
export {
  type CodeArray,
  chop,
  chopReference,
  decode,
  decodeArray,
  encode,
  encodeArray,
  encoderOf,
  type FormatInfo,
  formatBits,
  formatInfo,
  lutSpec,
  valueTable,
} from './codec.ts';
export { type ChopBuffer, chopBuffer, kernelFloat32Array } from './chop-buffer.ts';
export { ALIASES, FORMATS, type FloatOverrides, getFormat, parseFormat, WIDE_FORMATS } from './registry.ts';
export { chop64, chop64Reference, chopNumber, decodeBig, encodeBig } from './round64.ts';
export { packCodes, packedBytes, unpackCodes } from './pack.ts';
export { nearestEvenEncoder, nearestEvenInt, roundToInteger } from './round.ts';
export { ROUNDINGS } from './rounding.ts';
export { intSpec } from './catalog/integers.ts';
export {
  bitLayout,
  codeListing,
  describeFormat,
  type FormatRow,
  formatNumber,
  formatTable,
} from './describe.ts';

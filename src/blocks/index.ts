/**
 * mixq/blocks: scaled block formats — ggml's GGUF block types (bit-exact with llama.cpp), OCP MX (each of
 * its scale rules) and NVFP4 — in one table (BLOCK_FORMATS; BLOCK_TYPES is its GGUF part). Element formats
 * come from mixq/formats.
 */
export {
  GGML_CODECS,
  type GgmlCodec,
  type GgmlTypeInfo,
  type GgmlTypeName,
  KVALUES_IQ4NL,
  KVALUES_MXFP4,
} from './ggml/index.ts';
export {
  e8m0Value,
  floorLog2F32,
  getMxFormat,
  MX_FORMATS,
  type MxFormat,
  type MxFormatName,
  type MxOptions,
  type MxScaleRule,
  mxBlockScale,
  mxDecode,
  mxEncode,
  mxFakeQuant,
  mxSharedExponent,
} from './mx.ts';
export {
  NVFP4,
  type Nvfp4Encoded,
  type Nvfp4Options,
  nvfp4AutoTensorScale,
  nvfp4BlockScale,
  nvfp4Decode,
  nvfp4Encode,
  nvfp4FakeQuant,
  nvfp4Quotient,
} from './nvfp4.ts';
export {
  BLOCK_FORMATS,
  BLOCK_TYPES,
  type BlockFormat,
  type BlockScaling,
  blockScalingFor,
  type BlockTypeName,
  type BlockTypeTraits,
  blockTypeById,
  getBlockFormat,
  getBlockType,
  rowBytes,
} from './registry.ts';

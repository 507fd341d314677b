/**
 * mixq/blocks: scaled block formats — ggml's GGUF block types (bit-exact with llama.cpp), OCP MX and
 * NVFP4 — and the traits table GGUF I/O uses. Element formats come from mixq/formats.
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
  nvfp4Decode,
  nvfp4Encode,
  nvfp4FakeQuant,
} from './nvfp4.ts';
export {
  BLOCK_TYPES,
  type BlockTypeName,
  type BlockTypeTraits,
  blockTypeById,
  getBlockType,
  rowBytes,
} from './registry.ts';

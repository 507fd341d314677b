/**
 * The ggml block codecs, one file per type, gathered in an explicit static table keyed by ggml's name.
 * Each entry offers ggml's three entry points: the ref quantizer (`quantize_row_<t>_ref`), the
 * `quantize_<t>(x, nrows, n_per_row, imatrix)` API (what llama-quantize runs) and the dequantizer.
 */
import { checkOutputBytes, checkRowsInput, type GgmlTypeInfo } from './common.ts';
import { dequantizeIQ4_NL, IQ4_NL_INFO, quantizeIQ4_NL, quantizeRefIQ4_NL } from './iq4_nl.ts';
import { dequantizeMXFP4, MXFP4_INFO, quantizeMXFP4, quantizeRefMXFP4 } from './mxfp4.ts';
import { dequantizeQ2_K, Q2_K_INFO, quantizeQ2_K, quantizeRefQ2_K } from './q2_k.ts';
import { dequantizeQ3_K, Q3_K_INFO, quantizeQ3_K, quantizeRefQ3_K } from './q3_k.ts';
import { dequantizeQ4_0, Q4_0_INFO, quantizeQ4_0, quantizeRefQ4_0 } from './q4_0.ts';
import { dequantizeQ4_1, Q4_1_INFO, quantizeQ4_1, quantizeRefQ4_1 } from './q4_1.ts';
import { dequantizeQ4_K, Q4_K_INFO, quantizeQ4_K, quantizeRefQ4_K } from './q4_k.ts';
import { dequantizeQ5_0, Q5_0_INFO, quantizeQ5_0, quantizeRefQ5_0 } from './q5_0.ts';
import { dequantizeQ5_1, Q5_1_INFO, quantizeQ5_1, quantizeRefQ5_1 } from './q5_1.ts';
import { dequantizeQ5_K, Q5_K_INFO, quantizeQ5_K, quantizeRefQ5_K } from './q5_k.ts';
import { dequantizeQ6_K, Q6_K_INFO, quantizeQ6_K, quantizeRefQ6_K } from './q6_k.ts';
import { dequantizeQ8_0, Q8_0_INFO, quantizeQ8_0, quantizeRefQ8_0 } from './q8_0.ts';
import { GGML_KERNEL_AVAILABLE, wasmDequantize, wasmQuantize, wasmQuantizeRef } from './wasm.ts';

export type { GgmlTypeInfo } from './common.ts';
export { KVALUES_IQ4NL } from './iq4_nl.ts';
export { e8m0ToF32Half, KVALUES_MXFP4 } from './mxfp4.ts';

/** One ggml block type: identity plus its reference encoder, imatrix-aware encoder and decoder. */
export interface GgmlCodec {
  readonly info: GgmlTypeInfo;
  /** `quantize_row_<t>_ref(x)`: `x.length` a positive multiple of the block size. */
  quantizeRef(x: Float32Array): Uint8Array;
  /**
   * `quantize_<t>(x, x.length / nPerRow, nPerRow, imatrix)`; `imatrix` has nPerRow weights or is null.
   * Equals quantizeRef when imatrix is null, except for IQ4_NL.
   */
  quantize(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array;
  /**
   * `quantize` into the caller's bytes (`out.length` = the encoded size of x; no allocation, so a tensor
   * written in pieces or again reuses one buffer); returns `out`.
   */
  quantizeInto(x: Float32Array, nPerRow: number, imatrix: Float32Array | null, out: Uint8Array): Uint8Array;
  /** `dequantize_row_<t>`: `n` values from exactly n / blockSize blocks. */
  dequantize(bytes: Uint8Array, n: number): Float32Array;
  /** `dequantize` into the caller's array (`out.length` values; no allocation); returns `out`. */
  dequantizeInto(bytes: Uint8Array, out: Float32Array): Float32Array;
}

/** dequantizeInto of a codec that only allocates (the references). */
const into =
  (dq: (bytes: Uint8Array, n: number) => Float32Array) =>
  (bytes: Uint8Array, out: Float32Array): Float32Array => {
    out.set(dq(bytes, out.length));
    return out;
  };

/** quantizeInto of a codec that only allocates (the references). */
const quantizeInto =
  (info: GgmlTypeInfo, q: (x: Float32Array, nPerRow: number, imatrix: Float32Array | null) => Uint8Array) =>
  (x: Float32Array, nPerRow: number, imatrix: Float32Array | null, out: Uint8Array): Uint8Array => {
    checkRowsInput(info, x, nPerRow, imatrix);
    checkOutputBytes(info, x.length, out);
    out.set(q(x, nPerRow, imatrix));
    return out;
  };

/** The plain TypeScript codecs: the reference every fast path is tested against. */
export const GGML_REFERENCE_CODECS = {
  Q4_0: {
    info: Q4_0_INFO,
    quantizeRef: quantizeRefQ4_0,
    quantize: quantizeQ4_0,
    quantizeInto: quantizeInto(Q4_0_INFO, quantizeQ4_0),
    dequantize: dequantizeQ4_0,
    dequantizeInto: into(dequantizeQ4_0),
  },
  Q4_1: {
    info: Q4_1_INFO,
    quantizeRef: quantizeRefQ4_1,
    quantize: quantizeQ4_1,
    quantizeInto: quantizeInto(Q4_1_INFO, quantizeQ4_1),
    dequantize: dequantizeQ4_1,
    dequantizeInto: into(dequantizeQ4_1),
  },
  Q5_0: {
    info: Q5_0_INFO,
    quantizeRef: quantizeRefQ5_0,
    quantize: quantizeQ5_0,
    quantizeInto: quantizeInto(Q5_0_INFO, quantizeQ5_0),
    dequantize: dequantizeQ5_0,
    dequantizeInto: into(dequantizeQ5_0),
  },
  Q5_1: {
    info: Q5_1_INFO,
    quantizeRef: quantizeRefQ5_1,
    quantize: quantizeQ5_1,
    quantizeInto: quantizeInto(Q5_1_INFO, quantizeQ5_1),
    dequantize: dequantizeQ5_1,
    dequantizeInto: into(dequantizeQ5_1),
  },
  Q8_0: {
    info: Q8_0_INFO,
    quantizeRef: quantizeRefQ8_0,
    quantize: quantizeQ8_0,
    quantizeInto: quantizeInto(Q8_0_INFO, quantizeQ8_0),
    dequantize: dequantizeQ8_0,
    dequantizeInto: into(dequantizeQ8_0),
  },
  Q2_K: {
    info: Q2_K_INFO,
    quantizeRef: quantizeRefQ2_K,
    quantize: quantizeQ2_K,
    quantizeInto: quantizeInto(Q2_K_INFO, quantizeQ2_K),
    dequantize: dequantizeQ2_K,
    dequantizeInto: into(dequantizeQ2_K),
  },
  Q3_K: {
    info: Q3_K_INFO,
    quantizeRef: quantizeRefQ3_K,
    quantize: quantizeQ3_K,
    quantizeInto: quantizeInto(Q3_K_INFO, quantizeQ3_K),
    dequantize: dequantizeQ3_K,
    dequantizeInto: into(dequantizeQ3_K),
  },
  Q4_K: {
    info: Q4_K_INFO,
    quantizeRef: quantizeRefQ4_K,
    quantize: quantizeQ4_K,
    quantizeInto: quantizeInto(Q4_K_INFO, quantizeQ4_K),
    dequantize: dequantizeQ4_K,
    dequantizeInto: into(dequantizeQ4_K),
  },
  Q5_K: {
    info: Q5_K_INFO,
    quantizeRef: quantizeRefQ5_K,
    quantize: quantizeQ5_K,
    quantizeInto: quantizeInto(Q5_K_INFO, quantizeQ5_K),
    dequantize: dequantizeQ5_K,
    dequantizeInto: into(dequantizeQ5_K),
  },
  Q6_K: {
    info: Q6_K_INFO,
    quantizeRef: quantizeRefQ6_K,
    quantize: quantizeQ6_K,
    quantizeInto: quantizeInto(Q6_K_INFO, quantizeQ6_K),
    dequantize: dequantizeQ6_K,
    dequantizeInto: into(dequantizeQ6_K),
  },
  IQ4_NL: {
    info: IQ4_NL_INFO,
    quantizeRef: quantizeRefIQ4_NL,
    quantize: quantizeIQ4_NL,
    quantizeInto: quantizeInto(IQ4_NL_INFO, quantizeIQ4_NL),
    dequantize: dequantizeIQ4_NL,
    dequantizeInto: into(dequantizeIQ4_NL),
  },
  MXFP4: {
    info: MXFP4_INFO,
    quantizeRef: quantizeRefMXFP4,
    quantize: quantizeMXFP4,
    quantizeInto: quantizeInto(MXFP4_INFO, quantizeMXFP4),
    dequantize: dequantizeMXFP4,
    dequantizeInto: into(dequantizeMXFP4),
  },
} as const satisfies Record<string, GgmlCodec>;

export type GgmlTypeName = keyof typeof GGML_REFERENCE_CODECS;

/** The same codecs through the WebAssembly kernel (native/blocks/ggml.c), byte for byte the reference. */
export function wasmCodec(reference: GgmlCodec): GgmlCodec {
  const t = reference.info;
  return {
    info: t,
    quantizeRef: (x) => wasmQuantizeRef(t, x),
    quantize: (x, nPerRow, imatrix) => wasmQuantize(t, x, nPerRow, imatrix),
    quantizeInto: (x, nPerRow, imatrix, out) => wasmQuantize(t, x, nPerRow, imatrix, out),
    dequantize: (bytes, n) => wasmDequantize(t, bytes, n),
    dequantizeInto: (bytes, out) => wasmDequantize(t, bytes, out.length, out),
  };
}

function mapCodecs(f: (c: GgmlCodec) => GgmlCodec): Readonly<Record<GgmlTypeName, GgmlCodec>> {
  const out = {} as Record<GgmlTypeName, GgmlCodec>;
  for (const name of Object.keys(GGML_REFERENCE_CODECS) as GgmlTypeName[]) {
    out[name] = f(GGML_REFERENCE_CODECS[name]);
  }
  return out;
}

/**
 * The codecs mixq uses: the WebAssembly kernel where the engine runs it (SIMD128: every current browser,
 * Node >= 16.4), else the TypeScript reference. Chosen once, here, at module load.
 */
export const GGML_CODECS: Readonly<Record<GgmlTypeName, GgmlCodec>> = GGML_KERNEL_AVAILABLE
  ? mapCodecs(wasmCodec)
  : GGML_REFERENCE_CODECS;

/**
 * The kernel registry: an explicit static table from every weight format the kernels run to its layout,
 * the activation modes it supports, its plain TypeScript reference (a row decoder; reference.ts turns it
 * into products) and the names of its WebAssembly kernels. No registration by import side effects.
 *
 * Activation modes:
 *   'f32'  float32 activations; every weight decoded to its exact value, products summed in float32.
 *   'q8'   activations quantized to int8 blocks of 32 (activations.ts), integer dot products per block,
 *          float32 scaling (llama.cpp's scheme for its types, whose block scale is fp16 for ggml weights as
 *          in llama.cpp's block_q8_0; MatMulNBits' accuracy_level 4 for mixq's formats).
 *   'q8k'  ggml's K-quants only: activations quantized as llama.cpp's Q8_K (blocks of 256, one float32
 *          scale, ggml's quantize_row_q8_K_ref, activations.ts), one exact integer sum per super-block and
 *          row, one float32 scaling: llama.cpp's scheme for the K-quants ("llama.cpp-exact" activations).
 *   'lut8' bit-plane lookup tables (T-MAC): int8 tables of sums of 4 activations (lut.ts).
 */
import { type Desc, LAYOUT, type LayoutName } from './layout.ts';
import { decodeDenseRow } from './dense.ts';
import { decodeGgmlRow } from './ggml.ts';
import { decodeLutRow } from './lut.ts';
import { decodeSlicedRow } from './sliced.ts';

export type ActivationMode = 'f32' | 'q8' | 'q8k' | 'lut8';

/** Kernel function names (exports of native/kernels/kernels.c) of one layout, per operation and mode. */
export interface LayoutKernels {
  readonly matvec: Partial<Readonly<Record<ActivationMode, string>>>;
  readonly matmul: Partial<Readonly<Record<ActivationMode, string>>>;
}

/**
 * A layout's reference decoder: row r of a weight as exact values. `values` is the element table of
 * sliced weights (unused by the others).
 */
export type LayoutDecoder = (
  bytes: Uint8Array,
  desc: Desc,
  values: Float32Array,
  r: number,
  out: Float64Array,
) => void;

const dense: LayoutKernels = { matvec: { f32: 'mv_dense' }, matmul: { f32: 'mm_dense' } };

/** Kernels and reference of every layout. */
export const LAYOUTS: Readonly<Record<LayoutName, { kernels: LayoutKernels; decode: LayoutDecoder }>> = {
  f32: { kernels: dense, decode: (b, d, _v, r, o) => decodeDenseRow(b, d, r, o) },
  f16: { kernels: dense, decode: (b, d, _v, r, o) => decodeDenseRow(b, d, r, o) },
  bf16: { kernels: dense, decode: (b, d, _v, r, o) => decodeDenseRow(b, d, r, o) },
  sliced: {
    kernels: {
      matvec: { f32: 'mv_sliced_f32', q8: 'mv_sliced_q8' },
      matmul: { f32: 'mm_sliced_f32', q8: 'mm_sliced_q8' },
    },
    decode: decodeSlicedRow,
  },
  ggml: {
    kernels: {
      matvec: { f32: 'mv_ggml_f32', q8: 'mv_ggml_q8', q8k: 'mv_ggml_q8k' },
      matmul: { f32: 'mm_ggml_f32', q8: 'mm_ggml_q8', q8k: 'mm_ggml_q8k' },
    },
    decode: (b, d, _v, r, o) => decodeGgmlRow(b, d, r, o),
  },
  lut: {
    kernels: { matvec: { lut8: 'mv_lut', q8: 'mv_lut_q8' }, matmul: { lut8: 'mm_lut', q8: 'mm_lut_q8' } },
    decode: (b, d, _v, r, o) => decodeLutRow(b, d, r, o),
  },
};

/** The layout name of a descriptor's layout code. */
export function layoutName(code: number): LayoutName {
  const e = Object.entries(LAYOUT).find(([, v]) => v === code);
  if (!e) throw new Error(`internal: layout code ${code}`);
  return e[0] as LayoutName;
}

/** One row of the format table. */
export interface KernelFormat {
  readonly layout: LayoutName;
  /** What the format is, where it comes from. */
  readonly description: string;
  /** Activation modes its kernels take (the first is the default). */
  readonly modes: readonly ActivationMode[];
}

const ggml = (description: string, modes: readonly ActivationMode[] = ['q8', 'f32']): KernelFormat => ({
  layout: 'ggml',
  description,
  modes,
});
/** K-quants: Q8_K activations by default (llama.cpp's scheme), the 32-blocks and float32 on request. */
const KQ: readonly ActivationMode[] = ['q8k', 'q8', 'f32'];
const sliced = (description: string, modes: readonly ActivationMode[]): KernelFormat => ({
  layout: 'sliced',
  description,
  modes,
});

/**
 * Every format the kernels run, by name: the name `formatKey` gives a prepared weight. The mixq formats
 * are families (any group size, any scale storage of the family).
 */
export const KERNEL_FORMATS = {
  f32: { layout: 'f32', description: 'float32 rows (GGUF F32, any float32 matrix)', modes: ['f32'] },
  f16: {
    layout: 'f16',
    description: 'float16 rows (GGUF F16, safetensors fp16 with scale none)',
    modes: ['f32'],
  },
  bf16: { layout: 'bf16', description: 'bfloat16 rows (GGUF BF16, safetensors bf16)', modes: ['f32'] },
  int: sliced('mixq int1..int8 / uint / narrow, per row or per group, fp32/fp16/bf16 scales, zero codes', [
    'q8',
    'f32',
  ]),
  'int-lut': {
    layout: 'lut',
    description: 'mixq int1..int4 in bit planes for the T-MAC lookup-table kernels',
    modes: ['lut8', 'q8'],
  },
  fp8_e4m3fn: sliced('FP8 E4M3 elements with their scales', ['f32']),
  fp8_e5m2: sliced('FP8 E5M2 elements with their scales', ['f32']),
  fp6_e3m2fn: sliced('FP6 E3M2 elements with their scales', ['f32']),
  fp6_e2m3fn: sliced('FP6 E2M3 elements (int8 table: 8 x value)', ['q8', 'f32']),
  fp4_e2m1fn: sliced('FP4 E2M1 elements (int8 table: 2 x value)', ['q8', 'f32']),
  mxfp8: sliced('OCP MXFP8 (E4M3 / E5M2, E8M0 scale per 32)', ['f32']),
  mxfp6: sliced('OCP MXFP6 (E3M2 / E2M3, E8M0 scale per 32)', ['f32', 'q8']),
  mxfp4: sliced('OCP MXFP4 (E2M1, E8M0 scale per 32)', ['q8', 'f32']),
  nvfp4: sliced('NVFP4 (E2M1, E4M3 scale per 16, float32 tensor scale)', ['q8', 'f32']),
  nf4: sliced('NF4 codebook (QLoRA) with its scales', ['f32']),
  minifloat: sliced('other float elements of <= 8 bits (eXmY)', ['f32']),
  codebook: sliced('other codebooks of <= 8 bits', ['f32']),
  Q8_0: ggml('ggml Q8_0 (int8, fp16 scale per 32), as stored in GGUF'),
  Q4_0: ggml('ggml Q4_0'),
  Q4_1: ggml('ggml Q4_1'),
  Q5_0: ggml('ggml Q5_0'),
  Q5_1: ggml('ggml Q5_1'),
  Q2_K: ggml('ggml Q2_K (super-blocks of 256)', KQ),
  Q3_K: ggml('ggml Q3_K', KQ),
  Q4_K: ggml('ggml Q4_K', KQ),
  Q5_K: ggml('ggml Q5_K', KQ),
  Q6_K: ggml('ggml Q6_K', KQ),
  IQ4_NL: ggml('ggml IQ4_NL (non-linear int8 table)'),
  MXFP4: ggml('ggml MXFP4 (gpt-oss layout)'),
} as const satisfies Record<string, KernelFormat>;

export type KernelFormatName = keyof typeof KERNEL_FORMATS;

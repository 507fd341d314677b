/**
 * The WebAssembly matrix kernels (native/quant/matrix.h) as TypeScript sees them: their exports, the gemm
 * flags, and what one thread's task part gets to work with.
 */
import { instantiateWasm, instantiateWasmSync } from '../../core/wasm.ts';
import { WASM_SIMD128 } from '../wasm/matrix.generated.ts';

/** sgemm / dgemm (native/quant/matrix.h): (flags, M, N, K, alpha, A, lda, B, ldb, C, ldc, triOff, kOff, work). */
export type GemmKernel = (
  flags: number,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: number,
  lda: number,
  B: number,
  ldb: number,
  C: number,
  ldc: number,
  triOff: number,
  kOff: number,
  work: number,
) => void;

/** scatter_transpose_f32 / _u16: (K, rows, src, lds, map, dst, ldd). */
export type ScatterTranspose = (
  K: number,
  rows: number,
  src: number,
  lds: number,
  map: number,
  dst: number,
  ldd: number,
) => void;

/** The kernels' exports (pointers are byte offsets into the engine's memory). */
export interface MatrixKernels {
  /** C (+)= alpha op(A) op(B), float32 (see GEMM for the flags). */
  sgemm: GemmKernel;
  /** The same in float64. */
  dgemm: GemmKernel;
  sgemm_work_floats(): number;
  dgemm_work_doubles(): number;
  chol_block(nb: number, A: number, lda: number, Linv: number, work: number): number;
  gather_lower_f64_to_f32(n: number, H: number, q: number, diag: number, A: number): void;
  gather_lower_f32(n: number, H: number, q: number, diag: number, A: number): void;
  sym_upper_scale_f32(d: number, G: number, f: number, r0: number, r1: number): void;
  reverse_f32(n: number, p: number): void;
  gptq_column(
    i: number,
    cnt: number,
    n: number,
    w: number,
    ld: number,
    q: number,
    u: number,
    w0: number,
    dcol: number,
  ): number;
  transpose_gather_f32(
    rows: number,
    cols: number,
    src: number,
    lds: number,
    map: number,
    dst: number,
    ldd: number,
  ): void;
  gptq_block_int(
    cnt: number,
    n: number,
    w: number,
    ld: number,
    U: number,
    ldu: number,
    scale: number,
    zero: number,
    ldp: number,
    groupOf: number,
    qmin: number,
    qmax: number,
    codeBase: number,
    w0: number,
    Qt: number,
    Ct: number,
  ): number;
  copy_f32(rows: number, cols: number, src: number, lds: number, dst: number, ldd: number): void;
  /** dst[r * ldd + map[k]] = src[k * lds + r] (float32 / uint16) */
  scatter_transpose_f32: ScatterTranspose;
  scatter_transpose_u16: ScatterTranspose;
  sym_upper_f32_to_f64(
    d: number,
    G: number,
    T: number,
    f: number,
    accumulate: number,
    r0: number,
    r1: number,
  ): void;
  ddot(n: number, a: number, b: number): number;
}

/** gemm flags (native/quant/matrix.h). */
export const GEMM = {
  /** op(A) = A^T */
  TA: 1,
  /** op(B) = B^T */
  TB: 2,
  /** C += ... (otherwise the computed part of C is overwritten) */
  ACC: 4,
  /** only tiles of C reaching j - i >= triOff */
  UPPER: 8,
  /** only tiles of C reaching j - i <= triOff */
  LOWER: 16,
  /** op(A)[i][k] is zero for k > i + kOff: the kernel may skip those products (the data must be zero) */
  ALOWER: 32,
  /** op(B)[k][j] is zero for k > j + kOff: the kernel may skip those products (the data must be zero) */
  BUPPER: 64,
} as const;

/** Bytes of scratch every thread owns: gemm packing (the larger of the f32 and f64 needs) + Cholesky blocks. */
export const WORK_BYTES = 2 << 20;
/** Bytes of the shadow stack of every thread's instance. */
export const STACK_BYTES = 256 << 10;

/** What a task part sees: its thread's kernels and scratch, and the shared memory. */
export interface ThreadContext {
  readonly kernels: MatrixKernels;
  readonly memory: WebAssembly.Memory;
  /** Byte offset of this thread's WORK_BYTES of scratch. */
  readonly work: number;
}

/**
 * Instantiates a kernel module (`base64`: the private-memory build by default, or the shared-memory build
 * of matrix-mt.generated.ts) on `memory`.
 */
export function instantiateKernels(
  memory: WebAssembly.Memory,
  base64: string = WASM_SIMD128,
): { kernels: MatrixKernels; heapBase: number; stackPointer: WebAssembly.Global | undefined } {
  return kernelExports(instantiateWasmSync(base64, { env: { memory } }));
}

/** instantiateKernels with an asynchronous compile (any thread of a browser). */
export async function instantiateKernelsAsync(
  memory: WebAssembly.Memory,
  base64: string = WASM_SIMD128,
): Promise<{ kernels: MatrixKernels; heapBase: number; stackPointer: WebAssembly.Global | undefined }> {
  return kernelExports(await instantiateWasm(base64, { env: { memory } }));
}

function kernelExports(inst: WebAssembly.Instance) {
  const ex = inst.exports as unknown as MatrixKernels & {
    __heap_base: WebAssembly.Global;
    __stack_pointer?: WebAssembly.Global;
  };
  return { kernels: ex, heapBase: ex.__heap_base.value as number, stackPointer: ex.__stack_pointer };
}

/**
 * The fast path of the ggml codecs: native/blocks/ggml.c compiled to WebAssembly SIMD128
 * (src/blocks/wasm/ggml.generated.ts), byte for byte the TypeScript reference of the type files
 * (test/blocks/ggml-fast.test.ts ties them on the golden rows and on random and extreme inputs).
 *
 * The module runs one call at a time on its own memory: inputs are copied in chunks of at most
 * CHUNK_VALUES values (whole rows when an imatrix is given, since the imatrix paths use row statistics),
 * encoded, and the bytes copied out, so memory stays bounded whatever the tensor size. Instantiated at
 * module load; index.ts picks this path then when it is available (GGML_KERNEL_AVAILABLE).
 */
import { hasWasmSimd, instantiateWasmSync } from '../../core/wasm.ts';
import { WASM_SIMD128 } from '../wasm/ggml.generated.ts';
import { checkDecodeInput, checkEncodeInput, checkOutputBytes, checkRowsInput } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';

interface GgmlKernel {
  readonly memory: WebAssembly.Memory;
  ggml_heap_base(): number;
  ggml_mxfp4_thresholds(): number;
  ggml_quantize(
    type: number,
    mode: number,
    x: number,
    nrow: number,
    nPerRow: number,
    qw: number,
    out: number,
    first: number,
  ): number;
  ggml_dequantize(type: number, q: number, y: number, n: number): number;
}

/** Values per kernel call (a multiple of every block size): 256 KiB of float32, stays in L2. */
const CHUNK_VALUES = 1 << 16;
const PAGE = 65536;

/** ggml_quantize modes. */
const MODE_REF = 0;
const MODE_API = 1;
const MODE_IMATRIX = 2;

/**
 * The kernel, instantiated once at module load where the engine has SIMD128 and allows a synchronous
 * compile of this size (a browser main thread may refuse one); undefined otherwise.
 */
const kernel: GgmlKernel | undefined = loadKernel();

function loadKernel(): GgmlKernel | undefined {
  if (!hasWasmSimd()) return undefined;
  try {
    const k = instantiateWasmSync(WASM_SIMD128).exports as unknown as GgmlKernel;
    new Float32Array(k.memory.buffer, k.ggml_mxfp4_thresholds(), 277).set(mxfp4Thresholds());
    return k;
  } catch {
    return undefined;
  }
}

/** Whether the WebAssembly kernel runs here (index.ts then makes it GGML_CODECS). */
export const GGML_KERNEL_AVAILABLE: boolean = kernel !== undefined;

function getKernel(): GgmlKernel {
  if (kernel === undefined) throw new Error('the ggml WebAssembly kernel is not available on this engine');
  return kernel;
}

/** Grows the module's memory so that [heap base, heap base + bytes) is usable; returns the base. */
function reserve(k: GgmlKernel, bytes: number): number {
  const base = (k.ggml_heap_base() + 15) & ~15;
  const need = base + bytes;
  const have = k.memory.buffer.byteLength;
  if (need > have) k.memory.grow(Math.ceil((need - have) / PAGE));
  return base;
}

const align16 = (n: number): number => (n + 15) & ~15;

/**
 * The MXFP4 shared exponent uses floor(fround(Math.log2(amax))), as the reference: the binary exponent
 * k of amax, plus one from the threshold on where the float32 rounding of log2 reaches k + 1. Entry
 * k + 149 (k = -149..127) is the smallest float of [2^k, 2^(k+1)) whose rounded log2 floors above k,
 * +Infinity when none does (found by bisection: log2 and rounding are monotone).
 */
export function mxfp4Thresholds(): Float32Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const valueOf = (bits: number): number => {
    u[0] = bits;
    return f[0]!;
  };
  const floorLog2 = (bits: number): number => Math.floor(Math.fround(Math.log2(valueOf(bits))));
  const powBits = (k: number): number => (k >= -126 ? (k + 127) << 23 : 1 << (k + 149));
  const t = new Float32Array(277);
  for (let k = -149; k <= 127; k++) {
    let lo = powBits(k);
    let hi = (k === 127 ? 0x7f800000 : powBits(k + 1)) - 1;
    if (floorLog2(hi) <= k) {
      t[k + 149] = Infinity;
      continue;
    }
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (floorLog2(mid) > k) hi = mid;
      else lo = mid + 1;
    }
    t[k + 149] = valueOf(lo);
  }
  return t;
}

function encode(
  t: GgmlTypeInfo,
  mode: number,
  x: Float32Array,
  nPerRow: number,
  qw: Float32Array | null,
  into?: Uint8Array,
): Uint8Array {
  const k = getKernel();
  // rows are only a unit of work with an imatrix; otherwise any whole number of blocks per call
  const unit = qw ? nPerRow : t.blockSize;
  const perCall = Math.max(unit, Math.floor(CHUNK_VALUES / unit) * unit);
  const outBytesPer = (n: number): number => (n / t.blockSize) * t.bytesPerBlock;
  const xBytes = align16(4 * perCall);
  const qwBytes = qw ? align16(4 * nPerRow) : 0;
  const base = reserve(k, xBytes + qwBytes + align16(outBytesPer(perCall)));
  const xPtr = base;
  const qwPtr = base + xBytes;
  const outPtr = qwPtr + qwBytes;
  if (qw) new Float32Array(k.memory.buffer, qwPtr, nPerRow).set(qw);
  if (into) checkOutputBytes(t, x.length, into);
  const out = into ?? new Uint8Array(outBytesPer(x.length));
  for (let start = 0; start < x.length; start += perCall) {
    const n = Math.min(perCall, x.length - start);
    new Float32Array(k.memory.buffer, xPtr, n).set(x.subarray(start, start + n));
    const rows = qw ? n / nPerRow : 1;
    const rc = k.ggml_quantize(
      t.typeId,
      mode,
      xPtr,
      rows,
      n / rows,
      qw ? qwPtr : 0,
      outPtr,
      start === 0 ? 1 : 0,
    );
    if (rc !== 0) throw new Error(`ggml kernel: unknown type ${t.name}`);
    out.set(new Uint8Array(k.memory.buffer, outPtr, outBytesPer(n)), outBytesPer(start));
  }
  return out;
}

/** `quantize_row_<t>_ref` through the kernel (checks as the reference). */
export function wasmQuantizeRef(t: GgmlTypeInfo, x: Float32Array): Uint8Array {
  checkEncodeInput(t, x);
  return encode(t, MODE_REF, x, x.length, null);
}

/**
 * `quantize_<t>(x, nrows, nPerRow, imatrix)` through the kernel (checks as the reference), into `out`
 * when given (its exact encoded size).
 */
export function wasmQuantize(
  t: GgmlTypeInfo,
  x: Float32Array,
  nPerRow: number,
  imatrix: Float32Array | null,
  out?: Uint8Array,
): Uint8Array {
  checkRowsInput(t, x, nPerRow, imatrix);
  return imatrix
    ? encode(t, MODE_IMATRIX, x, nPerRow, imatrix, out)
    : encode(t, MODE_API, x, nPerRow, null, out);
}

/** `dequantize_row_<t>` through the kernel (checks as the reference), into `out` when given. */
export function wasmDequantize(
  t: GgmlTypeInfo,
  bytes: Uint8Array,
  n: number,
  out?: Float32Array,
): Float32Array {
  checkDecodeInput(t, bytes, n);
  const k = getKernel();
  const perCall = Math.min(n, CHUNK_VALUES);
  const inBytesPer = (m: number): number => (m / t.blockSize) * t.bytesPerBlock;
  const qBytes = align16(inBytesPer(perCall));
  const base = reserve(k, qBytes + 4 * perCall);
  const qPtr = base;
  const yPtr = base + qBytes;
  const y = out ?? new Float32Array(n);
  for (let start = 0; start < n; start += perCall) {
    const m = Math.min(perCall, n - start);
    const b0 = inBytesPer(start);
    new Uint8Array(k.memory.buffer, qPtr, inBytesPer(m)).set(bytes.subarray(b0, b0 + inBytesPer(m)));
    if (k.ggml_dequantize(t.typeId, qPtr, yPtr, m) !== 0)
      throw new Error(`ggml kernel: unknown type ${t.name}`);
    y.set(new Float32Array(k.memory.buffer, yPtr, m), start);
  }
  return y;
}

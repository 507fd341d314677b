/**
 * Outlier / salient-weight handling with its storage counted.
 *
 * (a) LLM.int8()-style decomposition (Dettmers et al. 2022): input channels whose activation absmax
 *     exceeds `threshold` (6.0 in the paper) stay in fp16; the remaining columns are quantized as a
 *     compact [rows, cols - k] matrix. Storage: that matrix + 16 bits per kept weight + 32 bits per
 *     kept channel index.
 * (b) Salient weights as a sparse fp16 side matrix (SpQR / SqueezeLLM dense-and-sparse idea): the top-k
 *     weights by saliency are removed from the dense matrix before its scales are chosen (so they no longer
 *     stretch the range) and kept in CSR: fp16 values, column indices (16 bits when cols <= 65536, else
 *     32) and rows + 1 row pointers of 32 bits. Saliency: 'activation' = |w_ij| * actScale_j (AWQ's
 *     notion); 'hessian' = (w_ij - rtn(w)_ij)^2 * H_jj, the error the weight would add to the layer output.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../core/bits.ts';
import { MixqError } from '../../core/errors.ts';
import { chooseQParams, type QuantizerConfig } from '../qparams.ts';
import { fakeQuant, fakeQuantWith, storageCost } from '../quantizer.ts';

const f16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

export interface Int8DecompositionConfig {
  readonly quantizer: QuantizerConfig;
  /** Activation absmax above which a channel stays fp16. Default 6. */
  readonly threshold?: number;
}

export interface OutlierResult {
  /** Effective dequantized weight [rows, cols]. */
  readonly Q: Float32Array;
  /** Exact storage of everything (dense part, fp16 side data, indices). */
  readonly bits: number;
  readonly bitsPerWeight: number;
}

export interface Int8DecompositionResult extends OutlierResult {
  readonly outlierChannels: Int32Array;
}

/** LLM.int8-style split of W [rows, cols] by activation absmax per input channel. */
export function int8Decomposition(
  W: Float32Array,
  rows: number,
  cols: number,
  actAbsMax: Float32Array,
  cfg: Int8DecompositionConfig,
): Int8DecompositionResult {
  if (actAbsMax.length !== cols)
    throw new MixqError('actAbsMax length', { field: 'actAbsMax', expected: String(cols) });
  const threshold = cfg.threshold ?? 6;
  const outl: number[] = [];
  const rest: number[] = [];
  for (let j = 0; j < cols; j++) (actAbsMax[j]! > threshold ? outl : rest).push(j);
  const k = rest.length;
  const dense = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) for (let t = 0; t < k; t++) dense[r * k + t] = W[r * cols + rest[t]!]!;
  const dq = k > 0 ? fakeQuant(dense, [rows, k], cfg.quantizer) : dense;
  const Q = new Float32Array(W.length);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < k; t++) Q[r * cols + rest[t]!] = dq[r * k + t]!;
    for (const j of outl) Q[r * cols + j] = f16(W[r * cols + j]!);
  }
  const bits = (k > 0 ? storageCost(cfg.quantizer, [rows, k]).bits : 0) + outl.length * (16 * rows + 32);
  return { Q, bits, bitsPerWeight: bits / (rows * cols), outlierChannels: Int32Array.from(outl) };
}

export interface SalientConfig {
  readonly quantizer: QuantizerConfig;
  /** Number of weights kept, or give `fraction` of all weights. */
  readonly count?: number;
  readonly fraction?: number;
  readonly criterion: 'activation' | 'hessian';
}

export interface SalientStats {
  /**
   * Activation scale (e.g. mean |x| or rms) for 'activation': one per column (length cols), or one per
   * element (length rows * cols) when columns read different channels in different rows (grouped convs).
   */
  readonly actScale?: Float32Array | Float64Array;
  /** diag(H) for 'hessian': one per column (length cols) or one per element (length rows * cols). */
  readonly hessianDiag?: Float32Array | Float64Array;
}

/** Sparse fp16 side matrix in CSR form. */
export interface CsrMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly rowPtr: Uint32Array;
  readonly colIdx: Uint32Array;
  /** fp16-rounded values. */
  readonly values: Float32Array;
}

export interface SalientResult extends OutlierResult {
  readonly sparse: CsrMatrix;
}

/**
 * Storage bits of a CSR side matrix of `nnz` values in a [rows, cols] matrix: fp16 values, column indices
 * of 16 bits (cols <= 65536) or 32, and rows + 1 row pointers of 32 bits. Always whole bytes.
 */
export function csrStorageBits(rows: number, cols: number, nnz: number): number {
  const idxBits = cols <= 65536 ? 16 : 32;
  return nnz * (16 + idxBits) + (rows + 1) * 32;
}

/** Storage bits of a CSR side matrix (fp16 values, 16/32-bit column indices, 32-bit row pointers). */
export function csrBits(m: CsrMatrix): number {
  return csrStorageBits(m.rows, m.cols, m.values.length);
}

/** How many weights salientSparse keeps: round(count ?? fraction * n), clamped to [0, n] (fraction 0.01 by default). */
export function salientCount(
  rows: number,
  cols: number,
  cfg: Pick<SalientConfig, 'count' | 'fraction'>,
): number {
  const n = rows * cols;
  return Math.min(n, Math.max(0, Math.round(cfg.count ?? (cfg.fraction ?? 0.01) * n)));
}

/**
 * Exact storage of salientSparse's result on a [rows, cols] weight, known before quantizing: the dense
 * quantizer's storageCost plus the CSR side matrix of salientCount values. `bytes` rounds the dense part's
 * sections as storageCost does (the CSR part is whole bytes).
 */
export function salientStorage(
  quantizer: QuantizerConfig,
  rows: number,
  cols: number,
  cfg: Pick<SalientConfig, 'count' | 'fraction'>,
): { count: number; bits: number; bytes: number } {
  const count = salientCount(rows, cols, cfg);
  const dense = storageCost(quantizer, [rows, cols]);
  const csr = csrStorageBits(rows, cols, count);
  return { count, bits: dense.bits + csr, bytes: dense.bytes + csr / 8 };
}

/** Reader of a per-column or per-element statistic as a function of the element index. */
function perElement(
  a: Float32Array | Float64Array | undefined,
  rows: number,
  cols: number,
  field: string,
): (i: number) => number {
  if (a && a.length === cols) return (i) => a[i % cols]!;
  if (a && a.length === rows * cols) return (i) => a[i]!;
  throw new MixqError(`${field} needed`, {
    field,
    expected: `${cols} values (one per column) or ${rows * cols} (one per element)`,
  });
}

/** Dense-and-sparse quantization of W [rows, cols] keeping the most salient weights in fp16. */
export function salientSparse(
  W: Float32Array,
  rows: number,
  cols: number,
  stats: SalientStats,
  cfg: SalientConfig,
): SalientResult {
  const n = rows * cols;
  const k = salientCount(rows, cols, cfg);
  const sal = new Float64Array(n);
  if (cfg.criterion === 'activation') {
    const a = perElement(stats.actScale, rows, cols, 'actScale');
    for (let i = 0; i < n; i++) sal[i] = Math.abs(W[i]!) * a(i);
  } else {
    const h = perElement(stats.hessianDiag, rows, cols, 'hessianDiag');
    const q = fakeQuant(W, [rows, cols], cfg.quantizer);
    for (let i = 0; i < n; i++) sal[i] = (W[i]! - q[i]!) ** 2 * h(i);
  }
  // the k largest saliencies: threshold from a typed-array sort, ties broken by element order
  const keep = new Uint8Array(n);
  if (k > 0) {
    const thr = Float64Array.from(sal).sort()[n - k]!;
    let taken = 0;
    for (let i = 0; i < n; i++) {
      if (sal[i]! > thr) {
        keep[i] = 1;
        taken++;
      }
    }
    for (let i = 0; i < n && taken < k; i++) {
      if (sal[i] === thr) {
        keep[i] = 1;
        taken++;
      }
    }
  }
  const dense = Float32Array.from(W);
  for (let i = 0; i < n; i++) if (keep[i]) dense[i] = 0;
  const params = chooseQParams(dense, [rows, cols], cfg.quantizer);
  const Q = fakeQuantWith(dense, params);
  const rowPtr = new Uint32Array(rows + 1);
  const colIdx = new Uint32Array(k);
  const values = new Float32Array(k);
  let p = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j;
      if (!keep[i]) continue;
      colIdx[p] = j;
      values[p] = f16(W[i]!);
      Q[i] = values[p]!;
      p++;
    }
    rowPtr[r + 1] = p;
  }
  const sparse: CsrMatrix = { rows, cols, rowPtr, colIdx, values };
  const bits = salientStorage(cfg.quantizer, rows, cols, cfg).bits;
  return { Q, sparse, bits, bitsPerWeight: bits / n };
}

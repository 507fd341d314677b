/**
 * Shared pieces of the ggml block codecs: float32 rounding helpers, fp16 fields, the type record, input
 * checks and the row driver of the `quantize_<t>(src, dst, nrow, n_per_row, imatrix)` API.
 *
 * Source: ggml-quants.c / ggml-impl.h of ggml (github.com/ggml-org/ggml, d99724f, version 0.21.0), the
 * scalar reference path. ggml computes in float32 with every operation rounded separately (no FMA, no
 * fast-math), so every arithmetic step here is wrapped in `Math.fround` (`fr`); computing a single + - * /
 * or sqrt in double and rounding once gives exactly the float32 result (53 >= 2*24 + 2).
 * (`nearest_int` and GROUP_MAX_EPS live in solvers.ts, next to their hot loops.)
 */
import { f16BitsToF32, f32ToF16Bits } from '../../core/bits.ts';
import { MixqError } from '../../core/errors.ts';

export const fr = Math.fround;

/** C `roundf`: nearest, ties away from zero (Q8_0 uses it; `Math.round` would round -2.5 to -2). */
export function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** Stores `x` as little-endian IEEE fp16 (round to nearest even, as GGML_FP32_TO_FP16). */
export function writeF16(out: Uint8Array, offset: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[offset] = h & 0xff;
  out[offset + 1] = h >>> 8;
}

/** Reads a little-endian fp16 field as a float (exact). */
export function readF16(bytes: Uint8Array, offset: number): number {
  return f16BitsToF32(bytes[offset]! | (bytes[offset + 1]! << 8));
}

/** The value an fp16 field holds after storing `x` (GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(x))). */
export function roundTripF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** Identity of one ggml block type (GGUF tensor type id, geometry). */
export interface GgmlTypeInfo {
  /** Canonical name as in ggml's enum (`Q4_K`, `IQ4_NL`). */
  readonly name: string;
  /** enum ggml_type value = GGUF tensor type id. */
  readonly typeId: number;
  /** Weights per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly bytesPerBlock: number;
}

/** Throws unless `x` is a non-empty whole number of blocks. */
export function checkEncodeInput(t: GgmlTypeInfo, x: Float32Array): void {
  if (x.length === 0 || x.length % t.blockSize !== 0) {
    throw new MixqError(`cannot encode ${x.length} values`, {
      source: t.name,
      field: 'x.length',
      expected: `a positive multiple of ${t.blockSize}`,
    });
  }
}

/** Throws unless `n` is a positive multiple of the block size and `bytes` holds exactly n/blockSize blocks. */
export function checkDecodeInput(t: GgmlTypeInfo, bytes: Uint8Array, n: number): void {
  if (!Number.isInteger(n) || n <= 0 || n % t.blockSize !== 0) {
    throw new MixqError(`cannot decode ${n} values`, {
      source: t.name,
      field: 'n',
      expected: `a positive multiple of ${t.blockSize}`,
    });
  }
  const want = (n / t.blockSize) * t.bytesPerBlock;
  if (bytes.length !== want) {
    throw new MixqError(`got ${bytes.length} bytes for ${n} values`, {
      source: t.name,
      field: 'bytes.length',
      expected: String(want),
    });
  }
}

/**
 * The shape of ggml's `quantize_<t>(src, dst, nrow, n_per_row, imatrix)`: with no imatrix the whole input
 * goes through `withoutImatrix` (the ref quantizer for every type but IQ4_NL); with one, each row of
 * `nPerRow` values goes through `rowWithImatrix`, because the imatrix path uses whole-row statistics.
 */
export function quantizeRows(
  t: GgmlTypeInfo,
  x: Float32Array,
  nPerRow: number,
  imatrix: Float32Array | null,
  withoutImatrix: (x: Float32Array) => Uint8Array,
  rowWithImatrix: (row: Float32Array, imatrix: Float32Array, out: Uint8Array) => void,
): Uint8Array {
  checkRowsInput(t, x, nPerRow, imatrix);
  if (imatrix === null) return withoutImatrix(x);
  const rowBytes = (nPerRow / t.blockSize) * t.bytesPerBlock;
  const nrows = x.length / nPerRow;
  const out = new Uint8Array(nrows * rowBytes);
  for (let r = 0; r < nrows; r++) {
    rowWithImatrix(
      x.subarray(r * nPerRow, (r + 1) * nPerRow),
      imatrix,
      out.subarray(r * rowBytes, (r + 1) * rowBytes),
    );
  }
  return out;
}

/** The caller's output of quantizeInto: exactly the encoded size of `n` values. */
export function checkOutputBytes(t: GgmlTypeInfo, n: number, out: Uint8Array): void {
  const want = (n / t.blockSize) * t.bytesPerBlock;
  if (out.length !== want)
    throw new MixqError(`output of ${out.length} bytes for ${n} values`, {
      source: t.name,
      field: 'out.length',
      expected: `${want} (${t.bytesPerBlock} bytes per ${t.blockSize} values)`,
    });
}

/**
 * The argument checks of `quantize_<t>(x, nPerRow, imatrix)`: whole blocks per row, whole rows, and an
 * imatrix (when given) of one weight per column.
 */
export function checkRowsInput(
  t: GgmlTypeInfo,
  x: Float32Array,
  nPerRow: number,
  imatrix: Float32Array | null,
): void {
  if (!Number.isInteger(nPerRow) || nPerRow <= 0 || nPerRow % t.blockSize !== 0) {
    throw new MixqError(`bad row length ${nPerRow}`, {
      source: t.name,
      field: 'nPerRow',
      expected: `a positive multiple of ${t.blockSize}`,
    });
  }
  if (x.length === 0 || x.length % nPerRow !== 0) {
    throw new MixqError(`cannot split ${x.length} values into rows`, {
      source: t.name,
      field: 'x.length',
      expected: `a positive multiple of ${nPerRow}`,
    });
  }
  if (imatrix !== null && imatrix.length !== nPerRow) {
    throw new MixqError(`imatrix has ${imatrix.length} weights`, {
      source: t.name,
      field: 'imatrix.length',
      expected: String(nPerRow),
    });
  }
}

/** float32 sum of squares in index order, as ggml's `for (...) sum += x[j]*x[j]`. */
export function sumSquares(x: Float32Array, start: number, end: number): number {
  let s = 0;
  for (let j = start; j < end; j++) s = fr(s + fr(x[j]! * x[j]!));
  return s;
}

/**
 * Importance weights of the imatrix path: `qw[j] * sqrtf(sigma2 + x[j]^2)` for j in [0, n), written into
 * `out` and returning their float32 sum (accumulated in order, as the K-quants' `sw[j]`).
 */
export function imatrixWeights(
  qw: Float32Array,
  qwOffset: number,
  x: Float32Array,
  xOffset: number,
  sigma2: number,
  n: number,
  out: Float32Array,
): number {
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const v = x[xOffset + j]!;
    const w = fr(qw[qwOffset + j]! * fr(Math.sqrt(fr(sigma2 + fr(v * v)))));
    out[j] = w;
    sum = fr(sum + w);
  }
  return sum;
}

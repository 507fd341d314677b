/**
 * What ggml's 32-weight blocks share (the "legacy" quants Q4_0, Q4_1, Q5_0, Q5_1, and the nibble layout
 * of IQ4_NL and MXFP4): the two ref rules (symmetric: d = max/-nmax; affine: d = (max-min)/nmax), the
 * imatrix row walk, the 4-bit and 5-bit level packing and the nibble-table decode.
 *
 * Source: ggml-quants.c (ggml-org/ggml d99724f): quantize_row_q{4,5}_{0,1}_ref,
 * quantize_row_q{4,5}_{0,1}_impl, dequantize_row_iq4_nl / mxfp4. Float32 step by step, as in
 * common.ts.
 */
import { imatrixWeights, sumSquares, writeF16 } from './common.ts';
import { makeQkxQuants, maxByMagnitude as importedMaxByMagnitude, QKX_IMATRIX_SEARCH } from './solvers.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const maxByMagnitude = importedMaxByMagnitude;

const FLT_MAX = 3.4028234663852886e38;

/**
 * Symmetric ref rule of Q4_0/Q5_0 for the block x[xb..xb+32): d = max / -nmax (max = the value of largest
 * magnitude, so it lands exactly on level 0), stored as fp16 at out[o]. Returns 1/d (0 for d = 0) for
 * symmetricRefLevel.
 */
export function symmetricRefScale(
  x: Float32Array,
  xb: number,
  nmax: number,
  out: Uint8Array,
  o: number,
): number {
  const d = fr(maxByMagnitude(x, xb, xb + 32) / -nmax);
  writeF16(out, o, d);
  return d !== 0 ? fr(1 / d) : 0;
}

/** The level of v under the symmetric ref rule: min(2*nmax - 1, trunc(v/d + nmax + 0.5)), truncation as ggml. */
export function symmetricRefLevel(v: number, id: number, nmax: number): number {
  return Math.min(2 * nmax - 1, Math.trunc(fr(fr(v * id) + (nmax + 0.5))));
}

const minAndInverse = new Float64Array(2);

/**
 * Affine ref rule of Q4_1/Q5_1 for the block x[xb..xb+32): d = (max - min)/nmax and m = min, stored as
 * fp16 at out[o], out[o+2]. Returns [min, 1/d (0 for d = 0)] (a shared scratch) for affineRefLevel.
 */
export function affineRefScale(
  x: Float32Array,
  xb: number,
  nmax: number,
  out: Uint8Array,
  o: number,
): Float64Array {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < 32; j++) {
    const v = x[xb + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const d = fr(fr(max - min) / nmax);
  writeF16(out, o, d);
  writeF16(out, o + 2, min);
  minAndInverse[0] = min;
  minAndInverse[1] = d !== 0 ? fr(1 / d) : 0;
  return minAndInverse;
}

/**
 * The unclamped level trunc((v - min)/d + 0.5) of the affine ref rule; Q4_1 clamps it to 15
 * (MIN(15, (int8_t)...)), Q5_1 keeps 8 bits ((uint8_t)..., no clamp), as in ggml.
 */
export function affineRefLevel(v: number, min: number, id: number): number {
  return Math.trunc(fr(fr(fr(v - min) * id) + 0.5));
}

const weights = new Float32Array(32);

/**
 * The imatrix path of Q4_0/Q4_1/Q5_0/Q5_1 over one row: sigma2 is the mean square of the whole row, block
 * ib gets the importance weights qw*sqrt(sigma2 + x^2) and then `fit(xs, weights, ib)` with xs its 32 values.
 */
export function forEachBlock32WithImatrix(
  x: Float32Array,
  qw: Float32Array,
  fit: (xs: Float32Array, weights: Float32Array, ib: number) => void,
): void {
  const sigma2 = fr(sumSquares(x, 0, x.length) / x.length);
  for (let ib = 0; ib < x.length / 32; ib++) {
    imatrixWeights(qw, ib * 32, x, ib * 32, sigma2, 32, weights);
    fit(x.subarray(ib * 32, ib * 32 + 32), weights, ib);
  }
}

const Laux = new Uint8Array(32);
const minOut = new Float32Array(1);

/**
 * Imatrix rule of Q4_1/Q5_1 for one block: make_qkx3_quants on the imatrix grid; stores d and m = min
 * as fp16 at out[o], out[o+2] and the levels (0..nmax) in L.
 */
export function affineImatrixBlock32(
  xs: Float32Array,
  w: Float32Array,
  nmax: number,
  out: Uint8Array,
  o: number,
  L: Uint8Array,
): void {
  const d = makeQkxQuants(32, nmax, xs, w, L, minOut, 0, Laux, QKX_IMATRIX_SEARCH);
  writeF16(out, o, d);
  writeF16(out, o + 2, -minOut[0]!);
}

/** 32 four-bit levels into 16 bytes at out[o]: byte j holds q[j] (low nibble) and q[j+16] (high). */
export function packNibbles32(q: Int32Array | Int8Array | Uint8Array, out: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) out[o + j] = q[j]! | (q[j + 16]! << 4);
}

/** Decodes the 16 nibble bytes at bytes[qs] as y[yb + j] = table[q[j]] * d (the order of packNibbles32). */
export function decodeNibbles32(
  bytes: Uint8Array,
  qs: number,
  d: number,
  table: Int8Array,
  y: Float32Array,
  yb: number,
): void {
  for (let j = 0; j < 16; j++) {
    const q = bytes[qs + j]!;
    y[yb + j] = table[q & 0xf]! * d;
    y[yb + j + 16] = table[q >> 4]! * d;
  }
}

/** Packs 32 five-bit levels into qh (u32 LE at o: bit j = 5th bit of q[j]) and qs (16 bytes at o + 4). */
export function packQ5(L: Int32Array | Int8Array | Uint8Array, out: Uint8Array, o: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const q0 = L[j]!;
    const q1 = L[j + 16]!;
    out[o + 4 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
    qh |= ((q0 & 0x10) >> 4) << j;
    qh |= ((q1 & 0x10) >> 4) << (j + 16);
  }
  out[o] = qh & 0xff;
  out[o + 1] = (qh >>> 8) & 0xff;
  out[o + 2] = (qh >>> 16) & 0xff;
  out[o + 3] = (qh >>> 24) & 0xff;
}

/** Unpacks the 32 five-bit levels written by packQ5. */
export function unpackQ5(bytes: Uint8Array, o: number, L: Int32Array): void {
  const qh = (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const q = bytes[o + 4 + j]!;
    L[j] = (q & 0x0f) | (((qh >>> j) << 4) & 0x10);
    L[j + 16] = (q >> 4) | ((qh >>> (j + 12)) & 0x10);
  }
}

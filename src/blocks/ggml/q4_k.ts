/**
 * Q4_K — ggml's 4-bit K-quant super-block (the "Q4_K_M" workhorse). Source: ggml-quants.c
 * (ggml-org/ggml d99724f): quantize_row_q4_K_ref, quantize_row_q4_K_impl (imatrix), dequantize_row_q4_K,
 * get_scale_min_k4.
 *
 *   super-block (144 bytes per 256 weights = 4.5 bits per weight), 8 sub-blocks of 32
 *   [0,2)     d       fp16 LE (scale of the scale levels)
 *   [2,4)     dmin    fp16 LE (scale of the min levels)
 *   [4,16)    scales  8 scale + 8 min levels, 6 bits each: for j<4 byte j = scale, byte j+4 = min
 *                     (low 6 bits); for j>=4 byte j+4 holds the low nibbles, and the top 2 bits ride in
 *                     bits 6-7 of bytes j-4 (scale) and j (min)
 *   [16,144)  qs      4-bit levels: 64-element chunk c uses qs[32c..32c+32), low nibbles first
 *   value     y = d*sc * q - dmin*m
 */
import {
  checkDecodeInput,
  checkEncodeInput,
  imatrixWeights,
  quantizeRows,
  readF16,
  sumSquares,
  writeF16,
} from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import { makeQkxQuants, makeQpQuants, nearestInt } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q4_K_INFO: GgmlTypeInfo = { name: 'Q4_K', typeId: 12, blockSize: 256, bytesPerBlock: 144 };

/** Packs the 6-bit scale level `ls` and min level `lm` of sub-block j into the 12 bytes at `s`. */
export function putScaleMinK4(out: Uint8Array, s: number, j: number, ls: number, lm: number): void {
  if (j < 4) {
    out[s + j] = ls;
    out[s + j + 4] = lm;
  } else {
    out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    out[s + j - 4] = out[s + j - 4]! | ((ls >> 4) << 6);
    out[s + j] = out[s + j]! | ((lm >> 4) << 6);
  }
}

/** get_scale_min_k4: the scale level (returned) and min level (in `minOut[0]`) of sub-block j. */
export function getScaleMinK4(q: Uint8Array, s: number, j: number, minOut: Int32Array): number {
  if (j < 4) {
    minOut[0] = q[s + j + 4]! & 63;
    return q[s + j]! & 63;
  }
  minOut[0] = (q[s + j + 4]! >> 4) | ((q[s + j]! >> 6) << 4);
  return (q[s + j + 4]! & 0xf) | ((q[s + j - 4]! >> 6) << 4);
}

/**
 * Turns the 8 sub-block scales/mins into 6-bit levels with the ref rule (nearest of 63/max), stores
 * them with d = maxScale/63 and dmin = maxMin/63 at offset o. Shared by Q4_K and Q5_K.
 */
export function storeScalesRefK(out: Uint8Array, o: number, scales: Float32Array, mins: Float32Array): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // C: uint8_t ls = nearest_int(...); ls = MIN(63, ls) — the cast keeps 8 bits first
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
    putScaleMinK4(out, o + 4, j, ls, lm);
  }
  writeF16(out, o, fr(maxScale / 63));
  writeF16(out, o + 2, fr(maxMin / 63));
}

const minLevel = new Int32Array(1);

/** Re-derives the levels in [0, nmax] of 256 values from the stored d, dmin and 6-bit levels. */
export function requantizeK(
  x: Float32Array,
  xb: number,
  out: Uint8Array,
  o: number,
  nmax: number,
  L: Uint8Array,
): void {
  const dAll = readF16(out, o);
  const mAll = readF16(out, o + 2);
  for (let j = 0; j < 8; j++) {
    const sc = getScaleMinK4(out, o + 4, j, minLevel);
    const d = fr(dAll * sc);
    if (d === 0) continue;
    const dm = fr(mAll * minLevel[0]!);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[xb + 32 * j + ii]! + dm) / d));
      L[32 * j + ii] = l < 0 ? 0 : Math.min(l, nmax);
    }
  }
}

const L = new Uint8Array(256);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const mins = new Float32Array(8);
const scales = new Float32Array(8);
const sw = new Float32Array(8);
const Ls = new Uint8Array(8);
const Lm = new Uint8Array(8);

function pack(out: Uint8Array, o: number): void {
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + l + 32]! << 4);
  }
}

/** quantize_row_q4_K_ref: `x.length` a multiple of 256. */
export function quantizeRefQ4_K(x: Float32Array): Uint8Array {
  checkEncodeInput(Q4_K_INFO, x);
  const nb = x.length / 256;
  const out = new Uint8Array(nb * 144);
  for (let i = 0; i < nb; i++) {
    const xb = i * 256;
    const o = i * 144;
    for (let j = 0; j < 8; j++) {
      const s = xb + 32 * j;
      const avX = fr(Math.sqrt(fr(sumSquares(x, s, s + 32) / 32)));
      for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[s + l]!));
      const xs = x.subarray(s, s + 32);
      scales[j] = makeQkxQuants(
        32,
        15,
        xs,
        weights,
        L.subarray(32 * j),
        mins,
        j,
        Laux,
        fr(-1),
        fr(0.1),
        20,
        false,
      );
    }
    storeScalesRefK(out, o, scales, mins);
    requantizeK(x, xb, out, o, 15, L);
    pack(out, o);
  }
  return out;
}

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  const nb = x.length / 256;
  for (let i = 0; i < nb; i++) {
    const xb = i * 256;
    const o = i * 144;
    const sigma2 = fr(fr(2 * sumSquares(x, xb, xb + 256)) / 256);
    for (let j = 0; j < 8; j++) {
      const s = xb + 32 * j;
      sw[j] = imatrixWeights(qw, s, x, s, sigma2, 32, weights);
      const xs = x.subarray(s, s + 32);
      scales[j] = makeQkxQuants(
        32,
        15,
        xs,
        weights,
        L.subarray(32 * j),
        mins,
        j,
        Laux,
        fr(-0.9),
        fr(0.05),
        36,
        false,
      );
    }
    const dBlock = makeQpQuants(8, 63, scales, Ls, sw);
    const mBlock = makeQpQuants(8, 63, mins, Lm, sw);
    for (let j = 0; j < 8; j++) putScaleMinK4(out, o + 4, j, Ls[j]!, Lm[j]!);
    writeF16(out, o, dBlock);
    writeF16(out, o + 2, mBlock);
    requantizeK(x, xb, out, o, 15, L);
    pack(out, o);
  }
}

/** quantize_q4_K(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ4_K(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q4_K_INFO, x, nPerRow, imatrix, quantizeRefQ4_K, rowWithImatrix);
}

/** dequantize_row_q4_K: `n` values from n/256 super-blocks. */
export function dequantizeQ4_K(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q4_K_INFO, bytes, n);
  const y = new Float32Array(n);
  const m = new Int32Array(1);
  let k = 0;
  for (let i = 0; i < n / 256; i++) {
    const o = i * 144;
    const d = readF16(bytes, o);
    const min = readF16(bytes, o + 2);
    for (let c = 0; c < 4; c++) {
      const d1 = fr(d * getScaleMinK4(bytes, o + 4, 2 * c, m));
      const m1 = fr(min * m[0]!);
      const d2 = fr(d * getScaleMinK4(bytes, o + 4, 2 * c + 1, m));
      const m2 = fr(min * m[0]!);
      const q = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) y[k++] = fr(d1 * (bytes[q + l]! & 0xf)) - m1;
      for (let l = 0; l < 32; l++) y[k++] = fr(d2 * (bytes[q + l]! >> 4)) - m2;
    }
  }
  return y;
}

/**
 * Q3_K — ggml's 3-bit K-quant super-block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q3_K_ref, quantize_row_q3_K_impl (imatrix path), dequantize_row_q3_K.
 *
 *   super-block (110 bytes per 256 weights = 3.4375 bits per weight), 16 sub-blocks of 16
 *   [0,32)    hmask   high bit of each level: element e is bit e/32 of hmask[e%32]
 *   [32,96)   qs      low 2 bits, arranged as Q2_K's qs
 *   [96,108)  scales  16 signed 6-bit scales (+32 bias): low nibbles in bytes 0..7 (j<8: low half,
 *                     j>=8: high half of byte j-8), top 2 bits of scale j in byte 8 + j%4 at bit 2*(j/4)
 *   [108,110) d       fp16 LE
 *   value     y = d * (sc - 32) * (q - 4)   with q = low2 | high << 2 in [0, 7]
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
import { pack2BitLevels } from './kquant-common.ts';
import { makeQ3Quants, makeQxQuants, nearestInt } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q3_K_INFO: GgmlTypeInfo = { name: 'Q3_K', typeId: 11, blockSize: 256, bytesPerBlock: 110 };

const L = new Int8Array(256);
const scales = new Float32Array(16);
const weight = new Float32Array(16);
const sw = new Float32Array(16);
const Ls = new Int8Array(16);

/** Writes the 6-bit biased scale level `l` (0..63) of sub-block j into the 12 scale bytes at `s`. */
function putScale(out: Uint8Array, s: number, j: number, l: number): void {
  if (j < 8) out[s + j] = l & 0xf;
  else out[s + j - 8] = out[s + j - 8]! | ((l & 0xf) << 4);
  out[s + 8 + (j % 4)] = out[s + 8 + (j % 4)]! | ((l >> 4) << (2 * (j >> 2)));
}

/** The biased 6-bit scale level of sub-block j (0..63). */
function getScale(bytes: Uint8Array, s: number, j: number): number {
  const low = j < 8 ? bytes[s + j]! & 0xf : bytes[s + j - 8]! >> 4;
  return low | (((bytes[s + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4);
}

/** Re-derives the levels from the stored scales, splits off the high bit into hmask and packs. */
function requantizeAndPack(x: Float32Array, xb: number, out: Uint8Array, o: number): void {
  const dAll = readF16(out, o + 108);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * (getScale(out, o + 96, j) - 32));
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(x[xb + 16 * j + ii]! / d));
      L[16 * j + ii] = (l < -4 ? -4 : Math.min(l, 3)) + 4;
    }
  }
  out.fill(0, o, o + 32);
  let m = 0;
  let hm = 1;
  for (let j = 0; j < 256; j++) {
    if (L[j]! > 3) {
      out[o + m] = out[o + m]! | hm;
      L[j] = L[j]! - 4;
    }
    if (++m === 32) {
      m = 0;
      hm <<= 1;
    }
  }
  pack2BitLevels(L, out, o + 32);
}

/** quantize_row_q3_K_ref: `x.length` a multiple of 256. */
export function quantizeRefQ3_K(x: Float32Array): Uint8Array {
  checkEncodeInput(Q3_K_INFO, x);
  const nb = x.length / 256;
  const out = new Uint8Array(nb * 110);
  for (let i = 0; i < nb; i++) {
    const xb = i * 256;
    const o = i * 110;
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, x.subarray(xb + 16 * j, xb + 16 * j + 16), L.subarray(16 * j), true);
      const scale = Math.abs(scales[j]!);
      if (scale > amax) {
        amax = scale;
        maxScale = scales[j]!;
      }
    }
    if (maxScale !== 0) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l8 = (nearestInt(fr(iscale * scales[j]!)) << 24) >> 24; // C: int8_t l = nearest_int(...)
        putScale(out, o + 96, j, (l8 < -32 ? -32 : Math.min(l8, 31)) + 32);
      }
      writeF16(out, o + 108, fr(1 / iscale));
    } else {
      writeF16(out, o + 108, 0);
    }
    requantizeAndPack(x, xb, out, o);
  }
  return out;
}

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  const nb = x.length / 256;
  for (let i = 0; i < nb; i++) {
    const xb = i * 256;
    const o = i * 110;
    const sigma2 = fr(fr(2 * sumSquares(x, xb, xb + 256)) / 256);
    for (let j = 0; j < 16; j++) {
      sw[j] = imatrixWeights(qw, xb + 16 * j, x, xb + 16 * j, sigma2, 16, weight);
      scales[j] = makeQxQuants(
        16,
        4,
        x.subarray(xb + 16 * j, xb + 16 * j + 16),
        L.subarray(16 * j),
        1,
        weight,
      );
    }
    const dBlock = makeQxQuants(16, 32, scales, Ls, 1, sw);
    for (let j = 0; j < 16; j++) putScale(out, o + 96, j, Ls[j]!);
    writeF16(out, o + 108, dBlock);
    requantizeAndPack(x, xb, out, o);
  }
}

/** quantize_q3_K(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ3_K(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q3_K_INFO, x, nPerRow, imatrix, quantizeRefQ3_K, rowWithImatrix);
}

/** dequantize_row_q3_K: `n` values from n/256 super-blocks. */
export function dequantizeQ3_K(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q3_K_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const o = i * 110;
    const dAll = readF16(bytes, o + 108);
    for (let e = 0; e < 256; e++) {
      const dl = fr(dAll * (getScale(bytes, o + 96, e >> 4) - 32));
      const h = e >> 7; // which 128-half
      const r = e & 127;
      const low = (bytes[o + 32 + 32 * h + (r & 31)]! >> (2 * (r >> 5))) & 3;
      const high = (bytes[o + (e & 31)]! >> (e >> 5)) & 1;
      y[i * 256 + e] = dl * (low - (high ? 0 : 4));
    }
  }
  return y;
}

/**
 * Q2_K — ggml's 2-bit K-quant super-block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q2_K_ref, quantize_row_q2_K_impl (imatrix path), dequantize_row_q2_K.
 *
 *   super-block (84 bytes per 256 weights = 2.625 bits per weight), 16 sub-blocks of 16
 *   [0,16)   scales  byte j: low nibble = scale level of sub-block j, high nibble = min level
 *   [16,80)  qs      2-bit levels; element 128h + 32s + l sits in qs[32h + l] bits 2s..2s+1
 *   [80,82)  d       fp16 LE (scale of the scale levels)
 *   [82,84)  dmin    fp16 LE (scale of the min levels)
 *   value    y = d*sc * q - dmin*m
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16, sumSquares, writeF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import { fitSubBlocksImatrix, fitSubBlocksRef, pack2BitLevels } from './kquant-common.ts';
import { makeQpQuants, nearestInt } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q2_K_INFO: GgmlTypeInfo = { name: 'Q2_K', typeId: 10, blockSize: 256, bytesPerBlock: 84 };

/** The ref quantizer's make_qkx2_quants grid: weighted absolute error (weights |x|). */
const REF_SEARCH = { rmin: fr(-0.5), rdelta: fr(0.1), nstep: 15, useMad: true };

const L = new Uint8Array(256);
const Ls = new Uint8Array(16);
const Lm = new Uint8Array(16);

/** Re-derives the 2-bit levels from the stored (fp16-rounded) scales, then packs them. */
function requantizeAndPack(x: Float32Array, xb: number, out: Uint8Array, o: number): void {
  const dAll = readF16(out, o + 80);
  const mAll = readF16(out, o + 82);
  for (let j = 0; j < 16; j++) {
    const sc = out[o + j]!;
    const d = fr(dAll * (sc & 0xf));
    if (d === 0) continue;
    const dm = fr(mAll * (sc >> 4));
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(fr(x[xb + 16 * j + ii]! + dm) / d));
      L[16 * j + ii] = l < 0 ? 0 : Math.min(l, 3);
    }
  }
  pack2BitLevels(L, out, o + 16);
}

/** quantize_row_q2_K_ref: `x.length` a multiple of 256. */
export function quantizeRefQ2_K(x: Float32Array): Uint8Array {
  checkEncodeInput(Q2_K_INFO, x);
  const nb = x.length / 256;
  const out = new Uint8Array(nb * 84);
  for (let i = 0; i < nb; i++) {
    const xb = i * 256;
    const o = i * 84;
    const { scales, mins } = fitSubBlocksRef(x, xb, 16, 16, 3, REF_SEARCH, false, L);
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) out[o + j] = nearestInt(fr(iscale * scales[j]!)) & 0xff;
      writeF16(out, o + 80, fr(maxScale / 15));
    } else {
      for (let j = 0; j < 16; j++) out[o + j] = 0;
      writeF16(out, o + 80, 0);
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++)
        out[o + j] = (out[o + j]! | (nearestInt(fr(iscale * mins[j]!)) << 4)) & 0xff;
      writeF16(out, o + 82, fr(maxMin / 15));
    } else {
      writeF16(out, o + 82, 0);
    }
    requantizeAndPack(x, xb, out, o);
  }
  return out;
}

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  const nb = x.length / 256;
  for (let i = 0; i < nb; i++) {
    const xb = i * 256;
    const o = i * 84;
    const sigma2 = fr(sumSquares(x, xb, xb + 256) / 256);
    const { scales, mins, sw } = fitSubBlocksImatrix(x, xb, qw, sigma2, 16, 16, 3, L);
    const dm = makeQpQuants(16, 15, scales, Ls, sw);
    const mm = makeQpQuants(16, 15, mins, Lm, sw);
    writeF16(out, o + 80, dm);
    writeF16(out, o + 82, mm);
    for (let j = 0; j < 16; j++) out[o + j] = (Ls[j]! | (Lm[j]! << 4)) & 0xff;
    requantizeAndPack(x, xb, out, o);
  }
}

/** quantize_q2_K(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ2_K(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q2_K_INFO, x, nPerRow, imatrix, quantizeRefQ2_K, rowWithImatrix);
}

/** dequantize_row_q2_K: `n` values from n/256 super-blocks. */
export function dequantizeQ2_K(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q2_K_INFO, bytes, n);
  const y = new Float32Array(n);
  let k = 0;
  for (let i = 0; i < n / 256; i++) {
    const o = i * 84;
    const d = readF16(bytes, o + 80);
    const min = readF16(bytes, o + 82);
    let is = 0;
    for (let h = 0; h < 2; h++) {
      const q = o + 16 + 32 * h;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const sc = bytes[o + is++]!;
          const dl = fr(d * (sc & 0xf));
          const ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) y[k++] = fr(dl * ((bytes[q + half + l]! >> shift) & 3)) - ml;
        }
      }
    }
  }
  return y;
}

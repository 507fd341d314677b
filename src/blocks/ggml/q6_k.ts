/**
 * Q6_K — ggml's 6-bit K-quant super-block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q6_K_ref, quantize_row_q6_K_impl (imatrix path), dequantize_row_q6_K.
 *
 *   super-block (210 bytes per 256 weights = 6.5625 bits per weight), 16 sub-blocks of 16
 *   [0,128)    ql      low 4 bits: in 128-half h, element 128h + 32s + l (s<4, l<32) is in
 *                      ql[64h + l + 32*(s&1)], low nibble for s<2, high nibble for s>=2
 *   [128,192)  qh      high 2 bits: element 128h + 32s + l is in qh[32h + l] bits 2s..2s+1
 *   [192,208)  scales  int8[16] per sub-block
 *   [208,210)  d       fp16 LE
 *   value      y = d * sc * (q - 32)
 *
 * The imatrix path feeds the raw imatrix to make_qx_quants (no sigma2 term), as ggml does.
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16, writeF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import { GROUP_MAX_EPS, makeQxQuants, nearestInt } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q6_K_INFO: GgmlTypeInfo = { name: 'Q6_K', typeId: 14, blockSize: 256, bytesPerBlock: 210 };

const L = new Int8Array(256);
const scales = new Float32Array(16);

function quantizeBlock(
  x: Float32Array,
  xb: number,
  qw: Float32Array | null,
  qwb: number,
  out: Uint8Array,
  o: number,
): void {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = xb + 16 * ib;
    const w = qw ? qw.subarray(qwb + 16 * ib, qwb + 16 * ib + 16) : null;
    const scale = makeQxQuants(16, 32, x.subarray(s, s + 16), L.subarray(16 * ib), 1, w);
    scales[ib] = scale;
    const absScale = Math.abs(scale);
    if (absScale > maxAbsScale) {
      maxAbsScale = absScale;
      maxScale = scale;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    out.fill(0, o, o + 210);
    return;
  }
  const iscale = fr(-128 / maxScale);
  writeF16(out, o + 208, fr(1 / iscale));
  for (let ib = 0; ib < 16; ib++)
    out[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
  const dAll = readF16(out, o + 208);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * ((out[o + 192 + j]! << 24) >> 24));
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(x[xb + 16 * j + ii]! / d));
      L[16 * j + ii] = (l < -32 ? -32 : Math.min(l, 31)) + 32;
    }
  }
  for (let h = 0; h < 2; h++) {
    const j = 128 * h;
    const ql = o + 64 * h;
    const qh = o + 128 + 32 * h;
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l]!;
      const q2 = L[j + l + 32]!;
      const q3 = L[j + l + 64]!;
      const q4 = L[j + l + 96]!;
      out[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      out[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

/** quantize_row_q6_K_ref: `x.length` a multiple of 256. */
export function quantizeRefQ6_K(x: Float32Array): Uint8Array {
  checkEncodeInput(Q6_K_INFO, x);
  const nb = x.length / 256;
  const out = new Uint8Array(nb * 210);
  for (let i = 0; i < nb; i++) quantizeBlock(x, i * 256, null, 0, out, i * 210);
  return out;
}

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < x.length / 256; i++) quantizeBlock(x, i * 256, qw, i * 256, out, i * 210);
}

/** quantize_q6_K(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ6_K(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q6_K_INFO, x, nPerRow, imatrix, quantizeRefQ6_K, rowWithImatrix);
}

/** dequantize_row_q6_K: `n` values from n/256 super-blocks. */
export function dequantizeQ6_K(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q6_K_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const o = i * 210;
    const d = readF16(bytes, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const sc = o + 192 + 8 * h;
      const yb = i * 256 + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const hb = bytes[qh + l]!;
        const q1 = ((bytes[ql + l]! & 0xf) | ((hb & 3) << 4)) - 32;
        const q2 = ((bytes[ql + l + 32]! & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
        const q3 = ((bytes[ql + l]! >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        const q4 = ((bytes[ql + l + 32]! >> 4) | (((hb >> 6) & 3) << 4)) - 32;
        y[yb + l] = fr(d * ((bytes[sc + is]! << 24) >> 24)) * q1;
        y[yb + l + 32] = fr(d * ((bytes[sc + is + 2]! << 24) >> 24)) * q2;
        y[yb + l + 64] = fr(d * ((bytes[sc + is + 4]! << 24) >> 24)) * q3;
        y[yb + l + 96] = fr(d * ((bytes[sc + is + 6]! << 24) >> 24)) * q4;
      }
    }
  }
  return y;
}

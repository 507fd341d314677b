/**
 * Q4_K — ggml's 4-bit K-quant super-block (the "Q4_K_M" workhorse). Source: ggml-quants.c
 * (ggml-org/ggml d99724f): quantize_row_q4_K_ref, quantize_row_q4_K_impl (imatrix), dequantize_row_q4_K.
 * The scale search and 6-bit scale packing, shared with Q5_K, are in kquant-common.ts.
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
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import type { SuperBlockK } from './kquant-common.ts';
import { encodeSuperBlockK, getScaleMinK4 as importedGetScaleMinK4 } from './kquant-common.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const getScaleMinK4 = importedGetScaleMinK4;

export const Q4_K_INFO: GgmlTypeInfo = { name: 'Q4_K', typeId: 12, blockSize: 256, bytesPerBlock: 144 };

const Q4_K: SuperBlockK = {
  nmax: 15,
  refSearch: { rmin: fr(-1), rdelta: fr(0.1), nstep: 20, useMad: false },
  clampImatrixLevels: false,
};

const L = new Uint8Array(256);

/** Encodes all super-blocks of x (ref rule when qw is null) into out. */
function encode(x: Float32Array, qw: Float32Array | null, out: Uint8Array): void {
  for (let i = 0; i < x.length / 256; i++) {
    const o = i * 144;
    encodeSuperBlockK(Q4_K, x, i * 256, qw, out, o, L);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + l + 32]! << 4);
    }
  }
}

/** quantize_row_q4_K_ref: `x.length` a multiple of 256. */
export function quantizeRefQ4_K(x: Float32Array): Uint8Array {
  checkEncodeInput(Q4_K_INFO, x);
  const out = new Uint8Array((x.length / 256) * 144);
  encode(x, null, out);
  return out;
}

/** quantize_q4_K(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ4_K(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q4_K_INFO, x, nPerRow, imatrix, quantizeRefQ4_K, encode);
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

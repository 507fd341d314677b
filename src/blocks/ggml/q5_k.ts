/**
 * Q5_K — ggml's 5-bit K-quant super-block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q5_K_ref, quantize_row_q5_K_impl (imatrix path), dequantize_row_q5_K. The scale search and
 * 6-bit scale packing, shared with Q4_K, are in kquant-common.ts.
 *
 *   super-block (176 bytes per 256 weights = 5.5 bits per weight), 8 sub-blocks of 32
 *   [0,2)     d       fp16 LE
 *   [2,4)     dmin    fp16 LE
 *   [4,16)    scales  8 scale + 8 min 6-bit levels, packed as Q4_K
 *   [16,48)   qh      5th bit: element 64c + l (l<32) is bit 2c of qh[l], element 64c + 32 + l bit 2c+1
 *   [48,176)  qs      low 4 bits, arranged as Q4_K's qs
 *   value     y = d*sc * q - dmin*m
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import type { SuperBlockK } from './kquant-common.ts';
import { encodeSuperBlockK, getScaleMinK4 as importedGetScaleMinK4 } from './kquant-common.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const getScaleMinK4 = importedGetScaleMinK4;

export const Q5_K_INFO: GgmlTypeInfo = { name: 'Q5_K', typeId: 13, blockSize: 256, bytesPerBlock: 176 };

const Q5_K: SuperBlockK = {
  nmax: 31,
  refSearch: { rmin: fr(-0.5), rdelta: fr(0.1), nstep: 15, useMad: false },
  clampImatrixLevels: true,
};

const L = new Uint8Array(256);

function pack(out: Uint8Array, o: number): void {
  out.fill(0, o + 16, o + 48);
  let m1 = 1;
  let m2 = 2;
  for (let c = 0; c < 4; c++) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[64 * c + j]!;
      if (l1 > 15) {
        l1 -= 16;
        out[o + 16 + j] = out[o + 16 + j]! | m1;
      }
      let l2 = L[64 * c + j + 32]!;
      if (l2 > 15) {
        l2 -= 16;
        out[o + 16 + j] = out[o + 16 + j]! | m2;
      }
      out[o + 48 + 32 * c + j] = l1 | (l2 << 4);
    }
    m1 <<= 2;
    m2 <<= 2;
  }
}

/** Encodes all super-blocks of x (ref rule when qw is null) into out. */
function encode(x: Float32Array, qw: Float32Array | null, out: Uint8Array): void {
  for (let i = 0; i < x.length / 256; i++) {
    encodeSuperBlockK(Q5_K, x, i * 256, qw, out, i * 176, L);
    pack(out, i * 176);
  }
}

/** quantize_row_q5_K_ref: `x.length` a multiple of 256. */
export function quantizeRefQ5_K(x: Float32Array): Uint8Array {
  checkEncodeInput(Q5_K_INFO, x);
  const out = new Uint8Array((x.length / 256) * 176);
  encode(x, null, out);
  return out;
}

/** quantize_q5_K(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ5_K(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q5_K_INFO, x, nPerRow, imatrix, quantizeRefQ5_K, encode);
}

/** dequantize_row_q5_K: `n` values from n/256 super-blocks. */
export function dequantizeQ5_K(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q5_K_INFO, bytes, n);
  const y = new Float32Array(n);
  const m = new Int32Array(1);
  let k = 0;
  for (let i = 0; i < n / 256; i++) {
    const o = i * 176;
    const d = readF16(bytes, o);
    const min = readF16(bytes, o + 2);
    let u1 = 1;
    let u2 = 2;
    for (let c = 0; c < 4; c++) {
      const d1 = fr(d * getScaleMinK4(bytes, o + 4, 2 * c, m));
      const m1 = fr(min * m[0]!);
      const d2 = fr(d * getScaleMinK4(bytes, o + 4, 2 * c + 1, m));
      const m2 = fr(min * m[0]!);
      const ql = o + 48 + 32 * c;
      for (let l = 0; l < 32; l++)
        y[k++] = fr(d1 * ((bytes[ql + l]! & 0xf) + (bytes[o + 16 + l]! & u1 ? 16 : 0))) - m1;
      for (let l = 0; l < 32; l++)
        y[k++] = fr(d2 * ((bytes[ql + l]! >> 4) + (bytes[o + 16 + l]! & u2 ? 16 : 0))) - m2;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
  return y;
}

/**
 * Q5_0 — ggml's symmetric 5-bit block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q5_0_ref, quantize_row_q5_0_impl (imatrix path), dequantize_row_q5_0.
 *
 *   block (22 bytes per 32 weights = 5.5 bits per weight)
 *   [0,2)   d   fp16 LE
 *   [2,6)   qh  u32 LE: bit j = 5th bit of q[j]
 *   [6,22)  qs  byte j: low nibble = low 4 bits of q[j], high nibble = of q[j+16]
 *   value   y = (q - 16) * d
 *
 * Ref: d = max / -16 and q = min(31, trunc(x/d + 16.5)). Imatrix path: make_qx_quants with nmax 16.
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
import { makeQxQuants } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q5_0_INFO: GgmlTypeInfo = { name: 'Q5_0', typeId: 6, blockSize: 32, bytesPerBlock: 22 };

/** Packs 32 five-bit levels into qh (u32 LE at o) and qs (16 bytes at o + 4). */
export function packQ5(L: ArrayLike<number>, out: Uint8Array, o: number): void {
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

const scratchQ = new Int32Array(32);

/** quantize_row_q5_0_ref: `x.length` a multiple of 32. */
export function quantizeRefQ5_0(x: Float32Array): Uint8Array {
  checkEncodeInput(Q5_0_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 22);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[xb + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = i * 22;
    writeF16(out, o, d);
    for (let j = 0; j < 32; j++) scratchQ[j] = Math.min(31, Math.trunc(fr(fr(x[xb + j]! * id) + 16.5)));
    packQ5(scratchQ, out, o + 2);
  }
  return out;
}

const scratchW = new Float32Array(32);
const scratchL = new Int8Array(32);

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  const sigma2 = fr(sumSquares(x, 0, x.length) / x.length);
  const nb = x.length / 32;
  for (let ib = 0; ib < nb; ib++) {
    imatrixWeights(qw, ib * 32, x, ib * 32, sigma2, 32, scratchW);
    const d = makeQxQuants(32, 16, x.subarray(ib * 32, ib * 32 + 32), scratchL, 1, scratchW);
    writeF16(out, ib * 22, d);
    packQ5(scratchL, out, ib * 22 + 2);
  }
}

/** quantize_q5_0(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ5_0(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q5_0_INFO, x, nPerRow, imatrix, quantizeRefQ5_0, rowWithImatrix);
}

/** dequantize_row_q5_0: `n` values from n/32 blocks. */
export function dequantizeQ5_0(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q5_0_INFO, bytes, n);
  const y = new Float32Array(n);
  const q = new Int32Array(32);
  for (let i = 0; i < n / 32; i++) {
    const d = readF16(bytes, i * 22);
    unpackQ5(bytes, i * 22 + 2, q);
    for (let j = 0; j < 32; j++) y[i * 32 + j] = (q[j]! - 16) * d;
  }
  return y;
}

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
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16, writeF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import {
  forEachBlock32WithImatrix,
  packQ5 as importedPackQ5,
  symmetricRefLevel as importedSymmetricRefLevel,
  symmetricRefScale as importedSymmetricRefScale,
  unpackQ5 as importedUnpackQ5,
} from './legacy-common.ts';
import { makeQxQuants } from './solvers.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const packQ5 = importedPackQ5;
const symmetricRefScale = importedSymmetricRefScale;
const level = importedSymmetricRefLevel;
const unpackQ5 = importedUnpackQ5;

export const Q5_0_INFO: GgmlTypeInfo = { name: 'Q5_0', typeId: 6, blockSize: 32, bytesPerBlock: 22 };

const scratchQ = new Int32Array(32);

/** quantize_row_q5_0_ref: `x.length` a multiple of 32. */
export function quantizeRefQ5_0(x: Float32Array): Uint8Array {
  checkEncodeInput(Q5_0_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 22);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    const id = symmetricRefScale(x, xb, 16, out, i * 22);
    for (let j = 0; j < 32; j++) scratchQ[j] = level(x[xb + j]!, id, 16);
    packQ5(scratchQ, out, i * 22 + 2);
  }
  return out;
}

const scratchL = new Int8Array(32);

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  forEachBlock32WithImatrix(x, qw, (xs, w, ib) => {
    writeF16(out, ib * 22, makeQxQuants(32, 16, xs, scratchL, 1, w));
    packQ5(scratchL, out, ib * 22 + 2);
  });
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

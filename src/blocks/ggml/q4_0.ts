/**
 * Q4_0 — ggml's symmetric 4-bit block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q4_0_ref, quantize_row_q4_0_impl (imatrix path), dequantize_row_q4_0.
 *
 *   block (18 bytes per 32 weights = 4.5 bits per weight)
 *   [0,2)   d   fp16 LE
 *   [2,18)  qs  byte j: low nibble = q[j], high nibble = q[j+16]
 *   value   y = (q - 8) * d
 *
 * The ref quantizer sets d = max / -8 (max = the value of largest magnitude, so it lands exactly on
 * level 0) and truncates x/d + 8.5 — not round-half-even. The imatrix path picks d by make_qx_quants.
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16, writeF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import {
  forEachBlock32WithImatrix,
  packNibbles32 as importedPackNibbles32,
  symmetricRefLevel as importedSymmetricRefLevel,
  symmetricRefScale as importedSymmetricRefScale,
} from './legacy-common.ts';
import { makeQxQuants } from './solvers.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const packNibbles32 = importedPackNibbles32;
const symmetricRefScale = importedSymmetricRefScale;
const level = importedSymmetricRefLevel;

export const Q4_0_INFO: GgmlTypeInfo = { name: 'Q4_0', typeId: 2, blockSize: 32, bytesPerBlock: 18 };

/** quantize_row_q4_0_ref: `x.length` a multiple of 32. */
export function quantizeRefQ4_0(x: Float32Array): Uint8Array {
  checkEncodeInput(Q4_0_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    const o = i * 18;
    const id = symmetricRefScale(x, xb, 8, out, o);
    for (let j = 0; j < 16; j++) {
      out[o + 2 + j] = level(x[xb + j]!, id, 8) | (level(x[xb + 16 + j]!, id, 8) << 4);
    }
  }
  return out;
}

const scratchL = new Int8Array(32);

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  forEachBlock32WithImatrix(x, qw, (xs, w, ib) => {
    writeF16(out, ib * 18, makeQxQuants(32, 8, xs, scratchL, 1, w));
    packNibbles32(scratchL, out, ib * 18 + 2);
  });
}

/** quantize_q4_0(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ4_0(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q4_0_INFO, x, nPerRow, imatrix, quantizeRefQ4_0, rowWithImatrix);
}

/**
 * dequantize_row_q4_0: `n` values from n/32 blocks. Arithmetic q - 8 rather than the shared nibble-table
 * decode of IQ4_NL/MXFP4 (decodeNibbles32), which measured slower here.
 */
export function dequantizeQ4_0(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q4_0_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const o = i * 18;
    const d = readF16(bytes, o);
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j]!;
      y[i * 32 + j] = ((q & 0x0f) - 8) * d;
      y[i * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
  return y;
}

/**
 * Q4_1 — ggml's affine 4-bit block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q4_1_ref, quantize_row_q4_1_impl (imatrix path), dequantize_row_q4_1.
 *
 *   block (20 bytes per 32 weights = 5 bits per weight)
 *   [0,2)   d   fp16 LE
 *   [2,4)   m   fp16 LE (the block minimum)
 *   [4,20)  qs  byte j: low nibble = q[j], high nibble = q[j+16]
 *   value   y = q * d + m
 *
 * Ref: d = (max - min)/15 and q = trunc((x - min)/d + 0.5). Imatrix path: make_qkx3_quants.
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import {
  affineImatrixBlock32,
  affineRefLevel as importedAffineRefLevel,
  affineRefScale as importedAffineRefScale,
  forEachBlock32WithImatrix,
  packNibbles32 as importedPackNibbles32,
} from './legacy-common.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const affineRefScale = importedAffineRefScale;
const level = importedAffineRefLevel;
const packNibbles32 = importedPackNibbles32;

export const Q4_1_INFO: GgmlTypeInfo = { name: 'Q4_1', typeId: 3, blockSize: 32, bytesPerBlock: 20 };

/** quantize_row_q4_1_ref: `x.length` a multiple of 32. */
export function quantizeRefQ4_1(x: Float32Array): Uint8Array {
  checkEncodeInput(Q4_1_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 20);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    const o = i * 20;
    const mi = affineRefScale(x, xb, 15, out, o);
    const min = mi[0]!;
    const id = mi[1]!;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, level(x[xb + j]!, min, id));
      const q1 = Math.min(15, level(x[xb + 16 + j]!, min, id));
      out[o + 4 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

const scratchL = new Uint8Array(32);

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  forEachBlock32WithImatrix(x, qw, (xs, w, ib) => {
    affineImatrixBlock32(xs, w, 15, out, ib * 20, scratchL);
    packNibbles32(scratchL, out, ib * 20 + 4);
  });
}

/** quantize_q4_1(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ4_1(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q4_1_INFO, x, nPerRow, imatrix, quantizeRefQ4_1, rowWithImatrix);
}

/** dequantize_row_q4_1: `n` values from n/32 blocks. */
export function dequantizeQ4_1(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q4_1_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const o = i * 20;
    const d = readF16(bytes, o);
    const m = readF16(bytes, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 4 + j]!;
      y[i * 32 + j] = fr((q & 0x0f) * d) + m;
      y[i * 32 + j + 16] = fr((q >> 4) * d) + m;
    }
  }
  return y;
}

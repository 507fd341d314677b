/**
 * Q5_1 — ggml's affine 5-bit block. Source: ggml-quants.c (ggml-org/ggml d99724f):
 * quantize_row_q5_1_ref, quantize_row_q5_1_impl (imatrix path), dequantize_row_q5_1.
 *
 *   block (24 bytes per 32 weights = 6 bits per weight)
 *   [0,2)   d   fp16 LE
 *   [2,4)   m   fp16 LE (the block minimum)
 *   [4,8)   qh  u32 LE: bit j = 5th bit of q[j]
 *   [8,24)  qs  low 4 bits, nibble order as Q4_0
 *   value   y = q * d + m
 *
 * Ref: d = (max - min)/31, q = trunc((x - min)/d + 0.5) (no clamp, as in ggml). Imatrix: make_qkx3_quants.
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import {
  affineImatrixBlock32,
  affineRefLevel as importedAffineRefLevel,
  affineRefScale as importedAffineRefScale,
  forEachBlock32WithImatrix,
  packQ5 as importedPackQ5,
  unpackQ5 as importedUnpackQ5,
} from './legacy-common.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const affineRefScale = importedAffineRefScale;
const level = importedAffineRefLevel;
const packQ5 = importedPackQ5;
const unpackQ5 = importedUnpackQ5;

export const Q5_1_INFO: GgmlTypeInfo = { name: 'Q5_1', typeId: 7, blockSize: 32, bytesPerBlock: 24 };

const scratchQ = new Int32Array(32);

/** quantize_row_q5_1_ref: `x.length` a multiple of 32. */
export function quantizeRefQ5_1(x: Float32Array): Uint8Array {
  checkEncodeInput(Q5_1_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 24);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    const mi = affineRefScale(x, xb, 31, out, i * 24);
    const min = mi[0]!;
    const id = mi[1]!;
    // (uint8_t) cast of the float: truncation, kept to 8 bits
    for (let j = 0; j < 32; j++) scratchQ[j] = level(x[xb + j]!, min, id) & 0xff;
    packQ5(scratchQ, out, i * 24 + 4);
  }
  return out;
}

const scratchL = new Uint8Array(32);

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  forEachBlock32WithImatrix(x, qw, (xs, w, ib) => {
    affineImatrixBlock32(xs, w, 31, out, ib * 24, scratchL);
    packQ5(scratchL, out, ib * 24 + 4);
  });
}

/** quantize_q5_1(x, nrows, nPerRow, imatrix): the ref quantizer when `imatrix` is null. */
export function quantizeQ5_1(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q5_1_INFO, x, nPerRow, imatrix, quantizeRefQ5_1, rowWithImatrix);
}

/** dequantize_row_q5_1: `n` values from n/32 blocks. */
export function dequantizeQ5_1(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q5_1_INFO, bytes, n);
  const y = new Float32Array(n);
  const q = new Int32Array(32);
  for (let i = 0; i < n / 32; i++) {
    const d = readF16(bytes, i * 24);
    const m = readF16(bytes, i * 24 + 2);
    unpackQ5(bytes, i * 24 + 4, q);
    for (let j = 0; j < 32; j++) y[i * 32 + j] = fr(q[j]! * d) + m;
  }
  return y;
}

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
import { makeQkxQuants } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q4_1_INFO: GgmlTypeInfo = { name: 'Q4_1', typeId: 3, blockSize: 32, bytesPerBlock: 20 };

const FLT_MAX = 3.4028234663852886e38;

/** quantize_row_q4_1_ref: `x.length` a multiple of 32. */
export function quantizeRefQ4_1(x: Float32Array): Uint8Array {
  checkEncodeInput(Q4_1_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 20);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < 32; j++) {
      const v = x[xb + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 15);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = i * 20;
    writeF16(out, o, d);
    writeF16(out, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(fr(x[xb + j]! - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(fr(x[xb + 16 + j]! - min) * id) + 0.5)));
      out[o + 4 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

const scratchW = new Float32Array(32);
const scratchL = new Uint8Array(32);
const scratchLaux = new Uint8Array(32);
const scratchMin = new Float32Array(1);

function rowWithImatrix(x: Float32Array, qw: Float32Array, out: Uint8Array): void {
  const sigma2 = fr(sumSquares(x, 0, x.length) / x.length);
  const nb = x.length / 32;
  for (let ib = 0; ib < nb; ib++) {
    imatrixWeights(qw, ib * 32, x, ib * 32, sigma2, 32, scratchW);
    const xb = x.subarray(ib * 32, ib * 32 + 32);
    const d = makeQkxQuants(
      32,
      15,
      xb,
      scratchW,
      scratchL,
      scratchMin,
      0,
      scratchLaux,
      fr(-0.9),
      fr(0.05),
      36,
      false,
    );
    const o = ib * 20;
    writeF16(out, o, d);
    writeF16(out, o + 2, -scratchMin[0]!);
    for (let j = 0; j < 16; j++) out[o + 4 + j] = scratchL[j]! | (scratchL[j + 16]! << 4);
  }
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

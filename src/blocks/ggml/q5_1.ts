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
import { packQ5, unpackQ5 } from './q5_0.ts';
import { makeQkxQuants } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q5_1_INFO: GgmlTypeInfo = { name: 'Q5_1', typeId: 7, blockSize: 32, bytesPerBlock: 24 };

const FLT_MAX = 3.4028234663852886e38;
const scratchQ = new Int32Array(32);

/** quantize_row_q5_1_ref: `x.length` a multiple of 32. */
export function quantizeRefQ5_1(x: Float32Array): Uint8Array {
  checkEncodeInput(Q5_1_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 24);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < 32; j++) {
      const v = x[xb + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = i * 24;
    writeF16(out, o, d);
    writeF16(out, o + 2, min);
    // (uint8_t) cast of the float: truncation, kept to 8 bits
    for (let j = 0; j < 32; j++) scratchQ[j] = Math.trunc(fr(fr(fr(x[xb + j]! - min) * id) + 0.5)) & 0xff;
    packQ5(scratchQ, out, o + 4);
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
      31,
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
    const o = ib * 24;
    writeF16(out, o, d);
    writeF16(out, o + 2, -scratchMin[0]!);
    packQ5(scratchL, out, o + 4);
  }
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

/**
 * Q8_0 — ggml's 8-bit block. Source: ggml-quants.c (ggml-org/ggml d99724f): quantize_row_q8_0_ref,
 * dequantize_row_q8_0. `quantize_q8_0` ignores the imatrix, so there is no separate imatrix path.
 *
 *   block (34 bytes per 32 weights = 8.5 bits per weight)
 *   [0,2)   d   fp16 LE, d = max|x| / 127
 *   [2,34)  qs  int8[32], q = roundf(x / d) (ties away from zero)
 *   value   y = q * d
 */
import {
  checkDecodeInput,
  checkEncodeInput,
  quantizeRows,
  readF16,
  roundHalfAway,
  writeF16,
} from './common.ts';
import type { GgmlTypeInfo } from './common.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

export const Q8_0_INFO: GgmlTypeInfo = { name: 'Q8_0', typeId: 8, blockSize: 32, bytesPerBlock: 34 };

/** quantize_row_q8_0_ref: `x.length` a multiple of 32. */
export function quantizeRefQ8_0(x: Float32Array): Uint8Array {
  checkEncodeInput(Q8_0_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[xb + j]!);
      amax = Math.max(amax, a);
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = i * 34;
    writeF16(out, o, d);
    // int8 stored as its two's-complement byte
    for (let j = 0; j < 32; j++) out[o + 2 + j] = roundHalfAway(fr(x[xb + j]! * id)) & 0xff;
  }
  return out;
}

/** quantize_q8_0: the imatrix is checked for shape, then ignored, as in ggml. */
export function quantizeQ8_0(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(Q8_0_INFO, x, nPerRow, imatrix, quantizeRefQ8_0, (row, _qw, out) => {
    out.set(quantizeRefQ8_0(row));
  });
}

/** dequantize_row_q8_0: `n` values from n/32 blocks. */
export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(Q8_0_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const o = i * 34;
    const d = readF16(bytes, o);
    for (let j = 0; j < 32; j++) y[i * 32 + j] = ((bytes[o + 2 + j]! << 24) >> 24) * d;
  }
  return y;
}

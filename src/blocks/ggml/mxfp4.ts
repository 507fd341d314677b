/**
 * MXFP4 as ggml stores it (GGML_TYPE_MXFP4 = 39, used by gpt-oss GGUFs). Source: ggml-quants.c
 * (ggml-org/ggml d99724f): quantize_row_mxfp4_ref, dequantize_row_mxfp4; ggml-impl.h
 * GGML_E8M0_TO_FP32_HALF; kvalues_mxfp4 in ggml-common.h. For the OCP MX block formats in general
 * (any element type, other scale rules) see ../mx.ts.
 *
 *   block (17 bytes per 32 weights = 4.25 bits per weight)
 *   [0,1)   e   E8M0 shared exponent
 *   [1,17)  qs  byte j: low nibble = E2M1 code of x[j], high nibble = of x[j+16]
 *   value   y = kvalues_mxfp4[q] * 2^(e-128)   (kvalues = E2M1 values doubled, hence the half scale)
 *
 * e = floor(log2(max|x|)) - 2 + 127 (the OCP rule with emax(E2M1) = 2); elements go to the nearest of the
 * 16 scaled levels, the first (lowest code) winning ties — not OCP's round-half-even, exactly ggml.
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import { decodeNibbles32 as importedDecodeNibbles32 } from './legacy-common.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const decodeNibbles32 = importedDecodeNibbles32;

export const MXFP4_INFO: GgmlTypeInfo = { name: 'MXFP4', typeId: 39, blockSize: 32, bytesPerBlock: 17 };

/** kvalues_mxfp4: E2M1 code -> 2 * value. */
export const KVALUES_MXFP4: Int8Array = Int8Array.of(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);

/** GGML_E8M0_TO_FP32_HALF: 2^(e-128), a float32 subnormal for e < 2 (exact). */
export function e8m0ToF32Half(e: number): number {
  return 2 ** (e - 128);
}

function bestIndexMxfp4(x: number, e: number): number {
  let best = 0;
  let bestErr = Math.abs(fr(KVALUES_MXFP4[0]! * e - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(fr(fr(KVALUES_MXFP4[i]! * e) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/** quantize_row_mxfp4_ref (= quantize_mxfp4, which ignores the imatrix). */
export function quantizeRefMXFP4(x: Float32Array): Uint8Array {
  checkEncodeInput(MXFP4_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 17);
  for (let i = 0; i < nb; i++) {
    const xb = i * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) if (amax < Math.abs(x[xb + j]!)) amax = Math.abs(x[xb + j]!);
    // (uint8_t)(floorf(log2f(amax)) - 2 + 127); log2f is float32, so round the double log2 first
    const e = amax > 0 ? (Math.floor(fr(Math.log2(amax))) - 2 + 127) & 0xff : 0;
    const d = e8m0ToF32Half(e);
    const o = i * 17;
    out[o] = e;
    for (let j = 0; j < 16; j++) {
      out[o + 1 + j] = bestIndexMxfp4(x[xb + j]!, d) | (bestIndexMxfp4(x[xb + 16 + j]!, d) << 4);
    }
  }
  return out;
}

/** quantize_mxfp4: the imatrix is accepted and ignored, as in ggml. */
export function quantizeMXFP4(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  return quantizeRows(MXFP4_INFO, x, nPerRow, imatrix, quantizeRefMXFP4, (row, _qw, out) => {
    out.set(quantizeRefMXFP4(row));
  });
}

/** dequantize_row_mxfp4: `n` values from n/32 blocks. */
export function dequantizeMXFP4(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(MXFP4_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++)
    decodeNibbles32(bytes, i * 17 + 1, e8m0ToF32Half(bytes[i * 17]!), KVALUES_MXFP4, y, i * 32);
  return y;
}

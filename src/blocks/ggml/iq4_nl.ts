/**
 * IQ4_NL — ggml's 4-bit non-linear block: 16 fixed non-uniform levels (kvalues_iq4nl) times an fp16
 * scale. Source: ggml-quants.c (ggml-org/ggml d99724f): quantize_row_iq4_nl_impl, quantize_iq4_nl,
 * quantize_row_iq4_nl_ref, dequantize_row_iq4_nl; the table from ggml-common.h.
 *
 *   block (18 bytes per 32 weights = 4.5 bits per weight)
 *   [0,2)   d   fp16 LE
 *   [2,18)  qs  byte j: low nibble = index of x[j], high nibble = index of x[j+16]
 *   value   y = d * kvalues_iq4nl[q]
 *
 * Two encoders, as in ggml: the ref quantizer (ntry = -1: one weighted least-squares scale) and
 * `quantize_iq4_nl` (ntry = 7: 15 trial scales, then re-indexing with the fp32 scale), which is what
 * llama-quantize runs — also without an imatrix.
 * Ref quirk: for a block with max|x| < 1e-15 ggml packs an index buffer it did not fill for that block
 * (the previous block's indices, or uninitialised memory). We reproduce the "previous block" case and
 * use zeros where C would read uninitialised memory; d is 0 either way, so the values are ±0.
 */
import { checkDecodeInput, checkEncodeInput, quantizeRows, readF16, writeF16 } from './common.ts';
import type { GgmlTypeInfo } from './common.ts';
import {
  decodeNibbles32 as importedDecodeNibbles32,
  packNibbles32 as importedPackNibbles32,
} from './legacy-common.ts';
import { GROUP_MAX_EPS, bestIndexInt8, maxByMagnitude as importedMaxByMagnitude } from './solvers.ts';

// local aliases: calls through an imported binding are much slower under some loaders
const fr = Math.fround;
const maxByMagnitude = importedMaxByMagnitude;
const decodeNibbles32 = importedDecodeNibbles32;
const packNibbles32 = importedPackNibbles32;

export const IQ4_NL_INFO: GgmlTypeInfo = { name: 'IQ4_NL', typeId: 20, blockSize: 32, bytesPerBlock: 18 };

/** kvalues_iq4nl: the 16 non-linear levels, ascending. */
export const KVALUES_IQ4NL: Int8Array = Int8Array.of(
  -127,
  -104,
  -83,
  -65,
  -49,
  -35,
  -22,
  -10,
  1,
  13,
  25,
  38,
  53,
  69,
  89,
  113,
);

const weight = new Float32Array(32);

/**
 * quantize_row_iq4_nl_impl for super_block_size = block_size = 32: one block at x[xb..xb+32), written
 * at out[o..o+18). `L` persists across calls (see the ref quirk above).
 */
function quantizeBlock(
  x: Float32Array,
  xb: number,
  qw: Float32Array | null,
  qwb: number,
  ntry: number,
  L: Uint8Array,
  out: Uint8Array,
  o: number,
): void {
  const values = KVALUES_IQ4NL;
  let sigma2 = 0;
  for (let j = 0; j < 32; j++) sigma2 = fr(sigma2 + fr(x[xb + j]! * x[xb + j]!));
  sigma2 = fr(sigma2 * fr(2 / 32));
  out.fill(0, o + 2, o + 18);
  for (let j = 0; j < 32; j++) {
    const v = x[xb + j]!;
    weight[j] = qw ? fr(qw[qwb + j]! * fr(Math.sqrt(fr(sigma2 + fr(v * v))))) : fr(v * v);
  }
  const max = maxByMagnitude(x, xb, xb + 32);
  let scale = 0;
  if (Math.abs(max) >= GROUP_MAX_EPS) {
    let d = ntry > 0 ? fr(-max / values[0]!) : fr(max / values[0]!);
    let id = fr(1 / d);
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const l = bestIndexInt8(values, fr(id * x[xb + j]!));
      L[j] = l;
      const q = values[l]!;
      const w = weight[j]!;
      sumqx = fr(sumqx + fr(fr(w * q) * x[xb + j]!));
      sumq2 = fr(sumq2 + fr(fr(w * q) * q));
    }
    d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
    let best = fr(d * sumqx);
    for (let itry = -ntry; itry <= ntry; itry++) {
      id = fr((itry + values[0]!) / max);
      sumqx = 0;
      sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const q = values[bestIndexInt8(values, fr(id * x[xb + j]!))]!;
        const w = weight[j]!;
        sumqx = fr(sumqx + fr(fr(w * q) * x[xb + j]!));
        sumq2 = fr(sumq2 + fr(fr(w * q) * q));
      }
      if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
        d = fr(sumqx / sumq2);
        best = fr(d * sumqx);
      }
    }
    scale = d;
  }
  writeF16(out, o, scale);
  if (ntry > 0) {
    const id = scale !== 0 ? fr(1 / scale) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndexInt8(values, fr(id * x[xb + j]!));
  }
  packNibbles32(L, out, o + 2);
}

/** quantize_row_iq4_nl_ref: `x.length` a multiple of 32. */
export function quantizeRefIQ4_NL(x: Float32Array): Uint8Array {
  checkEncodeInput(IQ4_NL_INFO, x);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  const L = new Uint8Array(32); // one buffer per call, like the C stack array
  for (let i = 0; i < nb; i++) quantizeBlock(x, i * 32, null, 0, -1, L, out, i * 18);
  return out;
}

function quantizeApiRows(x: Float32Array, qw: Float32Array | null, out: Uint8Array): void {
  const L = new Uint8Array(32);
  for (let i = 0; i < x.length / 32; i++) quantizeBlock(x, i * 32, qw, i * 32, 7, L, out, i * 18);
}

/**
 * quantize_iq4_nl(x, nrows, nPerRow, imatrix). Unlike the other types, `imatrix = null` is NOT the ref
 * quantizer here: it still runs the 15-scale search (weights x^2).
 */
export function quantizeIQ4_NL(x: Float32Array, nPerRow: number, imatrix: Float32Array | null): Uint8Array {
  const noImatrix = (v: Float32Array): Uint8Array => {
    const out = new Uint8Array((v.length / 32) * 18);
    quantizeApiRows(v, null, out);
    return out;
  };
  return quantizeRows(IQ4_NL_INFO, x, nPerRow, imatrix, noImatrix, (row, qw, out) =>
    quantizeApiRows(row, qw, out),
  );
}

/** dequantize_row_iq4_nl: `n` values from n/32 blocks. */
export function dequantizeIQ4_NL(bytes: Uint8Array, n: number): Float32Array {
  checkDecodeInput(IQ4_NL_INFO, bytes, n);
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++)
    decodeNibbles32(bytes, i * 18 + 2, readF16(bytes, i * 18), KVALUES_IQ4NL, y, i * 32);
  return y;
}

/**
 * What the K-quants share: the per-sub-block scale/min search of both encoder paths of the affine ones
 * (Q2_K, Q4_K, Q5_K), the 2-bit level packing of Q2_K/Q3_K, and for Q4_K/Q5_K the 6-bit scale/min packing (get_scale_min_k4), its two quantizers (ref:
 * nearest of 63/max; imatrix: make_qp_quants) and the re-derivation of the levels from the stored scales.
 * What differs per type (level packing, Q2_K's 4-bit scales) stays in the type's own file.
 *
 * Source: ggml-quants.c (ggml-org/ggml d99724f): quantize_row_q{2,3,4,5}_K_ref, quantize_row_q{2,4,5}_K_impl,
 * get_scale_min_k4. Arithmetic is float32 step by step, as in common.ts.
 */
import { imatrixWeights, readF16, sumSquares, writeF16 } from './common.ts';
import type { QkxSearch } from './solvers.ts';
import { makeQkxQuants, makeQpQuants, nearestInt, QKX_IMATRIX_SEARCH } from './solvers.ts';

// a local alias: calls through an imported binding are much slower under some loaders
const fr = Math.fround;

// scratch for one sub-block (at most 32 values) and the per-sub-block results (at most 16 sub-blocks)
const weights = new Float32Array(32);
const Laux = new Uint8Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(16);
const sw = new Float32Array(16);
const Ls = new Uint8Array(16);
const Lm = new Uint8Array(16);

/** Per-sub-block fit results of the last `fitSubBlocks*` call: scale, -min, and (imatrix) weight sums. */
export interface SubBlockFits {
  readonly scales: Float32Array;
  readonly mins: Float32Array;
  readonly sw: Float32Array;
}
const fits: SubBlockFits = { scales, mins, sw };

/**
 * The imatrix path's search over the `nSub` sub-blocks of `subLen` values at x[xb..): importance weights
 * `qw * sqrt(sigma2 + x^2)` (their sums into fits.sw), then make_qkx3_quants on the imatrix grid.
 * Levels go to L[subLen*j ..], scales and -mins to the returned fits.
 */
export function fitSubBlocksImatrix(
  x: Float32Array,
  xb: number,
  qw: Float32Array,
  sigma2: number,
  nSub: number,
  subLen: number,
  nmax: number,
  L: Uint8Array,
): SubBlockFits {
  for (let j = 0; j < nSub; j++) {
    const s = xb + subLen * j;
    sw[j] = imatrixWeights(qw, s, x, s, sigma2, subLen, weights);
    const xs = x.subarray(s, s + subLen);
    scales[j] = makeQkxQuants(
      subLen,
      nmax,
      xs,
      weights,
      L.subarray(subLen * j),
      mins,
      j,
      Laux,
      QKX_IMATRIX_SEARCH,
    );
  }
  return fits;
}

/**
 * The ref path's search over the `nSub` sub-blocks of `subLen` values at x[xb..): weights |x|, plus the
 * sub-block's rms when `addRms` (Q4_K, Q5_K; Q2_K uses plain |x|), then make_qkx2_quants on `search`.
 */
export function fitSubBlocksRef(
  x: Float32Array,
  xb: number,
  nSub: number,
  subLen: number,
  nmax: number,
  search: QkxSearch,
  addRms: boolean,
  L: Uint8Array,
): SubBlockFits {
  for (let j = 0; j < nSub; j++) {
    const s = xb + subLen * j;
    const avX = addRms ? fr(Math.sqrt(fr(sumSquares(x, s, s + subLen) / subLen))) : 0;
    for (let l = 0; l < subLen; l++)
      weights[l] = addRms ? fr(avX + Math.abs(x[s + l]!)) : Math.abs(x[s + l]!);
    const xs = x.subarray(s, s + subLen);
    scales[j] = makeQkxQuants(subLen, nmax, xs, weights, L.subarray(subLen * j), mins, j, Laux, search);
  }
  return fits;
}

/**
 * The 2-bit level layout of Q2_K's qs and Q3_K's low bits: 256 levels (0..3) into 64 bytes at `at`;
 * element 128h + 32s + l sits in byte 32h + l at bits 2s..2s+1.
 */
export function pack2BitLevels(L: Uint8Array | Int8Array, out: Uint8Array, at: number): void {
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[at + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
    }
  }
}

/** Packs the 6-bit scale level `ls` and min level `lm` of sub-block j into the 12 bytes at `s`. */
export function putScaleMinK4(out: Uint8Array, s: number, j: number, ls: number, lm: number): void {
  if (j < 4) {
    out[s + j] = ls;
    out[s + j + 4] = lm;
  } else {
    out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    out[s + j - 4] = out[s + j - 4]! | ((ls >> 4) << 6);
    out[s + j] = out[s + j]! | ((lm >> 4) << 6);
  }
}

/** get_scale_min_k4: the scale level (returned) and min level (in `minOut[0]`) of sub-block j. */
export function getScaleMinK4(q: Uint8Array, s: number, j: number, minOut: Int32Array): number {
  if (j < 4) {
    minOut[0] = q[s + j + 4]! & 63;
    return q[s + j]! & 63;
  }
  minOut[0] = (q[s + j + 4]! >> 4) | ((q[s + j]! >> 6) << 4);
  return (q[s + j + 4]! & 0xf) | ((q[s + j - 4]! >> 6) << 4);
}

/**
 * Ref rule for Q4_K/Q5_K: turns the 8 sub-block scales/mins into 6-bit levels (nearest of 63/max) and
 * stores them with d = maxScale/63 and dmin = maxMin/63 at offset o.
 */
function storeScalesRefK(out: Uint8Array, o: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // C: uint8_t ls = nearest_int(...); ls = MIN(63, ls) — the cast keeps 8 bits first
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
    putScaleMinK4(out, o + 4, j, ls, lm);
  }
  writeF16(out, o, fr(maxScale / 63));
  writeF16(out, o + 2, fr(maxMin / 63));
}

/**
 * Imatrix rule for Q4_K/Q5_K: make_qp_quants picks d/dmin and the 6-bit levels under the weights sw.
 * ggml's Q5_K clamps the (uint8) levels to 63 before packing and Q4_K does not: `clampTo63` keeps that.
 */
function storeScalesImatrixK(out: Uint8Array, o: number, clampTo63: boolean): void {
  const dBlock = makeQpQuants(8, 63, scales, Ls, sw);
  const mBlock = makeQpQuants(8, 63, mins, Lm, sw);
  for (let j = 0; j < 8; j++) {
    const ls = Ls[j]!;
    const lm = Lm[j]!;
    putScaleMinK4(out, o + 4, j, clampTo63 ? Math.min(63, ls) : ls, clampTo63 ? Math.min(63, lm) : lm);
  }
  writeF16(out, o, dBlock);
  writeF16(out, o + 2, mBlock);
}

const minLevel = new Int32Array(1);

/** Re-derives the levels in [0, nmax] of 256 values from the stored d, dmin and 6-bit levels. */
function requantizeK(
  x: Float32Array,
  xb: number,
  out: Uint8Array,
  o: number,
  nmax: number,
  L: Uint8Array,
): void {
  const dAll = readF16(out, o);
  const mAll = readF16(out, o + 2);
  for (let j = 0; j < 8; j++) {
    const sc = getScaleMinK4(out, o + 4, j, minLevel);
    const d = fr(dAll * sc);
    if (d === 0) continue;
    const dm = fr(mAll * minLevel[0]!);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[xb + 32 * j + ii]! + dm) / d));
      L[32 * j + ii] = l < 0 ? 0 : Math.min(l, nmax);
    }
  }
}

/** How a Q4_K/Q5_K-style type differs in its scale search. */
export interface SuperBlockK {
  /** Largest level: 15 (Q4_K) or 31 (Q5_K). */
  readonly nmax: number;
  /** The ref quantizer's make_qkx2_quants grid. */
  readonly refSearch: QkxSearch;
  /** Clamp the imatrix path's 6-bit levels to 63 before packing (Q5_K only, as in ggml). */
  readonly clampImatrixLevels: boolean;
}

/**
 * One Q4_K/Q5_K super-block of 256 values at x[xb..): fits the 8 sub-blocks (ref rule when `qw` is null,
 * else the imatrix rule with qw indexed like x), writes d, dmin and the packed 6-bit scales at out[o..o+16)
 * and leaves the final levels (0..nmax, from the stored scales) in L[0..256) for the type to pack.
 */
export function encodeSuperBlockK(
  t: SuperBlockK,
  x: Float32Array,
  xb: number,
  qw: Float32Array | null,
  out: Uint8Array,
  o: number,
  L: Uint8Array,
): void {
  if (qw === null) {
    fitSubBlocksRef(x, xb, 8, 32, t.nmax, t.refSearch, true, L);
    storeScalesRefK(out, o);
  } else {
    const sigma2 = fr(fr(2 * sumSquares(x, xb, xb + 256)) / 256);
    fitSubBlocksImatrix(x, xb, qw, sigma2, 8, 32, t.nmax, L);
    storeScalesImatrixK(out, o, t.clampImatrixLevels);
  }
  requantizeK(x, xb, out, o, t.nmax, L);
}

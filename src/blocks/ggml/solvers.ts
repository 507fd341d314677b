/**
 * The scale searches ggml's quantizers share: given a group of values (and optional importance weights),
 * choose a scale (and for the affine types a min) and the integer levels. Each function mirrors one
 * routine of ggml-quants.c (ggml-org/ggml d99724f) operation by operation in float32:
 *
 *   makeQxQuants   make_qx_quants    symmetric levels [-nmax, nmax-1], weighted least squares + 18 trial scales
 *   makeQ3Quants   make_q3_quants    symmetric, coordinate-descent refinement (Q3_K ref)
 *   makeQkxQuants  make_qkx2_quants / make_qkx3_quants   affine levels [0, nmax] with a min <= 0
 *   makeQpQuants   make_qp_quants    non-negative levels [0, nmax] for the K-quants' sub-block scales
 *   bestIndexInt8  best_index_int8   nearest entry of a sorted int8 codebook (IQ4_NL)
 *
 * Conventions: `x`/`L` are views of exactly the group (use subarray); levels are written into `L`.
 */

const fr = Math.fround;

/** ggml's GROUP_MAX_EPS (1e-15f): a block whose max |x| is below it counts as all zero. */
export const GROUP_MAX_EPS = fr(1e-15);

const nearestF32 = new Float32Array(1);
const nearestU32 = new Uint32Array(nearestF32.buffer);

/**
 * ggml's `nearest_int`: adds 1.5 * 2^23 in float32 so the FPU rounds to an integer (ties to even), then
 * reads the integer out of the mantissa. Valid for |v| <= 2^22 - 1, like the C version.
 */
export function nearestInt(v: number): number {
  nearestF32[0] = v + 12582912;
  return (nearestU32[0]! & 0x007fffff) - 0x00400000;
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : Math.min(v, hi));

/**
 * The value of largest magnitude in x[start, end) with its sign (the first one on ties; NaN never wins),
 * 0 for an empty or all-zero range. ggml's symmetric quantizers anchor the scale on it.
 */
export function maxByMagnitude(x: Float32Array, start: number, end: number): number {
  let max = 0;
  let amax = 0;
  for (let i = start; i < end; i++) {
    const ax = Math.abs(x[i]!);
    if (ax > amax) {
      amax = ax;
      max = x[i]!;
    }
  }
  return max;
}

/** The trial-scale grid of make_qkx2/qkx3_quants: scales (rmin + rdelta*is + nmax)/(max - min), is in 0..nstep. */
export interface QkxSearch {
  readonly rmin: number;
  readonly rdelta: number;
  readonly nstep: number;
  /** Weighted absolute error instead of squared error (Q2_K's ref quantizer). */
  readonly useMad: boolean;
}

/** The grid of every imatrix path (`make_qkx3_quants(..., -0.9f, 0.05f, 36, ...)`): Q4_1, Q5_1 and the K-quants. */
export const QKX_IMATRIX_SEARCH: QkxSearch = { rmin: fr(-0.9), rdelta: fr(0.05), nstep: 36, useMad: false };

/**
 * make_qx_quants. `rmseType` 0: plain rounding; 1: weights x^2 (or `qw`); 2: 1; 3: |x|; else sqrt|x|;
 * negative: one weighted pass only. Writes L[i] = level + nmax and returns the scale.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  L: Int8Array | Uint8Array,
  rmseType: number,
  qw: Float32Array | null,
): number {
  const max = maxByMagnitude(x, 0, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) L[i] = nmax + clamp(nearestInt(fr(iscale * x[i]!)), -nmax, nmax - 1);
    return fr(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) {
    rmseType = -rmseType;
    returnEarly = true;
  }
  const weight = (i: number): number => {
    const xi = x[i]!;
    if (qw) return qw[i]!;
    if (rmseType === 1) return fr(xi * xi);
    if (rmseType === 2) return 1;
    if (rmseType === 3) return Math.abs(xi);
    return fr(Math.sqrt(Math.abs(xi)));
  };
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(fr(iscale * x[i]!)), -nmax, nmax - 1);
    L[i] = l + nmax;
    const w = weight(i);
    sumlx = fr(sumlx + fr(fr(w * x[i]!) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  if (returnEarly) return suml2 > 0 ? fr(0.5 * fr(scale + fr(1 / iscale))) : fr(1 / iscale);
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(fr(iscale * x[i]!)), -nmax, nmax - 1);
      const w = weight(i);
      sumlx = fr(sumlx + fr(fr(w * x[i]!) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[i] = nmax + clamp(nearestInt(fr(iscale * x[i]!)), -nmax, nmax - 1);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants: levels in [-nmax, nmax-1] refined by coordinate descent; writes level + nmax into L. */
export function makeQ3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  L: Int8Array,
  doRmse: boolean,
): number {
  const max = maxByMagnitude(x, 0, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  const iscale = fr(-nmax / max);
  if (doRmse) {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(fr(iscale * x[i]!)), -nmax, nmax - 1);
      L[i] = l;
      const w = fr(x[i]! * x[i]!);
      sumlx = fr(sumlx + fr(fr(w * x[i]!) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    for (let itry = 0; itry < 5; itry++) {
      let nChanged = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[i]!;
        const w = fr(xi * xi);
        const li = L[i]!;
        let slx = fr(sumlx - fr(fr(w * xi) * li));
        if (slx > 0) {
          let sl2 = fr(suml2 - fr(fr(w * li) * li));
          const newL = clamp(nearestInt(fr(fr(xi * sl2) / slx)), -nmax, nmax - 1);
          if (newL !== li) {
            slx = fr(slx + fr(fr(w * xi) * newL));
            sl2 = fr(sl2 + fr(fr(w * newL) * newL));
            if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
              L[i] = newL;
              sumlx = slx;
              suml2 = sl2;
              nChanged++;
            }
          }
        }
      }
      if (nChanged === 0) break;
    }
    for (let i = 0; i < n; i++) L[i] = L[i]! + nmax;
    return suml2 > 0 ? fr(sumlx / suml2) : 0;
  }
  for (let i = 0; i < n; i++) L[i] = clamp(nearestInt(fr(iscale * x[i]!)), -nmax, nmax - 1) + nmax;
  return fr(1 / iscale);
}

/**
 * make_qkx2_quants and make_qkx3_quants (identical once weights are given, which every caller does):
 * affine fit x ~ scale*l + min with min <= 0, searching nstep+1 trial scales around nmax/(max-min).
 * Writes the levels into L, stores -min (>= 0) in minOut[minIndex] and returns the scale.
 * `search` is the trial grid (QKX_IMATRIX_SEARCH or a type's ref grid).
 */
export function makeQkxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  weights: Float32Array,
  L: Uint8Array,
  minOut: Float32Array,
  minIndex: number,
  Laux: Uint8Array,
  search: QkxSearch,
): number {
  const { rmin, rdelta, nstep, useMad } = search;
  let min = x[0]!;
  let max = x[0]!;
  let sumW = weights[0]!;
  let sumX = fr(sumW * x[0]!);
  for (let i = 1; i < n; i++) {
    const xi = x[i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max <= min) {
    L.fill(0, 0, n);
    minOut[minIndex] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(fr(iscale * fr(x[i]! - min))), 0, nmax);
    L[i] = l;
    let diff = fr(fr(fr(scale * l) + min) - x[i]!);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(weights[i]! * diff));
  }
  if (nstep < 1) {
    minOut[minIndex] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // `min` is updated by accepted trials, and ggml keeps using the updated value below
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(fr(iscale * fr(x[i]! - min))), 0, nmax);
      Laux[i] = l;
      const w = weights[i]!;
      const wl = fr(w * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[i]!));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]!) + thisMin) - x[i]!);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(weights[i]! * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[i] = Laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  minOut[minIndex] = -min;
  return scale;
}

/**
 * make_qp_quants: quantize the non-negative sub-block scales (or mins) to levels [0, nmax] under the
 * importance weights `qw`, trying 8 scales around nmax/max and then refining by coordinate descent.
 */
export function makeQpQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  L: Uint8Array,
  qw: Float32Array,
): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]!);
  if (max < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = fr(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(fr(iscale * x[i]!));
  const scale = fr(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = fr(x[i]! - fr(scale * L[i]!));
    bestMse = fr(bestMse + fr(fr(qw[i]! * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = fr(fr(fr(fr(0.1) * is) + nmax) / max);
    const scaleIs = fr(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(fr(iscaleIs * x[i]!)));
      const diff = fr(x[i]! - fr(scaleIs * l));
      mse = fr(mse + fr(fr(qw[i]! * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestInt(fr(iscale * x[i]!)));
    L[i] = l;
    const w = qw[i]!;
    sumlx = fr(sumlx + fr(fr(w * x[i]!) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let nChanged = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i]!;
      const xi = x[i]!;
      const li = L[i]!;
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      let sl2 = fr(suml2 - fr(fr(w * li) * li));
      if (slx > 0 && sl2 > 0) {
        const newL = Math.min(nmax, nearestInt(fr(fr(xi * sl2) / slx)));
        if (newL !== li) {
          slx = fr(slx + fr(fr(w * xi) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[i] = newL;
            sumlx = slx;
            suml2 = sl2;
            nChanged++;
          }
        }
      }
    }
    if (nChanged === 0) break;
  }
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** best_index_int8: index of the nearest value in the ascending int8 codebook `val` (ties to the upper). */
export function bestIndexInt8(val: Int8Array, x: number): number {
  const n = val.length;
  if (x <= val[0]!) return 0;
  if (x >= val[n - 1]!) return n - 1;
  let ml = 0;
  let mu = n - 1;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < val[mav]!) mu = mav;
    else ml = mav;
  }
  return fr(x - val[mu - 1]!) < fr(val[mu]! - x) ? mu - 1 : mu;
}

/**
 * Spearman rank correlation with ties: the Pearson correlation of the two samples' ranks, where tied
 * values share the mean of the ranks they span (the "fractional ranking" of scipy.stats.rankdata
 * method='average', so spearmanr's result is reproduced exactly, ties included).
 *
 * Browser-safe.
 */
import { MixqError } from '../../core/errors.ts';

/** 1-based fractional ranks: ties get the average of their positions. */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  for (const v of idx)
    if (Number.isNaN(x[v]!))
      throw new MixqError('cannot rank NaN', { field: `x[${v}]`, expected: 'a number' });
  idx.sort((a, b) => x[a]! - x[b]! || a - b);
  const r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && x[idx[j + 1]!] === x[idx[i]!]) j++;
    const avg = (i + j) / 2 + 1; // positions i..j (0-based) hold ranks i+1..j+1
    for (let k = i; k <= j; k++) r[idx[k]!] = avg;
    i = j + 1;
  }
  return r;
}

/** Pearson correlation; NaN when either sample is constant or shorter than 2. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) throw new MixqError('samples differ in length', { field: 'y', expected: `${n}` });
  if (n < 2) return Number.NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i]! - mx;
    const b = y[i]! - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (sxx === 0 || syy === 0) return Number.NaN;
  return sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rho with average ranks for ties; NaN when a sample is constant. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return pearson(averageRanks(x), averageRanks(y));
}

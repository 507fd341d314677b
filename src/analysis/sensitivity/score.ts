/**
 * The proxy scores of a weight's candidates (the pure part of the sensitivity analysis): quantize with each
 * candidate and compute the proxies; candidates fitted to calibration data (GPTQ, AWQ) are fitted on one
 * fold and scored on the other, both ways (heldOutProxies). Browser-safe; src/runtime runs it in worker
 * threads (sensitivity-pool.node.ts) or inline.
 */
import type { Scheme } from '../../quant/scheme.ts';
import type { RowLayout } from '../../quant/layout.ts';
import { computeProxies, type LayerStats, type ProxyValues } from './proxies.ts';
import { applicable, quantizeScheme } from './apply-scheme.ts';

/** One (weight, candidate) to score. */
export interface ScoreJob {
  /** The weight as a row matrix. */
  readonly W: Float32Array;
  readonly L: RowLayout;
  /** Statistics of all calibration samples (what candidates are fitted to). */
  readonly st: LayerStats;
  /** The two folds' statistics (even / odd samples), for held-out scoring of fitted candidates. */
  readonly folds?: readonly [LayerStats, LayerStats];
  /**
   * The statistics errors are scored with: `st` and `folds` themselves, or centered (centeredStats) where
   * the layer's bias will absorb the mean shift. Computed once per weight by the caller.
   */
  readonly scoring: { readonly st: LayerStats; readonly folds?: readonly [LayerStats, LayerStats] };
  readonly scheme: Scheme;
  /** Also return the weight quantized with all samples (to measure it end to end). */
  readonly keepQ: boolean;
}

export interface ScoredCandidate {
  readonly proxies: ProxyValues;
  readonly heldOut: boolean;
  /** The quantized row matrix (keepQ, or when it was needed for in-sample scoring and keepQ). */
  readonly Q?: Float32Array;
}

/** Whether a candidate's weights are fitted to the calibration data (scored out of sample). */
export function fittedToData(s: Scheme): boolean {
  return s.algorithm === 'gptq' || s.algorithm === 'awq';
}

/**
 * Proxies of a candidate fitted to calibration data, scored out of sample: fitted on one fold, scored with
 * the other fold's statistics, both ways, averaged. GPTQ fitted and scored on the same few samples looks
 * far better than it is (PP-OCRv4, 4 lines: an SVTR MLP weight at int3 g32 GPTQ scored 26x below its
 * KL on the evaluation lines).
 */
export function heldOutProxies(
  W: Float32Array,
  L: RowLayout,
  c: Scheme,
  folds: readonly [LayerStats, LayerStats],
  scoringFolds: readonly [LayerStats, LayerStats] = folds,
): ProxyValues {
  const score = (fit: LayerStats, test: LayerStats) =>
    computeProxies(W, quantizeScheme(W, L, c, fit), L, test);
  const p = score(folds[0], scoringFolds[1]);
  const q = score(folds[1], scoringFolds[0]);
  const mean = (x: number, y: number) => (x + y) / 2;
  return {
    weight: mean(p.weight, q.weight),
    weightRel: mean(p.weightRel, q.weightRel),
    imatrix: mean(p.imatrix, q.imatrix),
    ...(p.output !== undefined && q.output !== undefined ? { output: mean(p.output, q.output) } : {}),
  };
}

/** Scores one candidate scheme on one weight; undefined when it does not apply to the weight. */
export function scoreCandidate(job: ScoreJob): ScoredCandidate | undefined {
  const { W, L, st, scheme: c } = job;
  if (!applicable(c, L, st)) return undefined;
  const [fa, fb] = job.folds ?? [];
  const heldOut =
    fittedToData(c) && fa !== undefined && fb !== undefined && applicable(c, L, fa) && applicable(c, L, fb);
  // the fit on all samples is only needed in sample: to score it, or to measure it end to end
  const Q = heldOut && !job.keepQ ? undefined : quantizeScheme(W, L, c, st);
  const proxies = heldOut
    ? heldOutProxies(W, L, c, [fa, fb], job.scoring.folds)
    : computeProxies(W, Q!, L, job.scoring.st);
  return { proxies, heldOut, ...(Q && job.keepQ ? { Q } : {}) };
}

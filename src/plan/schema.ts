/**
 * The mixed-precision plan file (schemaVersion 1): what `mixq plan` writes and `mixq apply` reads. JSON,
 * meant to be read, diffed and edited by hand: per weight the chosen scheme (element format, granularity,
 * algorithm, scale storage, symmetry, optional outliers), its exact size and its predicted (and, once
 * evaluated, measured) damage; plus the model it belongs to, the budget, the objective, totals and how the
 * solver did.
 *
 * Scheme vocabulary is the quantizer's (src/quant): `format` is an element format name or alias known to
 * getFormat (src/formats/registry.ts), `granularity` is quant's Granularity, `scaleFormat` is quant's
 * ScaleFormat. `blockType` (optional) says the weight is stored in a ggml block layout (src/blocks
 * registry name, e.g. 'Q4_K'), whose own geometry then rules.
 *
 * Example (one weight):
 *   { "name": "blocks.0.attn_qkv", "shape": [192, 576],
 *     "scheme": { "format": "int4", "granularity": { "kind": "group", "axis": 0, "size": 32 },
 *                 "algorithm": "gptq", "scaleFormat": "fp16", "symmetric": true },
 *     "bitsPerWeight": 4.5, "bytes": 62208, "predictedDamage": 0.0012 }
 */
import {
  SCHEME_ALGORITHMS,
  type Scheme,
  type SchemeAlgorithm,
  type SchemeOutliers,
} from '../quant/scheme.ts';

export const PLAN_SCHEMA_VERSION = 1;

/** Algorithms a plan may name (src/quant/algorithms; 'imatrix' = ggml's importance-weighted block fit). */
export const PLAN_ALGORITHMS = SCHEME_ALGORITHMS;
export type PlanAlgorithm = SchemeAlgorithm;

/** Salient / outlier weights kept at higher precision (src/quant/algorithms/outliers.ts). */
export type PlanOutliers = SchemeOutliers;

/**
 * A plan weight's scheme: the one Scheme record of src/quant/scheme.ts, stated on the weight's own tensor
 * axes (element format, granularity, algorithm, scale storage, symmetry; optional scale rule, ggml block
 * type, outliers).
 */
export type PlanScheme = Scheme;

export interface PlanWeight {
  readonly name: string;
  readonly shape: readonly number[];
  readonly scheme: PlanScheme;
  /** Exact bits per weight including scales, zero points and side data. */
  readonly bitsPerWeight: number;
  /** Exact stored bytes. */
  readonly bytes: number;
  readonly predictedDamage: number;
  readonly measuredDamage?: number;
}

export interface PlanModel {
  /** File name (or path) of the source model. */
  readonly file: string;
  /** Hex SHA-256 of the file, when computed. */
  readonly sha256?: string;
  /** File size in bytes. At least one of sha256 / size identifies the file. */
  readonly size?: number;
}

export type PlanBudget =
  | { readonly kind: 'bitsPerWeight'; readonly bits: number }
  | { readonly kind: 'bytes'; readonly bytes: number }
  /** Smallest plan whose task metric stays within `relative` (0.01 = 1%) of fp32. */
  | { readonly kind: 'maxLoss'; readonly relative: number }
  /** Least damage whose weight products take at most `msPerToken` per decode token (no size bound). */
  | { readonly kind: 'latency'; readonly msPerToken: number };

/**
 * The plan's speed in mixq's engine, predicted from a measured cost table (pipeline/quantize/latency.node.ts):
 * the time of one decode token's weight products, and the bound the allocation had, if any.
 */
export interface PlanLatency {
  /** Predicted milliseconds per decode token of the weight products. */
  readonly predictedMsPerToken: number;
  /** The bound (--latency), when the allocation had one. */
  readonly maxMsPerToken?: number;
  /** Threads of the engine the cost table was measured with. */
  readonly threads: number;
  /** 'lut8' when the plan is for the engine's lookup-table mode (`mixq run --activations lut8`). */
  readonly activations?: 'lut8';
}

export interface PlanObjective {
  /** The damage measure minimised, e.g. 'kl', 'imatrix-mse', 'weight-mse'. */
  readonly damage: string;
  /** Task metric the plan is evaluated on, e.g. 'perplexity', 'cer'. */
  readonly metric?: string;
  /**
   * The calibration data the damage (and GPTQ / imatrix weights) came from: a description and the size
   * given to `--calibration`, which `mixq apply` reuses to rebuild such weights exactly.
   */
  readonly calibration?: { readonly data: string; readonly size?: number };
  /**
   * Whether the biases of quantized layers were corrected for the mean output shift (Q - W) E[x] on the
   * calibration data (src/quant/algorithms/bias-correction.ts); `mixq apply` then corrects them the same way.
   */
  readonly biasCorrection?: boolean;
}

export interface PlanTotals {
  readonly elements: number;
  readonly bytes: number;
  readonly bitsPerWeight: number;
  readonly predictedDamage: number;
  readonly measuredDamage?: number;
}

export interface PlanSolver {
  /** 'highs' | 'dp' | 'greedy' | 'brute-force' | 'rule' | 'uniform' | 'manual' | ... (free text). */
  readonly name: string;
  /** 'optimal' | 'time-limit' | 'heuristic' | ... (free text). */
  readonly status: string;
  readonly gap?: number;
  readonly timeMs?: number;
}

export interface Plan {
  readonly schemaVersion: 1;
  readonly model: PlanModel;
  readonly budget: PlanBudget;
  readonly objective: PlanObjective;
  readonly weights: readonly PlanWeight[];
  readonly totals: PlanTotals;
  readonly solver: PlanSolver;
  readonly latency?: PlanLatency;
}

/** Totals recomputed from the weights (after a hand edit, or to fill `totals` when building a plan). */
export function planTotals(weights: readonly PlanWeight[]): PlanTotals {
  let elements = 0;
  let bytes = 0;
  let bits = 0;
  let predictedDamage = 0;
  let measured = 0;
  let allMeasured = weights.length > 0;
  for (const w of weights) {
    const n = w.shape.reduce((p, d) => p * d, 1);
    elements += n;
    bytes += w.bytes;
    bits += w.bitsPerWeight * n;
    predictedDamage += w.predictedDamage;
    if (w.measuredDamage === undefined) allMeasured = false;
    else measured += w.measuredDamage;
  }
  return {
    elements,
    bytes,
    bitsPerWeight: elements === 0 ? 0 : bits / elements,
    predictedDamage,
    ...(allMeasured ? { measuredDamage: measured } : {}),
  };
}

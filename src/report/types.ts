/**
 * The input of every report renderer (HTML, terminal, JSON): plain data, no behaviour, JSON-serialisable.
 * `mixq quantize` fills it from the sensitivity analysis (src/analysis/sensitivity), the allocation
 * sweep (src/analysis/allocate: paretoSweep, uniformMix, ruleMix), the plan (src/plan) and its own
 * evaluations; the renderers only read it. Names (weights, schemes, series) come from untrusted model
 * files: renderers escape them.
 *
 * Units: sizes are stored bytes of the quantized weights (scales included); bits per weight are exact
 * averages including scales; times are milliseconds.
 */
import type { MeasureResult } from '../analysis/output-measures.ts';

export const REPORT_SCHEMA_VERSION = 1;

export interface ReportModel {
  /** Display name, e.g. 'gpt-tiny' or 'PP-OCRv4 rec'. */
  readonly name: string;
  /** Source file format, e.g. 'onnx', 'gguf', 'safetensors'. */
  readonly format: string;
  /** Number of quantizable weight elements (the denominator of bits per weight). */
  readonly elements?: number;
  /** Bytes of the quantizable weights at fp32 (4 * elements when omitted and elements is known). */
  readonly fp32Bytes?: number;
}

export interface ReportMetric {
  /** Task metric, e.g. 'perplexity', 'CER'. */
  readonly name: string;
  /** Its value for the unquantized (fp32) model. */
  readonly fp32: number;
  /** Whether a lower or a higher value is better (perplexity, CER: lower; accuracy: higher). */
  readonly direction: 'lower' | 'higher';
  /** Optional unit shown after values, e.g. '%'. */
  readonly unit?: string;
}

/** One point of a size-vs-metric curve: one quantized model, evaluated. */
export interface ReportPoint {
  readonly bitsPerWeight: number;
  readonly bytes: number;
  /** Task metric measured on this quantized model. */
  readonly metric: number;
  /** Budget that produced it (mixq plans), e.g. '3.5 b/w'. */
  readonly budget?: string;
  /** Total predicted damage of the allocation (proxy), when known. */
  readonly predictedDamage?: number;
  /**
   * 95% paired-bootstrap interval of the metric's change from fp32 over the evaluation items (lines,
   * windows): a change whose interval holds 0 is within the evaluation data's noise.
   */
  readonly metricChangeCi?: readonly [number, number];
  /** How this plan was chosen among the plans tried at its budget (mixq plans). */
  readonly selection?: ReportSelection;
  /** Each measured output's statistics vs fp32 on the evaluation data (user models' measures). */
  readonly outputs?: readonly MeasureResult[];
}

/**
 * The plans tried at one budget and the one kept: the solver's plan for the proxy damage and the uniform
 * plans (one candidate scheme everywhere) within 10% below the budget, each scored on the validation
 * split; the best validation metric is kept (the solver's plan on ties). For an accuracy target
 * (--max-loss), the plans of the bisection over the frontier and the smallest one within the target.
 */
export interface ReportSelection {
  /** Label of the plan kept, e.g. 'proxy', 'uniform int8-pc-rtn'. */
  readonly chosen: string;
  /** What `validation` measures, e.g. 'bits/char on validation', 'KL to fp32 per frame (nats) ...'. */
  readonly metric: string;
  /** Unit shown after validation values, e.g. '%'. */
  readonly unit?: string;
  readonly tried: readonly {
    readonly label: string;
    readonly bitsPerWeight: number;
    readonly bytes: number;
    /** `metric` on the validation split. */
    readonly validation: number;
  }[];
  /** The fp32 model's metric on the validation split, when the choice compared with it (--max-loss). */
  readonly fp32?: number;
}

/**
 * A curve on the Pareto chart. 'mixq' = the plans (one point per budget), 'uniform' = one scheme
 * everywhere (INT8, INT4 RTN g128, NVFP4, ...), 'rule' = a llama.cpp-style rule mix (Q4_K_M's rule).
 */
export interface ReportSeries {
  /** Legend label, e.g. 'mixq', 'INT4 GPTQ g32', 'Q4_K_M rule'. Unique within a report. */
  readonly name: string;
  readonly kind: 'mixq' | 'uniform' | 'rule';
  readonly points: readonly ReportPoint[];
}

/** One weight of the chosen plan, for the per-layer bits map. */
export interface ReportLayer {
  readonly name: string;
  /** Block / layer index; weights without one (embeddings, head) may omit it. */
  readonly layer?: number;
  /** Role, e.g. 'attn_qkv', 'ffn_down', 'conv', 'output'. */
  readonly role?: string;
  readonly bitsPerWeight: number;
  /** Short scheme label, e.g. 'int4 g32 gptq', 'Q6_K', 'nvfp4'. */
  readonly scheme: string;
  readonly elements?: number;
  readonly bytes?: number;
}

/**
 * Per-weight damage of each candidate scheme (sensitivity analysis). `damage[i]` belongs to
 * `candidates[i]`; null = not measured. A report with only a reference candidate has one entry.
 */
export interface ReportSensitivity {
  /** The damage measure, e.g. 'KL divergence', 'imatrix MSE'. */
  readonly measure: string;
  readonly candidates: readonly string[];
  readonly weights: readonly {
    readonly name: string;
    readonly layer?: number;
    readonly role?: string;
    readonly damage: readonly (number | null)[];
  }[];
}

/** The chosen plan: its budget, totals and result. */
export interface ReportPlan {
  /** Budget as the user gave it, e.g. '--bits 4.0'. */
  readonly budget: string;
  readonly weights: number;
  readonly elements: number;
  readonly bytes: number;
  readonly bitsPerWeight: number;
  readonly predictedDamage: number;
  readonly measuredDamage?: number;
  /** Task metric of the quantized model. */
  readonly metric?: number;
  /** 95% paired-bootstrap interval of the metric's change from fp32 (ReportPoint.metricChangeCi). */
  readonly metricChangeCi?: readonly [number, number];
  /** e.g. 'highs' / 'optimal'. */
  readonly solver?: string;
  readonly solverStatus?: string;
  /** How the plan was chosen on the validation split (ReportSelection). */
  readonly selection?: ReportSelection;
  /** The data the selection was scored on. */
  readonly validation?: string;
}

/** How well one cheap proxy ranks the measured end-to-end damage. */
export interface ReportCorrelation {
  readonly proxy: string;
  /** Which model / data the correlation was measured on. */
  readonly model?: string;
  /** Spearman rank correlation, -1..1. */
  readonly spearman: number;
  readonly kendall?: number;
  /** Number of (proxy, measured) pairs. */
  readonly n: number;
}

export interface ReportTiming {
  readonly step: string;
  readonly ms: number;
}

export interface ReportData {
  readonly schemaVersion: 1;
  readonly title?: string;
  readonly model: ReportModel;
  readonly metric: ReportMetric;
  /** The budgets swept, as labels, e.g. ['3 b/w', '3.5 b/w', '4 b/w', '5 b/w']. */
  readonly budgets: readonly string[];
  readonly plan: ReportPlan;
  readonly series: readonly ReportSeries[];
  readonly layers: readonly ReportLayer[];
  readonly sensitivity: ReportSensitivity;
  readonly correlations: readonly ReportCorrelation[];
  readonly timings: readonly ReportTiming[];
  /** Free-text provenance: mixq version, command line, date. */
  readonly generated?: { readonly at?: string; readonly by?: string; readonly command?: string };
  /** Short remarks shown under the summary. */
  readonly notes?: readonly string[];
}

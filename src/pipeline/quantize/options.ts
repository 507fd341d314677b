/**
 * The options of `mixq quantize` / `mixq plan`, grouped by concern: the task (model and data sizes), the
 * budget, the candidates (schemes, damage measure, bias correction), what is evaluated (sweep, selection,
 * baselines) and the output (target, whether a file is built).
 */
import type { PlanBudget } from '../../plan/schema.ts';
import type { Scheme } from '../../quant/scheme.ts';
import type { TaskOptions } from '../tasks.node.ts';
import type { TargetName } from './targets.ts';

export type QuantizeBudget = PlanBudget;

/** What the quantized weights can be and how their damage is measured. */
export interface CandidateOptions {
  /**
   * Candidate schemes on the row frame (parse ids at the edge with parseCandidateIds) instead of the
   * target's default set.
   */
  readonly schemes?: readonly Scheme[];
  /** Damage the allocator minimises: the noise-calibrated proxy (default) or the measured KL ('kl'). */
  readonly damage?: 'noiseCalibrated' | 'kl';
  /**
   * Correct the float biases of quantized layers for the mean output shift (Q - W) E[x] on the calibration
   * data (src/quant/algorithms/bias-correction.ts), in every evaluation and in the written model. Default:
   * the target's (on for onnx and none; gguf and safetensors do not carry corrected biases, an error if
   * asked).
   */
  readonly biasCorrection?: boolean;
}

/** What is evaluated besides the chosen plan, and how plans are searched. */
export interface EvaluationOptions {
  /** Budgets (bits per weight) of the Pareto sweep drawn in the report. Default 3, 3.5, 4, 5. */
  readonly sweep?: readonly number[];
  /**
   * At every budget, score the solver's plan and the uniform plans of the candidate set within 10% below
   * the budget on the task's validation split and keep the best, so that a plan never measures worse
   * than one scheme everywhere at its size would. Default true; false keeps the solver's plan.
   */
  readonly select?: boolean;
  /** Evaluate uniform baselines and the rule mix, and mixq at each baseline's size. Default true. */
  readonly baselines?: boolean;
  /** HiGHS time limit per solve, seconds (default 20). */
  readonly timeLimitSec?: number;
}

/** What is written. */
export interface OutputOptions {
  /**
   * 'onnx' (default; every candidate format: onnxruntime's quantized operators where they take it, else
   * bit-plane packed), 'onnx-native' (onnxruntime's quantized operators only: weights stay low-bit in
   * memory at run time), 'gguf' (the bundled GPT; ggml block types), 'safetensors' (RTN formats, packed),
   * 'none' (simulated only). The target also decides the default candidates (targets.ts).
   */
  readonly target?: TargetName;
  /** Build the output file (and check it against the simulation). Default true. */
  readonly write?: boolean;
}

/**
 * The plan's speed in mixq's engine, for targets it runs (--emit runtime): a measured cost table
 * (latency.node.ts) predicts each weight product's time, and a bound on their sum per decode token is one
 * more constraint of the allocation.
 */
export interface LatencyOptions {
  /**
   * Bound on the predicted milliseconds per decode token of the weight products, together with a size or
   * loss budget (a `{ kind: 'latency' }` budget states its own bound and no size).
   */
  readonly msPerToken?: number;
  /** A cost table file to use instead of the one measured on this machine and cached. */
  readonly costTable?: string;
  /** Threads of the engine the plan is for (default 1). */
  readonly threads?: number;
  /**
   * The engine's activation mode the plan is for (EngineActivations; default 'auto'): 'lut8' costs int1..int4
   * schemes in the lookup-table layout the engine then runs them in (`mixq run --activations lut8`).
   */
  readonly activations?: 'auto' | 'lut8';
}

export interface QuantizeOptions {
  /** 'gpt' (default), 'ocr' or a path to an .onnx model. */
  readonly model?: string;
  /** Calibration, validation and evaluation sizes of the task (tasks.node.ts). */
  readonly task?: TaskOptions;
  readonly budget: QuantizeBudget;
  readonly candidates?: CandidateOptions;
  readonly evaluation?: EvaluationOptions;
  readonly output?: OutputOptions;
  readonly latency?: LatencyOptions;
  /**
   * Threads GPTQ and AWQ use for their matrix work (runtime/matrix-pool.node.ts; default the machine's
   * parallelism; 1 = this thread only). The results are the same bytes for any count.
   */
  readonly matrixThreads?: number;
  readonly onProgress?: (step: string, done: number, total: number) => void;
  readonly log?: (line: string) => void;
}

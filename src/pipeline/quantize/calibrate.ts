/**
 * Stage 1, calibrate: the weight-fed session of the loaded model, the task's calibration probe, and the
 * activation statistics of every weight's input (E[x], E[x^2], X^T X; two folds for held-out scoring of
 * candidates fitted to the data), and which weights' biases bias correction will correct.
 *
 *   takes  the run context, the candidate schemes, whether biases are corrected
 *   gives  Calibrated: the fed model, the calibration (probe + statistics), the bias-corrected weights
 */
import { fittedToData } from '../../analysis/sensitivity/score.ts';
import type { Scheme } from '../../quant/scheme.ts';
import { type Calibration, calibrateModel } from '../../runtime/sensitivity.node.ts';
import type { WeightFedModel } from '../../runtime/weights.node.ts';
import type { RunContext } from './context.ts';

export interface Calibrated {
  readonly fed: WeightFedModel;
  readonly calibration: Calibration;
  /** Weights whose float bias will be corrected (bias correction on), else undefined. */
  readonly biasCorrected?: ReadonlySet<string>;
}

export async function calibrate(
  ctx: RunContext,
  candidates: readonly Scheme[],
  biasCorrection: boolean,
): Promise<Calibrated> {
  const fed = await ctx.model.fed({ captureInputs: true });
  const calibration = await calibrateModel(fed, await ctx.task.probe(fed), {
    folds: candidates.some(fittedToData),
  });
  return {
    fed,
    calibration,
    ...(biasCorrection ? { biasCorrected: new Set(ctx.model.biases.names.keys()) } : {}),
  };
}

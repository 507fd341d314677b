/**
 * Evaluation rows of a GGUF language-model job (browser-safe): each model's scores on the evaluation
 * windows against the input model, with 95% paired-bootstrap intervals over windows
 * (runtime/metrics.ts pairedChangeInterval, 2000 seeded resamples):
 *   - KL(input || model) per token, nats: interval of its mean (the input's own KL is 0 on every window);
 *   - top-1 agreement with the input: interval of its share;
 *   - perplexity: the model's, and the interval of its ratio to the input's (exp of the paired change in
 *     nats per token);
 *   - between mixq's plan and a baseline at the same size: the interval of KL(mixq) - KL(baseline).
 */
import { lmItems, type LmScore } from '../../runtime/lm-windows.ts';
import { pairedChangeInterval } from '../../runtime/metrics.ts';
import type { LmTypePlan } from './plans.ts';

export interface LmEvalRow {
  readonly label: string;
  readonly kind: LmTypePlan['kind'] | 'input';
  readonly fileBytes: number;
  readonly bitsPerWeight: number;
  readonly weightBytes: number;
  readonly predictedDamage?: number;
  /** Mean KL(input || model), nats per token, and its 95% interval. */
  readonly kl: number;
  readonly klCi: readonly [number, number];
  readonly top1: number;
  readonly top1Ci: readonly [number, number];
  readonly perplexity: number;
  /** 95% interval of perplexity / the input's perplexity. */
  readonly perplexityRatioCi: readonly [number, number];
  readonly natsPerToken: number;
  readonly tokens: number;
  readonly windows: number;
}

/** A model's row against the input's score on the same windows. */
export function evalRow(
  plan: Pick<LmTypePlan, 'label' | 'kind' | 'fileBytes' | 'bitsPerWeight' | 'weightBytes'> & {
    predictedDamage?: number;
  },
  input: LmScore,
  s: LmScore,
): LmEvalRow {
  const kl = pairedChangeInterval(lmItems(input, 'kl'), lmItems(s, 'kl'));
  const t1 = pairedChangeInterval(lmItems(input, 'top1'), lmItems(s, 'top1'));
  const nll = pairedChangeInterval(lmItems(input, 'nll'), lmItems(s, 'nll'));
  return {
    label: plan.label,
    kind: plan.kind,
    fileBytes: plan.fileBytes,
    bitsPerWeight: plan.bitsPerWeight,
    weightBytes: plan.weightBytes,
    ...(plan.predictedDamage !== undefined ? { predictedDamage: plan.predictedDamage } : {}),
    kl: s.klMean ?? 0,
    klCi: kl,
    top1: s.top1Agreement ?? 1,
    // the input agrees with itself everywhere: the change from 1 plus 1
    top1Ci: [1 + t1[0], 1 + t1[1]],
    perplexity: s.perplexity,
    perplexityRatioCi: [Math.exp(nll[0]), Math.exp(nll[1])],
    natsPerToken: s.natsPerToken,
    tokens: s.tokens,
    windows: s.windows,
  };
}

/** mixq's plan against a baseline at (at most) the baseline's size, on the same windows. */
export interface LmComparison {
  readonly baseline: string;
  readonly baselineKind: LmTypePlan['kind'];
  readonly baselineBytes: number;
  readonly mixqBytes: number;
  readonly baselineKl: number;
  readonly mixqKl: number;
  /** 95% paired interval of KL(mixq) - KL(baseline): below 0 everywhere = mixq better beyond noise. */
  readonly differenceCi: readonly [number, number];
  readonly mixqBetter: boolean;
  /** The same type map (mixq's solver chose the baseline's types). */
  readonly samePlan: boolean;
}

export function compareRows(
  base: LmEvalRow,
  baseScore: LmScore,
  mixq: LmEvalRow,
  mixqScore: LmScore,
  samePlan: boolean,
): LmComparison {
  const d = pairedChangeInterval(lmItems(baseScore, 'kl'), lmItems(mixqScore, 'kl'));
  return {
    baseline: base.label,
    baselineKind: base.kind as LmTypePlan['kind'],
    baselineBytes: base.fileBytes,
    mixqBytes: mixq.fileBytes,
    baselineKl: base.kl,
    mixqKl: mixq.kl,
    differenceCi: d,
    mixqBetter: mixq.kl < base.kl,
    samePlan,
  };
}

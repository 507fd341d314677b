/**
 * Stage 6, report: the plan file (every planned weight's scheme on its tensor axes, exact bytes, damage;
 * the model's identity, budget, objective and solver) and the report data (curve, baselines, per-layer
 * choices, sensitivity, proxy correlations, timings, notes).
 *
 *   takes  the run context and what the earlier stages gave
 *   gives  the Plan and the ReportData
 */
import type { Allocation } from '../../analysis/allocate/problem.ts';
import { schemeId } from '../../analysis/sensitivity/candidates.ts';
import { type DamageSource, proxyCorrelation } from '../../analysis/sensitivity/table.ts';
import { solverRecord } from '../../plan/from-allocation.ts';
import {
  PLAN_SCHEMA_VERSION,
  type Plan,
  type PlanBudget,
  type PlanWeight,
  planTotals,
} from '../../plan/schema.ts';
import { schemeOnTensor } from '../../quant/scheme.ts';
import type { ReportData, ReportSeries } from '../../report/types.ts';
import { type Allocated, budgetLabel } from './allocate.ts';
import type { RunContext } from './context.ts';
import type { Evaluator } from './evaluate.ts';
import type { Selector } from './select.ts';
import type { Sensitivity } from './sensitivity.ts';

/** The option each weight takes in an allocation. */
export function chosenOptions(sens: Sensitivity, a: Allocation) {
  return sens.weights.map((w, i) => ({ w, o: w.options[a.choice[i]!]! }));
}

/** The plan of the chosen allocation (schemes stated on each weight's tensor axes). */
export function buildPlan(
  ctx: RunContext,
  sens: Sensitivity,
  chosen: Allocation,
  budget: PlanBudget,
  damage: DamageSource,
  biasCorrected: boolean,
): Plan {
  const weights: PlanWeight[] = chosenOptions(sens, chosen).map(({ w, o }) => ({
    name: w.name,
    shape: [...w.layout.dims],
    scheme: schemeOnTensor(o.scheme, w.layout),
    bitsPerWeight: o.bits / w.elements,
    bytes: o.bytes,
    predictedDamage: o.damage,
    ...(o.measuredKl !== undefined ? { measuredDamage: o.measuredKl } : {}),
  }));
  const { task } = ctx;
  return {
    schemaVersion: PLAN_SCHEMA_VERSION,
    model: ctx.model.identity,
    budget,
    objective: {
      damage: damage === 'kl' ? 'kl' : 'noise-calibrated-kl',
      metric: task.metric.name,
      calibration: { data: task.calibration, size: task.calibrationSize },
      ...(biasCorrected ? { biasCorrection: true } : {}),
    },
    weights,
    totals: planTotals(weights),
    solver: solverRecord(chosen),
  };
}

export interface ReportInput {
  readonly sens: Sensitivity;
  readonly ev: Evaluator;
  readonly sel: Selector;
  readonly plan: Plan;
  readonly allocated: Allocated;
  readonly sweep: readonly number[];
  readonly select: boolean;
  readonly damage: DamageSource;
  readonly series: readonly ReportSeries[];
  readonly notes: readonly string[];
}

export function buildReport(ctx: RunContext, r: ReportInput): ReportData {
  const { task } = ctx;
  const { sens, plan, damage } = r;
  const { chosen, chosenMetric } = r.allocated;
  const info = new Map(sens.weights.map((w) => [w.name, w] as const));
  const layerOf = (name: string) => {
    const w = info.get(name) ?? ctx.model.tensors.get(name);
    return {
      ...(w?.layer !== undefined ? { layer: w.layer } : {}),
      ...(w?.role !== undefined ? { role: w.role } : {}),
    };
  };
  const corr = (['noiseCalibrated', 'output', 'imatrix', 'weight'] as const)
    .map((p) => ({ p, c: proxyCorrelation(sens.analysis.table, p) }))
    .filter((x) => x.c.pairs > 0 && damage === 'kl');
  return {
    schemaVersion: 1,
    title: `mixq plan for ${task.displayName}`,
    model: { name: task.displayName, format: 'onnx', elements: sens.elements, fp32Bytes: 4 * sens.elements },
    metric: r.ev.metric,
    budgets: [...r.sweep.map((b) => `${b} b/w`)],
    plan: {
      budget: budgetLabel(plan.budget),
      weights: plan.weights.length,
      elements: sens.elements,
      bytes: chosen.bytes,
      bitsPerWeight: chosen.bitsPerWeight,
      predictedDamage: chosen.damage,
      metric: chosenMetric,
      ...r.ev.allocationCi(chosen),
      ...r.sel.selectionOf(chosen),
      ...(r.select ? { validation: task.validation } : {}),
      solver: chosen.solver,
      solverStatus: chosen.status,
    },
    series: [...r.series],
    layers: chosenOptions(sens, chosen).map(({ w, o }, i) => ({
      name: w.name,
      ...layerOf(w.name),
      bitsPerWeight: plan.weights[i]!.bitsPerWeight,
      scheme: schemeId(o.scheme),
      elements: w.elements,
      bytes: o.bytes,
    })),
    sensitivity: {
      measure:
        damage === 'kl' ? 'KL divergence (measured, this weight alone)' : 'noise-calibrated KL (predicted)',
      candidates: sens.candidates.map(schemeId),
      weights: sens.analysis.table.weights.map((w) => ({
        name: w.name,
        ...layerOf(w.name),
        damage: sens.candidates.map((s) => {
          const e = w.entries.find((x) => x.scheme === s);
          const v = e ? (damage === 'kl' ? e.measured?.kl : e.proxies.noiseCalibrated) : undefined;
          return v === undefined || !Number.isFinite(v) ? null : v;
        }),
      })),
    },
    correlations: corr.map(({ p, c }) => ({
      proxy: p,
      model: task.displayName,
      spearman: c.overall,
      n: c.pairs,
    })),
    timings: ctx.timings,
    generated: { at: new Date().toISOString(), by: 'mixq quantize' },
    notes: [...r.notes],
  };
}

/**
 * Building a plan from an allocation: the solver picks scheme ids per weight (src/analysis/allocate); the
 * plan records the full scheme behind each id, the chosen candidate's exact size and predicted damage,
 * the totals and how the solver did.
 */
import type { Allocation, AllocationProblem } from '../analysis/allocate/problem.ts';
import { MixqError } from '../core/errors.ts';
import { validatePlan } from './parse.ts';
import {
  PLAN_SCHEMA_VERSION,
  type Plan,
  type PlanBudget,
  type PlanModel,
  type PlanObjective,
  type PlanScheme,
  type PlanSolver,
  type PlanWeight,
  planTotals,
} from './schema.ts';

export interface PlanFromAllocationInput {
  readonly model: PlanModel;
  readonly objective: PlanObjective;
  readonly problem: AllocationProblem;
  readonly allocation: Allocation;
  /** Shape of every weight of the problem, by name. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** The scheme behind every scheme id the allocation uses. */
  readonly schemes: ReadonlyMap<string, PlanScheme>;
  /** Default: the problem's budget. */
  readonly budget?: PlanBudget;
}

/**
 * A validated plan for an allocation.
 * @example planFromAllocation({ model, objective: { damage: 'kl' }, problem, allocation, shapes, schemes })
 */
export function planFromAllocation(input: PlanFromAllocationInput): Plan {
  const { problem, allocation } = input;
  const weights: PlanWeight[] = problem.weights.map((w, i) => {
    const c = w.candidates[allocation.choice[i]!];
    if (!c)
      throw new MixqError(`no candidate chosen for '${w.name}'`, {
        source: 'allocation',
        field: `choice[${i}]`,
      });
    const shape = input.shapes.get(w.name);
    if (!shape) throw new MixqError(`no shape for weight '${w.name}'`, { source: 'shapes', field: w.name });
    const n = shape.reduce((p, d) => p * d, 1);
    if (n !== w.elements)
      throw new MixqError(`shape [${shape.join(', ')}] has ${n} elements`, {
        source: 'shapes',
        field: w.name,
        expected: `${w.elements} elements`,
      });
    const scheme = input.schemes.get(c.scheme);
    if (!scheme)
      throw new MixqError(`no scheme definition for id '${c.scheme}'`, {
        source: 'schemes',
        field: c.scheme,
        expected: `one of ${[...input.schemes.keys()].join(', ')}`,
      });
    return {
      name: w.name,
      shape: [...shape],
      scheme,
      bitsPerWeight: (c.bits ?? 8 * c.bytes) / n,
      bytes: c.bytes,
      predictedDamage: c.damage,
    };
  });
  const budget: PlanBudget =
    input.budget ??
    (problem.budget.kind === 'bytes'
      ? { kind: 'bytes', bytes: Math.floor(problem.budget.bytes) }
      : { kind: 'bitsPerWeight', bits: problem.budget.bits });
  return validatePlan(
    {
      schemaVersion: PLAN_SCHEMA_VERSION,
      model: input.model,
      budget,
      objective: input.objective,
      weights,
      totals: planTotals(weights),
      solver: solverRecord(allocation),
    },
    'plan from allocation',
  );
}

/** How the solver did, as a plan records it (the gap only when finite). */
export function solverRecord(allocation: Allocation): PlanSolver {
  return {
    name: allocation.solver,
    status: allocation.status,
    ...(allocation.gap !== undefined && Number.isFinite(allocation.gap) ? { gap: allocation.gap } : {}),
    timeMs: allocation.timeMs,
  };
}

/**
 * A plan document holding one weight with `scheme` (as a plan file would hold it), for the tests of plan
 * schemes; its bits and bytes are the scheme's exact cost on that shape.
 */
import type { PlanScheme } from '../src/plan/schema.ts';

export function oneWeightPlan(
  scheme: PlanScheme,
  shape: readonly number[],
  cost: { readonly bits: number; readonly bytes: number },
) {
  const n = shape.reduce((p, d) => p * d, 1);
  return {
    schemaVersion: 1 as const,
    model: { file: 'm.onnx', size: 1 },
    budget: { kind: 'bitsPerWeight' as const, bits: 4 },
    objective: { damage: 'kl' },
    weights: [
      { name: 'w', shape, scheme, bitsPerWeight: cost.bits / n, bytes: cost.bytes, predictedDamage: 0 },
    ],
    totals: { elements: n, bytes: cost.bytes, bitsPerWeight: cost.bits / n, predictedDamage: 0 },
    solver: { name: 'manual', status: 'heuristic' as const },
  };
}

/**
 * The type maps a GGUF language-model job compares (browser-safe): uniform types (one ggml type
 * everywhere, with llama.cpp's shape fallback where a row does not fit, F16 when nothing does) and
 * llama.cpp's named mixes (analysis/allocate/llama-mix.ts), with their exact file sizes and bits per
 * weight over the quantized tensors, as `mixq plan` counts them.
 */
import {
  type LlamaMixName,
  LLAMA_MIXES,
  llamaMixTypes,
  llamaShapeFallback,
} from '../../analysis/allocate/llama-mix.ts';
import type { LlmConfig } from '../../io/llm/config.ts';
import type { PlanBudget } from '../../plan/schema.ts';
import { type GgufDamageTable, ggufFileBytes } from '../gguf/damage.ts';

/** A named type map with its size. */
export interface LmTypePlan {
  readonly label: string;
  readonly kind: 'mixq' | 'llama.cpp' | 'uniform';
  readonly types: ReadonlyMap<string, string>;
  /** Whole GGUF file bytes. */
  readonly fileBytes: number;
  /** 8 * bytes / elements over the quantized (planned) tensors. */
  readonly bitsPerWeight: number;
  /** Bytes of the planned tensors. */
  readonly weightBytes: number;
  /** Sum of the table's (calibrated) damage: predicted KL when the table is calibrated. */
  readonly predictedDamage: number;
  /** A baseline encoded with the importance matrix (llama-quantize --imatrix). */
  readonly imatrix?: boolean;
}

/** Size, bits and predicted damage of a type map on a table. */
export function typePlan(
  table: GgufDamageTable,
  label: string,
  kind: LmTypePlan['kind'],
  types: ReadonlyMap<string, string>,
): LmTypePlan {
  let bytes = 0;
  let elements = 0;
  let damage = 0;
  for (const w of table.weights) {
    const c = w.candidates.find((x) => x.type === types.get(w.name))!;
    bytes += c.bytes;
    elements += w.elements;
    damage += c.damage;
  }
  return {
    label,
    kind,
    types,
    fileBytes: ggufFileBytes(table, types),
    bitsPerWeight: (8 * bytes) / elements,
    weightBytes: bytes,
    predictedDamage: damage,
  };
}

/**
 * Uniform type T: T where the row fits, else llama.cpp's fallback for T when it is a candidate, else F16
 * (else the tensor's first candidate). One plan per candidate type that some tensor takes; maps equal to
 * an earlier one dropped.
 */
export function uniformPlans(table: GgufDamageTable): LmTypePlan[] {
  const out: LmTypePlan[] = [];
  const seen = new Set<string>();
  for (const t of table.types) {
    const types = new Map<string, string>();
    for (const w of table.weights) {
      const has = (x: string | undefined) => x !== undefined && w.candidates.some((c) => c.type === x);
      const fb = llamaShapeFallback(t, w.ne[0]!);
      types.set(w.name, has(t) ? t : has(fb) ? fb! : has('F16') ? 'F16' : w.candidates[0]!.type);
    }
    const key = [...types.values()].join();
    // a type no tensor can take (every row fell back) is the fallback's own uniform plan
    if (seen.has(key) || ![...types.values()].includes(t)) continue;
    seen.add(key);
    out.push(typePlan(table, `uniform ${t}`, 'uniform', types));
  }
  return out;
}

/** llama.cpp's named mixes on this model; the ones llama-quantize refuses are returned as notes. */
export function llamaMixPlans(
  table: GgufDamageTable,
  config: Pick<LlmConfig, 'numHeads' | 'numKvHeads' | 'numLayers'>,
  mixes: readonly LlamaMixName[] = LLAMA_MIXES,
): { plans: LmTypePlan[]; notes: string[] } {
  const plans: LmTypePlan[] = [];
  const notes: string[] = [];
  const tensors = table.weights.map((w) => ({ name: w.name, ne: w.ne }));
  for (const mix of mixes) {
    const r = llamaMixTypes(tensors, mix, {
      nGqa: Math.max(1, Math.round(config.numHeads / config.numKvHeads)),
      nLayer: config.numLayers,
    });
    if ('refused' in r) {
      notes.push(r.refused);
      continue;
    }
    const missing = table.weights.find((w) => !w.candidates.some((c) => c.type === r.types.get(w.name)));
    if (missing) {
      notes.push(`${mix}: type ${r.types.get(missing.name)} of '${missing.name}' is not a candidate here`);
      continue;
    }
    plans.push(typePlan(table, mix, 'llama.cpp', r.types));
  }
  return { plans, notes };
}

/** The plan's size in the budget's unit (bits per weight or file bytes). */
export function budgetValue(p: LmTypePlan, budget: PlanBudget): number {
  return budget.kind === 'bytes' ? p.fileBytes : p.bitsPerWeight;
}

/** Plans within 10% below the budget (and not over it). */
export function withinBudget(plans: readonly LmTypePlan[], budget: PlanBudget): LmTypePlan[] {
  const b = budget.kind === 'bytes' ? budget.bytes : budget.kind === 'bitsPerWeight' ? budget.bits : NaN;
  return plans.filter((p) => {
    const v = budgetValue(p, budget);
    return v <= b * (1 + 1e-12) && v >= 0.9 * b;
  });
}

/** The budget `mixq quantize <language model>` uses when none is given, and why (printed, in the notes). */
export interface DefaultLmBudget {
  readonly budget: PlanBudget;
  readonly reason: string;
}

/**
 * The default budget of a GGUF language model: the file size of llama.cpp's Q4_K_M mix for this model (the
 * mix llama.cpp users reach for first) when llama-quantize would build it from these candidates; else the
 * smallest file the candidates allow (every weight at its smallest type), so a model whose rows fit no
 * 4-bit block (stories260K: ffn_down rows of 172 values stay F16) still gets a feasible plan.
 * @example defaultLmBudget(table, config).budget // { kind: 'bytes', bytes: <Q4_K_M file size> }
 */
export function defaultLmBudget(
  table: GgufDamageTable,
  config: Pick<LlmConfig, 'numHeads' | 'numKvHeads' | 'numLayers'>,
): DefaultLmBudget {
  const { plans, notes } = llamaMixPlans(table, config, ['Q4_K_M']);
  const q4km = plans[0];
  if (q4km)
    return {
      budget: { kind: 'bytes', bytes: q4km.fileBytes },
      reason: `no --bits or --size: the size of llama.cpp's Q4_K_M mix for this model, --size ${q4km.fileBytes} (${q4km.bitsPerWeight.toFixed(3)} bits per weight)`,
    };
  const smallest = new Map(
    table.weights.map(
      (w) => [w.name, w.candidates.reduce((a, c) => (c.bytes < a.bytes ? c : a)).type] as const,
    ),
  );
  const min = typePlan(table, 'smallest', 'uniform', smallest);
  return {
    budget: { kind: 'bytes', bytes: min.fileBytes },
    reason: `no --bits or --size, and llama.cpp's Q4_K_M mix cannot be built here (${notes[0] ?? 'no plan'}): the smallest file the candidates allow, --size ${min.fileBytes} (${min.bitsPerWeight.toFixed(3)} bits per weight)`,
  };
}

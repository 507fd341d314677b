/**
 * The mixed-precision allocation problem as plain data, and its reduction to a multiple-choice knapsack.
 *
 * Every quantizable weight i has candidate schemes j, each with its exact storage (bytes, and optionally
 * the exact information bits), a predicted damage that adds up over weights (a per-layer proxy or a
 * measured single-layer KL), and optionally a latency. Choose one scheme per weight to minimise the total
 * damage subject to a size budget (bytes, or average bits per weight including scales), optionally a
 * latency budget, per-weight allowed / forced schemes and groups of weights that must share a scheme
 * (tied embeddings, fused projections quantized together).
 *
 * The solvers (milp.ts, dp.ts, greedy.ts) never see groups or allowed sets: `reduceProblem` folds them
 * into "items", one per group (or lone weight), whose options are the schemes every member allows, with
 * costs, damages and latencies summed over the members. This reduction is exact: a group sharing scheme s
 * costs exactly the sum of its members' costs under s.
 *
 * Browser-safe, no dependencies beyond core.
 */
import { MixqError } from '../../core/errors.ts';

/** One candidate scheme for one weight. */
export interface AllocCandidate {
  /** Scheme id, unique within the weight; tied weights share a scheme by equal ids. */
  readonly scheme: string;
  /** Exact stored bytes, scales / zero points / side data included. A non-negative integer. */
  readonly bytes: number;
  /**
   * Exact information bits (storageCost().bits); a non-negative integer. Used by bits-per-weight budgets so
   * they are not distorted by byte rounding; defaults to 8 * bytes.
   */
  readonly bits?: number;
  /** Predicted damage, additive over weights. Finite. */
  readonly damage: number;
  /** Optional latency (any additive unit); required on every candidate when maxLatency is set. */
  readonly latency?: number;
}

export interface AllocWeight {
  readonly name: string;
  /** Number of weight elements (the denominator of bits per weight). */
  readonly elements: number;
  readonly candidates: readonly AllocCandidate[];
  /** Scheme ids this weight may use (default: all its candidates). */
  readonly allowed?: readonly string[];
  /** The one scheme this weight must use. */
  readonly forced?: string;
}

export type AllocBudget =
  | { readonly kind: 'bytes'; readonly bytes: number }
  /** Average bits per weight, scales included: sum(bits) <= b * sum(elements), b read as the decimal it prints as. */
  | { readonly kind: 'bitsPerWeight'; readonly bits: number };

export interface AllocationProblem {
  readonly weights: readonly AllocWeight[];
  readonly budget: AllocBudget;
  /** Optional bound on total latency. */
  readonly maxLatency?: number;
  /** Groups of weight names that must all use the same scheme. */
  readonly groups?: readonly (readonly string[])[];
}

export type AllocStatus = 'optimal' | 'time-limit' | 'heuristic';

/** A solution: one candidate per weight, with its exact totals. */
export interface Allocation {
  /** Index into weights[i].candidates, per weight. */
  readonly choice: readonly number[];
  /** Chosen scheme id, per weight. */
  readonly schemes: readonly string[];
  readonly bytes: number;
  readonly bits: number;
  /** bits / total elements. */
  readonly bitsPerWeight: number;
  readonly damage: number;
  readonly latency?: number;
  readonly status: AllocStatus;
  /** Best proven lower bound on the damage (MILP / DP); equal to damage when proven optimal. */
  readonly lowerBound?: number;
  /** Relative optimality gap (damage - lowerBound) / max(|damage|, tiny), from the solver's proven bound. */
  readonly gap?: number;
  readonly solver: 'highs' | 'dp' | 'greedy' | 'brute-force' | 'uniform';
  readonly timeMs: number;
}

/** One option of an item: a scheme every member of the item allows. */
export interface ItemOption {
  readonly scheme: string;
  /** Knapsack cost: bytes, or bits for a bits-per-weight budget. Integer. */
  readonly cost: number;
  readonly damage: number;
  readonly latency: number;
  /** Candidate index chosen in each member weight. */
  readonly pick: readonly number[];
}

/** A group of weights (often a single one) that takes one scheme. */
export interface Item {
  /** Indices into problem.weights. */
  readonly members: readonly number[];
  readonly options: readonly ItemOption[];
}

/** The problem as a multiple-choice knapsack: pick one option per item, sum(cost) <= capacity. */
export interface ReducedProblem {
  readonly problem: AllocationProblem;
  readonly items: readonly Item[];
  /** Integer capacity in the cost unit (bytes, or bits for a bits-per-weight budget). */
  readonly capacity: number;
  readonly costUnit: 'bytes' | 'bits';
  readonly maxLatency?: number;
  readonly totalElements: number;
}

const SRC = 'allocation problem';

function fail(field: string, message: string, expected?: string): never {
  throw new MixqError(message, { source: SRC, field, ...(expected ? { expected } : {}) });
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * floor(b * n) for b read as the decimal string it prints as (4.1 means 41/10, not the double just below),
 * computed exactly with BigInt, so "4.1 bits per weight" over 10 elements allows exactly 41 bits.
 * @example exactBitsCapacity(4.1, 10) // 41
 */
export function exactBitsCapacity(bitsPerWeight: number, elements: number): number {
  if (!(Number.isFinite(bitsPerWeight) && bitsPerWeight >= 0))
    fail('budget.bits', `bad bits per weight ${bitsPerWeight}`, 'a finite number >= 0');
  // Number -> shortest round-trip decimal, then to an exact fraction p / 10^k.
  const s = bitsPerWeight.toString();
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(s);
  if (!m) fail('budget.bits', `cannot read ${s} as a decimal`);
  const intPart = m[1] ?? '0';
  const frac = m[2] ?? '';
  const exp = Number(m[3] ?? '0') - frac.length;
  let num = BigInt(intPart + frac) * BigInt(elements);
  let den = 1n;
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den = 10n ** BigInt(-exp);
  return Number(num / den); // BigInt division truncates = floor for non-negative values
}

function checkWeight(w: AllocWeight, i: number): void {
  const at = `weights[${i}]`;
  if (typeof w.name !== 'string' || w.name === '')
    fail(`${at}.name`, 'missing weight name', 'a non-empty string');
  if (!(isNonNegInt(w.elements) && w.elements > 0))
    fail(`${at}.elements`, `bad element count ${w.elements}`, 'a positive integer');
  if (!Array.isArray(w.candidates) || w.candidates.length === 0)
    fail(`${at}.candidates`, `weight '${w.name}' has no candidates`, 'at least one candidate');
  const seen = new Set<string>();
  w.candidates.forEach((c, j) => {
    const cat = `${at}.candidates[${j}]`;
    if (typeof c.scheme !== 'string' || c.scheme === '') fail(`${cat}.scheme`, 'missing scheme id');
    if (seen.has(c.scheme)) fail(`${cat}.scheme`, `duplicate scheme '${c.scheme}' in weight '${w.name}'`);
    seen.add(c.scheme);
    if (!isNonNegInt(c.bytes)) fail(`${cat}.bytes`, `bad byte count ${c.bytes}`, 'a non-negative integer');
    if (c.bits !== undefined && !isNonNegInt(c.bits))
      fail(`${cat}.bits`, `bad bit count ${c.bits}`, 'a non-negative integer');
    if (!Number.isFinite(c.damage)) fail(`${cat}.damage`, `bad damage ${c.damage}`, 'a finite number');
    if (c.latency !== undefined && !Number.isFinite(c.latency))
      fail(`${cat}.latency`, `bad latency ${c.latency}`, 'a finite number');
  });
  const names = w.candidates.map((c) => c.scheme);
  for (const s of w.allowed ?? [])
    if (!seen.has(s)) fail(`${at}.allowed`, `scheme '${s}' is not a candidate`, `one of ${names.join(', ')}`);
  if (w.forced !== undefined && !seen.has(w.forced))
    fail(`${at}.forced`, `scheme '${w.forced}' is not a candidate`, `one of ${names.join(', ')}`);
}

/** The scheme ids a weight may use, in candidate order. */
function allowedIndices(w: AllocWeight): number[] {
  const allow = w.allowed ? new Set(w.allowed) : undefined;
  const out: number[] = [];
  w.candidates.forEach((c, j) => {
    if (w.forced !== undefined ? c.scheme === w.forced : !allow || allow.has(c.scheme)) out.push(j);
  });
  return out;
}

/**
 * Validates a problem and folds groups and allowed sets into items. Throws MixqError naming the field for
 * bad data, and when no assignment fits (naming the smallest achievable size).
 */
export function reduceProblem(problem: AllocationProblem): ReducedProblem {
  const ws = problem.weights;
  if (!Array.isArray(ws) || ws.length === 0) fail('weights', 'no weights to allocate', 'at least one weight');
  ws.forEach(checkWeight);
  const index = new Map<string, number>();
  ws.forEach((w, i) => {
    if (index.has(w.name)) fail(`weights[${i}].name`, `duplicate weight name '${w.name}'`);
    index.set(w.name, i);
  });
  const bitsBudget = problem.budget.kind === 'bitsPerWeight';
  const costUnit = bitsBudget ? 'bits' : 'bytes';
  const useLatency = problem.maxLatency !== undefined;
  if (useLatency && !Number.isFinite(problem.maxLatency))
    fail('maxLatency', `bad latency bound ${problem.maxLatency}`, 'a finite number');

  // Union-find would be overkill: groups are few and small; a weight may be in at most one group.
  const groupOf = new Array<number>(ws.length).fill(-1);
  const groups: number[][] = [];
  (problem.groups ?? []).forEach((g, gi) => {
    const members: number[] = [];
    for (const name of g) {
      const i = index.get(name);
      if (i === undefined) fail(`groups[${gi}]`, `unknown weight '${name}'`);
      if (groupOf[i] !== -1 && groupOf[i] !== groups.length)
        fail(`groups[${gi}]`, `weight '${name}' is in two groups`, 'each weight in at most one group');
      if (groupOf[i] === -1) members.push(i);
      groupOf[i] = groups.length;
    }
    if (members.length > 0) groups.push(members);
  });
  const itemsMembers: number[][] = [];
  ws.forEach((_, i) => {
    const g = groupOf[i]!;
    if (g === -1) itemsMembers.push([i]);
    else if (groups[g]![0] === i) itemsMembers.push(groups[g]!);
  });

  const items: Item[] = itemsMembers.map((members) => {
    const first = ws[members[0]!]!;
    const options: ItemOption[] = [];
    for (const j0 of allowedIndices(first)) {
      const scheme = first.candidates[j0]!.scheme;
      const pick: number[] = [];
      let cost = 0;
      let damage = 0;
      let latency = 0;
      let ok = true;
      for (const m of members) {
        const w = ws[m]!;
        const j = allowedIndices(w).find((k) => w.candidates[k]!.scheme === scheme);
        if (j === undefined) {
          ok = false;
          break;
        }
        const c = w.candidates[j]!;
        if (useLatency && c.latency === undefined)
          fail(
            `weights[${m}].candidates[${j}].latency`,
            'missing latency while maxLatency is set',
            'a number',
          );
        pick.push(j);
        cost += bitsBudget ? (c.bits ?? 8 * c.bytes) : c.bytes;
        damage += c.damage;
        latency += c.latency ?? 0;
      }
      if (ok) options.push({ scheme, cost, damage, latency, pick });
    }
    if (options.length === 0) {
      const names = members.map((m) => ws[m]!.name).join(', ');
      fail('groups', `weights ${names} have no allowed scheme in common`);
    }
    return { members, options };
  });

  const totalElements = ws.reduce((s, w) => s + w.elements, 0);
  let capacity: number;
  if (problem.budget.kind === 'bytes') {
    const b = problem.budget.bytes;
    if (!(Number.isFinite(b) && b >= 0)) fail('budget.bytes', `bad byte budget ${b}`, 'a number >= 0');
    capacity = Math.floor(b);
  } else if (problem.budget.kind === 'bitsPerWeight') {
    capacity = exactBitsCapacity(problem.budget.bits, totalElements);
  } else {
    fail('budget.kind', 'unknown budget kind', "'bytes' or 'bitsPerWeight'");
  }
  const reduced: ReducedProblem = {
    problem,
    items,
    capacity,
    costUnit,
    totalElements,
    ...(useLatency ? { maxLatency: problem.maxLatency } : {}),
  };
  checkFeasibleBounds(reduced);
  return reduced;
}

/** Smallest and largest total cost over all assignments (each item at its cheapest / dearest option). */
export function costRange(r: ReducedProblem): { min: number; max: number } {
  let min = 0;
  let max = 0;
  for (const it of r.items) {
    min += Math.min(...it.options.map((o) => o.cost));
    max += Math.max(...it.options.map((o) => o.cost));
  }
  return { min, max };
}

function describeCost(r: ReducedProblem, cost: number): string {
  return r.costUnit === 'bytes'
    ? `${cost} bytes (${((8 * cost) / r.totalElements).toFixed(4)} bits per weight)`
    : `${cost} bits (${(cost / r.totalElements).toFixed(4)} bits per weight)`;
}

/** The separate size and latency bounds; a joint infeasibility is left to the solver to report. */
function checkFeasibleBounds(r: ReducedProblem): void {
  const { min } = costRange(r);
  if (min > r.capacity)
    throw markInfeasible(
      new MixqError(
        `budget of ${describeCost(r, r.capacity)} is below the smallest achievable size ${describeCost(r, min)}`,
        { source: SRC, field: 'budget', expected: `at least ${describeCost(r, min)}` },
      ),
    );
  if (r.maxLatency !== undefined) {
    const minLat = r.items.reduce((s, it) => s + Math.min(...it.options.map((o) => o.latency)), 0);
    if (minLat > r.maxLatency)
      throw markInfeasible(
        new MixqError(`latency bound ${r.maxLatency} is below the smallest achievable latency ${minLat}`, {
          source: SRC,
          field: 'maxLatency',
          expected: `at least ${minLat}`,
        }),
      );
  }
}

const infeasible = new WeakSet<Error>();

/** Whether an error says that no assignment meets the budget (size, latency or both together). */
export function isInfeasible(e: unknown): boolean {
  return e instanceof Error && infeasible.has(e);
}

/** The reduced-problem error for a jointly infeasible size + latency budget. */
export function jointInfeasible(r: ReducedProblem): MixqError {
  const { min } = costRange(r);
  return markInfeasible(
    new MixqError(
      `no assignment meets both the size budget ${describeCost(r, r.capacity)} and the latency bound ${r.maxLatency}; smallest achievable size alone is ${describeCost(r, min)}`,
      { source: SRC, field: 'budget' },
    ),
  );
}

function markInfeasible(e: MixqError): MixqError {
  infeasible.add(e);
  return e;
}

/**
 * Expands an option choice per item to a full Allocation with exact totals recomputed from the original
 * candidates (not from solver floats).
 */
export function buildAllocation(
  r: ReducedProblem,
  optionPerItem: readonly number[],
  meta: Pick<Allocation, 'status' | 'solver' | 'timeMs'> & { lowerBound?: number },
): Allocation {
  const ws = r.problem.weights;
  const choice = new Array<number>(ws.length).fill(-1);
  r.items.forEach((it, k) => {
    const o = it.options[optionPerItem[k]!]!;
    it.members.forEach((m, t) => {
      choice[m] = o.pick[t]!;
    });
  });
  return allocationFromChoice(r, choice, meta);
}

/** Scheme ids and summed bytes, bits, damage and latency of a candidate index per weight. */
function choiceTotals(ws: readonly AllocWeight[], choice: readonly number[]) {
  let bytes = 0;
  let bits = 0;
  let damage = 0;
  let latency = 0;
  const schemes = choice.map((j, i) => {
    const c = ws[i]!.candidates[j]!;
    bytes += c.bytes;
    bits += c.bits ?? 8 * c.bytes;
    damage += c.damage;
    latency += c.latency ?? 0;
    return c.scheme;
  });
  return { schemes, bytes, bits, damage, latency };
}

/** Exact totals of a per-weight candidate choice. */
export function allocationFromChoice(
  r: ReducedProblem,
  choice: readonly number[],
  meta: Pick<Allocation, 'status' | 'solver' | 'timeMs'> & { lowerBound?: number },
): Allocation {
  const { schemes, bytes, bits, damage, latency } = choiceTotals(r.problem.weights, choice);
  const lb = meta.lowerBound;
  // Clamped at 0: a solver's bound may exceed the exact damage by its tolerance.
  const gap = lb === undefined ? undefined : Math.max(0, damage - lb) / Math.max(Math.abs(damage), 1e-300);
  return {
    choice,
    schemes,
    bytes,
    bits,
    bitsPerWeight: bits / r.totalElements,
    damage,
    ...(r.maxLatency !== undefined ? { latency } : {}),
    status: meta.status,
    ...(lb !== undefined ? { lowerBound: Math.min(lb, damage) } : {}),
    ...(gap !== undefined ? { gap } : {}),
    solver: meta.solver,
    timeMs: meta.timeMs,
  };
}

/** Total cost of an item-option choice in the reduced unit. */
export function choiceCost(r: ReducedProblem, optionPerItem: readonly number[]): number {
  let s = 0;
  r.items.forEach((it, k) => {
    s += it.options[optionPerItem[k]!]!.cost;
  });
  return s;
}

/** Wall clock in ms (performance.now exists in browsers and Node >= 16). */
export function nowMs(): number {
  return performance.now();
}

/**
 * Every plan that gives all weights the same scheme, for each scheme that every weight has as a candidate
 * and may use (`allowed`, `forced`), smallest first. The budget is ignored: these are the uniform points
 * of the problem's plan space, for a caller to compare with the solver's plans.
 *
 * @example
 * uniformAllocations(problem).filter((a) => a.bytes <= budgetBytes)
 */
export function uniformAllocations(problem: AllocationProblem): Allocation[] {
  const ws = problem.weights;
  const first = ws[0];
  if (!first) return [];
  const totalElements = ws.reduce((s, w) => s + w.elements, 0);
  const out: Allocation[] = [];
  for (const c0 of first.candidates) {
    const scheme = c0.scheme;
    const choice: number[] = [];
    for (const w of ws) {
      const j = w.candidates.findIndex((c) => c.scheme === scheme);
      const usable = w.forced ? w.forced === scheme : !w.allowed || w.allowed.includes(scheme);
      if (j < 0 || !usable) break;
      choice.push(j);
    }
    if (choice.length !== ws.length) continue;
    const { schemes, bytes, bits, damage, latency } = choiceTotals(ws, choice);
    out.push({
      choice,
      schemes,
      bytes,
      bits,
      bitsPerWeight: bits / totalElements,
      damage,
      ...(problem.maxLatency !== undefined ? { latency } : {}),
      status: 'heuristic',
      solver: 'uniform',
      timeMs: 0,
    });
  }
  return out.sort((a, b) => a.bits - b.bits);
}

/**
 * The exact allocation solver: a 0/1 mixed-integer program solved by HiGHS (the `highs` npm package,
 * HiGHS compiled to WebAssembly; https://highs.dev, Huangfu & Hall 2018).
 *
 *   minimise   sum_k sum_o damage_ko x_ko
 *   subject to sum_o x_ko = 1                        for every item k (a weight, or a tied group)
 *              sum_k sum_o (cost_ko - minCost_k) x_ko <= capacity - sum_k minCost_k
 *              sum_k sum_o latency_ko x_ko <= maxLatency   (when given)
 *              x_ko in {0, 1}
 *
 * Costs are shifted by each item's cheapest option (extra bytes or bits) and the budget row is scaled so
 * its largest coefficient is 1; damages are scaled so the objective is about 1000 (HiGHS' tolerances
 * then mean the same thing for every model). Options dominated by another option of the same item (no cheaper, no
 * better, no faster) are dropped, which cannot change the optimum; items left with one option are
 * constants and get no columns. Greedy's assignment (greedy.ts) is passed as the starting incumbent.
 *
 * Speed: in this single-threaded WebAssembly build most time goes into closing the last ~0.1% of gap at
 * the root (cuts, sub-MIP heuristics, restarts), so the default stops at HiGHS' own 1e-4 relative gap;
 * pass relGap 0 to prove optimality exactly (see bench/allocate.bench.ts for times).
 *
 * The WebAssembly module is loaded lazily, once, on the first solve (`import('highs')`; in Node the
 * loader reads highs.wasm next to itself). Browser bundles do not contain it: the package's `browser`
 * field maps 'highs' to nothing, because its ESM build imports `node:module` (behind a run-time check that
 * bundlers cannot see), which would make every default browser bundle of mixq fail. A web page that
 * wants the exact solver hands in the module with `setHighsModule(() => import(url))` (and `locateFile` or
 * `wasmBinary` through `loadHighs` for highs.wasm).
 *
 * The returned assignment is re-checked with exact integer arithmetic; if solver tolerances let it exceed
 * the budget by a few bytes, the row is tightened by the excess and the model solved again.
 */
import type { Highs, InitOptions } from 'highs';
import { MixqError } from '../../core/errors.ts';
import {
  type AllocationProblem,
  type Allocation,
  buildAllocation,
  choiceCost,
  jointInfeasible,
  nowMs,
  type Item,
  type ReducedProblem,
  reduceProblem,
} from './problem.ts';
import { solveReducedGreedy } from './greedy.ts';

let highsPromise: Promise<Highs> | undefined;
let highsModule: () => Promise<unknown> = () => import('highs');

/**
 * Where the HiGHS module comes from (default `import('highs')`; empty in browser bundles, see above).
 * @example setHighsModule(() => import('https://cdn.jsdelivr.net/npm/highs@1.15.3/build/highs.mjs'))
 */
export function setHighsModule(load: () => Promise<unknown>): void {
  highsModule = load;
  highsPromise = undefined;
}

/**
 * The HiGHS runtime, loaded on first use and shared afterwards. Options apply only to the first call
 * (browser bundles that cannot resolve highs.wasm pass `locateFile` or `wasmBinary` here before solving).
 * @example const highs = await loadHighs(); highs.version.string // '1.15.1'
 */
export function loadHighs(options?: InitOptions): Promise<Highs> {
  highsPromise ??= highsModule()
    .then((m: unknown) => pickLoader(m)(options))
    .catch((e: unknown) => {
      highsPromise = undefined;
      throw new MixqError(`cannot load the HiGHS solver: ${e instanceof Error ? e.message : String(e)}`, {
        source: 'highs',
      });
    });
  return highsPromise;
}

type HighsLoader = (options?: InitOptions) => Promise<Highs>;

/**
 * The loader function from the imported module. Node's "import" condition gives the package's ESM build
 * (default export = loader); TypeScript types the package as CommonJS, and some bundlers wrap CJS in a
 * second `default`, so accept both shapes.
 */
function pickLoader(m: unknown): HighsLoader {
  const d = (m as { default?: unknown }).default;
  if (typeof d === 'function') return d as HighsLoader;
  const dd = (d as { default?: unknown } | undefined)?.default;
  if (typeof dd === 'function') return dd as HighsLoader;
  throw new Error('the highs module has no loader function (in a browser bundle: setHighsModule)');
}

export interface MilpOptions {
  /** Wall-clock limit in seconds (default 60). On expiry the best assignment found is returned with its gap. */
  readonly timeLimitSec?: number;
  /** Relative gap at which HiGHS may stop (default 1e-4, HiGHS' own; 0 = prove optimality exactly). */
  readonly relGap?: number;
}

interface Columns {
  readonly item: Int32Array;
  readonly option: Int32Array;
}

/**
 * Solves the allocation exactly (to `relGap`) with HiGHS.
 * @example
 * const a = await solveMilp({ weights, budget: { kind: 'bitsPerWeight', bits: 4 } });
 * a.schemes // chosen scheme per weight; a.damage, a.bytes, a.gap
 */
export async function solveMilp(problem: AllocationProblem, opts: MilpOptions = {}): Promise<Allocation> {
  const r = reduceProblem(problem);
  const highs = await loadHighs();
  return solveReducedMilp(highs, r, opts);
}

/** The MILP on an already reduced problem (the Pareto sweep reuses one reduction for many budgets). */
export function solveReducedMilp(highs: Highs, r: ReducedProblem, opts: MilpOptions = {}): Allocation {
  const t0 = nowMs();
  // Greedy's assignment is a good incumbent: HiGHS then only has to close a gap that is usually tiny.
  let start: readonly number[] | undefined;
  // The LP relaxation's optimum is a valid lower bound when HiGHS stops before it has its own.
  let lpBound = Number.NEGATIVE_INFINITY;
  try {
    const g = solveReducedGreedy(r);
    start = g.options;
    lpBound = g.lpBound;
  } catch (e) {
    if (!(e instanceof MixqError)) throw e;
    start = undefined; // greedy cannot start under a tight latency bound; HiGHS searches alone
  }
  let slack = 0;
  // At most a few re-solves: each one tightens the budget row by the exact excess of the rounded solution.
  for (let attempt = 0; attempt < 4; attempt++) {
    const res = runOnce(highs, r, opts, slack, slack === 0 ? start : undefined);
    const cost = choiceCost(r, res.options);
    if (cost <= r.capacity) {
      return buildAllocation(r, res.options, {
        status: res.status,
        solver: 'highs',
        timeMs: nowMs() - t0,
        // After tightening, HiGHS bounds a smaller problem; only the LP bound still holds.
        lowerBound: slack === 0 ? Math.max(res.lowerBound, lpBound) : lpBound,
      });
    }
    slack += cost - r.capacity;
  }
  throw new MixqError('HiGHS returned assignments over budget even after tightening', { source: 'highs' });
}

interface RunResult {
  readonly options: number[];
  readonly status: 'optimal' | 'time-limit';
  readonly lowerBound: number;
}

/**
 * Options of an item that no other option dominates (no more cost, damage and latency, and strictly less
 * in one, or equal in all and earlier). Dropping them cannot change the optimum.
 */
function undominated(it: Item): number[] {
  const os = it.options;
  const keep: number[] = [];
  for (let o = 0; o < os.length; o++) {
    const a = os[o]!;
    const dominated = os.some((b, q) => {
      if (q === o || b.cost > a.cost || b.damage > a.damage || b.latency > a.latency) return false;
      const equal = b.cost === a.cost && b.damage === a.damage && b.latency === a.latency;
      return !equal || q < o;
    });
    if (!dominated) keep.push(o);
  }
  return keep;
}

/** The items' free columns (options left after the dominance filter) and what the fixed items add up to. */
interface FreeColumns {
  /** Per item: the one option left, or -1 when the item is free. */
  readonly fixed: number[];
  readonly cols: Columns;
  readonly minCostSum: number;
  readonly fixedDamage: number;
  readonly fixedLatency: number;
  readonly maxAbsDamage: number;
}

function freeColumns(items: ReducedProblem['items']): FreeColumns {
  const kept = items.map(undominated);
  const fixed: number[] = kept.map((k) => (k.length === 1 ? k[0]! : -1));
  let minCostSum = 0;
  let fixedDamage = 0;
  let fixedLatency = 0;
  let maxAbsDamage = 0;
  const colItem: number[] = [];
  const colOption: number[] = [];
  items.forEach((it, k) => {
    const minCost = Math.min(...it.options.map((o) => o.cost));
    minCostSum += minCost;
    for (const o of it.options) maxAbsDamage = Math.max(maxAbsDamage, Math.abs(o.damage));
    if (fixed[k]! >= 0) {
      fixedDamage += it.options[fixed[k]!]!.damage;
      fixedLatency += it.options[fixed[k]!]!.latency;
      return;
    }
    for (const o of kept[k]!) {
      colItem.push(k);
      colOption.push(o);
    }
  });
  const cols: Columns = { item: Int32Array.from(colItem), option: Int32Array.from(colOption) };
  return { fixed, cols, minCostSum, fixedDamage, fixedLatency, maxAbsDamage };
}

/**
 * The objective's and the budget row's scales. HiGHS measures its relative gap as (ub - lb) / max(1, |ub|):
 * damages are scaled so the objective is about 1000 (at the starting assignment, else at all-max damage),
 * making mip_rel_gap a true relative gap; extra costs so that the largest is 1.
 */
function objectiveScales(
  items: ReducedProblem['items'],
  f: FreeColumns,
  start: readonly number[] | undefined,
): { scale: number; costScale: number } {
  let ref = 0;
  items.forEach((it, k) => {
    ref += start
      ? Math.abs(it.options[start[k]!]!.damage)
      : Math.max(...it.options.map((o) => Math.abs(o.damage)));
  });
  if (!(ref > 0)) ref = f.maxAbsDamage;
  const scale = ref > 0 ? 1000 / ref : 1;
  let maxExtra = 0;
  for (let c = 0; c < f.cols.item.length; c++) {
    const it = items[f.cols.item[c]!]!;
    const minCost = Math.min(...it.options.map((q) => q.cost));
    maxExtra = Math.max(maxExtra, it.options[f.cols.option[c]!]!.cost - minCost);
  }
  return { scale, costScale: maxExtra > 0 ? 1 / maxExtra : 1 };
}

/**
 * The MILP in HiGHS' form: one binary column per free option; rows "choose exactly one" per free item,
 * then the budget row (extra cost over each item's cheapest option), then the latency row.
 */
function milpModel(
  highs: Highs,
  r: ReducedProblem,
  f: FreeColumns,
  sc: { scale: number; costScale: number },
  slack: number,
): ReturnType<Highs['createModel']> {
  const items = r.items;
  const { cols, fixed } = f;
  const nCols = cols.item.length;
  const rowOfItem = new Int32Array(items.length).fill(-1);
  let nRows = 0;
  fixed.forEach((x, k) => {
    if (x === -1) rowOfItem[k] = nRows++;
  });
  const budgetRow = nRows++;
  const latencyRow = r.maxLatency !== undefined ? nRows++ : -1;
  const perCol = latencyRow >= 0 ? 3 : 2;
  const starts = new Int32Array(nCols + 1);
  const indices = new Int32Array(nCols * perCol);
  const values = new Float64Array(nCols * perCol);
  const colCost = new Float64Array(nCols);
  let nz = 0;
  for (let c = 0; c < nCols; c++) {
    const k = cols.item[c]!;
    const it = items[k]!;
    const o = it.options[cols.option[c]!]!;
    const minCost = Math.min(...it.options.map((q) => q.cost));
    colCost[c] = o.damage * sc.scale;
    starts[c] = nz;
    indices[nz] = rowOfItem[k]!;
    values[nz++] = 1;
    const extra = o.cost - minCost;
    if (extra !== 0) {
      indices[nz] = budgetRow;
      values[nz++] = extra * sc.costScale;
    }
    if (latencyRow >= 0 && o.latency !== 0) {
      indices[nz] = latencyRow;
      values[nz++] = o.latency;
    }
  }
  starts[nCols] = nz;
  const rowLower = new Float64Array(nRows);
  const rowUpper = new Float64Array(nRows);
  for (let k = 0; k < items.length; k++) {
    const row = rowOfItem[k]!;
    if (row >= 0) {
      rowLower[row] = 1;
      rowUpper[row] = 1;
    }
  }
  rowLower[budgetRow] = -highs.infinity;
  rowUpper[budgetRow] = (r.capacity - f.minCostSum - slack) * sc.costScale;
  if (latencyRow >= 0) {
    rowLower[latencyRow] = -highs.infinity;
    rowUpper[latencyRow] = r.maxLatency! - f.fixedLatency;
  }
  return highs.createModel({
    numCols: nCols,
    numRows: nRows,
    colCost,
    colLower: new Float64Array(nCols),
    colUpper: new Float64Array(nCols).fill(1),
    rowLower: rowLower.subarray(0, nRows),
    rowUpper: rowUpper.subarray(0, nRows),
    matrix: {
      format: 'csc',
      numRows: nRows,
      numCols: nCols,
      starts,
      indices: indices.subarray(0, nz),
      values: values.subarray(0, nz),
    },
    integrality: new Int32Array(nCols).fill(highs.constants.variableType.integer),
    offset: f.fixedDamage * sc.scale,
  });
}

/**
 * The starting assignment as column values, only if every item's start option survived the dominance
 * filter (it always does for greedy, which picks hull points, unless a dominating twin with equal values
 * came first).
 */
function startColumns(f: FreeColumns, nItems: number, start: readonly number[]): Float64Array | undefined {
  const { cols } = f;
  const nCols = cols.item.length;
  const colValue = new Float64Array(nCols);
  for (let c = 0; c < nCols; c++) if (start[cols.item[c]!] === cols.option[c]) colValue[c] = 1;
  const covered = new Uint8Array(nItems);
  for (let c = 0; c < nCols; c++) if (colValue[c] === 1) covered[cols.item[c]!] = 1;
  return f.fixed.every((x, k) => x !== -1 || covered[k]) ? colValue : undefined;
}

function runOnce(
  highs: Highs,
  r: ReducedProblem,
  opts: MilpOptions,
  slack: number,
  start: readonly number[] | undefined,
): RunResult {
  const items = r.items;
  const f = freeColumns(items);
  const { cols } = f;
  const nCols = cols.item.length;
  const options = f.fixed.slice();
  if (nCols === 0) return { options, status: 'optimal', lowerBound: f.fixedDamage };
  const sc = objectiveScales(items, f, start);
  const model = milpModel(highs, r, f, sc, slack);
  try {
    model.options.set({
      output_flag: false,
      time_limit: opts.timeLimitSec ?? 60,
      mip_rel_gap: opts.relGap ?? 1e-4,
      // The objective is about 1000 (see objectiveScales); an absolute gap far below any real difference.
      mip_abs_gap: 1e-9,
    });
    const colValue = start ? startColumns(f, items.length, start) : undefined;
    if (colValue) model.setSolution({ colValue });
    model.run();
    const status = model.getModelStatus();
    const S = highs.constants.modelStatus;
    if (status === S.infeasible) {
      if (slack > 0)
        throw new MixqError('HiGHS could not fit the budget after tightening for tolerance', {
          source: 'highs',
        });
      throw jointInfeasible(r);
    }
    const hasSolution = Number(model.info.get('primal_solution_status')) === 2;
    if (status !== S.optimal && !(status === S.timeLimit && hasSolution)) {
      if (status === S.timeLimit)
        throw new MixqError(`HiGHS found no feasible assignment within ${opts.timeLimitSec ?? 60} s`, {
          source: 'highs',
          field: 'timeLimitSec',
          expected: 'a longer time limit',
        });
      throw new MixqError(`HiGHS stopped with model status ${status}`, { source: 'highs' });
    }
    const x = model.getSolution().colValue;
    // Per item, the option whose binary is (closest to) 1.
    const best = new Float64Array(items.length).fill(-1);
    for (let c = 0; c < nCols; c++) {
      const k = cols.item[c]!;
      if (x[c]! > best[k]!) {
        best[k] = x[c]!;
        options[k] = cols.option[c]!;
      }
    }
    const dualBound = Number(model.info.get('mip_dual_bound'));
    const lowerBound = Number.isFinite(dualBound) ? dualBound / sc.scale : Number.NEGATIVE_INFINITY;
    return { options, status: status === S.optimal ? 'optimal' : 'time-limit', lowerBound };
  } finally {
    model.dispose();
  }
}

/**
 * GGUF inputs through the plan flow: `mixq plan model.gguf` (damage table -> budgeted allocation ->
 * versioned plan file) and `mixq apply model.gguf plan.json` (plan -> one ggml type per tensor ->
 * requantizeGguf -> written atomically, read back and checked). The measuring and checking logic is
 * in damage.ts, rows.ts and planned.ts; this file holds `mixq plan` (the Node edges: files, hashes,
 * the solver call), apply.node.ts `mixq apply`.
 *
 * Budgets: --bits N = average bits per weight over the requantizable tensors (8 * tensor bytes /
 * elements, block scales included); --size S = the whole output GGUF file in bytes (header, every tensor,
 * alignment padding), exact.
 *
 * The plan records the input's identity (name, size, sha256) and, when an importance matrix weighted the
 * damage, its name and sha256 in objective.calibration.data ('imatrix <name> sha256:<hex>'). Apply refuses
 * another input file, and an importance matrix other than the plan's (also a missing one, or one the plan
 * did not use), unless forced: the written tensors would differ from the ones the damage was measured on.
 */

import type { Allocation } from '../../analysis/allocate/problem.ts';
import { GGML_CANDIDATE_TYPES, ggmlScheme } from '../../analysis/sensitivity/candidates.ts';
import { rowLayout } from '../../quant/layout.ts';
import { schemeOnTensor } from '../../quant/scheme.ts';
import { getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { fileIdentity, fileSource } from '../../io/files.node.ts';
import { type ImatrixData, readImatrix } from '../../io/gguf/imatrix.ts';
import { type GgufFile, readGguf } from '../../io/gguf/read.ts';

import { alignUp } from '../../io/reader.ts';
import { type GgufDamageTable, ggufAllocationProblem, ggufDamageTable } from './damage.ts';

import { solverRecord } from '../../plan/from-allocation.ts';
import { validatePlan } from '../../plan/parse.ts';
import {
  PLAN_SCHEMA_VERSION,
  type Plan,
  type PlanBudget,
  type PlanScheme,
  type PlanWeight,
  planTotals,
} from '../../plan/schema.ts';
import { allocate } from '../quantize/allocate.ts';

export interface PlanGgufOptions {
  /** Average bits per weight over the requantizable tensors, or whole output file bytes. */
  readonly budget: PlanBudget;
  /** Importance-matrix file (imatrix.dat, imatrix GGUF or mixq JSON). */
  readonly imatrix?: string;
  /** Candidate ggml types (default GGUF_PLAN_TYPES: the ggml set plus F16). */
  readonly types?: readonly string[];
  /** Values per tensor measured before rows are sampled (default GGUF_SAMPLE_ELEMENTS). */
  readonly maxSampleElements?: number;
  /** HiGHS time limit, seconds (default 20). */
  readonly timeLimitSec?: number;
  readonly onProgress?: (step: string, done: number, total: number) => void;
}

export interface PlanGgufResult {
  readonly plan: Plan;
  readonly table: GgufDamageTable;
  readonly allocation: Allocation;
  /** Exact size of the GGUF file `mixq apply` writes for this plan. */
  readonly fileBytes: number;
  /** The input as read (tensor infos; its source is closed). */
  readonly tensors: GgufFile['tensors'];
  readonly notes: readonly string[];
}

/** 'imatrix <name> sha256:<hex>' in objective.calibration.data. */
export const IMATRIX_RE = /^imatrix (.+) sha256:([0-9a-f]{64})$/;

export async function loadImatrix(
  path: string,
): Promise<{ data: ImatrixData; file: string; sha256: string }> {
  const src = await fileSource(path);
  let data: ImatrixData;
  try {
    data = await readImatrix(src);
  } finally {
    await src.close();
  }
  const id = await fileIdentity(path);
  return { data, file: id.file, sha256: id.sha256 };
}

export async function openGguf<T>(path: string, f: (file: GgufFile) => Promise<T>): Promise<T> {
  const src = await fileSource(path);
  try {
    return await f(await readGguf(src));
  } finally {
    await src.close();
  }
}

/** Float and MXFP4 types have no ggml sensitivity candidate; their plan schemes, stated directly. */
const EXTRA_SCHEMES: Readonly<
  Record<string, Omit<PlanScheme, 'granularity' | 'blockType'> & { block: boolean }>
> = {
  F32: { format: 'fp32', algorithm: 'rtn', scaleFormat: 'fp32', symmetric: true, block: false },
  F16: { format: 'fp16', algorithm: 'rtn', scaleFormat: 'fp32', symmetric: true, block: false },
  BF16: { format: 'bf16', algorithm: 'rtn', scaleFormat: 'fp32', symmetric: true, block: false },
  MXFP4: { format: 'fp4_e2m1fn', algorithm: 'rtn', scaleFormat: 'e8m0', symmetric: true, block: true },
};

/**
 * The plan scheme of a ggml type on a tensor of row-major `shape` (blocks run along the last axis, ne[0]):
 * the ggml candidate's scheme (ggmlScheme), stated on the tensor's own last axis.
 */
export function ggufScheme(type: string, shape: readonly number[], imatrix: boolean): PlanScheme {
  const bt = getBlockType(type);
  const last = shape.length - 1;
  if (GGML_CANDIDATE_TYPES.includes(bt.name)) {
    const ne0 = shape[last]!;
    const L = rowLayout([shape.slice(0, last).reduce((a, b) => a * b, 1), ne0], 0);
    const s = schemeOnTensor(ggmlScheme(bt.name), L);
    const g = s.granularity.kind === 'group' ? { ...s.granularity, axis: last } : s.granularity;
    return { ...s, granularity: g, algorithm: imatrix ? 'imatrix' : 'rtn' };
  }
  const x = EXTRA_SCHEMES[bt.name];
  if (!x)
    throw new MixqError(`no plan scheme for ggml type ${bt.name}`, {
      source: 'candidates',
      field: 'types',
      expected: `${GGML_CANDIDATE_TYPES.join(', ')}, ${Object.keys(EXTRA_SCHEMES).join(', ')}`,
    });
  const { block, ...rest } = x;
  return {
    ...rest,
    granularity: block ? { kind: 'group', axis: last, size: bt.blockSize } : { kind: 'tensor' },
    blockType: bt.name,
  };
}

/**
 * `mixq plan model.gguf`: measures the damage table, allocates under the budget and returns the plan
 * (not written; the caller writes serialisePlan(plan)).
 */
export async function planGguf(path: string, opts: PlanGgufOptions): Promise<PlanGgufResult> {
  const progress = opts.onProgress ?? (() => {});
  const im = opts.imatrix !== undefined ? await loadImatrix(opts.imatrix) : undefined;
  const { table, tensors } = await openGguf(path, async (file) => ({
    tensors: file.tensors,
    table: await ggufDamageTable(file, {
      ...(im ? { imatrix: im.data } : {}),
      ...(opts.types ? { types: opts.types } : {}),
      ...(opts.maxSampleElements !== undefined ? { maxSampleElements: opts.maxSampleElements } : {}),
      onProgress: (d, t) => progress('damage', d, t),
    }),
  }));
  const problem = ggufAllocationProblem(table, opts.budget);
  const allocation = await allocate(problem, opts.timeLimitSec ?? 20);
  const weights: PlanWeight[] = table.weights.map((w, i) => {
    const c = w.candidates[allocation.choice[i]!]!;
    return {
      name: w.name,
      shape: [...w.shape],
      scheme: ggufScheme(c.type, w.shape, c.imatrix),
      bitsPerWeight: (8 * c.bytes) / w.elements,
      bytes: c.bytes,
      predictedDamage: c.damage,
    };
  });
  const sampled = table.weights.filter((w) => w.sampledRows < w.rows).length;
  const damage =
    `${im ? 'imatrix-weighted' : 'unweighted'} squared error of each tensor re-encoded by the ggml quantizers` +
    (sampled > 0
      ? `; ${sampled} tensors over ${table.maxSampleElements} values measured on evenly spaced rows (scaled to all rows)`
      : '; all rows');
  const id = await fileIdentity(path);
  const plan = validatePlan(
    {
      schemaVersion: PLAN_SCHEMA_VERSION,
      model: id,
      budget: opts.budget,
      objective: {
        damage,
        ...(im ? { calibration: { data: `imatrix ${im.file} sha256:${im.sha256}` } } : {}),
      },
      weights,
      totals: planTotals(weights),
      solver: solverRecord(allocation),
    },
    'gguf plan',
  );
  const fileBytes = table.fixedFileBytes + weights.reduce((s, w) => s + alignUp(w.bytes, table.alignment), 0);
  const notes = [...table.notes];
  const mean = table.weights.filter((w) => w.importance === 'mean').map((w) => w.name);
  if (mean.length > 0)
    notes.push(
      `${mean.length} weights have no importance-matrix entry and are weighted by its mean (e.g. '${mean[0]}')`,
    );
  return { plan, table, allocation, fileBytes, tensors, notes };
}

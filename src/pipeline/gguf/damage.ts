/**
 * GGUF inputs in the plan flow (browser-safe part): the per-(tensor, ggml type) damage and size table,
 * the allocation problem it gives under a budget, and the checks that turn a (possibly hand-edited) plan
 * back into one ggml type per tensor for requantizeGguf (src/io/gguf/requantize.ts).
 *
 * Weights: every tensor llama.cpp would quantize (isRequantizable). Candidates per tensor: ggml types
 * whose block size divides ne[0] (no silent fallback; a type that does not fit is not offered).
 *
 * Damage of type T on tensor W (ggml order, rows of ne[0] values):
 *   sum over rows r, columns j of  w_j * (x_rj - q_rj)^2,   q = decode_T(encode_T(x_r, imatrix))
 * where x is the source tensor dequantized to f32, encode/decode are mixq's bit-exact ggml codecs
 * (src/blocks; the same calls requantizeGguf makes, so the damage is exactly the error of the written
 * tensor) and w is the tensor's importance-matrix entry (mean x^2 per input column; the expert's slice
 * for stacked 3-D expert tensors). With an importance matrix, a tensor without an entry gets the mean of
 * all entries' values as a uniform weight (so its damage is on the same scale); without one, w = 1.
 * T = the source's own type costs 0 (requantizeGguf copies the bytes).
 *
 * Rows: all of them when the tensor has at most `maxSampleElements` values (default 131072); otherwise
 * floor(maxSampleElements / ne[0]) (at least 1) evenly spaced rows, r_k = floor((k + 1/2) * rows / S), and
 * the sum is scaled by rows / S. Deterministic; only the sampled rows are read from the file (positioned
 * reads, rows.ts ggufReadRows), so planning reads ~maxSampleElements values per tensor, not the model.
 *
 * Bytes of T on W = ggml's exact size (rows * ne[0] / blockSize * bytesPerBlock). The whole output file
 * is exactly fixedFileBytes + sum over weights of alignUp(bytes, alignment): the header (every KV kept,
 * general.file_type and general.quantization_version set as u32, tensor infos) padded to the alignment
 * plus every other tensor's padded bytes do not depend on the choice (writeGguf pads every tensor).
 */
import type { AllocationProblem, AllocWeight } from '../../analysis/allocate/problem.ts';
import { GGML_CANDIDATE_TYPES } from '../../analysis/sensitivity/candidates.ts';
import { type BlockTypeTraits, getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import type { ImatrixData } from '../../io/gguf/imatrix.ts';
import type { GgufFile, GgufKV, GgufTensorInfo } from '../../io/gguf/read.ts';
import { GGML_QNT_VERSION, isRequantizable } from '../../io/gguf/requantize.ts';

import { type GgufTensorInput, writeGguf } from '../../io/gguf/write.ts';
import { alignUp } from '../../io/reader.ts';
import type { PlanBudget } from '../../plan/schema.ts';
import {
  GGUF_SAMPLE_ELEMENTS,
  ggufImportance,
  ggufReadRows,
  ggufRowError,
  ggufSampleRows,
  roundTrip,
} from './rows.ts';

export { GGUF_SAMPLE_ELEMENTS } from './rows.ts';

/** Default candidate types: the ggml set of `mixq quantize --emit gguf` plus F16. */
export const GGUF_PLAN_TYPES: readonly string[] = [...GGML_CANDIDATE_TYPES, 'F16'];

/** Types whose ggml quantizer ignores the importance matrix (plain floats, quantize_q8_0 / _mxfp4). */
const IMATRIX_IGNORED: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'Q8_0', 'MXFP4']);

export interface GgufDamageOptions {
  /** Importance matrix (readImatrix, or name -> mean x^2 per input column). */
  readonly imatrix?: ImatrixData | ReadonlyMap<string, Float32Array>;
  /** Candidate ggml types (any case; 'ggml-q4_k' ids accepted). Default GGUF_PLAN_TYPES. */
  readonly types?: readonly string[];
  /** Values per tensor measured before sampling rows (default GGUF_SAMPLE_ELEMENTS). */
  readonly maxSampleElements?: number;
  /** Which tensors are weights (default llama.cpp's rule, isRequantizable). */
  readonly quantizable?: (info: GgufTensorInfo) => boolean;
  /** Called after each weight. */
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface GgufDamageCandidate {
  /** Block-type registry name ('Q4_K', 'F16'). */
  readonly type: string;
  /** Exact tensor bytes. */
  readonly bytes: number;
  /** Importance-weighted squared error (see the file header). */
  readonly damage: number;
  /** ggml's quantizer for this type uses the tensor's importance-matrix entry. */
  readonly imatrix: boolean;
}

export interface GgufDamageWeight {
  readonly name: string;
  readonly ne: readonly number[];
  /** Row-major shape (ne reversed), as the plan records it. */
  readonly shape: readonly number[];
  readonly elements: number;
  /** Source type as ggml spells it ('f32', 'q8_0'). */
  readonly from: string;
  readonly rows: number;
  readonly sampledRows: number;
  /** Where the error weights came from. */
  readonly importance: 'entry' | 'mean' | 'none';
  readonly candidates: readonly GgufDamageCandidate[];
}

export interface GgufDamageTable {
  readonly weights: readonly GgufDamageWeight[];
  readonly alignment: number;
  /** Output file bytes that do not depend on the weights' types (see the file header). */
  readonly fixedFileBytes: number;
  readonly types: readonly string[];
  readonly maxSampleElements: number;
  /** An importance matrix weighted the damage. */
  readonly imatrix: boolean;
  /** Candidate types left out for some tensor because their block size does not divide ne[0]. */
  readonly notes: readonly string[];
}

/** Resolves candidate type names ('q4_k', 'Q4_K', 'ggml-q4_k'); unknown names are MixqErrors. */
export function ggufCandidateTypes(types: readonly string[] = GGUF_PLAN_TYPES): BlockTypeTraits[] {
  const out: BlockTypeTraits[] = [];
  for (const [i, t] of types.entries()) {
    const name = t.trim().replace(/^ggml-/i, '');
    let bt: BlockTypeTraits;
    try {
      bt = getBlockType(name);
    } catch (e) {
      throw new MixqError(`unknown ggml type '${t}'`, {
        source: 'candidates',
        field: `types[${i}]`,
        expected: e instanceof MixqError ? e.expected : 'a ggml type name',
      });
    }
    if (!out.includes(bt)) out.push(bt);
  }
  if (out.length === 0)
    throw new MixqError('no candidate types', { source: 'candidates', expected: 'at least one ggml type' });
  return out;
}

/** The output's KV list as requantizeGguf writes it (file_type's value does not change any size). */
function outputKv(kv: readonly GgufKV[]): GgufKV[] {
  const out = [...kv];
  const set = (e: GgufKV) => {
    const i = out.findIndex((k) => k.key === e.key);
    if (i >= 0) out[i] = e;
    else out.push(e);
  };
  set({ key: 'general.quantization_version', type: 'u32', value: GGML_QNT_VERSION });
  set({ key: 'general.file_type', type: 'u32', value: 0 });
  return out;
}

/** Padded header bytes of the output (tensor infos have the same size whatever the types). */
function headerBytes(file: GgufFile): number {
  const tensors: GgufTensorInput[] = file.tensors.map((t) => ({
    name: t.name,
    ne: t.ne.map(() => 1),
    type: 'F32',
    data: new Uint8Array(4),
  }));
  return writeGguf({ kv: outputKv(file.kv), tensors })[0]!.length;
}

/** Measures the damage / size table of a GGUF file (see the file header). */
export async function ggufDamageTable(
  file: GgufFile,
  opts: GgufDamageOptions = {},
): Promise<GgufDamageTable> {
  const source = file.source;
  const types = ggufCandidateTypes(opts.types);
  const importance = ggufImportance(opts.imatrix, source);
  const maxEl = opts.maxSampleElements ?? GGUF_SAMPLE_ELEMENTS;
  if (!(Number.isSafeInteger(maxEl) && maxEl >= 1))
    throw new MixqError(`bad sample size ${maxEl}`, {
      source: 'options',
      field: 'maxSampleElements',
      expected: 'a positive integer',
    });
  const quantizable = opts.quantizable ?? isRequantizable;
  const alignment = file.alignment;
  const infos = file.tensors.filter((t) => quantizable(t));
  if (infos.length === 0)
    throw new MixqError('no tensor llama.cpp would quantize', {
      source,
      field: 'tensors',
      expected: "2-D+ tensors named '*weight' (not norms, routers, position embeddings)",
    });
  let fixed = headerBytes(file);
  for (const t of file.tensors) if (!quantizable(t)) fixed += alignUp(t.nbytes, alignment);
  const notes: string[] = [];
  const weights: GgufDamageWeight[] = [];
  for (const [i, info] of infos.entries()) {
    const ne0 = info.ne[0]!;
    const nRows = info.nElements / ne0;
    const fits = types.filter((t) => ne0 % t.blockSize === 0);
    const left = types.filter((t) => ne0 % t.blockSize !== 0);
    if (left.length > 0)
      notes.push(`${info.name}: ne[0] = ${ne0} rules out ${left.map((t) => t.name).join(', ')}`);
    if (fits.length === 0)
      throw new MixqError(`no candidate type fits tensor '${info.name}' (ne[0] = ${ne0})`, {
        source: 'candidates',
        field: info.name,
        expected: 'a type whose block size divides ne[0], e.g. F16',
      });
    const imp = importance(info);
    const rows = ggufSampleRows(nRows, ne0, maxEl);
    const x = await ggufReadRows(file, info, rows); // the sampled rows' bytes only
    const scale = rows.length === nRows ? 1 : nRows / rows.length;
    const candidates = fits.map((t): GgufDamageCandidate => {
      const size = (nRows * ne0 * t.bytesPerBlock) / t.blockSize;
      const same = t.ggmlTypeId === info.typeId;
      return {
        type: t.name,
        bytes: size,
        damage: same ? 0 : scale * ggufRowError(info.ne, rows, x, roundTrip(x, info.ne, rows, t, imp), imp),
        imatrix: imp.kind === 'entry' && !same && !IMATRIX_IGNORED.has(t.name),
      };
    });
    weights.push({
      name: info.name,
      ne: info.ne,
      shape: info.shape,
      elements: info.nElements,
      from: info.type.name,
      rows: nRows,
      sampledRows: rows.length,
      importance: imp.kind,
      candidates,
    });
    opts.onProgress?.(i + 1, infos.length, info.name);
  }
  return {
    weights,
    alignment,
    fixedFileBytes: fixed,
    types: types.map((t) => t.name),
    maxSampleElements: maxEl,
    imatrix: opts.imatrix !== undefined,
    notes,
  };
}

/**
 * The allocation problem of a table under a budget. Scheme ids are the type names. A 'bitsPerWeight'
 * budget bounds 8 * tensor bytes / elements over the weights; a 'bytes' budget bounds the whole output
 * file (fixedFileBytes + padded weight bytes). Budgets below the smallest plan are MixqErrors naming it.
 */
export function ggufAllocationProblem(table: GgufDamageTable, budget: PlanBudget): AllocationProblem {
  const weights: AllocWeight[] = table.weights.map((w) => ({
    name: w.name,
    elements: w.elements,
    candidates: w.candidates.map((c) => ({
      scheme: c.type,
      bytes: alignUp(c.bytes, table.alignment),
      bits: 8 * c.bytes,
      damage: c.damage,
    })),
  }));
  const elements = weights.reduce((s, w) => s + w.elements, 0);
  const min = (f: (c: AllocWeight['candidates'][number]) => number) =>
    weights.reduce((s, w) => s + Math.min(...w.candidates.map(f)), 0);
  if (budget.kind === 'bitsPerWeight') {
    const minBits = min((c) => c.bits ?? 8 * c.bytes);
    if (minBits > budget.bits * elements)
      throw new MixqError(`--bits ${budget.bits} is below the smallest plan`, {
        source: 'budget',
        field: 'bits',
        expected: `at least ${(Math.ceil((minBits / elements) * 1e4) / 1e4).toFixed(4)} bits per weight with these candidates`,
      });
    return { weights, budget };
  }
  if (budget.kind === 'bytes') {
    const minFile = table.fixedFileBytes + min((c) => c.bytes);
    if (budget.bytes < minFile)
      throw new MixqError(`--size ${budget.bytes} bytes is below the smallest output file`, {
        source: 'budget',
        field: 'size',
        expected: `at least ${minFile} bytes (whole GGUF file) with these candidates`,
      });
    return { weights, budget: { kind: 'bytes', bytes: budget.bytes - table.fixedFileBytes } };
  }
  throw new MixqError('a GGUF plan needs a size budget', {
    source: 'budget',
    field: 'kind',
    expected: '--bits or --size (--max-loss needs a task metric, which a GGUF file does not bring)',
  });
}

/** Exact bytes of the GGUF file written with these types (fixed part + padded weight bytes). */
export function ggufFileBytes(table: GgufDamageTable, types: ReadonlyMap<string, string>): number {
  let bytes = table.fixedFileBytes;
  for (const w of table.weights) {
    const c = w.candidates.find((x) => x.type === types.get(w.name));
    if (!c)
      throw new MixqError(`no candidate ${types.get(w.name)} for '${w.name}'`, {
        source: 'plan',
        field: w.name,
      });
    bytes += alignUp(c.bytes, table.alignment);
  }
  return bytes;
}

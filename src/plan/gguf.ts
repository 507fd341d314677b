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
 * the sum is scaled by rows / S. Deterministic; the same rows are used to check the written file.
 *
 * Bytes of T on W = ggml's exact size (rows * ne[0] / blockSize * bytesPerBlock). The whole output file
 * is exactly fixedFileBytes + sum over weights of alignUp(bytes, alignment): the header (every KV kept,
 * general.file_type and general.quantization_version set as u32, tensor infos) padded to the alignment
 * plus every other tensor's padded bytes do not depend on the choice (writeGguf pads every tensor).
 */
import type { AllocationProblem, AllocWeight } from '../analysis/allocate/problem.ts';
import { GGML_CANDIDATE_TYPES } from '../analysis/sensitivity/candidates.ts';
import { blockTypeById, type BlockTypeTraits, getBlockType, rowBytes } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import type { ImatrixData } from '../io/gguf/imatrix.ts';
import type { GgufFile, GgufKV, GgufTensorInfo } from '../io/gguf/read.ts';
import { GGML_QNT_VERSION, isRequantizable } from '../io/gguf/requantize.ts';
import { ggmlTypeById } from '../io/gguf/types.ts';
import { type GgufTensorInput, writeGguf } from '../io/gguf/write.ts';
import { alignUp } from '../io/reader.ts';
import type { Plan, PlanBudget } from './schema.ts';

/** Default candidate types: the ggml set of `mixq quantize --emit gguf` plus F16. */
export const GGUF_PLAN_TYPES: readonly string[] = [...GGML_CANDIDATE_TYPES, 'F16'];

/** Values measured per tensor by default before rows are sampled. */
export const GGUF_SAMPLE_ELEMENTS = 1 << 17;

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

function imatrixEntries(
  m: ImatrixData | ReadonlyMap<string, Float32Array> | undefined,
): ReadonlyMap<string, Float32Array> | undefined {
  if (!m) return undefined;
  return 'format' in m ? m.entries : m;
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

/** The deterministic row sample (sorted, distinct) for a tensor of `rows` rows of `ne0` values. */
export function ggufSampleRows(
  rows: number,
  ne0: number,
  maxSampleElements = GGUF_SAMPLE_ELEMENTS,
): Int32Array {
  if (rows * ne0 <= maxSampleElements) return Int32Array.from({ length: rows }, (_, i) => i);
  const s = Math.max(1, Math.min(rows, Math.floor(maxSampleElements / ne0)));
  return Int32Array.from({ length: s }, (_, k) => Math.floor(((k + 0.5) * rows) / s));
}

/** Decodes the given rows of a tensor's bytes (any type src/blocks decodes) into one f32 array. */
export function ggufDecodeRows(
  info: GgufTensorInfo,
  bytes: Uint8Array,
  rows: Int32Array,
  source: string,
): Float32Array {
  const codec = blockTypeById(info.typeId);
  if (!codec)
    throw new MixqError(`cannot dequantize tensor '${info.name}' of type ${info.type.name}`, {
      source,
      field: `tensors.${info.name}.type`,
      expected: 'a type mixq can decode (F32, F16, BF16, Q4_0..Q8_0, Q2_K..Q6_K, IQ4_NL, MXFP4)',
    });
  const ne0 = info.ne[0]!;
  const rb = rowBytes(codec, ne0);
  const out = new Float32Array(rows.length * ne0);
  rows.forEach((r, k) => out.set(codec.decode(bytes.subarray(r * rb, (r + 1) * rb), ne0), k * ne0));
  return out;
}

/** Per-weight error weights: the importance entry (per matrix), a uniform mean, or none. */
export interface GgufImportance {
  readonly kind: 'entry' | 'mean' | 'none';
  /** The imatrix entry (length ne0, or ne0 * experts), to pass to the encoder. */
  readonly entry?: Float32Array;
  /** Uniform weight when kind is 'mean'. */
  readonly uniform: number;
}

/** Mean of every value of every entry (the weight of tensors the importance matrix does not cover). */
function imatrixMean(im: ReadonlyMap<string, Float32Array>): number {
  let s = 0;
  let n = 0;
  for (const v of im.values()) {
    for (const x of v) s += x;
    n += v.length;
  }
  return n > 0 && s > 0 ? s / n : 1;
}

/**
 * The error weights of each tensor for an importance matrix (or none): its entry, checked against the
 * tensor's ne; the mean of all entries for a tensor without one; 1 without a matrix.
 */
export function ggufImportance(
  m: ImatrixData | ReadonlyMap<string, Float32Array> | undefined,
  source: string,
): (info: GgufTensorInfo) => GgufImportance {
  const im = imatrixEntries(m);
  if (!im) return () => ({ kind: 'none', uniform: 1 });
  const mean = imatrixMean(im);
  return (info) => {
    const e = im.get(info.name);
    if (!e) return { kind: 'mean', uniform: mean };
    const ne0 = info.ne[0]!;
    const ne2 = info.ne[2] ?? 1;
    if (!(e.length === ne0 || (ne2 > 1 && e.length === ne0 * ne2)))
      throw new MixqError(`importance matrix entry for '${info.name}' has ${e.length} values`, {
        source,
        field: `imatrix.${info.name}`,
        expected: ne2 > 1 ? `${ne0} or ${ne0 * ne2} (ne[0] x experts)` : `${ne0} (ne[0])`,
      });
    return { kind: 'entry', entry: e, uniform: 1 };
  };
}

/** The importance slice of the matrix holding global row r (rows per matrix = ne[1]). */
function entryRow(imp: GgufImportance, ne: readonly number[], r: number): Float32Array | undefined {
  const e = imp.entry;
  if (!e) return undefined;
  const ne0 = ne[0]!;
  if (e.length === ne0) return e;
  const m = Math.floor(r / (ne[1] ?? 1));
  return e.subarray(m * ne0, (m + 1) * ne0);
}

/** Importance-weighted squared error between rows `x` and `q` (same layout; global row indices `rows`). */
export function ggufRowError(
  ne: readonly number[],
  rows: Int32Array,
  x: Float32Array,
  q: Float32Array,
  imp: GgufImportance,
): number {
  const ne0 = ne[0]!;
  let total = 0;
  for (let k = 0; k < rows.length; k++) {
    const w = entryRow(imp, ne, rows[k]!);
    const o = k * ne0;
    let s = 0;
    if (w) {
      for (let j = 0; j < ne0; j++) {
        const d = x[o + j]! - q[o + j]!;
        s += w[j]! * d * d;
      }
    } else {
      for (let j = 0; j < ne0; j++) {
        const d = x[o + j]! - q[o + j]!;
        s += d * d;
      }
      s *= imp.uniform;
    }
    total += s;
  }
  return total;
}

/**
 * Encodes sampled rows as `type` the way requantizeGguf does (runs of rows of one matrix with that
 * matrix's importance slice) and decodes them back.
 */
function roundTrip(
  x: Float32Array,
  ne: readonly number[],
  rows: Int32Array,
  type: BlockTypeTraits,
  imp: GgufImportance,
): Float32Array {
  const ne0 = ne[0]!;
  const out = new Float32Array(x.length);
  // one encoder call per run of rows that share an importance slice (all rows, or one expert's)
  const perMatrix = imp.entry !== undefined && imp.entry.length !== ne0;
  const matrix = (r: number) => (perMatrix ? Math.floor(r / (ne[1] ?? 1)) : 0);
  let k = 0;
  while (k < rows.length) {
    const w = entryRow(imp, ne, rows[k]!);
    let end = k + 1;
    while (end < rows.length && matrix(rows[end]!) === matrix(rows[k]!)) end++;
    const seg = x.subarray(k * ne0, end * ne0);
    out.set(type.decode(type.encode(seg, w), seg.length), k * ne0);
    k = end;
  }
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
    const bytes = await file.readTensorBytes(info);
    const x = ggufDecodeRows(info, bytes, rows, source);
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

/** One plan weight resolved against the file. */
export interface GgufPlannedTensor {
  readonly info: GgufTensorInfo;
  readonly type: BlockTypeTraits;
  /** Exact bytes of the tensor in that type. */
  readonly bytes: number;
  /** Index in plan.weights. */
  readonly index: number;
}

/**
 * Checks a plan against a GGUF file and returns one type per planned tensor: every weight must name a
 * tensor llama.cpp would quantize, with the tensor's shape and a ggml blockType whose block size divides
 * ne[0]. MixqError (source = `source`, the plan file) otherwise. Stale per-weight bytes (a hand edit that
 * changed the type only) are notes, not errors; requantizable tensors the plan leaves out keep their type.
 */
export function ggufPlannedTensors(
  plan: Plan,
  file: GgufFile,
  source: string,
  quantizable: (info: GgufTensorInfo) => boolean = isRequantizable,
): { tensors: GgufPlannedTensor[]; notes: string[] } {
  const byName = new Map(file.tensors.map((t) => [t.name, t] as const));
  const notes: string[] = [];
  const tensors = plan.weights.map((w, i): GgufPlannedTensor => {
    const at = `weights[${i}]`;
    const info = byName.get(w.name);
    if (!info)
      throw new MixqError(`plan weight '${w.name}' is not a tensor of ${file.source}`, {
        source,
        field: `${at}.name`,
        expected: 'the name of a quantizable tensor of the GGUF file',
      });
    if (!quantizable(info))
      throw new MixqError(`tensor '${w.name}' is not one llama.cpp quantizes`, {
        source,
        field: `${at}.name`,
        expected: "a 2-D+ '*weight' tensor that is not a norm, router or position embedding",
      });
    if (w.shape.length !== info.shape.length || w.shape.some((d, k) => d !== info.shape[k]))
      throw new MixqError(`plan weight '${w.name}' has shape [${w.shape.join(', ')}]`, {
        source,
        field: `${at}.shape`,
        expected: `[${info.shape.join(', ')}] (the tensor's shape, ne reversed)`,
      });
    const bt = w.scheme.blockType;
    if (bt === undefined)
      throw new MixqError(`plan weight '${w.name}' names no ggml type`, {
        source,
        field: `${at}.scheme.blockType`,
        expected: "a ggml type such as 'Q4_K' (GGUF inputs are re-quantized to ggml types)",
      });
    const type = getBlockType(bt);
    const ne0 = info.ne[0]!;
    if (ne0 % type.blockSize !== 0) {
      const ok = GGUF_PLAN_TYPES.filter((t) => ne0 % getBlockType(t).blockSize === 0);
      throw new MixqError(
        `type ${type.name} does not fit '${w.name}': ne[0] = ${ne0} is not a multiple of ${type.blockSize}`,
        {
          source,
          field: `${at}.scheme.blockType`,
          expected: `a type whose block size divides ${ne0}: ${ok.join(', ')}`,
        },
      );
    }
    const bytes = (info.nElements / type.blockSize) * type.bytesPerBlock;
    if (w.bytes !== bytes)
      notes.push(`${at} '${w.name}': plan says ${w.bytes} bytes, ${type.name} takes ${bytes} (edited plan?)`);
    return { info, type, bytes, index: i };
  });
  const planned = new Set(plan.weights.map((w) => w.name));
  const kept = file.tensors.filter((t) => quantizable(t) && !planned.has(t.name));
  if (kept.length > 0)
    notes.push(
      `${kept.length} quantizable tensors are not in the plan and keep their type (e.g. '${kept[0]!.name}')`,
    );
  return { tensors, notes };
}

/** ggml's spelling of a registry type ('Q4_K' -> 'q4_K'). */
export function ggmlSpelling(t: BlockTypeTraits): string {
  return ggmlTypeById(t.ggmlTypeId)?.name ?? t.name;
}

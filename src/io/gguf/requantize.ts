/**
 * GGUF re-quantization with a per-tensor plan and an optional importance matrix: what llama.cpp's
 * `llama-quantize` does (src/llama-quant.cpp, llama_model_quantize_impl), written for mixq's own codecs.
 *
 * For every tensor, in file order:
 * 1. Is it quantizable? llama.cpp's rule: the name ends in 'weight', it has >= 2 dims, and it is not a
 *    norm ('_norm.weight'), MoE router ('ffn_gate_inp.weight'), position/token-type embedding
 *    ('pos_embd', 'token_types'), SSM conv/decay or RWKV time-mix tensor. Everything else (1-D norms and
 *    biases, which converters store as F32) is copied byte for byte; plan rules never touch it.
 * 2. Target type: the first matching plan rule, else `defaultType`, else the tensor keeps its type.
 *    With only `defaultType` (no rule naming it), 'output.weight' becomes Q6_K as llama.cpp does for
 *    every k-/legacy-quant ftype below Q8_0 (Q8_0 if its row length is not a multiple of 256); so does
 *    'token_embd.weight' when there is no 'output.weight' (tied embeddings); otherwise the embedding
 *    simply follows `defaultType`. Float targets (F32/F16/BF16) are taken
 *    literally.
 * 3. Fallback when ne[0] is not a multiple of the target's block size (llama_tensor_get_type):
 *    Q2_K/Q3_K -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; if that still does not divide (or the
 *    type has no fallback in llama.cpp: Q4_0.., IQ4_NL, MXFP4), F16. Recorded in the tensor report.
 * 4. Same type as the source: bytes copied unchanged (llama.cpp: "nothing to do"). Otherwise the source
 *    is dequantized to f32 (any type in src/blocks) and encoded per row (row = ne[0] values) with the
 *    bit-exact ggml quantizers, passing the tensor's importance-matrix entry when there is one
 *    (length ne[0], or ne[0] * ne[2] for stacked 3-D expert tensors, one slice per expert).
 * Metadata: every KV is kept in order; 'general.file_type' (llama_ftype of the dominant type, by
 * weight count over quantized tensors) and 'general.quantization_version' = 2 are set as u32, replaced
 * in place when present and appended otherwise (llama.cpp's gguf_set_val moves them to the end; the
 * position of a key has no meaning in GGUF). 'general.alignment' is kept and respected by writeGguf.
 * Browser-safe: takes a GgufFile (readGguf on any ByteSource). Streaming: every tensor's type and size
 * is known before its data is read, so requantizeGgufTo sends the header first and then one tensor at a
 * time to a sink (Node: io/file-stream.node.ts writeFileAtomicSink): memory is bounded by the largest
 * tensor, not the model. requantizeGguf collects the same chunks in memory.
 */
import { blockTypeById, getBlockType, type BlockTypeTraits } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import type { ImatrixData } from './imatrix.ts';
import type { GgufFile, GgufKV, GgufTensorInfo } from './read.ts';
import { ggmlTypeById, ggmlTypeByName } from './types.ts';
import { ggufHeaderLayout } from './write.ts';

/** One plan rule: a glob ('blk.*.attn_*.weight', '*' any run, '?' one char) or a RegExp, and a type. */
export interface RequantRule {
  readonly pattern: string | RegExp;
  /** ggml type name, any case: 'q4_k', 'Q8_0', 'f16'. */
  readonly type: string;
}

/**
 * Tensor name (or glob) -> type, or an ordered rule list; the first match wins. A string pattern
 * wrapped in slashes ('/attn_(q|k)/') is a regular expression searched anywhere in the name.
 */
export type RequantPlan = Readonly<Record<string, string>> | readonly RequantRule[];

export interface RequantizeOptions {
  /** Importance matrix (mean of x^2 per input column), from readImatrix or mixq's calibration. */
  readonly imatrix?: ImatrixData | ReadonlyMap<string, Float32Array>;
  /** Type for quantizable tensors no rule names. Without it, unnamed tensors keep their type. */
  readonly defaultType?: string;
  /** Called after each tensor with elements done so far and in total. */
  readonly progress?: (done: number, total: number, tensor: string) => void;
  /**
   * Replaces llama.cpp's "is this tensor quantizable" rule (isRequantizable), e.g. to re-type tensors
   * with non-llama names. Tensors it rejects are copied unchanged.
   */
  readonly quantizable?: (info: GgufTensorInfo) => boolean;
  /** Override 'general.file_type' (a llama_ftype value). */
  readonly fileType?: number;
  /**
   * Encodes the rows of each re-quantized tensor (default: `type.encode` on this thread). mixq/node's
   * `encodeRowsOnThreads` splits them over worker threads, with the same bytes.
   */
  readonly encodeRows?: EncodeRows;
  /**
   * Values decoded and encoded per run of rows (at least one row; default 16 Mi with `encodeRows`, 1 Mi
   * without): with the largest tensor's source bytes, what bounds requantizeGgufTo's memory. The bytes
   * written do not depend on it.
   */
  readonly runElements?: number;
}

export interface RequantTensorReport {
  readonly name: string;
  readonly ne: readonly number[];
  /** ggml type names as ggml spells them ('q4_K'). */
  readonly from: string;
  readonly to: string;
  readonly action: 'copy' | 'requantize';
  /** Why the tensor was copied, or which type the plan asked for before a fallback. */
  readonly note?: string;
  readonly imatrix: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly nElements: number;
}

export interface RequantizeResult {
  readonly chunks: Uint8Array[];
  readonly kv: readonly GgufKV[];
  readonly tensors: readonly RequantTensorReport[];
  readonly fileType: number;
  readonly totals: {
    readonly bytesIn: number;
    readonly bytesOut: number;
    readonly elements: number;
    /** 8 * tensor bytes / elements over all tensors (what llama.cpp prints as BPW). */
    readonly bitsPerWeightIn: number;
    readonly bitsPerWeightOut: number;
  };
  /** Plan entries that matched no tensor or only non-quantizable ones, imatrix entries left unused. */
  readonly notes: readonly string[];
}

/** enum llama_ftype (llama.h) for each type mixq can write: the usual "mostly T" value (K types: _M). */
export const LLAMA_FTYPE: Readonly<Record<string, number>> = {
  F32: 0, // LLAMA_FTYPE_ALL_F32
  F16: 1, // MOSTLY_F16
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  Q2_K: 10,
  Q3_K: 12, // MOSTLY_Q3_K_M
  Q4_K: 15, // MOSTLY_Q4_K_M
  Q5_K: 17, // MOSTLY_Q5_K_M
  Q6_K: 18,
  IQ4_NL: 25,
  BF16: 32,
  MXFP4: 38, // MOSTLY_MXFP4_MOE
};

/** GGML_QNT_VERSION (ggml.h): the block layout generation; 2 since the 2023 Q4/Q5/Q8 change. */
export const GGML_QNT_VERSION = 2;

/** llama_tensor_get_type's fallback for a row length the type's block size does not divide. */
const FALLBACK: Readonly<Record<string, string>> = {
  Q2_K: 'IQ4_NL',
  Q3_K: 'IQ4_NL',
  Q4_K: 'Q5_0',
  Q5_K: 'Q5_1',
  Q6_K: 'Q8_0',
};

/** Targets whose ggml quantizer ignores quant_weights (quantize_q8_0, quantize_mxfp4; plain floats). */
const IMATRIX_IGNORED: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'Q8_0', 'MXFP4']);

const QK_K = 256;
/** Rows encoded per call: bounds the f32 scratch to ~4 MiB for big tensors. */
const CHUNK_ELEMENTS = 1 << 20;
/**
 * Values decoded and handed to `encodeRows` per call when streaming (64 MiB of f32): big enough to keep
 * every worker thread busy, small enough that a 128k-vocabulary embedding never exists as f32 whole.
 */
const STREAM_ELEMENTS = 1 << 24;

/** llama.cpp's "should this tensor be quantized at all" rule (see the file header). */
export function isRequantizable(info: Pick<GgufTensorInfo, 'name' | 'ne'>): boolean {
  const n = info.name;
  if (!n.endsWith('weight')) return false;
  // ggml_n_dims: dims up to the last one that is not 1
  let nDims = 1;
  info.ne.forEach((d, i) => {
    if (d !== 1) nDims = i + 1;
  });
  if (nDims < 2) return false;
  const excluded = [
    '_norm.weight',
    'ffn_gate_inp.weight',
    'pos_embd.weight',
    'token_types.weight',
    'ssm_conv1d.weight',
    'ssm_x.weight',
    'ssm_dt.weight',
    'time_mix_first.weight',
    'time_mix_w0.weight',
    'time_mix_w1.weight',
    'time_mix_w2.weight',
    'time_mix_decay_w1.weight',
    'time_mix_decay_w2.weight',
    'time_mix_lerp_fused.weight',
    'attn_rel_b.weight',
  ];
  return !excluded.some((s) => n.includes(s));
}

function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

interface CompiledRule {
  readonly label: string;
  readonly test: (name: string) => boolean;
  readonly type: BlockTypeTraits;
}

/** Compiles a plan; unknown types and bad regexes are MixqErrors naming the rule. */
export function compilePlan(plan: RequantPlan): CompiledRule[] {
  const rules: RequantRule[] = Array.isArray(plan)
    ? [...(plan as readonly RequantRule[])]
    : Object.entries(plan as Readonly<Record<string, string>>).map(([pattern, type]) => ({ pattern, type }));
  return rules.map((r, i) => {
    const label = r.pattern instanceof RegExp ? String(r.pattern) : r.pattern;
    let type: BlockTypeTraits;
    try {
      type = getBlockType(String(r.type));
    } catch (e) {
      throw new MixqError(`unknown type '${r.type}' for '${label}'`, {
        source: 'requantize plan',
        field: `rules[${i}].type`,
        expected: (e as MixqError).expected,
      });
    }
    let test: (name: string) => boolean;
    if (r.pattern instanceof RegExp) {
      const re = r.pattern;
      test = (n) => {
        re.lastIndex = 0;
        return re.test(n);
      };
    } else if (r.pattern.length >= 2 && r.pattern.startsWith('/') && r.pattern.endsWith('/')) {
      let re: RegExp;
      try {
        re = new RegExp(r.pattern.slice(1, -1));
      } catch (e) {
        throw new MixqError(`bad regular expression: ${(e as Error).message}`, {
          source: 'requantize plan',
          field: `rules[${i}].pattern`,
          expected: 'a JavaScript regular expression between slashes',
        });
      }
      test = (n) => re.test(n);
    } else {
      const re = globToRegExp(r.pattern);
      test = (n) => re.test(n);
    }
    return { label, test, type };
  });
}

/** ggml's spelling of a registry name, as GgmlTypeTraits has it ('Q4_K' -> 'q4_K'). */
function ggmlName(t: BlockTypeTraits): string {
  return ggmlTypeById(t.ggmlTypeId)?.name ?? t.name;
}

/** Applies llama.cpp's fallback chain until the block size divides ne0. */
export function fallbackType(target: BlockTypeTraits, ne0: number): BlockTypeTraits {
  if (ne0 % target.blockSize === 0) return target;
  const next = FALLBACK[target.name];
  if (next) {
    const t = getBlockType(next);
    if (ne0 % t.blockSize === 0) return t;
  }
  return getBlockType('F16');
}

function imatrixMap(
  m: ImatrixData | ReadonlyMap<string, Float32Array> | undefined,
): ReadonlyMap<string, Float32Array> | undefined {
  if (!m) return undefined;
  return 'format' in m ? m.entries : m; // ImatrixData has a format; a Map (which has .entries()) does not
}

/** Decides the target type of one tensor; `undefined` = copy unchanged. */
function chooseType(
  info: GgufTensorInfo,
  rules: readonly CompiledRule[],
  used: Set<string>,
  def: BlockTypeTraits | undefined,
  lmHead: string,
  quantizable: (info: GgufTensorInfo) => boolean,
): { type?: BlockTypeTraits; asked?: BlockTypeTraits; note?: string } {
  if (!quantizable(info)) return { note: 'not quantized (llama.cpp rule)' };
  const rule = rules.find((r) => r.test(info.name));
  let asked: BlockTypeTraits | undefined;
  if (rule) {
    used.add(rule.label);
    asked = rule.type;
  } else if (def) {
    asked = def;
    // llama.cpp gives the LM head more bits than the body for every quantized ftype below Q8_0
    if (info.name === lmHead && def.blockSize > 1 && def.name !== 'Q8_0' && def.name !== 'Q6_K') {
      asked = getBlockType((info.ne[0] ?? 0) % QK_K === 0 ? 'Q6_K' : 'Q8_0');
    }
  }
  if (!asked) return { note: 'no rule' };
  const type = fallbackType(asked, info.ne[0] ?? 0);
  return type === asked ? { type, asked } : { type, asked, note: `fallback from ${ggmlName(asked)}` };
}

/** MixqError unless mixq can dequantize the tensor's type. */
function checkDecodable(info: GgufTensorInfo, source: string): BlockTypeTraits {
  const codec = blockTypeById(info.typeId);
  if (!codec) {
    throw new MixqError(`cannot dequantize tensor '${info.name}' of type ${info.type.name}`, {
      source,
      field: `tensors.${info.name}.type`,
      expected: 'a type mixq can decode (F32, F16, BF16, Q4_0..Q8_0, Q2_K..Q6_K, IQ4_NL, MXFP4)',
    });
  }
  return codec;
}

/** A run of whole rows of one matrix (expert) of a tensor, with that matrix's importance weights. */
interface RowSlice {
  readonly start: number;
  readonly end: number;
  readonly im: Float32Array | undefined;
}

/**
 * The slices of a tensor of `n` values (ggml order, ne[0] per row) of at most `maxElements` values (at
 * least one row), never across two matrices (experts).
 */
function rowSlices(
  n: number,
  ne: readonly number[],
  im: Float32Array | undefined,
  maxElements: number,
): RowSlice[] {
  const ne0 = ne[0]!;
  const rowsPerMatrix = ne[1] ?? 1;
  const perMatrix = ne0 * rowsPerMatrix;
  const nMat = n / perMatrix;
  const rowsPerChunk = Math.max(1, Math.min(rowsPerMatrix, Math.floor(maxElements / ne0)));
  const out: RowSlice[] = [];
  for (let m = 0; m < nMat; m++) {
    const imRow = im ? (im.length === ne0 ? im : im.subarray(m * ne0, (m + 1) * ne0)) : undefined;
    for (let r = 0; r < rowsPerMatrix; r += rowsPerChunk) {
      const start = m * perMatrix + r * ne0;
      out.push({ start, end: start + Math.min(rowsPerChunk, rowsPerMatrix - r) * ne0, im: imRow });
    }
  }
  return out;
}

/**
 * Encodes `x` (a whole tensor, ggml order) as `type`, row by row, with the imatrix when given.
 * `im` has ne0 entries, or ne0 * ne2 for stacked expert tensors (one slice per expert matrix).
 */
export function encodeTensor(
  x: Float32Array,
  ne: readonly number[],
  type: BlockTypeTraits,
  im?: Float32Array,
): Uint8Array {
  const rowBytes = (ne[0]! / type.blockSize) * type.bytesPerBlock;
  const out = new Uint8Array((x.length / ne[0]!) * rowBytes);
  for (const s of rowSlices(x.length, ne, im, CHUNK_ELEMENTS)) {
    out.set(type.encode(x.subarray(s.start, s.end), s.im), (s.start / ne[0]!) * rowBytes);
  }
  return out;
}

/** How RequantizeOptions.encodeRows encodes whole rows: the bytes of `type.encode(x, im)`. */
export type EncodeRows = (
  x: Float32Array,
  nPerRow: number,
  type: BlockTypeTraits,
  im: Float32Array | undefined,
) => Promise<Uint8Array>;

/** encodeTensor with each matrix's rows encoded by `encodeRows` (e.g. on worker threads): the same bytes. */
export async function encodeTensorWith(
  x: Float32Array,
  ne: readonly number[],
  type: BlockTypeTraits,
  im: Float32Array | undefined,
  encodeRows: EncodeRows,
): Promise<Uint8Array> {
  const rowBytes = (ne[0]! / type.blockSize) * type.bytesPerBlock;
  const out = new Uint8Array((x.length / ne[0]!) * rowBytes);
  for (const s of rowSlices(x.length, ne, im, Infinity)) {
    out.set(await encodeRows(x.subarray(s.start, s.end), ne[0]!, type, s.im), (s.start / ne[0]!) * rowBytes);
  }
  return out;
}

function checkImatrix(info: GgufTensorInfo, im: Float32Array, source: string): void {
  const ne0 = info.ne[0]!;
  const ne2 = info.ne[2] ?? 1;
  if (im.length === ne0 || (ne2 > 1 && im.length === ne0 * ne2)) return;
  throw new MixqError(`importance matrix entry for '${info.name}' has ${im.length} values`, {
    source,
    field: `imatrix.${info.name}`,
    expected: ne2 > 1 ? `${ne0} or ${ne0 * ne2} (ne[0] x experts)` : `${ne0} (ne[0])`,
  });
}

function setKv(kv: GgufKV[], entry: GgufKV): void {
  const i = kv.findIndex((k) => k.key === entry.key);
  if (i >= 0) kv[i] = entry;
  else kv.push(entry);
}

/** llama_ftype for the dominant written type (most elements among re-quantized tensors). */
function dominantFileType(
  tensors: readonly RequantTensorReport[],
  all: readonly GgufTensorInfo[],
  quantizable: (info: GgufTensorInfo) => boolean,
): number {
  const count = new Map<number, number>();
  tensors.forEach((t, i) => {
    const info = all[i]!;
    if (!quantizable(info)) return;
    const id = ggmlTypeByName(t.to)?.id;
    if (id !== undefined) count.set(id, (count.get(id) ?? 0) + t.nElements);
  });
  let best: number | undefined;
  let bestN = -1;
  for (const [id, n] of count) {
    if (n > bestN) {
      best = id;
      bestN = n;
    }
  }
  const bt = best === undefined ? undefined : blockTypeById(best);
  // types without an ftype of their own (or no quantizable tensors): LLAMA_FTYPE_ALL_F32 as llama.cpp's
  // converters write for unquantized models
  return bt ? (LLAMA_FTYPE[bt.name] ?? 0) : 0;
}

/** Where requantizeGgufTo puts the output, chunk by chunk in file order (awaited before the next). */
export type ByteSink = (chunk: Uint8Array) => void | Promise<void>;

/** requantizeGgufTo's report: requantizeGguf's result without the chunks (they went to the sink). */
export type RequantizeReport = Omit<RequantizeResult, 'chunks'>;

/** What the first pass decides for one tensor before any data is read. */
interface TensorJob {
  readonly info: GgufTensorInfo;
  /** Target type; undefined = bytes copied unchanged. */
  readonly type: BlockTypeTraits | undefined;
  readonly im: Float32Array | undefined;
}

/**
 * Re-quantizes a GGUF file with a plan and returns the output as chunks held in memory (for small
 * models and tests; `requantizeGgufTo` streams them instead), with a per-tensor report.
 * @example const r = await requantizeGguf(await readGguf(src), { 'blk.*.ffn_down.weight': 'q6_k' }, { defaultType: 'q4_k' })
 */
export async function requantizeGguf(
  file: GgufFile,
  plan: RequantPlan,
  opts: RequantizeOptions = {},
): Promise<RequantizeResult> {
  const chunks: Uint8Array[] = [];
  const report = await requantizeGgufTo(file, plan, (c) => void chunks.push(c), opts);
  return { chunks, ...report };
}

/**
 * Re-quantizes a GGUF file with a plan, streaming the output: every tensor's type (hence its size, the
 * header and general.file_type) is decided before any tensor data is read, the header goes to `sink`
 * first, then each tensor is read and handed to `sink` with its padding, one at a time, re-encoded in
 * runs of whole rows (decoded to f32, encoded, sent). Memory: the largest tensor's source bytes plus one
 * run (at most 16 Mi values as f32 with `encodeRows`, 1 Mi without, and its encoding), never the
 * model. Bad plans, types mixq cannot decode and wrong importance-matrix entries fail before the first
 * chunk. The bytes are those of writeGguf over the whole output.
 * @example await writeFileAtomicSink('out.gguf', (write) => requantizeGgufTo(file, plan, write))
 */
export async function requantizeGgufTo(
  file: GgufFile,
  plan: RequantPlan,
  sink: ByteSink,
  opts: RequantizeOptions = {},
): Promise<RequantizeReport> {
  const source = file.source;
  const rules = compilePlan(plan);
  let def: BlockTypeTraits | undefined;
  if (opts.defaultType !== undefined) {
    try {
      def = getBlockType(opts.defaultType);
    } catch (e) {
      throw new MixqError(`unknown type '${opts.defaultType}'`, {
        source: 'requantize',
        field: 'defaultType',
        expected: (e as MixqError).expected,
      });
    }
  }
  const im = imatrixMap(opts.imatrix);
  const quantizable = opts.quantizable ?? isRequantizable;
  const usedRules = new Set<string>();
  const usedIm = new Set<string>();
  // tied embeddings: without 'output.weight' the embedding doubles as the LM head (llama.cpp's has_output)
  const lmHead = file.tensors.some((t) => t.name === 'output.weight') ? 'output.weight' : 'token_embd.weight';
  const total = file.tensors.reduce((a, t) => a + t.nElements, 0);

  // ---- pass 1: types, sizes and checks, no tensor data
  const jobs: TensorJob[] = [];
  const reports: RequantTensorReport[] = [];
  for (const info of file.tensors) {
    const choice = chooseType(info, rules, usedRules, def, lmHead, quantizable);
    const from = info.type.name;
    if (!choice.type || choice.type.ggmlTypeId === info.typeId) {
      jobs.push({ info, type: undefined, im: undefined });
      reports.push({
        name: info.name,
        ne: info.ne,
        from,
        to: from,
        action: 'copy',
        note: choice.type ? 'already this type' : choice.note,
        imatrix: false,
        bytesIn: info.nbytes,
        bytesOut: info.nbytes,
        nElements: info.nElements,
      });
      continue;
    }
    const type = choice.type;
    checkDecodable(info, source);
    const entry = im?.get(info.name);
    if (entry) {
      checkImatrix(info, entry, source);
      usedIm.add(info.name);
    }
    jobs.push({ info, type, im: entry });
    reports.push({
      name: info.name,
      ne: info.ne,
      from,
      to: ggmlName(type),
      action: 'requantize',
      ...(choice.note ? { note: choice.note } : {}),
      imatrix: entry !== undefined && !IMATRIX_IGNORED.has(type.name),
      bytesIn: info.nbytes,
      bytesOut: (info.nElements / type.blockSize) * type.bytesPerBlock,
      nElements: info.nElements,
    });
  }
  const fileType = opts.fileType ?? dominantFileType(reports, file.tensors, quantizable);
  const kv = [...file.kv];
  setKv(kv, { key: 'general.quantization_version', type: 'u32', value: GGML_QNT_VERSION });
  setKv(kv, { key: 'general.file_type', type: 'u32', value: fileType });
  const layout = ggufHeaderLayout(
    kv,
    jobs.map((j) => ({ name: j.info.name, ne: j.info.ne, type: j.type?.ggmlTypeId ?? j.info.typeId })),
  );

  // ---- pass 2: the header, then each tensor's data and padding
  await sink(layout.header);
  let done = 0;
  for (const [i, { info, type, im: entry }] of jobs.entries()) {
    const bytes = await file.readTensorBytes(info);
    let written = bytes.length;
    if (!type) await sink(bytes);
    else {
      // runs of whole rows: decoded, encoded and sent one run at a time (rows are independent, so the
      // bytes are those of the whole tensor encoded at once)
      const codec = checkDecodable(info, source);
      const ne0 = info.ne[0]!;
      const rowIn = info.nbytes / (info.nElements / ne0);
      const limit = opts.runElements ?? (opts.encodeRows ? STREAM_ELEMENTS : CHUNK_ELEMENTS);
      written = 0;
      for (const s of rowSlices(info.nElements, info.ne, entry, limit)) {
        const x = codec.decode(
          bytes.subarray((s.start / ne0) * rowIn, (s.end / ne0) * rowIn),
          s.end - s.start,
        );
        const data = opts.encodeRows ? await opts.encodeRows(x, ne0, type, s.im) : type.encode(x, s.im);
        written += data.length;
        await sink(data);
      }
    }
    if (written !== layout.nbytes[i])
      throw new MixqError(`tensor '${info.name}' encoded to ${written} bytes`, {
        source,
        field: `tensors.${info.name}`,
        expected: `${layout.nbytes[i]} bytes (its type's size)`,
      });
    if (layout.padding[i]! > 0) await sink(new Uint8Array(layout.padding[i]!));
    done += info.nElements;
    opts.progress?.(done, total, info.name);
  }

  const notes: string[] = [];
  for (const r of rules)
    if (!usedRules.has(r.label)) notes.push(`rule '${r.label}' matched no quantizable tensor`);
  if (im) {
    const unused = [...im.keys()].filter((k) => !usedIm.has(k));
    if (unused.length > 0) {
      notes.push(`${unused.length} importance-matrix entries unused (e.g. '${unused[0]}')`);
    }
  }
  const bytesIn = reports.reduce((a, r) => a + r.bytesIn, 0);
  const bytesOut = reports.reduce((a, r) => a + r.bytesOut, 0);
  return {
    kv,
    tensors: reports,
    fileType,
    totals: {
      bytesIn,
      bytesOut,
      elements: total,
      bitsPerWeightIn: total > 0 ? (8 * bytesIn) / total : 0,
      bitsPerWeightOut: total > 0 ? (8 * bytesOut) / total : 0,
    },
    notes,
  };
}

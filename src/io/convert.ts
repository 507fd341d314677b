/**
 * Conversion between GGUF and safetensors (either direction, and re-typing within one format), and from
 * ONNX to either (weights only: the graph is not carried over).
 *
 * Rules (what `mixq convert` does):
 * - Tensor bytes are copied unchanged whenever the target can hold the source type: both formats store
 *   row-major data with the last logical dim contiguous (GGUF ne[0] = safetensors shape[-1]).
 * - GGUF block types (q8_0, q4_K, ...) go to safetensors dequantized to F32 (or to --type f16/bf16);
 *   safetensors cannot hold ggml blocks.
 * - With --type T, every quantizable weight (src/io/names.ts rule) whose row length is a multiple of T's
 *   block size is encoded as T (bit-exact ggml quantizers from src/blocks); other tensors keep their type,
 *   except that a float type the target cannot hold becomes F32.
 * - Refused with a MixqError: GGUF types mixq cannot decode (iq2_xxs, ...) where decoding is needed,
 *   safetensors unsigned/bool tensors into GGUF (GGUF has no such tensor types), more than 4 dims into
 *   GGUF, ONNX tensors with no safetensors dtype (int4, fp4, strings, ...), and ggml block types for ONNX
 *   weights (ONNX MatMul weights are [in, out], so GGUF blocks would run along the output axis).
 * ONNX weights: initializers, Constant nodes and subgraph weights under their value names; sparse weights
 *   are densified to F32; metadata_props become 'onnx.<key>' entries.
 * Metadata: GGUF scalar KVs become safetensors __metadata__ entries 'gguf.<key>' (arrays are skipped and
 * noted); safetensors __metadata__ becomes GGUF string KVs 'safetensors.<key>'.
 * Streaming (convertModelTo): every tensor's output type and size, the metadata and so the header are
 * decided before any tensor data is read (bad input fails before the first byte goes out); then the header
 * goes to the sink, then each tensor in output order: bytes copied in pieces of at most COPY_BYTES, or
 * converted in runs of whole rows (at most RUN_ELEMENTS values decoded to float32 and encoded; rows are
 * independent, so the bytes are those of the whole tensor converted at once). Memory is bounded by one
 * piece or run, never the model (an ONNX input is in memory anyway). `convertModel` is the same code
 * collecting the chunks, for small models and tests.
 */
import { MixqError } from '../core/errors.ts';
import { BLOCK_TYPES, type BlockTypeTraits, getBlockType } from '../blocks/registry.ts';
import { type GgufFile, type GgufKV, ggufValueToString } from './gguf/read.ts';
import type { ByteSink } from './gguf/requantize.ts';
import { ggufHeaderLayout, ggmlTensorBytes } from './gguf/write.ts';
import { ggmlTypeByName } from './gguf/types.ts';
import { isQuantizable, inferRole } from './names.ts';
import { floatBytesToF32, SAFETENSORS_DTYPE_BYTES, type SafetensorsDtype } from './safetensors/dtypes.ts';
import type { SafetensorsFile } from './safetensors/read.ts';
import { referenceOrder, safetensorsHeaderLayout } from './safetensors/write.ts';
import type { OpenedModel } from './open.ts';
import { listWeights, loadTensorBytes, loadWeightFloat32, onnxModelView } from './onnx/index.ts';

export type ConvertTarget = 'gguf' | 'safetensors';

/** Values decoded to float32 per run of rows when a tensor changes type (whole rows; at least one). */
export const RUN_ELEMENTS = 1 << 20;
/** Bytes per piece when a tensor is copied unchanged. */
export const COPY_BYTES = 16 << 20;

export interface ConvertOptions {
  /** Type for quantizable weights (any BLOCK_TYPES name, case-insensitive: 'q8_0', 'Q4_K', 'f16'). */
  readonly type?: string;
  /** Name for GGUF general.name (e.g. the input file's base name). */
  readonly name?: string;
  /** Values per converted run (default RUN_ELEMENTS; tests make it small to cross run boundaries). */
  readonly runElements?: number;
  /** Bytes per copied piece (default COPY_BYTES). */
  readonly copyBytes?: number;
}

export interface ConvertedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly from: string;
  readonly to: string;
  readonly action: 'copy' | 'dequantize' | 'quantize' | 'convert';
}

/** What convertModelTo reports once every chunk went to the sink. */
export interface ConvertReport {
  readonly tensors: readonly ConvertedTensor[];
  readonly notes: readonly string[];
  /** Bytes sent to the sink (the output file's size). */
  readonly bytes: number;
}

export interface ConvertResult extends ConvertReport {
  readonly chunks: Uint8Array[];
}

/** A tensor of the input in format-neutral terms. */
interface SrcTensor {
  name: string;
  shape: readonly number[];
  /** Lower-case type: ggml names for GGUF ('q4_k', 'f16'), safetensors names for safetensors ('f16', 'u8'). */
  dtype: string;
  /** Set where the file says more than the name (ONNX: the graph view's role from the consuming op). */
  quantizable?: boolean;
  /** Bytes of the tensor's data in the input. */
  nbytes: number;
  /** `length` bytes at `offset` of the tensor's data. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases what `read` kept (ONNX: the tensor's decoded bytes). */
  done?(): void;
}

/** GGUF tensor types that have a safetensors dtype with the same bytes. */
const GGUF_TO_ST: Readonly<Record<string, SafetensorsDtype>> = {
  f32: 'F32',
  f16: 'F16',
  bf16: 'BF16',
  f64: 'F64',
  i8: 'I8',
  i16: 'I16',
  i32: 'I32',
  i64: 'I64',
};
/** safetensors dtypes that have a GGUF tensor type with the same bytes. */
const ST_TO_GGUF: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(GGUF_TO_ST).map(([g, s]) => [s.toLowerCase(), g]),
);

/** ONNX dtype ids (src/io/onnx/dtypes.ts) that have a safetensors dtype with the same bytes. */
const ONNX_TO_ST: Readonly<Record<string, string>> = {
  f64: 'f64',
  f32: 'f32',
  f16: 'f16',
  bf16: 'bf16',
  i8: 'i8',
  u8: 'u8',
  i16: 'i16',
  u16: 'u16',
  i32: 'i32',
  u32: 'u32',
  i64: 'i64',
  u64: 'u64',
  bool: 'bool',
  fp8_e4m3fn: 'f8_e4m3',
  fp8_e5m2: 'f8_e5m2',
};

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** An ONNX tensor's bytes, read once when first asked for and kept until `done()`. */
function heldBytes(load: () => Promise<Uint8Array>): Pick<SrcTensor, 'read' | 'done'> {
  let held: Promise<Uint8Array> | undefined;
  return {
    read: async (offset, length) => (await (held ??= load())).subarray(offset, offset + length),
    done: () => {
      held = undefined;
    },
  };
}

function onnxTensors(m: Extract<OpenedModel, { format: 'onnx' }>): SrcTensor[] {
  const model = m.file;
  const view = new Map(onnxModelView(model).tensors.map((t) => [t.name, t.quantizable]));
  return listWeights(model).map((w) => {
    if (w.sparse) {
      return {
        name: w.name,
        shape: w.dims,
        dtype: 'f32',
        quantizable: view.get(w.name) ?? false,
        nbytes: 4 * numel(w.dims),
        ...heldBytes(async () => {
          const x = await loadWeightFloat32(model, w);
          return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
        }),
      };
    }
    const dtype = ONNX_TO_ST[w.dtype];
    if (!dtype) {
      throw new MixqError(`ONNX tensor type ${w.dtype} has no safetensors or GGUF equivalent`, {
        source: model.source,
        field: `weight '${w.name}'`,
        expected: `one of ${Object.keys(ONNX_TO_ST).join(', ')}`,
      });
    }
    return {
      name: w.name,
      shape: w.dims,
      dtype,
      quantizable: view.get(w.name) ?? false,
      nbytes: numel(w.dims) * SAFETENSORS_DTYPE_BYTES[dtype.toUpperCase() as SafetensorsDtype],
      ...heldBytes(() => loadTensorBytes(model, w.tensor)),
    };
  });
}

function srcTensors(m: OpenedModel): SrcTensor[] {
  if (m.format === 'onnx') return onnxTensors(m);
  if (m.format === 'gguf') {
    const f: GgufFile = m.file;
    return f.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      dtype: t.type.name.toLowerCase(),
      nbytes: t.nbytes,
      read: (offset, length) => f.readTensorRange(t, offset, length),
    }));
  }
  const f: SafetensorsFile = m.file;
  return f.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: t.dtype.toLowerCase(),
    nbytes: t.nbytes,
    read: (offset, length) => f.readTensorRange(t, offset, length),
  }));
}

/** Float32 decoder of a float-valued source type: (bytes of whole rows, values) -> values. */
type Decoder = (bytes: Uint8Array, n: number) => Float32Array;

/** The decoder of a source tensor's type; a type mixq cannot decode is refused (before any data is read). */
function decoderOf(t: SrcTensor, source: string): Decoder {
  const st = t.dtype.toUpperCase();
  if (st === 'F64' || st === 'F8_E4M3' || st === 'F8_E5M2') return (bytes) => floatBytesToF32(st, bytes);
  const bt = (BLOCK_TYPES as Readonly<Record<string, BlockTypeTraits>>)[st];
  if (!bt) {
    throw new MixqError(`cannot decode tensor type ${t.dtype}`, {
      source,
      field: `tensor '${t.name}'`,
      expected: `one of ${Object.keys(BLOCK_TYPES).join(', ')}, F64, F8_E4M3, F8_E5M2`,
    });
  }
  return (bytes, n) => bt.decode(bytes, n);
}

const isFloat = (dtype: string) => /^(?:f|bf)\d+|^f8_|^q|^iq|^tq|^mxfp/.test(dtype);

/** One output tensor as pass 1 decides it: its type, size and how its bytes are made. */
interface Job {
  readonly src: SrcTensor;
  /** GGUF: ggml type name ('f16', 'Q4_K'); safetensors: dtype ('F32'). */
  readonly outType: string;
  /** Output bytes. */
  readonly nbytes: number;
  /** Decoder and encoder when the type changes; undefined = bytes copied. */
  readonly convert?: { readonly decode: Decoder; readonly encode: BlockTypeTraits };
  readonly report: ConvertedTensor;
}

const F32 = BLOCK_TYPES.F32;
const blockType = (name: string) => (BLOCK_TYPES as Readonly<Record<string, BlockTypeTraits>>)[name]!;

/** Pass 1 for one tensor: output type, size and action, without reading data. */
function planTensor(
  t: SrcTensor,
  m: OpenedModel,
  to: ConvertTarget,
  target: BlockTypeTraits | undefined,
  source: string,
): { job: Job; fellBack: boolean } {
  const field = `tensor '${t.name}'`;
  const { role } = inferRole(t.name, t.shape);
  const quantizable = t.quantizable ?? isQuantizable(role, t.shape, t.dtype);
  const rowLen = t.shape.length ? t.shape[t.shape.length - 1]! : 1;
  const n = numel(t.shape);
  const job = (
    outType: string,
    nbytes: number,
    action: ConvertedTensor['action'],
    encode?: BlockTypeTraits,
  ) => ({
    src: t,
    outType,
    nbytes,
    ...(encode ? { convert: { decode: decoderOf(t, source), encode } } : {}),
    report: { name: t.name, shape: t.shape, from: t.dtype, to: outType.toLowerCase(), action },
  });

  if (to === 'safetensors') {
    const direct = m.format === 'gguf' ? GGUF_TO_ST[t.dtype] : (t.dtype.toUpperCase() as SafetensorsDtype);
    const wanted = target && isFloat(t.dtype) ? (target.name as SafetensorsDtype) : direct;
    if (wanted && wanted === direct) return { job: job(wanted, t.nbytes, 'copy'), fellBack: false };
    const outType = wanted ?? 'F32';
    const action = direct ? 'convert' : 'dequantize';
    return {
      job: job(outType, n * SAFETENSORS_DTYPE_BYTES[outType], action, blockType(outType)),
      fellBack: false,
    };
  }
  if (t.shape.length > 4) {
    throw new MixqError(`${t.shape.length} dims cannot be stored in GGUF`, {
      source,
      field,
      expected: 'at most 4 dims',
    });
  }
  const ne = t.shape.length ? [...t.shape].reverse() : [1];
  const direct = m.format === 'gguf' ? t.dtype : ST_TO_GGUF[t.dtype];
  let wanted: BlockTypeTraits | undefined;
  let fellBack = false;
  if (target && quantizable) {
    if (rowLen % target.blockSize === 0) wanted = target;
    else fellBack = true;
  }
  let j: Job;
  if (wanted && wanted.name.toLowerCase() !== direct)
    j = job(wanted.name, ggmlTensorBytes(ne, ggmlTypeByName(wanted.name)!, field), 'quantize', wanted);
  else if (direct) j = job(direct, t.nbytes, 'copy');
  else if (t.dtype.startsWith('f8_')) j = job('f32', 4 * n, 'convert', F32);
  else
    throw new MixqError(`safetensors dtype ${t.dtype.toUpperCase()} has no GGUF tensor type`, {
      source,
      field,
      expected: 'F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I8, I16, I32 or I64',
    });
  return { job: j, fellBack };
}

/** Pass 2 for one tensor: its bytes to the sink, copied in pieces or converted in runs of whole rows. */
async function writeTensor(
  j: Job,
  sink: ByteSink,
  runElements: number,
  copyBytes: number,
  source: string,
): Promise<number> {
  const t = j.src;
  let written = 0;
  const out = async (c: Uint8Array) => {
    written += c.length;
    await sink(c);
  };
  if (!j.convert) {
    for (let o = 0; o < t.nbytes; o += copyBytes)
      await out(await t.read(o, Math.min(copyBytes, t.nbytes - o)));
  } else {
    const n = numel(t.shape);
    const ne0 = t.shape.length ? t.shape[t.shape.length - 1]! : 1;
    const rows = n === 0 ? 0 : n / ne0;
    const rowIn = rows === 0 ? 0 : t.nbytes / rows;
    const step = Math.max(1, Math.floor(runElements / Math.max(1, ne0)));
    for (let r = 0; r < rows; r += step) {
      const k = Math.min(step, rows - r);
      const x = j.convert.decode(await t.read(r * rowIn, k * rowIn), k * ne0);
      await out(j.convert.encode.encode(x));
    }
  }
  t.done?.();
  if (written !== j.nbytes)
    throw new MixqError(`tensor '${t.name}' came to ${written} bytes`, {
      source,
      field: `tensor '${t.name}'`,
      expected: `${j.nbytes} bytes (its output type's size)`,
    });
  return written;
}

/**
 * Converts an opened GGUF, safetensors or ONNX model to `to`, streaming the output to `sink` (see the file
 * header): the header first, then one tensor at a time.
 * @example await writeFileAtomicSink('out.safetensors', (w) => convertModelTo(await openModel(src), 'safetensors', w))
 */
export async function convertModelTo(
  m: OpenedModel,
  to: ConvertTarget,
  sink: ByteSink,
  opts: ConvertOptions = {},
): Promise<ConvertReport> {
  const source = m.file.source;
  const target = opts.type ? getBlockType(opts.type) : undefined;
  if (to === 'safetensors' && target && !['F32', 'F16', 'BF16'].includes(target.name)) {
    throw new MixqError(`safetensors cannot store ${target.name} blocks`, {
      source: 'argument --type',
      field: 'type',
      expected: 'f32, f16 or bf16 for a safetensors output',
    });
  }
  if (m.format === 'onnx' && to === 'gguf' && target && target.blockSize > 1) {
    throw new MixqError(`ONNX weights cannot be converted to ${target.name} blocks`, {
      source: 'argument --type',
      field: 'type',
      expected:
        'f32, f16 or bf16 for an ONNX input (MatMul weights are [in, out]: blocks would run along the output axis)',
    });
  }
  const runElements = opts.runElements ?? RUN_ELEMENTS;
  const copyBytes = opts.copyBytes ?? COPY_BYTES;
  for (const [k, v] of [
    ['runElements', runElements],
    ['copyBytes', copyBytes],
  ] as const)
    if (!(Number.isSafeInteger(v) && v >= 1))
      throw new MixqError(`bad ${k} ${v}`, { source: 'options', field: k, expected: 'a positive integer' });
  const notes: string[] = [];
  if (m.format === 'onnx') {
    notes.push(
      `weights only: the ONNX graph (${m.file.proto.graph?.node?.length ?? 0} top-level nodes) is not carried over`,
    );
  }

  // ---- pass 1: every tensor's type and size, the metadata and the header; no tensor data
  const jobs: Job[] = [];
  let fellBack = 0;
  for (const t of srcTensors(m)) {
    const { job, fellBack: fb } = planTensor(t, m, to, target, source);
    if (fb) fellBack++;
    jobs.push(job);
  }
  if (fellBack) {
    notes.push(
      `${fellBack} quantizable tensor(s) kept their type: row length not a multiple of ${target?.blockSize}`,
    );
  }
  let header: Uint8Array;
  let order: Job[];
  let padding: readonly number[];
  if (to === 'safetensors') {
    const metadata = Object.create(null) as Record<string, string>;
    if (m.format === 'gguf') {
      let skipped = 0;
      for (const kv of m.file.kv) {
        if (kv.type === 'arr') skipped++;
        else metadata[`gguf.${kv.key}`] = ggufValueToString(kv.value);
      }
      if (skipped) notes.push(`${skipped} GGUF array KV(s) (e.g. tokenizer vocabularies) not carried over`);
    } else if (m.format === 'onnx') {
      for (const e of m.file.proto.metadata_props ?? []) metadata[`onnx.${e.key}`] = e.value;
    } else if (m.file.metadata) Object.assign(metadata, m.file.metadata);
    const byName = new Map(jobs.map((j) => [j.src.name, j]));
    const metas = referenceOrder(
      jobs.map((j) => ({ name: j.src.name, dtype: j.outType as SafetensorsDtype, shape: j.src.shape })),
    );
    order = metas.map((x) => byName.get(x.name)!);
    const layout = safetensorsHeaderLayout(metas, metadata);
    header = layout.header;
    padding = order.map(() => 0);
  } else {
    let kv: GgufKV[];
    if (m.format === 'gguf') kv = [...m.file.kv];
    else if (m.format === 'onnx') {
      kv = [{ key: 'general.name', type: 'str', value: opts.name ?? 'model' }];
      for (const e of m.file.proto.metadata_props ?? [])
        kv.push({ key: `onnx.${e.key}`, type: 'str', value: e.value });
    } else {
      kv = [{ key: 'general.name', type: 'str', value: opts.name ?? 'model' }];
      for (const [k, v] of Object.entries(m.file.metadata ?? {}))
        kv.push({ key: `safetensors.${k}`, type: 'str', value: v });
    }
    order = jobs;
    const layout = ggufHeaderLayout(
      kv,
      jobs.map((j) => ({
        name: j.src.name,
        ne: j.src.shape.length ? [...j.src.shape].reverse() : [1],
        type: j.outType,
      })),
    );
    header = layout.header;
    padding = layout.padding;
  }

  // ---- pass 2: the header, then each tensor's data (and GGUF padding), one at a time
  await sink(header);
  let bytes = header.length;
  for (const [i, j] of order.entries()) {
    bytes += await writeTensor(j, sink, runElements, copyBytes, source);
    if (padding[i]! > 0) {
      await sink(new Uint8Array(padding[i]!));
      bytes += padding[i]!;
    }
  }
  return { tensors: jobs.map((j) => j.report), notes, bytes };
}

/**
 * Converts an opened GGUF, safetensors or ONNX model to `to` with the output as chunks in memory (small
 * models and tests; files go through convertModelTo and an atomic sink, io/convert.node.ts).
 * @example const r = await convertModel(await openModel(src), 'safetensors'); concatBytes(r.chunks)
 */
export async function convertModel(
  m: OpenedModel,
  to: ConvertTarget,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
  const chunks: Uint8Array[] = [];
  const report = await convertModelTo(m, to, (c) => void chunks.push(c), opts);
  return { chunks, ...report };
}

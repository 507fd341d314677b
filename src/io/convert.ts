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
 * The whole output is built in memory (chunks); streaming conversion of very large models is future work.
 */
import { MixqError } from '../core/errors.ts';
import { BLOCK_TYPES, type BlockTypeTraits, getBlockType } from '../blocks/registry.ts';
import {
  type GgufFile,
  type GgufKV,
  type GgufTensorInput,
  ggufValueToString,
  writeGguf,
} from './gguf/index.ts';
import { isQuantizable, inferRole } from './names.ts';
import {
  floatBytesToF32,
  type SafetensorsDtype,
  type SafetensorsFile,
  referenceOrder,
  type SafetensorsTensorInput,
  writeSafetensors,
} from './safetensors/index.ts';
import type { OpenedModel } from './open.ts';
import { listWeights, loadTensorBytes, loadWeightFloat32, onnxModelView } from './onnx/index.ts';

export type ConvertTarget = 'gguf' | 'safetensors';

export interface ConvertOptions {
  /** Type for quantizable weights (any BLOCK_TYPES name, case-insensitive: 'q8_0', 'Q4_K', 'f16'). */
  readonly type?: string;
  /** Name for GGUF general.name (e.g. the input file's base name). */
  readonly name?: string;
}

export interface ConvertedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly from: string;
  readonly to: string;
  readonly action: 'copy' | 'dequantize' | 'quantize' | 'convert';
}

export interface ConvertResult {
  readonly chunks: Uint8Array[];
  readonly tensors: readonly ConvertedTensor[];
  readonly notes: readonly string[];
}

/** A tensor of the input in format-neutral terms. */
interface SrcTensor {
  name: string;
  shape: readonly number[];
  /** Lower-case type: ggml names for GGUF ('q4_k', 'f16'), safetensors names for safetensors ('f16', 'u8'). */
  dtype: string;
  /** Set where the file says more than the name (ONNX: the graph view's role from the consuming op). */
  quantizable?: boolean;
  read(): Promise<Uint8Array>;
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
        read: async () => {
          const x = await loadWeightFloat32(model, w);
          return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
        },
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
      read: () => loadTensorBytes(model, w.tensor),
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
      read: () => f.readTensorBytes(t),
    }));
  }
  const f: SafetensorsFile = m.file;
  return f.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: t.dtype.toLowerCase(),
    read: () => f.readTensorBytes(t),
  }));
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Decodes any float-valued source tensor to float32. */
function toF32(t: SrcTensor, bytes: Uint8Array, source: string): Float32Array {
  const n = numel(t.shape);
  const st = t.dtype.toUpperCase();
  if (st === 'F64' || st === 'F8_E4M3' || st === 'F8_E5M2') return floatBytesToF32(st, bytes);
  const bt = (BLOCK_TYPES as Readonly<Record<string, BlockTypeTraits>>)[st];
  if (!bt) {
    throw new MixqError(`cannot decode tensor type ${t.dtype}`, {
      source,
      field: `tensor '${t.name}'`,
      expected: `one of ${Object.keys(BLOCK_TYPES).join(', ')}, F64, F8_E4M3, F8_E5M2`,
    });
  }
  return n === 0 ? new Float32Array(0) : bt.decode(bytes, n);
}

/** Encodes with a registry type; the registry refuses empty input, an empty tensor is just no bytes. */
function encodeAs(bt: BlockTypeTraits, x: Float32Array): Uint8Array {
  return x.length === 0 ? new Uint8Array(0) : bt.encode(x);
}

const isFloat = (dtype: string) => /^(?:f|bf)\d+|^f8_|^q|^iq|^tq|^mxfp/.test(dtype);

/**
 * Converts an opened GGUF or safetensors model to `to`.
 * @example const r = await convertModel(await openModel(src), 'safetensors'); writeFileAtomic(out, r.chunks)
 */
export async function convertModel(
  m: OpenedModel,
  to: ConvertTarget,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
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
  const notes: string[] = [];
  if (m.format === 'onnx') {
    notes.push(
      `weights only: the ONNX graph (${m.file.proto.graph?.node?.length ?? 0} top-level nodes) is not carried over`,
    );
  }
  const done: ConvertedTensor[] = [];
  const tensorsOut: (GgufTensorInput | SafetensorsTensorInput)[] = [];
  let fellBack = 0;

  for (const t of srcTensors(m)) {
    const field = `tensor '${t.name}'`;
    const { role } = inferRole(t.name, t.shape);
    const quantizable = t.quantizable ?? isQuantizable(role, t.shape, t.dtype);
    const rowLen = t.shape.length ? t.shape[t.shape.length - 1]! : 1;
    let bytes = await t.read();
    let outType: string; // GGUF ggml name or safetensors dtype
    let action: ConvertedTensor['action'] = 'copy';

    if (to === 'safetensors') {
      const direct = m.format === 'gguf' ? GGUF_TO_ST[t.dtype] : (t.dtype.toUpperCase() as SafetensorsDtype);
      const wanted = target && isFloat(t.dtype) ? (target.name as SafetensorsDtype) : direct;
      if (wanted && wanted === direct) outType = wanted;
      else {
        outType = wanted ?? 'F32';
        const x = toF32(t, bytes, source);
        bytes = encodeAs((BLOCK_TYPES as Readonly<Record<string, BlockTypeTraits>>)[outType]!, x);
        action = direct ? 'convert' : 'dequantize';
      }
    } else {
      if (t.shape.length > 4) {
        throw new MixqError(`${t.shape.length} dims cannot be stored in GGUF`, {
          source,
          field,
          expected: 'at most 4 dims',
        });
      }
      const direct = m.format === 'gguf' ? t.dtype : ST_TO_GGUF[t.dtype];
      let wanted: BlockTypeTraits | undefined;
      if (target && quantizable) {
        if (rowLen % target.blockSize === 0) wanted = target;
        else fellBack++;
      }
      if (wanted && wanted.name.toLowerCase() !== direct) {
        const x = toF32(t, bytes, source);
        bytes = encodeAs(wanted, x);
        outType = wanted.name;
        action = 'quantize';
      } else if (direct) {
        outType = direct;
      } else if (t.dtype.startsWith('f8_')) {
        bytes = encodeAs(BLOCK_TYPES.F32, toF32(t, bytes, source));
        outType = 'f32';
        action = 'convert';
      } else {
        throw new MixqError(`safetensors dtype ${t.dtype.toUpperCase()} has no GGUF tensor type`, {
          source,
          field,
          expected: 'F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I8, I16, I32 or I64',
        });
      }
    }
    if (to === 'gguf') {
      const ne = t.shape.length ? [...t.shape].reverse() : [1];
      tensorsOut.push({ name: t.name, ne, type: outType, data: bytes });
    } else {
      tensorsOut.push({ name: t.name, dtype: outType as SafetensorsDtype, shape: t.shape, data: bytes });
    }
    done.push({ name: t.name, shape: t.shape, from: t.dtype, to: outType.toLowerCase(), action });
  }
  if (fellBack) {
    notes.push(
      `${fellBack} quantizable tensor(s) kept their type: row length not a multiple of ${target?.blockSize}`,
    );
  }

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
    return {
      chunks: writeSafetensors({ tensors: referenceOrder(tensorsOut as SafetensorsTensorInput[]), metadata }),
      tensors: done,
      notes,
    };
  }
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
  return { chunks: writeGguf({ kv, tensors: tensorsOut as GgufTensorInput[] }), tensors: done, notes };
}

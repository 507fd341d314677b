/**
 * Reads and writes ONNX models (onnx.ModelProto) with protobufjs, hardened for untrusted files.
 *
 * Reading first walks the wire format without allocating (prescan.ts: names the field of any damage,
 * caps nesting and the estimated decoded size), then decodes the whole message with protobufjs (which
 * checks every length against the bytes left), then validates what mixq relies on: a graph is present,
 * subgraph nesting, tensor count, every tensor's rank and dims, and that inline data has exactly the size
 * the dims and data type call for. Any failure is a MixqError naming the file, the field path (e.g.
 * `graph.initializer[3] 'fc.weight'.raw_data`) and what was expected.
 *
 * Writing re-encodes the decoded message: fields mixq did not touch, including fields unknown to our schema,
 * come out unchanged (byte-identical for files written by the official C++/Python protobuf runtimes, whose
 * field order protobufjs shares). Protobuf caps one message at 2 GiB; larger models keep their weights in
 * external data files (see tensor-data.ts).
 */
import protobuf from 'protobufjs/light.js';
import { MixqError } from '../../core/errors.ts';
import type { ByteSource } from '../source.ts';
import { onnxDType, rawByteLength } from './dtypes.ts';
import type { Int64, ModelProto, TensorProto } from './proto-types.ts';
import { prescanMessage } from './prescan.ts';
import { modelProtoType } from './schema.ts';
import { forEachGraph } from './walk.ts';

/** Caps for untrusted ONNX files. */
export interface OnnxLimits {
  /** Bytes of the protobuf message itself. Protobuf's own limit is 2 GiB - 1. */
  readonly maxModelBytes: number;
  /** Tensors (initializers, Constant values, sparse initializers) over all graphs. */
  readonly maxTensorCount: number;
  /** Nodes over all graphs. */
  readonly maxNodeCount: number;
  /** Rank of one tensor. ONNX sets none; real models stay under 8. */
  readonly maxRank: number;
  /** Elements in one tensor (2^53 keeps every count an exact JS integer). */
  readonly maxElements: number;
  /** Nesting of subgraphs (If inside Loop inside ...). */
  readonly maxGraphDepth: number;
  /** Nesting of protobuf messages (protobufjs and protoc stop at 100). */
  readonly maxMessageDepth: number;
  /**
   * Estimated bytes of JS objects decoding may create (prescan.ts charges messages, int64 values and
   * repeated elements), so a small hostile file cannot expand into an out-of-memory crash.
   */
  readonly maxDecodedBytes: number;
}

export const DEFAULT_ONNX_LIMITS: OnnxLimits = Object.freeze({
  maxModelBytes: 2 ** 31 - 1,
  maxTensorCount: 1 << 22,
  maxNodeCount: 1 << 24,
  maxRank: 32,
  maxElements: Number.MAX_SAFE_INTEGER,
  maxGraphDepth: 64,
  maxMessageDepth: 100,
  maxDecodedBytes: 2 ** 32, // 4 GiB; a real model's structure is a small fraction of its file size
});

/**
 * Resolves an external data file named by a tensor's `location` (a path relative to the model's folder)
 * to its bytes. In Node use `readOnnxFile` (file.node.ts), which opens files next to the model.
 */
export type ExternalDataResolver = (location: string) => ByteSource | Promise<ByteSource>;

export interface ReadOnnxOptions {
  /** File name for error messages. */
  source?: string;
  /** Where external data files are read from; required only to load external tensors. */
  externalData?: ExternalDataResolver;
  limits?: Partial<OnnxLimits>;
}

/** A decoded ONNX model: the ModelProto (edit it in place) and what is needed to reach its data. */
export interface OnnxModel {
  readonly proto: ModelProto;
  readonly source: string;
  readonly limits: OnnxLimits;
  readonly externalData: ExternalDataResolver | undefined;
  /** Open external data sources by location (filled on first use). */
  readonly externalCache: Map<string, Promise<ByteSource>>;
}

/** Converts an int64 field to a JS number, refusing values that are not exact integers. */
export function int64ToNumber(v: Int64, source: string, field: string): number {
  // A long.js value: two 32-bit halves (high is signed unless the field is unsigned). Exact below 2^53.
  const n = typeof v === 'number' ? v : (v.unsigned ? v.high >>> 0 : v.high) * 2 ** 32 + (v.low >>> 0);
  if (!Number.isSafeInteger(n)) {
    throw new MixqError(`integer ${String(v)} is out of range`, {
      source,
      field,
      expected: 'a safe integer',
    });
  }
  return n;
}

/** Dims as numbers, validated against the caps. */
export function tensorDims(
  dims: readonly Int64[],
  source: string,
  field: string,
  limits: Pick<OnnxLimits, 'maxRank' | 'maxElements'>,
): number[] {
  if (dims.length > limits.maxRank) {
    throw new MixqError(`tensor has ${dims.length} dims`, {
      source,
      field,
      expected: `at most ${limits.maxRank}`,
    });
  }
  const out: number[] = [];
  let count = 1;
  for (let i = 0; i < dims.length; i++) {
    const d = int64ToNumber(dims[i] as Int64, source, `${field}[${i}]`);
    if (d < 0)
      throw new MixqError(`negative dim ${d}`, { source, field: `${field}[${i}]`, expected: '>= 0' });
    count *= d;
    if (count > limits.maxElements) {
      throw new MixqError('tensor has too many elements', {
        source,
        field,
        expected: `at most ${limits.maxElements}`,
      });
    }
    out.push(d);
  }
  return out;
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** True when the tensor says its data lives in an external file. */
export function isExternal(t: TensorProto): boolean {
  return t.data_location === 1;
}

/**
 * Checks that a tensor's inline data matches its dims and data type (external data is checked when read).
 * `field` names the tensor in errors.
 */
export function validateTensor(t: TensorProto, source: string, field: string, limits: OnnxLimits): void {
  const dims = tensorDims(t.dims, source, `${field}.dims`, limits);
  const count = elementCount(dims);
  const info = onnxDType(t.data_type);
  if (!info || isExternal(t) || (t as { segment?: unknown }).segment) return;
  if (t.raw_data.length > 0) {
    if (info.bits === 0) {
      throw new MixqError('raw_data is not allowed for STRING tensors', {
        source,
        field: `${field}.raw_data`,
        expected: 'string_data',
      });
    }
    const want = rawByteLength(info, count);
    if (t.raw_data.length !== want) {
      throw new MixqError(`raw_data has ${t.raw_data.length} bytes`, {
        source,
        field: `${field}.raw_data`,
        expected: `${want} bytes for ${count} x ${info.onnxName}`,
      });
    }
    return;
  }
  const typed = t[info.typedField] as readonly unknown[];
  if (typed.length === 0) return; // no inline data at all: reported only if someone reads it
  const want = Math.ceil((count * info.entriesPerElement) / info.perTypedEntry);
  if (typed.length !== want) {
    throw new MixqError(`${info.typedField} has ${typed.length} entries`, {
      source,
      field: `${field}.${info.typedField}`,
      expected: `${want} for ${count} x ${info.onnxName}`,
    });
  }
}

/** Validates the decoded model against the caps; throws MixqError on the first problem. */
function validateModel(proto: ModelProto, source: string, limits: OnnxLimits): void {
  if (!proto.graph) {
    throw new MixqError('the model has no graph', {
      source,
      field: 'ModelProto.graph',
      expected: 'a GraphProto',
    });
  }
  let tensors = 0;
  let nodes = 0;
  const countTensor = (field: string) => {
    tensors++;
    if (tensors > limits.maxTensorCount) {
      throw new MixqError('too many tensors', {
        source,
        field,
        expected: `at most ${limits.maxTensorCount}`,
      });
    }
  };
  forEachGraph(
    proto,
    (scope) => {
      nodes += scope.nodes.length;
      if (nodes > limits.maxNodeCount) {
        throw new MixqError('too many nodes', {
          source,
          field: scope.path,
          expected: `at most ${limits.maxNodeCount}`,
        });
      }
      scope.initializers.forEach((t, i) => {
        const field = `${scope.path}.initializer[${i}] '${t.name}'`;
        countTensor(field);
        validateTensor(t, source, field, limits);
      });
      scope.sparseInitializers.forEach((s, i) => {
        const field = `${scope.path}.sparse_initializer[${i}]`;
        countTensor(field);
        tensorDims(s.dims, source, `${field}.dims`, limits);
        if (s.values) validateTensor(s.values, source, `${field}.values`, limits);
        if (s.indices) validateTensor(s.indices, source, `${field}.indices`, limits);
      });
      scope.nodes.forEach((node, n) => {
        node.attribute.forEach((a, k) => {
          const field = `${scope.path}.node[${n}] '${node.name}'.attribute[${k}] '${a.name}'`;
          if (a.t) {
            countTensor(field);
            validateTensor(a.t, source, `${field}.t`, limits);
          }
          a.tensors.forEach((t, j) => {
            countTensor(field);
            validateTensor(t, source, `${field}.tensors[${j}]`, limits);
          });
          if (a.sparse_tensor) {
            countTensor(field);
            tensorDims(a.sparse_tensor.dims, source, `${field}.sparse_tensor.dims`, limits);
          }
        });
      });
    },
    { source, maxDepth: limits.maxGraphDepth },
  );
}

let decodes = 0;

/** How many models readOnnx has decoded in this process (tests count parses per job). */
export function onnxDecodeCount(): number {
  return decodes;
}

/**
 * Decodes an ONNX model.
 *
 * @example
 *   const model = readOnnx(bytes, { source: 'model.onnx' });
 *   for (const w of listWeights(model)) console.log(w.name, w.dims);
 * @throws MixqError naming the file, field and expectation when the bytes are not a valid model.
 */
export function readOnnx(bytes: Uint8Array, opts: ReadOnnxOptions = {}): OnnxModel {
  decodes++;
  const source = opts.source ?? '<onnx>';
  const limits = opts.limits ? { ...DEFAULT_ONNX_LIMITS, ...opts.limits } : DEFAULT_ONNX_LIMITS;
  if (bytes.length > limits.maxModelBytes) {
    throw new MixqError(`model is ${bytes.length} bytes`, {
      source,
      field: 'ModelProto',
      expected: `at most ${limits.maxModelBytes} bytes (protobuf's 2 GiB limit; larger weights belong in external data)`,
    });
  }
  // Bounded walk first: names the field of any wire-level damage and refuses memory blow-ups.
  prescanMessage(bytes, modelProtoType(), {
    source,
    budgetBytes: limits.maxDecodedBytes,
    maxDepth: limits.maxMessageDepth,
  });
  let proto: ModelProto;
  try {
    // Keep unknown fields (protobufjs drops them by default) so a newer model's extras are written back.
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    proto = modelProtoType().decode(reader) as unknown as ModelProto;
  } catch (e) {
    // protobufjs reports truncation ("index out of range"), bad wire types and, for absurd nesting, the
    // engine's stack overflow; none of them names a field, so we name the message being decoded.
    const why = e instanceof Error ? e.message : String(e);
    throw new MixqError(`not a valid ONNX protobuf (${why})`, {
      source,
      field: 'ModelProto',
      expected: 'a protobuf-encoded onnx.ModelProto',
    });
  }
  if (int64ToNumber(proto.ir_version, source, 'ModelProto.ir_version') <= 0) {
    throw new MixqError('ir_version is missing', {
      source,
      field: 'ModelProto.ir_version',
      expected: '>= 1',
    });
  }
  try {
    validateModel(proto, source, limits);
  } catch (e) {
    if (e instanceof MixqError) throw e;
    throw new MixqError(`invalid model structure (${e instanceof Error ? e.message : String(e)})`, {
      source,
      field: 'ModelProto',
      expected: 'a well-formed onnx.ModelProto',
    });
  }
  return { proto, source, limits, externalData: opts.externalData, externalCache: new Map() };
}

/**
 * Encodes the model (with any edits) back to bytes.
 *
 * @example
 *   setTensorFloat32(weight.tensor, newValues);
 *   const bytes = writeOnnx(model);
 * @throws MixqError when the encoded model would exceed protobuf's 2 GiB limit.
 */
export function writeOnnx(model: OnnxModel): Uint8Array {
  const encoded = modelProtoType().encode(model.proto).finish();
  // In Node protobufjs hands back a Buffer; return a plain Uint8Array view so callers see one type.
  const bytes = new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  if (bytes.length > model.limits.maxModelBytes) {
    throw new MixqError(`encoded model is ${bytes.length} bytes`, {
      source: model.source,
      field: 'ModelProto',
      expected: `at most ${model.limits.maxModelBytes} bytes: store large weights as external data`,
    });
  }
  return bytes;
}

/** A plain-object copy of the decoded model (int64 as strings, bytes as base64) for structural comparison. */
export function onnxToObject(model: OnnxModel): Record<string, unknown> {
  const T = modelProtoType();
  return T.toObject(model.proto as unknown as protobuf.Message, {
    longs: String,
    bytes: String,
    defaults: false,
    arrays: false,
  });
}

/**
 * Every weight tensor of an ONNX model, wherever the exporter put it:
 * - graph initializers (and sparse initializers),
 * - the `value` / `sparse_value` attribute of `Constant` nodes (paddle2onnx stores all weights this way),
 * - the same inside subgraphs (If / Loop / Scan bodies, recursively), training graphs and functions.
 * Each entry keeps a reference to its TensorProto, so it can be read (tensor-data.ts) or replaced in place
 * before writeOnnx.
 */
import { onnxDType, onnxDTypeName, rawByteLength } from './dtypes.ts';
import type { NodeProto, SparseTensorProto, TensorProto } from './proto-types.ts';
import { elementCount, type OnnxModel, tensorDims } from './read.ts';
import {
  type ExternalDataRef,
  externalDataRef,
  loadTensorFloat32,
  sparseToDenseFloat32,
} from './tensor-data.ts';
import { forEachGraph, nodeLabel } from './walk.ts';

export type OnnxWeightKind = 'initializer' | 'sparse-initializer' | 'constant' | 'sparse-constant';

/** How the data is stored in the file. */
export type OnnxStorage =
  | 'raw_data'
  | 'float_data'
  | 'int32_data'
  | 'int64_data'
  | 'double_data'
  | 'uint64_data'
  | 'string_data'
  | 'external'
  | 'empty';

export interface OnnxWeight {
  /** The value name nodes use: the initializer's name, or the Constant node's output. */
  readonly name: string;
  /** The graph holding it, e.g. 'graph' or 'graph/outer_if.then_branch' (see walk.ts). */
  readonly path: string;
  readonly kind: OnnxWeightKind;
  /** For sparse weights: the values tensor (dims/dtype/bytes below still describe the dense shape). */
  readonly tensor: TensorProto;
  readonly sparse?: SparseTensorProto;
  /** The Constant node, for kind 'constant' / 'sparse-constant'. */
  readonly node?: NodeProto;
  /** Index of the node in its graph (constants) or of the initializer in the initializer list. */
  readonly index: number;
  readonly dims: readonly number[];
  /** TensorProto.DataType code. */
  readonly dataType: number;
  /** mixq dtype id, e.g. 'f32', 'fp8_e4m3fn'. */
  readonly dtype: string;
  readonly elementCount: number;
  /** Bytes of the dense data in raw_data layout (0 for strings). */
  readonly byteLength: number;
  readonly storage: OnnxStorage;
  readonly external?: ExternalDataRef;
}

function storageOf(t: TensorProto): OnnxStorage {
  if (t.data_location === 1) return 'external';
  if (t.raw_data.length > 0) return 'raw_data';
  for (const k of [
    'float_data',
    'int32_data',
    'int64_data',
    'double_data',
    'uint64_data',
    'string_data',
  ] as const) {
    if (t[k].length > 0) return k;
  }
  return 'empty';
}

/**
 * Lists every weight in graph order (per graph: initializers, sparse initializers, then Constant nodes),
 * parents before subgraphs.
 *
 * @example
 *   const params = listWeights(model).reduce((n, w) => n + w.elementCount, 0);
 */
export function listWeights(model: OnnxModel): OnnxWeight[] {
  const out: OnnxWeight[] = [];
  const { source, limits } = model;
  const dense = (
    name: string,
    path: string,
    kind: OnnxWeightKind,
    t: TensorProto,
    index: number,
    field: string,
    extra: { node?: NodeProto; sparse?: SparseTensorProto; dims?: readonly number[] } = {},
  ): OnnxWeight => {
    const dims = extra.dims ?? tensorDims(t.dims, source, `${field}.dims`, limits);
    const count = elementCount(dims);
    const info = onnxDType(t.data_type);
    const ext = externalDataRef(t, source);
    return {
      name,
      path,
      kind,
      tensor: t,
      index,
      dims,
      dataType: t.data_type,
      dtype: onnxDTypeName(t.data_type),
      elementCount: count,
      byteLength: info ? rawByteLength(info, count) : 0,
      storage: storageOf(t),
      ...(ext ? { external: ext } : {}),
      ...(extra.node ? { node: extra.node } : {}),
      ...(extra.sparse ? { sparse: extra.sparse } : {}),
    };
  };
  const sparseWeight = (
    name: string,
    path: string,
    kind: OnnxWeightKind,
    s: SparseTensorProto,
    index: number,
    field: string,
    node?: NodeProto,
  ): OnnxWeight | undefined => {
    if (!s.values) return undefined;
    const dims = tensorDims(s.dims, source, `${field}.dims`, limits);
    return dense(name, path, kind, s.values, index, field, { sparse: s, dims, ...(node ? { node } : {}) });
  };
  forEachGraph(
    model.proto,
    (scope) => {
      scope.initializers.forEach((t, i) => {
        out.push(dense(t.name, scope.path, 'initializer', t, i, `${scope.path}.initializer[${i}]`));
      });
      scope.sparseInitializers.forEach((s, i) => {
        const w = sparseWeight(
          s.values?.name ?? '',
          scope.path,
          'sparse-initializer',
          s,
          i,
          `${scope.path}.sparse_initializer[${i}]`,
        );
        if (w) out.push(w);
      });
      scope.nodes.forEach((node, i) => {
        if (node.op_type !== 'Constant' || (node.domain !== '' && node.domain !== 'ai.onnx')) return;
        const name = node.output[0] ?? '';
        const field = `${scope.path}.node[${i}] '${nodeLabel(node, i)}'`;
        for (const a of node.attribute) {
          if (a.name === 'value' && a.t) {
            out.push(dense(name, scope.path, 'constant', a.t, i, `${field}.value`, { node }));
          } else if (a.name === 'sparse_value' && a.sparse_tensor) {
            const w = sparseWeight(
              name,
              scope.path,
              'sparse-constant',
              a.sparse_tensor,
              i,
              `${field}.sparse_value`,
              node,
            );
            if (w) out.push(w);
          }
        }
      });
    },
    { source, maxDepth: limits.maxGraphDepth },
  );
  return out;
}

/** Total elements over all weights (the parameter count). */
export function parameterCount(weights: readonly OnnxWeight[]): number {
  let n = 0;
  for (const w of weights) n += w.elementCount;
  return n;
}

/**
 * A weight's values as float32 in its dense shape: sparse weights are densified, external ones are read
 * through the model's resolver.
 * @example const w = await loadWeightFloat32(model, listWeights(model)[0]);
 */
export async function loadWeightFloat32(model: OnnxModel, w: OnnxWeight): Promise<Float32Array> {
  return w.sparse ? sparseToDenseFloat32(w.sparse, model.source) : loadTensorFloat32(model, w.tensor);
}

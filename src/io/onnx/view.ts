/**
 * The format-neutral ModelView of an ONNX model: every weight with its role (from the operators that
 * consume it), consumers, layer index and quantizable flag.
 *
 * Roles by consumer (op, input slot):
 *   MatMul A/B (and MatMulInteger, FusedMatMul, com.microsoft MatMulNBits B) -> matmul-weight;
 *   Gemm A/B -> gemm-weight (transB only decides outputAxis; C -> bias);
 *   Conv/ConvTranspose W -> conv-weight (B -> bias); Gather data -> embedding;
 *   LayerNormalization, SimplifiedLayerNormalization, Skip*LayerNormalization, BatchNormalization,
 *   InstanceNormalization, GroupNormalization, RMSNormalization parameters -> norm;
 *   Add whose other input comes straight from MatMul/Gemm/Conv -> bias;
 *   Mul/Add whose other input descends (within a few nodes) from both ReduceMean and Sqrt -> norm
 *   (a LayerNorm/RMSNorm written out as primitive ops).
 * A weight reaching its consumer through layout-only ops (Transpose, Reshape, Cast, DequantizeLinear, ...)
 * gets the role of the op at the end of that chain (paddle2onnx and quantized exports do this).
 * outputAxis (the per-channel axis) follows from the consumer: MatMul B [K, N] -> 1, Gemm B -> transB ? 0
 * : 1, Conv W -> 0, ConvTranspose W -> 1, Gather table -> 0; unknown after an axis-moving op.
 *
 * Layer index: from the weight's name or its consumer's node name (graph/layers.ts); when no quantizable
 * weight has one, from the position of its consuming node among the nodes that consume quantizable
 * weights, in graph order (so a PaddleOCR model numbers its convolutions 0, 1, 2, ...).
 */
import { DEFAULT_MIN_QUANTIZABLE_ELEMENTS, isQuantizableWeight, layerFromName } from '../../graph/layers.ts';
import type { ModelView, TensorConsumer, TensorInfo, TensorRole } from '../../graph/model.ts';
import type { NodeProto } from './proto-types.ts';
import type { OnnxModel } from './read.ts';
import { int64ToNumber } from './read.ts';
import { listWeights, type OnnxWeight } from './weights.ts';
import { forEachGraph, type GraphScope, nodeLabel } from './walk.ts';

export interface OnnxViewOptions {
  /** Smallest weight (elements) flagged quantizable; default DEFAULT_MIN_QUANTIZABLE_ELEMENTS (1024). */
  minQuantizableElements?: number;
}

const PASS_THROUGH = new Set([
  'Transpose',
  'Reshape',
  'Cast',
  'Identity',
  'Squeeze',
  'Unsqueeze',
  'Flatten',
  'DequantizeLinear',
]);
const NORM_OPS = new Set([
  'LayerNormalization',
  'SimplifiedLayerNormalization',
  'SkipLayerNormalization',
  'SkipSimplifiedLayerNormalization',
  'BatchNormalization',
  'InstanceNormalization',
  'GroupNormalization',
  'RMSNormalization',
]);
const LINEAR_OPS = new Set(['MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'FusedMatMul']);
/** Pass-through ops that keep every element in place (the others may move axes). */
const VALUE_ONLY = new Set(['Cast', 'Identity', 'DequantizeLinear']);
const MAX_CHAIN = 4;
const NORM_SEARCH_DEPTH = 6;

interface Use {
  /** True when the value reached this node through an op that may move axes (Transpose, Reshape, ...). */
  readonly reshaped?: boolean;
  readonly node: NodeProto;
  readonly nodeId: number;
  readonly inputIndex: number;
  readonly scope: GraphScope;
}

/** Where a value is defined: scope path + name. */
const key = (path: string, name: string) => `${path}\u0000${name}`;

/** Indexes every node input by the scope that defines the value (subgraphs may read outer values). */
function indexUses(model: OnnxModel) {
  const uses = new Map<string, Use[]>();
  const producers = new Map<string, NodeProto>();
  const defined = new Map<string, Set<string>>(); // scope path -> names defined in it
  const nodeOrder: NodeProto[] = [];
  forEachGraph(
    model.proto,
    (scope) => {
      const names = new Set<string>();
      for (const t of scope.initializers) names.add(t.name);
      for (const s of scope.sparseInitializers) names.add(s.values?.name ?? '');
      for (const v of scope.graph?.input ?? []) names.add(v.name);
      for (const n of scope.nodes) {
        for (const o of n.output) {
          names.add(o);
          producers.set(key(scope.path, o), n);
        }
      }
      defined.set(scope.path, names);
      for (const node of scope.nodes) {
        const nodeId = nodeOrder.push(node) - 1;
        node.input.forEach((name, inputIndex) => {
          if (!name) return; // an omitted optional input
          let s: GraphScope | null = scope;
          while (s && !defined.get(s.path)?.has(name)) s = s.parent;
          const k = key((s ?? scope).path, name);
          const list = uses.get(k);
          const use = { node, nodeId, inputIndex, scope };
          if (list) list.push(use);
          else uses.set(k, [use]);
        });
      }
    },
    { source: model.source, maxDepth: model.limits.maxGraphDepth },
  );
  const nodeId = new Map(nodeOrder.map((n, i) => [n, i]));
  return { uses, producers, nodeId };
}

type Index = ReturnType<typeof indexUses>;

/** True when `name` (in `scope`) descends, within a few nodes, from both a ReduceMean and a Sqrt. */
function fromNormStatistics(index: Index, scope: GraphScope, name: string): boolean {
  const seen = new Set<string>();
  let frontier = [name];
  let sawMean = false;
  let sawSqrt = false;
  for (let depth = 0; depth < NORM_SEARCH_DEPTH && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const v of frontier) {
      const p = index.producers.get(key(scope.path, v));
      if (!p || seen.has(v)) continue;
      seen.add(v);
      if (p.op_type === 'ReduceMean') sawMean = true;
      if (p.op_type === 'Sqrt') sawSqrt = true;
      next.push(...p.input.filter(Boolean));
    }
    frontier = next;
  }
  return sawMean && sawSqrt;
}

function roleOfUse(index: Index, use: Use, rank: number, dtype: string): TensorRole {
  const { node, inputIndex: i } = use;
  const op = node.op_type;
  if (op === 'MatMul' || op === 'FusedMatMul' || op === 'MatMulInteger') {
    return i <= 1 && rank >= 2 ? 'matmul-weight' : 'other';
  }
  // onnxruntime's 4-bit weight-only MatMul (com.microsoft): B is the packed weight, input 5 the bias.
  if (op === 'MatMulNBits') return i === 1 ? 'matmul-weight' : i === 5 ? 'bias' : 'other';
  if (op === 'Gemm') return i <= 1 ? 'gemm-weight' : 'bias';
  if (op === 'Conv' || op === 'ConvTranspose') return i === 1 ? 'conv-weight' : i === 2 ? 'bias' : 'other';
  if (op === 'Gather') return i === 0 && rank === 2 && dtype.startsWith('f') ? 'embedding' : 'other';
  if (NORM_OPS.has(op)) return i >= 1 ? 'norm' : 'other';
  if (op === 'Add' || op === 'Mul') {
    const other = node.input[1 - i];
    if (other === undefined || node.input.length !== 2) return 'other';
    const producer = index.producers.get(key(use.scope.path, other));
    if (op === 'Add' && producer && LINEAR_OPS.has(producer.op_type)) return 'bias';
    if (fromNormStatistics(index, use.scope, other)) return 'norm';
  }
  return 'other';
}

/** Uses of a value, following layout-only ops to the op that really consumes it. */
function effectiveUses(index: Index, uses: readonly Use[], depth = 0, reshaped = false): Use[] {
  const out: Use[] = [];
  for (const u of uses) {
    const out0 = u.node.output[0];
    if (PASS_THROUGH.has(u.node.op_type) && u.inputIndex === 0 && out0 && depth < MAX_CHAIN) {
      const next = index.uses.get(key(u.scope.path, out0)) ?? [];
      const moves = !VALUE_ONLY.has(u.node.op_type);
      out.push(...effectiveUses(index, next, depth + 1, reshaped || moves));
    } else {
      out.push(reshaped ? { ...u, reshaped } : u);
    }
  }
  return out;
}

/** An integer attribute of a node, or `fallback`. */
function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  if (!a) return fallback;
  return typeof a.i === 'number' ? a.i : a.i.low;
}

/** The axis of the stored weight that indexes output channels, for the use that gave it its role. */
function outputAxisOf(use: Use, role: TensorRole, rank: number): number | undefined {
  if (use.reshaped) return undefined;
  const op = use.node.op_type;
  if (role === 'matmul-weight') {
    if (op === 'MatMulNBits') return 0; // B is [N, blocks, blob]
    return use.inputIndex === 1 ? rank - 1 : undefined; // B [.., K, N]
  }
  if (role === 'gemm-weight')
    return use.inputIndex === 1 ? (intAttr(use.node, 'transB', 0) ? 0 : 1) : undefined;
  if (role === 'conv-weight') return op === 'ConvTranspose' ? 1 : 0;
  if (role === 'embedding') return 0;
  return undefined;
}

/** Model-level metadata: metadata_props as given, plus a few ModelProto fields under 'onnx.'. */
function metadataOf(model: OnnxModel): Record<string, string> {
  const p = model.proto;
  const meta: Record<string, string> = {};
  for (const e of p.metadata_props) meta[e.key] = e.value;
  meta['onnx.ir_version'] = String(int64ToNumber(p.ir_version, model.source, 'ModelProto.ir_version'));
  meta['onnx.opset_import'] = p.opset_import
    .map((o) => `${o.domain || 'ai.onnx'}:${String(o.version)}`)
    .join(',');
  if (p.producer_name) meta['onnx.producer_name'] = p.producer_name;
  if (p.producer_version) meta['onnx.producer_version'] = p.producer_version;
  if (p.graph?.name) meta['onnx.graph_name'] = p.graph.name;
  return meta;
}

/**
 * Builds the ModelView of an ONNX model. Subgraph weights are named '<graph path>/<name>' (the main graph's
 * keep their plain names), so names are unique across graphs.
 *
 * @example
 *   const view = onnxModelView(readOnnx(bytes));
 *   const targets = view.tensors.filter((t) => t.quantizable);
 */
export function onnxModelView(model: OnnxModel, opts: OnnxViewOptions = {}): ModelView {
  const minElements = opts.minQuantizableElements ?? DEFAULT_MIN_QUANTIZABLE_ELEMENTS;
  const index = indexUses(model);
  const weights = listWeights(model);

  interface Draft {
    w: OnnxWeight;
    role: TensorRole;
    consumers: TensorConsumer[];
    effective: Use[];
    outputAxis: number | undefined;
    nameLayer: number | undefined;
    quantizable: boolean;
  }
  const drafts: Draft[] = weights.map((w) => {
    const direct = index.uses.get(key(w.path, w.name)) ?? [];
    const effective = effectiveUses(index, direct);
    let role: TensorRole = 'other';
    let outputAxis: number | undefined;
    for (const u of effective) {
      role = roleOfUse(index, u, w.dims.length, w.dtype);
      if (role !== 'other') {
        outputAxis = outputAxisOf(u, role, w.dims.length);
        break;
      }
    }
    const consumers = direct.map((u) => ({
      op: u.node.op_type,
      node: u.node.name || nodeLabel(u.node, u.nodeId),
      inputIndex: u.inputIndex,
    }));
    let nameLayer = layerFromName(w.name);
    for (const u of effective) nameLayer ??= layerFromName(u.node.name);
    const quantizable = isQuantizableWeight(role, w.dims, w.dtype, minElements);
    return { w, role, consumers, effective, outputAxis, nameLayer, quantizable };
  });

  // Positional layers: the nodes consuming quantizable weights, numbered in graph order.
  const byNames = drafts.some((d) => d.quantizable && d.nameLayer !== undefined);
  const position = new Map<number, number>();
  if (!byNames) {
    const ids = new Set<number>();
    for (const d of drafts) if (d.quantizable) for (const u of d.effective) ids.add(u.nodeId);
    for (const id of [...ids].sort((a, b) => a - b)) position.set(id, position.size);
  }

  const tensors: TensorInfo[] = drafts.map((d) => {
    let layer = d.nameLayer;
    if (!byNames) {
      let pos: number | undefined;
      for (const u of d.effective) pos ??= position.get(u.nodeId);
      // A bias added after its MatMul/Gemm/Conv belongs to that op's layer.
      if (pos === undefined && d.role === 'bias') {
        for (const u of d.effective) {
          const other = u.node.input[1 - u.inputIndex];
          const producer = other === undefined ? undefined : index.producers.get(key(u.scope.path, other));
          const id = producer ? index.nodeId.get(producer) : undefined;
          pos ??= id === undefined ? undefined : position.get(id);
        }
      }
      layer = pos ?? d.nameLayer;
    }
    return {
      name: d.w.path === 'graph' ? d.w.name : `${d.w.path}/${d.w.name}`,
      shape: d.w.dims,
      dtype: d.w.dtype,
      byteLength: d.w.byteLength,
      role: d.role,
      consumers: d.consumers,
      ...(layer !== undefined ? { layer } : {}),
      quantizable: d.quantizable,
      ...(d.outputAxis !== undefined ? { outputAxis: d.outputAxis } : {}),
    };
  });
  return { format: 'onnx', tensors, metadata: metadataOf(model) };
}

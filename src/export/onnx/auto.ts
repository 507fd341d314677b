/**
 * A default assignment: every quantizable weight of the main graph gets one scheme at one bit width,
 * everything else (norms, biases, 1-D tensors, scalars, and by default the layer that produces a graph
 * output, i.e. the logits) stays in float. Mixed precision = edit the returned record per weight.
 */
import { DATA_TYPE_CODES as C } from '../../io/onnx/schema.ts';
import type { GraphProto, NodeProto } from '../../io/onnx/proto-types.ts';
import type { OnnxModel } from '../../io/onnx/read.ts';
import { listWeights } from '../../io/onnx/weights.ts';
import { intAttr } from './build.ts';
import type { WeightAssignment, WeightAssignments } from './quantize.ts';

export interface AutoAssignOptions {
  readonly bits: 2 | 4 | 8;
  /** Default 32. */
  readonly blockSize?: number;
  readonly symmetric?: boolean;
  readonly scaleType?: 'float32' | 'float16';
  /** MatMul weights: default 'matmulnbits'. */
  readonly matmul?: 'matmulnbits' | 'dequantizelinear' | 'keep';
  /** Gather tables (embeddings): default 'gatherblockquantized'. */
  readonly gather?: 'gatherblockquantized' | 'dequantizelinear' | 'keep';
  /** Gemm and Conv weights: default 'dequantizelinear' (Conv per output channel). */
  readonly gemm?: 'dequantizelinear' | 'keep';
  readonly conv?: 'dequantizelinear' | 'keep';
  /** Keep weights of nodes whose output is a graph output (the logits). Default true. */
  readonly keepOutputLayer?: boolean;
  /** Weights with fewer elements stay float (default 256). */
  readonly minElements?: number;
}

const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'Gather']);

/**
 * Weights of the output layer(s): walking back from each graph output, the weight inputs of the first
 * MatMul / Gemm / Conv / Gather met on every path (through bias adds, softmax, reshapes, ...). Those nodes
 * produce the logits, which stay in float.
 */
export function outputLayerWeights(graph: GraphProto): Set<string> {
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) producer.set(o, n);
  const consts = new Set(graph.initializer.map((t) => t.name));
  for (const n of graph.node) if (n.op_type === 'Constant') for (const o of n.output) consts.add(o);
  const out = new Set<string>();
  const seen = new Set<string>();
  const stack = graph.output.map((o) => o.name);
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const n = producer.get(v);
    if (!n || n.op_type === 'Constant') continue;
    const weights = WEIGHT_OPS.has(n.op_type) ? n.input.filter((x) => consts.has(x)) : [];
    if (weights.length > 0) {
      for (const x of weights) out.add(x);
      // the activation input still leads back, but only to layers that are not the output layer
      continue;
    }
    for (const x of n.input) if (x) stack.push(x);
  }
  return out;
}

/**
 * Assignments for every quantizable weight: MatMul B [K, N], Gemm B, Conv W, Gather table [V, D].
 * Weights with mixed uses, or a configuration their operator cannot take (2-bit outside MatMulNBits,
 * odd row lengths for 4-bit GatherBlockQuantized), are left out, i.e. kept in float.
 */
export function autoAssignments(model: OnnxModel, opts: AutoAssignOptions): Record<string, WeightAssignment> {
  const graph = model.proto.graph;
  const out: Record<string, WeightAssignment> = {};
  if (!graph) return out;
  const outputLayer = outputLayerWeights(graph);
  const uses = new Map<string, { op: string; index: number; axis: number }[]>();
  for (const n of graph.node)
    n.input.forEach((name, index) => {
      const list = uses.get(name) ?? [];
      list.push({ op: n.op_type, index, axis: intAttr(n, 'axis', 0) });
      uses.set(name, list);
    });
  const base = {
    bits: opts.bits,
    blockSize: opts.blockSize ?? 32,
    symmetric: opts.symmetric ?? true,
    scaleType: opts.scaleType ?? 'float32',
  } as const;
  for (const w of listWeights(model)) {
    if (w.path !== 'graph' || (w.kind !== 'initializer' && w.kind !== 'constant')) continue;
    if (w.dataType !== C.FLOAT || w.dims.length < 2 || w.elementCount < (opts.minElements ?? 256)) continue;
    const u = uses.get(w.name) ?? [];
    const kinds = new Set(u.map((x) => `${x.op}#${x.index}`));
    if (u.length === 0 || kinds.size !== 1) continue;
    if ((opts.keepOutputLayer ?? true) && outputLayer.has(w.name)) continue;
    const first = u[0]!;
    let scheme: WeightAssignment['scheme'] = 'keep';
    if (first.op === 'MatMul' && first.index === 1 && w.dims.length === 2)
      scheme = opts.matmul ?? 'matmulnbits';
    else if (first.op === 'Gemm' && first.index === 1) scheme = opts.gemm ?? 'dequantizelinear';
    else if (first.op === 'Conv' && first.index === 1) scheme = opts.conv ?? 'dequantizelinear';
    else if (
      first.op === 'Gather' &&
      first.index === 0 &&
      w.dims.length === 2 &&
      u.every((x) => x.axis === 0)
    )
      scheme = opts.gather ?? 'gatherblockquantized';
    if (scheme === 'keep') continue;
    if (opts.bits === 2 && scheme !== 'matmulnbits') continue;
    if (scheme === 'gatherblockquantized' && ((w.dims[1] ?? 0) * opts.bits) % 8 !== 0) continue;
    out[w.name] = { scheme, ...base };
  }
  return out;
}

export type { WeightAssignments };

/**
 * What produces each graph output of an ONNX model: the operator (looked through Identity and Cast) and
 * the attributes that say how to read its values (Softmax / LogSoftmax axis; before opset 13 those ops
 * coerce their input to 2-D at `axis`, default 1; from 13 on they work along `axis`, default -1).
 */
import type { ModelProto, NodeProto } from './proto-types.ts';
import { int64ToNumber } from './read.ts';

export interface OutputProducer {
  readonly op: string;
  readonly axis?: number;
  readonly coerce2d?: boolean;
}

const LOOK_THROUGH = new Set(['Identity', 'Cast']);

function defaultOpset(model: ModelProto): number {
  const o = model.opset_import.find((x) => x.domain === '' || x.domain === 'ai.onnx');
  return o ? int64ToNumber(o.version, '', 'opset_import') : 1;
}

function intAttr(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a ? int64ToNumber(a.i, '', `${node.name}.${name}`) : undefined;
}

/**
 * The producer of every output of the main graph (outputs that are graph inputs or initializers are
 * absent).
 * @example outputProducers(model.proto).get('sigmoid_0.tmp_0') // { op: 'Sigmoid' }
 */
export function outputProducers(model: ModelProto): Map<string, OutputProducer> {
  const graph = model.graph;
  const out = new Map<string, OutputProducer>();
  if (!graph) return out;
  const byOutput = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) byOutput.set(o, n);
  const opset = defaultOpset(model);
  for (const g of graph.output) {
    let node = byOutput.get(g.name);
    for (let hops = 0; node && LOOK_THROUGH.has(node.op_type) && node.domain === '' && hops < 8; hops++)
      node = byOutput.get(node.input[0] ?? '');
    if (!node) continue;
    const op =
      node.domain === '' || node.domain === 'ai.onnx' ? node.op_type : `${node.domain}.${node.op_type}`;
    if (op === 'Softmax' || op === 'LogSoftmax') {
      const coerce2d = opset < 13;
      out.set(g.name, { op, axis: intAttr(node, 'axis') ?? (coerce2d ? 1 : -1), coerce2d });
    } else out.set(g.name, { op });
  }
  return out;
}

/**
 * The bias constant (initializer or Constant node) of each weight's layer, for bias correction: Conv / Gemm input 2, or the constant
 * operand of the single Add a MatMul's output feeds (how PyTorch and paddle2onnx export Linear). Only
 * biases read by that one node are returned (changing a shared tensor would change other layers too).
 */
import type { GraphProto } from '../../io/onnx/proto-types.ts';

export function findBiases(graph: GraphProto, weights: Iterable<string>): Map<string, string> {
  // constants: initializers, and Constant node outputs (paddle2onnx stores every weight that way)
  const inits = new Set(graph.initializer.map((t) => t.name));
  for (const n of graph.node) if (n.op_type === 'Constant' && n.output[0]) inits.add(n.output[0]);
  // every reading node, once per input slot that reads the name
  const byInput = new Map<string, (typeof graph.node)[number][]>();
  for (const n of graph.node)
    for (const x of n.input) {
      const l = byInput.get(x) ?? [];
      l.push(n);
      byInput.set(x, l);
    }
  const own = (b: string | undefined): b is string =>
    b !== undefined && b !== '' && inits.has(b) && byInput.get(b)?.length === 1;
  const out = new Map<string, string>();
  for (const w of weights) {
    const users = byInput.get(w) ?? [];
    if (users.length !== 1) continue;
    const n = users[0]!;
    if (n.input[1] !== w) continue;
    if (n.op_type === 'Conv' || n.op_type === 'Gemm') {
      if (own(n.input[2])) out.set(w, n.input[2]);
    } else if (n.op_type === 'MatMul' && n.output[0]) {
      const next = byInput.get(n.output[0]) ?? [];
      if (next.length !== 1 || next[0]!.op_type !== 'Add') continue;
      const other = next[0]!.input.find((x) => x !== n.output[0]);
      if (own(other)) out.set(w, other);
    }
  }
  return out;
}

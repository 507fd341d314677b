/**
 * The graph onnxruntime's `quantize_dynamic` writes with its defaults of transformers.js's q8 mode
 * (scripts/quantize.py: QOperator / IntegerOps, QInt8 weights, per_channel off, reduce_range off), written
 * from the operator specs (ONNX DynamicQuantizeLinear, MatMulInteger, DequantizeLinear), no code copied:
 *
 *   MatMul(A, B[K, N] const)  ->  DynamicQuantizeLinear(A) -> (A_q uint8, A_scale, A_zp)
 *                                 MatMulInteger(A_q, B_q int8, A_zp, 0) -> Cast(float) -> Mul(A_scale * B_scale)
 *   Gather(T[V, D] const, ids) ->  Gather(T_q int8, ids) -> DequantizeLinear(T_scale, 0)
 *
 * Weights: one symmetric scale per tensor, s = max|w| / 127, codes rint(w / s) clipped to -127..127 (ties
 * to even, as numpy's rint in onnxruntime's quantize_data); zero point 0. The activations are quantized
 * at run time to uint8 over each MatMul input's own range (extended to hold 0), which no weight
 * replacement can simulate: this is the file to run. Browser-safe.
 */
import { MixqError } from '../../core/errors.ts';
import { cloneOnnxModel } from '../../io/onnx/clone.ts';
import type { NodeProto, TensorProto } from '../../io/onnx/proto-types.ts';
import type { OnnxModel } from '../../io/onnx/read.ts';
import { listWeights, loadWeightFloat32, type OnnxWeight } from '../../io/onnx/weights.ts';
import { DT, freshNamer, intAttr, makeNode, makeTensor, requireOpset } from './build.ts';

/** One weight as the dynamic int8 graph stores it. */
export interface DynamicInt8Weight {
  readonly name: string;
  /** 'MatMul' or 'Gather'. */
  readonly op: string;
  /** The float32 scale of the tensor. */
  readonly scale: number;
  /** Stored bytes: int8 codes, the float32 scale and the int8 zero point. */
  readonly bytes: number;
}

export interface DynamicInt8Model {
  readonly model: OnnxModel;
  readonly weights: readonly DynamicInt8Weight[];
}

/** numpy's rint: round half to even. */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Symmetric int8 codes of `w` with one scale per tensor (s = max|w| / 127 in float32, as onnxruntime's
 * quantize_data computes it) and their float32 values s * q.
 */
export function int8PerTensorCodes(w: Float32Array): { q: Int8Array; scale: number; values: Float32Array } {
  let m = 0;
  for (const x of w) m = Math.max(m, Math.abs(x));
  const scale = Math.fround(m / 127);
  const q = new Int8Array(w.length);
  const values = new Float32Array(w.length);
  if (scale === 0) return { q, scale, values };
  for (let i = 0; i < w.length; i++) {
    q[i] = Math.min(127, Math.max(-127, rint(Math.fround(w[i]! / scale))));
    values[i] = Math.fround(q[i]! * scale);
  }
  return { q, scale, values };
}

const f32Scalar = (v: number): Uint8Array => new Uint8Array(Float32Array.of(v).buffer);

/**
 * The dynamic int8 model of `model` (not changed): every MatMul whose B is a float32 matrix of the main
 * graph and every Gather of a float32 table [V, D] along axis 0 rewritten as in the file comment; weights
 * read by anything else stay float. A weight feeding both kinds is refused.
 */
export async function quantizeDynamicInt8(model: OnnxModel): Promise<DynamicInt8Model> {
  const copy = cloneOnnxModel(model);
  const graph = copy.proto.graph;
  if (!graph)
    throw new MixqError('the model has no graph', {
      source: model.source,
      field: 'graph',
      expected: 'a graph',
    });
  const dense = new Map(
    listWeights(copy)
      .filter((w) => w.path === 'graph' && w.kind === 'initializer' && w.dataType === DT.FLOAT)
      .map((w) => [w.name, w] as const),
  );
  const uses = new Map<string, string[]>();
  for (const n of graph.node)
    n.input.forEach((x, i) => {
      if (dense.has(x)) uses.set(x, [...(uses.get(x) ?? []), `${n.op_type}:${i}`]);
    });
  const quantizable = (x: string, use: string): OnnxWeight | undefined => {
    const w = dense.get(x);
    return w && w.dims.length === 2 && uses.get(x)!.every((u) => u === use) ? w : undefined;
  };
  const fresh = freshNamer(graph);
  const inits: TensorProto[] = [];
  const stored = new Map<string, { q: string; scale: string; zero: string }>();
  const weights: DynamicInt8Weight[] = [];
  const store = async (w: OnnxWeight, op: string) => {
    const have = stored.get(w.name);
    if (have) return have;
    const { q, scale } = int8PerTensorCodes(await loadWeightFloat32(copy, w));
    const names = {
      q: fresh(`${w.name}_quantized`),
      scale: fresh(`${w.name}_scale`),
      zero: fresh(`${w.name}_zero_point`),
    };
    inits.push(
      makeTensor(names.q, DT.INT8, w.dims, new Uint8Array(q.buffer)),
      makeTensor(names.scale, DT.FLOAT, [], f32Scalar(scale)),
      makeTensor(names.zero, DT.INT8, [], new Uint8Array(1)),
    );
    stored.set(w.name, names);
    weights.push({ name: w.name, op, scale, bytes: q.length + 4 + 1 });
    return names;
  };
  // new nodes are unnamed, as onnxruntime's quantizer leaves them (names are file bytes)
  const nodes: NodeProto[] = [];
  for (const n of graph.node) {
    const p = n.name || n.output[0]!;
    const b = n.op_type === 'MatMul' && n.domain === '' ? quantizable(n.input[1]!, 'MatMul:1') : undefined;
    const t =
      n.op_type === 'Gather' && n.domain === '' && intAttr(n, 'axis', 0) === 0
        ? quantizable(n.input[0]!, 'Gather:0')
        : undefined;
    if (b) {
      const s = await store(b, 'MatMul');
      const [aq, as, az, yi, yf, sc] = ['aq', 'as', 'az', 'yi', 'yf', 's'].map((x) => fresh(`${p}_${x}`));
      nodes.push(
        makeNode('DynamicQuantizeLinear', [n.input[0]!], [aq!, as!, az!]),
        makeNode('MatMulInteger', [aq!, s.q, az!, s.zero], [yi!]),
        makeNode('Cast', [yi!], [yf!], { attrs: { to: DT.FLOAT } }),
        makeNode('Mul', [as!, s.scale], [sc!]),
        makeNode('Mul', [yf!, sc!], [n.output[0]!]),
      );
    } else if (t) {
      const s = await store(t, 'Gather');
      const g = fresh(`${p}_gathered`);
      nodes.push(
        makeNode('Gather', [s.q, n.input[1]!], [g], { name: n.name, attrs: { axis: 0 } }),
        makeNode('DequantizeLinear', [g, s.scale, s.zero], [n.output[0]!]),
      );
    } else nodes.push(n);
  }
  graph.node = nodes;
  graph.initializer = [...graph.initializer.filter((x) => !stored.has(x.name)), ...inits];
  // DynamicQuantizeLinear and MatMulInteger are opset 11, DequantizeLinear 10
  requireOpset(copy.proto, '', 11);
  return { model: copy, weights };
}

/**
 * Folding per-input-channel scales (AWQ, SmoothQuant) into an ONNX graph. Those algorithms return s (one
 * value per input channel k of a linear layer) and the scaled weight diag(s) W; the graph must then compute
 * y = (x / s) @ (diag(s) W), which equals x @ W exactly in real arithmetic. This module rewrites a MatMul
 * whose B operand is an initializer [K, N] (rows = input channels, the ONNX / torch.onnx layout) so that:
 *
 *  - FOLDED: the division by s is absorbed by the op producing the MatMul's input, adding no node:
 *      LayerNormalization (gamma / s, beta / s), a decomposed norm ending in Mul(gamma) [then Add(beta)],
 *      a previous MatMul [+ Add(bias)] or Gemm with an initializer weight (its output columns and bias / s).
 *    Only when that producer's output feeds nothing but the MatMuls being scaled with the same s (shape-only
 *    readers such as Shape are allowed: they do not see values) and is not a graph output.
 *  - EXPLICIT: otherwise one Mul by a constant 1/s is inserted in front of the MatMul(s).
 *
 * Sources: AWQ (Lin et al. 2023, llm-awq auto_scale.py scale_ln_fcs / scale_fc_fc) and SmoothQuant
 * (Xiao et al. 2022, smooth.py smooth_ln_fcs) fold the same way in PyTorch; operator semantics from the
 * ONNX operator docs (LayerNormalization, Gemm, MatMul broadcasting). Browser-safe.
 */
import { MixqError } from '../../core/errors.ts';
import type { GraphProto, NodeProto, TensorProto } from '../../io/onnx/proto-types.ts';
import { elementCount, type OnnxModel, readOnnx, tensorDims, writeOnnx } from '../../io/onnx/read.ts';
import { onnxMessageType } from '../../io/onnx/schema.ts';
import { loadTensorFloat32, setTensorFloat32 } from '../../io/onnx/tensor-data.ts';
import { intAttr, makeNode } from './build.ts';

/** What absorbed the 1/s. */
export type FoldTarget =
  'LayerNormalization' | 'Mul+Add' | 'Mul' | 'MatMul' | 'MatMul+Add' | 'Gemm' | 'explicit-Mul';

export interface FoldScalesResult {
  /** A new model (the input is left untouched). */
  readonly model: OnnxModel;
  readonly mode: 'folded' | 'explicit';
  readonly target: FoldTarget;
  /** Name (or op type when unnamed) of the node that absorbed 1/s, or of the inserted Mul. */
  readonly node: string;
  /** Why folding was not possible (explicit mode), or what was folded. */
  readonly reason: string;
  /** Nodes added to the graph: 0 when folded, 1 when explicit. */
  readonly addedNodes: number;
}

const DIM_CAPS = { maxRank: 64, maxElements: Number.MAX_SAFE_INTEGER } as const;

/** Ops that read only the shape / type of their input, never its values. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

function fail(message: string, field: string, expected?: string): never {
  throw new MixqError(message, { source: 'foldInputScales', field, expected });
}

function cloneModel(m: OnnxModel): OnnxModel {
  return readOnnx(writeOnnx(m), { source: m.source, externalData: m.externalData, limits: m.limits });
}

interface Use {
  readonly node: NodeProto;
  readonly index: number;
}

/** Graph bookkeeping for one rewrite. */
class GraphIndex {
  readonly uses = new Map<string, Use[]>();
  readonly producer = new Map<string, NodeProto>();
  readonly inits = new Map<string, TensorProto>();
  readonly outputs: Set<string>;
  readonly names = new Set<string>();
  /** Names read inside subgraphs (If / Loop / Scan bodies may read outer values implicitly). */
  readonly subgraphReads = new Set<string>();

  constructor(readonly graph: GraphProto) {
    for (const node of graph.node) {
      node.input.forEach((name, index) => {
        const list = this.uses.get(name) ?? [];
        list.push({ node, index });
        this.uses.set(name, list);
      });
      for (const o of node.output) {
        this.producer.set(o, node);
        this.names.add(o);
      }
      if (node.name) this.names.add(node.name);
    }
    for (const t of graph.initializer) {
      this.inits.set(t.name, t);
      this.names.add(t.name);
    }
    for (const v of graph.input) this.names.add(v.name);
    this.outputs = new Set(graph.output.map((v) => v.name));
    const visit = (g: GraphProto): void => {
      for (const n of g.node) {
        for (const i of n.input) this.subgraphReads.add(i);
        for (const a of n.attribute) {
          if (a.g) visit(a.g);
          for (const sub of a.graphs) visit(sub);
        }
      }
    };
    for (const n of graph.node)
      for (const a of n.attribute) {
        if (a.g) visit(a.g);
        for (const sub of a.graphs) visit(sub);
      }
  }

  /** True when something besides the node inputs in `uses` may read the value (graph output, subgraph). */
  escapes(name: string): boolean {
    return this.outputs.has(name) || this.subgraphReads.has(name);
  }

  usesOf(name: string): Use[] {
    return this.uses.get(name) ?? [];
  }

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }
}

function label(node: NodeProto): string {
  return node.name || node.op_type;
}

/** A pending edit: new values for an initializer read by one node input. */
interface Edit {
  readonly node: NodeProto;
  readonly index: number;
  readonly tensor: TensorProto;
  readonly values: Float32Array;
  /** New dims (a scalar bias widened to [N]); default: unchanged. */
  readonly dims?: readonly number[];
}

/**
 * Applies an edit: in place when only this node input reads the initializer, else into a new initializer
 * (so other readers keep the original values). Never touches graph inputs that shadow initializers.
 */
function applyEdit(ix: GraphIndex, e: Edit): void {
  const readers = ix.usesOf(e.tensor.name);
  if (readers.length === 1 && !ix.escapes(e.tensor.name)) {
    setTensorFloat32(e.tensor, e.values, e.dims);
    return;
  }
  const name = ix.unique(`${e.tensor.name}.folded`);
  const t = onnxMessageType('TensorProto').create({
    name,
    data_type: e.tensor.data_type,
  }) as unknown as TensorProto;
  setTensorFloat32(t, e.values, e.dims ?? dimsOf(e.tensor));
  ix.graph.initializer.push(t);
  e.node.input[e.index] = name;
}

function dimsOf(t: TensorProto): number[] {
  return tensorDims(t.dims, 'foldInputScales', `${t.name}.dims`, DIM_CAPS);
}

/** A float initializer read by `node.input[index]`, or undefined. */
function initAt(ix: GraphIndex, node: NodeProto, index: number): TensorProto | undefined {
  const name = node.input[index];
  if (name === undefined || name === '') return undefined;
  // a graph input of the same name can override the initializer at run time: not a constant
  if (ix.graph.input.some((v) => v.name === name)) return undefined;
  return ix.inits.get(name);
}

/** True when dims hold exactly K values along the last axis (leading dims all 1). */
function isChannelVector(dims: readonly number[], K: number): boolean {
  return dims.length >= 1 && dims[dims.length - 1] === K && dims.slice(0, -1).every((d) => d === 1);
}

/** values[i] / s[i % K]: divides a tensor whose last axis is the channel axis. */
function divideLastAxis(values: Float32Array, s: Float32Array): Float32Array {
  const K = s.length;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i]! / s[i % K]!;
  return out;
}

/** Bias-like operand (Add input / Gemm C) divided per output channel; undefined when its shape does not allow it. */
async function biasEdit(
  model: OnnxModel,
  node: NodeProto,
  index: number,
  t: TensorProto,
  s: Float32Array,
): Promise<Edit | undefined> {
  const dims = dimsOf(t);
  const K = s.length;
  const v = await loadTensorFloat32(model, t);
  if (dims.length >= 1 && dims[dims.length - 1] === K) {
    // [.., K]: elementwise along the output's last (channel) axis, whatever the leading dims
    return { node, index, tensor: t, values: divideLastAxis(v, s) };
  }
  if (elementCount(dims) === 1) {
    // a broadcast scalar becomes a per-channel vector (the output's last axis is K anyway)
    const w = new Float32Array(K).fill(v[0]!);
    return { node, index, tensor: t, values: divideLastAxis(w, s), dims: [K] };
  }
  return undefined;
}

type Plan = { target: FoldTarget; node: NodeProto; edits: Edit[] } | { why: string };

/** How the producer of the MatMuls' input could absorb 1/s (no graph change yet). */
async function planFold(model: OnnxModel, ix: GraphIndex, input: string, s: Float32Array): Promise<Plan> {
  const K = s.length;
  const p = ix.producer.get(input);
  if (!p) return { why: `input '${input}' is a graph input or initializer, not produced by a node` };
  const isFloat = (t: TensorProto | undefined): t is TensorProto =>
    t !== undefined && [1, 10, 11, 16].includes(t.data_type);

  if (p.op_type === 'LayerNormalization' && p.domain === '') {
    if (p.output[0] !== input) return { why: 'the input is not the LayerNormalization output Y' };
    const gamma = initAt(ix, p, 1);
    if (!isFloat(gamma) || !isChannelVector(dimsOf(gamma), K))
      return { why: `LayerNormalization '${label(p)}' has no constant [${K}] scale` };
    const edits: Edit[] = [
      { node: p, index: 1, tensor: gamma, values: divideLastAxis(await loadTensorFloat32(model, gamma), s) },
    ];
    if (p.input.length > 2 && p.input[2]) {
      const beta = initAt(ix, p, 2);
      if (!isFloat(beta) || !isChannelVector(dimsOf(beta), K))
        return { why: `LayerNormalization '${label(p)}' has a non-constant bias` };
      edits.push({
        node: p,
        index: 2,
        tensor: beta,
        values: divideLastAxis(await loadTensorFloat32(model, beta), s),
      });
    }
    return { target: 'LayerNormalization', node: p, edits };
  }

  // Mul(u, gamma) with a constant per-channel gamma: (u * gamma) / s = u * (gamma / s)
  const mulEdit = async (m: NodeProto): Promise<Edit | undefined> => {
    for (const i of [1, 0]) {
      const g = initAt(ix, m, i);
      if (isFloat(g) && isChannelVector(dimsOf(g), K))
        return { node: m, index: i, tensor: g, values: divideLastAxis(await loadTensorFloat32(model, g), s) };
    }
    return undefined;
  };
  // MatMul(x, W0) with a constant 2-D W0 [*, K]: divide its output columns
  const matmulEdit = async (m: NodeProto): Promise<Edit | undefined> => {
    const w = initAt(ix, m, 1);
    if (!isFloat(w)) return undefined;
    const d = dimsOf(w);
    if (d.length !== 2 || d[1] !== K) return undefined;
    return { node: m, index: 1, tensor: w, values: divideLastAxis(await loadTensorFloat32(model, w), s) };
  };
  const onlyFeeds = (name: string, node: NodeProto): boolean =>
    !ix.escapes(name) && ix.usesOf(name).every((u) => u.node === node);

  if (p.op_type === 'Mul' && p.domain === '') {
    const e = await mulEdit(p);
    return e
      ? { target: 'Mul', node: p, edits: [e] }
      : { why: `Mul '${label(p)}' has no constant [${K}] factor` };
  }

  if (p.op_type === 'Add' && p.domain === '') {
    for (const bi of [1, 0]) {
      const b = initAt(ix, p, bi);
      if (!isFloat(b)) continue;
      const bias = await biasEdit(model, p, bi, b, s);
      const inner = p.input[1 - bi]!;
      const q = ix.producer.get(inner);
      if (!bias || !q || q.domain !== '' || !onlyFeeds(inner, p)) continue;
      if (q.op_type === 'Mul') {
        const e = await mulEdit(q);
        if (e) return { target: 'Mul+Add', node: q, edits: [e, bias] };
      } else if (q.op_type === 'MatMul') {
        const e = await matmulEdit(q);
        if (e) return { target: 'MatMul+Add', node: q, edits: [e, bias] };
      }
    }
    return { why: `Add '${label(p)}' is not Mul(gamma)+beta or MatMul+bias with constant operands` };
  }

  if (p.op_type === 'MatMul' && p.domain === '') {
    const e = await matmulEdit(p);
    return e
      ? { target: 'MatMul', node: p, edits: [e] }
      : { why: `MatMul '${label(p)}' has no constant 2-D weight with ${K} columns` };
  }

  if (p.op_type === 'Gemm' && p.domain === '') {
    const w = initAt(ix, p, 1);
    if (!isFloat(w)) return { why: `Gemm '${label(p)}' has no constant B` };
    const d = dimsOf(w);
    const transB = intAttr(p, 'transB', 0) !== 0;
    if (d.length !== 2 || d[transB ? 0 : 1] !== K)
      return { why: `Gemm '${label(p)}' has no ${K} output columns` };
    const v = await loadTensorFloat32(model, w);
    let values: Float32Array;
    if (transB) {
      // B is [N, K0]: output column j is row j
      const cols = d[1]!;
      values = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) values[i] = v[i]! / s[Math.floor(i / cols)]!;
    } else values = divideLastAxis(v, s);
    const edits: Edit[] = [{ node: p, index: 1, tensor: w, values }];
    if (p.input.length > 2 && p.input[2]) {
      const c = initAt(ix, p, 2);
      const bias = isFloat(c) ? await biasEdit(model, p, 2, c, s) : undefined;
      if (!bias) return { why: `Gemm '${label(p)}' has a bias C that cannot be divided per column` };
      edits.push(bias);
    }
    return { target: 'Gemm', node: p, edits };
  }
  return { why: `input is produced by ${p.op_type} '${label(p)}', which cannot absorb a per-channel scale` };
}

/**
 * Makes the MatMul(s) whose B operand is `weightName` use diag(s) W (W'[k, :] = s[k] W[k, :]) and divides
 * their input by s: folded into the producing op when the graph allows, else by one inserted Mul by 1/s.
 * Several weight names may be given when their MatMuls share one input (e.g. separate q, k, v
 * projections); they all receive the same s. External weights that are edited move into the model.
 *
 * @example
 *   const { model: folded, mode } = await foldInputScales(model, 'blocks.0.attn_qkv', awqResult.inputScale);
 * @throws MixqError when a weight is not a constant 2-D [K, N] MatMul B operand read by exactly one MatMul,
 *   when the MatMuls do not share an input, or when s has the wrong length or zero / non-finite values.
 */
export async function foldInputScales(
  model: OnnxModel,
  weightName: string | readonly string[],
  s: Float32Array,
): Promise<FoldScalesResult> {
  const names = typeof weightName === 'string' ? [weightName] : [...weightName];
  if (names.length === 0) fail('no weight named', 'weightName', 'at least one MatMul weight');
  for (let k = 0; k < s.length; k++)
    if (!Number.isFinite(s[k]!) || s[k] === 0) fail(`s[${k}] is ${s[k]}`, 's', 'finite non-zero scales');
  const out = cloneModel(model);
  const graph = out.proto.graph;
  if (!graph) return fail('model has no graph', 'graph');
  const ix = new GraphIndex(graph);

  // the MatMuls to scale, all reading the same input A
  const matmuls: NodeProto[] = [];
  const weights: TensorProto[] = [];
  for (const name of names) {
    const t = ix.inits.get(name);
    if (!t) fail(`'${name}' is not an initializer`, 'weightName', 'the name of a MatMul B initializer');
    const d = dimsOf(t);
    if (d.length !== 2 || d[0] !== s.length)
      fail(
        `'${name}' has dims [${d.join(', ')}]`,
        'weightName',
        `a 2-D [${s.length}, N] weight (rows = input channels)`,
      );
    const readers = ix.usesOf(name);
    const mm = readers[0]?.node;
    if (
      readers.length !== 1 ||
      !mm ||
      mm.op_type !== 'MatMul' ||
      mm.domain !== '' ||
      readers[0]!.index !== 1 ||
      ix.escapes(name)
    )
      fail(
        `'${name}' is read by ${readers.length} node input(s)`,
        'weightName',
        'exactly one MatMul, as its B input',
      );
    matmuls.push(mm);
    weights.push(t);
  }
  const input = matmuls[0]!.input[0]!;
  if (matmuls.some((m) => m.input[0] !== input))
    fail('the MatMuls do not share one input', 'weightName', 'weights whose MatMuls read the same tensor');

  // W' = diag(s) W for every weight
  for (const t of weights) {
    const v = await loadTensorFloat32(out, t);
    const N = v.length / s.length;
    for (let i = 0; i < v.length; i++) v[i] = v[i]! * s[Math.floor(i / N)]!;
    setTensorFloat32(t, v);
  }

  // folding changes the producer's output, so every value reader must be one of our MatMuls
  const strangers = ix
    .usesOf(input)
    .filter((u) => !matmuls.includes(u.node) && !(SHAPE_ONLY.has(u.node.op_type) && u.node.domain === ''));
  let plan: Plan;
  if (ix.escapes(input)) plan = { why: `'${input}' is also a graph output or read by a subgraph` };
  else if (strangers.length > 0)
    plan = {
      why: `'${input}' also feeds ${strangers.map((u) => `${u.node.op_type} '${label(u.node)}'`).join(', ')}`,
    };
  else plan = await planFold(out, ix, input, s);

  if ('target' in plan) {
    for (const e of plan.edits) applyEdit(ix, e);
    return {
      model: out,
      mode: 'folded',
      target: plan.target,
      node: label(plan.node),
      reason: `1/s folded into ${plan.target} '${label(plan.node)}'`,
      addedNodes: 0,
    };
  }

  // explicit: x * (1/s) in the weight's float type, inserted right before the first MatMul (keeps the
  // node list topologically sorted)
  const inv = new Float32Array(s.length);
  for (let k = 0; k < s.length; k++) inv[k] = 1 / s[k]!;
  const invName = ix.unique(`${names[0]}.inv_input_scale`);
  const t = onnxMessageType('TensorProto').create({
    name: invName,
    data_type: weights[0]!.data_type,
  }) as unknown as TensorProto;
  setTensorFloat32(t, inv, [s.length]);
  graph.initializer.push(t);
  const scaled = ix.unique(`${input}.scaled`);
  const mulName = ix.unique(`${names[0]}.input_scale`);
  const mul = makeNode('Mul', [input, invName], [scaled], { name: mulName });
  const at = Math.min(...matmuls.map((m) => graph.node.indexOf(m)));
  graph.node.splice(at, 0, mul);
  for (const m of matmuls) m.input[0] = scaled;
  return {
    model: out,
    mode: 'explicit',
    target: 'explicit-Mul',
    node: mulName,
    reason: plan.why,
    addedNodes: 1,
  };
}

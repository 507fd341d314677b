/**
 * Static W8A8 in QDQ form (browser-safe, in memory): int8 weights AND calibrated int8 activations for the
 * MatMuls of a model, written so that onnxruntime's QDQ transformer runs them on integer kernels.
 *
 * What is emitted, per MatMul whose B operand is a constant 2-D weight [K, N]:
 *
 *   x ─ QuantizeLinear(s_x, z_x) ─ DequantizeLinear(s_x, z_x) ─┐
 *                                                               MatMul ─ (float output, unchanged graph)
 *   Wq int8 [K, N] ─ DequantizeLinear(s_w [N], axis 1) ────────┘
 *
 * onnxruntime (core/optimizer/qdq_transformer/selectors_actions, MatMulNodeGroupSelector + MatMulSelector
 * with matmulintegertofloat_allowed) fuses DQ(x), DQ(W) -> MatMul without an output Q into
 * com.microsoft MatMulIntegerToFloat (integer GEMM, float output; b_scale per column is supported), and
 * into QLinearMatMul when a Q follows. The selector refuses an int8 ACTIVATION unless int8 is allowed for
 * the platform: `QDQIsInt8Allowed()` is true only on ARM builds (or with the session option
 * `session.qdqisint8allowed=1`). Hence the default activation type is uint8 asymmetric (U8S8, onnxruntime's
 * recommended x86 format); 'int8' (symmetric, S8S8) fuses on ARM only and otherwise runs as float
 * Q -> DQ -> MatMul (correct, but slower than fp32).
 *
 * Activation quantization is per tensor, from a calibrated range [min, max] (see w8a8.node.ts for minmax
 * or percentile clipping):
 *   uint8 (asymmetric): the range is widened to contain 0; scale = (max - min) / 255,
 *                       zero_point = round(-min / scale) clamped to 0..255;
 *   int8  (symmetric):  scale = max(|min|, |max|) / 127, zero_point = 0.
 * Weights: symmetric int8 per output channel (DequantizeLinear axis 1 over [K, N]): scale_n = max_k |W[k, n]|
 * / 63, codes round-half-even in ±63 (7 bits, onnxruntime's `reduce_range`) by default; `reduceRange: false`
 * uses ±127. Why 7 bits by default: x86 CPUs without VNNI run U8S8 GEMMs with VPMADDUBSW, whose int16 sums
 * of two u8 x s8 products saturate when 2 * 255 * |w| > 32767. Measured on this project's AVX512BW (no
 * VNNI) machine (test/export/w8a8.test.ts): with ±127 weights onnxruntime's output differed from the exact
 * integer result by 17% of max |y| on a small MLP (9x the whole quantization error); with ±63 it matched to
 * 1e-7. Full-range weights are safe on VNNI (AVX512-VNNI / AVX-VNNI) and ARM CPUs. A weight that is already
 * the output of an int8 per-channel (or per-tensor) DequantizeLinear is used as it is (its range unchecked).
 *
 * Left in float: everything else (LayerNorm, Softmax, residual Adds, biases, the attention MatMuls whose
 * both operands are activations, Gather embeddings) and, by default, the logits projection: a MatMul whose
 * output (directly, or after one Add of a constant bias) is a graph output.
 *
 * SmoothQuant (smoothQuantOnnx) runs before this on the float model: s_j = max|X_j|^a / max_n |W[j, n]|^(1-a)
 * (quant/algorithms/smoothquant.ts) is folded with foldInputScales, only where the fold is exact and adds
 * no node: into a LayerNormalization's gamma and beta, or a decomposed norm ending in Mul(gamma) [+ Add(beta)].
 * MatMuls fed by anything else (the attention output, the GELU output) are left unsmoothed.
 */
import { MixqError } from '../../core/errors.ts';
import { nearestEvenInt } from '../../formats/index.ts';
import type { GraphProto, NodeProto, TensorProto } from '../../io/onnx/proto-types.ts';
import { cloneOnnxModel } from '../../io/onnx/clone.ts';
import { type OnnxModel, tensorDims } from '../../io/onnx/read.ts';
import { loadTensorFloat32 } from '../../io/onnx/tensor-data.ts';
import { smoothQuantScales } from '../../quant/algorithms/smoothquant.ts';
import { DT, freshNamer, intAttr, makeNode, makeTensor, opsetVersion } from './build.ts';
import { foldInputScales } from './fold-scales.ts';
import { quantizeOnnxWeights, type WeightAssignments } from './quantize.ts';

export type ActivationType = 'uint8' | 'int8';

/** Calibrated range of one activation tensor (after clipping). */
export interface ActivationRange {
  readonly min: number;
  readonly max: number;
}

export interface ActivationQParams {
  readonly scale: number;
  readonly zeroPoint: number;
  readonly type: ActivationType;
}

export interface ActivationQdqOptions {
  /** 'uint8' asymmetric (default; fuses on x86 and ARM) or 'int8' symmetric (fuses on ARM only). */
  readonly activationType?: ActivationType;
  /** Weight codes in ±63 instead of ±127: no U8S8 saturation on x86 without VNNI. Default true. */
  readonly reduceRange?: boolean;
  /** Weight names whose MatMul stays float. */
  readonly exclude?: readonly string[];
  /** Also quantize the logits projection (see the file comment). Default false. */
  readonly includeLogits?: boolean;
}

/** A MatMul that W8A8 can rewrite. */
export interface W8A8Target {
  /** MatMul node name (or `MatMul#<index>` when unnamed). */
  readonly node: string;
  readonly weight: string;
  /** The float activation tensor the weight multiplies (MatMul input 0). */
  readonly activation: string;
  readonly K: number;
  readonly N: number;
  /** 'float': a float initializer; 'int8': already the output of an int8 DequantizeLinear. */
  readonly weightKind: 'float' | 'int8';
}

export interface W8A8Layer extends W8A8Target {
  readonly activationQ: ActivationQParams;
  /** Per-output-channel weight scales (length N, or 1 for a per-tensor DequantizeLinear). */
  readonly weightScale: Float32Array;
}

export interface W8A8Onnx {
  readonly model: OnnxModel;
  readonly layers: readonly W8A8Layer[];
  /** MatMuls with a constant weight that were left float, and why. */
  readonly skipped: readonly { readonly node: string; readonly reason: string }[];
  readonly notes: readonly string[];
}

const SRC = 'insertActivationQdq';

function fail(message: string, field: string, expected?: string): never {
  throw new MixqError(message, { source: SRC, field, expected });
}

function label(n: NodeProto, i: number): string {
  return n.name || `${n.op_type}#${i}`;
}

/**
 * Scale and zero point of a per-tensor activation quantizer from a calibrated range (file comment).
 * The scale is a float32 value (what the model stores).
 */
export function activationQParams(range: ActivationRange, type: ActivationType = 'uint8'): ActivationQParams {
  const { min, max } = range;
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max)
    throw new MixqError(`range [${min}, ${max}]`, {
      source: SRC,
      field: 'range',
      expected: 'finite min <= max',
    });
  if (type === 'int8') {
    const a = Math.max(Math.abs(min), Math.abs(max));
    const scale = Math.fround(a > 0 ? a / 127 : 1);
    return { scale, zeroPoint: 0, type };
  }
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = Math.fround(hi > lo ? (hi - lo) / 255 : 1);
  const zeroPoint = Math.min(255, Math.max(0, nearestEvenInt(-lo / scale)));
  return { scale, zeroPoint, type };
}

/** QuantizeLinear then DequantizeLinear of one value (the ONNX definitions: round half to even, saturate). */
export function fakeQuantActivation(x: number, q: ActivationQParams): number {
  const lo = q.type === 'uint8' ? 0 : -128;
  const hi = q.type === 'uint8' ? 255 : 127;
  const c = Math.min(hi, Math.max(lo, nearestEvenInt(Math.fround(x / q.scale)) + q.zeroPoint));
  return Math.fround((c - q.zeroPoint) * q.scale);
}

/** Symmetric per-output-channel int8 codes of W [K, N]: q[n * K + k], scale[n]. */
export function quantizeWeightChannels(
  W: Float32Array,
  K: number,
  N: number,
  reduceRange = true,
): { q: Int32Array; scale: Float32Array } {
  const qmax = reduceRange ? 63 : 127;
  const q = new Int32Array(K * N);
  const scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let a = 0;
    for (let k = 0; k < K; k++) a = Math.max(a, Math.abs(W[k * N + n]!));
    const s = Math.fround(a > 0 ? a / qmax : 1);
    scale[n] = s;
    for (let k = 0; k < K; k++)
      q[n * K + k] = Math.min(qmax, Math.max(-qmax, nearestEvenInt(Math.fround(W[k * N + n]! / s))));
  }
  return { q, scale };
}

interface GraphInfo {
  producer: Map<string, NodeProto>;
  uses: Map<string, { node: NodeProto; index: number }[]>;
  inits: Map<string, TensorProto>;
  outputs: Set<string>;
  inputs: Set<string>;
}

function graphInfo(graph: GraphProto): GraphInfo {
  const producer = new Map<string, NodeProto>();
  const uses = new Map<string, { node: NodeProto; index: number }[]>();
  for (const node of graph.node) {
    for (const o of node.output) producer.set(o, node);
    node.input.forEach((name, index) => {
      const l = uses.get(name) ?? [];
      l.push({ node, index });
      uses.set(name, l);
    });
  }
  return {
    producer,
    uses,
    inits: new Map(graph.initializer.map((t) => [t.name, t])),
    outputs: new Set(graph.output.map((v) => v.name)),
    inputs: new Set(graph.input.map((v) => v.name)),
  };
}

const DIM_CAPS = { maxRank: 64, maxElements: Number.MAX_SAFE_INTEGER } as const;
const dimsOf = (t: TensorProto): number[] => tensorDims(t.dims, SRC, `${t.name}.dims`, DIM_CAPS);

/** True when the MatMul output reaches a graph output directly or through one Add of a constant. */
function isLogits(ix: GraphInfo, node: NodeProto): boolean {
  const y = node.output[0]!;
  if (ix.outputs.has(y)) return true;
  const u = ix.uses.get(y) ?? [];
  return (
    u.length === 1 &&
    u[0]!.node.op_type === 'Add' &&
    u[0]!.node.input.some((x) => ix.inits.has(x)) &&
    ix.outputs.has(u[0]!.node.output[0]!)
  );
}

/**
 * The MatMuls W8A8 would rewrite, and those left float with the reason. A target has a float activation
 * as input 0 and, as input 1, a constant float32 2-D initializer or the output of an int8 DequantizeLinear
 * of a constant (per channel along N, or per tensor).
 */
export function findW8A8Targets(
  model: OnnxModel,
  opts: Pick<ActivationQdqOptions, 'exclude' | 'includeLogits'> = {},
): { targets: W8A8Target[]; skipped: { node: string; reason: string }[] } {
  const graph = model.proto.graph;
  if (!graph) fail('the model has no graph', 'graph');
  const ix = graphInfo(graph);
  const exclude = new Set(opts.exclude ?? []);
  const targets: W8A8Target[] = [];
  const skipped: { node: string; reason: string }[] = [];
  graph.node.forEach((node, i) => {
    if (node.op_type !== 'MatMul' || node.domain !== '') return;
    const name = label(node, i);
    const a = node.input[0] ?? '';
    const b = node.input[1] ?? '';
    let weightKind: 'float' | 'int8';
    let dims: number[];
    const init = ix.inputs.has(b) ? undefined : ix.inits.get(b);
    const dq = ix.producer.get(b);
    if (init) {
      if (init.data_type !== DT.FLOAT)
        return void skipped.push({ node: name, reason: 'weight is not float32' });
      weightKind = 'float';
      dims = dimsOf(init);
    } else if (dq?.op_type === 'DequantizeLinear' && dq.domain === '') {
      const q = ix.inits.get(dq.input[0] ?? '');
      const sc = ix.inits.get(dq.input[1] ?? '');
      if (!q || !sc) return; // not a constant weight: an activation x activation MatMul
      dims = dimsOf(q);
      const sd = dimsOf(sc);
      const perTensor = sd.length === 0 || (sd.length === 1 && sd[0] === 1);
      const perChannel =
        sd.length === 1 && dims.length === 2 && sd[0] === dims[1] && intAttr(dq, 'axis', 1) === 1;
      if (q.data_type !== DT.INT8 || !(perTensor || perChannel) || intAttr(dq, 'block_size', 0) !== 0)
        return void skipped.push({
          node: name,
          reason: 'weight DequantizeLinear is not int8 per channel (axis 1) or per tensor',
        });
      weightKind = 'int8';
    } else return; // activation x activation (attention): stays float
    if (dims.length !== 2) return void skipped.push({ node: name, reason: `weight has rank ${dims.length}` });
    if (ix.inits.has(a) && !ix.inputs.has(a))
      return void skipped.push({ node: name, reason: 'input 0 is a constant' });
    const weight = weightKind === 'float' ? b : (dq!.input[0] ?? b);
    if (exclude.has(b) || exclude.has(weight)) return void skipped.push({ node: name, reason: 'excluded' });
    if (!opts.includeLogits && isLogits(ix, node))
      return void skipped.push({ node: name, reason: 'logits projection (includeLogits: false)' });
    targets.push({ node: name, weight: b, activation: a, K: dims[0]!, N: dims[1]!, weightKind });
  });
  return { targets, skipped };
}

/**
 * SmoothQuant on the float model: for every group of target MatMuls sharing one activation, s from the
 * activation's per-channel max |x| (`channelAbsMax`, keyed by activation name, length K) and the weights,
 * folded into the producing LayerNormalization / Mul(+Add) (exact, no node added). Groups whose producer
 * cannot absorb s are left as they are. Weights must still be float (smooth before quantizing).
 * @throws MixqError for alpha outside [0, 1] or statistics of the wrong length.
 */
export async function smoothQuantOnnx(
  model: OnnxModel,
  channelAbsMax: ReadonlyMap<string, Float32Array>,
  opts: { alpha?: number } & Pick<ActivationQdqOptions, 'exclude' | 'includeLogits'> = {},
): Promise<{
  model: OnnxModel;
  folded: { activation: string; weights: string[]; target: string; node: string; scales: Float32Array }[];
  skipped: { activation: string; reason: string }[];
}> {
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1))
    throw new MixqError(`alpha ${alpha}`, { source: 'smoothQuantOnnx', field: 'alpha', expected: '0..1' });
  const { targets } = findW8A8Targets(model, opts);
  const groups = new Map<string, W8A8Target[]>();
  for (const t of targets) {
    const g = groups.get(t.activation) ?? [];
    g.push(t);
    groups.set(t.activation, g);
  }
  let cur = model;
  const folded: {
    activation: string;
    weights: string[];
    target: string;
    node: string;
    scales: Float32Array;
  }[] = [];
  const skipped: { activation: string; reason: string }[] = [];
  for (const [act, group] of groups) {
    if (group.some((t) => t.weightKind !== 'float')) {
      skipped.push({ activation: act, reason: 'weights are already quantized' });
      continue;
    }
    const stats = channelAbsMax.get(act);
    const K = group[0]!.K;
    if (!stats) {
      skipped.push({ activation: act, reason: 'no calibration statistics' });
      continue;
    }
    if (stats.length !== K)
      throw new MixqError(`statistics of '${act}' have ${stats.length} channels`, {
        source: 'smoothQuantOnnx',
        field: 'channelAbsMax',
        expected: `${K}`,
      });
    // all weights of the group stacked as rows of [sum N, K] (smoothQuantScales' [rows, cols] layout)
    const rowsTotal = group.reduce((p, t) => p + t.N, 0);
    const wt = new Float32Array(rowsTotal * K);
    let r0 = 0;
    const inits = new Map(cur.proto.graph!.initializer.map((t) => [t.name, t]));
    for (const t of group) {
      const w = await loadTensorFloat32(cur, inits.get(t.weight)!);
      for (let k = 0; k < K; k++) for (let n = 0; n < t.N; n++) wt[(r0 + n) * K + k] = w[k * t.N + n]!;
      r0 += t.N;
    }
    const s = smoothQuantScales(stats, wt, rowsTotal, K, { alpha });
    const names = group.map((t) => t.weight);
    const res = await foldInputScales(cur, names, s);
    if (res.mode === 'folded' && (res.target === 'LayerNormalization' || res.target === 'Mul+Add')) {
      cur = res.model;
      folded.push({ activation: act, weights: names, target: res.target, node: res.node, scales: s });
    } else
      skipped.push({
        activation: act,
        reason: res.mode === 'folded' ? `producer is ${res.target} (only norms are smoothed)` : res.reason,
      });
  }
  return { model: cur === model ? cloneOnnxModel(model) : cur, folded, skipped };
}

/**
 * Builds the W8A8 QDQ model (a new OnnxModel; the input is unchanged). `ranges` holds the calibrated range
 * of every target's activation (keyed by tensor name); float weights are quantized to int8 per channel.
 * @example
 *   const { targets } = findW8A8Targets(model);
 *   const ranges = await calibrateActivationRanges(model, feeds);   // mixq/node
 *   const { model: q, layers } = await insertActivationQdq(model, ranges);
 * @throws MixqError when a target's activation has no range, or the model is below opset 13.
 */
export async function insertActivationQdq(
  model: OnnxModel,
  ranges: ReadonlyMap<string, ActivationRange>,
  opts: ActivationQdqOptions = {},
): Promise<W8A8Onnx> {
  const type = opts.activationType ?? 'uint8';
  if (type !== 'uint8' && type !== 'int8')
    fail(`activation type ${String(type)}`, 'activationType', "'uint8' or 'int8'");
  const opset = opsetVersion(model.proto, '') ?? 1;
  if (opset < 13)
    fail(`the model is at opset ${opset}`, 'opset_import', 'opset 13+ (per-channel DequantizeLinear)');
  const { targets, skipped } = findW8A8Targets(model, opts);
  for (const t of targets)
    if (!ranges.has(t.activation))
      fail(
        `no calibrated range for '${t.activation}' (input of ${t.node})`,
        'ranges',
        'one range per target activation',
      );

  // 1. float weights -> int8 per-channel DequantizeLinear (quantizeOnnxWeights with our codes)
  const assignments: Record<string, WeightAssignments[string]> = {};
  const wScales = new Map<string, Float32Array>();
  {
    const inits = new Map(model.proto.graph!.initializer.map((t) => [t.name, t]));
    for (const t of targets) {
      if (t.weightKind !== 'float' || assignments[t.weight]) continue;
      const w = await loadTensorFloat32(model, inits.get(t.weight)!);
      const { q, scale } = quantizeWeightChannels(w, t.K, t.N, opts.reduceRange ?? true);
      wScales.set(t.weight, scale);
      assignments[t.weight] = {
        scheme: 'dequantizelinear',
        bits: 8,
        granularity: 'channel',
        symmetric: true,
        quantized: { q, scale, zero: new Int32Array(t.N) },
      };
    }
  }
  const notes: string[] = [];
  let out: OnnxModel;
  if (Object.keys(assignments).length > 0) {
    const r = await quantizeOnnxWeights(model, assignments);
    out = r.model;
    notes.push(...r.notes);
  } else out = cloneOnnxModel(model);
  const graph = out.proto.graph!;
  const ix = graphInfo(graph);
  for (const t of targets)
    if (t.weightKind === 'int8') {
      const dq = ix.producer.get(t.weight)!;
      wScales.set(t.weight, await loadTensorFloat32(out, ix.inits.get(dq.input[1]!)!));
    }

  // 2. activations: one QuantizeLinear per tensor, one DequantizeLinear per consuming MatMul
  const fresh = freshNamer(graph);
  const qType = type === 'uint8' ? DT.UINT8 : DT.INT8;
  const before = new Map<NodeProto, NodeProto[]>();
  const qOut = new Map<string, { q: string; scale: string; zp: string; params: ActivationQParams }>();
  const nodesByName = new Map(graph.node.map((n, i) => [label(n, i), n]));
  const layers: W8A8Layer[] = [];
  for (const t of targets) {
    const mm = nodesByName.get(t.node)!;
    let aq = qOut.get(t.activation);
    const insert = before.get(mm) ?? [];
    if (!aq) {
      const params = activationQParams(ranges.get(t.activation)!, type);
      const base = t.activation.replace(/^\//, '');
      const scale = fresh(`${base}_scale`);
      const zp = fresh(`${base}_zero_point`);
      graph.initializer.push(
        makeTensor(scale, DT.FLOAT, [], new Uint8Array(new Float32Array([params.scale]).buffer)),
      );
      graph.initializer.push(
        makeTensor(
          zp,
          qType,
          [],
          new Uint8Array(type === 'uint8' ? [params.zeroPoint] : new Int8Array([params.zeroPoint]).buffer),
        ),
      );
      const q = fresh(`${base}_quantized`);
      insert.push(
        makeNode('QuantizeLinear', [t.activation, scale, zp], [q], { name: fresh(`${base}_QuantizeLinear`) }),
      );
      aq = { q, scale, zp, params };
      qOut.set(t.activation, aq);
    }
    const dqOut = fresh(`${t.activation.replace(/^\//, '')}_dequantized`);
    insert.push(
      makeNode('DequantizeLinear', [aq.q, aq.scale, aq.zp], [dqOut], {
        name: fresh(`${t.node.replace(/^\//, '')}_input_DequantizeLinear`),
      }),
    );
    before.set(mm, insert);
    mm.input[0] = dqOut;
    layers.push({ ...t, activationQ: aq.params, weightScale: wScales.get(t.weight)! });
  }
  // the QuantizeLinear of a shared activation goes before its first consumer (the node list stays sorted)
  graph.node = graph.node.flatMap((n) => [...(before.get(n) ?? []), n]);
  if (type === 'int8')
    notes.push(
      'int8 activations: onnxruntime fuses S8S8 QDQ MatMuls only on ARM (or with session.qdqisint8allowed=1)',
    );
  return { model: out, layers, skipped, notes };
}

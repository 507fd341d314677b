/**
 * Raising a model's default (ai.onnx) opset to at most 21, so standard DequantizeLinear-21 (int4/uint4,
 * block_size) can be used. Every operator whose signature or meaning changed between the model's opset
 * (9..20) and the target is converted exactly, or the model is refused with a MixqError naming the node.
 *
 * The table below was built from onnx/docs/Changelog.md and the adapters registered in
 * onnx/version_converter/convert.h (every version bump of every ai.onnx operator from 10 to 21; a bump the
 * converter registers as CompatibleAdapter only adds types, optional attributes with the old behaviour as
 * default, or negative axes, and needs nothing here). Ops added after opset 9 cannot occur in an older
 * model, so the table covers every standard op a 9..20 model can hold. Opset 9 -> 21:
 *
 * | opset | operator                     | change                                  | conversion here                    |
 * | ----- | ---------------------------- | --------------------------------------- | ---------------------------------- |
 * | 10    | Slice                        | starts/ends/axes attributes -> inputs   | int64 initializers                 |
 * | 10    | TopK                         | k attribute -> input [1]                | int64 initializer                  |
 * | 10    | Upsample                     | deprecated (Resize)                     | refused                            |
 * | 10    | Dropout                      | mask output T -> bool                   | refused if the mask is used        |
 * | 11    | Clip                         | min/max attributes -> inputs            | scalar inputs, old defaults +-FLT_MAX |
 * | 11    | Pad                          | pads/value attributes -> inputs         | int64 pads, value in the data type |
 * | 11    | Resize                       | roi input, coordinate_transformation_mode (default half_pixel; 10 was asymmetric-like) | Resize-10 refused |
 * | 11    | Scatter                      | deprecated, = ScatterElements           | renamed                            |
 * | 12    | Dropout                      | ratio attribute -> input; inference mask defined as all true (onnxruntime gave all false before) | float scalar input; refused if the mask is used |
 * | 13    | Softmax, LogSoftmax, Hardmax | 2-D coercion at axis (default 1) -> one axis (default -1) | axis -1 when the axis is the last (rank inferred), else Reshape(op(Flatten(x, axis)), Shape(x)) |
 * | 13    | Squeeze, Unsqueeze, ReduceSum | axes attribute -> input                | int64 initializer                  |
 * | 13    | Split                        | split attribute -> input                | int64 initializer                  |
 * | 13    | Resize                       | tf_half_pixel_for_nn mode removed       | refused with that mode             |
 * | 14    | BatchNormalization           | training outputs changed                | refused with more than one output  |
 * | 16    | RoiAlign                     | coordinate_transformation_mode added, default half_pixel (old: output_half_pixel) | attribute set to output_half_pixel |
 * | 18    | ReduceMax/Min/Mean/Prod/L1/L2/LogSum/LogSumExp/SumSquare | axes attribute -> input | int64 initializer |
 * | 18    | Split                        | no split input needs num_outputs        | num_outputs = number of outputs    |
 * | 20    | GridSample                   | mode bilinear/bicubic renamed linear/cubic | renamed                         |
 * | 20    | DFT                          | axis attribute -> input                 | refused                            |
 * | 21    | GroupNormalization           | scale/bias per group -> per channel     | refused                            |
 *
 * Compatible bumps (no conversion): 10 AveragePool MaxPool Dropout; 11 ArgMax ArgMin AveragePool Concat
 * Constant Compress Conv ConvTranspose DepthToSpace Equal Flatten Gather Gemm Hardmax If LogSoftmax Loop
 * LpPool MaxPool MaxUnpool NonMaxSuppression OneHot Reduce* Scan Softmax Slice Split Squeeze TopK Unsqueeze;
 * 12 ArgMax ArgMin BatchNormalization Constant Clip GatherND Min Max MaxPool Pow ReduceMax ReduceMin; 13 type
 * extensions of ~70 ops; 14 Add CumSum Div Identity Mul Relu Reshape (allowzero, default 0 = old) Sub,
 * GRU/LSTM/RNN (layout, default 0 = old); 15 BatchNormalization Pow Shape; 16 ScatterElements ScatterND
 * Identity Loop If Where Scan LessOrEqual GreaterOrEqual LeakyRelu PRelu; 18 Pad Resize ScatterND
 * ScatterElements LpPool (ceil_mode, default 0 = old) Optional*; 19 Equal AveragePool Cast CastLike Constant
 * DequantizeLinear Identity If Loop Pad QuantizeLinear Reshape Resize Scan Shape Size; 20 ConstantOfShape
 * IsInf IsNaN ReduceMax ReduceMin; 21 Cast CastLike Constant ConstantOfShape DequantizeLinear Flatten
 * Identity If Loop Pad QLinearMatMul QuantizeLinear Reshape Scan Shape Size Squeeze Transpose Unsqueeze.
 *
 * Ops that are not standard ai.onnx operators at opset 21 (the experimental ops removed at 10: ATen,
 * Affine, Crop, ImageScaler, ...) are refused, and so are models below opset 9 and models with local
 * functions. Subgraphs (If / Loop / Scan bodies) are converted like the main graph.
 */
import { MixqError } from '../../core/errors.ts';
import type {
  AttributeProto,
  GraphProto,
  Int64,
  ModelProto,
  NodeProto,
  TensorProto,
} from '../../io/onnx/proto-types.ts';
import { int64ToNumber } from '../../io/onnx/read.ts';
import { onnxMessageType } from '../../io/onnx/schema.ts';
import {
  DT,
  freshNamer,
  makeNode,
  makeTensor,
  opsetVersion,
  requireIrVersion,
  requireOpset,
} from './build.ts';

/** Lowest opset this module converts from, and the highest it converts to. */
export const MIN_UPGRADE_OPSET = 9;
export const MAX_UPGRADE_OPSET = 21;

const REDUCE_18 = new Set([
  'ReduceMax',
  'ReduceMin',
  'ReduceMean',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
]);

/** Every ai.onnx operator that exists at opset 21 (onnx/docs/Operators.md), plus the two deprecated ones. */
const STANDARD_21 = new Set(
  (
    'Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization ' +
    'Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast CastLike Ceil Celu ' +
    'CenterCropPad Clip Col2Im Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ConvInteger ' +
    'ConvTranspose Cos Cosh CumSum DFT DeformConv DepthToSpace DequantizeLinear Det Div Dropout ' +
    'DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements ' +
    'GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample ' +
    'GroupNormalization HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageDecoder ' +
    'InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual Log ' +
    'LogSoftmax Loop LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean ' +
    'MeanVarianceNormalization MelWeightMatrix Min Mish Mod Mul Multinomial Neg NegativeLogLikelihoodLoss ' +
    'NonMaxSuppression NonZero Not OneHot Optional OptionalGetElement OptionalHasElement Or PRelu Pad Pow ' +
    'QLinearConv QLinearMatMul QuantizeLinear RNN RandomNormal RandomNormalLike RandomUniform ' +
    'RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ' +
    'ReduceMin ReduceProd ReduceSum ReduceSumSquare RegexFullMatch Relu Reshape Resize ReverseSequence ' +
    'RoiAlign Round STFT Scan Scatter ScatterElements ScatterND Selu SequenceAt SequenceConstruct ' +
    'SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin ' +
    'Sinh Size Slice Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split SplitToSequence ' +
    'Sqrt Squeeze StringConcat StringNormalizer StringSplit Sub Sum Tan Tanh TfIdfVectorizer ' +
    'ThresholdedRelu Tile TopK Transpose Trilu Unique Unsqueeze Upsample Where Xor'
  ).split(' '),
);

const SOFTMAX_LIKE = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);

// ------------------------------------------------------------------------------------ rank / type facts

/** What is known about a value: its rank and element type (TensorProto.DataType), either may be unknown. */
interface Info {
  rank?: number;
  type?: number;
}

interface ValueInfoLike {
  name: string;
  type?: {
    tensor_type?: { elem_type?: number; shape?: { dim?: readonly unknown[] } | null } | null;
  } | null;
}

function declared(v: ValueInfoLike): Info {
  const tt = v.type?.tensor_type;
  if (!tt) return {};
  const info: Info = {};
  if (tt.elem_type) info.type = tt.elem_type;
  if (tt.shape) info.rank = tt.shape.dim?.length ?? 0;
  return info;
}

function attr(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute.find((a) => a.name === name);
}

function attrInt(n: NodeProto, name: string, dflt: number, source: string): number {
  const a = attr(n, name);
  return a ? int64ToNumber(a.i, source, `${label(n)}.${name}`) : dflt;
}

function attrString(n: NodeProto, name: string): string | undefined {
  const a = attr(n, name);
  return a ? new TextDecoder().decode(a.s) : undefined;
}

function label(n: NodeProto): string {
  return `node ${JSON.stringify(n.name || `(unnamed ${n.op_type})`)}`;
}

/** Ops whose output 0 has the rank and element type of input 0. */
const SAME_AS_INPUT0 = new Set(
  (
    'Abs Neg Relu Sigmoid Tanh Exp Log Sqrt Reciprocal Floor Ceil Round Erf Sign Sin Cos Tan Asin Acos Atan ' +
    'Sinh Cosh Asinh Acosh Atanh HardSigmoid HardSwish LeakyRelu Elu Selu Celu Softplus Softsign ' +
    'ThresholdedRelu Shrink Clip Identity Dropout Softmax LogSoftmax Hardmax BatchNormalization ' +
    'InstanceNormalization LRN LpNormalization MeanVarianceNormalization PRelu CumSum Slice Pad Resize ' +
    'Upsample Conv ConvTranspose MaxPool AveragePool LpPool GlobalAveragePool GlobalMaxPool GlobalLpPool ' +
    'Tile Concat DepthToSpace SpaceToDepth ReverseSequence'
  ).split(' '),
);
const BROADCAST = new Set('Add Sub Mul Div Pow Max Min Sum Mean Mod'.split(' '));

/**
 * Ranks and element types of the values of `g`, from initializers, declared value infos, Constant nodes
 * and a forward pass over ops whose output rank / type follow from their inputs (nodes are in
 * topological order in a valid graph). Unknown stays unknown: callers fall back to a shape-free rewrite.
 */
function inferInfo(g: GraphProto, outer: ReadonlyMap<string, Info>, source: string): Map<string, Info> {
  const m = new Map<string, Info>(outer);
  for (const t of g.initializer) m.set(t.name, { rank: t.dims.length, type: t.data_type });
  for (const list of [g.input, g.output, g.value_info])
    for (const v of list as unknown as ValueInfoLike[]) {
      const d = declared(v);
      const have = m.get(v.name);
      m.set(v.name, { ...d, ...have });
    }
  const get = (name: string | undefined): Info => (name ? (m.get(name) ?? {}) : {});
  const set = (name: string | undefined, info: Info): void => {
    if (!name) return;
    const have = m.get(name) ?? {};
    m.set(name, { rank: have.rank ?? info.rank, type: have.type ?? info.type });
  };
  for (const n of g.node) {
    if (!isDefault(n)) continue;
    const x = get(n.input[0]);
    const out = n.output[0];
    const op = n.op_type;
    if (op === 'Constant') {
      const v = attr(n, 'value');
      if (v?.t) set(out, { rank: v.t.dims.length, type: v.t.data_type });
      else if (attr(n, 'value_float')) set(out, { rank: 0, type: DT.FLOAT });
      else if (attr(n, 'value_floats')) set(out, { rank: 1, type: DT.FLOAT });
      else if (attr(n, 'value_int')) set(out, { rank: 0, type: DT.INT64 });
      else if (attr(n, 'value_ints')) set(out, { rank: 1, type: DT.INT64 });
    } else if (SAME_AS_INPUT0.has(op)) set(out, x);
    else if (op === 'Cast') set(out, { rank: x.rank, type: attrInt(n, 'to', 0, source) || undefined });
    else if (BROADCAST.has(op)) {
      const ranks = n.input.map((i) => get(i).rank);
      const all = ranks.every((r) => r !== undefined);
      set(out, { rank: all ? Math.max(...(ranks as number[])) : undefined, type: x.type });
    } else if (op === 'MatMul') {
      const r0 = x.rank;
      const r1 = get(n.input[1]).rank;
      set(out, {
        rank: r0 !== undefined && r1 !== undefined && r0 >= 2 && r1 >= 2 ? Math.max(r0, r1) : undefined,
        type: x.type,
      });
    } else if (op === 'Gemm' || op === 'Flatten') set(out, { rank: 2, type: x.type });
    else if (op === 'Transpose') {
      const perm = attr(n, 'perm');
      set(out, { rank: perm ? perm.ints.length : x.rank, type: x.type });
    } else if (op === 'Squeeze' || op === 'Unsqueeze') {
      const axes = attr(n, 'axes');
      const d = axes ? axes.ints.length : undefined;
      const rank =
        x.rank === undefined || d === undefined ? undefined : op === 'Squeeze' ? x.rank - d : x.rank + d;
      set(out, { rank, type: x.type });
    } else if (op === 'Reshape') {
      const s = g.initializer.find((t) => t.name === n.input[1]);
      set(out, {
        rank: s?.dims.length === 1 ? int64ToNumber(s.dims[0]!, source, 'dims') : undefined,
        type: x.type,
      });
    } else if (op === 'Shape') set(out, { rank: 1, type: DT.INT64 });
    else if (op === 'Size') set(out, { rank: 0, type: DT.INT64 });
    else if (op.startsWith('Reduce') && attrInt(n, 'keepdims', 1, source) === 1)
      set(out, { rank: x.rank, type: x.type });
  }
  return m;
}

// ------------------------------------------------------------------------------------ conversion

function isDefault(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** Every graph of the model with its outer-scope graph chain (subgraphs after their parent). */
function allGraphs(g: GraphProto, out: GraphProto[] = []): GraphProto[] {
  out.push(g);
  for (const n of g.node)
    for (const a of n.attribute) {
      if (a.g) allGraphs(a.g, out);
      for (const s of a.graphs) allGraphs(s, out);
    }
  return out;
}

/** int64 little-endian bytes of attribute integers, exact over the whole int64 range (Long or number). */
function int64AttrBytes(values: readonly Int64[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (typeof v === 'number') view.setBigInt64(8 * i, BigInt(Math.trunc(v)), true);
    else {
      view.setInt32(8 * i, v.low, true);
      view.setInt32(8 * i + 4, v.high, true);
    }
  });
  return out;
}

function scalarBytes(value: number, type: number): Uint8Array | undefined {
  if (type === DT.FLOAT) return new Uint8Array(Float32Array.of(value).buffer);
  if (type === DT.DOUBLE) return new Uint8Array(Float64Array.of(Math.fround(value)).buffer);
  return undefined;
}

/** Why a node cannot be converted from opset `from` (undefined when it can). */
function refusal(n: NodeProto, from: number, target: number): string | undefined {
  const op = n.op_type;
  if (!STANDARD_21.has(op)) return `${op} is not a standard ai.onnx operator at opset ${target}`;
  if (op === 'Upsample') return 'Upsample is deprecated since opset 10 and is not converted to Resize';
  if (op === 'Resize' && from < 11)
    return 'Resize-10 has no exact Resize-11+ equivalent here (its coordinate mapping differs)';
  if (op === 'Resize' && from < 13 && target >= 13) {
    if (attrString(n, 'coordinate_transformation_mode') === 'tf_half_pixel_for_nn')
      return "coordinate_transformation_mode 'tf_half_pixel_for_nn' was removed in Resize-13";
  }
  if (op === 'Dropout' && from < 12 && target >= 12 && (n.output[1] ?? '') !== '')
    return 'the Dropout mask output changed (type T -> bool at 10; at inference onnxruntime gives all false before 12, all true from 12)';
  if (op === 'BatchNormalization' && from < 14 && target >= 14 && n.output.slice(1).some((o) => o !== ''))
    return 'BatchNormalization training outputs (mean, var, saved_mean, saved_var) changed in opset 14';
  if (op === 'DFT' && from < 20 && target >= 20)
    return 'DFT axis attribute -> input (opset 20) is not converted';
  if (op === 'GroupNormalization' && from < 21 && target >= 21)
    return 'GroupNormalization scale/bias changed from per group to per channel in opset 21';
  return undefined;
}

interface Refused {
  node: NodeProto;
  reason: string;
}

function findRefusal(proto: ModelProto, from: number, target: number): Refused | undefined {
  if (!proto.graph) return undefined;
  for (const g of allGraphs(proto.graph))
    for (const n of g.node) {
      if (!isDefault(n)) continue;
      const reason = refusal(n, from, target);
      if (reason) return { node: n, reason };
    }
  return undefined;
}

/** Why the default opset of `proto` cannot be raised to `target` (undefined when it can). */
function upgradeBlocker(proto: ModelProto, target: number): string | undefined {
  const from = opsetVersion(proto, '') ?? 1;
  if (from >= target) return undefined;
  if (target > MAX_UPGRADE_OPSET) return `raising the opset above ${MAX_UPGRADE_OPSET} is not supported`;
  if (from < MIN_UPGRADE_OPSET) return `opset ${from} < ${MIN_UPGRADE_OPSET} is not converted`;
  if (proto.functions.length > 0) return 'models with local functions are not upgraded';
  const r = findRefusal(proto, from, target);
  return r ? `${label(r.node)} (${r.node.op_type}): ${r.reason}` : undefined;
}

/**
 * Whether upgradeDefaultOpset(proto, target) succeeds: true when the model is already at `target` or
 * above, or at opset 9..20 with every node convertible. A dry run: the model is not changed.
 */
export function canUpgradeOpset(proto: ModelProto, target: number): boolean {
  return upgradeBlocker(proto, target) === undefined;
}

class GraphRewriter {
  readonly inits: TensorProto[] = [];
  constructor(
    readonly fresh: (base: string) => string,
    readonly info: ReadonlyMap<string, Info>,
    readonly source: string,
  ) {}

  int64Input(n: NodeProto, what: string, values: readonly Int64[], dims: readonly number[]): string {
    const name = this.fresh(`${n.name || n.op_type}_${what}`);
    this.inits.push(makeTensor(name, DT.INT64, dims, int64AttrBytes(values)));
    return name;
  }

  floatInput(n: NodeProto, what: string, value: number): string {
    const name = this.fresh(`${n.name || n.op_type}_${what}`);
    this.inits.push(makeTensor(name, DT.FLOAT, [], scalarBytes(value, DT.FLOAT)!));
    return name;
  }

  /**
   * A scalar of the element type of `like` holding the float32 `value`: an initializer when the type is
   * known to be float or double, else a float initializer cast with CastLike (exact: float32 -> T is what
   * the old attribute meant).
   */
  scalarLike(n: NodeProto, what: string, value: number, like: string, before: NodeProto[]): string {
    const type = this.info.get(like)?.type;
    const bytes = type === undefined ? undefined : scalarBytes(value, type);
    const name = this.fresh(`${n.name || n.op_type}_${what}`);
    if (bytes && type !== undefined) {
      this.inits.push(makeTensor(name, type, [], bytes));
      return name;
    }
    this.inits.push(makeTensor(name, DT.FLOAT, [], scalarBytes(value, DT.FLOAT)!));
    const cast = this.fresh(`${name}_like`);
    before.push(makeNode('CastLike', [name, like], [cast], { name: this.fresh(`${name}_castlike`) }));
    return cast;
  }

  /** Moves an integer-list attribute to input `index` as an int64 1-D initializer (absent: left out). */
  attrToInput(n: NodeProto, attrName: string, index: number): void {
    const a = attr(n, attrName);
    if (!a) return;
    const name = this.int64Input(n, attrName, a.ints, [a.ints.length]);
    n.attribute = n.attribute.filter((x) => x !== a);
    const inputs = n.input.slice();
    while (inputs.length < index) inputs.push('');
    inputs[index] = name;
    n.input = inputs;
  }

  /**
   * Converts node `n` (already checked by refusal()) from opset `from` to `target`. Returns nodes to
   * insert before it and after it.
   */
  convert(n: NodeProto, from: number, target: number): { before: NodeProto[]; after: NodeProto[] } {
    const before: NodeProto[] = [];
    const after: NodeProto[] = [];
    const op = n.op_type;
    const crosses = (v: number): boolean => from < v && target >= v;
    if (crosses(10) && op === 'Slice') {
      const starts = attr(n, 'starts');
      const ends = attr(n, 'ends');
      const axes = attr(n, 'axes');
      const inputs = [n.input[0] ?? ''];
      inputs.push(this.int64Input(n, 'starts', starts?.ints ?? [], [starts?.ints.length ?? 0]));
      inputs.push(this.int64Input(n, 'ends', ends?.ints ?? [], [ends?.ints.length ?? 0]));
      if (axes) inputs.push(this.int64Input(n, 'axes', axes.ints, [axes.ints.length]));
      n.input = inputs;
      n.attribute = n.attribute.filter((x) => !['starts', 'ends', 'axes'].includes(x.name));
    }
    if (crosses(10) && op === 'TopK') {
      const k = attr(n, 'k');
      if (k) {
        n.input = [n.input[0] ?? '', this.int64Input(n, 'k', [k.i], [1])];
        n.attribute = n.attribute.filter((x) => x !== k);
      }
    }
    if (crosses(11) && op === 'Clip') {
      const lo = attr(n, 'min')?.f ?? -3.4028234663852886e38;
      const hi = attr(n, 'max')?.f ?? 3.4028234663852886e38;
      const x = n.input[0] ?? '';
      n.input = [x, this.scalarLike(n, 'min', lo, x, before), this.scalarLike(n, 'max', hi, x, before)];
      n.attribute = n.attribute.filter((a) => a.name !== 'min' && a.name !== 'max');
    }
    if (crosses(11) && op === 'Pad') {
      const pads = attr(n, 'pads');
      const value = attr(n, 'value');
      const x = n.input[0] ?? '';
      const inputs = [x, this.int64Input(n, 'pads', pads?.ints ?? [], [pads?.ints.length ?? 0])];
      if (value) inputs.push(this.scalarLike(n, 'value', value.f, x, before));
      n.input = inputs;
      n.attribute = n.attribute.filter((a) => a.name !== 'pads' && a.name !== 'value');
    }
    // Scatter-9 and the deprecated Scatter-11 are ScatterElements-11 (onnxruntime has no Scatter after 12)
    if (target >= 11 && op === 'Scatter') n.op_type = 'ScatterElements';
    if (crosses(12) && op === 'Dropout') {
      const ratio = attr(n, 'ratio');
      n.input = [n.input[0] ?? '', this.floatInput(n, 'ratio', ratio ? ratio.f : 0.5)];
      n.attribute = n.attribute.filter((a) => a.name !== 'ratio');
    }
    if (crosses(13) && SOFTMAX_LIKE.has(op)) this.softmax13(n, before, after);
    if (crosses(13) && (op === 'Squeeze' || op === 'Unsqueeze' || op === 'ReduceSum'))
      this.attrToInput(n, 'axes', 1);
    if (crosses(13) && op === 'Split') this.attrToInput(n, 'split', 1);
    if (crosses(16) && op === 'RoiAlign' && !attr(n, 'coordinate_transformation_mode'))
      n.attribute = [
        ...n.attribute,
        ...makeNode('X', [], [], { attrs: { coordinate_transformation_mode: 'output_half_pixel' } })
          .attribute,
      ];
    if (crosses(18) && REDUCE_18.has(op)) this.attrToInput(n, 'axes', 1);
    if (crosses(18) && op === 'Split' && (n.input.length < 2 || n.input[1] === '')) {
      if (!attr(n, 'num_outputs'))
        n.attribute = [
          ...n.attribute,
          onnxMessageType('AttributeProto').create({
            name: 'num_outputs',
            type: 2,
            i: n.output.length,
          }) as never,
        ];
    }
    if (crosses(20) && op === 'GridSample') {
      const mode = attr(n, 'mode');
      const m = mode ? new TextDecoder().decode(mode.s) : undefined;
      const renamed = m === 'bilinear' ? 'linear' : m === 'bicubic' ? 'cubic' : undefined;
      if (mode && renamed) mode.s = new TextEncoder().encode(renamed);
    }
    return { before, after };
  }

  /**
   * Softmax / LogSoftmax / Hardmax 1..12 coerce the input to 2-D [prod(d_0..d_axis-1), prod(d_axis..)]
   * (axis default 1); 13+ work along one axis (default -1). Same when the axis is the last one; otherwise
   * Reshape(op13(Flatten(x, axis), axis=-1), Shape(x)) computes exactly the old 2-D meaning.
   */
  private softmax13(n: NodeProto, before: NodeProto[], after: NodeProto[]): void {
    const axis = attrInt(n, 'axis', 1, this.source);
    const x = n.input[0] ?? '';
    const y = n.output[0] ?? '';
    const rank = this.info.get(x)?.rank ?? this.info.get(y)?.rank;
    const last = axis === -1 || (rank !== undefined && (axis < 0 ? axis + rank : axis) === rank - 1);
    const setAxis = (v: number): void => {
      n.attribute = [
        ...n.attribute.filter((a) => a.name !== 'axis'),
        ...makeNode('X', [], [], { attrs: { axis: v } }).attribute,
      ];
    };
    if (last) {
      setAxis(-1);
      return;
    }
    const base = n.name || n.op_type;
    const shape = this.fresh(`${base}_in_shape`);
    const flat = this.fresh(`${base}_flat`);
    const out2d = this.fresh(`${base}_2d`);
    before.push(makeNode('Shape', [x], [shape], { name: this.fresh(`${base}_shape`) }));
    before.push(makeNode('Flatten', [x], [flat], { name: this.fresh(`${base}_flatten`), attrs: { axis } }));
    n.input = [flat];
    n.output = [out2d];
    setAxis(-1);
    after.push(
      makeNode('Reshape', [out2d, shape], [y], {
        name: this.fresh(`${base}_reshape`),
        attrs: { allowzero: 1 },
      }),
    );
  }
}

/**
 * Raises the ai.onnx opset to `target` (at most 21) and ir_version to what that opset needs, converting
 * the nodes listed in the table above in every graph. Returns the previous version.
 * @throws MixqError naming the node, op and reason when a node cannot be converted exactly, when the
 *   model is below opset 9, or when it has local functions. The model is not changed then.
 */
export function upgradeDefaultOpset(proto: ModelProto, target: number, source = ''): number {
  const from = opsetVersion(proto, '') ?? 1;
  if (from >= target) return from;
  const blocker = upgradeBlocker(proto, target);
  if (blocker) {
    const r = findRefusal(proto, from, target);
    throw new MixqError(`cannot raise ai.onnx opset ${from} to ${target}: ${blocker}`, {
      source,
      field: r ? `graph.node[${JSON.stringify(r.node.name)}]` : 'opset_import',
      expected: r
        ? 'operators that convert exactly (see src/export/onnx/opset.ts)'
        : `a model at opset ${MIN_UPGRADE_OPSET}..${target} without local functions`,
    });
  }
  if (proto.graph) {
    const graphs = allGraphs(proto.graph);
    const fresh = freshNamer(graphs);
    // outer-scope facts flow into subgraphs: infer parents first (allGraphs lists parents before children)
    const outerOf = new Map<GraphProto, Map<string, Info>>();
    for (const g of graphs) {
      const info = inferInfo(g, outerOf.get(g) ?? new Map(), source);
      for (const n of g.node)
        for (const a of n.attribute) {
          if (a.g) outerOf.set(a.g, info);
          for (const s of a.graphs) outerOf.set(s, info);
        }
      const rw = new GraphRewriter(fresh, info, source);
      const nodes: NodeProto[] = [];
      for (const n of g.node) {
        if (!isDefault(n)) {
          nodes.push(n);
          continue;
        }
        const { before, after } = rw.convert(n, from, target);
        nodes.push(...before, n, ...after);
      }
      g.node = nodes;
      if (rw.inits.length > 0) g.initializer = [...g.initializer, ...rw.inits];
    }
  }
  requireOpset(proto, '', target);
  // IR version 10 introduced the opset-21 types (int4/uint4); 9 covers 19-20, 8 covers 18, 7 covers 13-17.
  requireIrVersion(proto, target >= 21 ? 10 : target >= 19 ? 9 : target >= 18 ? 8 : 7);
  return from;
}

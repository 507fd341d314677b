/**
 * quantizeOnnxWeights: a deployable weight-only quantized ONNX model, built in memory (browser-safe).
 * Each assigned weight of the main graph is rewritten by one scheme:
 *
 *   'matmulnbits'          MatMul(A, W[K,N])  ->  com.microsoft MatMulNBits(A, Bq, scales[, zero_points])
 *   'dequantizelinear'     W  ->  DequantizeLinear(Wq, scale[, zero_point]) feeding the original node:
 *                            MatMul / Gemm: blocked along K (axis 0, or 1 for Gemm transB=1), opset 21;
 *                            Conv: per output channel (axis 0); Gather: blocked along the row.
 *                            Models at opset 9..20 are raised to 21 (opset.ts); those that cannot be
 *                            use com.microsoft DequantizeLinear (per channel only).
 *   'gatherblockquantized' Gather(W[V,D], ids)  ->  com.microsoft GatherBlockQuantized(Wq, ids, scales[, zp])
 *   'packed'               W  ->  bit-plane codes of any 1..8-bit element format and its scales, decoded by
 *                            standard operators that onnxruntime folds at load (packed.ts): INT3/5/6/7,
 *                            FP6, FP4 (MXFP4, NVFP4), NF4, ... for any consumer; opset 18+ (raised to 21)
 *   'cast'                 W  ->  Cast(W16) with W16 the weight in float16 or bfloat16 (scheme fp16 / bf16,
 *                            scale format none), any consumer; bfloat16 needs opset 13 (raised to 21)
 *   'keep'                 untouched (norms, biases, logits: simply leave them out of the assignments)
 * FP4 (FLOAT4E2M1: NVFP4, MXFP4) is refused with FP4_REFUSAL: onnxruntime 1.30 cannot load it.
 *
 * Byte layouts: layouts.ts. Quantization is mixq's (src/quant), identical to fakeQuantizeOnnxWeights, which
 * returns the float model whose weights are the dequantized values: the simulation the export must match.
 * Scales of type float16 in a float32 model are stored as float16 and widened by a Cast node (constant-
 * folded at load), so storage is 2 bytes per scale while the arithmetic stays float32.
 */
import { MixqError } from '../../core/errors.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../../io/onnx/proto-types.ts';
import { cloneOnnxModel } from '../../io/onnx/clone.ts';
import type { OnnxModel } from '../../io/onnx/read.ts';
import { setTensorFloat32 } from '../../io/onnx/tensor-data.ts';
import { listWeights, loadWeightFloat32, type OnnxWeight } from '../../io/onnx/weights.ts';
import {
  DT,
  freshNamer,
  intAttr,
  makeNode,
  makeTensor,
  opsetVersion,
  requireIrVersion,
  requireOpset,
  scaleTensors,
} from './build.ts';
import {
  type BlockQuantized,
  packNBitsBlocks,
  packRowZeroPoints,
  packTensorCodes,
  quantizeBlocks,
} from './layouts.ts';
import { transpose } from '../../quant/layout.ts';
import { canUpgradeOpset, upgradeDefaultOpset } from './opset.ts';
import {
  emitPackedDecode,
  type PackedEmitter,
  type PackedQuant,
  packedFromGrid,
  packedFromQuantizer,
} from './packed.ts';
import { chop, getFormat } from '../../formats/index.ts';
import { chooseQParams, fakeQuantWith, type QuantizerConfig, quantize } from '../../quant/index.ts';

export type ExportScheme =
  'matmulnbits' | 'dequantizelinear' | 'gatherblockquantized' | 'packed' | 'cast' | 'keep';

export interface WeightAssignment {
  readonly scheme: ExportScheme;
  /** 2 (MatMulNBits only), 4 or 8. */
  readonly bits?: 2 | 4 | 8;
  /** Power of two in 16..256 (default 32). Ignored for per-channel DequantizeLinear. */
  readonly blockSize?: number;
  /** Default true. MatMulNBits / GatherBlockQuantized: zero point 2^(bits-1); DequantizeLinear: int, zero 0. */
  readonly symmetric?: boolean;
  /** Storage type of the scales (default float32). */
  readonly scaleType?: 'float32' | 'float16';
  /**
   * DequantizeLinear: 'block' (default for MatMul/Gemm/Gather) or 'channel' (default for Conv; a Conv
   * takes 'block', along its input channels, only with a 1 x 1 kernel).
   */
  readonly granularity?: 'block' | 'channel';
  /**
   * DequantizeLinear only: store FP8 codes instead of integers (opset 19+, per output channel, symmetric,
   * bits 8): the quantizer is mixq's FP8 element format with a per-channel absmax scale.
   * 'fp4_e2m1fn' (FLOAT4E2M1, DequantizeLinear-23: NVFP4 / MXFP4 storage) is refused: onnxruntime 1.30
   * has no kernel for it (see FP4_REFUSAL).
   */
  readonly element?: 'fp8_e4m3fn' | 'fp8_e5m2' | 'fp4_e2m1fn';
  /** MatMulNBits accuracy_level (default 0: float compute, matches the simulation). */
  readonly accuracyLevel?: number;
  /**
   * Codes and parameters computed elsewhere (GPTQ), used instead of the min-max quantizer. Laid out in the
   * operator's row order: rows = output channels (N of a MatMul / Gemm, O of a Conv, V of a Gather), blocks
   * of `blockSize` (or the whole row for 'channel') along the reduction. Grid values must fit the stored
   * type (signed for symmetric DequantizeLinear, unsigned otherwise; zero 0 when symmetric).
   */
  readonly quantized?: PrequantizedBlocks;
  /**
   * 'packed' only (and required there): the quantizer in the row layout [rows = output channels, cols =
   * reduction], per channel (axis 0) or in groups along axis 1; `quantized` then holds integer-grid codes.
   */
  readonly quantizer?: QuantizerConfig;
  /** 'cast' only: the 16-bit type the weight is stored in (default float16; values saturate at its maximum). */
  readonly castTo?: 'float16' | 'bfloat16';
}

export interface PrequantizedBlocks {
  /** Integer grid value of every element, [rows, cols]. */
  readonly q: Int32Array;
  /** Stored scale per block, [rows, nBlocks] (float16-representable when scaleType is float16). */
  readonly scale: Float32Array;
  /** Zero point per block, [rows, nBlocks], in the grid of q. */
  readonly zero: Int32Array;
}

export type WeightAssignments = Readonly<Record<string, WeightAssignment>>;

/** Storage of one exported weight, from the written initializers. */
export interface ExportedWeight {
  readonly name: string;
  readonly scheme: Exclude<ExportScheme, 'keep'>;
  /** Operator that consumes the quantized data, e.g. 'MatMulNBits', 'DequantizeLinear'. */
  readonly op: string;
  readonly domain: string;
  readonly bits: number;
  readonly blockSize: number;
  readonly dims: readonly number[];
  readonly codeBytes: number;
  readonly scaleBytes: number;
  readonly zeroPointBytes: number;
  /** Bytes of the float weight it replaces. */
  readonly originalBytes: number;
}

export interface QuantizedOnnx {
  readonly model: OnnxModel;
  readonly weights: readonly ExportedWeight[];
  /** What was changed besides the weights (opset upgrades, fallbacks). */
  readonly notes: readonly string[];
  /** With `simulation: true`: the float model with the dequantized weights (= fakeQuantizeOnnxWeights). */
  readonly simulation?: OnnxModel;
}

type Role =
  | { kind: 'matmul'; K: number; N: number }
  | { kind: 'gemm'; K: number; N: number; transB: boolean }
  | { kind: 'conv'; O: number; inner: number }
  | { kind: 'gather'; V: number; D: number };

interface Use {
  node: NodeProto;
  index: number;
}

const MS = 'com.microsoft';

function fail(message: string, field: string, expected?: string): never {
  throw new MixqError(message, { source: 'quantizeOnnxWeights', field, expected });
}

function usesOf(graph: GraphProto): Map<string, Use[]> {
  const uses = new Map<string, Use[]>();
  for (const node of graph.node)
    node.input.forEach((name, index) => {
      const list = uses.get(name) ?? [];
      list.push({ node, index });
      uses.set(name, list);
    });
  return uses;
}

/** Names read inside subgraphs (outer-scope captures); such weights are refused. */
function subgraphReads(graph: GraphProto): Set<string> {
  const out = new Set<string>();
  const walk = (g: GraphProto): void => {
    for (const n of g.node) for (const x of n.input) out.add(x);
    for (const n of g.node)
      for (const a of n.attribute) for (const s of a.g ? [a.g, ...a.graphs] : a.graphs) walk(s);
  };
  for (const n of graph.node)
    for (const a of n.attribute) for (const s of a.g ? [a.g, ...a.graphs] : a.graphs) walk(s);
  return out;
}

function roleOf(w: OnnxWeight, uses: readonly Use[], field: string): Role {
  if (uses.length === 0) fail('the weight has no consumer in the main graph', field, 'a used weight');
  const d = w.dims;
  const kinds = new Set(uses.map((u) => `${u.node.op_type}#${u.index}`));
  if (kinds.size > 1)
    fail(`the weight feeds different inputs (${[...kinds].join(', ')})`, field, 'one kind of consumer');
  const u = uses[0]!;
  const op = u.node.op_type;
  if (op === 'MatMul' && u.index === 1 && d.length === 2) return { kind: 'matmul', K: d[0]!, N: d[1]! };
  if (op === 'Gemm' && u.index === 1 && d.length === 2) {
    const ts = new Set(uses.map((x) => intAttr(x.node, 'transB', 0)));
    if (ts.size > 1) fail('the weight feeds Gemm nodes with different transB', field, 'one transB');
    const transB = intAttr(u.node, 'transB', 0) === 1;
    return transB
      ? { kind: 'gemm', K: d[1]!, N: d[0]!, transB }
      : { kind: 'gemm', K: d[0]!, N: d[1]!, transB };
  }
  if (op === 'Conv' && u.index === 1 && d.length >= 3)
    return { kind: 'conv', O: d[0]!, inner: d.slice(1).reduce((p, x) => p * x, 1) };
  if (op === 'Gather' && u.index === 0 && d.length === 2) {
    if (uses.some((x) => intAttr(x.node, 'axis', 0) !== 0)) fail('Gather axis is not 0', field, 'axis 0');
    return { kind: 'gather', V: d[0]!, D: d[1]! };
  }
  return fail(
    `${op} input ${u.index} with a rank-${d.length} weight is not a quantizable use`,
    field,
    'MatMul B [K, N], Gemm B, Conv W or Gather data [V, D]',
  );
}

/**
 * Why FP4 weights are not exported (issue #6), as measured with onnxruntime-node and onnxruntime-web 1.30
 * (scratch/fp4_probe.ts; test/export/onnx-fp4.test.ts re-checks it): a FLOAT4E2M1 initializer passes the
 * opset-23 schema check, but session creation fails with "Could not find an implementation for
 * DequantizeLinear(23)" (also 24, 25; blocked, per channel and per tensor; float32 or float16 scales;
 * the NVFP4 chain DequantizeLinear(E4M3 scales) -> DequantizeLinear(FP4) alike), Cast from float4e2m1 has
 * no kernel either, and no DequantizeLinear kernel takes FLOAT8E8M0 (MXFP4's scale type) scales (Cast from
 * float8e8m0 to float does run at opset 24).
 */
export const FP4_REFUSAL = {
  message:
    'FP4 E2M1 weights (DequantizeLinear-23 on tensor(float4e2m1), NVFP4 / MXFP4 storage) do not load in ' +
    'onnxruntime 1.30: its CPU and WASM builds have no DequantizeLinear or Cast kernel for float4e2m1 ' +
    "('Could not find an implementation for DequantizeLinear(23)') nor a DequantizeLinear kernel taking " +
    'float8e8m0 scales',
  expected:
    "4-bit integer blocks of 16 or 32 (scheme 'matmulnbits', or 'dequantizelinear' with bits 4), " +
    "element 'fp8_e4m3fn' per channel, or NVFP4 / MXFP4 written as safetensors " +
    '(mixq quantize --emit safetensors)',
} as const;

type Fp8Element = 'fp8_e4m3fn' | 'fp8_e5m2';

/** The FP8 element of an assignment; refuses FP4 and unknown elements before any weight is read. */
function checkElement(a: WeightAssignment, field: string): Fp8Element | undefined {
  const e: string | undefined = a.element;
  if (e === undefined || e === 'fp8_e4m3fn' || e === 'fp8_e5m2') return e;
  if (/^(fp4|nvfp4|mxfp4)/i.test(e)) fail(FP4_REFUSAL.message, `${field}.element`, FP4_REFUSAL.expected);
  fail(`element '${e}'`, `${field}.element`, "'fp8_e4m3fn' or 'fp8_e5m2' (or no element: integers)");
}

function checkConfig(
  a: WeightAssignment,
  field: string,
): { bits: number; blockSize: number; fp8: Fp8Element | undefined } {
  const fp8 = checkElement(a, field);
  const bits = a.bits ?? 4;
  if (![2, 4, 8].includes(bits)) fail(`bits ${bits}`, `${field}.bits`, '2, 4 or 8');
  const blockSize = a.blockSize ?? 32;
  if (!(
    Number.isInteger(blockSize) &&
    blockSize >= 16 &&
    blockSize <= 256 &&
    (blockSize & (blockSize - 1)) === 0
  ))
    fail(`block size ${blockSize}`, `${field}.blockSize`, 'a power of two in 16..256');
  return { bits, blockSize, fp8 };
}

/** Per-weight plan: how the weight is quantized and how the graph is rewritten. */
interface PlanBase {
  w: OnnxWeight;
  a: WeightAssignment;
  role: Role;
  bits: number;
  blockSize: number;
  /** Dequantized weight in the original layout. */
  dequant: Float32Array;
  /** 'rows' when the tensor is stored as the row matrix; 'cols' when it is its transpose (MatMul [K, N]). */
  orient: 'rows' | 'cols';
}

/** The operators' schemes: blocks in the operator's row order (rows = N for MatMul, V for Gather, O for Conv). */
interface BlockPlan extends PlanBase {
  bq: BlockQuantized;
}

/** Scheme 'packed': the codes and parameters of the row matrix. */
interface PackedPlan extends PlanBase {
  packed: PackedQuant;
}

/** Scheme 'cast': the weight rounded to a 16-bit float type (dequant holds the rounded values). */
interface CastPlan extends PlanBase {
  castTo: 'float16' | 'bfloat16';
}

/** How one weight is stored: the plan of its quantized tensors (not the plan file, src/plan). */
type WeightPlan = BlockPlan | PackedPlan | CastPlan;

/** A weight rounded to float16 / bfloat16 (round to nearest even, saturating as src/quant's grids do). */
function castPlan(w: OnnxWeight, a: WeightAssignment, role: Role, x: Float32Array): CastPlan {
  const castTo = a.castTo ?? 'float16';
  const dequant = chop(getFormat(castTo === 'float16' ? 'fp16' : 'bf16'), x, { overflow: 'saturate' });
  return { w, a, role, bits: 16, blockSize: 0, dequant, orient: 'rows', castTo };
}

/** Rows x cols of a role's row matrix and how the tensor holds it. */
function rowShape(role: Role): { rows: number; cols: number; orient: 'rows' | 'cols' } {
  if (role.kind === 'matmul' || (role.kind === 'gemm' && !role.transB))
    return { rows: role.N, cols: role.K, orient: 'cols' };
  if (role.kind === 'gemm') return { rows: role.N, cols: role.K, orient: 'rows' };
  if (role.kind === 'conv') return { rows: role.O, cols: role.inner, orient: 'rows' };
  return { rows: role.V, cols: role.D, orient: 'rows' };
}

/** A packed weight's plan: mixq's quantizer (or given integer codes) on the row matrix. */
async function planPacked(
  model: OnnxModel,
  w: OnnxWeight,
  a: WeightAssignment,
  role: Role,
  field: string,
): Promise<PackedPlan> {
  const q = a.quantizer;
  if (!q) fail("scheme 'packed' needs the quantizer", `${field}.quantizer`, 'a row-layout QuantizerConfig');
  if ((q.rounding ?? 'nearest-even') !== 'nearest-even')
    fail(`rounding '${q.rounding}' is not exported`, `${field}.quantizer.rounding`, "'nearest-even'");
  const x = await loadWeightFloat32(model, w);
  const { rows, cols, orient } = rowShape(role);
  const xr = orient === 'cols' ? transpose(x, cols, rows) : x;
  const pq = a.quantized
    ? packedFromGrid(a.quantized.q, a.quantized.scale, a.quantized.zero, rows, cols, q, `${field}.quantized`)
    : packedFromQuantizer(xr, rows, cols, q);
  return {
    w,
    a,
    role,
    bits: pq.bits,
    blockSize: pq.groupSize,
    dequant: orient === 'cols' ? transpose(pq.dequant, rows, cols) : pq.dequant,
    orient,
    packed: pq,
  };
}

async function planWeight(
  model: OnnxModel,
  w: OnnxWeight,
  a: WeightAssignment,
  role: Role,
  field: string,
): Promise<WeightPlan> {
  if (a.scheme === 'packed') return planPacked(model, w, a, role, field);
  if (a.scheme === 'cast') {
    if (a.castTo !== undefined && a.castTo !== 'float16' && a.castTo !== 'bfloat16')
      fail(`castTo ${JSON.stringify(a.castTo)}`, `${field}.castTo`, "'float16' or 'bfloat16'");
    return castPlan(w, a, role, await loadWeightFloat32(model, w));
  }
  const { bits, blockSize, fp8 } = checkConfig(a, field);
  const x = await loadWeightFloat32(model, w);
  const symmetric = a.symmetric ?? true;
  const scaleType = a.scaleType ?? 'float32';
  // DequantizeLinear symmetric: signed codes, zero point 0. The contrib ops: unsigned, zero 2^(bits-1).
  const signed = a.scheme === 'dequantizelinear' && symmetric;
  // Conv: per output channel by default; blocks along the input channels (axis 1) only for 1 x 1 kernels,
  // where they are the runs of the reduction axis the simulation quantizes.
  const convBlocked = role.kind === 'conv' && a.granularity === 'block';
  if (convBlocked && role.inner !== w.dims[1])
    fail('blocked DequantizeLinear on a Conv needs a 1 x 1 kernel', `${field}.granularity`, "'channel'");
  const channel =
    a.scheme === 'dequantizelinear' &&
    (a.granularity === 'channel' || (role.kind === 'conv' && !convBlocked));
  const cfg = (cols: number) => ({
    bits,
    blockSize: channel ? cols : blockSize,
    symmetric,
    signed,
    scaleType,
  });
  if (a.element !== undefined) {
    if (
      a.scheme !== 'dequantizelinear' ||
      bits !== 8 ||
      !symmetric ||
      a.quantized ||
      a.granularity === 'block'
    )
      fail(`FP8 storage (${a.element})`, field, "scheme 'dequantizelinear', bits 8, symmetric, per channel");
  }
  const fit = (xr: Float32Array, rows: number, cols: number): BlockQuantized =>
    fp8
      ? floatChannels(xr, rows, cols, fp8, scaleType)
      : a.quantized
        ? prequantized(a.quantized, rows, cols, cfg(cols), field)
        : quantizeBlocks(xr, rows, cols, cfg(cols));
  // MatMul B / Gemm B without transB are stored [K, N]: blocks run along K for each output column n
  const { rows, cols, orient } = rowShape(role);
  const bq = fit(orient === 'cols' ? transpose(x, cols, rows) : x, rows, cols);
  const dequant = orient === 'cols' ? transpose(bq.dequant, rows, cols) : bq.dequant;
  return { w, a, role, bits, blockSize, bq, dequant, orient };
}

/** FP8 codes per output channel (src/quant: absmax scale, the format's own rounding): the simulation's. */
function floatChannels(
  x: Float32Array,
  rows: number,
  cols: number,
  element: 'fp8_e4m3fn' | 'fp8_e5m2',
  scaleType: 'float32' | 'float16',
): BlockQuantized {
  const cfg: QuantizerConfig = {
    element: getFormat(element),
    granularity: { kind: 'axis', axis: 0 },
    symmetric: true,
    scaleFormat: scaleType === 'float16' ? 'fp16' : 'fp32',
  };
  const params = chooseQParams(x, [rows, cols], cfg);
  const { codes } = quantize(x, params);
  return {
    rows,
    cols,
    blockSize: cols,
    nBlocks: 1,
    bits: 8,
    signed: false,
    q: Int32Array.from(codes),
    scale: params.scale,
    zero: new Int32Array(rows),
    dequant: fakeQuantWith(x, params),
  };
}

/** A BlockQuantized from given codes and parameters, checked against the stored type. */
function prequantized(
  p: PrequantizedBlocks,
  rows: number,
  cols: number,
  cfg: { bits: number; blockSize: number; symmetric: boolean; signed: boolean },
  field: string,
): BlockQuantized {
  const bs = Math.min(cfg.blockSize, cols);
  const nBlocks = Math.ceil(cols / bs);
  const f = `${field}.quantized`;
  if (p.q.length !== rows * cols) fail(`q has ${p.q.length} values`, `${f}.q`, `${rows * cols}`);
  if (p.scale.length !== rows * nBlocks || p.zero.length !== rows * nBlocks)
    fail(`scale / zero have ${p.scale.length} / ${p.zero.length} values`, f, `${rows * nBlocks} each`);
  const lo = cfg.signed ? -(2 ** (cfg.bits - 1)) : 0;
  const hi = cfg.signed ? 2 ** (cfg.bits - 1) - 1 : 2 ** cfg.bits - 1;
  const dequant = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const b = r * nBlocks + Math.floor(c / bs);
      const q = p.q[i]!;
      const z = p.zero[b]!;
      if (q < lo || q > hi) fail(`grid value ${q} at ${i}`, `${f}.q`, `${lo}..${hi}`);
      if (z < lo || z > hi || (cfg.symmetric && cfg.signed && z !== 0))
        fail(
          `zero point ${z} at block ${b}`,
          `${f}.zero`,
          cfg.symmetric && cfg.signed ? '0' : `${lo}..${hi}`,
        );
      dequant[i] = Math.fround(p.scale[b]! * (q - z));
    }
  return {
    rows,
    cols,
    blockSize: bs,
    nBlocks,
    bits: cfg.bits,
    signed: cfg.signed,
    q: p.q,
    scale: p.scale,
    zero: p.zero,
    dequant,
  };
}

function checkScheme(p: WeightPlan, field: string): void {
  const s = p.a.scheme;
  if (s === 'matmulnbits' && p.role.kind !== 'matmul')
    fail(
      `MatMulNBits needs a MatMul B weight, the weight is a ${p.role.kind} weight`,
      field,
      'scheme dequantizelinear',
    );
  if (s === 'gatherblockquantized') {
    if (p.role.kind !== 'gather')
      fail('GatherBlockQuantized needs a Gather table', field, 'scheme dequantizelinear');
    if (p.bits === 2) fail('2-bit GatherBlockQuantized is not exported', `${field}.bits`, '4 or 8');
    if ((p.role.D * p.bits) % 8 !== 0)
      fail(`row length ${p.role.D} does not fill whole bytes`, field, 'an even row length');
  }
  if (s === 'dequantizelinear' && p.bits === 2)
    fail('2-bit DequantizeLinear needs opset 25 (int2)', `${field}.bits`, '4 or 8 (or scheme matmulnbits)');
}

/** Collects the weight plans of all assignments (shared by both public functions). */
async function planAll(
  model: OnnxModel,
  assignments: WeightAssignments,
): Promise<{ plans: WeightPlan[]; graph: GraphProto }> {
  const graph = model.proto.graph;
  if (!graph) fail('the model has no graph', 'graph');
  const uses = usesOf(graph);
  const captured = subgraphReads(graph);
  const byName = new Map(
    listWeights(model)
      .filter((w) => w.path === 'graph')
      .map((w) => [w.name, w]),
  );
  const plans: WeightPlan[] = [];
  for (const [name, a] of Object.entries(assignments)) {
    if (a.scheme === 'keep') continue;
    const field = `assignments[${JSON.stringify(name)}]`;
    const w = byName.get(name);
    if (!w || (w.kind !== 'initializer' && w.kind !== 'constant'))
      fail(
        `no dense weight named ${JSON.stringify(name)} in the main graph`,
        field,
        'an initializer or Constant output',
      );
    // float16 graphs would need float16 scales and no Cast; not exported (nor tested) yet
    if (w.dataType !== DT.FLOAT) fail(`the weight is ${w.dtype}`, field, 'a float32 weight');
    if (captured.has(name))
      fail('the weight is read inside a subgraph', field, 'a weight of the main graph only');
    const p = await planWeight(model, w, a, roleOf(w, uses.get(name) ?? [], field), field);
    checkScheme(p, field);
    plans.push(p);
  }
  return { plans, graph };
}

/**
 * The simulation: a copy of the model where every assigned weight holds its dequantized (fake-quant)
 * values in its own float type; the graph is unchanged.
 */
export async function fakeQuantizeOnnxWeights(
  model: OnnxModel,
  assignments: WeightAssignments,
): Promise<OnnxModel> {
  const out = cloneOnnxModel(model);
  const { plans } = await planAll(out, assignments);
  for (const p of plans) setTensorFloat32(p.w.tensor, p.dequant);
  return out;
}

/** Removes the float weight: its initializer (and graph input entry) or its Constant node. */
function removeWeight(graph: GraphProto, w: OnnxWeight): void {
  if (w.kind === 'initializer') {
    graph.initializer = graph.initializer.filter((t) => t !== w.tensor);
    graph.input = graph.input.filter((v) => v.name !== w.name);
  } else graph.node = graph.node.filter((n) => n !== w.node);
}

/** The ai.onnx opset the plans need, and the domain of DequantizeLinear (raising the model's opset first). */
function dequantizeDomain(
  proto: ModelProto,
  plans: readonly WeightPlan[],
  notes: string[],
  source: string,
): string {
  const opset = opsetVersion(proto, '') ?? 1;
  // Standard DequantizeLinear: int8 per channel needs opset 13, int4 or block_size opset 21.
  const dqPlans = plans.filter((p): p is BlockPlan => p.a.scheme === 'dequantizelinear');
  const packedPlan = plans.find((p) => p.a.scheme === 'packed');
  const bf16Plan = plans.find((p) => 'castTo' in p && p.castTo === 'bfloat16');
  const needStd = Math.max(
    packedPlan ? 18 : 0, // BitwiseAnd
    bf16Plan ? 13 : 0, // Cast from bfloat16
    ...dqPlans.map((p) => (p.bits === 4 || p.bq.nBlocks > 1 ? 21 : p.a.element ? 19 : 13)),
  );
  if (needStd <= opset) return '';
  // opset 9..20 models are raised to 21 when every node converts exactly (opset.ts), else com.microsoft
  if (canUpgradeOpset(proto, 21)) {
    upgradeDefaultOpset(proto, 21, source);
    notes.push(`ai.onnx opset raised from ${opset} to 21 (ir_version >= 10) for DequantizeLinear`);
    return '';
  }
  if (bf16Plan)
    fail(
      `bfloat16 weights need Cast-13 and the model (opset ${opset}) cannot be raised`,
      `assignments[${JSON.stringify(bf16Plan.w.name)}].castTo`,
      "'float16'",
    );
  if (packedPlan)
    fail(
      `packed weights are decoded with opset-18 operators and the model (opset ${opset}) cannot be raised`,
      `assignments[${JSON.stringify(packedPlan.w.name)}]`,
      "scheme 'matmulnbits' or 'dequantizelinear' for this model",
    );
  const fp8 = dqPlans.find((p) => p.a.element);
  if (fp8)
    fail(
      `FP8 DequantizeLinear needs opset 19 and the model is at opset ${opset}`,
      `assignments[${JSON.stringify(fp8.w.name)}]`,
      'an integer scheme for models that cannot be raised to opset 21',
    );
  const blocked = dqPlans.find((p) => p.bq.nBlocks > 1);
  if (blocked)
    fail(
      `blocked DequantizeLinear needs opset 21 and the model is at opset ${opset}`,
      `assignments[${JSON.stringify(blocked.w.name)}]`,
      "granularity 'channel' or scheme matmulnbits",
    );
  notes.push(
    `model opset ${opset} cannot be raised to 21: per-channel weights use com.microsoft DequantizeLinear`,
  );
  return MS;
}

/** What the emitters of one model share: names, the new initializers and nodes, the replaced nodes. */
interface EmitContext {
  readonly proto: ModelProto;
  readonly graph: GraphProto;
  readonly fresh: (base: string) => string;
  readonly inits: TensorProto[];
  readonly front: NodeProto[];
  readonly replaced: Map<NodeProto, NodeProto>;
  readonly packed: PackedEmitter;
  readonly dqDomain: string;
}

/** An emitted weight's operator and stored bytes (scales are counted by the caller). */
interface Emitted {
  readonly op: string;
  readonly domain: string;
  readonly codeBytes: number;
  readonly zeroPointBytes: number;
}

/** The stored scales of a block plan, and its zero points (packed by `pack`) unless symmetric. */
function scalesAndZeros(
  c: EmitContext,
  p: BlockPlan,
  scaleName: string,
  scale: Float32Array,
  dims: number[],
  zp: () => { data: Uint8Array; dims: number[]; type: number },
): { inputs: string[]; zeroPointBytes: number } {
  const scales = scaleTensors(
    c.fresh,
    c.fresh(scaleName),
    scale,
    dims,
    p.a.scaleType ?? 'float32',
    c.inits,
    c.front,
  );
  if (p.a.symmetric ?? true) return { inputs: [scales], zeroPointBytes: 0 };
  const z = zp();
  const zpName = c.fresh(`${p.w.name}_zp`);
  c.inits.push(makeTensor(zpName, z.type, z.dims, z.data));
  return { inputs: [scales, zpName], zeroPointBytes: z.data.length };
}

/** MatMul(A, W[K, N]) -> com.microsoft MatMulNBits(A, Bq, scales[, zero_points]). */
function emitMatMulNBits(c: EmitContext, p: BlockPlan): Emitted {
  const name = p.w.name;
  const bq = p.bq;
  const role = p.role as Extract<Role, { kind: 'matmul' }>;
  const blob = (p.blockSize * p.bits) / 8;
  const b = packNBitsBlocks(bq, p.blockSize);
  const nb = Math.ceil(role.K / p.blockSize);
  const qName = c.fresh(`${name}_Q${p.bits}`);
  c.inits.push(makeTensor(qName, DT.UINT8, [role.N, nb, blob], b));
  const { inputs, zeroPointBytes } = scalesAndZeros(c, p, `${name}_scales`, bq.scale, [role.N, nb], () => {
    const zp = packRowZeroPoints(bq);
    return { data: zp, dims: [role.N, zp.length / role.N], type: DT.UINT8 };
  });
  for (const u of usesOf(c.graph).get(name) ?? []) {
    const n = u.node;
    const attrs = {
      K: role.K,
      N: role.N,
      bits: p.bits,
      block_size: p.blockSize,
      accuracy_level: p.a.accuracyLevel ?? 0,
    };
    c.replaced.set(
      n,
      makeNode('MatMulNBits', [n.input[0] ?? '', qName, ...inputs], n.output, {
        name: n.name,
        domain: MS,
        attrs,
      }),
    );
  }
  return { op: 'MatMulNBits', domain: MS, codeBytes: b.length, zeroPointBytes };
}

/** Gather(W[V, D], ids) -> com.microsoft GatherBlockQuantized(Wq, ids, scales[, zero_points]). */
function emitGatherBlockQuantized(c: EmitContext, p: BlockPlan): Emitted {
  const name = p.w.name;
  const bq = p.bq;
  const role = p.role as Extract<Role, { kind: 'gather' }>;
  const data = packTensorCodes(bq.q, p.bits);
  const qName = c.fresh(`${name}_Q${p.bits}`);
  c.inits.push(makeTensor(qName, DT.UINT8, [role.V, data.length / role.V], data));
  const { inputs, zeroPointBytes } = scalesAndZeros(
    c,
    p,
    `${name}_scales`,
    bq.scale,
    [role.V, bq.nBlocks],
    () => {
      const zp = packRowZeroPoints(bq);
      return { data: zp, dims: [role.V, zp.length / role.V], type: DT.UINT8 };
    },
  );
  for (const u of usesOf(c.graph).get(name) ?? []) {
    const n = u.node;
    const attrs = { gather_axis: 0, quantize_axis: 1, block_size: p.blockSize, bits: p.bits };
    c.replaced.set(
      n,
      makeNode('GatherBlockQuantized', [qName, n.input[1] ?? '', ...inputs], n.output, {
        name: n.name,
        domain: MS,
        attrs,
      }),
    );
  }
  return { op: 'GatherBlockQuantized', domain: MS, codeBytes: data.length, zeroPointBytes };
}

/** W -> DequantizeLinear(Wq, scale[, zero_point]): the quantized tensor keeps the shape, its output the name. */
function emitDequantizeLinear(c: EmitContext, p: BlockPlan): Emitted {
  const name = p.w.name;
  const bq = p.bq;
  const dims = p.w.dims;
  const q = p.orient === 'cols' ? transpose(bq.q, bq.rows, bq.cols) : bq.q;
  const signed = p.a.symmetric ?? true;
  const qType = p.a.element
    ? p.a.element === 'fp8_e4m3fn'
      ? DT.FLOAT8E4M3FN
      : DT.FLOAT8E5M2
    : p.bits === 8
      ? signed
        ? DT.INT8
        : DT.UINT8
      : signed
        ? DT.INT4
        : DT.UINT4;
  const codes = packTensorCodes(q, p.bits);
  const qName = c.fresh(`${name}_q${p.bits}`);
  c.inits.push(makeTensor(qName, qType, dims, codes));
  // one block per row (per channel, or a reduction axis no longer than the block) needs no block_size
  const perChannel = bq.nBlocks === 1;
  // axis: the output-channel axis (per channel) or the blocked axis
  const axis = p.orient === 'cols' ? (perChannel ? 1 : 0) : perChannel ? 0 : 1;
  let scaleDims: number[];
  let scale = bq.scale;
  let zero = bq.zero;
  if (perChannel) scaleDims = [bq.rows];
  else if (p.orient === 'cols') {
    scaleDims = [bq.nBlocks, bq.rows];
    scale = transpose(bq.scale, bq.rows, bq.nBlocks);
    zero = transpose(bq.zero, bq.rows, bq.nBlocks);
  } else scaleDims = [bq.rows, bq.nBlocks, ...dims.slice(2)]; // a 1 x 1 Conv keeps its trailing 1s
  const { inputs, zeroPointBytes } = scalesAndZeros(c, p, `${name}_scale`, scale, scaleDims, () => ({
    data: packTensorCodes(zero, p.bits),
    dims: scaleDims,
    type: qType,
  }));
  const attrs: Record<string, number> = { axis };
  if (!perChannel) attrs.block_size = p.blockSize;
  c.front.push(
    makeNode('DequantizeLinear', [qName, ...inputs], [name], {
      name: c.fresh(`${name}_DequantizeLinear`),
      domain: c.dqDomain,
      attrs,
    }),
  );
  if (p.bits === 4) requireIrVersion(c.proto, 10);
  if (p.a.element) requireIrVersion(c.proto, 9);
  return { op: 'DequantizeLinear', domain: c.dqDomain, codeBytes: codes.length, zeroPointBytes };
}

/** One plan's stored weight: its tensors and nodes added to `c`, and what it stores. */
function emitWeight(c: EmitContext, p: WeightPlan): ExportedWeight {
  const name = p.w.name;
  const base = { name, domain: '', bits: p.bits, dims: p.w.dims, originalBytes: p.w.byteLength };
  if ('packed' in p) {
    const b = emitPackedDecode(c.packed, p.packed, name, p.w.dims, p.orient);
    return { ...base, scheme: 'packed', op: 'packed', blockSize: p.packed.groupSize, ...b };
  }
  if ('castTo' in p) {
    // the 16-bit tensor under a fresh name, widened to float32 under the weight's own name
    const stored = c.fresh(`${name}_${p.castTo === 'float16' ? 'f16' : 'bf16'}`);
    scaleTensors(c.fresh, stored, p.dequant, p.w.dims, p.castTo, c.inits, c.front, name);
    return {
      ...base,
      scheme: 'cast',
      op: 'Cast',
      bits: 16,
      blockSize: 0,
      codeBytes: 2 * p.dequant.length,
      scaleBytes: 0,
      zeroPointBytes: 0,
    };
  }
  const e =
    p.a.scheme === 'matmulnbits'
      ? emitMatMulNBits(c, p)
      : p.a.scheme === 'gatherblockquantized'
        ? emitGatherBlockQuantized(c, p)
        : emitDequantizeLinear(c, p);
  const bq = p.bq;
  return {
    ...base,
    scheme: p.a.scheme as Exclude<ExportScheme, 'keep'>,
    op: e.op,
    domain: e.domain,
    blockSize: bq.nBlocks === 1 && p.a.scheme === 'dequantizelinear' ? bq.cols : p.blockSize,
    codeBytes: e.codeBytes,
    scaleBytes: bq.scale.length * ((p.a.scaleType ?? 'float32') === 'float32' ? 4 : 2),
    zeroPointBytes: e.zeroPointBytes,
  };
}

/**
 * Builds the quantized model (a new OnnxModel; the input is not changed).
 * @example
 *   const { model: q, weights } = await quantizeOnnxWeights(model, {
 *     'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 32 },
 *     'embed.weight': { scheme: 'gatherblockquantized', bits: 8, blockSize: 64 },
 *   }, { simulation: true });
 *   const bytes = writeOnnx(q);
 * @throws MixqError naming the weight when its use or configuration cannot be exported.
 */
export async function quantizeOnnxWeights(
  model: OnnxModel,
  assignments: WeightAssignments,
  opts: { simulation?: boolean } = {},
): Promise<QuantizedOnnx> {
  const out = cloneOnnxModel(model);
  const { plans, graph } = await planAll(out, assignments);
  let simulation: OnnxModel | undefined;
  if (opts.simulation) {
    // the same plans written into a float copy: fakeQuantizeOnnxWeights without quantizing twice
    simulation = cloneOnnxModel(model);
    const byName = new Map(
      listWeights(simulation)
        .filter((w) => w.path === 'graph')
        .map((w) => [w.name, w]),
    );
    for (const p of plans) setTensorFloat32(byName.get(p.w.name)!.tensor, p.dequant);
  }
  const proto = out.proto;
  const notes: string[] = [];
  const dqDomain = dequantizeDomain(proto, plans, notes, model.source);
  // new tensor / node names: `<weight>_<role>`, suffixed _1, _2, ... if the model already uses the name
  const fresh = freshNamer(graph);
  const inits: TensorProto[] = [];
  const front: NodeProto[] = [];
  const c: EmitContext = {
    proto,
    graph,
    fresh,
    inits,
    front,
    replaced: new Map(),
    packed: { fresh, inits, front, shared: new Map() },
    dqDomain,
  };
  const exported: ExportedWeight[] = [];
  for (const p of plans) {
    removeWeight(graph, p.w);
    exported.push(emitWeight(c, p));
  }
  graph.node = [...front, ...graph.node.map((n) => c.replaced.get(n) ?? n)];
  graph.initializer = [...graph.initializer, ...inits];
  if (exported.some((w) => w.domain === MS)) requireOpset(proto, MS, 1);
  return simulation
    ? { model: out, weights: exported, notes, simulation }
    : { model: out, weights: exported, notes };
}

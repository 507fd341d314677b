/**
 * The three names of one quantization choice, and the maps between them:
 * - a sensitivity candidate (src/analysis/sensitivity/candidates.ts): quantizer in the row-matrix layout
 *   [rows = output channels, cols = reduction] plus an algorithm, with an id the allocator uses;
 * - a plan scheme (src/plan/schema.ts): the same quantizer stated in the weight's own tensor layout, as a
 *   person reads and edits it in plan.json;
 * - an ONNX export assignment (src/export/onnx/quantize.ts): the operator and byte layout that stores it.
 *
 * Round trips are exact: rowCandidate(planScheme(c, L), L) quantizes exactly like c, and the exported
 * weight of onnxAssignment(s, L) dequantizes to the same values as the simulation (tests check both).
 */
import {
  type SensitivityCandidate,
  type SensitivityAlgorithm,
  candidateCost,
  elementBitsOf,
  fullCandidates,
  ggmlCandidates,
  salientCandidate,
} from '../analysis/sensitivity/candidates.ts';
import type { RowLayout } from '../analysis/sensitivity/layout.ts';
import { getBlockType } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import { getFormat } from '../formats/index.ts';
import type { PrequantizedBlocks, WeightAssignment } from '../export/onnx/quantize.ts';
import { packedStorage } from '../export/onnx/packed.ts';
import type { GptqResult } from '../quant/algorithms/gptq.ts';
import { codeToGrid } from '../quant/element.ts';
import { quantizerGrid } from '../quant/qparams.ts';
import { rtn } from '../quant/algorithms/rtn.ts';
import type { PlanScheme } from '../plan/schema.ts';
import type { Granularity } from '../quant/granularity.ts';
import type { QuantizerConfig, ScaleRule } from '../quant/qparams.ts';

/**
 * Candidates onnxruntime runs natively: int8 / FP8 E4M3 / int4 per channel, int4 g128 / g32, int2 g32 (RTN,
 * and GPTQ for the grouped int4 / int2), and the int4 / int2 ones with the clipping search.
 */
export const DEPLOY_CANDIDATE_IDS: readonly string[] = [
  'int8-pc-rtn',
  'fp8_e4m3-pc-rtn',
  'int4-pc-rtn',
  'int4-g128-rtn',
  'int4-g128-gptq',
  'int4-g32-rtn',
  'int4-g32-gptq',
  'int2-g32-rtn',
  'int2-g32-gptq',
  // the same with the clipping search (stored as codes)
  'int4-pc-rtn-mse',
  'int4-g128-rtn-mse',
  'int4-g32-rtn-mse',
  'int2-g32-rtn-mse',
  'int2-g32-gptq-mse',
];

/**
 * Codes and parameters computed here (GPTQ's, or RTN's with a clipping search) as the ONNX exporter takes
 * them (rows = output channels, blocks along the reduction): the grid value of every code, the stored
 * scales and the integer zero points.
 */
export function prequantizedBlocks(
  r: Pick<GptqResult, 'codes' | 'scale' | 'zero' | 'offset'> & { readonly perm?: Int32Array | null },
  q: QuantizerConfig,
): PrequantizedBlocks {
  if (r.perm)
    throw new MixqError('act-order GPTQ groups are not contiguous', { field: 'actOrder', expected: 'false' });
  const grid = quantizerGrid(q);
  const zero = new Int32Array(r.zero.length);
  for (let i = 0; i < zero.length; i++) {
    const z = r.zero[i]!;
    if (!Number.isInteger(z) || r.offset[i] !== 0)
      throw new MixqError(`GPTQ group ${i} has zero ${z}, offset ${r.offset[i]}`, {
        field: 'zero',
        expected: 'an integer zero point and no offset (integer grids)',
      });
    zero[i] = z;
  }
  return { q: Int32Array.from(r.codes, (c) => codeToGrid(grid, c)), scale: r.scale, zero };
}

/**
 * RTN of a row-layout candidate with its own scale rule, with the codes the ONNX exporter takes (for
 * searched ranges, which the exporter's own min-max quantizer would not reproduce).
 */
export function rtnWithBlocks(
  W: Float32Array,
  L: RowLayout,
  c: SensitivityCandidate,
): { Q: Float32Array; blocks: PrequantizedBlocks } {
  const r = rtn(W, [L.rows, L.cols], { quantizer: c.quantizer });
  return {
    Q: r.Q,
    blocks: prequantizedBlocks({ codes: r.quantized.codes, ...r.quantized.params }, c.quantizer),
  };
}

/**
 * Whether a scheme's ranges come from a search (not min-max): the ONNX exporter, which quantizes
 * min-max itself, then needs the codes (prequantizedBlocks).
 */
export function hasScaleSearch(s: { readonly scaleRule?: ScaleRule } | SensitivityCandidate): boolean {
  const rule = 'quantizer' in s ? s.quantizer.scaleRule : s.scaleRule;
  return rule !== undefined && rule.kind !== 'minmax';
}

/**
 * The schemes the output layer (a classifier's logits) may take: none with a clipping search while another
 * candidate remains (undefined: no restriction). Clipping shrinks each class's largest weights, and the few
 * calibration samples hold few of the classes. PP-OCRv4's CTC head alone at INT2 g32 GPTQ: CER +0.07 points
 * over fp32 with min-max ranges, +0.32 with the search (paired 95% interval +0.18..+0.46 over the 296
 * evaluation lines), though the search's predicted damage was smaller.
 */
export function outputLayerSchemes(
  candidates: readonly { readonly scheme: string }[],
  byId: ReadonlyMap<string, SensitivityCandidate>,
): string[] | undefined {
  const plain = candidates.filter((c) => {
    const cand = byId.get(c.scheme);
    return cand !== undefined && !hasScaleSearch(cand);
  });
  return plain.length > 0 && plain.length < candidates.length ? plain.map((c) => c.scheme) : undefined;
}

/** Group size of a row-layout candidate along the reduction (cols), or undefined for per-channel. */
function groupSizeOf(q: QuantizerConfig, cols: number): number | undefined {
  const g = q.granularity;
  if (g.kind === 'axis') return undefined;
  if (g.kind === 'group') return g.size >= cols ? undefined : g.size;
  throw new MixqError(`granularity '${g.kind}' has no row-layout meaning`, {
    field: 'granularity',
    expected: 'axis or group',
  });
}

/**
 * Whether a candidate's row-layout groups can be stated in the tensor's own layout: always for
 * matrices and 1 x 1 convolutions; for larger kernels only per-channel (a run of the flattened
 * [in, kh, kw] reduction is not a run along one tensor axis).
 */
export function representable(c: SensitivityCandidate, L: RowLayout): boolean {
  return L.kernel === 1 || groupSizeOf(c.quantizer, L.cols) === undefined;
}

/** The candidate's quantizer in the tensor's layout, as a plan records it. */
export function planScheme(c: SensitivityCandidate, L: RowLayout): PlanScheme {
  if (!representable(c, L))
    throw new MixqError(`candidate ${c.id} groups a ${L.dims.join('x')} kernel across kernel positions`, {
      field: c.id,
      expected: 'a per-channel candidate for convolutions with kernels larger than 1 x 1',
    });
  const q = c.quantizer;
  if (c.blockType)
    return {
      format: q.element.name,
      granularity: {
        kind: 'group',
        axis: L.outputAxis === 1 ? 0 : 1,
        size: getBlockType(c.blockType).blockSize,
      },
      algorithm: 'imatrix',
      scaleFormat: 'fp16',
      symmetric: q.symmetric,
      blockType: c.blockType,
    };
  const size = groupSizeOf(q, L.cols);
  // MatMul B [K, N]: outputs on axis 1, reduction on axis 0. Output-first tensors: outputs on axis 0,
  // reduction on axis 1 (the whole reduction for a matrix, the input channels of a 1 x 1 conv).
  const outAxis = L.outputAxis;
  const redAxis = outAxis === 1 ? 0 : 1;
  const granularity: Granularity =
    size === undefined ? { kind: 'axis', axis: outAxis } : { kind: 'group', axis: redAxis, size };
  return {
    format: q.element.name,
    granularity,
    algorithm: c.algorithm,
    scaleFormat: q.scaleFormat ?? 'fp32',
    symmetric: q.symmetric,
    ...(q.scaleRule && q.scaleRule.kind !== 'minmax' ? { scaleRule: q.scaleRule } : {}),
    ...(c.salient
      ? {
          outliers: {
            kind: 'salient' as const,
            criterion: c.salient.criterion,
            fraction: c.salient.fraction,
          },
        }
      : {}),
  };
}

/** The salient fraction a plan's outliers ask for, refusing what mixq cannot apply (with the reason). */
function salientFraction(s: PlanScheme, field: string): number | undefined {
  const o = s.outliers;
  if (o === undefined) return undefined;
  if (o.kind !== 'salient')
    throw new MixqError(`outliers '${o.kind}' are not applied by mixq apply`, {
      field: `${field}.outliers.kind`,
      expected: "'salient' (int8-decomposition is not offered as a candidate)",
    });
  if (s.blockType !== undefined || s.algorithm !== 'rtn')
    throw new MixqError(
      `salient outliers with ${s.blockType !== undefined ? `ggml block type ${s.blockType}` : `algorithm '${s.algorithm}'`}`,
      { field: `${field}.outliers`, expected: "salient outliers on an 'rtn' scheme without blockType" },
    );
  if (o.count !== undefined)
    throw new MixqError('salient outliers given as a count', {
      field: `${field}.outliers.count`,
      expected: 'a fraction in (0, 1) instead of a count',
    });
  const fraction = o.fraction ?? 0.01;
  if (!(fraction > 0 && fraction < 1))
    throw new MixqError(`salient fraction ${fraction}`, {
      field: `${field}.outliers.fraction`,
      expected: 'a number in (0, 1)',
    });
  return fraction;
}

let schemeNames: Map<string, string> | undefined;

function quantizerKey(q: QuantizerConfig): string {
  const g = q.granularity;
  const sf = q.scaleFormat ?? 'fp32';
  return [
    q.element.name,
    g.kind === 'group' ? `g${g.size}@${g.axis}` : g.kind === 'axis' ? `axis${g.axis}` : g.kind,
    q.symmetric,
    typeof sf === 'string' ? sf : JSON.stringify(sf),
  ].join('|');
}

/** The candidate set's scheme name of a quantizer without a scale rule ('nvfp4', 'int4-g32'), if any. */
function knownScheme(q: QuantizerConfig): string | undefined {
  schemeNames ??= new Map(fullCandidates().map((c) => [quantizerKey(c.quantizer), c.scheme] as const));
  return schemeNames.get(quantizerKey(q));
}

/** The row-layout candidate that quantizes exactly like a plan scheme (the inverse of planScheme). */
export function rowCandidate(s: PlanScheme, L: RowLayout, field = 'scheme'): SensitivityCandidate {
  const fraction = salientFraction(s, field);
  if (s.blockType !== undefined) {
    const c = ggmlCandidates().find((x) => x.blockType === s.blockType?.toUpperCase());
    if (!c)
      throw new MixqError(`unknown ggml block type '${s.blockType}'`, {
        field: `${field}.blockType`,
        expected: ggmlCandidates()
          .map((x) => x.blockType)
          .join(', '),
      });
    return c;
  }
  if (s.algorithm !== 'rtn' && s.algorithm !== 'gptq' && s.algorithm !== 'awq')
    throw new MixqError(`algorithm '${s.algorithm}' is not applied by mixq apply yet`, {
      field: `${field}.algorithm`,
      expected: 'rtn, gptq or awq',
    });
  const element = getFormat(s.format);
  const g = s.granularity;
  const outAxis = L.outputAxis;
  const redAxis = outAxis === 1 ? 0 : 1;
  let granularity: QuantizerConfig['granularity'];
  if (g.kind === 'axis' && g.axis === outAxis) granularity = { kind: 'axis', axis: 0 };
  else if (g.kind === 'group' && g.axis === redAxis && (L.kernel === 1 || g.size >= L.cols))
    granularity = g.size >= L.cols ? { kind: 'axis', axis: 0 } : { kind: 'group', axis: 1, size: g.size };
  else
    throw new MixqError(
      `granularity ${JSON.stringify(g)} is not supported for a [${L.dims.join(', ')}] weight`,
      {
        field: `${field}.granularity`,
        expected: `{ kind: 'axis', axis: ${outAxis} } or { kind: 'group', axis: ${redAxis}, size }`,
      },
    );
  const quantizer: QuantizerConfig = {
    element,
    granularity,
    symmetric: s.symmetric,
    scaleFormat: s.scaleFormat,
  };
  const algorithm: SensitivityAlgorithm = s.algorithm;
  const gs = granularity.kind === 'group' ? `g${granularity.size}` : 'pc';
  // named as the candidate set names the same quantizer ('nvfp4', 'int4-g32': uint4 codes), else by its
  // element and granularity
  const scheme =
    knownScheme(quantizer) ?? `${element.kind === 'int' ? `int${element.bits}` : element.name}-${gs}`;
  const rule = s.scaleRule?.kind === 'minmax' ? undefined : s.scaleRule;
  if (rule && (element.kind !== 'int' || algorithm === 'awq'))
    throw new MixqError(`scale rule '${rule.kind}' on a ${element.name} ${algorithm} scheme`, {
      field: `${field}.scaleRule`,
      expected: 'an integer format with rtn or gptq (or no scaleRule)',
    });
  const c: SensitivityCandidate = {
    id: `${scheme}-${algorithm}${rule ? `-${rule.kind}` : ''}`,
    scheme,
    quantizer: rule ? { ...quantizer, scaleRule: rule } : quantizer,
    algorithm,
    elementBits: elementBitsOf(quantizer),
  };
  return fraction === undefined || s.outliers?.kind !== 'salient'
    ? c
    : salientCandidate(c, fraction, s.outliers.criterion);
}

/** Exact storage of a plan scheme on a weight (salient outliers: dense part + CSR side matrix). */
export function schemeCost(s: PlanScheme, L: RowLayout): { bits: number; bytes: number } {
  return candidateCost(rowCandidate(s, L), L.rows, L.cols);
}

/**
 * How onnxruntime stores a scheme with its own quantized operators, for a weight read by `consumer` ('MatMul:1', 'Conv:1', ...):
 * FP16 / BF16 without a scale -> the 16-bit tensor and a Cast (any consumer; bfloat16 from opset 13);
 * MatMul B -> MatMulNBits (asymmetric 2/4/8-bit blocks of 16..256) or DequantizeLinear (per channel, or
 * symmetric); Gemm B / Conv W -> DequantizeLinear (per channel; blocks along the input channels for 1 x 1
 * convolutions; blocks need `opset` >= 13, which the exporter raises to 21). `opset` is the one the file can
 * have (modelInfo: 21 for older models whose operators upgrade exactly, export/onnx/opset.ts). undefined = no native operator
 * (int3/5/6/7, floats other than FP8 per channel, AWQ for now; FP4 / NVFP4 / MXFP4: onnxruntime 1.30 has no
 * FLOAT4E2M1 kernel, see FP4_REFUSAL in export/onnx/quantize.ts). GPTQ schemes map like RTN ones; their
 * codes come from GPTQ (prequantizedBlocks).
 */
function nativeAssignment(
  s: PlanScheme,
  L: RowLayout,
  consumer: string,
  opset = 21,
): WeightAssignment | undefined {
  // GPTQ weights are stored like RTN ones; the caller passes GPTQ's codes as `quantized`.
  if (
    (s.algorithm !== 'rtn' && s.algorithm !== 'gptq') ||
    s.blockType !== undefined ||
    s.outliers !== undefined
  )
    return undefined;
  const e = getFormat(s.format);
  // FP16 / BF16 weights without a scale: stored as such and widened by a Cast (any consumer)
  if (e.name === 'fp16' || e.name === 'bf16') {
    if (s.algorithm !== 'rtn' || s.scaleFormat !== 'none' || !s.symmetric) return undefined;
    if (e.name === 'bf16' && opset < 13) return undefined;
    return { scheme: 'cast', castTo: e.name === 'fp16' ? 'float16' : 'bfloat16' };
  }
  const g0 = s.granularity;
  // FP8 per output channel: DequantizeLinear with float8 codes (opset 19+, raised to 21)
  if (e.name === 'fp8_e4m3fn' || e.name === 'fp8_e5m2') {
    const perChannel = g0.kind === 'axis' || (g0.kind === 'group' && g0.size >= L.cols);
    if (s.algorithm !== 'rtn' || !s.symmetric || !perChannel || opset < 13) return undefined;
    if (s.scaleFormat !== 'fp32' && s.scaleFormat !== 'fp16') return undefined;
    const op0 = consumer.split(':')[0];
    if (op0 !== 'MatMul' && op0 !== 'Conv' && op0 !== 'Gemm') return undefined;
    return {
      scheme: 'dequantizelinear',
      bits: 8,
      element: e.name,
      symmetric: true,
      scaleType: s.scaleFormat === 'fp16' ? 'float16' : 'float32',
      granularity: 'channel',
    };
  }
  if (e.kind !== 'int' || ![2, 4, 8].includes(e.bits)) return undefined;
  // the exporter's grids: symmetric = signed codes (DequantizeLinear), asymmetric = unsigned codes
  if (e.signed !== s.symmetric || e.narrow) return undefined;
  if (s.scaleFormat !== 'fp32' && s.scaleFormat !== 'fp16') return undefined;
  const bits = e.bits as 2 | 4 | 8;
  const scaleType = s.scaleFormat === 'fp16' ? 'float16' : 'float32';
  const g = s.granularity;
  const perChannel = g.kind === 'axis' || (g.kind === 'group' && g.size >= L.cols);
  const size = g.kind === 'group' ? g.size : 0;
  const pow2Block = size >= 16 && size <= 256 && (size & (size - 1)) === 0;
  // blocked DequantizeLinear needs opset 21; the exporter raises models that upgrade exactly
  const blockedDq = opset >= 13;
  const op = consumer.split(':')[0];
  if (op === 'MatMul' && L.outputAxis === 1) {
    if (perChannel)
      return bits === 2
        ? undefined
        : { scheme: 'dequantizelinear', bits, symmetric: s.symmetric, scaleType, granularity: 'channel' };
    if (!pow2Block) return undefined;
    if (!s.symmetric) return { scheme: 'matmulnbits', bits, blockSize: size, symmetric: false, scaleType };
    return bits === 2 || !blockedDq
      ? undefined
      : { scheme: 'dequantizelinear', bits, blockSize: size, symmetric: true, scaleType };
  }
  if (bits === 2) return undefined;
  if (op === 'Conv' || op === 'Gemm') {
    if (perChannel)
      return { scheme: 'dequantizelinear', bits, symmetric: s.symmetric, scaleType, granularity: 'channel' };
    if (op === 'Conv' && L.kernel === 1 && pow2Block && blockedDq)
      return {
        scheme: 'dequantizelinear',
        bits,
        blockSize: size,
        symmetric: s.symmetric,
        scaleType,
        granularity: 'block',
      };
    if (op === 'Gemm' && pow2Block && blockedDq)
      return { scheme: 'dequantizelinear', bits, blockSize: size, symmetric: s.symmetric, scaleType };
  }
  return undefined;
}

/**
 * How a plan scheme is stored in ONNX: a native operator (nativeAssignment) when one takes it, else
 * bit-plane packed codes decoded at load (export/onnx/packed.ts: INT3/5/6/7, FP6, FP4, MXFP4/6/8, NVFP4,
 * NF4; needs opset 18, which the exporter raises models to when they upgrade exactly). undefined: AWQ,
 * salient outliers and ggml block types, GPTQ on non-integer grids, or `native` only with no native
 * operator.
 */
export function onnxAssignment(
  s: PlanScheme,
  L: RowLayout,
  consumer: string,
  opset = 21,
  native = false,
): WeightAssignment | undefined {
  const a = nativeAssignment(s, L, consumer, opset);
  if (a || native) return a;
  if (
    (s.algorithm !== 'rtn' && s.algorithm !== 'gptq') ||
    s.blockType !== undefined ||
    s.outliers !== undefined ||
    opset < 18
  )
    return undefined;
  const op = consumer.split(':')[0];
  if (op !== 'MatMul' && op !== 'Gemm' && op !== 'Conv' && op !== 'Gather') return undefined;
  const c = rowCandidate(s, L);
  // GPTQ and searched ranges arrive as integer codes (prequantizedBlocks)
  if ((s.algorithm === 'gptq' || hasScaleSearch(s)) && c.quantizer.element.kind !== 'int') return undefined;
  return { scheme: 'packed', quantizer: c.quantizer };
}

/**
 * Exact bytes the ONNX exporter stores for a weight under an assignment (codes, scales, zero points; what
 * ExportedWeight reports): MatMulNBits pads every column's last block to the block size and packs zero
 * points per row; DequantizeLinear packs codes and zero points over the whole tensor.
 */
export function onnxStorage(a: WeightAssignment, L: RowLayout): number {
  const bits = a.bits ?? 4;
  const sw = (a.scaleType ?? 'float32') === 'float16' ? 2 : 4;
  const symmetric = a.symmetric ?? true;
  const rows = L.rows;
  const cols = L.cols;
  const packed = (n: number) => Math.ceil((n * bits) / 8);
  if (a.scheme === 'matmulnbits') {
    const bs = a.blockSize ?? 32;
    const nb = Math.ceil(cols / bs);
    return rows * nb * ((bs * bits) / 8) + rows * nb * sw + (symmetric ? 0 : rows * packed(nb));
  }
  if (a.scheme === 'cast') return 2 * rows * cols;
  if (a.scheme === 'packed' && a.quantizer) {
    const b = packedStorage(rows, cols, a.quantizer);
    return b.codeBytes + b.scaleBytes + b.zeroPointBytes;
  }
  if (a.scheme !== 'dequantizelinear')
    throw new MixqError(`no storage formula for scheme '${a.scheme}'`, {
      field: 'scheme',
      expected: 'matmulnbits, dequantizelinear, packed or cast',
    });
  const channel =
    a.granularity === 'channel' || (L.outputAxis === 0 && L.kernel > 1 && a.granularity !== 'block');
  const nb = channel ? 1 : Math.ceil(cols / Math.min(a.blockSize ?? 32, cols));
  return packed(rows * cols) + rows * nb * sw + (symmetric ? 0 : packed(rows * nb));
}

/**
 * How a scheme (src/quant/scheme.ts, on a weight's tensor axes) is stored in ONNX: the operator and byte
 * layout of each weight (WeightAssignment for quantizeOnnxWeights), the exact bytes stored, and the codes
 * of schemes the exporter cannot reproduce with its own min-max quantizer (GPTQ, searched ranges).
 * The ONNX output targets of `mixq quantize` (src/pipeline/quantize/targets.ts) are built on these.
 */
import { MixqError } from '../../core/errors.ts';
import { getFormat } from '../../formats/index.ts';
import type { GptqResult } from '../../quant/algorithms/gptq.ts';
import { rtn } from '../../quant/algorithms/rtn.ts';
import { codeToGrid } from '../../quant/element.ts';
import type { RowLayout } from '../../quant/layout.ts';
import { type QuantizerConfig, quantizerGrid } from '../../quant/qparams.ts';
import { hasScaleSearch, quantizerOf, type Scheme, schemeOnRows } from '../../quant/scheme.ts';
import { cloneOnnxModel } from '../../io/onnx/clone.ts';
import type { OnnxModel } from '../../io/onnx/read.ts';
import { setTensorFloat32 } from '../../io/onnx/tensor-data.ts';
import { listWeights } from '../../io/onnx/weights.ts';
import { inlineExternalData } from '../../io/onnx/inline.ts';
import { packedStorage } from './packed.ts';
import {
  type PrequantizedBlocks,
  type QuantizedOnnx,
  quantizeOnnxWeights,
  type WeightAssignment,
} from './quantize.ts';

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
 * RTN of a row-frame scheme with its own scale rule, with the codes the ONNX exporter takes (for
 * searched ranges, which the exporter's own min-max quantizer would not reproduce).
 */
export function rtnWithBlocks(
  W: Float32Array,
  L: RowLayout,
  s: Scheme,
): { Q: Float32Array; blocks: PrequantizedBlocks } {
  const q = quantizerOf(s);
  const r = rtn(W, [L.rows, L.cols], { quantizer: q });
  return { Q: r.Q, blocks: prequantizedBlocks({ codes: r.quantized.codes, ...r.quantized.params }, q) };
}

/**
 * How onnxruntime stores a scheme with its own quantized operators, for a weight read by `consumer` ('MatMul:1', 'Conv:1', ...):
 * FP16 / BF16 without a scale -> the 16-bit tensor and a Cast (any consumer; bfloat16 from opset 13);
 * MatMul B -> MatMulNBits (asymmetric 2/4/8-bit blocks of 16..256) or DequantizeLinear (per channel, or
 * symmetric); Gather tables (embeddings) -> GatherBlockQuantized (asymmetric 4/8-bit blocks) or
 * DequantizeLinear (per row, or symmetric blocks); Gemm B / Conv W -> DequantizeLinear (per channel; blocks along the input channels for 1 x 1
 * convolutions; blocks need `opset` >= 13, which the exporter raises to 21). `opset` is the one the file can
 * have (21 for older models whose operators upgrade exactly, opset.ts). undefined = no native operator
 * (int3/5/6/7, floats other than FP8 per channel, AWQ for now; FP4 / NVFP4 / MXFP4: onnxruntime 1.30 has no
 * FLOAT4E2M1 kernel, see FP4_REFUSAL in export/onnx/quantize.ts). GPTQ schemes map like RTN ones; their
 * codes come from GPTQ (prequantizedBlocks).
 */
function nativeAssignment(
  s: Scheme,
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
    if (op0 !== 'MatMul' && op0 !== 'Conv' && op0 !== 'Gemm' && op0 !== 'Gather') return undefined;
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
  // Gather table [V, D] (embedding): rows = V, blocks along D. Per row: DequantizeLinear on axis 0;
  // asymmetric blocks: GatherBlockQuantized (uint codes and zero points, low-bit in memory at run time);
  // symmetric blocks: blocked DequantizeLinear (signed codes, zero 0: the simulation's grid exactly)
  if (op === 'Gather' && L.outputAxis === 0 && L.dims.length === 2) {
    if (perChannel)
      return { scheme: 'dequantizelinear', bits, symmetric: s.symmetric, scaleType, granularity: 'channel' };
    if (!pow2Block || (L.cols * bits) % 8 !== 0) return undefined;
    if (!s.symmetric)
      return { scheme: 'gatherblockquantized', bits, blockSize: size, symmetric: false, scaleType };
    return blockedDq
      ? { scheme: 'dequantizelinear', bits, blockSize: size, symmetric: true, scaleType }
      : undefined;
  }
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
 * How a scheme (on the weight's tensor axes) is stored in ONNX: a native operator (nativeAssignment) when one takes it, else
 * bit-plane packed codes decoded at load (export/onnx/packed.ts: INT3/5/6/7, FP6, FP4, MXFP4/6/8, NVFP4,
 * NF4; needs opset 18, which the exporter raises models to when they upgrade exactly). undefined: AWQ,
 * salient outliers and ggml block types, GPTQ on non-integer grids, or `native` only with no native
 * operator.
 */
export function onnxAssignment(
  s: Scheme,
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
  const quantizer = quantizerOf(schemeOnRows(s, L));
  // GPTQ and searched ranges arrive as integer codes (prequantizedBlocks)
  if ((s.algorithm === 'gptq' || hasScaleSearch(s)) && quantizer.element.kind !== 'int') return undefined;
  return { scheme: 'packed', quantizer };
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
  if (a.scheme === 'gatherblockquantized') {
    // uint8 data [V, D * bits / 8], scales [V, nBlocks], zero points packed per row
    const nb = Math.ceil(cols / (a.blockSize ?? 32));
    return packed(rows * cols) + rows * nb * sw + (symmetric ? 0 : rows * packed(nb));
  }
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

/** A weight of a plan as the ONNX exporter takes it. */
export interface PlannedOnnxWeight {
  readonly name: string;
  /** The scheme on the weight's tensor axes (as a plan states it). */
  readonly scheme: Scheme;
  readonly layout: RowLayout;
  /** First consumer, e.g. 'MatMul:1'. */
  readonly consumer: string;
  /** Codes the exporter cannot recompute (GPTQ's, searched ranges'). */
  readonly codes?: PrequantizedBlocks;
}

/**
 * The deployable ONNX model of planned weights (quantizeOnnxWeights on a copy of `model`, which is not
 * changed): every scheme must map to a native operator or packed storage at `opset` (the one the output
 * can have, onnxAssignment); `floats` replaces float initializers first (corrected biases). Errors name
 * `weights[i]` of `source`.
 */
export async function quantizePlanned(
  model: OnnxModel,
  weights: readonly PlannedOnnxWeight[],
  opts: {
    readonly opset: number;
    readonly floats?: ReadonlyMap<string, Float32Array>;
    readonly source?: string;
  },
): Promise<QuantizedOnnx> {
  const source = opts.source ?? 'plan';
  const assignments: Record<string, WeightAssignment> = {};
  for (const [i, w] of weights.entries()) {
    const a = onnxAssignment(w.scheme, w.layout, w.consumer, opts.opset);
    if (!a)
      throw new MixqError(`scheme ${JSON.stringify(w.scheme)} cannot be stored in ONNX for '${w.name}'`, {
        source,
        field: `weights[${i}].scheme`,
        expected:
          'an RTN or GPTQ element format without salient outliers (AWQ and ggml block types are not exported to ONNX)',
      });
    if ((w.scheme.algorithm === 'gptq' || hasScaleSearch(w.scheme)) && !w.codes)
      throw new MixqError(
        `weight '${w.name}' (${w.scheme.algorithm === 'gptq' ? 'GPTQ' : 'searched ranges'}) needs its codes to be exported`,
        { source, field: `weights[${i}]` },
      );
    assignments[w.name] = w.codes ? { ...a, quantized: w.codes } : a;
  }
  const copy = cloneOnnxModel(model);
  if (opts.floats && opts.floats.size > 0) {
    const dense = new Map(listWeights(copy).map((w) => [w.name, w] as const));
    for (const [name, v] of opts.floats) {
      const w = dense.get(name);
      if (!w || w.sparse)
        throw new MixqError(`no dense float initializer '${name}' to replace`, {
          source: model.source,
          field: name,
        });
      setTensorFloat32(w.tensor, v, w.dims);
    }
  }
  const q = await quantizeOnnxWeights(copy, assignments);
  await inlineExternalData(q.model);
  return q;
}

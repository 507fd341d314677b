/**
 * What a weight looks like before the kernels prepare it: the bytes as a file stores them.
 *
 * - 'float32': a float32 row matrix (any model in memory).
 * - 'ggml':    a GGUF tensor's bytes exactly as in the file (F32, F16, BF16 or a ggml block type), rows of
 *              `cols` values; prepared in place, without repacking.
 * - 'mixq':    mixq's quantized safetensors (docs/safetensors-quantized.md): `codes` is W.qweight (one
 *              LSB-first bit stream over the row-major weight), or the bit planes of mixq's ONNX packed
 *              export (`codeLayout: 'planes'`, src/export/onnx/packed.ts); scales, zero codes, offsets as
 *              the file stores them. `mixqSafetensorsSource` builds one from a safetensors entry.
 *
 * Weights are row matrices [rows = outputs, cols = the reduction K]; a safetensors `[out, in]` weight is
 * one as it is.
 */
import { MixqError } from '../core/errors.ts';
import type { FormatSpec } from '../formats/spec.ts';

export interface Float32Source {
  readonly kind: 'float32';
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

export interface GgmlSource {
  readonly kind: 'ggml';
  /** ggml type name (blocks/registry.ts BLOCK_TYPES): 'F32', 'F16', 'BF16', 'Q8_0', 'Q4_K', ... */
  readonly type: string;
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
}

/** Scale storage of a mixq weight (src/quant/scale-format.ts ScaleFormat). */
export type MixqScaleFormat =
  | 'fp32'
  | 'fp16'
  | 'bf16'
  | 'e8m0'
  | 'fp8_e4m3fn'
  | 'none'
  | { readonly kind: 'double'; readonly subBits: number; readonly superGroup: number };

export interface MixqSource {
  readonly kind: 'mixq';
  readonly rows: number;
  readonly cols: number;
  /** Element format: a name (getFormat / parseFormat) or a spec. */
  readonly element: string | FormatSpec;
  /**
   * Scales along K: 'row' (one per row), 'tensor' (one for the matrix) or a group size (16, or a multiple
   * of 32; a group of at least `cols` is one per row).
   */
  readonly groups: 'row' | 'tensor' | number;
  readonly scaleFormat: MixqScaleFormat;
  readonly symmetric: boolean;
  /** Element codes: W.qweight (stream) or ONNX bit planes. */
  readonly codes: Uint8Array;
  readonly codeLayout?: 'stream' | 'planes';
  /** W.scales: float32 / float16 / bfloat16 little-endian, e8m0 or e4m3 codes, packed double sub-scales. */
  readonly scales?: Uint8Array;
  /** fp8_e4m3fn: the per-tensor factor (W.global_scale). */
  readonly globalScale?: number;
  /** double: W.super_scales (float16). */
  readonly superScales?: Uint8Array;
  /** Asymmetric integer formats: W.zeros (zero codes, one LSB-first stream of `bits` each). */
  readonly zeros?: Uint8Array;
  /** Asymmetric table formats: W.offsets (float16). */
  readonly offsets?: Uint8Array;
}

export type WeightSource = Float32Source | GgmlSource | MixqSource;

/** The parts of a quantized safetensors entry (`quantization_config.weights[name]`) a kernel needs. */
export interface MixqSafetensorsEntry {
  readonly format: string;
  readonly granularity:
    | { readonly kind: 'tensor' }
    | { readonly kind: 'axis'; readonly axis: number }
    | { readonly kind: 'group'; readonly axis: number; readonly size: number }
    | { readonly kind: 'block'; readonly rows: number; readonly cols: number };
  readonly scale_format:
    | 'fp32'
    | 'fp16'
    | 'bf16'
    | 'e8m0'
    | 'fp8_e4m3fn'
    | 'none'
    | { readonly kind: 'double'; readonly sub_bits: number; readonly super_group: number };
  readonly symmetric: boolean;
  readonly shape: readonly number[];
}

/** The tensors of one quantized safetensors weight W (W.qweight, W.scales, ...), as bytes. */
export interface MixqSafetensorsTensors {
  readonly qweight: Uint8Array;
  readonly scales?: Uint8Array;
  readonly global_scale?: Uint8Array;
  readonly super_scales?: Uint8Array;
  readonly zeros?: Uint8Array;
  readonly offsets?: Uint8Array;
}

/**
 * A kernel source from a mixq quantized safetensors weight of shape [out, in] (scales per row, per
 * group along `in`, or per tensor).
 * @example
 *   const q = await readQuantizedSafetensors(bytes);
 *   const w = q.weights[0];   // { name, entry, tensors, ... }
 *   ctx.prepare(mixqSafetensorsSource(w.entry, { qweight, scales, zeros }));
 */
export function mixqSafetensorsSource(e: MixqSafetensorsEntry, t: MixqSafetensorsTensors): MixqSource {
  const fail = (message: string, field: string, expected: string): never => {
    throw new MixqError(message, { source: 'kernels: safetensors weight', field, expected });
  };
  if (e.shape.length !== 2) fail(`shape [${e.shape.join(', ')}]`, 'shape', 'a matrix [out, in]');
  const [rows, cols] = e.shape as [number, number];
  const g = e.granularity;
  let groups: MixqSource['groups'];
  if (g.kind === 'tensor') groups = 'tensor';
  else if (g.kind === 'axis' && g.axis === 0) groups = 'row';
  else if (g.kind === 'group' && g.axis === 1) groups = g.size;
  else
    groups = fail(
      `granularity ${JSON.stringify(g)}`,
      'granularity',
      'per tensor, per row (axis 0) or groups along the input (axis 1)',
    );
  const sf = e.scale_format;
  let globalScale: number | undefined;
  if (t.global_scale) {
    if (t.global_scale.length !== 4) fail(`${t.global_scale.length} bytes`, 'global_scale', '4 (float32)');
    globalScale = new DataView(t.global_scale.buffer, t.global_scale.byteOffset, 4).getFloat32(0, true);
  }
  return {
    kind: 'mixq',
    rows,
    cols,
    element: e.format,
    groups,
    scaleFormat:
      typeof sf === 'object' ? { kind: 'double', subBits: sf.sub_bits, superGroup: sf.super_group } : sf,
    symmetric: e.symmetric,
    codes: t.qweight,
    ...(t.scales ? { scales: t.scales } : {}),
    ...(globalScale !== undefined ? { globalScale } : {}),
    ...(t.super_scales ? { superScales: t.super_scales } : {}),
    ...(t.zeros ? { zeros: t.zeros } : {}),
    ...(t.offsets ? { offsets: t.offsets } : {}),
  };
}

/** Throws unless rows and cols are positive integers. */
export function checkShape(source: string, rows: number, cols: number): void {
  for (const [f, v] of [
    ['rows', rows],
    ['cols', cols],
  ] as const)
    if (!Number.isInteger(v) || v <= 0 || v > 2 ** 30)
      throw new MixqError(`${f} ${v}`, { source, field: f, expected: 'a positive integer' });
}

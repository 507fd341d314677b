/**
 * Block quantization of a weight seen as rows x cols (blocks run along cols) and the byte layouts three
 * onnxruntime / ONNX operators read. Written from the operator specs, no code copied:
 * - com.microsoft MatMulNBits (onnxruntime docs/ContribOperators.md, contrib_ops/cpu/quantization/
 *   matmul_nbits.cc): B uint8 [N, n_blocks, blob_size], blob_size = block_size * bits / 8, the K codes of
 *   output column n packed LSB-first (low nibble first for 4 bits); scales [N, n_blocks];
 *   zero_points uint8 [N, ceil(n_blocks * bits / 8)] packed the same way, one row per n. Without
 *   zero_points the zero point is 2^(bits-1).
 * - ONNX DequantizeLinear-21 (onnx/docs/Operators.md): y = (x - zero_point) * scale, zero point 0 when
 *   absent; int4/uint4 packed two per byte, low nibble first; blocked along `axis` with `block_size`.
 * - com.microsoft GatherBlockQuantized with uint8 data (contrib_ops/cpu/quantization/
 *   gather_block_quantized.cc): the MatMulNBits conventions along the last axis (default zero point
 *   2^(bits-1), zero points packed per row).
 *
 * Quantization is mixq's quantizer itself (src/quant: min-max rule on integer grids, stored scales), so the
 * exported weights are exactly those of the fake-quant simulation: value = float32(scale * (q - zero)).
 */
import { intSpec, packCodes } from '../../formats/index.ts';
import {
  chooseQParams,
  codeToGrid,
  fakeQuantWith,
  type QuantizerConfig,
  quantize,
} from '../../quant/index.ts';

export interface BlockQuantConfig {
  readonly bits: number;
  /** Elements per block along cols; `cols` (or more) = one block per row (per-channel). */
  readonly blockSize: number;
  readonly symmetric: boolean;
  /**
   * Signed codes (two's complement, zero point 0 when symmetric: DequantizeLinear int4/int8) or unsigned
   * codes (mid zero point 2^(bits-1) when symmetric: MatMulNBits, GatherBlockQuantized, uint4/uint8).
   */
  readonly signed: boolean;
  readonly scaleType: 'float32' | 'float16';
}

/** A rows x cols matrix quantized in blocks along cols. */
export interface BlockQuantized {
  readonly rows: number;
  readonly cols: number;
  readonly blockSize: number;
  readonly nBlocks: number;
  readonly bits: number;
  readonly signed: boolean;
  /** Integer grid value of every element, row-major [rows, cols]. */
  readonly q: Int32Array;
  /** Stored scale of every block [rows, nBlocks] (already rounded to float16 when scaleType is float16). */
  readonly scale: Float32Array;
  /** Zero point of every block [rows, nBlocks], in the same integer grid as q. */
  readonly zero: Int32Array;
  /** float32(scale * (q - zero)): what every runtime computes and what the simulation uses. */
  readonly dequant: Float32Array;
}

/** The src/quant configuration of a block quantizer: integer grid, min-max range, groups along cols. */
export function blockQuantizerConfig(cfg: BlockQuantConfig, cols: number): QuantizerConfig {
  return {
    element: intSpec(cfg.bits, cfg.signed),
    granularity: { kind: 'group', axis: 1, size: Math.min(cfg.blockSize, cols) },
    symmetric: cfg.symmetric,
    scaleFormat: cfg.scaleType === 'float16' ? 'fp16' : 'fp32',
  };
}

/** Quantizes `x` (row-major [rows, cols]) block by block along cols (min-max range per block). */
export function quantizeBlocks(
  x: Float32Array,
  rows: number,
  cols: number,
  cfg: BlockQuantConfig,
): BlockQuantized {
  // One quantizer for export and simulation: src/quant's min-max rule with the stored (rounded) scale.
  const qcfg = blockQuantizerConfig(cfg, cols);
  const params = chooseQParams(x, [rows, cols], qcfg);
  const { codes } = quantize(x, params);
  const q = new Int32Array(x.length);
  for (let i = 0; i < q.length; i++) q[i] = codeToGrid(params.grid, codes[i]!);
  const bs = Math.min(cfg.blockSize, cols);
  return {
    rows,
    cols,
    blockSize: bs,
    nBlocks: Math.ceil(cols / bs),
    bits: cfg.bits,
    signed: cfg.signed,
    q,
    scale: params.scale,
    zero: Int32Array.from(params.zero),
    dequant: fakeQuantWith(x, params),
  };
}

/** Unsigned code of a grid value: two's complement bits for signed grids, the value itself otherwise. */
function code(v: number, bits: number): number {
  return v & ((1 << bits) - 1);
}

/**
 * MatMulNBits B: [rows = N, nBlocks, blob] bytes, each block padded to blockSize codes. Padding codes are
 * the block's zero point (they multiply nothing: the operator reads only K elements of A).
 */
export function packNBitsBlocks(t: BlockQuantized, blockSize: number): Uint8Array {
  const blob = (blockSize * t.bits) / 8;
  const out = new Uint8Array(t.rows * t.nBlocks * blob);
  const codes = new Uint8Array(blockSize);
  for (let r = 0; r < t.rows; r++) {
    for (let b = 0; b < t.nBlocks; b++) {
      const z = t.zero[r * t.nBlocks + b]!;
      for (let k = 0; k < blockSize; k++) {
        const c = b * blockSize + k;
        codes[k] = code(c < t.cols ? t.q[r * t.cols + c]! : z, t.bits);
      }
      packCodes(codes, t.bits, out.subarray((r * t.nBlocks + b) * blob, (r * t.nBlocks + b + 1) * blob));
    }
  }
  return out;
}

/** Zero points [rows, ceil(nBlocks * bits / 8)] bytes, each row packed LSB-first on its own. */
export function packRowZeroPoints(t: BlockQuantized): Uint8Array {
  const per = Math.ceil((t.nBlocks * t.bits) / 8);
  const out = new Uint8Array(t.rows * per);
  const row = new Uint8Array(t.nBlocks);
  for (let r = 0; r < t.rows; r++) {
    for (let b = 0; b < t.nBlocks; b++) row[b] = code(t.zero[r * t.nBlocks + b]!, t.bits);
    packCodes(row, t.bits, out.subarray(r * per, (r + 1) * per));
  }
  return out;
}

/** Codes of a whole tensor in row-major order packed LSB-first (ONNX int4/uint4/int8/uint8 raw_data). */
export function packTensorCodes(values: Int32Array, bits: number): Uint8Array {
  const codes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) codes[i] = code(values[i]!, bits);
  return bits === 8 ? codes : packCodes(codes, bits);
}

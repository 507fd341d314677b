/**
 * What transformers.js users ship today: the modes of transformers.js's own scripts/quantize.py (v3) on a
 * float32 decoder, as baselines of the ONNX pipeline (quantize/baselines.ts), each weight's values and
 * stored bytes as that script's onnxruntime quantizer writes them:
 *
 *   q8    onnxruntime quantize_dynamic (IntegerOps): MatMul B and Gather (embedding) weights as int8, one
 *         scale per TENSOR (the script's per_channel defaults to off), symmetric (codes -127..127, scale =
 *         max|w| / 127, zero point 0), reduce_range off, and each MatMul's input activations quantized to
 *         uint8 at run time (DynamicQuantizeLinear + MatMulInteger): scored as that file
 *         (export/onnx/dynamic-int8.ts), not as weight values.
 *   q4    onnxruntime MatMul4BitsQuantizer, block_size 32, is_symmetric: MatMul B weights only (the
 *         embedding Gather stays float32), blocks of 32 along K per output column, scale = the block's value
 *         of largest magnitude / -8 (that value -> code 0, i.e. -8 + zero point 8; codes 0..15, clamped),
 *         scales float32, no zero points stored (MatMulNBits: K padded to whole blocks).
 *   fp16  every float weight cast to float16 (float16.convert_float_to_float16; keep_io_types).
 *
 * Pure (browser-safe).
 */
import { quantizeDynamicInt8, int8PerTensorCodes } from '../../export/onnx/dynamic-int8.ts';
import { writeOnnx } from '../../io/onnx/read.ts';
import { floatScheme } from '../../analysis/sensitivity/candidates.ts';
import { fromRows, toRows } from '../../quant/layout.ts';
import type { BaselineWeight, TaskBaseline } from '../tasks.node.ts';

const op = (w: BaselineWeight) => w.consumer.split(':')[0];

/** Symmetric int8 with one scale per tensor, as onnxruntime's quantize_dynamic (QInt8) stores weights. */
export function int8PerTensor(W: Float32Array): Float32Array {
  return int8PerTensorCodes(W).values;
}

/**
 * MatMulNBits 4-bit symmetric blocks along each row (row frame [outputs, K]): per block of `block` values
 * the one of largest magnitude v gives scale v / -8 (float32); codes round(x / scale) + 8 clamped to 0..15
 * (zero point 8, not stored). Codes [nRows, K] and scales [nRows, ceil(K / block)].
 */
export function int4SymmetricBlockCodes(
  rows: Float32Array,
  nRows: number,
  K: number,
  block = 32,
): { q: Int32Array; scale: Float32Array } {
  const nb = Math.ceil(K / block);
  const q = new Int32Array(rows.length).fill(8);
  const scale = new Float32Array(nRows * nb);
  for (let r = 0; r < nRows; r++)
    for (let b = 0; b < nb; b++) {
      const o = r * K;
      const end = Math.min(K, (b + 1) * block);
      let v = 0;
      for (let i = b * block; i < end; i++) if (Math.abs(rows[o + i]!) > Math.abs(v)) v = rows[o + i]!;
      const s = Math.fround(v / -8);
      scale[r * nb + b] = s;
      if (s === 0) continue;
      for (let i = b * block; i < end; i++)
        q[o + i] = Math.min(15, Math.max(0, Math.round(rows[o + i]! / s) + 8));
    }
  return { q, scale };
}

/** The values of int4SymmetricBlockCodes: (code - 8) * scale. */
export function int4SymmetricBlocks(rows: Float32Array, nRows: number, K: number, block = 32): Float32Array {
  const { q, scale } = int4SymmetricBlockCodes(rows, nRows, K, block);
  const nb = Math.ceil(K / block);
  return Float32Array.from(
    q,
    (c, i) => (c - 8) * scale[Math.floor(i / K) * nb + Math.floor((i % K) / block)]!,
  );
}

/** transformers.js's quantize.py modes (see the file comment). */
export const TRANSFORMERS_JS_BASELINES: readonly TaskBaseline[] = [
  {
    label: 'transformers.js q8 (int8 weights, dynamic uint8 activations)',
    quantize(w) {
      if (op(w) !== 'MatMul' && op(w) !== 'Gather') return undefined;
      const W = w.original();
      return { Q: int8PerTensor(W), bytes: W.length + 4 + 1 };
    },
    // the file q8 writes: its activations are quantized at run time, so it is run as a file
    async file(model) {
      return writeOnnx((await quantizeDynamicInt8(model)).model);
    },
  },
  {
    label: 'transformers.js q4 (MatMulNBits sym g32)',
    quantize(w) {
      if (op(w) !== 'MatMul') return undefined;
      const L = w.layout;
      const Q = fromRows(int4SymmetricBlocks(toRows(w.original(), L), L.rows, L.cols), L);
      const blocks = Math.ceil(L.cols / 32);
      return { Q, bytes: L.rows * blocks * (16 + 4) };
    },
  },
  {
    label: 'transformers.js fp16',
    quantize(w) {
      const Q = w.simulate(FP16);
      return { Q, bytes: 2 * Q.length };
    },
  },
];

const FP16 = floatScheme('fp16', 'pc', 'none');

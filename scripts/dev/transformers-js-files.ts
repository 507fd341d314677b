/**
 * Dev-only: the decoder files transformers.js's scripts/quantize.py writes in its q8 and q4 modes, built by
 * mixq's own code, to score at equal FILE size with scripts/dev/score-lm-files.ts:
 *   q8  export/onnx/dynamic-int8.ts (quantize_dynamic: int8 per-tensor MatMul and Gather weights, dynamic
 *       uint8 activations; the pipeline's q8 baseline runs this same file)
 *   q4  MatMulNBits 4-bit symmetric blocks of 32 with MatMul4BitsQuantizer's scale rule (the block's value of
 *       largest magnitude / -8, zero point 8, no zero points stored); the embedding stays float32
 *
 *   node --import tsx scripts/dev/transformers-js-files.ts <decoder.onnx> <out-dir>
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeDynamicInt8 } from '../../src/export/onnx/dynamic-int8.ts';
import { quantizeOnnxWeights, type WeightAssignments } from '../../src/export/onnx/quantize.ts';
import { readOnnxFileInlined } from '../../src/io/onnx/file.node.ts';
import { writeOnnx } from '../../src/io/onnx/read.ts';
import { getTensorFloat32, listWeights } from '../../src/io/onnx/index.ts';
import { transpose } from '../../src/quant/layout.ts';
import { int4SymmetricBlockCodes } from '../../src/pipeline/llm/transformers-js.ts';

const [src, out] = process.argv.slice(2);
if (!src || !out) {
  console.error('usage: transformers-js-files.ts <decoder.onnx> <out-dir>');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const model = await readOnnxFileInlined(src);
const q8 = writeOnnx((await quantizeDynamicInt8(model)).model);
writeFileSync(join(out, 'q8.onnx'), q8);

// q4: MatMul B [K, N] -> rows = N, blocks of 32 along K
const matmulB = new Set(
  model.proto.graph!.node.filter((n) => n.op_type === 'MatMul').map((n) => n.input[1]!),
);
const a: Record<string, WeightAssignments[string]> = {};
for (const w of listWeights(model)) {
  if (!matmulB.has(w.name) || w.dims.length !== 2) continue;
  const [K, N] = w.dims as [number, number];
  const rows = transpose(getTensorFloat32(w.tensor), K, N); // [N, K]
  const { q, scale } = int4SymmetricBlockCodes(rows, N, K);
  const zero = new Int32Array(scale.length).fill(8);
  a[w.name] = {
    scheme: 'matmulnbits',
    bits: 4,
    blockSize: 32,
    symmetric: true,
    quantized: { q, scale, zero },
  };
}
const q4 = writeOnnx((await quantizeOnnxWeights(model, a)).model);
writeFileSync(join(out, 'q4.onnx'), q4);
for (const f of ['q8.onnx', 'q4.onnx']) console.log(`${join(out, f)}: ${statSync(join(out, f)).size} bytes`);

/**
 * The exported mixed-precision model runs in onnxruntime-web (its WASM build, loaded in Node): the bundled
 * GPT with GatherBlockQuantized (4-bit), MatMulNBits (2, 4 and 8-bit, symmetric and asymmetric) and
 * DequantizeLinear (int8 / uint4, per channel and blocked) and bit-plane packed weights (INT3 g32, NVFP4,
 * NF4; decoded by BitShift / BitwiseAnd / Gather at load) in one graph. Its logits match the float
 * simulation (dequantized weights in the original graph, run by onnxruntime-node) to float rounding.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ortWeb from 'onnxruntime-web';
import {
  autoAssignments,
  fakeQuantizeOnnxWeights,
  quantizeOnnxWeights,
  type WeightAssignment,
} from '../../src/export/onnx/index.ts';
import { getFormat } from '../../src/formats/index.ts';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import { inlineExternalData } from '../../src/io/onnx/inline.ts';
import { writeOnnx } from '../../src/io/onnx/read.ts';
import { GPT_DIR } from '../../src/runtime/bundled.node.ts';
import { int64Tensor } from '../../src/runtime/ort.node.ts';
import { openRunner } from '../../src/runtime/runner.node.ts';

test('a mixed 2/3/4/8-bit GPT export (native and packed) runs in onnxruntime-web and matches the simulation', async () => {
  const f = await readOnnxFile(`${GPT_DIR}/model.onnx`);
  const a: Record<string, WeightAssignment> = autoAssignments(f, {
    bits: 4,
    blockSize: 32,
    symmetric: false,
    scaleType: 'float16',
  });
  a['blocks.0.attn_qkv'] = { scheme: 'matmulnbits', bits: 8, blockSize: 64, symmetric: true };
  a['blocks.0.attn_proj'] = {
    scheme: 'matmulnbits',
    bits: 2,
    blockSize: 32,
    symmetric: false,
    scaleType: 'float16',
  };
  a['blocks.1.mlp_fc'] = { scheme: 'dequantizelinear', bits: 8, symmetric: true, granularity: 'channel' };
  a['blocks.2.mlp_fc'] = {
    scheme: 'dequantizelinear',
    bits: 4,
    blockSize: 32,
    symmetric: false,
    scaleType: 'float16',
  };
  const fmt = (name: string, g: number, scaleFormat: 'fp16' | 'fp8_e4m3fn', symmetric: boolean) => ({
    element: getFormat(name),
    granularity: { kind: 'group' as const, axis: 1, size: g },
    symmetric,
    scaleFormat,
  });
  a['blocks.1.attn_qkv'] = { scheme: 'packed', quantizer: fmt('uint3', 32, 'fp16', false) };
  a['blocks.2.attn_proj'] = { scheme: 'packed', quantizer: fmt('fp4_e2m1fn', 16, 'fp8_e4m3fn', true) };
  a['blocks.3.mlp_proj'] = { scheme: 'packed', quantizer: fmt('nf4', 64, 'fp16', true) };
  assert.equal(a.wte?.scheme, 'gatherblockquantized');
  const q = await quantizeOnnxWeights(f, a);
  await inlineExternalData(q.model);
  const sim = await fakeQuantizeOnnxWeights(f, a);
  await inlineExternalData(sim);
  await f.close();
  const ids = Array.from({ length: 96 }, (_, i) => (i * 7 + 3) % 63);
  ortWeb.env.wasm.numThreads = 1;
  const web = await ortWeb.InferenceSession.create(writeOnnx(q.model));
  const outWeb = await web.run({
    [web.inputNames[0]!]: new ortWeb.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
  });
  const w = outWeb[web.outputNames[0]!]!.data as Float32Array;
  const ref = await openRunner(writeOnnx(sim));
  const outRef = await ref.run({ [ref.inputNames[0]!]: int64Tensor(ids, [1, ids.length]) });
  const r = outRef[ref.outputNames[0]!]!.data as Float32Array;
  assert.equal(w.length, r.length);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < r.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(w[i]! - r[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(r[i]!));
  }
  assert.ok(maxAbs > 1, 'real logits');
  assert.ok(maxDiff < 1e-3 * maxAbs, `web vs simulation: max diff ${maxDiff} (max |logit| ${maxAbs})`);
  await web.release();
});

/**
 * One run, one read: `mixq quantize` (sensitivity, every evaluation, the ONNX file and its check) and
 * `mixq apply` read the input model file once and decode it once (the loaded model, pipeline/model.node.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCandidateIds } from '../../src/analysis/sensitivity/candidates.ts';
import { onnxFileReads } from '../../src/io/onnx/file.node.ts';
import { onnxDecodeCount } from '../../src/io/onnx/read.ts';
import { applyPlan } from '../../src/pipeline/apply.node.ts';
import { quantizeModel } from '../../src/pipeline/quantize/index.ts';

test('quantize and apply each read and parse the input model once', async () => {
  const reads = onnxFileReads();
  const decodes = onnxDecodeCount();
  const r = await quantizeModel({
    model: 'gpt',
    budget: { kind: 'bitsPerWeight', bits: 5 },
    candidates: { schemes: parseCandidateIds(['int8-pc-rtn', 'int4-g32-gptq', 'int3-g32-rtn-mse']) },
    task: { evalSize: 1024, calibrationSize: 2 },
    evaluation: { sweep: [4.5], baselines: false },
  });
  assert.ok(r.output?.metric !== undefined, 'the ONNX file was written and run');
  assert.equal(onnxFileReads() - reads, 1, 'quantize reads the model file once');
  assert.equal(onnxDecodeCount() - decodes, 1, 'quantize decodes the model once');
  const a = await applyPlan('gpt', r.plan);
  assert.ok(Buffer.from(a.bytes).equals(Buffer.from(r.output.chunks[0]!)), 'apply rebuilds the same file');
  assert.equal(onnxFileReads() - reads, 2, 'apply reads the model file once');
  assert.equal(onnxDecodeCount() - decodes, 2, 'apply decodes the model once');
});

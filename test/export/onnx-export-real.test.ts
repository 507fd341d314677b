/**
 * Quantized export of the real models, run in onnxruntime-node and compared with the fake-quant
 * simulation: PP-OCRv4 rec (paddle2onnx, opset 9, MatMul weights as Constant nodes: MatMulNBits; Conv
 * weights through standard DequantizeLinear after the exact opset 9 -> 21 upgrade, export/onnx/opset.ts) and the bundled
 * GPT (models/gpt/model.onnx, weights in model.safetensors as external data; skipped when absent).
 * Every quantizable weight at 8 bits, at 4 bits (block 32), and (OCR) mixed: MatMul 4-bit, Conv 8-bit. Sizes printed.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import test from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { autoAssignments, quantizeOnnxWeights } from '../../src/export/onnx/index.ts';
import { inlineExternalData } from '../../src/io/onnx/inline.ts';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import { loadOcrCharset, loadOcrLines, ocrInput } from '../../src/runtime/bundled.node.ts';
import { ctcGreedyDecode } from '../../src/runtime/ctc.ts';
import { type OnnxModel, readOnnx, writeOnnx } from '../../src/io/onnx/index.ts';
import { expectedStorage, maxDiff, runModel } from './onnx-export-util.ts';
import { OCR_REC, ort } from '../io/onnx-util.ts';

const REL_TOL = 1e-4;
const GPT = 'models/gpt/model.onnx';

interface Row {
  bits: number | string;
  weights: number;
  fileBytes: number;
  quantBytes: number;
  floatBytes: number;
  diff: number;
  scale: number;
}

async function exportAndCompare(
  model: OnnxModel,
  floatBytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  bits: 4 | 8 | 'mixed',
  metric: (out: Record<string, Float32Array>) => number,
  label: string,
): Promise<Row & { metric: [number, number, number]; got: Record<string, Float32Array> }> {
  // every quantizable weight, the logits layer included (the size the brief's formula counts);
  // 'mixed': MatMul weights 4-bit (block 32), Conv / Gemm / Gather 8-bit
  const a = autoAssignments(model, {
    bits: bits === 'mixed' ? 8 : bits,
    blockSize: 32,
    keepOutputLayer: false,
  });
  if (bits === 'mixed')
    for (const [k, v] of Object.entries(a)) if (v.scheme === 'matmulnbits') a[k] = { ...v, bits: 4 };
  const q = await quantizeOnnxWeights(model, a, { simulation: true });
  const sim = q.simulation!;
  await inlineExternalData(q.model);
  await inlineExternalData(sim);
  const qBytes = writeOnnx(q.model);
  const got = await runModel(qBytes, feeds);
  const want = await runModel(writeOnnx(sim), feeds);
  const float = await runModel(floatBytes, feeds);
  const { diff, scale } = maxDiff(got, want);
  assert.ok(diff <= REL_TOL * scale, `${label} ${bits}-bit: max diff ${diff} (output scale ${scale})`);
  // storage of every weight = the spec formula (rows = N / O / V, cols = K / inner / D)
  let quantBytes = 0;
  for (const w of q.weights) {
    const mm = w.op === 'MatMulNBits';
    const rows = mm ? w.dims[1]! : w.dims[0]!;
    const cols = mm ? w.dims[0]! : w.dims.slice(1).reduce((p, d) => p * d, 1);
    const perChannel = w.op === 'DequantizeLinear' && w.dims.length > 2;
    const e = expectedStorage(w.op as 'MatMulNBits', rows, cols, w.bits, perChannel ? cols : 32, true, 4);
    assert.deepEqual(
      [w.codeBytes, w.scaleBytes, w.zeroPointBytes],
      [e.codes, e.scales, e.zeroPoints],
      w.name,
    );
    quantBytes += w.codeBytes + w.scaleBytes + w.zeroPointBytes;
  }
  const floatW = q.weights.reduce((p, w) => p + w.originalBytes, 0);
  assert.ok(q.weights.length > 0);
  // file size = float file - replaced float weights + quantized bytes + names/nodes (< 256 bytes a weight)
  const overhead = qBytes.length - (floatBytes.length - floatW + quantBytes);
  assert.ok(
    overhead >= 0 && overhead < 256 * q.weights.length,
    `${label} ${bits}-bit: file overhead ${overhead}`,
  );
  return {
    bits,
    weights: q.weights.length,
    fileBytes: qBytes.length,
    quantBytes,
    floatBytes: floatW,
    diff,
    scale,
    metric: [metric(float), metric(want), metric(got)],
    got,
  };
}

function print(
  label: string,
  base: number,
  r: Row & { metric: [number, number, number] },
  name: string,
): void {
  console.log(
    `# ${label} ${r.bits}-bit: ${r.weights} weights ${r.floatBytes} -> ${r.quantBytes} bytes ` +
      `(${((8 * r.quantBytes) / (r.floatBytes / 4)).toFixed(3)} bits/weight); file ${base} -> ${r.fileBytes}; ` +
      `max |onnx - sim| ${r.diff.toExponential(2)} (output max ${r.scale.toFixed(3)}); ` +
      `${name} float ${r.metric[0].toFixed(4)} sim ${r.metric[1].toFixed(4)} onnx ${r.metric[2].toFixed(4)}`,
  );
}

test('PP-OCRv4 rec: all MatMul and Conv weights at 8, 4 and mixed bits run in onnxruntime and match the simulation', async () => {
  const bytes = new Uint8Array(readFileSync(OCR_REC));
  const model = readOnnx(bytes, { source: OCR_REC });
  // one rendered text line of the bundled OCR set (models/ocr), else a seeded image in [-1, 1]
  let feeds: Record<string, ort.Tensor>;
  let text = '';
  if (existsSync('models/ocr/lines.json')) {
    const line = loadOcrLines()[0]!;
    text = line.text;
    feeds = { x: new ort.Tensor('float32', ocrInput(line), [1, 3, line.height, line.width]) };
  } else {
    const rng = new Rng(5);
    feeds = {
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 3 * 48 * 160 }, () => rng.nextFloat() * 2 - 1),
        [1, 3, 48, 160],
      ),
    };
  }
  const charset = loadOcrCharset();
  const float = await runModel(bytes, feeds);
  const ref = Object.values(float)[0]!;
  const classes = charset.length;
  const decode = (out: Record<string, Float32Array>): string => {
    const o = Object.values(out)[0]!;
    return ctcGreedyDecode(o, o.length / classes, charset);
  };
  // share of time steps whose argmax class equals the float model's
  const argmaxAgree = (out: Record<string, Float32Array>): number => {
    const o = Object.values(out)[0]!;
    let same = 0;
    for (let i = 0; i < o.length; i += classes) {
      let ia = 0;
      let ib = 0;
      for (let j = 1; j < classes; j++) {
        if (o[i + j]! > o[i + ia]!) ia = j;
        if (ref[i + j]! > ref[i + ib]!) ib = j;
      }
      if (ia === ib) same++;
    }
    return same / (o.length / classes);
  };
  console.log(`# PP-OCRv4 rec on "${text}": float reads "${decode(float)}"`);
  for (const bits of [8, 4, 'mixed'] as const) {
    const r = await exportAndCompare(model, bytes, feeds, bits, argmaxAgree, 'PP-OCRv4 rec');
    print('PP-OCRv4 rec', bytes.length, r, 'argmax agreement');
    console.log(`#   ${bits}-bit onnx reads "${decode(r.got)}"`);
    assert.ok(r.fileBytes < bytes.length * (bits === 4 ? 0.17 : 0.3), `file ${r.fileBytes}`);
  }
});

test(
  'bundled GPT (models/gpt/model.onnx): 8 and 4 bits, heldout cross-entropy of onnx = simulation',
  {
    skip: existsSync(GPT) ? false : 'models/gpt/model.onnx not built yet',
  },
  async () => {
    const model = await readOnnxFile(GPT);
    try {
      const floatModel = readOnnx(writeOnnx(model), { source: GPT, externalData: model.externalData });
      await inlineExternalData(floatModel);
      const floatBytes = writeOnnx(floatModel);
      const chars = (JSON.parse(readFileSync('models/gpt/vocab.json', 'utf8')) as { chars: string[] }).chars;
      const text = readFileSync('models/gpt/heldout.txt', 'utf8').slice(0, 2 * 128 + 1);
      const ids = Array.from(text, (c) => Math.max(0, chars.indexOf(c)));
      const T = 128;
      const input = BigInt64Array.from([...ids.slice(0, T), ...ids.slice(T, 2 * T)].map(BigInt));
      const feeds = { ids: new ort.Tensor('int64', input, [2, T]) };
      const V = chars.length;
      // mean next-character cross-entropy (nats) over both rows
      const xent = (out: Record<string, Float32Array>): number => {
        const lg = Object.values(out)[0]!;
        let sum = 0;
        let n = 0;
        for (let b = 0; b < 2; b++)
          for (let t = 0; t < T; t++) {
            const target = ids[b * T + t + 1]!;
            const row = lg.subarray((b * T + t) * V, (b * T + t + 1) * V);
            let m = -Infinity;
            for (const v of row) m = Math.max(m, v);
            let z = 0;
            for (const v of row) z += Math.exp(v - m);
            sum += Math.log(z) + m - row[target]!;
            n++;
          }
        return sum / n;
      };
      for (const bits of [8, 4] as const) {
        const r = await exportAndCompare(model, floatBytes, feeds, bits, xent, 'GPT');
        print('GPT', floatBytes.length, r, 'cross-entropy');
        assert.ok(Math.abs(r.metric[2] - r.metric[1]) < 1e-4, 'onnx and simulated cross-entropy agree');
      }
    } finally {
      await model.close();
    }
  },
);

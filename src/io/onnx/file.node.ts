/**
 * Node-only ONNX file edges: reading a model with its external data files resolved next to it (each opened
 * as a random-access file, so external data of any size is read piece by piece, and every external
 * tensor's range is checked against its file's size up front), and writing a model, optionally with its
 * weights in an external data file, atomically and never over an input.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { fileSource, writeFileAtomic } from '../files.node.ts';
import type { ByteSource } from '../source.ts';
import { type ExternalDataLayout, writeOnnxWithExternalData } from './external-write.ts';
import { inlineExternalData } from './inline.ts';
import { DEFAULT_ONNX_LIMITS, type OnnxLimits, type OnnxModel, readOnnx, writeOnnx } from './read.ts';
import { externalDataRef, externalRange } from './tensor-data.ts';
import { listWeights } from './weights.ts';

export interface OnnxFile extends OnnxModel {
  /** The file's bytes as read (the model's identity is their sha256). */
  readonly bytes: Uint8Array;
  /** Closes the external data files opened so far. */
  close(): Promise<void>;
}

let fileReads = 0;

/** How many model files readOnnxFile has read in this process (tests count reads per job). */
export function onnxFileReads(): number {
  return fileReads;
}

/**
 * Reads `path` and prepares access to its external data.
 * @example
 *   const model = await readOnnxFile('model.onnx');
 *   try { ... } finally { await model.close(); }
 */
export async function readOnnxFile(
  path: string,
  opts: { limits?: Partial<OnnxLimits> } = {},
): Promise<OnnxFile> {
  const max = opts.limits?.maxModelBytes ?? DEFAULT_ONNX_LIMITS.maxModelBytes;
  const { size } = await stat(path);
  if (size > max) {
    throw new MixqError(`model file is ${size} bytes`, {
      source: path,
      field: 'ModelProto',
      expected: `at most ${max} bytes (protobuf's 2 GiB limit; larger weights belong in external data)`,
    });
  }
  const buf = await readFile(path);
  fileReads++;
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength); // a view, not a second copy
  const opened: (ByteSource & { close(): Promise<void> })[] = [];
  const folder = dirname(path);
  const model = readOnnx(bytes, {
    source: path,
    ...(opts.limits ? { limits: opts.limits } : {}),
    externalData: async (location) => {
      try {
        const src = await fileSource(join(folder, location));
        opened.push(src);
        return src;
      } catch (e) {
        throw new MixqError(`cannot open external data file '${location}' (${(e as Error).message})`, {
          source: path,
          field: 'external_data.location',
          expected: 'a readable file next to the model',
        });
      }
    },
  });
  const file: OnnxFile = {
    ...model,
    bytes,
    close: async () => {
      await Promise.all(opened.map((s) => s.close()));
      opened.length = 0;
    },
  };
  try {
    for (const w of listWeights(file)) if (w.external) await externalRange(file, w.tensor);
  } catch (e) {
    await file.close();
    throw e;
  }
  return file;
}

/**
 * Reads `path` with its external data moved into the model (raw_data), so the model is self-contained
 * and its encoding loads from bytes; the external files are closed again.
 * @example const model = await readOnnxFileInlined('models/gpt/model.onnx'); // weights from model.safetensors
 */
export async function readOnnxFileInlined(
  path: string,
  opts: { limits?: Partial<OnnxLimits> } = {},
): Promise<OnnxFile> {
  const file = await readOnnxFile(path, opts);
  try {
    await inlineExternalData(file);
  } finally {
    await file.close();
  }
  return file;
}

/**
 * Writes `model` to `path`; with `externalData`, large weights go to a data file next to it. Refuses to
 * overwrite the model's own input file or its external data files.
 * @example await writeOnnxFile('out.onnx', model, { externalData: { location: 'out.onnx_data' } });
 */
export async function writeOnnxFile(
  path: string,
  model: OnnxModel,
  opts: { externalData?: ExternalDataLayout } = {},
): Promise<void> {
  const inputs = [model.source];
  for (const w of listWeights(model)) {
    const ref = externalDataRef(w.tensor, model.source);
    if (ref) inputs.push(join(dirname(model.source), ref.location));
  }
  if (!opts.externalData) {
    await writeFileAtomic(path, writeOnnx(model), inputs);
    return;
  }
  const out = await writeOnnxWithExternalData(model, opts.externalData);
  await writeFileAtomic(join(dirname(path), opts.externalData.location), [...out.data], inputs);
  await writeFileAtomic(path, out.model, inputs);
}

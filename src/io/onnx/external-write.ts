/**
 * Writing a model with its weights in an external data file, the way onnx.save_model(...,
 * save_as_external_data=True) does (onnx/docs/ExternalData.md): each chosen tensor's bytes go to one data
 * file at an aligned offset, and the tensor keeps only data_location = EXTERNAL and its
 * location / offset / length entries. This is how models over protobuf's 2 GiB limit are written.
 *
 * The model in memory is not changed: the tensors' fields are swapped for the encode and restored after.
 */
import type { OnnxModel } from './read.ts';
import { writeOnnx } from './read.ts';
import { checkDataLocation, loadTensorBytes } from './tensor-data.ts';
import { listWeights } from './weights.ts';

export interface ExternalDataLayout {
  /** Data file name relative to the model file, e.g. 'model.onnx_data'. */
  readonly location: string;
  /** Inline tensors of at least this many bytes move to the data file (onnx's size_threshold; default 1024). */
  readonly sizeThreshold?: number;
  /** Offsets are multiples of this (default 4096, a page, so runtimes can memory-map the file). */
  readonly alignment?: number;
  /**
   * Also move Constant nodes' value tensors (default false: onnx's own tooling externalizes attribute
   * tensors too, but not every runtime reads external data there; initializers are always safe).
   */
  readonly includeConstants?: boolean;
}

export interface OnnxWithExternalData {
  /** The model file's bytes. */
  readonly model: Uint8Array;
  /** The data file's content, in order (padding included); write the chunks one after another. */
  readonly data: readonly Uint8Array[];
  readonly dataBytes: number;
}

const DATA_KEYS = [
  'raw_data',
  'float_data',
  'int32_data',
  'int64_data',
  'double_data',
  'uint64_data',
  'data_location',
  'external_data',
] as const;

/**
 * Encodes the model with large weights (and every weight that is already external) in one data file.
 * External weights are read through the model's resolver first, so the new data file may replace the old.
 *
 * @example
 *   const { model: bytes, data } = await writeOnnxWithExternalData(model, { location: 'm.onnx_data' });
 */
export async function writeOnnxWithExternalData(
  model: OnnxModel,
  layout: ExternalDataLayout,
): Promise<OnnxWithExternalData> {
  checkDataLocation(layout.location, model.source, 'location');
  const threshold = layout.sizeThreshold ?? 1024;
  const alignment = Math.max(1, layout.alignment ?? 4096);
  const chosen = listWeights(model).filter(
    (w) =>
      (w.kind === 'initializer' || (layout.includeConstants === true && w.kind === 'constant')) &&
      w.byteLength > 0 &&
      (w.external !== undefined ||
        (w.byteLength >= threshold && w.storage !== 'empty' && w.storage !== 'string_data')),
  );
  const data: Uint8Array[] = [];
  const placed: { fields: Record<string, unknown>; offset: number; length: number }[] = [];
  let end = 0;
  for (const w of chosen) {
    const bytes = await loadTensorBytes(model, w.tensor);
    const offset = Math.ceil(end / alignment) * alignment;
    if (offset > end) data.push(new Uint8Array(offset - end));
    data.push(bytes);
    end = offset + bytes.length;
    placed.push({ fields: w.tensor as unknown as Record<string, unknown>, offset, length: bytes.length });
  }
  // Swap each chosen tensor's data fields for an external reference, encode, then put everything back.
  const saved = placed.map(({ fields }) =>
    DATA_KEYS.map((k) =>
      Object.hasOwn(fields, k) ? { k, has: true, v: fields[k] } : { k, has: false, v: undefined },
    ),
  );
  try {
    for (const { fields, offset, length } of placed) {
      for (const k of DATA_KEYS) delete fields[k];
      fields.data_location = 1;
      fields.external_data = [
        { key: 'location', value: layout.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ];
    }
    return { model: writeOnnx(model), data, dataBytes: end };
  } finally {
    placed.forEach(({ fields }, i) => {
      for (const s of saved[i] ?? []) {
        if (s.has) fields[s.k] = s.v;
        else delete fields[s.k];
      }
    });
  }
}

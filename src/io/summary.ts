/** Size statistics of a ModelView, as `mixq inspect` prints them. */
import type { ModelView } from '../graph/model.ts';

export interface ModelSummary {
  readonly format: ModelView['format'];
  readonly tensorCount: number;
  readonly parameterCount: number;
  readonly totalBytes: number;
  /** Bytes per stored dtype, largest first. */
  readonly bytesByDtype: Readonly<Record<string, number>>;
  /** 8 * totalBytes / parameterCount (0 for an empty model). */
  readonly averageBitsPerWeight: number;
  readonly quantizable: {
    readonly tensors: number;
    readonly parameters: number;
    readonly bytes: number;
    /** Bits per weight over the quantizable weights only. */
    readonly averageBitsPerWeight: number;
  };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Parameter count, bytes by dtype and average bits per weight of a model.
 * @example summarizeModel(await openModelView(src)).averageBitsPerWeight
 */
export function summarizeModel(view: ModelView): ModelSummary {
  let params = 0;
  let bytes = 0;
  let qParams = 0;
  let qBytes = 0;
  let qTensors = 0;
  const byDtype = new Map<string, number>();
  for (const t of view.tensors) {
    const n = numel(t.shape);
    params += n;
    bytes += t.byteLength;
    byDtype.set(t.dtype, (byDtype.get(t.dtype) ?? 0) + t.byteLength);
    if (t.quantizable) {
      qTensors++;
      qParams += n;
      qBytes += t.byteLength;
    }
  }
  return {
    format: view.format,
    tensorCount: view.tensors.length,
    parameterCount: params,
    totalBytes: bytes,
    bytesByDtype: Object.fromEntries([...byDtype].sort((a, b) => b[1] - a[1])),
    averageBitsPerWeight: params ? (8 * bytes) / params : 0,
    quantizable: {
      tensors: qTensors,
      parameters: qParams,
      bytes: qBytes,
      averageBitsPerWeight: qParams ? (8 * qBytes) / qParams : 0,
    },
  };
}

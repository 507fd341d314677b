/**
 * Moves every external tensor of a model into the model itself (raw_data), so the bytes of writeOnnx are
 * self-contained: what onnxruntime-web / InferenceSession.create(bytes) need when the original weights
 * lived in a side file (e.g. the bundled GPT's model.safetensors). Uses the model's external data resolver.
 */
import type { OnnxModel } from './read.ts';
import { loadTensorBytes, setTensorBytes } from './tensor-data.ts';
import { listWeights } from './weights.ts';

/** Inlines external tensors in place; returns how many were moved. */
export async function inlineExternalData(model: OnnxModel): Promise<number> {
  let n = 0;
  for (const w of listWeights(model)) {
    if (w.storage !== 'external' || w.sparse) continue;
    setTensorBytes(w.tensor, await loadTensorBytes(model, w.tensor));
    n++;
  }
  return n;
}

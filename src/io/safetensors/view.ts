/** The format-neutral ModelView of a safetensors header (roles inferred from Hugging Face names). */
import type { ModelView } from '../../graph/model.ts';
import { tensorInfoFromName } from '../names.ts';
import type { SafetensorsHeader } from './read.ts';

/** ModelView of a safetensors file; dtypes are lower-case safetensors names ('f16', 'bf16', 'f8_e4m3'). */
export function safetensorsModelView(h: SafetensorsHeader): ModelView {
  const metadata = Object.create(null) as Record<string, string>;
  if (h.metadata) Object.assign(metadata, h.metadata);
  return {
    format: 'safetensors',
    tensors: h.tensors.map((t) => tensorInfoFromName(t.name, t.shape, t.dtype.toLowerCase(), t.nbytes)),
    metadata,
  };
}

/** The format-neutral ModelView of a parsed GGUF header (roles inferred from llama.cpp tensor names). */
import type { ModelView } from '../../graph/model.ts';
import { tensorInfoFromName } from '../names.ts';
import { type GgufHeader, ggufValueToString } from './read.ts';

/** ModelView of a GGUF file: shapes are logical (ne reversed), dtypes are ggml names in lower case. */
export function ggufModelView(h: GgufHeader): ModelView {
  const metadata = Object.create(null) as Record<string, string>; // '__proto__' stays a plain key
  for (const kv of h.kv) metadata[kv.key] = ggufValueToString(kv.value);
  return {
    format: 'gguf',
    tensors: h.tensors.map((t) => tensorInfoFromName(t.name, t.shape, t.type.name.toLowerCase(), t.nbytes)),
    metadata,
  };
}

/**
 * A structural copy of a decoded model: every message (graph, node, attribute, tensor, value info) and
 * every array is new, so a rewrite of the copy (nodes replaced, initializers removed, an opset raised) never
 * touches the original; leaf values that are never edited in place (byte arrays, long.js int64 values,
 * strings) are shared. Far cheaper than encoding and decoding the model again: no tensor data is copied
 * and nothing is parsed.
 */
import type { ModelProto } from './proto-types.ts';
import type { OnnxModel } from './read.ts';

function isLong(v: object): boolean {
  return (v as { __isLong__?: unknown }).__isLong__ === true;
}

function copy<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v) || isLong(v)) return v;
  if (Array.isArray(v)) return v.map(copy) as T;
  // a protobufjs message (its class keeps the field defaults on the prototype) or a plain object
  const out = Object.create(Object.getPrototypeOf(v) as object) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = copy(x);
  return out as T;
}

/** A copy of the model whose messages can be rewritten freely (same source, limits and external data). */
export function cloneOnnxModel(model: OnnxModel): OnnxModel {
  return { ...model, proto: copy<ModelProto>(model.proto) };
}

/**
 * Format sniffing and opening any supported model file: the container (GGUF, safetensors) or its
 * format-neutral ModelView (src/graph/model.ts). Browser-safe: works on any ByteSource.
 */
import { MixqError } from '../core/errors.ts';
import type { ModelView } from '../graph/model.ts';
import { type GgufFile, ggufModelView, readGguf } from './gguf/index.ts';
import type { IoLimits } from './limits.ts';
import { DEFAULT_ONNX_LIMITS, type OnnxModel, onnxModelView, readOnnx } from './onnx/index.ts';
import { readSafetensors, type SafetensorsFile, safetensorsModelView } from './safetensors/index.ts';
import type { ByteSource } from './source.ts';

export type ModelFormat = 'gguf' | 'safetensors' | 'onnx';

/** Bytes `sniffFormat` wants to see (fewer is fine for short files). */
export const SNIFF_BYTES = 16;

/**
 * Detects a model file's format from its first bytes (and, for ONNX, its name):
 * - GGUF: magic 'GGUF';
 * - safetensors: u64 little-endian header length, then '{';
 * - ONNX: a protobuf ModelProto, whose first field is normally ir_version (tag 0x08); a '.onnx' name is
 *   accepted as a fallback since protobuf has no magic.
 * @example sniffFormat(await src.read(0, 16), 'model.gguf') // 'gguf'
 */
export function sniffFormat(head: Uint8Array, name = ''): ModelFormat | undefined {
  if (head.length >= 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46)
    return 'gguf';
  if (head.length >= 9 && head[8] === 0x7b) {
    const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (n >= 2n && n < 1n << 53n) return 'safetensors';
  }
  if (/\.onnx$/i.test(name)) return 'onnx';
  if (head.length >= 2 && head[0] === 0x08 && head[1]! < 0x80 && head[1]! > 0) return 'onnx';
  return undefined;
}

/** A parsed model file of either container format that mixq reads itself. */
export type OpenedModel =
  | { readonly format: 'gguf'; readonly file: GgufFile }
  | { readonly format: 'safetensors'; readonly file: SafetensorsFile }
  /** An ONNX model read whole (protobuf has no streaming parse); open it with readOnnx / readOnnxFile. */
  | { readonly format: 'onnx'; readonly file: OnnxModel };

/** Sniffs the format of a source; throws a MixqError for unknown content. */
export async function detectFormat(src: ByteSource): Promise<ModelFormat> {
  const head = await src.read(0, Math.min(SNIFF_BYTES, src.size));
  const format = sniffFormat(head, src.name);
  if (!format) {
    throw new MixqError('unrecognised model file', {
      source: src.name,
      field: 'magic',
      expected: "GGUF ('GGUF'), safetensors (u64 length + '{') or ONNX (protobuf, .onnx)",
    });
  }
  return format;
}

/** Opens a GGUF or safetensors file (header only; tensor data is read on demand). */
export async function openModel(
  src: ByteSource,
  opts: { limits?: Partial<IoLimits> } = {},
): Promise<OpenedModel> {
  const format = await detectFormat(src);
  if (format === 'gguf') return { format, file: await readGguf(src, opts) };
  if (format === 'safetensors') return { format, file: await readSafetensors(src, opts) };
  throw new MixqError('ONNX files are not handled by openModel; use the ONNX adapter', {
    source: src.name,
    field: 'format',
    expected: 'GGUF or safetensors',
  });
}

/**
 * The ModelView of any supported model file.
 * @example const view = await openModelView(await fileSource('model.safetensors'));
 */
export async function openModelView(
  src: ByteSource,
  opts: { limits?: Partial<IoLimits> } = {},
): Promise<ModelView> {
  const format = await detectFormat(src);
  if (format === 'gguf') return ggufModelView(await readGguf(src, opts));
  if (format === 'safetensors') return safetensorsModelView(await readSafetensors(src, opts));
  // ONNX: protobuf has no streaming parse, so the model message is read whole (it is at most 2 GiB;
  // bigger models keep weights in external data, which a view does not need).
  if (src.size > DEFAULT_ONNX_LIMITS.maxModelBytes) {
    throw new MixqError(`model is ${src.size} bytes`, {
      source: src.name,
      field: 'ModelProto',
      expected: `at most ${DEFAULT_ONNX_LIMITS.maxModelBytes} bytes (protobuf's 2 GiB limit)`,
    });
  }
  return onnxModelView(readOnnx(await src.read(0, src.size), { source: src.name }));
}

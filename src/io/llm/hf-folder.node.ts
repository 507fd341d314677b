/**
 * Node edge of io/llm/hf-folder.ts: a FolderSource over a directory, and the HF folder -> GGUF conversion
 * written atomically, streamed (memory bounded by the largest tensor).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { fileSource } from '../files.node.ts';
import { writeFileAtomicStream } from '../file-stream.node.ts';
import type { ByteSource } from '../source.ts';
import {
  type FolderSource,
  type HfGgufConversion,
  type HfToGgufOptions,
  hfToGguf,
  openHfFolder,
} from './hf-folder.ts';

/**
 * A FolderSource over a directory, listing its files and those of its subfolders by relative path with '/'
 * ('onnx/model.onnx'); call `close()` to release the files it opened.
 */
export async function hfFolderSource(dir: string): Promise<FolderSource & { close(): Promise<void> }> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new MixqError('not a folder', {
      source: dir,
      expected: 'a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)',
    });
  const files = (await readdir(dir, { withFileTypes: true, recursive: true }))
    .filter((d) => d.isFile())
    .map((d) =>
      relative(dir, join(d.parentPath ?? d.path, d.name))
        .split(sep)
        .join('/'),
    );
  const open = new Map<string, Promise<ByteSource & { close(): Promise<void> }>>();
  return {
    name: dir,
    list: () => Promise.resolve(files),
    open(file) {
      if (!files.includes(file))
        return Promise.reject(new MixqError(`no ${file}`, { source: dir, field: file }));
      let p = open.get(file);
      if (!p) {
        p = fileSource(join(dir, file));
        open.set(file, p);
      }
      return p;
    },
    async close() {
      for (const p of open.values()) await (await p).close();
      open.clear();
    },
  };
}

export interface ConvertHfFolderResult {
  readonly out: string;
  readonly bytes: number;
  readonly tensors: number;
  /** Each written tensor: Hugging Face and GGUF names, stored dtype and GGUF type, ggml dims. */
  readonly written: HfGgufConversion['tensors'];
}

/**
 * Converts a llama-family Hugging Face folder to a GGUF at `out` (atomic; never over a file of the folder).
 * @example await convertHfFolderToGguf('TinyLlama-1.1B', 'tinyllama-f16.gguf', { matrixType: 'F16' })
 */
export async function convertHfFolderToGguf(
  dir: string,
  out: string,
  opts: HfToGgufOptions = {},
): Promise<ConvertHfFolderResult> {
  const folder = await hfFolderSource(dir);
  try {
    const hf = await openHfFolder(folder);
    const conv = hfToGguf(hf, opts);
    const protect = (await folder.list()).map((f) => join(dir, f));
    const bytes = await writeFileAtomicStream(out, conv.chunks(), protect);
    return { out, bytes, tensors: conv.tensors.length, written: conv.tensors };
  } finally {
    await folder.close();
  }
}

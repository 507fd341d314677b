/**
 * Node edge of the engine: open a GGUF file or a Hugging Face folder from disk and load it on worker
 * threads. GGUF tensor bytes are read from the file straight into kernel memory (no intermediate buffer),
 * so a loaded model holds its file's tensor bytes once, plus its KV cache.
 */
import { open, stat } from 'node:fs/promises';
import { MixqError } from '../core/errors.ts';
import { readGguf } from '../io/gguf/read.ts';
import { fileSource } from '../io/files.node.ts';
import { hfFolderSource } from '../io/llm/hf-folder.node.ts';
import { createKernels } from '../kernels/context.ts';
import { createKernelPool } from '../kernels/pool.node.ts';
import { type LoadOptions, type LoadReport, loadEngineModel } from './load.ts';
import type { EngineModel } from './model.ts';
import { engineFileSource, ggufModelSource, hfModelSource, type ModelSource } from './source.ts';
import { SNIFF_BYTES, sniffFormat } from '../io/open.ts';
import { readSafetensors } from '../io/safetensors/read.ts';

export interface OpenModelOptions extends LoadOptions {
  /** Threads for the matrix products (default 1; worker threads over one shared memory beyond that). */
  readonly threads?: number;
  /** Relaxed SIMD where the engine has it (default 'auto'). */
  readonly relaxed?: boolean | 'auto';
  /** With threads > 1: microseconds waiting threads poll before they sleep (KernelPoolOptions.pollMicros). */
  readonly pollMicros?: number;
}

/** A model loaded from disk; `close()` stops its threads. */
export type LoadedModel = EngineModel & { readonly load: LoadReport; close(): Promise<void> };

/**
 * Opens a model from disk: a .gguf file, a mixq engine file (quantized safetensors with the model's GGUF
 * key-values, what `mixq quantize --emit runtime` writes), or a folder with config.json, tokenizer.json and
 * safetensors (float weights, or mixq's quantized safetensors).
 * @example const m = await openEngineModel('model.gguf', { threads: 2 }); ...; await m.close();
 */
export async function openEngineModel(path: string, opts: OpenModelOptions = {}): Promise<LoadedModel> {
  const st = await stat(path).catch(() => undefined);
  if (!st)
    throw new MixqError('no such file or folder', {
      source: path,
      expected: 'a .gguf file or a Hugging Face folder (config.json, tokenizer.json, *.safetensors)',
    });
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    let src: ModelSource;
    if (st.isDirectory()) {
      const folder = await hfFolderSource(path);
      closers.push(() => folder.close());
      src = await hfModelSource(folder);
    } else {
      const fs = await fileSource(path);
      closers.push(() => fs.close());
      const fh = await open(path, 'r');
      closers.push(() => fh.close());
      const readInto = async (offset: number, dest: Uint8Array) => {
        let done = 0;
        while (done < dest.length) {
          const { bytesRead } = await fh.read(dest, done, dest.length - done, offset + done);
          if (bytesRead === 0)
            throw new MixqError('file ended early', { source: path, field: `bytes ${offset + done}..` });
          done += bytesRead;
        }
      };
      const format = sniffFormat(await fs.read(0, Math.min(SNIFF_BYTES, fs.size)), path);
      if (format === 'gguf') src = ggufModelSource(await readGguf(fs), readInto);
      else if (format === 'safetensors') src = engineFileSource(await readSafetensors(fs), readInto);
      else
        throw new MixqError('not a model the engine reads', {
          source: path,
          field: 'magic',
          expected: 'a GGUF file, a mixq engine file (.safetensors) or a Hugging Face folder',
        });
    }
    const threads = opts.threads ?? 1;
    const relaxed = opts.relaxed ?? 'auto';
    const pool =
      threads === 1
        ? undefined
        : await createKernelPool({
            threads,
            relaxed,
            ...(opts.pollMicros !== undefined ? { pollMicros: opts.pollMicros } : {}),
          });
    const kernels = pool ?? (await createKernels({ relaxed }));
    const stop = () => (pool ? pool.close() : Promise.resolve());
    let model: EngineModel & { readonly load: LoadReport };
    try {
      model = await loadEngineModel(kernels, src, opts);
    } catch (e) {
      await stop();
      throw e;
    }
    await closeAll(); // the files are no longer needed once the weights are in memory
    return Object.assign(model, { close: stop });
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/**
 * Node-only file edges: a ByteSource over a file handle, atomic writes (temp file in the same folder,
 * then rename) so an interrupted run never leaves a half-written output and never touches an input, and
 * a file's identity (name, size, sha256).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { ByteSource } from './source.ts';

/** Opens a file for random access. Call `close()` when done. */
export async function fileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const fh = await open(path, 'r');
  const { size } = await fh.stat();
  return {
    name: path,
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(`${path}: read of ${length} bytes at ${offset} is past the end (${size})`);
      }
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new RangeError(`${path}: file shrank while reading`);
        done += bytesRead;
      }
      return buf;
    },
    close: () => fh.close(),
  };
}

/**
 * Writes `data` to `path` atomically. Refuses to write over `protect` paths (the inputs of a command).
 * `data` may be one buffer or a list written in order (for outputs larger than one buffer).
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | readonly (Uint8Array | string)[],
  protect: readonly string[] = [],
): Promise<void> {
  const target = resolve(path);
  if (protect.some((p) => resolve(p) === target)) {
    throw new Error(`refusing to overwrite the input file ${path}; choose another output path`);
  }
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
  try {
    if (Array.isArray(data)) {
      const fh = await open(tmp, 'w');
      try {
        for (const chunk of data as readonly (Uint8Array | string)[]) {
          if (typeof chunk === 'string') await fh.write(chunk);
          else await fh.write(chunk);
        }
      } finally {
        await fh.close();
      }
    } else {
      await writeFile(tmp, data as Uint8Array | string);
    }
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A file's identity as a plan records it: its name, size and sha256 (read as a stream, never whole).
 * @example const { sha256 } = await fileIdentity('model.gguf');
 */
export async function fileIdentity(path: string): Promise<{ file: string; size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { file: basename(path), size, sha256: hash.digest('hex') };
}

/**
 * Node-only streaming file helpers for model files larger than one buffer (a 7B F16 GGUF is 13.5 GB;
 * Node's readFile stops at 2 GiB): a sha256 read in fixed-size chunks, and an atomic write of a stream
 * of chunks (temp file in the same folder, then rename; never over a protected input).
 */
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { MixqError } from '../core/errors.ts';

/** Bytes read per step by sha256File (4 MiB: memory stays flat whatever the file size). */
export const HASH_CHUNK_BYTES = 4 << 20;

/**
 * sha256 (hex) and size of a file, read in HASH_CHUNK_BYTES steps.
 * @example const { sha256, size } = await sha256File('model.gguf')
 */
export async function sha256File(
  path: string,
  chunkBytes = HASH_CHUNK_BYTES,
): Promise<{ sha256: string; size: number }> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new MixqError(`cannot open: ${(e as Error).message}`, { source: path });
  });
  try {
    const hash = createHash('sha256');
    const buf = new Uint8Array(chunkBytes);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { sha256: hash.digest('hex'), size };
  } finally {
    await fh.close();
  }
}

/**
 * Writes a file atomically from a producer that pushes its bytes: `fill` gets a `write(chunk)` that
 * appends the chunk (await it before the next) and may return a value, which this returns with the
 * bytes written. The bytes go to a temp file in the same folder, renamed over `path` only when `fill`
 * resolves; if `fill` or a write throws, the temp file is removed and the error rethrown (no partial
 * output). Refuses to write over `protect` paths (the inputs of a command).
 * @example const { value: report } = await writeFileAtomicSink('out.gguf', (w) => requantizeGgufTo(file, plan, w))
 */
export async function writeFileAtomicSink<T>(
  path: string,
  fill: (write: (chunk: Uint8Array) => Promise<void>) => Promise<T>,
  protect: readonly string[] = [],
): Promise<{ value: T; bytes: number }> {
  const target = resolve(path);
  if (protect.some((p) => resolve(p) === target))
    throw new MixqError('refusing to overwrite the input file', {
      source: path,
      expected: 'another output path',
    });
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'w').catch((e: unknown) => {
    throw new MixqError(`cannot write: ${(e as Error).message}`, { source: path });
  });
  let n = 0;
  const write = async (c: Uint8Array): Promise<void> => {
    let done = 0;
    while (done < c.length) {
      const { bytesWritten } = await fh.write(c, done, c.length - done, n + done);
      done += bytesWritten;
    }
    n += c.length;
  };
  try {
    const value = await fill(write);
    await fh.close();
    await rename(tmp, target);
    return { value, bytes: n };
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes chunks from an (async) iterable to `path` atomically; refuses to write over `protect` paths.
 * Returns the bytes written.
 */
export async function writeFileAtomicStream(
  path: string,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  protect: readonly string[] = [],
): Promise<number> {
  const r = await writeFileAtomicSink(
    path,
    async (write) => {
      for await (const c of chunks) await write(c);
    },
    protect,
  );
  return r.bytes;
}

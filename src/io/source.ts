/**
 * Random access to the bytes of a model file without loading it whole. Node (file handle) and the browser
 * (Blob / ArrayBuffer) each provide one; parsers read only what they need.
 */
import { MixqError } from '../core/errors.ts';

export interface ByteSource {
  /** Name used in error messages (file path or a label). */
  readonly name: string;
  readonly size: number;
  /** Reads exactly `length` bytes at `offset`; throws if the range is outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * Reads through `src` for a parser: a MixqError from the source passes through, any other failure (I/O,
 * out-of-range RangeError) becomes a MixqError naming the source and the offset.
 */
export async function readSourceBytes(src: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  try {
    return await src.read(offset, length);
  } catch (e) {
    if (e instanceof MixqError) throw e;
    throw new MixqError(`read failed: ${(e as Error).message}`, {
      source: src.name,
      field: `bytes ${offset}..`,
    });
  }
}

/**
 * Reads `length` bytes at `offset` inside a tensor's data (`absOffset`, `nbytes` in the file): a positioned
 * read of part of a tensor (sampled rows, a run of rows) instead of the whole. A range outside the tensor
 * is a MixqError naming the tensor.
 */
export function readTensorRange(
  src: ByteSource,
  tensor: { readonly name: string; readonly absOffset: number; readonly nbytes: number },
  offset: number,
  length: number,
): Promise<Uint8Array> {
  if (
    !(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0) ||
    offset + length > tensor.nbytes
  )
    return Promise.reject(
      new MixqError(`bytes ${offset}..${offset + length} are outside the tensor`, {
        source: src.name,
        field: `tensor '${tensor.name}'`,
        expected: `a range inside its ${tensor.nbytes} bytes`,
      }),
    );
  return readSourceBytes(src, tensor.absOffset + offset, length);
}

/** A ByteSource over bytes already in memory. */
export function bytesSource(bytes: Uint8Array, name = '<memory>'): ByteSource {
  return {
    name,
    size: bytes.length,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.length) {
        return Promise.reject(
          new RangeError(`${name}: read of ${length} bytes at ${offset} is past the end (${bytes.length})`),
        );
      }
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

/** A ByteSource over a browser Blob/File (also works in Node 20, which has Blob). */
export function blobSource(blob: Blob, name = '<blob>'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > blob.size) {
        throw new RangeError(`${name}: read of ${length} bytes at ${offset} is past the end (${blob.size})`);
      }
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/**
 * safetensors writer, byte-compatible with the reference implementation (huggingface/safetensors
 * `serialize`): compact JSON header with `__metadata__` first and tensors in data order, padded with
 * spaces so the data section starts at a multiple of 8, then the tensors' bytes back to back.
 * `referenceOrder` sorts tensors like the reference (larger element size first, then by name) so every
 * tensor is naturally aligned.
 */
import { MixqError } from '../../core/errors.ts';
import { isSafetensorsDtype, SAFETENSORS_DTYPE_BYTES, type SafetensorsDtype } from './dtypes.ts';

export interface SafetensorsTensorInput {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export interface SafetensorsWriteInput {
  readonly tensors: readonly SafetensorsTensorInput[];
  readonly metadata?: Readonly<Record<string, string>>;
}

const SOURCE = 'safetensors writer';

/** Sorts like the reference writer: element size descending, then name (code-unit order). */
export function referenceOrder<T extends { name: string; dtype: SafetensorsDtype }>(
  tensors: readonly T[],
): T[] {
  return [...tensors].sort(
    (a, b) =>
      SAFETENSORS_DTYPE_BYTES[b.dtype] - SAFETENSORS_DTYPE_BYTES[a.dtype] ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/**
 * Serialises tensors (in the given order) into safetensors chunks: [length+header, data...].
 * @example writeFileAtomic('w.safetensors', writeSafetensors({ tensors: referenceOrder(ts) }))
 */
export function writeSafetensors(input: SafetensorsWriteInput): Uint8Array[] {
  const parts: string[] = [];
  if (input.metadata) {
    const entries = Object.keys(input.metadata).map(
      (k) => `${JSON.stringify(k)}:${JSON.stringify(input.metadata![k])}`,
    );
    parts.push(`"__metadata__":{${entries.join(',')}}`);
  }
  let offset = 0;
  const names = new Set<string>();
  input.tensors.forEach((t, i) => {
    const f = `tensors[${i}]`;
    if (t.name === '__metadata__' || names.has(t.name)) {
      throw new MixqError(`tensor name '${t.name}' is reserved or repeated`, {
        source: SOURCE,
        field: `${f}.name`,
        expected: 'unique names other than __metadata__',
      });
    }
    names.add(t.name);
    if (!isSafetensorsDtype(t.dtype)) {
      throw new MixqError(`unknown dtype ${String(t.dtype)}`, {
        source: SOURCE,
        field: `${f}.dtype`,
        expected: 'a safetensors dtype',
      });
    }
    let n = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new MixqError(`bad dimension ${d}`, {
          source: SOURCE,
          field: `${f}.shape`,
          expected: 'non-negative integers',
        });
      }
      n *= d;
    }
    const nbytes = n * SAFETENSORS_DTYPE_BYTES[t.dtype];
    if (t.data.length !== nbytes) {
      throw new MixqError(`tensor '${t.name}' has ${t.data.length} bytes`, {
        source: SOURCE,
        field: `${f}.data`,
        expected: `${nbytes} bytes`,
      });
    }
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + nbytes}]}`,
    );
    offset += nbytes;
  });
  let header = new TextEncoder().encode(`{${parts.join(',')}}`);
  const pad = (8 - (header.length % 8)) % 8;
  if (pad) {
    const padded = new Uint8Array(header.length + pad).fill(0x20);
    padded.set(header);
    header = padded;
  }
  const head = new Uint8Array(8 + header.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(header.length), true);
  head.set(header, 8);
  return [head, ...input.tensors.map((t) => t.data)];
}

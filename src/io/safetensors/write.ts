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

/** A tensor as the header describes it (its data follows later). */
export interface SafetensorsTensorLayoutInput {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
}

export interface SafetensorsHeaderLayout {
  /** u64 length + JSON header padded with spaces to a multiple of 8: the data section follows. */
  readonly header: Uint8Array;
  /** Bytes of each tensor's data, in input order (tensors are back to back, no padding). */
  readonly nbytes: readonly number[];
  /** Total file size. */
  readonly fileSize: number;
}

/**
 * The header of a safetensors file whose tensors (in the given order) follow it back to back: what
 * writeSafetensors writes before the data, computed from names, dtypes and shapes alone so a writer can
 * stream the tensors afterwards.
 * @example const l = safetensorsHeaderLayout(metas, metadata); sink(l.header); for (...) sink(data)
 */
export function safetensorsHeaderLayout(
  tensors: readonly SafetensorsTensorLayoutInput[],
  metadata?: Readonly<Record<string, string>>,
): SafetensorsHeaderLayout {
  const parts: string[] = [];
  if (metadata) {
    const entries = Object.keys(metadata).map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    parts.push(`"__metadata__":{${entries.join(',')}}`);
  }
  let offset = 0;
  const names = new Set<string>();
  const sizes: number[] = [];
  tensors.forEach((t, i) => {
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
    sizes.push(nbytes);
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + nbytes}]}`,
    );
    offset += nbytes;
  });
  let json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const header = new Uint8Array(8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(json.length), true);
  header.set(json, 8);
  return { header, nbytes: sizes, fileSize: header.length + offset };
}

/**
 * Serialises tensors (in the given order) into safetensors chunks: [length+header, data...].
 * @example writeFileAtomic('w.safetensors', writeSafetensors({ tensors: referenceOrder(ts) }))
 */
export function writeSafetensors(input: SafetensorsWriteInput): Uint8Array[] {
  const layout = safetensorsHeaderLayout(input.tensors, input.metadata);
  input.tensors.forEach((t, i) => {
    if (t.data.length !== layout.nbytes[i]) {
      throw new MixqError(`tensor '${t.name}' has ${t.data.length} bytes`, {
        source: SOURCE,
        field: `tensors[${i}].data`,
        expected: `${layout.nbytes[i]} bytes`,
      });
    }
  });
  return [layout.header, ...input.tensors.map((t) => t.data)];
}

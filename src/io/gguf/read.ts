/**
 * GGUF reader (versions 2 and 3, little-endian), hardened for untrusted files.
 *
 * Layout (ggml/docs/gguf.md and ggml/src/gguf.cpp at ggml-org/ggml d99724f):
 *   magic 'GGUF' | version u32 | n_tensors u64 | n_kv u64
 *   kv[n_kv]:          key (u64 len + UTF-8) | value type u32 | value
 *                      (arrays: element type u32 | count u64 | elements; arrays may nest)
 *   tensor_infos[n]:   name | n_dims u32 | ne[n_dims] u64 (ggml order: ne[0] contiguous) | ggml type u32 |
 *                      offset u64 (relative to the data section, a multiple of the alignment)
 *   zero padding to `general.alignment` (u32, default 32), then the data section.
 * Only the header is read; tensor data is read on demand with `readTensorBytes`.
 *
 * Checks (a failure is a MixqError naming the file and field): known value/tensor types; every count and
 * length within IoLimits and within the bytes left in the file; bool is 0/1; no duplicate keys or tensor
 * names; 1..4 dims, each dim <= 2^53-1 and their product too; ne[0] a multiple of the block size;
 * alignment a power of two; tensor offsets aligned, inside the file and not overlapping.
 */
import { MixqError } from '../../core/errors.ts';
import { DEFAULT_LIMITS, GGML_MAX_DIMS, type IoLimits, resolveLimits } from '../limits.ts';
import { alignUp, ByteReader, NeedMoreBytes } from '../reader.ts';
import { type ByteSource, readSourceBytes, readTensorRange } from '../source.ts';
import {
  GGUF_VALUE_MIN_BYTES,
  GGUF_VALUE_TYPES,
  type GgmlTypeTraits,
  type GgufValueType,
  ggmlTypeById,
} from './types.ts';

/** An array value: element type and elements (elements of an 'arr' array are GgufArray themselves). */
export interface GgufArray {
  readonly itemType: GgufValueType;
  readonly items: readonly GgufValue[];
}
/** u64/i64 are bigint; other integers and floats are numbers; bool is boolean; str is string. */
export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufKV {
  readonly key: string;
  readonly type: GgufValueType;
  readonly value: GgufValue;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** Dimensions in ggml order (ne[0] is contiguous), as stored (n_dims entries). */
  readonly ne: readonly number[];
  /** Logical row-major shape = ne reversed (what safetensors/PyTorch would call the shape). */
  readonly shape: readonly number[];
  readonly typeId: number;
  readonly type: GgmlTypeTraits;
  readonly nElements: number;
  /** Offset as stored, relative to the data section. */
  readonly offset: number;
  /** Absolute offset in the file (dataOffset + offset). */
  readonly absOffset: number;
  readonly nbytes: number;
}

export interface GgufHeader {
  readonly source: string;
  readonly version: number;
  readonly alignment: number;
  readonly alignmentKeyPresent: boolean;
  readonly kv: readonly GgufKV[];
  readonly tensors: readonly GgufTensorInfo[];
  /** Byte offset right after the last tensor info. */
  readonly tensorInfoEnd: number;
  /** Start of the data section: tensorInfoEnd rounded up to the alignment. */
  readonly dataOffset: number;
  readonly fileSize: number;
  /** Estimated bytes of JS objects the parse created (bounded by IoLimits.maxTotalAllocation). */
  readonly chargedBytes: number;
}

export interface GgufFile extends GgufHeader {
  /** Value of a metadata key, or undefined. */
  get(key: string): GgufValue | undefined;
  /** Reads one tensor's raw bytes (exactly `nbytes`, no padding). */
  readTensorBytes(info: GgufTensorInfo): Promise<Uint8Array>;
  /** Reads `length` bytes at byte `offset` of one tensor's data (part of a tensor: rows, a run of rows). */
  readTensorRange(info: GgufTensorInfo, offset: number, length: number): Promise<Uint8Array>;
}

export interface ReadOptions {
  limits?: Partial<IoLimits>;
  /** Size of the first prefix read (default 1 MiB); the prefix doubles until the header fits. */
  initialReadBytes?: number;
}

const MAGIC = 0x46554747; // 'GGUF' read as little-endian u32

/**
 * Parses the header of a GGUF file from a ByteSource, loading only a growing prefix of the file.
 * @example const f = await readGguf(await fileSource('model.gguf')); f.tensors[0].shape
 */
export async function readGguf(src: ByteSource, opts: ReadOptions = {}): Promise<GgufFile> {
  const limits = resolveLimits(opts.limits);
  let len = Math.min(src.size, Math.max(16, opts.initialReadBytes ?? 1 << 20), limits.maxHeaderBytes);
  for (;;) {
    const prefix = await readSourceBytes(src, 0, len);
    try {
      const header = parseGgufHeader(prefix, src.name, src.size, limits);
      return attach(header, src);
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      if (e.needEnd > limits.maxHeaderBytes) {
        throw new MixqError(`header is larger than the limit`, {
          source: src.name,
          field: 'header',
          expected: `at most ${limits.maxHeaderBytes} bytes (IoLimits.maxHeaderBytes)`,
        });
      }
      len = Math.min(src.size, limits.maxHeaderBytes, Math.max(e.needEnd, 2 * len));
    }
  }
}

/** Parses a GGUF file held in memory. */
export function parseGguf(bytes: Uint8Array, name = '<memory>', opts: ReadOptions = {}): GgufFile {
  const limits = resolveLimits(opts.limits);
  if (bytes.length > limits.maxHeaderBytes) {
    // parse only the capped prefix; a header that does not fit fails with a clear message
    try {
      return attach(parseGgufHeader(bytes.subarray(0, limits.maxHeaderBytes), name, bytes.length, limits), {
        name,
        size: bytes.length,
        read: (o, l) => Promise.resolve(bytes.subarray(o, o + l)),
      });
    } catch (e) {
      if (e instanceof NeedMoreBytes) {
        throw new MixqError('header is larger than the limit', {
          source: name,
          field: 'header',
          expected: `at most ${limits.maxHeaderBytes} bytes`,
        });
      }
      throw e;
    }
  }
  const header = parseGgufHeader(bytes, name, bytes.length, limits);
  return attach(header, {
    name,
    size: bytes.length,
    read: (o, l) => Promise.resolve(bytes.subarray(o, o + l)),
  });
}

function attach(h: GgufHeader, src: ByteSource): GgufFile {
  const map = new Map(h.kv.map((kv) => [kv.key, kv.value]));
  return {
    ...h,
    get: (key) => map.get(key),
    readTensorBytes: (info) => readSourceBytes(src, info.absOffset, info.nbytes),
    readTensorRange: (info, offset, length) => readTensorRange(src, info, offset, length),
  };
}

/**
 * Parses the header from `bytes` (a prefix of a file of `fileSize` bytes). Throws NeedMoreBytes when the
 * prefix is too short but the file is not, MixqError on a malformed file.
 */
export function parseGgufHeader(
  bytes: Uint8Array,
  source: string,
  fileSize: number = bytes.length,
  limits: IoLimits = DEFAULT_LIMITS,
): GgufHeader {
  const r = new ByteReader(bytes, source, fileSize, limits);
  const magic = r.u32('magic');
  if (magic !== MAGIC) {
    throw r.error('not a GGUF file: bad magic', 'magic', "'GGUF' (47 47 55 46)");
  }
  const version = r.u32('version');
  if (version !== 2 && version !== 3) {
    const hint =
      version === 0x03000000 || version === 0x02000000
        ? ' (a big-endian GGUF; only little-endian is supported)'
        : '';
    throw r.error(`unsupported GGUF version ${version}${hint}`, 'version', '2 or 3');
  }
  // smallest tensor info: name len 8 + n_dims 4 + one dim 8 + type 4 + offset 8 = 32 bytes
  const nTensors = r.count('n_tensors', limits.maxTensorCount, 32, 'maxTensorCount');
  // smallest kv: key len 8 + type 4 + a 1-byte value = 13 bytes
  const nKv = r.count('n_kv', limits.maxKvCount, 13, 'maxKvCount');

  const kv: GgufKV[] = [];
  const keys = new Set<string>();
  for (let i = 0; i < nKv; i++) {
    const f = `kv[${i}]`;
    const key = r.string(`${f}.key`);
    if (keys.has(key)) throw r.error(`duplicate key '${key}'`, `${f}.key`, 'unique keys');
    keys.add(key);
    const type = valueType(r, `${f}.type`);
    const value = readValue(r, type, `${f}.value`, 0);
    r.charge(64, f);
    kv.push({ key, type, value });
  }

  let alignment = 32;
  const alignKv = kv.find((x) => x.key === 'general.alignment');
  if (alignKv) {
    const a = alignKv.value;
    if (alignKv.type !== 'u32' || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0 || a > 1 << 30) {
      throw r.error(
        `bad general.alignment ${String(a)} of type ${alignKv.type}`,
        'general.alignment',
        'a u32 power of two',
      );
    }
    alignment = a;
  }

  const raw: Omit<GgufTensorInfo, 'absOffset'>[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const f = `tensor_infos[${i}]`;
    const name = r.string(`${f}.name`);
    if (names.has(name)) throw r.error(`duplicate tensor name '${name}'`, `${f}.name`, 'unique names');
    names.add(name);
    const nDims = r.u32(`${f}.n_dims`);
    if (nDims < 1 || nDims > Math.min(GGML_MAX_DIMS, limits.maxDims)) {
      throw r.error(
        `n_dims ${nDims} out of range`,
        `${f}.n_dims`,
        `1..${Math.min(GGML_MAX_DIMS, limits.maxDims)}`,
      );
    }
    const ne: number[] = [];
    let nElements = 1;
    for (let d = 0; d < nDims; d++) {
      const v = r.u64Below(`${f}.ne[${d}]`, Number.MAX_SAFE_INTEGER, 'dimension');
      ne.push(v);
      nElements *= v;
      if (nElements > Number.MAX_SAFE_INTEGER) {
        throw r.error('element count overflows', `${f}.ne`, `a product <= ${Number.MAX_SAFE_INTEGER}`);
      }
    }
    const typeId = r.u32(`${f}.type`);
    const type = ggmlTypeById(typeId);
    if (!type) throw r.error(`unknown ggml type id ${typeId}`, `${f}.type`, 'a ggml_type id known to mixq');
    if (ne[0]! % type.blockSize !== 0) {
      throw r.error(
        `ne[0] = ${ne[0]} is not a multiple of the ${type.name} block size`,
        `${f}.ne[0]`,
        `a multiple of ${type.blockSize}`,
      );
    }
    const nbytes = (nElements / type.blockSize) * type.typeSize;
    const offset = r.u64Below(`${f}.offset`, Number.MAX_SAFE_INTEGER, 'offset');
    if (offset % alignment !== 0) {
      throw r.error(`offset ${offset} is not aligned`, `${f}.offset`, `a multiple of ${alignment}`);
    }
    r.charge(160 + 16 * nDims, f);
    raw.push({ name, ne, shape: [...ne].reverse(), typeId, type, nElements, offset, nbytes });
  }

  const tensorInfoEnd = r.pos;
  const dataOffset = alignUp(tensorInfoEnd, alignment);
  const dataSize = Math.max(0, fileSize - dataOffset);
  const tensors: GgufTensorInfo[] = raw.map((t, i) => {
    if (t.offset > dataSize || t.nbytes > dataSize - t.offset) {
      throw r.error(
        `tensor '${t.name}' data (${t.nbytes} bytes at data offset ${t.offset}) lies outside the file`,
        `tensor_infos[${i}].offset`,
        `offset + ${t.nbytes} <= ${dataSize} (data section size)`,
      );
    }
    return { ...t, absOffset: dataOffset + t.offset };
  });
  // overlap check: sort by offset, each tensor must start at or after the previous one's end
  const order = tensors.map((_, i) => i).sort((a, b) => tensors[a]!.offset - tensors[b]!.offset);
  for (let k = 1; k < order.length; k++) {
    const prev = tensors[order[k - 1]!]!;
    const cur = tensors[order[k]!]!;
    if (cur.offset < prev.offset + prev.nbytes) {
      throw r.error(
        `tensor '${cur.name}' overlaps tensor '${prev.name}'`,
        `tensor_infos[${order[k]}].offset`,
        `>= ${prev.offset + prev.nbytes}`,
      );
    }
  }
  return {
    source,
    version,
    alignment,
    alignmentKeyPresent: alignKv !== undefined,
    kv,
    tensors,
    tensorInfoEnd,
    dataOffset,
    fileSize,
    chargedBytes: r.charged,
  };
}

function valueType(r: ByteReader, field: string): GgufValueType {
  const id = r.u32(field);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) throw r.error(`unknown value type ${id}`, field, `0..${GGUF_VALUE_TYPES.length - 1}`);
  return t;
}

function readValue(r: ByteReader, type: GgufValueType, field: string, depth: number): GgufValue {
  switch (type) {
    case 'u8':
      return r.u8(field);
    case 'i8':
      return r.i8(field);
    case 'u16':
      return r.u16(field);
    case 'i16':
      return r.i16(field);
    case 'u32':
      return r.u32(field);
    case 'i32':
      return r.i32(field);
    case 'f32':
      return r.f32(field);
    case 'f64':
      return r.f64(field);
    case 'u64':
      return r.u64(field);
    case 'i64':
      return r.i64(field);
    case 'bool': {
      const b = r.u8(field);
      if (b > 1) throw r.error(`bool byte is ${b}`, field, '0 or 1');
      return b === 1;
    }
    case 'str':
      return r.string(field);
    case 'arr': {
      if (depth >= r.limits.maxArrayDepth) {
        throw r.error('arrays nested too deeply', field, `depth at most ${r.limits.maxArrayDepth}`);
      }
      const itemType = valueType(r, `${field}.type`);
      const n = r.count(
        `${field}.n`,
        r.limits.maxArrayLength,
        GGUF_VALUE_MIN_BYTES[itemType],
        'maxArrayLength',
      );
      r.charge(32 + 8 * n, field);
      const items: GgufValue[] = new Array(n);
      if (itemType === 'arr') {
        for (let i = 0; i < n; i++) items[i] = readValue(r, itemType, `${field}[${i}]`, depth + 1);
        return { itemType, items };
      }
      // scalar elements: no per-element field string (it dominated parse time of large vocabularies);
      // on an error the field is re-issued with the element's index
      const itemField = `${field}[]`;
      let i = 0;
      try {
        if (itemType === 'str') for (; i < n; i++) items[i] = r.string(itemField);
        else if (itemType === 'f32') for (; i < n; i++) items[i] = r.f32(itemField);
        else if (itemType === 'i32') for (; i < n; i++) items[i] = r.i32(itemField);
        else for (; i < n; i++) items[i] = readValue(r, itemType, itemField, depth + 1);
      } catch (e) {
        const last = r.lastError;
        if (!(e instanceof MixqError) || !last || last.field !== itemField) throw e;
        throw r.error(last.message, `${field}[${i}]`, last.expected);
      }
      return { itemType, items };
    }
  }
}

/** A one-line string form of a value for ModelView metadata (long arrays are summarised). */
export function ggufValueToString(v: GgufValue, maxItems = 16): string {
  if (typeof v === 'object') {
    if (v.items.length > maxItems) return `[${v.items.length} x ${v.itemType}]`;
    return `[${v.items.map((x) => (typeof x === 'string' ? JSON.stringify(x) : ggufValueToString(x, maxItems))).join(', ')}]`;
  }
  return String(v);
}

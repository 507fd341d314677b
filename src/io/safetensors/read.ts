/**
 * safetensors reader, hardened for untrusted files, with tensor data read on demand.
 *
 * Layout (huggingface/safetensors, docs and safetensors/src/tensor.rs):
 *   N: u64 little-endian | N bytes of UTF-8 JSON, may be padded with trailing spaces | data
 *   JSON: { "__metadata__"?: { string: string }, "<name>": { "dtype", "shape": [..], "data_offsets": [b, e] } }
 *   offsets are relative to the start of the data section.
 * Checks, as the reference implementation's `validate` (a failure is a MixqError naming the file and
 * field): N within IoLimits.maxHeaderBytes and the file; JSON object starting with '{' and nested at
 * most 4 deep (checked before JSON.parse); known dtype; shape of non-negative integers; begin <= end;
 * end - begin == numel * itemsize; tensors, sorted by offset, tile the data section exactly (start at 0,
 * no gap, no overlap, end at the end of the file).
 */
import { MixqError } from '../../core/errors.ts';
import { type IoLimits, resolveLimits } from '../limits.ts';
import { type ByteSource, readSourceBytes, readTensorRange } from '../source.ts';
import { isSafetensorsDtype, SAFETENSORS_DTYPE_BYTES, type SafetensorsDtype } from './dtypes.ts';

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  /** Row-major shape (last dim contiguous). */
  readonly shape: readonly number[];
  readonly nElements: number;
  /** data_offsets[0], relative to the data section. */
  readonly begin: number;
  /** data_offsets[1]. */
  readonly end: number;
  /** Absolute file offset of the first byte. */
  readonly absOffset: number;
  readonly nbytes: number;
}

export interface SafetensorsHeader {
  readonly source: string;
  /** N, the JSON header length (including any padding). */
  readonly headerLength: number;
  /** 8 + N. */
  readonly dataOffset: number;
  readonly fileSize: number;
  /** `__metadata__`, if present. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Tensors in data order (sorted by offset), which is also the reference writer's header order. */
  readonly tensors: readonly SafetensorsTensorInfo[];
}

export interface SafetensorsFile extends SafetensorsHeader {
  /** Reads one tensor's bytes. */
  readTensorBytes(info: SafetensorsTensorInfo): Promise<Uint8Array>;
  /** Reads `length` bytes at byte `offset` of one tensor's data. */
  readTensorRange(info: SafetensorsTensorInfo, offset: number, length: number): Promise<Uint8Array>;
}

const MAX_JSON_DEPTH = 4;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the header of a safetensors file from a ByteSource (two reads: 8 bytes, then the header).
 * @example const st = await readSafetensors(await fileSource('model.safetensors'));
 */
export async function readSafetensors(
  src: ByteSource,
  opts: { limits?: Partial<IoLimits> } = {},
): Promise<SafetensorsFile> {
  const limits = resolveLimits(opts.limits);
  const fail = (message: string, field: string, expected: string) =>
    new MixqError(message, { source: src.name, field, expected });
  if (src.size < 8) throw fail(`file is ${src.size} bytes, too short`, 'header_length', 'at least 8 bytes');
  const lenBytes = await readSourceBytes(src, 0, 8);
  const n = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(limits.maxHeaderBytes)) {
    throw fail(
      `header length ${n} exceeds the limit`,
      'header_length',
      `at most ${limits.maxHeaderBytes} (IoLimits.maxHeaderBytes)`,
    );
  }
  if (n > BigInt(src.size - 8)) {
    throw fail(
      `header length ${n} runs past the end of the file`,
      'header_length',
      `at most ${src.size - 8}`,
    );
  }
  const headerLength = Number(n);
  const json = await readSourceBytes(src, 8, headerLength);
  const header = parseSafetensorsHeader(json, src.name, src.size, limits);
  return {
    ...header,
    readTensorBytes: (t) => readSourceBytes(src, t.absOffset, t.nbytes),
    readTensorRange: (t, offset, length) => readTensorRange(src, t, offset, length),
  };
}

/** Parses a safetensors file held in memory. */
export function parseSafetensors(
  bytes: Uint8Array,
  name = '<memory>',
  opts: { limits?: Partial<IoLimits> } = {},
) {
  return readSafetensors(
    { name, size: bytes.length, read: (o, l) => Promise.resolve(bytes.subarray(o, o + l)) },
    opts,
  );
}

/** Max nesting of [ and { outside strings; stops early once over `cap`. */
function jsonDepth(text: string, cap: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped char
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > cap) return max;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates a JSON header (the N bytes after the length) for a file of `fileSize` bytes.
 */
export function parseSafetensorsHeader(
  json: Uint8Array,
  source: string,
  fileSize: number,
  limits: IoLimits,
): SafetensorsHeader {
  const fail = (message: string, field: string, expected: string) =>
    new MixqError(message, { source, field, expected });
  const dataOffset = 8 + json.length;
  let text: string;
  try {
    text = utf8.decode(json);
  } catch {
    throw fail('header is not valid UTF-8', 'header', 'UTF-8 JSON');
  }
  if (!text.startsWith('{'))
    throw fail('header does not start with {', 'header', "a JSON object starting with '{'");
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw fail('header JSON is nested too deeply', 'header', `depth at most ${MAX_JSON_DEPTH}`);
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw fail(`header is not valid JSON (${(e as Error).message})`, 'header', 'JSON');
  }
  if (!isObject(root)) throw fail('header is not a JSON object', 'header', 'a JSON object');

  let metadata: Record<string, string> | undefined;
  const tensors: SafetensorsTensorInfo[] = [];
  const names = Object.keys(root);
  if (names.length > limits.maxTensorCount + 1) {
    throw fail(`${names.length} entries`, 'header', `at most ${limits.maxTensorCount} tensors`);
  }
  for (const name of names) {
    const entry = root[name];
    if (name === '__metadata__') {
      if (!isObject(entry))
        throw fail('__metadata__ is not an object', '__metadata__', 'an object of strings');
      metadata = Object.create(null) as Record<string, string>; // a '__proto__' key stays a plain key
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw fail(`value is ${typeof v}`, `__metadata__.${k}`, 'a string');
        metadata[k] = v;
      }
      continue;
    }
    const f = `tensors['${name}']`;
    if (!isObject(entry)) throw fail('entry is not an object', f, '{ dtype, shape, data_offsets }');
    const dtype = entry.dtype;
    if (typeof dtype !== 'string' || !isSafetensorsDtype(dtype)) {
      throw fail(
        `unsupported dtype ${JSON.stringify(dtype)}`,
        `${f}.dtype`,
        Object.keys(SAFETENSORS_DTYPE_BYTES).join('|'),
      );
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || shape.length > limits.maxDims) {
      throw fail('bad shape', `${f}.shape`, `an array of at most ${limits.maxDims} non-negative integers`);
    }
    let nElements = 1;
    for (const [d, v] of shape.entries()) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        throw fail(`bad dimension ${JSON.stringify(v)}`, `${f}.shape[${d}]`, 'a non-negative integer');
      }
      nElements *= v;
      if (nElements > Number.MAX_SAFE_INTEGER)
        throw fail('element count overflows', `${f}.shape`, 'a smaller shape');
    }
    const offs = entry.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
    ) {
      throw fail('bad data_offsets', `${f}.data_offsets`, '[begin, end], non-negative integers');
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) throw fail(`begin ${begin} > end ${end}`, `${f}.data_offsets`, 'begin <= end');
    const nbytes = nElements * SAFETENSORS_DTYPE_BYTES[dtype];
    if (end - begin !== nbytes) {
      throw fail(
        `data_offsets span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${nbytes}`,
        `${f}.data_offsets`,
        `end - begin = ${nbytes}`,
      );
    }
    tensors.push({
      name,
      dtype,
      shape: shape as number[],
      nElements,
      begin,
      end,
      absOffset: dataOffset + begin,
      nbytes,
    });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataSize = fileSize - dataOffset;
  let pos = 0;
  for (const t of tensors) {
    if (t.begin !== pos) {
      throw fail(
        t.begin < pos ? `overlaps the previous tensor` : `leaves a gap of ${t.begin - pos} bytes before it`,
        `tensors['${t.name}'].data_offsets`,
        `begin = ${pos} (tensors must tile the data section)`,
      );
    }
    pos = t.end;
  }
  if (pos !== dataSize) {
    throw fail(
      `tensors cover ${pos} bytes but the data section has ${dataSize}`,
      'data_offsets',
      `the last tensor to end at ${dataSize}`,
    );
  }
  return {
    source,
    headerLength: json.length,
    dataOffset,
    fileSize,
    ...(metadata ? { metadata } : {}),
    tensors,
  };
}

/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0; numpy's `lib/format.py` documents the layout):
 *
 *   "\x93NUMPY" major minor  header_len (u16 LE for 1.0, u32 LE for 2.0/3.0)  header  data
 *
 * The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), },
 * padded with spaces to a multiple of 64 bytes and ended by '\n'. Only what a calibration feed needs is
 * read: little-endian (or byte-order-free) bool, integer and float dtypes in C order. Everything else is
 * refused with a one-line error that names the file and field, before anything is allocated.
 */
import { MixqError } from '../core/errors.ts';
import { f16BitsToF32 } from '../core/bits.ts';

export type NpyDType =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float16'
  | 'float32'
  | 'float64';

export type NpyData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A C-ordered array read from an .npy file. float16 data is widened to Float32Array on read. */
export interface NpyArray {
  /** The file's element type (float16 arrays keep 'float16' here; their data is float32). */
  readonly dtype: NpyDType;
  readonly shape: readonly number[];
  readonly data: NpyData;
}

/** descr (without byte-order char) -> dtype and element bytes. */
const DESCR: Record<string, { dtype: NpyDType; bytes: number }> = {
  b1: { dtype: 'bool', bytes: 1 },
  i1: { dtype: 'int8', bytes: 1 },
  u1: { dtype: 'uint8', bytes: 1 },
  i2: { dtype: 'int16', bytes: 2 },
  u2: { dtype: 'uint16', bytes: 2 },
  i4: { dtype: 'int32', bytes: 4 },
  u4: { dtype: 'uint32', bytes: 4 },
  i8: { dtype: 'int64', bytes: 8 },
  u8: { dtype: 'uint64', bytes: 8 },
  f2: { dtype: 'float16', bytes: 2 },
  f4: { dtype: 'float32', bytes: 4 },
  f8: { dtype: 'float64', bytes: 8 },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Caps: a header is at most this long (numpy itself warns past 10 KB), and at most 32 dims. */
export const NPY_MAX_HEADER_BYTES = 1 << 16;
export const NPY_MAX_DIMS = 32;

export interface NpyReadOptions {
  /** Largest data size accepted, bytes (default 2 GiB - 1, the largest typed array one buffer holds). */
  readonly maxBytes?: number;
}

/** Whether `bytes` starts like an .npy file. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Parses an .npy file. `source` names it in errors.
 * @example readNpy(fs.readFileSync('x.npy'), 'x.npy') // { dtype: 'float32', shape: [1, 3, 32, 32], data }
 */
export function readNpy(bytes: Uint8Array, source: string, opts: NpyReadOptions = {}): NpyArray {
  if (!isNpy(bytes))
    throw new MixqError('not an .npy file', { source, field: 'magic', expected: '\\x93NUMPY' });
  if (bytes.length < 10) throw new MixqError('file is truncated', { source, field: 'header_len' });
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new MixqError('file is truncated', { source, field: 'header_len' });
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new MixqError(`unsupported .npy version ${major}.${bytes[7]}`, {
      source,
      field: 'version',
      expected: '1.0, 2.0 or 3.0',
    });
  }
  if (headerLen > NPY_MAX_HEADER_BYTES || start + headerLen > bytes.length)
    throw new MixqError(`header length ${headerLen} is past the end of the file or too long`, {
      source,
      field: 'header_len',
      expected: `<= ${Math.min(NPY_MAX_HEADER_BYTES, bytes.length - start)}`,
    });
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(start, start + headerLen),
  );
  const descrRaw = dictValue(header, 'descr', source);
  const descr = /^'([<>|=]?)([a-z]\d+)'$/.exec(descrRaw);
  const kind = descr ? DESCR[descr[2]!] : undefined;
  if (!descr || !kind)
    throw new MixqError(`unsupported dtype ${descrRaw}`, {
      source,
      field: 'descr',
      expected: "a plain bool, integer or float dtype such as '<f4'",
    });
  if (descr[1] === '>' && kind.bytes > 1)
    throw new MixqError('big-endian data is not supported', {
      source,
      field: 'descr',
      expected: "little-endian, e.g. '<f4' (numpy: arr.astype('<f4'))",
    });
  const fortran = dictValue(header, 'fortran_order', source);
  if (fortran !== 'False')
    throw new MixqError('Fortran-ordered data is not supported', {
      source,
      field: 'fortran_order',
      expected: 'False (numpy: np.ascontiguousarray(arr))',
    });
  const shape = parseShape(dictValue(header, 'shape', source), source);
  let count = 1;
  for (const d of shape) count *= d;
  const dataBytes = count * kind.bytes;
  const maxBytes = opts.maxBytes ?? 2 ** 31 - 1;
  if (dataBytes > maxBytes)
    throw new MixqError(`array of ${dataBytes} bytes is too large`, {
      source,
      field: 'shape',
      expected: `<= ${maxBytes} bytes`,
    });
  const dataStart = start + headerLen;
  if (bytes.length - dataStart < dataBytes)
    throw new MixqError(
      `data is truncated: ${bytes.length - dataStart} bytes for shape (${shape.join(', ')})`,
      {
        source,
        field: 'data',
        expected: `${dataBytes} bytes`,
      },
    );
  // Copy into an aligned buffer (the data offset is a multiple of 64 in files numpy writes, but not
  // necessarily in the caller's Uint8Array). Uint8Array's slice copies; a Node Buffer's would not.
  const raw = Uint8Array.prototype.slice.call(bytes, dataStart, dataStart + dataBytes).buffer;
  return { dtype: kind.dtype, shape, data: typedView(kind.dtype, raw, count) };
}

function typedView(dtype: NpyDType, buf: ArrayBuffer, count: number): NpyData {
  switch (dtype) {
    case 'bool':
    case 'uint8':
      return new Uint8Array(buf, 0, count);
    case 'int8':
      return new Int8Array(buf, 0, count);
    case 'int16':
      return new Int16Array(buf, 0, count);
    case 'uint16':
      return new Uint16Array(buf, 0, count);
    case 'int32':
      return new Int32Array(buf, 0, count);
    case 'uint32':
      return new Uint32Array(buf, 0, count);
    case 'int64':
      return new BigInt64Array(buf, 0, count);
    case 'uint64':
      return new BigUint64Array(buf, 0, count);
    case 'float16': {
      const h = new Uint16Array(buf, 0, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16BitsToF32(h[i]!);
      return out;
    }
    case 'float32':
      return new Float32Array(buf, 0, count);
    case 'float64':
      return new Float64Array(buf, 0, count);
  }
}

/** The raw text of one value of the header dict, e.g. 'descr' -> "'<f4'", 'shape' -> "(2, 3)". */
function dictValue(header: string, key: string, source: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(header);
  if (!m) throw new MixqError(`header has no '${key}'`, { source, field: key });
  const rest = header.slice(m.index + m[0].length);
  const v = rest.startsWith('(')
    ? rest.slice(0, rest.indexOf(')') + 1)
    : /^('[^']*'|"[^"]*"|True|False)/.exec(rest)?.[0];
  if (!v) throw new MixqError(`header value of '${key}' is malformed`, { source, field: key });
  return v.replace(/"/g, "'");
}

function parseShape(text: string, source: string): number[] {
  const inner = text.slice(1, -1).trim();
  if (inner === '') return [];
  const parts = inner
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length > NPY_MAX_DIMS)
    throw new MixqError(`shape has ${parts.length} dims`, {
      source,
      field: 'shape',
      expected: `<= ${NPY_MAX_DIMS}`,
    });
  return parts.map((p) => {
    const d = /^\d+L?$/.test(p) ? Number.parseInt(p, 10) : NaN;
    if (!Number.isSafeInteger(d))
      throw new MixqError(`shape entry '${p}' is not a non-negative integer`, { source, field: 'shape' });
    return d;
  });
}

/**
 * Writes a C-ordered little-endian .npy (version 1.0). float16 is not written (pass float32).
 * @example writeNpy({ dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) })
 */
export function writeNpy(arr: NpyArray): Uint8Array {
  const entry = Object.entries(DESCR).find(([, v]) => v.dtype === arr.dtype);
  if (!entry || arr.dtype === 'float16')
    throw new MixqError(`cannot write dtype ${arr.dtype}`, { field: 'dtype', expected: 'not float16' });
  const [code, { bytes: size }] = entry;
  const order = size === 1 ? '|' : '<';
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const data = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  const out = new Uint8Array(10 + header.length + data.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(data, 10 + header.length);
  return out;
}

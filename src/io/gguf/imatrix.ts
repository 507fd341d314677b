/**
 * Importance-matrix (imatrix) files: readers for the three inputs `mixq requantize --imatrix` takes, and
 * writers for the two llama.cpp layouts (tests and mixq's own calibration use them).
 *
 * An imatrix entry is, per weight tensor, the mean of x^2 over calibration tokens for each input column
 * (length ne[0]; stacked expert tensors: ne[0] * n_expert). Sources: llama.cpp tools/imatrix/imatrix.cpp
 * (save_imatrix_legacy, save_imatrix) and tools/quantize/quantize.cpp (load_legacy_imatrix,
 * load_imatrix), ggml-org/llama.cpp 006e7ef.
 *
 * (a) Legacy imatrix.dat, little-endian:
 *       i32 n_entries (>= 1)
 *       n_entries x { i32 name_len, name bytes, i32 ncall, i32 nval (>= 1), f32[nval] values }
 *       optional: i32 last_call, i32 dataset_len, dataset bytes
 *     llama-imatrix stores values = (sum x^2 / count) * ncall, so the reader divides by ncall when
 *     ncall > 0 (as llama-quantize does) and returns the mean.
 * (b) GGUF imatrix: general.type = 'imatrix', optional imatrix.datasets (str array), imatrix.chunk_count
 *     and imatrix.chunk_size (u32); per entry an F32 tensor '<name>.in_sum2' with ne = [n_cols, n_mat]
 *     (sum of x^2) and '<name>.counts' with ne = [1, n_mat] (tokens seen); mean = in_sum2 / count per
 *     matrix, and 1 for a matrix with count 0 (an expert calibration never reached), as llama-quantize.
 *     '<name>.in_sum' (sum of x, newer files) is ignored.
 * (c) JSON {"<tensor name>": [numbers...]} with the means directly (mixq's calibration output).
 * Every count and length is capped and checked against the bytes left; values must be finite and >= 0.
 * Failures are MixqError naming the file, the field and what was expected.
 */
import { MixqError } from '../../core/errors.ts';
import { bytesSource } from '../source.ts';
import type { ByteSource } from '../source.ts';
import { readGguf, type GgufFile, type GgufKV, type GgufTensorInfo } from './read.ts';
import { type GgufTensorInput, concatBytes, writeGguf } from './write.ts';

export type ImatrixFormat = 'dat' | 'gguf' | 'json';

export interface ImatrixData {
  readonly format: ImatrixFormat;
  /** Tensor name -> mean of x^2 per input column. */
  readonly entries: ReadonlyMap<string, Float32Array>;
  /** Calibration data set names, when the file records them. */
  readonly datasets: readonly string[];
  /** Chunks the matrix was computed on (legacy last_call / imatrix.chunk_count), when recorded. */
  readonly chunkCount?: number;
}

export interface ImatrixLimits {
  /** Entries (tensors) in one file. */
  readonly maxEntries: number;
  /** Bytes of one tensor or dataset name. */
  readonly maxNameBytes: number;
  /** Values in one entry. */
  readonly maxValues: number;
}

export const DEFAULT_IMATRIX_LIMITS: ImatrixLimits = Object.freeze({
  maxEntries: 1 << 20, // a 1000-layer MoE has ~10k weight matrices
  maxNameBytes: 4096, // ggml names are at most 63 bytes (GGML_MAX_NAME); dataset paths may be longer
  maxValues: 1 << 26, // 64M columns x experts
});

const dec = new TextDecoder('utf-8', { fatal: true });
const enc = new TextEncoder();

function bad(source: string, field: string, msg: string, expected: string): MixqError {
  return new MixqError(msg, { source, field, expected });
}

function checkValues(v: Float32Array, source: string, field: string): void {
  for (let j = 0; j < v.length; j++) {
    const x = v[j]!;
    if (!(x >= 0) || x === Number.POSITIVE_INFINITY) {
      throw bad(source, `${field}[${j}]`, `value ${x}`, 'a finite number >= 0 (a mean of squares)');
    }
  }
}

/** Parses a legacy imatrix.dat file held in memory. */
export function parseImatrixDat(
  bytes: Uint8Array,
  source = '<memory>',
  limits: Partial<ImatrixLimits> = {},
): ImatrixData {
  const lim = { ...DEFAULT_IMATRIX_LIMITS, ...limits };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const i32 = (field: string): number => {
    if (pos + 4 > bytes.length) {
      throw bad(source, field, `file ends at byte ${bytes.length}`, `4 more bytes at offset ${pos}`);
    }
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const str = (len: number, field: string): string => {
    if (pos + len > bytes.length) {
      throw bad(
        source,
        field,
        `${len} bytes past the end of the file`,
        `at most ${bytes.length - pos} bytes`,
      );
    }
    let s: string;
    try {
      s = dec.decode(bytes.subarray(pos, pos + len));
    } catch {
      throw bad(source, field, 'not valid UTF-8', 'a UTF-8 string');
    }
    pos += len;
    return s;
  };
  const n = i32('n_entries');
  // each entry takes at least 16 bytes (len, 1-byte name, ncall, nval, one value)
  if (n < 1 || n > lim.maxEntries || n > (bytes.length - 4) / 16) {
    throw bad(
      source,
      'n_entries',
      `${n} entries`,
      `1..${Math.min(lim.maxEntries, Math.floor((bytes.length - 4) / 16))}`,
    );
  }
  const entries = new Map<string, Float32Array>();
  for (let i = 0; i < n; i++) {
    const f = `entries[${i}]`;
    const len = i32(`${f}.name_len`);
    if (len < 1 || len > lim.maxNameBytes) {
      throw bad(source, `${f}.name_len`, `name length ${len}`, `1..${lim.maxNameBytes}`);
    }
    const name = str(len, `${f}.name`);
    if (entries.has(name)) throw bad(source, `${f}.name`, `duplicate entry '${name}'`, 'unique names');
    const ncall = i32(`${f}.ncall`);
    if (ncall < 0) throw bad(source, `${f}.ncall`, `ncall ${ncall}`, '>= 0');
    const nval = i32(`${f}.nval`);
    const room = Math.floor((bytes.length - pos) / 4);
    if (nval < 1 || nval > lim.maxValues || nval > room) {
      throw bad(source, `${f}.nval`, `${nval} values`, `1..${Math.min(lim.maxValues, room)}`);
    }
    const v = new Float32Array(nval);
    for (let j = 0; j < nval; j++) v[j] = dv.getFloat32(pos + 4 * j, true);
    pos += 4 * nval;
    // the file holds mean * ncall; llama-quantize divides by ncall (in f32)
    if (ncall > 0) for (let j = 0; j < nval; j++) v[j] = Math.fround(v[j]! / ncall);
    checkValues(v, source, `${f}.values`);
    entries.set(name, v);
  }
  const datasets: string[] = [];
  let chunkCount: number | undefined;
  if (pos < bytes.length) {
    chunkCount = i32('last_call');
    if (pos < bytes.length) {
      const len = i32('dataset_len');
      if (len < 0 || len > lim.maxNameBytes) {
        throw bad(source, 'dataset_len', `dataset name length ${len}`, `0..${lim.maxNameBytes}`);
      }
      datasets.push(str(len, 'dataset'));
    }
  }
  if (pos !== bytes.length) {
    throw bad(
      source,
      'trailer',
      `${bytes.length - pos} unexpected bytes after the dataset name`,
      'end of file',
    );
  }
  return { format: 'dat', entries, datasets, ...(chunkCount !== undefined ? { chunkCount } : {}) };
}

/** Serialises entries in the legacy layout with ncall = 1 (values are the means, exactly). */
export function writeImatrixDat(data: Pick<ImatrixData, 'entries'> & Partial<ImatrixData>): Uint8Array {
  const parts: Uint8Array[] = [];
  const i32 = (v: number): Uint8Array => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    return b;
  };
  parts.push(i32(data.entries.size));
  for (const [name, v] of [...data.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const nb = enc.encode(name);
    parts.push(i32(nb.length), nb, i32(1), i32(v.length));
    const vb = new Uint8Array(4 * v.length);
    const dv = new DataView(vb.buffer);
    for (let j = 0; j < v.length; j++) dv.setFloat32(4 * j, v[j]!, true);
    parts.push(vb);
  }
  const ds = enc.encode(data.datasets?.[0] ?? '');
  parts.push(i32(data.chunkCount ?? 1), i32(ds.length), ds);
  return concatBytes(parts);
}

function kvU32(f: GgufFile, key: string): number | undefined {
  const kv = f.kv.find((k) => k.key === key);
  if (!kv) return undefined;
  if (kv.type !== 'u32' || typeof kv.value !== 'number') {
    throw bad(f.source, key, `type ${kv.type}`, 'u32');
  }
  return kv.value;
}

async function f32Tensor(f: GgufFile, t: GgufTensorInfo): Promise<Float32Array> {
  if (t.typeId !== 0) throw bad(f.source, `tensors.${t.name}.type`, `type ${t.type.name}`, 'f32');
  const b = await f.readTensorBytes(t);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(t.nElements);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

/** Reads a GGUF-based imatrix (see the file header) from a parsed GGUF file. */
export async function imatrixFromGguf(
  f: GgufFile,
  limits: Partial<ImatrixLimits> = {},
): Promise<ImatrixData> {
  const lim = { ...DEFAULT_IMATRIX_LIMITS, ...limits };
  const src = f.source;
  const gtype = f.get('general.type');
  if (gtype !== undefined && gtype !== 'imatrix') {
    throw bad(
      src,
      'general.type',
      `'${String(gtype)}'`,
      "'imatrix' (this looks like a model, not an imatrix)",
    );
  }
  const pairs = new Map<string, { sums?: GgufTensorInfo; counts?: GgufTensorInfo }>();
  for (const t of f.tensors) {
    const m = /^(.*)\.(in_sum2|counts)$/.exec(t.name);
    if (!m) continue; // '.in_sum' and anything else: not needed for quantization
    const p = pairs.get(m[1]!) ?? {};
    if (m[2] === 'in_sum2') p.sums = t;
    else p.counts = t;
    pairs.set(m[1]!, p);
  }
  if (pairs.size === 0) {
    throw bad(src, 'tensors', 'no <name>.in_sum2 / <name>.counts tensors', 'at least one imatrix entry');
  }
  if (pairs.size > lim.maxEntries) throw bad(src, 'tensors', `${pairs.size} entries`, `<= ${lim.maxEntries}`);
  const entries = new Map<string, Float32Array>();
  for (const [name, p] of [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!p.sums || !p.counts) {
      throw bad(
        src,
        `tensors.${name}`,
        `'${name}.${p.sums ? 'counts' : 'in_sum2'}' is missing`,
        'both in_sum2 and counts',
      );
    }
    const nMat = p.counts.nElements;
    const n = p.sums.nElements;
    if (nMat < 1 || n < 1 || n % nMat !== 0 || n > lim.maxValues || p.sums.ne[0]! * nMat !== n) {
      throw bad(
        src,
        `tensors.${name}.in_sum2`,
        `ne [${p.sums.ne.join(', ')}] with ${nMat} counts`,
        'ne = [n_cols, n_mat] with n_mat = elements of counts',
      );
    }
    const sums = await f32Tensor(f, p.sums);
    const counts = await f32Tensor(f, p.counts);
    const ne0 = n / nMat;
    const v = new Float32Array(n);
    for (let m = 0; m < nMat; m++) {
      const c = counts[m]!;
      if (!(c >= 0) || c === Number.POSITIVE_INFINITY) {
        throw bad(src, `tensors.${name}.counts[${m}]`, `count ${c}`, 'a finite number >= 0');
      }
      for (let j = 0; j < ne0; j++) v[m * ne0 + j] = c > 0 ? Math.fround(sums[m * ne0 + j]! / c) : 1;
    }
    checkValues(v, src, `tensors.${name}.in_sum2`);
    entries.set(name, v);
  }
  const datasets: string[] = [];
  const dsKv = f.kv.find((k) => k.key === 'imatrix.datasets');
  if (dsKv) {
    const a = dsKv.value;
    if (typeof a !== 'object' || a === null || !('items' in a) || a.itemType !== 'str') {
      throw bad(src, 'imatrix.datasets', `type ${dsKv.type}`, 'an array of strings');
    }
    for (const s of a.items) datasets.push(String(s));
  }
  const chunkCount = kvU32(f, 'imatrix.chunk_count');
  kvU32(f, 'imatrix.chunk_size');
  return { format: 'gguf', entries, datasets, ...(chunkCount !== undefined ? { chunkCount } : {}) };
}

/**
 * Writes entries as a GGUF imatrix. Without `counts`, count 1 per matrix (so in_sum2 = the means,
 * exactly). With `counts` (tokens seen per entry, as llama-imatrix records them; one matrix per entry),
 * in_sum2 = mean * count rounded to f32, so llama-imatrix --in-file merges the file with the right weight;
 * reading it back gives the means to within one f32 rounding. `nMat` splits an entry into that many
 * matrices (experts), count 1 each; default 1.
 */
export function writeImatrixGguf(
  data: Pick<ImatrixData, 'entries'> & Partial<ImatrixData>,
  opts: {
    chunkSize?: number;
    nMat?: ReadonlyMap<string, number>;
    counts?: ReadonlyMap<string, number>;
  } = {},
): Uint8Array[] {
  const kv: GgufKV[] = [
    { key: 'general.type', type: 'str', value: 'imatrix' },
    { key: 'imatrix.datasets', type: 'arr', value: { itemType: 'str', items: [...(data.datasets ?? [])] } },
    { key: 'imatrix.chunk_count', type: 'u32', value: data.chunkCount ?? 1 },
    { key: 'imatrix.chunk_size', type: 'u32', value: opts.chunkSize ?? 512 },
  ];
  const tensors: GgufTensorInput[] = [];
  for (const [name, v] of [...data.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const nMat = opts.nMat?.get(name) ?? 1;
    const count = nMat === 1 ? (opts.counts?.get(name) ?? 1) : 1;
    const sums = new Uint8Array(4 * v.length);
    const dv = new DataView(sums.buffer);
    for (let j = 0; j < v.length; j++) dv.setFloat32(4 * j, v[j]! * count, true);
    const counts = new Uint8Array(4 * nMat);
    const cv = new DataView(counts.buffer);
    for (let m = 0; m < nMat; m++) cv.setFloat32(4 * m, count, true);
    // ggml writes n_dims without trailing 1s (ggml_n_dims)
    tensors.push({
      name: `${name}.in_sum2`,
      ne: nMat > 1 ? [v.length / nMat, nMat] : [v.length],
      type: 'f32',
      data: sums,
    });
    tensors.push({ name: `${name}.counts`, ne: nMat > 1 ? [1, nMat] : [1], type: 'f32', data: counts });
  }
  return writeGguf({ kv, tensors });
}

/** Parses mixq's JSON imatrix: an object of tensor name -> array of non-negative numbers. */
export function parseImatrixJson(
  text: string,
  source = '<memory>',
  limits: Partial<ImatrixLimits> = {},
): ImatrixData {
  const lim = { ...DEFAULT_IMATRIX_LIMITS, ...limits };
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw bad(source, 'json', `not JSON: ${(e as Error).message}`, 'a JSON object');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw bad(source, 'json', 'not an object', '{"<tensor name>": [numbers...]}');
  }
  const keys = Object.keys(obj);
  if (keys.length < 1 || keys.length > lim.maxEntries) {
    throw bad(source, 'json', `${keys.length} entries`, `1..${lim.maxEntries}`);
  }
  const entries = new Map<string, Float32Array>();
  for (const k of keys) {
    const a = (obj as Record<string, unknown>)[k];
    if (!Array.isArray(a) || a.length < 1 || a.length > lim.maxValues) {
      throw bad(source, k, 'not a non-empty array', `an array of 1..${lim.maxValues} numbers`);
    }
    const v = new Float32Array(a.length);
    a.forEach((x, j) => {
      if (typeof x !== 'number') throw bad(source, `${k}[${j}]`, `${typeof x}`, 'a number');
      v[j] = x;
    });
    checkValues(v, source, k);
    entries.set(k, v);
  }
  return { format: 'json', entries, datasets: [] };
}

/** JSON text for parseImatrixJson (numbers printed so they read back as the same f32). */
export function writeImatrixJson(entries: ReadonlyMap<string, Float32Array>): string {
  const o: Record<string, number[]> = {};
  for (const [k, v] of entries) o[k] = Array.from(v);
  return `${JSON.stringify(o)}\n`;
}

/** Reads any of the three formats, told apart by their first bytes ('GGUF', '{', else legacy .dat). */
export async function readImatrix(
  src: ByteSource,
  limits: Partial<ImatrixLimits> = {},
): Promise<ImatrixData> {
  if (src.size < 4) throw bad(src.name, 'size', `${src.size} bytes`, 'an imatrix file (at least 4 bytes)');
  const head = await src.read(0, 4);
  if (head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) {
    return imatrixFromGguf(await readGguf(src), limits);
  }
  const all = await src.read(0, src.size);
  let i = 0;
  while (i < all.length && (all[i] === 0x20 || all[i] === 0x0a || all[i] === 0x0d || all[i] === 0x09)) i++;
  if (all[i] === 0x7b) {
    let text: string;
    try {
      text = dec.decode(all);
    } catch {
      throw bad(src.name, 'json', 'not valid UTF-8', 'UTF-8 JSON');
    }
    return parseImatrixJson(text, src.name, limits);
  }
  return parseImatrixDat(all, src.name, limits);
}

/** readImatrix over bytes in memory. */
export function readImatrixBytes(
  bytes: Uint8Array,
  name = '<memory>',
  limits: Partial<ImatrixLimits> = {},
): Promise<ImatrixData> {
  return readImatrix(bytesSource(bytes, name), limits);
}

/** The layout a file name asks for: '.dat' the legacy one, '.json' mixq's JSON, anything else GGUF. */
export function imatrixFormatOf(path: string): ImatrixFormat {
  return /\.dat$/i.test(path) ? 'dat' : /\.json$/i.test(path) ? 'json' : 'gguf';
}

/**
 * An imatrix file's bytes in `format`. `counts` (tokens per entry) and `chunkSize` go into a GGUF file
 * as llama-imatrix writes them; the legacy and JSON layouts hold the means only.
 */
export function serialiseImatrix(
  data: Pick<ImatrixData, 'entries'> &
    Partial<ImatrixData> & { readonly counts?: ReadonlyMap<string, number>; readonly chunkSize?: number },
  format: ImatrixFormat,
): Uint8Array {
  if (format === 'dat') return writeImatrixDat(data);
  if (format === 'json') return enc.encode(writeImatrixJson(data.entries));
  return concatBytes(
    writeImatrixGguf(data, {
      ...(data.counts ? { counts: data.counts } : {}),
      ...(data.chunkSize !== undefined ? { chunkSize: data.chunkSize } : {}),
    }),
  );
}

/**
 * The row arithmetic of the GGUF damage table (damage.ts): which rows of a tensor are measured, their
 * source values, the importance-matrix weights of each row, and the weighted error of a type's round trip.
 */
import { blockTypeById, type BlockTypeTraits, rowBytes } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import type { ImatrixData } from '../../io/gguf/imatrix.ts';
import type { GgufFile, GgufTensorInfo } from '../../io/gguf/read.ts';

/** Values measured per tensor by default before rows are sampled. */
export const GGUF_SAMPLE_ELEMENTS = 1 << 17;

/** The importance-matrix entries of a file, by tensor name. */
export function imatrixEntries(
  m: ImatrixData | ReadonlyMap<string, Float32Array> | undefined,
): ReadonlyMap<string, Float32Array> | undefined {
  if (!m) return undefined;
  return 'format' in m ? m.entries : m;
}

/** The deterministic row sample (sorted, distinct) for a tensor of `rows` rows of `ne0` values. */
export function ggufSampleRows(
  rows: number,
  ne0: number,
  maxSampleElements = GGUF_SAMPLE_ELEMENTS,
): Int32Array {
  if (rows * ne0 <= maxSampleElements) return Int32Array.from({ length: rows }, (_, i) => i);
  const s = Math.max(1, Math.min(rows, Math.floor(maxSampleElements / ne0)));
  return Int32Array.from({ length: s }, (_, k) => Math.floor(((k + 0.5) * rows) / s));
}

/** The codec that decodes a tensor's type, or a MixqError naming the tensor. */
function decodableCodec(info: GgufTensorInfo, source: string): BlockTypeTraits {
  const codec = blockTypeById(info.typeId);
  if (!codec)
    throw new MixqError(`cannot dequantize tensor '${info.name}' of type ${info.type.name}`, {
      source,
      field: `tensors.${info.name}.type`,
      expected: 'a type mixq can decode (F32, F16, BF16, Q4_0..Q8_0, Q2_K..Q6_K, IQ4_NL, MXFP4)',
    });
  return codec;
}

/** Decodes the given rows of a tensor's bytes (any type src/blocks decodes) into one f32 array. */
export function ggufDecodeRows(
  info: GgufTensorInfo,
  bytes: Uint8Array,
  rows: Int32Array,
  source: string,
): Float32Array {
  const codec = decodableCodec(info, source);
  const ne0 = info.ne[0]!;
  const rb = rowBytes(codec, ne0);
  const out = new Float32Array(rows.length * ne0);
  rows.forEach((r, k) => out.set(codec.decode(bytes.subarray(r * rb, (r + 1) * rb), ne0), k * ne0));
  return out;
}

/** Bytes per positioned read when sampled rows are consecutive (all rows of a small tensor). */
const ROW_READ_BYTES = 16 << 20;

/**
 * The given rows (sorted, distinct) of a tensor decoded to f32, read from the file with positioned reads
 * of those rows' bytes only (consecutive rows in one read of at most 16 MiB), never the whole tensor: the
 * same values as ggufDecodeRows over the tensor's bytes.
 */
export async function ggufReadRows(
  file: Pick<GgufFile, 'readTensorRange' | 'source'>,
  info: GgufTensorInfo,
  rows: Int32Array,
): Promise<Float32Array> {
  const codec = decodableCodec(info, file.source);
  const ne0 = info.ne[0]!;
  const rb = rowBytes(codec, ne0);
  const perRead = Math.max(1, Math.floor(ROW_READ_BYTES / Math.max(1, rb)));
  const out = new Float32Array(rows.length * ne0);
  for (let k = 0; k < rows.length;) {
    let e = k + 1;
    while (e < rows.length && e - k < perRead && rows[e] === rows[e - 1]! + 1) e++;
    const bytes = await file.readTensorRange(info, rows[k]! * rb, (e - k) * rb);
    out.set(codec.decode(bytes, (e - k) * ne0), k * ne0);
    k = e;
  }
  return out;
}

/** Per-weight error weights: the importance entry (per matrix), a uniform mean, or none. */
export interface GgufImportance {
  readonly kind: 'entry' | 'mean' | 'none';
  /** The imatrix entry (length ne0, or ne0 * experts), to pass to the encoder. */
  readonly entry?: Float32Array;
  /** Uniform weight when kind is 'mean'. */
  readonly uniform: number;
}

/** Mean of every value of every entry (the weight of tensors the importance matrix does not cover). */
function imatrixMean(im: ReadonlyMap<string, Float32Array>): number {
  let s = 0;
  let n = 0;
  for (const v of im.values()) {
    for (const x of v) s += x;
    n += v.length;
  }
  return n > 0 && s > 0 ? s / n : 1;
}

/**
 * The error weights of each tensor for an importance matrix (or none): its entry, checked against the
 * tensor's ne; the mean of all entries for a tensor without one; 1 without a matrix.
 */
export function ggufImportance(
  m: ImatrixData | ReadonlyMap<string, Float32Array> | undefined,
  source: string,
): (info: GgufTensorInfo) => GgufImportance {
  const im = imatrixEntries(m);
  if (!im) return () => ({ kind: 'none', uniform: 1 });
  const mean = imatrixMean(im);
  return (info) => {
    const e = im.get(info.name);
    if (!e) return { kind: 'mean', uniform: mean };
    const ne0 = info.ne[0]!;
    const ne2 = info.ne[2] ?? 1;
    if (!(e.length === ne0 || (ne2 > 1 && e.length === ne0 * ne2)))
      throw new MixqError(`importance matrix entry for '${info.name}' has ${e.length} values`, {
        source,
        field: `imatrix.${info.name}`,
        expected: ne2 > 1 ? `${ne0} or ${ne0 * ne2} (ne[0] x experts)` : `${ne0} (ne[0])`,
      });
    return { kind: 'entry', entry: e, uniform: 1 };
  };
}

/** The importance slice of the matrix holding global row r (rows per matrix = ne[1]). */
function entryRow(imp: GgufImportance, ne: readonly number[], r: number): Float32Array | undefined {
  const e = imp.entry;
  if (!e) return undefined;
  const ne0 = ne[0]!;
  if (e.length === ne0) return e;
  const m = Math.floor(r / (ne[1] ?? 1));
  return e.subarray(m * ne0, (m + 1) * ne0);
}

/** Importance-weighted squared error between rows `x` and `q` (same layout; global row indices `rows`). */
export function ggufRowError(
  ne: readonly number[],
  rows: Int32Array,
  x: Float32Array,
  q: Float32Array,
  imp: GgufImportance,
): number {
  const ne0 = ne[0]!;
  let total = 0;
  for (let k = 0; k < rows.length; k++) {
    const w = entryRow(imp, ne, rows[k]!);
    const o = k * ne0;
    let s = 0;
    if (w) {
      for (let j = 0; j < ne0; j++) {
        const d = x[o + j]! - q[o + j]!;
        s += w[j]! * d * d;
      }
    } else {
      for (let j = 0; j < ne0; j++) {
        const d = x[o + j]! - q[o + j]!;
        s += d * d;
      }
      s *= imp.uniform;
    }
    total += s;
  }
  return total;
}

/**
 * Encodes sampled rows as `type` the way requantizeGguf does (runs of rows of one matrix with that
 * matrix's importance slice) and decodes them back.
 */
export function roundTrip(
  x: Float32Array,
  ne: readonly number[],
  rows: Int32Array,
  type: BlockTypeTraits,
  imp: GgufImportance,
): Float32Array {
  const ne0 = ne[0]!;
  const out = new Float32Array(x.length);
  // one encoder call per run of rows that share an importance slice (all rows, or one expert's)
  const perMatrix = imp.entry !== undefined && imp.entry.length !== ne0;
  const matrix = (r: number) => (perMatrix ? Math.floor(r / (ne[1] ?? 1)) : 0);
  let k = 0;
  while (k < rows.length) {
    const w = entryRow(imp, ne, rows[k]!);
    let end = k + 1;
    while (end < rows.length && matrix(rows[end]!) === matrix(rows[k]!)) end++;
    const seg = x.subarray(k * ne0, end * ne0);
    out.set(type.decode(type.encode(seg, w), seg.length), k * ne0);
    k = end;
  }
  return out;
}

/**
 * GGUF v3 writer: KV list + tensors (in the given order) -> bytes, laid out exactly like ggml's own
 * writer (gguf_write_to_file): header, KV pairs, tensor infos, zero padding to the alignment, then each
 * tensor's data zero-padded to the alignment (including after the last one). Offsets are assigned in
 * order, so re-writing a file that ggml wrote gives identical bytes.
 */
import { MixqError } from '../../core/errors.ts';
import { alignUp } from '../reader.ts';
import type { GgufArray, GgufKV, GgufValue } from './read.ts';
import {
  type GgmlTypeTraits,
  type GgufValueType,
  ggmlTypeById,
  ggmlTypeByName,
  ggufValueTypeId,
} from './types.ts';

export interface GgufTensorInput {
  readonly name: string;
  /** Dimensions in ggml order (ne[0] contiguous), 1..4 entries. */
  readonly ne: readonly number[];
  /** ggml type name ('q8_0', 'F16', ...) or id. */
  readonly type: string | number;
  /** Exactly the tensor's bytes (no padding). */
  readonly data: Uint8Array;
}

export interface GgufWriteInput {
  readonly kv: readonly GgufKV[];
  readonly tensors: readonly GgufTensorInput[];
  /** Default 3. */
  readonly version?: number;
}

const SOURCE = 'gguf writer';
const enc = new TextEncoder();

/** A growable little-endian byte buffer. */
class ByteWriter {
  buf = new Uint8Array(1024);
  view = new DataView(this.buf.buffer);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.view.setUint8(this.len++, v);
  }
  i8(v: number): void {
    this.ensure(1);
    this.view.setInt8(this.len++, v);
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.len, v, true);
    this.len += 2;
  }
  i16(v: number): void {
    this.ensure(2);
    this.view.setInt16(this.len, v, true);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.len, v, true);
    this.len += 4;
  }
  f32(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.len, v, true);
    this.len += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.len, v, true);
    this.len += 8;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.view.setBigUint64(this.len, v, true);
    this.len += 8;
  }
  i64(v: bigint): void {
    this.ensure(8);
    this.view.setBigInt64(this.len, v, true);
    this.len += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  string(s: string): void {
    const b = enc.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  zeros(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const INT_RANGES: Partial<Record<GgufValueType, readonly [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

function bad(field: string, message: string, expected: string): MixqError {
  return new MixqError(message, { source: SOURCE, field, expected });
}

function toBigInt(v: GgufValue, field: string, signed: boolean): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else throw bad(field, `value ${String(v)} is not an integer`, 'a bigint (or safe integer)');
  const lo = signed ? -(1n << 63n) : 0n;
  const hi = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
  if (b < lo || b > hi) throw bad(field, `value ${b} out of range`, `${lo}..${hi}`);
  return b;
}

function writeValue(w: ByteWriter, type: GgufValueType, v: GgufValue, field: string, depth: number): void {
  const range = INT_RANGES[type];
  if (range) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      throw bad(field, `value ${String(v)} does not fit ${type}`, `an integer in ${range[0]}..${range[1]}`);
    }
  }
  switch (type) {
    case 'u8':
      w.u8(v as number);
      return;
    case 'i8':
      w.i8(v as number);
      return;
    case 'u16':
      w.u16(v as number);
      return;
    case 'i16':
      w.i16(v as number);
      return;
    case 'u32':
      w.u32(v as number);
      return;
    case 'i32':
      w.i32(v as number);
      return;
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') throw bad(field, `value ${String(v)} is not a number`, type);
      if (type === 'f32') w.f32(v);
      else w.f64(v);
      return;
    case 'u64':
      w.u64(toBigInt(v, field, false));
      return;
    case 'i64':
      w.i64(toBigInt(v, field, true));
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw bad(field, `value ${String(v)} is not a boolean`, 'true or false');
      w.u8(v ? 1 : 0);
      return;
    case 'str':
      if (typeof v !== 'string') throw bad(field, `value ${String(v)} is not a string`, 'a string');
      w.string(v);
      return;
    case 'arr': {
      if (typeof v !== 'object' || v === null)
        throw bad(field, 'value is not an array', '{ itemType, items }');
      if (depth > 64) throw bad(field, 'arrays nested too deeply', 'depth <= 64');
      const a = v as GgufArray;
      const id = ggufValueTypeId(a.itemType);
      if (id < 0) throw bad(`${field}.itemType`, `unknown type ${String(a.itemType)}`, 'a GGUF value type');
      w.u32(id);
      w.u64(BigInt(a.items.length));
      a.items.forEach((x, i) => {
        writeValue(w, a.itemType, x, `${field}[${i}]`, depth + 1);
      });
      return;
    }
  }
}

function tensorType(t: GgufTensorLayoutInput, field: string): GgmlTypeTraits {
  const tt = typeof t.type === 'number' ? ggmlTypeById(t.type) : ggmlTypeByName(t.type);
  if (!tt) throw bad(field, `unknown ggml type ${String(t.type)}`, 'a ggml type name or id');
  return tt;
}

/** Size in bytes of a tensor with dims `ne` (ggml order) of type `type`; checks block divisibility. */
export function ggmlTensorBytes(ne: readonly number[], type: GgmlTypeTraits, field = 'ne'): number {
  if (ne.length < 1 || ne.length > 4) throw bad(field, `${ne.length} dims`, '1..4 dims');
  let n = 1;
  for (const d of ne) {
    if (!Number.isSafeInteger(d) || d < 0) throw bad(field, `bad dimension ${d}`, 'a non-negative integer');
    n *= d;
  }
  if (ne[0]! % type.blockSize !== 0) {
    throw bad(
      field,
      `ne[0] = ${ne[0]} is not a multiple of the ${type.name} block size`,
      `a multiple of ${type.blockSize}`,
    );
  }
  return (n / type.blockSize) * type.typeSize;
}

/** A tensor as the header describes it (its data follows later). */
export interface GgufTensorLayoutInput {
  readonly name: string;
  /** Dimensions in ggml order (ne[0] contiguous), 1..4 entries. */
  readonly ne: readonly number[];
  /** ggml type name ('q8_0', 'F16', ...) or id. */
  readonly type: string | number;
}

export interface GgufHeaderLayout {
  /** Header bytes, zero-padded to the alignment: the data section starts right after them. */
  readonly header: Uint8Array;
  readonly alignment: number;
  /** Bytes of each tensor's data (no padding), in input order. */
  readonly nbytes: readonly number[];
  /** Zero bytes written after each tensor's data. */
  readonly padding: readonly number[];
  /** Total file size. */
  readonly fileSize: number;
}

/**
 * Lays out a GGUF file without its data: the header (KV pairs, tensor infos with offsets assigned in
 * order) and each tensor's size and padding, so a converter can stream tensor data after it.
 * @example const l = ggufHeaderLayout(kv, tensors); out.write(l.header); for each tensor: data, zeros(l.padding[i])
 */
export function ggufHeaderLayout(
  kvs: readonly GgufKV[],
  tensors: readonly GgufTensorLayoutInput[],
  version = 3,
): GgufHeaderLayout {
  let alignment = 32;
  const alignKv = kvs.find((k) => k.key === 'general.alignment');
  if (alignKv) {
    const a = alignKv.value;
    if (alignKv.type !== 'u32' || typeof a !== 'number' || a <= 0 || (a & (a - 1)) !== 0) {
      throw bad('general.alignment', `bad alignment ${String(a)}`, 'a u32 power of two');
    }
    alignment = a;
  }
  const w = new ByteWriter();
  w.bytes(enc.encode('GGUF'));
  w.u32(version);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(kvs.length));
  const keys = new Set<string>();
  kvs.forEach((kv, i) => {
    if (keys.has(kv.key)) throw bad(`kv[${i}].key`, `duplicate key '${kv.key}'`, 'unique keys');
    keys.add(kv.key);
    w.string(kv.key);
    const id = ggufValueTypeId(kv.type);
    if (id < 0) throw bad(`kv[${i}].type`, `unknown type ${String(kv.type)}`, 'a GGUF value type');
    w.u32(id);
    writeValue(w, kv.type, kv.value, `kv[${i}].value`, 0);
  });
  let offset = 0;
  const names = new Set<string>();
  const nbytes: number[] = [];
  const padding: number[] = [];
  tensors.forEach((t, i) => {
    const f = `tensors[${i}]`;
    if (names.has(t.name)) throw bad(`${f}.name`, `duplicate tensor name '${t.name}'`, 'unique names');
    names.add(t.name);
    const type = tensorType(t, `${f}.type`);
    const n = ggmlTensorBytes(t.ne, type, `${f}.ne`);
    w.string(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(BigInt(d));
    w.u32(type.id);
    w.u64(BigInt(offset));
    nbytes.push(n);
    padding.push(alignUp(n, alignment) - n);
    offset += alignUp(n, alignment);
  });
  w.zeros(alignUp(w.len, alignment) - w.len);
  const header = w.result();
  return { header, alignment, nbytes, padding, fileSize: header.length + offset };
}

/**
 * Serialises a GGUF file. Returns the chunks in file order (header+padding, then each tensor's data and
 * padding) so a large model can be written without one giant buffer.
 * @example writeFileAtomic('out.gguf', writeGguf({ kv, tensors }))
 */
export function writeGguf(input: GgufWriteInput): Uint8Array[] {
  const layout = ggufHeaderLayout(input.kv, input.tensors, input.version ?? 3);
  input.tensors.forEach((t, i) => {
    if (t.data.length !== layout.nbytes[i]) {
      throw bad(
        `tensors[${i}].data`,
        `tensor '${t.name}' has ${t.data.length} bytes`,
        `${layout.nbytes[i]} bytes`,
      );
    }
  });
  const chunks: Uint8Array[] = [layout.header];
  input.tensors.forEach((t, i) => {
    chunks.push(t.data);
    if (layout.padding[i]! > 0) chunks.push(new Uint8Array(layout.padding[i]!));
  });
  return chunks;
}

/** Concatenates chunks into one buffer. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

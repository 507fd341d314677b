/**
 * A bounded little-endian byte reader for parsing untrusted file headers (GGUF, safetensors, and the
 * ONNX adapter where useful). Every read checks the remaining bytes first; a read past the end of the
 * *file* is a MixqError naming the file, the field and what was expected; a read past the end of the
 * *loaded prefix* (the file continues) throws NeedMoreBytes so an async caller can load a larger prefix
 * and parse again. Counts and lengths are validated against caps and against the bytes left in the file
 * before anything is allocated, and allocations are charged to a budget (IoLimits.maxTotalAllocation).
 */
import { MixqError } from '../core/errors.ts';
import { DEFAULT_LIMITS, type IoLimits } from './limits.ts';

/** Thrown when a parse needs bytes beyond the loaded prefix but within the file. Internal signal. */
export class NeedMoreBytes extends Error {
  override readonly name = 'NeedMoreBytes';
  /** Absolute end offset the parser needs loaded. */
  readonly needEnd: number;
  constructor(needEnd: number) {
    super(`need bytes up to offset ${needEnd}`);
    this.needEnd = needEnd;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export class ByteReader {
  /** Current absolute offset. */
  pos = 0;
  /** Estimated bytes of JS objects created so far (see IoLimits.maxTotalAllocation). */
  charged = 0;
  private readonly view: DataView;

  /**
   * @param bytes the loaded prefix of the file (offset 0 = start of file)
   * @param source file name for error messages
   * @param fileSize size of the whole file (>= bytes.length)
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly source: string,
    readonly fileSize: number = bytes.length,
    readonly limits: IoLimits = DEFAULT_LIMITS,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left in the whole file after `pos`. */
  remainingInFile(): number {
    return this.fileSize - this.pos;
  }

  /** Parts of the last error made by `error`, so a hot loop can re-issue it with a precise field. */
  lastError: { message: string; field: string; expected?: string } | undefined;

  error(message: string, field: string, expected?: string): MixqError {
    this.lastError = { message, field, ...(expected ? { expected } : {}) };
    return new MixqError(message, { source: this.source, field, ...(expected ? { expected } : {}) });
  }

  /** Ensures `n` bytes are readable at `pos`. */
  need(n: number, field: string): void {
    if (n <= this.bytes.length - this.pos) return;
    if (n > this.fileSize - this.pos) {
      throw this.error(
        `file is truncated: ${n} bytes needed at offset ${this.pos}, file ends at ${this.fileSize}`,
        field,
        `at least ${this.pos + n} bytes`,
      );
    }
    throw new NeedMoreBytes(this.pos + n);
  }

  /** Charges an estimated allocation against the budget. */
  charge(bytes: number, field: string): void {
    this.charged += bytes;
    if (this.charged > this.limits.maxTotalAllocation) {
      throw this.error(
        'header needs more memory than allowed',
        field,
        `at most ${this.limits.maxTotalAllocation} bytes (IoLimits.maxTotalAllocation)`,
      );
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.pos++);
  }
  i8(field: string): number {
    this.need(1, field);
    return this.view.getInt8(this.pos++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(field: string): number {
    this.need(2, field);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(field: string): number {
    this.need(4, field);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(field: string): number {
    this.need(4, field);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(field: string): number {
    this.need(8, field);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 that must be <= max; returned as a number (max is always a safe integer). */
  u64Below(field: string, max: number, what: string): number {
    const v = this.u64(field);
    if (v > BigInt(max)) throw this.error(`${what} ${v} is too large`, field, `at most ${max}`);
    return Number(v);
  }

  /**
   * Reads a u64 element count and checks it against `cap` and against the bytes left in the file
   * (each element needs at least `minBytesPerItem` bytes), so a huge count fails before allocation.
   */
  count(field: string, cap: number, minBytesPerItem: number, capName: string): number {
    const v = this.u64(field);
    if (v > BigInt(cap)) {
      throw this.error(`count ${v} exceeds the limit`, field, `at most ${cap} (IoLimits.${capName})`);
    }
    const n = Number(v);
    if (n * minBytesPerItem > this.remainingInFile()) {
      throw this.error(
        `count ${n} needs at least ${n * minBytesPerItem} bytes but only ${this.remainingInFile()} remain`,
        field,
        `at most ${Math.floor(this.remainingInFile() / Math.max(1, minBytesPerItem))}`,
      );
    }
    return n;
  }

  /** `n` raw bytes (a view into the loaded prefix, not a copy). */
  bytesView(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * A GGUF-style string: u64 byte length + UTF-8 bytes (no terminator). Invalid UTF-8 is replaced by
   * U+FFFD rather than rejected (some tokenizers store raw bytes); such a string does not re-encode to
   * the same bytes.
   */
  string(field: string, maxBytes = this.limits.maxStringBytes): string {
    // u64 length read as two u32 halves: avoids a BigInt per string in 100k-entry vocabularies
    this.need(8, field);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    const n = hi * 2 ** 32 + lo;
    if (hi !== 0 || n > maxBytes) {
      throw this.error(`string length ${n} exceeds the limit`, field, `at most ${maxBytes} bytes`);
    }
    this.pos += 8;
    this.need(n, field);
    this.charge(32 + 2 * n, field);
    const view = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return decodeUtf8(view);
  }
}

/** UTF-8 decode with an ASCII fast path (tokenizer vocabularies are mostly short ASCII strings). */
export function decodeUtf8(b: Uint8Array): string {
  if (b.length > 32) return utf8.decode(b);
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x80) return utf8.decode(b);
    s += String.fromCharCode(c);
  }
  return s;
}

/** Rounds `x` up to a multiple of `align` (a positive integer). */
export function alignUp(x: number, align: number): number {
  const r = x % align;
  return r === 0 ? x : x + (align - r);
}

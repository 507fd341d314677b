/**
 * Dense LSB-first packing of sub-byte codes, the layout of ONNX INT4/UINT4/FLOAT4E2M1 tensors
 * (onnx.proto: "packed ... the first element in the low nibble"):
 *
 *   element i occupies stream bits [i*bits, (i+1)*bits); stream bit k is bit (k % 8) of byte floor(k / 8).
 *
 *   4-bit:  byte j = e[2j] | e[2j+1] << 4           (element 2j in the low nibble)
 *   2-bit:  byte j = e[4j] | e[4j+1] << 2 | e[4j+2] << 4 | e[4j+3] << 6
 *   3/5/6/7-bit: the same rule; codes straddle byte boundaries, low bits first.
 *   8/16-bit: plain bytes / little-endian 16-bit words.
 *
 * Packed size is ceil(count * bits / 8) bytes; unused high bits of the last byte are zero.
 */
import { MixqError } from '../core/errors.ts';

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32)
    throw new MixqError(`code width ${bits}`, { source: 'pack', field: 'bits', expected: '1..32' });
}

/** Bytes needed for `count` codes of `bits` bits. */
export function packedBytes(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** Packs codes (their low `bits` bits) LSB-first. `packCodes([1, 2], 4)` -> Uint8Array [0x21]. */
export function packCodes(codes: ArrayLike<number>, bits: number, out?: Uint8Array): Uint8Array {
  checkBits(bits);
  const n = codes.length;
  const dst = out ?? new Uint8Array(packedBytes(n, bits));
  if (dst.length < packedBytes(n, bits))
    throw new MixqError(`output holds ${dst.length} bytes`, {
      source: 'packCodes',
      field: 'out',
      expected: `>= ${packedBytes(n, bits)}`,
    });
  if (bits === 8) {
    for (let i = 0; i < n; i++) dst[i] = codes[i]!;
    return dst;
  }
  if (bits === 4) {
    dst.fill(0, 0, packedBytes(n, 4));
    for (let i = 0; i < n; i++) dst[i >>> 1]! |= (codes[i]! & 15) << ((i & 1) << 2);
    return dst;
  }
  dst.fill(0, 0, packedBytes(n, bits));
  const mask = 2 ** bits - 1;
  // Generic: accumulate into a bit buffer (at most 7 + 32 bits, kept as a double to stay exact).
  let acc = 0;
  let nacc = 0;
  let j = 0;
  for (let i = 0; i < n; i++) {
    acc += ((codes[i]! % (mask + 1)) >>> 0) * 2 ** nacc;
    nacc += bits;
    while (nacc >= 8) {
      dst[j++] = acc % 256;
      acc = Math.floor(acc / 256);
      nacc -= 8;
    }
  }
  if (nacc > 0) dst[j] = acc;
  return dst;
}

/**
 * Unpacks `count` codes of `bits` bits (inverse of packCodes). Returns a Uint8Array for <= 8 bits,
 * Uint16Array for <= 16, else Uint32Array. `unpackCodes(Uint8Array.of(0x21), 4, 2)` -> [1, 2].
 */
export function unpackCodes(
  bytes: Uint8Array,
  bits: number,
  count: number,
): Uint8Array | Uint16Array | Uint32Array {
  checkBits(bits);
  if (bytes.length < packedBytes(count, bits))
    throw new MixqError(`${bytes.length} bytes hold fewer than ${count} codes of ${bits} bits`, {
      source: 'unpackCodes',
      field: 'bytes',
      expected: `>= ${packedBytes(count, bits)} bytes`,
    });
  const out =
    bits <= 8 ? new Uint8Array(count) : bits <= 16 ? new Uint16Array(count) : new Uint32Array(count);
  if (bits === 8) {
    out.set(bytes.subarray(0, count));
    return out;
  }
  if (bits === 4) {
    for (let i = 0; i < count; i++) out[i] = (bytes[i >>> 1]! >>> ((i & 1) << 2)) & 15;
    return out;
  }
  const unit = 2 ** bits;
  let acc = 0;
  let nacc = 0;
  let j = 0;
  for (let i = 0; i < count; i++) {
    while (nacc < bits) {
      acc += bytes[j++]! * 2 ** nacc;
      nacc += 8;
    }
    out[i] = acc % unit;
    acc = Math.floor(acc / unit);
    nacc -= bits;
  }
  return out;
}

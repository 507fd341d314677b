/**
 * Sub-byte packing: the ONNX int4/fp4 layout (element 2i in the low nibble), 2-bit (4 per byte), and dense
 * 3/5/6/7-bit packing, checked against an independent bit-string model and by round trips for 1..16 bits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { packCodes, packedBytes, unpackCodes } from '../../src/formats/index.ts';

/** Model: write each code's bits LSB-first into one long bit string, then cut bytes (bit 0 first). */
function modelPack(codes: number[], bits: number): number[] {
  const stream: number[] = [];
  for (const c of codes) for (let k = 0; k < bits; k++) stream.push(Math.floor(c / 2 ** k) % 2);
  const bytes: number[] = [];
  for (let i = 0; i < stream.length; i += 8) {
    let byte = 0;
    for (let k = 0; k < 8 && i + k < stream.length; k++) byte += stream[i + k]! << k;
    bytes.push(byte);
  }
  return bytes;
}

test('4-bit: element 2i in the low nibble (ONNX INT4/FLOAT4E2M1 packing)', () => {
  assert.deepEqual([...packCodes([1, 2], 4)], [0x21]);
  assert.deepEqual([...packCodes([0xf, 0x0, 0x7], 4)], [0x0f, 0x07]);
  assert.deepEqual([...unpackCodes(Uint8Array.of(0x21, 0x07), 4, 3)], [1, 2, 7]);
});

test('2-bit: four per byte, first element in the lowest bits', () => {
  assert.deepEqual([...packCodes([1, 2, 3, 0, 3], 2)], [0b00111001, 0b11]);
});

test('3-bit: codes straddle byte boundaries', () => {
  // 8 codes * 3 bits = 3 bytes; codes 0..7 -> bit stream 000 100 010 110 001 101 011 111 (LSB first)
  assert.deepEqual([...packCodes([0, 1, 2, 3, 4, 5, 6, 7], 3)], [0b10001000, 0b11000110, 0b11111010]);
});

test('every width 1..16 matches the bit-string model and round-trips', () => {
  const rng = new Rng(21);
  for (let bits = 1; bits <= 16; bits++) {
    for (const n of [0, 1, 7, 8, 9, 31, 100]) {
      const codes = Array.from({ length: n }, () => rng.nextU32() % 2 ** bits);
      const packed = packCodes(codes, bits);
      assert.equal(packed.length, packedBytes(n, bits));
      assert.deepEqual([...packed], modelPack(codes, bits), `bits ${bits} n ${n}`);
      assert.deepEqual([...unpackCodes(packed, bits, n)], codes, `bits ${bits} n ${n}`);
    }
  }
});

test('bad widths and short buffers throw MixqError', () => {
  assert.throws(() => packCodes([1], 0), /code width 0/);
  assert.throws(() => unpackCodes(new Uint8Array(1), 4, 3), /fewer than 3 codes/);
});

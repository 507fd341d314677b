/**
 * ONNX tensor element decoding: narrow floats against ml_dtypes (golden), the FNUZ variants by their exact
 * relation to the FN/IEEE ones, and every storage form (raw_data packing, int32_data, int64_data,
 * double_data, uint64_data) on hand-made tensors with hand-computed values.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bitsToF32 } from '../../src/core/bits.ts';
import { MixqError } from '../../src/core/errors.ts';
import {
  DATA_TYPE_CODES as C,
  decodeNarrowFloat,
  getTensorFloat32,
  ONNX_DTYPES,
  onnxMessageType,
  type TensorProto,
  tensorBytes,
} from '../../src/io/onnx/index.ts';

const golden = JSON.parse(readFileSync('test/golden/onnx_narrow_float_decode.json', 'utf8')) as {
  types: Record<string, Record<string, string>>;
};

const sameValue = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || Object.is(a, b);

test('narrow float decoders match ml_dtypes on every code it produced', () => {
  const map: [string, number][] = [
    ['float8_e4m3fn', C.FLOAT8E4M3FN],
    ['float8_e5m2', C.FLOAT8E5M2],
    ['float4_e2m1fn', C.FLOAT4E2M1],
    ['float8_e8m0fnu', C.FLOAT8E8M0],
    ['bfloat16', C.BFLOAT16],
  ];
  for (const [name, code] of map) {
    const pairs = Object.entries(golden.types[name] ?? {});
    assert.ok(pairs.length >= 16, name);
    for (const [hex, valueHex] of pairs) {
      const got = decodeNarrowFloat(Number.parseInt(hex, 16), code);
      const want = bitsToF32(Number.parseInt(valueHex, 16));
      assert.ok(sameValue(got, want), `${name} code ${hex}: ${got} vs ${want}`);
    }
  }
});

test('FNUZ formats: every code is the FN/IEEE value halved (bias + 1), 0x80 is the only NaN', () => {
  for (let c = 0; c < 256; c++) {
    const e4uz = decodeNarrowFloat(c, C.FLOAT8E4M3FNUZ);
    const e5uz = decodeNarrowFloat(c, C.FLOAT8E5M2FNUZ);
    if (c === 0x80) {
      assert.ok(Number.isNaN(e4uz) && Number.isNaN(e5uz));
      continue;
    }
    // e4m3fn's NaN codes (S.1111.111) are finite in fnuz: 1.875 * 2^(15-8) = 240.
    if ((c & 0x7f) === 0x7f) assert.equal(Math.abs(e4uz), 240);
    else assert.ok(Object.is(e4uz, decodeNarrowFloat(c, C.FLOAT8E4M3FN) / 2), `e4m3fnuz ${c}`);
    // e5m2's inf/NaN codes (exponent 31) are finite in fnuz: max 1.75 * 2^(31-16) = 57344.
    if ((c & 0x7c) === 0x7c) assert.ok(Number.isFinite(e5uz) && Math.abs(e5uz) >= 32768);
    else assert.ok(Object.is(e5uz, decodeNarrowFloat(c, C.FLOAT8E5M2) / 2), `e5m2fnuz ${c}`);
  }
  assert.equal(decodeNarrowFloat(0x7f, C.FLOAT8E5M2FNUZ), 57344);
  assert.equal(decodeNarrowFloat(1, C.FLOAT8E4M3FNUZ), 2 ** -10);
});

function tensor(fields: Partial<TensorProto> & { dims: number[]; data_type: number }): TensorProto {
  return onnxMessageType('TensorProto').fromObject(fields) as unknown as TensorProto;
}

test('sub-byte types unpack low nibble / low crumb first, from raw_data and int32_data', () => {
  // int4: elements [1, -2, 7, -8, 3] -> bytes 0xE1, 0x87, 0x03
  const i4 = [1, -2, 7, -8, 3];
  const raw = tensor({ dims: [5], data_type: C.INT4, raw_data: new Uint8Array([0xe1, 0x87, 0x03]) });
  assert.deepEqual(Array.from(getTensorFloat32(raw)), i4);
  const typed = tensor({ dims: [5], data_type: C.INT4, int32_data: [0xe1, 0x87, 0x03] });
  assert.deepEqual(Array.from(getTensorFloat32(typed)), i4);
  const u4 = tensor({ dims: [3], data_type: C.UINT4, raw_data: new Uint8Array([0xf0, 0x09]) });
  assert.deepEqual(Array.from(getTensorFloat32(u4)), [0, 15, 9]);
  const f4 = tensor({ dims: [4], data_type: C.FLOAT4E2M1, raw_data: new Uint8Array([0x9f, 0x70]) });
  assert.deepEqual(Array.from(getTensorFloat32(f4)), [-6, -0.5, 0, 6]);
  const i2 = tensor({ dims: [5], data_type: C.INT2, raw_data: new Uint8Array([0b11_10_01_00, 0b01]) });
  assert.deepEqual(Array.from(getTensorFloat32(i2)), [0, 1, -2, -1, 1]);
  const u2 = tensor({ dims: [4], data_type: C.UINT2, int32_data: [0b00_01_10_11] });
  assert.deepEqual(Array.from(getTensorFloat32(u2)), [3, 2, 1, 0]);
  // A wrong packed size is an error, not a misread.
  const bad = tensor({ dims: [5], data_type: C.INT4, raw_data: new Uint8Array([1, 2]) });
  assert.throws(() => getTensorFloat32(bad), MixqError);
});

test('typed fields give the same bytes as raw_data would', () => {
  const i64 = tensor({ dims: [3], data_type: C.INT64, int64_data: [-1, 2 ** 40, 7] });
  const dv = new DataView(tensorBytes(i64).buffer);
  assert.deepEqual(
    [dv.getBigInt64(0, true), dv.getBigInt64(8, true), dv.getBigInt64(16, true)],
    [-1n, 2n ** 40n, 7n],
  );
  assert.deepEqual(Array.from(getTensorFloat32(i64)), [-1, 2 ** 40, 7]);
  const f64 = tensor({ dims: [2], data_type: C.DOUBLE, double_data: [0.1, -2.5] });
  assert.deepEqual(Array.from(getTensorFloat32(f64)), [Math.fround(0.1), -2.5]);
  const u32 = tensor({ dims: [2], data_type: C.UINT32, uint64_data: [4294967295, 5] });
  assert.deepEqual(Array.from(tensorBytes(u32)), [255, 255, 255, 255, 5, 0, 0, 0]);
  const i8 = tensor({ dims: [3], data_type: C.INT8, int32_data: [-128, 127, -1] });
  assert.deepEqual(Array.from(getTensorFloat32(i8)), [-128, 127, -1]);
  const b = tensor({ dims: [3], data_type: C.BOOL, int32_data: [0, 1, 5] });
  assert.deepEqual(Array.from(tensorBytes(b)), [0, 1, 1]);
  const e4 = tensor({ dims: [2], data_type: C.FLOAT8E4M3FN, int32_data: [0x7e, 0xb8] });
  assert.deepEqual(Array.from(getTensorFloat32(e4)), [448, -1]);
  const cplx = tensor({ dims: [1], data_type: C.COMPLEX64, float_data: [1, 2] });
  assert.equal(tensorBytes(cplx).length, 8);
  assert.throws(() => getTensorFloat32(cplx), /cannot convert data_type COMPLEX64/);
  const str = tensor({ dims: [1], data_type: C.STRING, string_data: [new Uint8Array([65])] });
  assert.throws(() => tensorBytes(str), MixqError);
  const unknown = tensor({ dims: [1], data_type: 99, raw_data: new Uint8Array(4) });
  assert.throws(() => tensorBytes(unknown), /unsupported data_type 99/);
});

test('the dtype table covers every DataType code once', () => {
  const codes = ONNX_DTYPES.map((d) => d.code).sort((a, b) => a - b);
  assert.deepEqual(
    codes,
    Array.from({ length: 26 }, (_, i) => i + 1),
  );
  assert.equal(new Set(ONNX_DTYPES.map((d) => d.dtype)).size, 26);
});

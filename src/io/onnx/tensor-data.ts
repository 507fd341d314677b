/**
 * The data of one ONNX tensor: as canonical little-endian bytes (the raw_data layout, whichever field the
 * file used), as float32, and replacing it. External data (data_location = EXTERNAL, keys location /
 * offset / length) is read through a ByteSource, so tensors in files over 2 GB are reached without
 * loading the file; every offset and length is checked against the external file's size first.
 *
 * Sources: onnx.proto comments on TensorProto (raw_data, int32_data packing, external_data keys) and
 * onnx/docs/ExternalData.md.
 */
import { f32ToBf16Bits, f32ToF16Bits } from '../../core/bits.ts';
import { MixqError } from '../../core/errors.ts';
import type { ByteSource } from '../source.ts';
import { decodeNarrowFloat, type OnnxDTypeInfo, onnxDType, rawByteLength } from './dtypes.ts';
import type { Int64, SparseTensorProto, TensorProto } from './proto-types.ts';
import { elementCount, isExternal, type OnnxModel, tensorDims } from './read.ts';
import { DATA_TYPE_CODES as C } from './schema.ts';

export interface ExternalDataRef {
  /** Path relative to the model's folder. */
  readonly location: string;
  readonly offset: number;
  /** Bytes, or undefined when the file did not say (then: the tensor's size from dims and type). */
  readonly length: number | undefined;
}

// Tensors from readOnnx were already checked against the model's limits; these loose caps only keep
// counts of hand-built tensors exact.
const DEFAULT_CAPS = { maxRank: 64, maxElements: Number.MAX_SAFE_INTEGER } as const;

const where = (t: TensorProto) => (t.name ? `tensor '${t.name}'` : 'tensor');

function info(t: TensorProto, source: string): OnnxDTypeInfo {
  const d = onnxDType(t.data_type);
  if (!d) {
    throw new MixqError(`unsupported data_type ${t.data_type}`, {
      source,
      field: `${where(t)}.data_type`,
      expected: 'a TensorProto.DataType code 1..26',
    });
  }
  return d;
}

/** Bytes the tensor's data takes in raw_data form. */
export function tensorByteLength(t: TensorProto, source = ''): number {
  const d = info(t, source);
  const count = elementCount(tensorDims(t.dims, source, `${where(t)}.dims`, DEFAULT_CAPS));
  return d.bits === 0 ? 0 : rawByteLength(d, count);
}

/**
 * Refuses an external data location that could reach outside the model's folder (absolute paths, drive
 * letters, '..' segments): a model file must not make mixq read or write arbitrary files.
 */
export function checkDataLocation(location: string, source: string, field: string): void {
  const parts = location.split(/[\\/]/);
  if (!location || location.startsWith('/') || /^[A-Za-z]:/.test(location) || parts.includes('..')) {
    throw new MixqError(`external data location '${location}' leaves the model's folder`, {
      source,
      field,
      expected: 'a relative path without ..',
    });
  }
}

/**
 * Parses the external_data entries of an external tensor. Refuses absolute paths and '..' segments:
 * a model must not read files outside its own folder.
 */
export function externalDataRef(t: TensorProto, source = ''): ExternalDataRef | undefined {
  if (!isExternal(t)) return undefined;
  let location = '';
  let offset = 0;
  let length: number | undefined;
  const field = `${where(t)}.external_data`;
  const int = (key: string, v: string) => {
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new MixqError(`${key} '${v.slice(0, 40)}' is not a byte count`, {
        source,
        field: `${field}.${key}`,
        expected: 'a non-negative decimal integer',
      });
    }
    return Number(v);
  };
  for (const e of t.external_data) {
    if (e.key === 'location') location = e.value;
    else if (e.key === 'offset') offset = int('offset', e.value);
    else if (e.key === 'length') length = int('length', e.value);
  }
  if (!location) {
    throw new MixqError('external tensor has no location', { source, field, expected: "a 'location' entry" });
  }
  checkDataLocation(location, source, `${field}.location`);
  return { location, offset, length };
}

/** Writes `v` (an int64 field value) little-endian at `off`. */
function putInt64(view: DataView, off: number, v: Int64): void {
  if (typeof v === 'number') {
    view.setBigInt64(off, BigInt(v), true);
  } else {
    view.setInt32(off, v.low, true);
    view.setInt32(off + 4, v.high, true);
  }
}

/**
 * The tensor's inline data as little-endian bytes in raw_data layout (typed fields are converted).
 * A view of raw_data is returned when the file used raw_data: copy it before changing it.
 * @throws MixqError for external tensors (use loadTensorBytes), strings, or missing/mis-sized data.
 */
export function tensorBytes(t: TensorProto, source = ''): Uint8Array {
  const d = info(t, source);
  if (isExternal(t)) {
    throw new MixqError('tensor data is external; load it with loadTensorBytes', {
      source,
      field: `${where(t)}.data_location`,
      expected: 'inline data',
    });
  }
  if (d.bits === 0) {
    throw new MixqError('STRING tensors have no numeric data', { source, field: `${where(t)}.data_type` });
  }
  if ((t as { segment?: unknown }).segment) {
    throw new MixqError('segmented tensors are not supported', { source, field: `${where(t)}.segment` });
  }
  const count = elementCount(tensorDims(t.dims, source, `${where(t)}.dims`, DEFAULT_CAPS));
  const nBytes = rawByteLength(d, count);
  if (t.raw_data.length > 0 || count === 0) {
    if (t.raw_data.length !== nBytes) {
      throw new MixqError(`raw_data has ${t.raw_data.length} bytes`, {
        source,
        field: `${where(t)}.raw_data`,
        expected: `${nBytes} bytes`,
      });
    }
    return t.raw_data;
  }
  const typed = t[d.typedField] as readonly Int64[];
  const want = Math.ceil((count * d.entriesPerElement) / d.perTypedEntry);
  if (typed.length !== want) {
    throw new MixqError(`${d.typedField} has ${typed.length} entries`, {
      source,
      field: `${where(t)}.${d.typedField}`,
      expected: `${want} entries (the tensor has no other data)`,
    });
  }
  const out = new Uint8Array(nBytes);
  const view = new DataView(out.buffer);
  switch (d.typedField) {
    case 'float_data':
      for (let i = 0; i < typed.length; i++) view.setFloat32(4 * i, typed[i] as number, true);
      break;
    case 'double_data':
      for (let i = 0; i < typed.length; i++) view.setFloat64(8 * i, typed[i] as number, true);
      break;
    case 'int64_data':
      for (let i = 0; i < typed.length; i++) putInt64(view, 8 * i, typed[i] as Int64);
      break;
    case 'uint64_data':
      for (let i = 0; i < typed.length; i++) {
        const v = typed[i] as Int64;
        if (d.bits === 32) view.setUint32(4 * i, typeof v === 'number' ? v : v.low >>> 0, true);
        else putInt64(view, 8 * i, v);
      }
      break;
    case 'int32_data': {
      const bytesPerEntry = d.bits >= 8 ? d.bits / 8 : 1; // sub-byte types: one packed byte per entry
      for (let i = 0; i < typed.length; i++) {
        const v = typed[i] as number;
        if (bytesPerEntry === 1) out[i] = d.code === C.BOOL ? (v !== 0 ? 1 : 0) : v & 0xff;
        else if (bytesPerEntry === 2) view.setUint16(2 * i, v & 0xffff, true);
        else view.setInt32(4 * i, v, true);
      }
      break;
    }
    default:
      throw new MixqError(`cannot read ${d.typedField}`, { source, field: `${where(t)}.${d.typedField}` });
  }
  return out;
}

async function externalSource(model: OnnxModel, location: string, field: string): Promise<ByteSource> {
  const resolve = model.externalData;
  if (!resolve) {
    throw new MixqError(`external data file '${location}' cannot be opened`, {
      source: model.source,
      field,
      expected: 'readOnnx(..., { externalData }) or readOnnxFile()',
    });
  }
  let p = model.externalCache.get(location);
  if (!p) {
    p = Promise.resolve(resolve(location));
    model.externalCache.set(location, p);
  }
  return p;
}

/** Resolves an external tensor's byte range and checks it against the external file's size. */
export async function externalRange(
  model: OnnxModel,
  t: TensorProto,
): Promise<{ src: ByteSource; offset: number; length: number }> {
  const ref = externalDataRef(t, model.source) as ExternalDataRef;
  const field = `${where(t)}.external_data`;
  const want = tensorByteLength(t, model.source);
  const length = ref.length ?? want;
  if (length !== want) {
    throw new MixqError(`external length is ${length} bytes`, {
      source: model.source,
      field: `${field}.length`,
      expected: `${want} bytes for the tensor's dims and type`,
    });
  }
  const src = await externalSource(model, ref.location, field);
  if (ref.offset + length > src.size) {
    throw new MixqError(`external range ${ref.offset}+${length} is past the end of '${ref.location}'`, {
      source: model.source,
      field: `${field}.offset`,
      expected: `offset + length <= ${src.size}`,
    });
  }
  return { src, offset: ref.offset, length };
}

/** The tensor's data as little-endian bytes, inline or external. */
export async function loadTensorBytes(model: OnnxModel, t: TensorProto): Promise<Uint8Array> {
  if (!isExternal(t)) return tensorBytes(t, model.source);
  const { src, offset, length } = await externalRange(model, t);
  return src.read(offset, length);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes raw_data-layout bytes of a numeric tensor to float32 (int64 beyond 2^24 rounds, as a cast would). */
export function bytesToFloat32(
  bytes: Uint8Array,
  dataType: number,
  count: number,
  source = '',
): Float32Array {
  const d = onnxDType(dataType);
  if (!d || d.bits === 0 || d.entriesPerElement !== 1) {
    throw new MixqError(`cannot convert data_type ${d?.onnxName ?? dataType} to float32`, {
      source,
      field: 'data_type',
      expected: 'a real numeric type',
    });
  }
  if (bytes.length < rawByteLength(d, count)) {
    throw new MixqError(`${bytes.length} bytes for ${count} elements`, {
      source,
      field: 'data',
      expected: `${rawByteLength(d, count)} bytes`,
    });
  }
  if (dataType === C.FLOAT && LITTLE_ENDIAN) {
    // Fast path: one copy of the bytes, viewed as float32 (raw_data is little-endian, as is the host).
    return new Float32Array(bytes.slice(0, 4 * count).buffer);
  }
  const out = new Float32Array(count); // only after the size check: count comes from the file
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sub = (i: number, bits: number) => (bytes[(i * bits) >> 3] as number) >> ((i * bits) & 7);
  for (let i = 0; i < count; i++) {
    let v: number;
    switch (dataType) {
      case C.FLOAT:
        v = view.getFloat32(4 * i, true);
        break;
      case C.DOUBLE:
        v = view.getFloat64(8 * i, true);
        break;
      case C.UINT8:
      case C.BOOL:
        v = bytes[i] as number;
        break;
      case C.INT8:
        v = view.getInt8(i);
        break;
      case C.UINT16:
        v = view.getUint16(2 * i, true);
        break;
      case C.INT16:
        v = view.getInt16(2 * i, true);
        break;
      case C.INT32:
        v = view.getInt32(4 * i, true);
        break;
      case C.UINT32:
        v = view.getUint32(4 * i, true);
        break;
      case C.INT64:
        v = Number(view.getBigInt64(8 * i, true));
        break;
      case C.UINT64:
        v = Number(view.getBigUint64(8 * i, true));
        break;
      case C.FLOAT16:
      case C.BFLOAT16:
        v = decodeNarrowFloat(view.getUint16(2 * i, true), dataType);
        break;
      case C.UINT4:
        v = sub(i, 4) & 15;
        break;
      case C.INT4:
        v = ((sub(i, 4) & 15) << 28) >> 28;
        break;
      case C.FLOAT4E2M1:
        v = decodeNarrowFloat(sub(i, 4) & 15, dataType);
        break;
      case C.UINT2:
        v = sub(i, 2) & 3;
        break;
      case C.INT2:
        v = ((sub(i, 2) & 3) << 30) >> 30;
        break;
      default: // the 8-bit floats
        v = decodeNarrowFloat(bytes[i] as number, dataType);
    }
    out[i] = v;
  }
  return out;
}

/**
 * The tensor's inline values as float32 (any real numeric type; fp16/bf16/fp8/fp4 decoded exactly).
 * @example const w = getTensorFloat32(weight.tensor);
 */
export function getTensorFloat32(t: TensorProto, source = ''): Float32Array {
  const count = elementCount(tensorDims(t.dims, source, `${where(t)}.dims`, DEFAULT_CAPS));
  if (t.data_type === C.FLOAT && t.raw_data.length === 0 && !isExternal(t) && t.float_data.length === count) {
    return Float32Array.from(t.float_data);
  }
  return bytesToFloat32(tensorBytes(t, source), t.data_type, count, source);
}

/** Like getTensorFloat32, also for external tensors. */
export async function loadTensorFloat32(model: OnnxModel, t: TensorProto): Promise<Float32Array> {
  const count = elementCount(tensorDims(t.dims, model.source, `${where(t)}.dims`, DEFAULT_CAPS));
  return bytesToFloat32(await loadTensorBytes(model, t), t.data_type, count, model.source);
}

/**
 * Replaces the tensor's data with `bytes` (raw_data layout) and optionally its data type and dims.
 * The data becomes inline raw_data: typed fields and external_data are cleared, so an external tensor
 * that is replaced moves into the model file.
 */
export function setTensorBytes(
  t: TensorProto,
  bytes: Uint8Array,
  opts: { dataType?: number; dims?: readonly number[] } = {},
): void {
  const dataType = opts.dataType ?? t.data_type;
  const dims = opts.dims ?? tensorDims(t.dims, '', `${where(t)}.dims`, DEFAULT_CAPS);
  const d = onnxDType(dataType);
  if (!d)
    throw new MixqError(`unsupported data_type ${dataType}`, {
      field: 'dataType',
      expected: 'a TensorProto.DataType',
    });
  const want = rawByteLength(d, elementCount(dims));
  if (d.bits === 0 || bytes.length !== want) {
    throw new MixqError(`new data has ${bytes.length} bytes`, {
      field: `${where(t)}.raw_data`,
      expected: `${want} bytes for ${elementCount(dims)} x ${d.onnxName}`,
    });
  }
  t.data_type = dataType;
  t.dims = dims.slice();
  t.raw_data = bytes;
  // Only one data field may be set. Deleting the own property returns the field to "absent".
  const m = t as unknown as Record<string, unknown>;
  for (const k of ['float_data', 'int32_data', 'int64_data', 'double_data', 'uint64_data', 'string_data']) {
    if (Object.hasOwn(m, k)) m[k] = [];
  }
  delete m.data_location;
  if (Object.hasOwn(m, 'external_data')) m.external_data = [];
}

/**
 * Replaces a float tensor's values, encoded in the tensor's own type (f32, f16, bf16 or f64; fp16/bf16 round
 * to nearest even). Dims stay unless given.
 * @example setTensorFloat32(weight.tensor, dequantized);
 */
export function setTensorFloat32(t: TensorProto, values: Float32Array, dims?: readonly number[]): void {
  const shape = dims ?? tensorDims(t.dims, '', `${where(t)}.dims`, DEFAULT_CAPS);
  if (values.length !== elementCount(shape)) {
    throw new MixqError(`${values.length} values for shape [${shape.join(', ')}]`, {
      field: `${where(t)}`,
      expected: `${elementCount(shape)} values`,
    });
  }
  const dt = t.data_type;
  const width = dt === C.FLOAT ? 4 : dt === C.DOUBLE ? 8 : dt === C.FLOAT16 || dt === C.BFLOAT16 ? 2 : 0;
  if (width === 0) {
    throw new MixqError(`cannot store float values in ${onnxDType(dt)?.onnxName ?? dt}`, {
      field: `${where(t)}.data_type`,
      expected: 'FLOAT, FLOAT16, BFLOAT16 or DOUBLE (use setTensorBytes for other types)',
    });
  }
  const out = new Uint8Array(values.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (width === 4) view.setFloat32(4 * i, v, true);
    else if (width === 8) view.setFloat64(8 * i, v, true);
    else view.setUint16(2 * i, dt === C.FLOAT16 ? f32ToF16Bits(v) : f32ToBf16Bits(v), true);
  }
  setTensorBytes(t, out, { dims: shape });
}

/**
 * Densifies an inline sparse tensor (onnx.proto SparseTensorProto): `values` [NNZ] scattered into a zero
 * tensor of shape `dims` at `indices`, given either as linear indices [NNZ] or as coordinates [NNZ, rank].
 * Every index is bounds-checked.
 */
export function sparseToDenseFloat32(s: SparseTensorProto, source = ''): Float32Array {
  const field = 'sparse_tensor';
  if (!s.values || !s.indices) {
    throw new MixqError('sparse tensor lacks values or indices', { source, field, expected: 'both' });
  }
  const dims = tensorDims(s.dims, source, `${field}.dims`, DEFAULT_CAPS);
  const count = elementCount(dims);
  const values = getTensorFloat32(s.values, source);
  const idxDims = tensorDims(s.indices.dims, source, `${field}.indices.dims`, DEFAULT_CAPS);
  const idxCount = elementCount(idxDims);
  const idxInfo = onnxDType(s.indices.data_type);
  if (!idxInfo || idxInfo.isFloat || idxInfo.bits < 8) {
    throw new MixqError('sparse indices must be integers', { source, field: `${field}.indices.data_type` });
  }
  const nnz = values.length;
  const coords = idxDims.length === 2;
  if (
    !(idxDims.length === 1 && idxCount === nnz) &&
    !(coords && idxDims[0] === nnz && idxDims[1] === dims.length)
  ) {
    throw new MixqError(`indices have shape [${idxDims.join(', ')}]`, {
      source,
      field: `${field}.indices.dims`,
      expected: `[${nnz}] or [${nnz}, ${dims.length}]`,
    });
  }
  // Read indices exactly (int64 as BigInt -> Number after the range check).
  const raw = tensorBytes(s.indices, source);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const width = idxInfo.bits / 8;
  const signed = idxInfo.onnxName.startsWith('INT');
  const at = (i: number): number => {
    const o = i * width;
    if (width === 8) return Number(signed ? view.getBigInt64(o, true) : view.getBigUint64(o, true));
    if (width === 4) return signed ? view.getInt32(o, true) : view.getUint32(o, true);
    if (width === 2) return signed ? view.getInt16(o, true) : view.getUint16(o, true);
    return signed ? view.getInt8(o) : view.getUint8(o);
  };
  const out = new Float32Array(count);
  for (let k = 0; k < nnz; k++) {
    let flat = 0;
    if (coords) {
      for (let d = 0; d < dims.length; d++) {
        const c = at(k * dims.length + d);
        if (!(c >= 0 && c < (dims[d] as number))) {
          throw new MixqError(`coordinate ${c} out of range`, {
            source,
            field: `${field}.indices[${k}][${d}]`,
            expected: `0..${(dims[d] as number) - 1}`,
          });
        }
        flat = flat * (dims[d] as number) + c;
      }
    } else {
      flat = at(k);
    }
    if (!(flat >= 0 && flat < count)) {
      throw new MixqError(`index ${flat} out of range`, {
        source,
        field: `${field}.indices[${k}]`,
        expected: `0..${count - 1}`,
      });
    }
    out[flat] = values[k] as number;
  }
  return out;
}

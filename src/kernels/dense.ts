/**
 * Plain float rows: float32, float16 and bfloat16 matrices exactly as GGUF / safetensors store them
 * (rows of K little-endian values, no padding, no repacking). The kernels (native/kernels/dense.h) read K
 * values per row; float16 is widened by moving its fields into float32's and multiplying by 2^112, exact for
 * every finite value, so float16 weights must be finite (checked here, at load).
 */
import { bf16BitsToF32, f16BitsToF32 } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import { type Desc, emptyDesc, LAYOUT } from './layout.ts';
import type { KernelMemory } from './memory.ts';
import { checkShape, type Float32Source, type GgmlSource } from './source.ts';

export type DenseType = 'F32' | 'F16' | 'BF16';

/** Activation length of a dense weight: K rounded up to 32 (activation buffers are zero beyond K). */
export function denseKp(cols: number): number {
  return Math.ceil(cols / 32) * 32;
}

/** Prepares a float matrix; bytes already inside kernel memory are used in place (not copied, not owned). */
export function prepareDense(
  mem: KernelMemory,
  src: Float32Source | (GgmlSource & { type: DenseType }),
): { desc: Desc; allocations: number[]; bytes: number } {
  const source = `kernels: ${src.kind === 'float32' ? 'float32' : src.type} weight`;
  checkShape(source, src.rows, src.cols);
  const type: DenseType = src.kind === 'float32' ? 'F32' : src.type;
  const width = type === 'F32' ? 4 : 2;
  const n = src.rows * src.cols;
  const bytes =
    src.kind === 'float32'
      ? new Uint8Array(src.data.buffer, src.data.byteOffset, src.data.byteLength)
      : src.data;
  if (bytes.length !== n * width)
    throw new MixqError(`${bytes.length} bytes`, {
      source,
      field: 'data.length',
      expected: `${n * width} (${src.rows} x ${src.cols} ${type})`,
    });
  if (type === 'F16')
    for (let i = 0; i < bytes.length; i += 2)
      if ((bytes[i + 1]! & 0x7c) === 0x7c)
        throw new MixqError(`value ${i / 2} is not finite`, {
          source,
          field: 'data',
          expected: 'finite float16 weights',
        });
  let data: number;
  const allocations: number[] = [];
  if (bytes.buffer === mem.memory.buffer) data = bytes.byteOffset;
  else {
    data = mem.alloc(bytes.length);
    allocations.push(data);
    mem.u8(data, bytes.length).set(bytes);
  }
  const desc = emptyDesc();
  Object.assign(desc, {
    layout: LAYOUT[type === 'F32' ? 'f32' : type === 'F16' ? 'f16' : 'bf16'],
    rows: src.rows,
    cols: src.cols,
    kp: denseKp(src.cols),
    data,
    rowBytes: src.cols * width,
    bits: 8 * width,
  });
  return { desc, allocations, bytes: allocations.length ? bytes.length : 0 };
}

/** Reference decoder of row r (values as stored, exactly). */
export function decodeDenseRow(bytes: Uint8Array, d: Desc, r: number, out: Float64Array): void {
  out.fill(0);
  const p = d.data + r * d.rowBytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  for (let k = 0; k < d.cols; k++) {
    if (d.layout === LAYOUT.f32) out[k] = view.getFloat32(p + 4 * k, true);
    else {
      const h = bytes[p + 2 * k]! | (bytes[p + 2 * k + 1]! << 8);
      out[k] = d.layout === LAYOUT.f16 ? f16BitsToF32(h) : bf16BitsToF32(h);
    }
  }
}

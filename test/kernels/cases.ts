/**
 * Weights for the kernel tests, made by mixq's own writers so that what the kernels read is what mixq
 * ships: quantized safetensors (writeQuantizedSafetensors, read back tensor by tensor), ggml blocks
 * (BLOCK_TYPES encoders, bit-exact with llama.cpp) and float32. Each case also carries mixq's own
 * dequantization of the weight (what the kernels' reference decoders must reproduce bit for bit).
 *
 * "Exact" variants choose power-of-two scales and dyadic activations so that every product and partial sum
 * is exactly representable in float32: any summation order then gives the exact result, and kernels, their
 * references, both SIMD variants and every thread count must agree bit for bit.
 */
import { BLOCK_TYPES, type BlockTypeName } from '../../src/blocks/registry.ts';
import { f32ToF16Bits } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import { readQuantizedSafetensors, writeQuantizedSafetensors } from '../../src/export/safetensors.ts';
import { getFormat, parseFormat } from '../../src/formats/index.ts';
import { concatBytes } from '../../src/io/index.ts';
import type { PrepareOptions } from '../../src/kernels/context.ts';
import { type MixqSource, mixqSafetensorsSource, type WeightSource } from '../../src/kernels/source.ts';
import type { ScaleFormat } from '../../src/quant/scale-format.ts';

export interface KernelCase {
  readonly name: string;
  readonly source: WeightSource;
  readonly options?: PrepareOptions;
  /** mixq's dequantized weight [rows][cols] (absent for exact cases built from codes). */
  readonly dequant?: Float32Array;
}

/** Shapes: rows not a multiple of the tile (4, 16), cols not a multiple of 16, 32 or 128. */
export const ROWS = 37;
export const COLS = 300;

function normals(rng: Rng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextNormal() * std;
  for (let i = 0; i < n; i += 61) a[i] = a[i]! * 5; // outliers, as real weights have
  return a;
}

export interface MixqSpec {
  readonly format: string;
  /** Group size along K, or per row / per tensor. */
  readonly groups: number | 'row' | 'tensor';
  readonly scaleFormat: ScaleFormat;
  readonly symmetric: boolean;
  readonly lut?: boolean;
}

/** Every mixq format family the kernels run, with the scale storage mixq plans for it (and some more). */
export const MIXQ_SPECS: readonly MixqSpec[] = [
  { format: 'uint1', groups: 32, scaleFormat: 'fp16', symmetric: false },
  { format: 'uint2', groups: 32, scaleFormat: 'fp16', symmetric: false },
  { format: 'int2', groups: 16, scaleFormat: 'fp16', symmetric: true },
  { format: 'uint3', groups: 32, scaleFormat: 'fp16', symmetric: false },
  { format: 'uint4', groups: 32, scaleFormat: 'fp16', symmetric: false },
  { format: 'uint4', groups: 128, scaleFormat: 'fp16', symmetric: false },
  { format: 'int4', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'int4', groups: 'tensor', scaleFormat: 'fp32', symmetric: true },
  {
    format: 'uint4',
    groups: 32,
    scaleFormat: { kind: 'double', subBits: 6, superGroup: 8 },
    symmetric: false,
  },
  { format: 'uint5', groups: 32, scaleFormat: 'fp16', symmetric: false },
  { format: 'int5', groups: 16, scaleFormat: 'fp16', symmetric: true },
  { format: 'int6', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'int7', groups: 64, scaleFormat: 'bf16', symmetric: true },
  { format: 'int8', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'uint8', groups: 32, scaleFormat: 'fp16', symmetric: false },
  { format: 'fp8_e4m3fn', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'fp8_e5m2', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'fp8_e4m3fn', groups: 32, scaleFormat: 'e8m0', symmetric: true }, // MXFP8
  { format: 'fp6_e3m2fn', groups: 32, scaleFormat: 'e8m0', symmetric: true }, // MXFP6
  { format: 'fp6_e2m3fn', groups: 32, scaleFormat: 'e8m0', symmetric: true }, // MXFP6
  { format: 'fp6_e3m2fn', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'fp4_e2m1fn', groups: 32, scaleFormat: 'e8m0', symmetric: true }, // MXFP4
  { format: 'fp4_e2m1fn', groups: 16, scaleFormat: 'fp8_e4m3fn', symmetric: true }, // NVFP4
  { format: 'fp4_e2m1fn', groups: 'row', scaleFormat: 'fp32', symmetric: true },
  { format: 'fp4_e2m1fn', groups: 32, scaleFormat: 'fp16', symmetric: false }, // offsets
  { format: 'nf4', groups: 64, scaleFormat: 'fp16', symmetric: true },
  { format: 'nf4', groups: 64, scaleFormat: 'fp16', symmetric: false },
  { format: 'e3m4', groups: 'row', scaleFormat: 'fp32', symmetric: true }, // a custom minifloat
  { format: 'fp16', groups: 'row', scaleFormat: 'none', symmetric: true },
  { format: 'bf16', groups: 'row', scaleFormat: 'none', symmetric: true },
  { format: 'uint1', groups: 32, scaleFormat: 'fp16', symmetric: false, lut: true },
  { format: 'uint2', groups: 32, scaleFormat: 'fp16', symmetric: false, lut: true },
  { format: 'int3', groups: 64, scaleFormat: 'fp16', symmetric: true, lut: true },
  { format: 'uint4', groups: 'row', scaleFormat: 'fp32', symmetric: false, lut: true },
];

export function specName(s: MixqSpec): string {
  const sf = typeof s.scaleFormat === 'object' ? 'double' : s.scaleFormat;
  const g = typeof s.groups === 'number' ? `g${s.groups}` : s.groups;
  return `${s.format}-${g}-${sf}-${s.symmetric ? 'sym' : 'asym'}${s.lut ? '-lut' : ''}`;
}

function element(name: string) {
  try {
    return getFormat(name);
  } catch {
    return parseFormat(name);
  }
}

/** A mixq weight quantized by mixq's RTN and stored as quantized safetensors. */
export async function mixqCase(s: MixqSpec, rows = ROWS, cols = COLS, seed = 1): Promise<KernelCase> {
  const W = normals(new Rng(seed), rows * cols, 0.1);
  const granularity =
    s.groups === 'row'
      ? ({ kind: 'axis', axis: 0 } as const)
      : s.groups === 'tensor'
        ? ({ kind: 'tensor' } as const)
        : ({ kind: 'group', axis: 1, size: s.groups } as const);
  const bytes = concatBytes(
    writeQuantizedSafetensors([
      {
        kind: 'quantize',
        name: 'w',
        values: W,
        shape: [rows, cols],
        quantizer: {
          element: element(s.format),
          granularity,
          symmetric: s.symmetric,
          scaleFormat: s.scaleFormat,
        },
      },
    ]),
  );
  const q = await readQuantizedSafetensors(bytes);
  const info = q.weights[0]!;
  const t: Record<string, Uint8Array> = {};
  for (const [role, ti] of Object.entries(info.tensors)) t[role] = await q.file.readTensorBytes(ti);
  return {
    name: specName(s),
    source: mixqSafetensorsSource(info.entry, t as { qweight: Uint8Array }),
    ...(s.lut ? { options: { layout: 'lut' as const } } : {}),
    dequant: await q.dequantize('w'),
  };
}

/**
 * A mixq weight with random codes and power-of-two scales (the exact variant). Integer formats, FP4 and
 * FP6 E2M3 only: their values have few significant bits and a small range.
 */
export function mixqExactCase(s: MixqSpec, rows = ROWS, cols = COLS, seed = 7): KernelCase {
  const rng = new Rng(seed);
  const spec = element(s.format);
  const bits = spec.kind === 'float' ? 1 + spec.expBits + spec.manBits : spec.bits;
  const n = rows * cols;
  const codes = new Uint8Array(Math.ceil((n * bits) / 8));
  // random codes; tables avoid their NaN-free range issue: FP4 / E2M3 have no NaN codes
  for (let i = 0; i < codes.length; i++) codes[i] = rng.nextU32() & 255;
  const ng = s.groups === 'row' ? rows : s.groups === 'tensor' ? 1 : rows * Math.ceil(cols / s.groups);
  const pow2 = (): number => 2 ** -4; // one exponent: sums of up to 2^24 units stay exact
  let scales: Uint8Array;
  if (s.scaleFormat === 'fp32') scales = new Uint8Array(Float32Array.from({ length: ng }, pow2).buffer);
  else if (s.scaleFormat === 'fp16' || s.scaleFormat === 'bf16') {
    scales = new Uint8Array(2 * ng);
    for (let g = 0; g < ng; g++) {
      const v = pow2();
      const h =
        s.scaleFormat === 'fp16' ? f32ToF16Bits(v) : new Uint32Array(Float32Array.of(v).buffer)[0]! >>> 16;
      scales[2 * g] = h & 255;
      scales[2 * g + 1] = h >> 8;
    }
  } else if (s.scaleFormat === 'e8m0')
    scales = Uint8Array.from({ length: ng }, () => 127 - 3 - (rng.nextU32() % 4));
  else if (s.scaleFormat === 'fp8_e4m3fn')
    scales = Uint8Array.from({ length: ng }, () => (7 - (rng.nextU32() % 4)) << 3);
  else throw new Error(`exact case: scale format ${JSON.stringify(s.scaleFormat)}`);
  const src: MixqSource = {
    kind: 'mixq',
    rows,
    cols,
    element: s.format,
    groups: s.groups,
    scaleFormat: s.scaleFormat as MixqSource['scaleFormat'],
    symmetric: s.symmetric,
    codes,
    scales,
    ...(s.scaleFormat === 'fp8_e4m3fn' ? { globalScale: 0.5 } : {}),
    ...(!s.symmetric && spec.kind === 'int'
      ? { zeros: Uint8Array.from({ length: Math.ceil((ng * bits) / 8) }, () => rng.nextU32() & 255) }
      : {}),
    ...(!s.symmetric && spec.kind !== 'int'
      ? {
          offsets: Uint8Array.from({ length: 2 * ng }, (_, i) =>
            i & 1 ? (f32ToF16Bits(2 ** -5) >> 8) * (rng.nextU32() & 1) : 0,
          ),
        }
      : {}),
  };
  return {
    name: `${specName(s)}-exact`,
    source: src,
    ...(s.lut ? { options: { layout: 'lut' as const } } : {}),
  };
}

export const GGML_TYPES: readonly BlockTypeName[] = [
  'F32',
  'F16',
  'BF16',
  'Q8_0',
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q2_K',
  'Q3_K',
  'Q4_K',
  'Q5_K',
  'Q6_K',
  'IQ4_NL',
  'MXFP4',
];

/** Where each ggml type keeps its float16 d (and dmin) per block: the exact variant overwrites them. */
const GGML_SCALE_FIELDS: Partial<Record<BlockTypeName, readonly number[]>> = {
  Q8_0: [0],
  Q4_0: [0],
  Q4_1: [0, 2],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q2_K: [80, 82],
  Q3_K: [108],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
  IQ4_NL: [0],
};

/** A GGUF tensor of a ggml type: rows of K values encoded by ggml's quantizer (mixq's bit-exact port). */
export function ggmlCase(type: BlockTypeName, exact = false, rows = 13, seed = 3): KernelCase {
  const t = BLOCK_TYPES[type];
  // K: several super-blocks for K-quants, 9 blocks otherwise, an odd width for the float types
  const cols = t.blockSize === 256 ? 512 : t.blockSize === 32 ? 288 : COLS + 1;
  const W = normals(new Rng(seed), rows * cols, 0.1);
  const data = t.encode(W);
  if (exact) setGgmlScales(type, data, 2 ** -8);
  return {
    name: `${type}${exact ? '-exact' : ''}`,
    source: { kind: 'ggml', type, rows, cols, data },
    dequant: t.decode(data, rows * cols),
  };
}

/** Sets every block's float16 d (and dmin) to v. */
function setGgmlScales(type: BlockTypeName, data: Uint8Array, v: number): void {
  const h = f32ToF16Bits(v);
  for (let o = 0; o < data.length; o += BLOCK_TYPES[type].bytesPerBlock)
    for (const f of GGML_SCALE_FIELDS[type] ?? []) {
      data[o + f] = h & 255;
      data[o + f + 1] = h >> 8;
    }
}

/**
 * A ggml tensor whose bytes are all 0xff but the d (and dmin) fields (2^-8): every code at its largest
 * value (K-quants: Q2_K 3, Q3_K 7, Q4_K 15, Q5_K 31, Q6_K 63), the integer partial sums at their bounds.
 */
export function ggmlMaxCodeCase(type: BlockTypeName, rows: number, cols: number): KernelCase {
  const t = BLOCK_TYPES[type];
  const data = new Uint8Array((rows * cols * t.bytesPerBlock) / t.blockSize).fill(255);
  setGgmlScales(type, data, 2 ** -8);
  return { name: `${type}-max`, source: { kind: 'ggml', type, rows, cols, data } };
}

/**
 * Dyadic activations for exact cases, `batch` rows of `cols`: n * 2^-6 with small n (|n| <= 3) and one
 * n = +-127 per block of 32, so the int8 path's block scale is 2^-6 exactly and its codes are the n.
 */
export function exactActivations(cols: number, batch: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(cols * batch);
  for (let j = 0; j < batch; j++)
    for (let i = 0; i < cols; i++)
      x[j * cols + i] = (i % 32 === 0 ? (rng.nextU32() & 1 ? 127 : -127) : (rng.nextU32() % 7) - 3) * 2 ** -6;
  return x;
}

/** The largest power of two dividing a dyadic number (0 for 0). */
function lowBit(v: number): number {
  if (v === 0) return 0;
  if (!Number.isFinite(v)) throw new Error(`lowBit(${v})`);
  let e = Math.floor(Math.log2(Math.abs(v)));
  while (!Number.isInteger(v / 2 ** e)) e--;
  while (Number.isInteger(v / 2 ** (e + 1))) e++;
  return 2 ** e;
}

/**
 * Whether every partial sum of the products w_k x_k is a float32 whatever the order: all are multiples of
 * the smallest power of two g dividing them and sum |w_k x_k| < 2^24 g.
 */
export function exactlySummable(w: ArrayLike<number>, x: ArrayLike<number>): boolean {
  let g = Infinity;
  let mag = 0;
  if (w.length !== x.length) throw new Error(`exactlySummable: ${w.length} weights, ${x.length} activations`);
  for (let k = 0; k < w.length; k++) {
    const p = w[k]! * x[k]!;
    if (p === 0) continue;
    g = Math.min(g, lowBit(p));
    mag += Math.abs(p);
  }
  return mag === 0 || mag < 2 ** 24 * g;
}

/** Standard normal activations. */
export function activations(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.nextNormal());
}

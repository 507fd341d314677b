/**
 * NVFP4 (NVIDIA Blackwell 4-bit float): E2M1 elements in blocks of 16, one FP8 E4M3 scale per block, and
 * an optional FP32 scale per tensor. Sources: NVIDIA, "Introducing NVFP4 for efficient and accurate
 * low-precision inference" (2025); the PTX ISA block-scaling section (kind::mxf4nvf4, scale_vec::4X with
 * ue4m3 scales); the quantization recipe of TensorRT Model Optimizer (per-tensor scale = amax / (6*448)).
 *
 *   value    y = e2m1[q] * e4m3[s] * tensorScale
 *   block    9 bytes per 16 elements = 4.5 bits per element (+ 32 bits per tensor for tensorScale)
 *            [0]      E4M3 (fp8_e4m3fn) block scale code; 0x7F (NaN) marks a NaN/Inf block
 *            [1, 9)   16 E2M1 codes, LSB-first (element 2i in the low nibble)
 *
 * Encoding, per block with max |x| = amax (all in float32):
 *   s = e4m3(amax / 6 / tensorScale)       nearest-even, saturating at 448 (the NVIDIA recipe: the block
 *                                          maximum maps to E2M1's max 6)
 *   q_i = e2m1(x_i / (s * tensorScale))    nearest-even, saturating at ±6; all zero when s rounds to 0
 * tensorScale: 1 (none), a given FP32 value, or 'auto' = amax(tensor) / (6 * 448), which lets the block
 * scales use E4M3's whole range.
 */
import { MixqError } from '../core/errors.ts';
import { encode, encodeArray, getFormat, type Rounding, valueTable } from '../formats/index.ts';

const E4M3 = getFormat('fp8_e4m3fn');
const E2M1 = getFormat('fp4_e2m1fn');
const E4M3_NAN = 0x7f;
const E4M3_VALUES = valueTable(E4M3);
const E2M1_VALUES = valueTable(E2M1);
const fr = Math.fround;

/** NVFP4 geometry. */
export const NVFP4 = { name: 'nvfp4', blockSize: 16, bytesPerBlock: 9, bitsPerElement: 4.5 } as const;

export interface Nvfp4Options {
  /** Per-tensor FP32 decode scale: a number, 'auto' (amax / 2688) or none (default, = 1). */
  tensorScale?: number | 'auto';
  /** Element rounding (default nearest-even); the block scale always rounds to nearest-even. */
  rounding?: Rounding;
  seed?: number;
}

export interface Nvfp4Encoded {
  /** n/16 blocks of 9 bytes. */
  readonly bytes: Uint8Array;
  /** The per-tensor decode scale used (1 when none). */
  readonly tensorScale: number;
}

/** ModelOpt's per-tensor scale amax / (6 * 448) over the finite values (1 if they are all zero). */
export function nvfp4AutoTensorScale(x: Float32Array): number {
  let amax = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    if (a > amax && a !== Infinity) amax = a;
  }
  return amax === 0 ? 1 : fr(amax / (6 * 448));
}

function resolveTensorScale(x: Float32Array, opts: Nvfp4Options): number {
  const t = opts.tensorScale;
  if (t === undefined) return 1;
  if (t === 'auto') return nvfp4AutoTensorScale(x);
  if (!(t > 0) || !Number.isFinite(t)) {
    throw new MixqError(`tensor scale ${t}`, {
      source: 'nvfp4',
      field: 'tensorScale',
      expected: 'a finite number > 0',
    });
  }
  return fr(t);
}

/**
 * A block's E4M3 scale code and the scale its elements are divided by, from its max |x| (finite, >= 0)
 * and the tensor scale g: code = e4m3(amax / 6 / g) nearest-even, saturating; scale = e4m3[code] * g
 * (0 when the code is 0: the block's elements are then zeros).
 * @example nvfp4BlockScale(6, 1) // { code: 0x38, scale: 1 }
 */
export function nvfp4BlockScale(amax: number, g: number): { code: number; scale: number } {
  const code = encode(E4M3, fr(fr(amax / 6) / g), { rounding: 'nearest-even', overflow: 'saturate' });
  return { code, scale: fr(E4M3_VALUES[code]! * g) };
}

/** An element's quotient x / scale as NVFP4 computes it: a float32 division; a zero scale gives signed zeros. */
export function nvfp4Quotient(x: number, scale: number): number {
  return scale === 0 ? x * 0 : fr(x / scale);
}

/**
 * Per block of 16 (the last may be shorter) the E4M3 scale code, and every element's E2M1 code; one pass
 * of the element codec over the whole array (stochastic modes: one stream seeded by `opts.seed`).
 */
function quantize(x: Float32Array, g: number, opts: Nvfp4Options): { scales: Uint8Array; codes: Uint8Array } {
  const n = x.length;
  const nb = Math.ceil(n / 16);
  const scales = new Uint8Array(nb);
  const scaled = new Float32Array(n);
  for (let b = 0; b < nb; b++) {
    const start = 16 * b;
    const end = Math.min(start + 16, n);
    let amax = 0;
    let special = false;
    for (let i = start; i < end; i++) {
      const a = Math.abs(x[i]!);
      if (!(a <= 3.4028234663852886e38)) special = true;
      else if (a > amax) amax = a;
    }
    if (special) {
      scales[b] = E4M3_NAN; // elements stay 0; the NaN scale makes the block NaN
      continue;
    }
    const { code, scale } = nvfp4BlockScale(amax, g);
    scales[b] = code;
    // the element quotient is a float32 division, as in GPU kernels; s = 0 leaves signed zeros
    for (let i = start; i < end; i++) scaled[i] = nvfp4Quotient(x[i]!, scale);
  }
  const codes = encodeArray(
    E2M1,
    scaled,
    { rounding: opts.rounding ?? 'nearest-even', overflow: 'saturate', seed: opts.seed ?? 0 },
    new Uint8Array(n),
  ) as Uint8Array;
  return { scales, codes };
}

/** Encodes `x` (length a positive multiple of 16). `nvfp4Encode(x).bytes.length === x.length / 16 * 9`. */
export function nvfp4Encode(x: Float32Array, opts: Nvfp4Options = {}): Nvfp4Encoded {
  if (x.length === 0 || x.length % 16 !== 0) {
    throw new MixqError(`cannot encode ${x.length} values`, {
      source: 'nvfp4',
      field: 'x.length',
      expected: 'a positive multiple of 16',
    });
  }
  const g = resolveTensorScale(x, opts);
  const { scales, codes } = quantize(x, g, opts);
  const bytes = new Uint8Array(scales.length * 9);
  for (let b = 0; b < scales.length; b++) {
    bytes[9 * b] = scales[b]!;
    for (let j = 0; j < 8; j++)
      bytes[9 * b + 1 + j] = codes[16 * b + 2 * j]! | (codes[16 * b + 2 * j + 1]! << 4);
  }
  return { bytes, tensorScale: g };
}

/** Decodes `n` values (a positive multiple of 16) from exactly n/16 blocks. */
export function nvfp4Decode(bytes: Uint8Array, n: number, tensorScale = 1): Float32Array {
  if (!Number.isInteger(n) || n <= 0 || n % 16 !== 0) {
    throw new MixqError(`cannot decode ${n} values`, {
      source: 'nvfp4',
      field: 'n',
      expected: 'a positive multiple of 16',
    });
  }
  if (bytes.length !== (n / 16) * 9) {
    throw new MixqError(`got ${bytes.length} bytes for ${n} values`, {
      source: 'nvfp4',
      field: 'bytes.length',
      expected: String((n / 16) * 9),
    });
  }
  const y = new Float32Array(n);
  for (let b = 0; b < n / 16; b++) {
    const s = fr(E4M3_VALUES[bytes[9 * b]!]! * tensorScale);
    for (let j = 0; j < 8; j++) {
      const v = bytes[9 * b + 1 + j]!;
      y[16 * b + 2 * j] = E2M1_VALUES[v & 0xf]! * s;
      y[16 * b + 2 * j + 1] = E2M1_VALUES[v >> 4]! * s;
    }
  }
  return y;
}

/** Quantize-dequantize for any length (a last partial block is its own block). */
export function nvfp4FakeQuant(x: Float32Array, opts: Nvfp4Options = {}): Float32Array {
  const g = resolveTensorScale(x, opts);
  const { scales, codes } = quantize(x, g, opts);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = E2M1_VALUES[codes[i]!]! * fr(E4M3_VALUES[scales[i >> 4]!]! * g);
  return y;
}

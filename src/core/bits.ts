/**
 * Bit-level views of IEEE-754 numbers, and the two 16-bit float conversions every other module needs
 * (ggml block scales, ONNX/safetensors fp16 tensors). Both conversions round to nearest, ties to even,
 * exactly as hardware and ggml's `GGML_FP32_TO_FP16` do.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bit pattern of a float32 (the value is first rounded to float32). `f32ToBits(1) === 0x3f800000`. */
export function f32ToBits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** Float32 with the given bit pattern. `bitsToF32(0x3f800000) === 1`. */
export function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/**
 * float32 -> IEEE binary16 bits, round-to-nearest-even; overflow to inf, NaN kept quiet (0x7e00 | sign).
 * Example: `f32ToF16Bits(65504) === 0x7bff`, `f32ToF16Bits(1e6) === 0x7c00`.
 */
export function f32ToF16Bits(x: number): number {
  const b = f32ToBits(x);
  const sign = (b >>> 16) & 0x8000;
  const abs = b & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  // fp16 max 65504; values at or above 65520 (half-way to 2^16) round to inf
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) {
    // result is an fp16 subnormal (or zero): value / 2^-24, rounded to nearest even integer.
    // abs < 2^-14; adding 0.5 (as float32) aligns the mantissa so the FPU rounds for us.
    f32[0] = bitsToF32(abs) + 0.5;
    return sign | ((u32[0]! - 0x3f000000) & 0xffff);
  }
  // normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even
  const odd = (abs >>> 13) & 1;
  return sign | (((abs + 0xc8000fff + odd) >>> 13) & 0xffff);
}

const f16Table = /* @__PURE__ */ buildF16Table();
function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = m * 2 ** -24;
    else if (e === 31) v = m === 0 ? Infinity : Number.NaN;
    else v = (1 + m / 1024) * 2 ** (e - 15);
    t[h] = s * v;
  }
  return t;
}

/** IEEE binary16 bits -> value (exact). `f16BitsToF32(0x3c00) === 1`. */
export function f16BitsToF32(h: number): number {
  return f16Table[h & 0xffff]!;
}

/** float32 -> bfloat16 bits, round-to-nearest-even, NaN kept quiet. `f32ToBf16Bits(1) === 0x3f80`. */
export function f32ToBf16Bits(x: number): number {
  const b = f32ToBits(x);
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits -> value (exact). */
export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

/** Round to float32 and back to a JS number, i.e. a float32 operation result. Alias of Math.fround. */
export const fround = Math.fround;

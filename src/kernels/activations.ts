/**
 * Activations of the int8 path: float32 vectors quantized in blocks of 32, as llama.cpp quantizes the
 * activations its integer dot products read (Q8_0), with a float32 block scale and the sum of every 16
 * codes (zero points, minima and offsets need them):
 *
 *   amax = max |x_i| over the block (NaN propagates), d = amax / 127, id = d != 0 ? 1 / d : 0,
 *   q_i = clamp(roundTiesToEven(x_i * id), -127, 127)          every step in float32
 *
 * Buffer of kp values (kp a multiple of 32) in kernel memory, native/kernels/common.h `actq`:
 *   qs int8[kp] | qs16 int16[kp] (the same, widened, for the SIMD128 dot) | d float32[kp/32] | s int32[kp/16] |
 *   aq int8[kp] (|q|) | sg int8[kp] (-1 where q < 0; signed weights take the sign, |q| is the 7-bit operand)
 * The quantization error is at most d/2 per value (|x - d q| <= 0.5001 d: id is 1/d rounded), which is what
 * the error budgets of the int8 path charge (budget.ts).
 */
import { f16BitsToF32, f32ToF16Bits } from '../core/bits.ts';

const fr = Math.fround;

/** Bytes of the int8 activation buffer of kp values. */
export function q8Bytes(kp: number): number {
  return 5 * kp + kp / 8 + kp / 4;
}

/** The int8 activations of one vector, as the references read them. */
export interface Q8Vector {
  readonly qs: Int8Array;
  /** One scale per 32 values. */
  readonly d: Float32Array;
  /** Sum of each 16 codes. */
  readonly s: Int32Array;
}

/** Round half to even (IEEE roundTiesToEven, wasm f32x4.nearest). */
export function roundTiesToEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The reference quantizer (the kernel act_q8 must match it bit for bit). `x.length` is a multiple of 32.
 * scale 'f16': each block scale then rounded to fp16 as llama.cpp stores it (block_q8_0.d; the codes are
 * the same): the 'q8' activations of ggml weights (kernel act_q8_ggml), which makes their products scale
 * exactly as llama.cpp's. |x - d q| <= 0.5001 d + 127 |d - fp16(d)| <= 0.5622 fp16(d) for normal scales.
 */
export function quantizeQ8Reference(x: Float32Array, scale: 'f32' | 'f16' = 'f32'): Q8Vector {
  const kp = x.length;
  const qs = new Int8Array(kp);
  const d = new Float32Array(kp / 32);
  const s = new Int32Array(kp / 16);
  for (let b = 0; b < kp / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[32 * b + j]!);
      amax = Number.isNaN(a) || Number.isNaN(amax) ? Number.NaN : Math.max(amax, a);
    }
    const db = fr(amax / 127);
    const id = db !== 0 ? fr(1 / db) : 0;
    d[b] = scale === 'f16' ? f16BitsToF32(f32ToF16Bits(db)) : db;
    for (let j = 0; j < 32; j++) {
      const v = fr(x[32 * b + j]! * id);
      const q = Number.isNaN(v) ? 0 : Math.max(-127, Math.min(127, roundTiesToEven(v)));
      qs[32 * b + j] = q;
      s[(32 * b + j) >> 4]! += q;
    }
  }
  return { qs, d, s };
}

/** Bytes of the 'q8k' activation buffer of kp values (the 'q8' buffer + block sums per 16 and per 32). */
export function q8kBytes(kp: number): number {
  return q8Bytes(kp) + kp / 8 + kp / 16;
}

/**
 * Q8_K activations (mode 'q8k', the K-quants' kernels), as ggml's quantize_row_q8_K_ref: per block of 256
 *
 *   amax = max |x_i| (NaN propagates), max = the first x_i with |x_i| = amax, iscale = -127 / max,
 *   q_i = clamp(roundTiesToEven(iscale * x_i), -127, 127) (NaN -> 0), d = 1 / iscale    every step float32
 *   amax = 0: d = 0, every q_i = 0.
 *
 * (ggml clamps at 127 only: iscale x_i never rounds below -127, so the clamp changes nothing.) Returned in
 * the shape of Q8Vector: d repeated for each 32 of the block (the kernel's buffer holds it that way), s
 * the sums of each 16 codes. `x.length` is a multiple of 256. |x - d q| <= 0.5001 |d|.
 */
export function quantizeQ8KReference(x: Float32Array): Q8Vector {
  const kp = x.length;
  const qs = new Int8Array(kp);
  const d = new Float32Array(kp / 32);
  const s = new Int32Array(kp / 16);
  for (let b = 0; b < kp / 256; b++) {
    const o = 256 * b;
    let amax = 0;
    for (let j = 0; j < 256; j++) {
      const a = Math.abs(x[o + j]!);
      amax = Number.isNaN(a) || Number.isNaN(amax) ? Number.NaN : Math.max(amax, a);
    }
    let iscale = 0;
    let db = 0;
    if (Number.isNaN(amax)) iscale = db = Number.NaN;
    else if (amax !== 0) {
      let mx = amax;
      for (let j = 0; j < 256; j++)
        if (Math.abs(x[o + j]!) === amax) {
          mx = x[o + j]!;
          break;
        }
      iscale = fr(-127 / mx);
      db = fr(1 / iscale);
    }
    d.fill(db, 8 * b, 8 * b + 8);
    for (let j = 0; j < 256; j++) {
      const v = fr(x[o + j]! * iscale);
      const q = Number.isNaN(v) ? 0 : Math.max(-127, Math.min(127, roundTiesToEven(v)));
      qs[o + j] = q;
      s[(o + j) >> 4]! += q;
    }
  }
  return { qs, d, s };
}

/** Reads an int8 activation buffer the kernel wrote (kp values at byte address p). */
export function readQ8(buffer: ArrayBufferLike, p: number, kp: number): Q8Vector {
  return {
    qs: new Int8Array(buffer, p, kp).slice(),
    d: new Float32Array(buffer, p + 3 * kp, kp / 32).slice(),
    s: new Int32Array(buffer, p + 3 * kp + kp / 8, kp / 16).slice(),
  };
}

/** Writes an int8 activation buffer (what act_q8 writes) at byte address p. */
export function writeQ8(buffer: ArrayBufferLike, p: number, a: Q8Vector): void {
  const kp = a.qs.length;
  new Int8Array(buffer, p, kp).set(a.qs);
  new Int16Array(buffer, p + kp, kp).set(a.qs);
  new Float32Array(buffer, p + 3 * kp, kp / 32).set(a.d);
  new Int32Array(buffer, p + 3 * kp + kp / 8, kp / 16).set(a.s);
  const t = p + 3 * kp + kp / 8 + kp / 4;
  new Int8Array(buffer, t, kp).set(a.qs.map((q) => Math.abs(q)));
  new Int8Array(buffer, t + kp, kp).set(a.qs.map((q) => (q < 0 ? -1 : 0)));
}

/** The values the int8 activations stand for: d * q, exactly (as float64). */
export function dequantizeQ8(a: Q8Vector): Float64Array {
  const out = new Float64Array(a.qs.length);
  for (let i = 0; i < out.length; i++) out[i] = a.d[i >> 5]! * a.qs[i]!;
  return out;
}

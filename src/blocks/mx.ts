/**
 * OCP Microscaling (MX) block formats, OCP MX Specification v1.0 (2023), sections 5 and 6.3:
 * 32 elements share one E8M0 scale X = 2^E; element i stores P_i ≈ V_i / X in a narrow format.
 *
 *   format       element (mixq/formats)   emax_elem  max |P|      bits/element incl. scale
 *   mxfp8_e4m3   fp8_e4m3fn  S.EEEE.MMM    8          448          8 + 8/32 = 8.25
 *   mxfp8_e5m2   fp8_e5m2    S.EEEEE.MM    15         57344        8.25
 *   mxfp6_e3m2   fp6_e3m2fn  S.EEE.MM      4          28           6.25
 *   mxfp6_e2m3   fp6_e2m3fn  S.EE.MMM      2          7.5          6.25
 *   mxfp4_e2m1   fp4_e2m1fn  S.EE.M        2          6            4.25
 *   mxint8       int8 (narrow) * 2^-6      0          127/64       8.25
 *
 * Byte layout (mixq's; the spec fixes no storage order), per block of 32:
 *   [0]      E8M0 scale code c: X = 2^(c-127), c = 0xFF is NaN
 *   [1, ..)  the 32 element codes packed LSB-first (mixq/formats packCodes: FP4 element 2i in the low
 *            nibble; FP6 codes straddle bytes, low bits first; 8-bit codes one per byte)
 *   -> 33 / 25 / 17 bytes per block for 8 / 6 / 4-bit elements.
 *
 * Scale rules (E = shared exponent, emax = emax_elem; E is clamped to [-127, 127]):
 *   'floor'  the spec: E = floor(log2(amax)) - emax. Elements can exceed max|P| and are clamped.
 *   'ceil'   E = ceil(log2(amax)) - emax (torchao CEIL): never clamps, loses up to one binade.
 *   'even'   round amax to the element's mantissa width first (half-up, torchao EVEN), then floor.
 *   'rceil'  E = ceil(log2(amax / max|P|)) with amax / max|P| in float32 (NVIDIA's MXFP8 recipe,
 *            torchao RCEIL): the smallest power of two that avoids clamping.
 * An all-zero block gets E = -127 (code 0). Elements: V_i / X rounded to nearest-even (or the rounding
 * given in the options) and saturated to ±max|P| (the spec's clamp).
 *
 * NaN/Inf: the spec lets X be NaN, in which case every element of the block is NaN (section 5.4), and
 * leaves the conversion of special inputs to implementations. mixq: a block containing any NaN or ±Inf
 * gets scale code 0xFF and element codes 0, so the whole block decodes to NaN (as microxcaling does when
 * the shared exponent is not finite). FP8 elements never carry NaN/Inf otherwise (they saturate).
 */
import { MixqError } from '../core/errors.ts';
import { bitsToF32, f32ToBits } from '../core/bits.ts';
import {
  encodeArray,
  type FormatSpec,
  formatBits,
  formatInfo,
  getFormat,
  intSpec,
  packCodes,
  type Rounding,
  unpackCodes,
  valueTable,
} from '../formats/index.ts';

export type MxFormatName =
  'mxfp8_e4m3' | 'mxfp8_e5m2' | 'mxfp6_e3m2' | 'mxfp6_e2m3' | 'mxfp4_e2m1' | 'mxint8';
export type MxScaleRule = 'floor' | 'ceil' | 'even' | 'rceil';

/** One MX block format. */
export interface MxFormat {
  readonly name: MxFormatName;
  /** The element format (codes of MXINT8's int8 mean code * 2^-6). */
  readonly element: FormatSpec;
  readonly elementBits: number;
  /** Stored mantissa bits of the element (MXINT8: 6 fraction bits); used by the 'even' rule. */
  readonly manBits: number;
  /** Value of element code 1 unit: 1 for floats, 2^-6 for MXINT8. */
  readonly elementUnit: number;
  /** OCP emax_elem: exponent of the element's largest normal binade. */
  readonly emaxElem: number;
  /** Largest element magnitude (the clamp), in value units. */
  readonly maxElement: number;
  readonly blockSize: 32;
  readonly bytesPerBlock: number;
  /** Element bits plus the 8-bit scale spread over the block: 4.25 for MXFP4. */
  readonly bitsPerElement: number;
}

function floatMx(name: MxFormatName, element: string): MxFormat {
  const spec = getFormat(element);
  if (spec.kind !== 'float') throw new Error(`mx: ${element} is not a float format`);
  const info = formatInfo(spec);
  const bits = formatBits(spec);
  return {
    name,
    element: spec,
    elementBits: bits,
    manBits: spec.manBits,
    elementUnit: 1,
    emaxElem: Math.floor(Math.log2(info.maxFinite)),
    maxElement: info.maxFinite,
    blockSize: 32,
    bytesPerBlock: 1 + (32 * bits) / 8,
    bitsPerElement: bits + 8 / 32,
  };
}

/** The MX formats, an explicit static table. */
export const MX_FORMATS: Readonly<Record<MxFormatName, MxFormat>> = {
  mxfp8_e4m3: floatMx('mxfp8_e4m3', 'fp8_e4m3fn'),
  mxfp8_e5m2: floatMx('mxfp8_e5m2', 'fp8_e5m2'),
  mxfp6_e3m2: floatMx('mxfp6_e3m2', 'fp6_e3m2fn'),
  mxfp6_e2m3: floatMx('mxfp6_e2m3', 'fp6_e2m3fn'),
  mxfp4_e2m1: floatMx('mxfp4_e2m1', 'fp4_e2m1fn'),
  // OCP 5.3.3: 8-bit two's complement with an implicit scale of 2^-6; clamped symmetrically to ±127
  mxint8: {
    name: 'mxint8',
    element: intSpec(8, true, true),
    elementBits: 8,
    manBits: 6,
    elementUnit: 2 ** -6,
    emaxElem: 0,
    maxElement: 127 / 64,
    blockSize: 32,
    bytesPerBlock: 33,
    bitsPerElement: 8.25,
  },
};

/** Options of the MX codecs. */
export interface MxOptions {
  /** How the shared exponent is chosen (default 'floor', the spec). */
  scaleRule?: MxScaleRule;
  /** Element rounding (default 'nearest-even', the spec); stochastic modes use `seed`. */
  rounding?: Rounding;
  seed?: number;
}

/** Format by name (also 'mxfp4', 'mxfp8', 'mxfp6' for the E2M1/E4M3/E3M2 variants). */
export function getMxFormat(name: string): MxFormat {
  const short: Record<string, MxFormatName> = {
    mxfp4: 'mxfp4_e2m1',
    mxfp8: 'mxfp8_e4m3',
    mxfp6: 'mxfp6_e3m2',
  };
  const key = short[name.toLowerCase()] ?? name.toLowerCase();
  const f = (MX_FORMATS as Readonly<Record<string, MxFormat>>)[key];
  if (!f) {
    throw new MixqError(`unknown MX format '${name}'`, {
      source: 'mx',
      field: 'format',
      expected: Object.keys(MX_FORMATS).join(', '),
    });
  }
  return f;
}

/** floor(log2(a)) for a finite float32 a > 0, exact (read from the bits; subnormals included). */
export function floorLog2F32(a: number): number {
  const b = f32ToBits(a) & 0x7fffffff;
  const e = b >>> 23;
  if (e !== 0) return e - 127;
  return -149 + (31 - Math.clz32(b));
}

function isPowerOfTwoF32(a: number): boolean {
  const b = f32ToBits(a) & 0x7fffffff;
  return b >>> 23 !== 0 ? (b & 0x7fffff) === 0 : (b & (b - 1)) === 0;
}

/**
 * The unclamped shared exponent of a block whose max |x| is `amax` (finite, > 0), per `rule`.
 * `mxSharedExponent(MX_FORMATS.mxfp4_e2m1, 6, 'floor') === 0`.
 */
export function mxSharedExponent(fmt: MxFormat, amax: number, rule: MxScaleRule): number {
  switch (rule) {
    case 'floor':
      return floorLog2F32(amax) - fmt.emaxElem;
    case 'ceil':
      return floorLog2F32(amax) + (isPowerOfTwoF32(amax) ? 0 : 1) - fmt.emaxElem;
    case 'even': {
      // add half an element ulp to the float32 bits (carrying into the exponent), then take the exponent
      const b = (f32ToBits(amax) & 0x7fffffff) + (1 << (23 - fmt.manBits - 1));
      return floorLog2F32(bitsToF32(b)) - fmt.emaxElem;
    }
    case 'rceil': {
      const q = Math.fround(amax / fmt.maxElement);
      if (q === 0) return -127;
      return floorLog2F32(q) + (isPowerOfTwoF32(q) ? 0 : 1);
    }
  }
}

/**
 * A block's E8M0 scale code and the scale its elements are divided by (2^E times MXINT8's unit), from
 * its max |x| (finite, >= 0): E = the rule's shared exponent clamped to [-127, 127]; an all-zero block
 * gets E = -127 (code 0).
 * @example mxBlockScale(MX_FORMATS.mxfp4_e2m1, 6, 'floor') // { code: 127, scale: 1 }
 */
export function mxBlockScale(
  fmt: MxFormat,
  amax: number,
  rule: MxScaleRule = 'floor',
): { code: number; scale: number } {
  const e = Math.max(-127, Math.min(127, amax === 0 ? -127 : mxSharedExponent(fmt, amax, rule)));
  return { code: e + 127, scale: 2 ** e * fmt.elementUnit };
}

function checkEncode(fmt: MxFormat, x: Float32Array): void {
  if (x.length === 0 || x.length % 32 !== 0) {
    throw new MixqError(`cannot encode ${x.length} values`, {
      source: fmt.name,
      field: 'x.length',
      expected: 'a positive multiple of 32',
    });
  }
}

/**
 * The quantization step shared by the encoders: per block of 32 (the last one may be shorter) the scale
 * code, and for every element its code in the element format. One pass of the element codec over the
 * whole scaled array (stochastic modes draw from one stream seeded by `opts.seed`).
 */
function quantize(
  fmt: MxFormat,
  x: Float32Array,
  opts: MxOptions,
): { scales: Uint8Array; codes: Uint8Array } {
  const rule = opts.scaleRule ?? 'floor';
  const n = x.length;
  const nb = Math.ceil(n / 32);
  const scales = new Uint8Array(nb);
  const scaled = new Float32Array(n);
  for (let b = 0; b < nb; b++) {
    const start = 32 * b;
    const end = Math.min(start + 32, n);
    let amax = 0;
    let special = false;
    for (let i = start; i < end; i++) {
      const a = Math.abs(x[i]!);
      if (!(a <= 3.4028234663852886e38))
        special = true; // NaN or inf
      else if (a > amax) amax = a;
    }
    if (special) {
      scales[b] = 0xff; // elements stay 0: the NaN scale alone makes the block NaN
      continue;
    }
    const { code, scale } = mxBlockScale(fmt, amax, rule);
    scales[b] = code;
    // V / X is a power-of-two scaling, exact; MXINT8 codes count units of 2^-6
    const inv = 1 / scale;
    for (let i = start; i < end; i++) scaled[i] = x[i]! * inv;
  }
  const codes = encodeArray(
    fmt.element,
    scaled,
    { rounding: opts.rounding ?? 'nearest-even', overflow: 'saturate', seed: opts.seed ?? 0 },
    new Uint8Array(n),
  ) as Uint8Array;
  return { scales, codes };
}

/**
 * Encodes `x` (length a positive multiple of 32) into MX blocks: per block the scale byte, then the
 * packed element codes. `mxEncode('mxfp4_e2m1', x).length === (x.length / 32) * 17`.
 */
export function mxEncode(format: MxFormatName | MxFormat, x: Float32Array, opts: MxOptions = {}): Uint8Array {
  const fmt = typeof format === 'string' ? getMxFormat(format) : format;
  checkEncode(fmt, x);
  const { scales, codes } = quantize(fmt, x, opts);
  const per = fmt.bytesPerBlock;
  const out = new Uint8Array(scales.length * per);
  for (let b = 0; b < scales.length; b++) {
    out[b * per] = scales[b]!;
    packCodes(codes.subarray(32 * b, 32 * b + 32), fmt.elementBits, out.subarray(b * per + 1, (b + 1) * per));
  }
  return out;
}

/** Value of scale code c (2^(c-127); NaN for 0xFF). */
export function e8m0Value(c: number): number {
  return c === 0xff ? Number.NaN : 2 ** (c - 127);
}

/** Decodes `n` values (a positive multiple of 32) from exactly n/32 MX blocks. */
export function mxDecode(format: MxFormatName | MxFormat, bytes: Uint8Array, n: number): Float32Array {
  const fmt = typeof format === 'string' ? getMxFormat(format) : format;
  if (!Number.isInteger(n) || n <= 0 || n % 32 !== 0) {
    throw new MixqError(`cannot decode ${n} values`, {
      source: fmt.name,
      field: 'n',
      expected: 'a positive multiple of 32',
    });
  }
  const per = fmt.bytesPerBlock;
  const want = (n / 32) * per;
  if (bytes.length !== want) {
    throw new MixqError(`got ${bytes.length} bytes for ${n} values`, {
      source: fmt.name,
      field: 'bytes.length',
      expected: String(want),
    });
  }
  const table = valueTable(fmt.element);
  const y = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * per;
    const X = e8m0Value(bytes[o]!) * fmt.elementUnit;
    const k = 32 * b;
    if (fmt.elementBits === 8) {
      for (let i = 0; i < 32; i++) y[k + i] = table[bytes[o + 1 + i]!]! * X;
    } else if (fmt.elementBits === 4) {
      for (let j = 0; j < 16; j++) {
        const v = bytes[o + 1 + j]!;
        y[k + 2 * j] = table[v & 0xf]! * X;
        y[k + 2 * j + 1] = table[v >> 4]! * X;
      }
    } else {
      const codes = unpackCodes(bytes.subarray(o + 1, o + per), fmt.elementBits, 32);
      for (let i = 0; i < 32; i++) y[k + i] = table[codes[i]!]! * X;
    }
  }
  return y;
}

/**
 * Quantize-dequantize: the values `x` takes after an MX round trip, for any length (a last partial
 * block is its own block). `mxFakeQuant('mxfp4_e2m1', Float32Array.of(1, 5))` -> [1, 4].
 */
export function mxFakeQuant(
  format: MxFormatName | MxFormat,
  x: Float32Array,
  opts: MxOptions = {},
): Float32Array {
  const fmt = typeof format === 'string' ? getMxFormat(format) : format;
  const { scales, codes } = quantize(fmt, x, opts);
  const table = valueTable(fmt.element);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++)
    y[i] = table[codes[i]!]! * (e8m0Value(scales[i >> 5]!) * fmt.elementUnit);
  return y;
}

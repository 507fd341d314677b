/**
 * The public codec: encode/decode one value or an array, chop (round to representable values, return
 * floats), value tables and format limits. Dispatches on the spec's kind to minifloat.ts / int.ts / lut.ts;
 * `chop` and `encodeArray` take the fast float path (chop-plan.ts, chop-fast.ts: WebAssembly SIMD or
 * TypeScript) whenever the format and mode have a plan, else the reference. Float64 data (a Float64Array
 * or a number) rounds once, in round64.ts, for formats up to e11m52.
 */
import { MixqError } from '../core/errors.ts';
import { chopFloatFast, codesOfRepresentable } from './chop-fast.ts';
import { type ChopPlan, chopPlan } from './chop-plan.ts';
import { chopIntNearestEven, decodeInt, encodeIntNearestEven, encodeIntWith, intLayout } from './int.ts';
import { decodeLut, encodeLutWith, lutLayout } from './lut.ts';
import { decodeFloat, encodeFloatWith, floatLayout, floatLayout64 } from './minifloat.ts';
import { chop64, chopNumber, decodeFloat64, encodeFloat64, encodeFloat64Array } from './round64.ts';
import { type ResolvedCast, resolveRounding } from './rounding.ts';
import type { CastOptions, FloatSpec, FormatSpec, LutSpec, OverflowPolicy } from './spec.ts';

/** Storage width in bits of one code. */
export function formatBits(spec: FormatSpec): number {
  return spec.kind === 'float' ? floatLayout64(spec).bits : spec.bits;
}

/** A scalar encoder bound to a spec and options: (value, random draw) -> code. */
type Encoder = (x: number, u32: number) => number;

function encoderFor(spec: FormatSpec, r: ResolvedCast, opts: CastOptions | undefined): Encoder {
  const { rounding, randomBits } = r;
  if (spec.kind === 'float') {
    const L = floatLayout(spec);
    const policy: OverflowPolicy = opts?.overflow ?? spec.overflow;
    const flush = opts?.flushSubnormals ?? false;
    return (x, u) => encodeFloatWith(L, x, rounding, u, randomBits, policy, flush);
  }
  if (spec.kind === 'int') {
    const L = intLayout(spec);
    return (x, u) => encodeIntWith(L, x, rounding, u, randomBits);
  }
  const L = lutLayout(spec);
  return (x, u) => encodeLutWith(L, x, rounding, u, randomBits);
}

function decoderFor(spec: FormatSpec): (code: number) => number {
  if (spec.kind === 'float') {
    const L = floatLayout(spec);
    return (c) => decodeFloat(L, c);
  }
  if (spec.kind === 'int') {
    const L = intLayout(spec);
    return (c) => decodeInt(L, c);
  }
  const L = lutLayout(spec);
  return (c) => decodeLut(L, c);
}

/**
 * The code of x in `spec` (default rounding nearest-even, the format's default overflow policy). x is a
 * double and is rounded once; float formats of up to 53 bits (wider ones: encodeBig).
 * Stochastic modes draw one 32-bit number from `opts.rng`, or from a fresh `Rng(opts.seed ?? 0)`.
 * `encode(getFormat('fp8_e4m3fn'), 448) === 0x7e`.
 */
export function encode(spec: FormatSpec, x: number, opts?: CastOptions): number {
  if (spec.kind === 'float') return encodeFloat64(spec, x, opts);
  const r = resolveRounding(opts);
  return encoderFor(spec, r, opts)(x, r.rng ? r.rng.nextU32() : 0);
}

/**
 * `encode` bound to a spec and options for many values: validated once, one generator for the stochastic
 * modes (one 32-bit draw per call, in call order).
 * @example const enc = encoderOf(getFormat('fp4_e2m1fn'), { overflow: 'saturate' }); enc(5) // 6 (code 6 = 4)
 */
export function encoderOf(spec: FormatSpec, opts?: CastOptions): (x: number) => number {
  const r = resolveRounding(opts);
  const enc = encoderFor(spec, r, opts);
  const rng = r.rng;
  return rng ? (x) => enc(x, rng.nextU32()) : (x) => enc(x, 0);
}

/** The value of a code (NaN for NaN codes). `decode(getFormat('fp4_e2m1fn'), 7) === 6`. */
export function decode(spec: FormatSpec, code: number): number {
  const bits = formatBits(spec);
  if (!Number.isInteger(code) || code < 0 || code >= 2 ** bits)
    throw new MixqError(`code ${code} out of range`, {
      source: `format ${spec.name}`,
      field: 'code',
      expected: `an integer 0..${2 ** bits - 1}`,
    });
  return spec.kind === 'float' ? decodeFloat64(spec, code) : decoderFor(spec)(code);
}

/** Smallest unsigned typed array that holds codes of `bits` bits. */
export type CodeArray = Uint8Array | Uint16Array | Uint32Array;

function codeArrayFor(bits: number, n: number): CodeArray {
  return bits <= 8 ? new Uint8Array(n) : bits <= 16 ? new Uint16Array(n) : new Uint32Array(n);
}

function checkLength(what: string, got: number, want: number): void {
  if (got < want)
    throw new MixqError(`output holds ${got} elements`, {
      source: what,
      field: 'out',
      expected: `>= ${want}`,
    });
}

/**
 * Codes of every element (one random draw per element, in order, for stochastic modes). Float64 data rounds
 * once (formats of <= 32 bits). `out` defaults to a Uint8Array for formats of <= 8 bits, Uint16Array for
 * <= 16, else Uint32Array.
 */
export function encodeArray(
  spec: FormatSpec,
  src: Float32Array | Float64Array,
  opts?: CastOptions,
  out?: CodeArray,
): CodeArray {
  const bits = formatBits(spec);
  if (bits > 32)
    throw new MixqError(`codes of ${spec.name} have ${bits} bits`, {
      source: 'encodeArray',
      expected: 'a format of <= 32 bits (encodeBig for wider codes)',
    });
  const dst = out ?? codeArrayFor(bits, src.length);
  checkLength('encodeArray', dst.length, src.length);
  if (src instanceof Float64Array && spec.kind === 'float') {
    encodeFloat64Array(spec, src, opts, dst);
    return dst;
  }
  const r = resolveRounding(opts);
  if (spec.kind === 'float' && src instanceof Float32Array) {
    const plan = floatPlan(spec, r, opts);
    if (plan) {
      // round with chop's fast path (same random draws), then read the codes off the bits
      const L = floatLayout(spec);
      const policy = opts?.overflow ?? spec.overflow;
      const flush = opts?.flushSubnormals ?? false;
      const rounded = new Float32Array(src.length);
      chopFloatFast(plan, src, rounded, r.rng);
      codesOfRepresentable(L, rounded, dst, (y) =>
        encodeFloatWith(L, y, 'nearest-even', 0, 0, policy, flush),
      );
      return dst;
    }
  }
  if (spec.kind === 'int' && r.rounding === 'nearest-even' && src instanceof Float32Array) {
    encodeIntNearestEven(intLayout(spec), src, dst);
    return dst;
  }
  const enc = encoderFor(spec, r, opts);
  const rng = r.rng;
  for (let i = 0; i < src.length; i++) dst[i] = enc(src[i]!, rng ? rng.nextU32() : 0);
  return dst;
}

/** Values of codes. Uses the value table for formats of <= 16 bits. */
export function decodeArray(spec: FormatSpec, codes: ArrayLike<number>, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(codes.length);
  checkLength('decodeArray', dst.length, codes.length);
  const bits = formatBits(spec);
  if (bits <= 16) {
    const t = valueTable(spec);
    const mask = 2 ** bits - 1;
    for (let i = 0; i < codes.length; i++) dst[i] = t[codes[i]! & mask]!;
  } else {
    const dec = decoderFor(spec);
    for (let i = 0; i < codes.length; i++) dst[i] = dec(codes[i]! >>> 0);
  }
  return dst;
}

/** The output of a chop: `out` (which must have src's length; may be src) or a new array. */
function chopOutput(src: Float32Array, out: Float32Array | undefined): Float32Array {
  const dst = out ?? new Float32Array(src.length);
  checkLength('chop', dst.length, src.length);
  return dst;
}

/** The fast-path plan of a float cast (chop-plan.ts), or undefined where only the reference applies. */
function floatPlan(spec: FloatSpec, r: ResolvedCast, opts: CastOptions | undefined): ChopPlan | undefined {
  const policy = opts?.overflow ?? spec.overflow;
  return chopPlan(floatLayout(spec), r.rounding, r.randomBits, policy, opts?.flushSubnormals ?? false);
}

/**
 * Reference chop: decode(encode(x)) element by element. Same results (and the same random draws) as
 * `chop`, which is tested against it; kept public for tests and benchmarks.
 */
export function chopReference(
  spec: FormatSpec,
  src: Float32Array,
  opts?: CastOptions,
  out?: Float32Array,
): Float32Array {
  const dst = chopOutput(src, out);
  const r = resolveRounding(opts);
  const enc = encoderFor(spec, r, opts);
  const dec = decoderFor(spec);
  const rng = r.rng;
  for (let i = 0; i < src.length; i++) dst[i] = dec(enc(src[i]!, rng ? rng.nextU32() : 0));
  return dst;
}

/**
 * Rounds every element to a representable value of `spec` (Pychop's `chop`): float32 data to float32
 * values, float64 data (a Float64Array, or one number) to doubles, each rounded exactly once (round64.ts;
 * formats wider than float32 such as e11m52 take float64 data only). `out` may be `src` (in place).
 * Stochastic modes draw one 32-bit number per element, in order.
 * `chop(getFormat('bf16'), Float32Array.of(1.00390625))` -> [1] (tie to even);
 * `chop(getFormat('fp16'), 1.0004882812509095) === 1.0009765625`.
 */
export function chop(
  spec: FormatSpec,
  src: Float32Array,
  opts?: CastOptions,
  out?: Float32Array,
): Float32Array;
export function chop(
  spec: FormatSpec,
  src: Float64Array,
  opts?: CastOptions,
  out?: Float64Array,
): Float64Array;
export function chop(spec: FormatSpec, x: number, opts?: CastOptions): number;
export function chop(
  spec: FormatSpec,
  input: Float32Array | Float64Array | number,
  opts?: CastOptions,
  out?: Float32Array | Float64Array,
): Float32Array | Float64Array | number {
  if (typeof input === 'number') return chopNumber(spec, input, opts);
  if (input instanceof Float64Array) return chop64(spec, input, opts, out as Float64Array | undefined);
  const src = input;
  const dst = chopOutput(src, out as Float32Array | undefined);
  if (spec.kind === 'float') {
    const r = resolveRounding(opts);
    const plan = floatPlan(spec, r, opts);
    if (plan) {
      chopFloatFast(plan, src, dst, r.rng);
      return dst;
    }
  }
  if (spec.kind === 'int' && (opts?.rounding ?? 'nearest-even') === 'nearest-even') {
    chopIntNearestEven(intLayout(spec), src, dst);
    return dst;
  }
  return chopReference(spec, src, opts, dst);
}

const tables = new WeakMap<FormatSpec, Float32Array>();

/**
 * Every value of a format of <= 16 bits, indexed by code (NaN at NaN codes and unused codebook codes).
 * The array is shared: do not modify it. `valueTable(getFormat('fp4_e2m1fn'))[3] === 1.5`.
 */
export function valueTable(spec: FormatSpec): Float32Array {
  const hit = tables.get(spec);
  if (hit) return hit;
  const bits = formatBits(spec);
  if (bits > 16)
    throw new MixqError(`a value table of ${bits}-bit codes is too large`, {
      source: `format ${spec.name}`,
      expected: 'a format of <= 16 bits',
    });
  const dec = decoderFor(spec);
  const t = new Float32Array(2 ** bits);
  for (let c = 0; c < t.length; c++) t[c] = dec(c);
  tables.set(spec, t);
  return t;
}

/** Limits of a format. For integers the unit is 1; for codebooks see `formatInfo`. */
export interface FormatInfo {
  readonly bits: number;
  /** Largest finite value. */
  readonly maxFinite: number;
  /** Smallest finite value (most negative; 0 or the smallest positive value for unsigned formats). */
  readonly lowest: number;
  /** Smallest positive normal value (floats); 1 for integers; smallest positive entry for codebooks. */
  readonly minNormal: number;
  /** Smallest positive value (= minNormal for formats without subnormals). */
  readonly minSubnormal: number;
  /** Gap between 1 and the next larger value (floats: 2^-M); 1 for integers; smallest gap for codebooks. */
  readonly epsilon: number;
  readonly hasInf: boolean;
  readonly hasNan: boolean;
  readonly signed: boolean;
  /** Every value is a float32, so the float32 APIs (chop of a Float32Array, value tables) take the format. */
  readonly float32: boolean;
}

/** `formatInfo(getFormat('fp8_e4m3fn')).maxFinite === 448`. */
export function formatInfo(spec: FormatSpec): FormatInfo {
  if (spec.kind === 'float') {
    const L = floatLayout64(spec);
    return {
      bits: L.bits,
      maxFinite: L.maxFinite,
      lowest: L.signed ? -L.maxFinite : L.hasZero ? 0 : L.minNormal,
      minNormal: L.minNormal,
      minSubnormal: L.minSubnormal,
      epsilon: 2 ** -L.M,
      hasInf: spec.inf,
      hasNan: L.nanCode >= 0,
      signed: L.signed,
      float32: L.float32,
    };
  }
  if (spec.kind === 'int') {
    const L = intLayout(spec);
    return {
      bits: L.bits,
      maxFinite: L.max,
      lowest: L.min,
      minNormal: 1,
      minSubnormal: 1,
      epsilon: 1,
      hasInf: false,
      hasNan: false,
      signed: spec.signed,
      float32: true,
    };
  }
  const L = lutLayout(spec);
  const s = L.sorted;
  let minPos = Infinity;
  let gap = Infinity;
  for (let i = 0; i < s.length; i++) {
    if (s[i]! > 0 && s[i]! < minPos) minPos = s[i]!;
    if (i > 0) gap = Math.min(gap, s[i]! - s[i - 1]!);
  }
  return {
    bits: spec.bits,
    maxFinite: s[s.length - 1]!,
    lowest: s[0]!,
    minNormal: minPos,
    minSubnormal: minPos,
    epsilon: gap,
    hasInf: false,
    hasNan: false,
    signed: s[0]! < 0,
    float32: true,
  };
}

/**
 * A user codebook format: code i means values[i] (float32 values, any order, at most 2^bits of them;
 * bits defaults to the fewest that hold them). `lutSpec('my3', [-1, -0.25, 0, 0.5, 1])`.
 */
export function lutSpec(name: string, values: readonly number[], bits?: number): LutSpec {
  const b = bits ?? Math.max(1, Math.ceil(Math.log2(Math.max(values.length, 2))));
  const spec: LutSpec = { kind: 'lut', name, bits: b, values: [...values], description: 'user codebook' };
  lutLayout(spec); // validate now
  return spec;
}

/**
 * Dynamic fixed point (DFP), the shared-exponent integer format of Das et al., "Mixed Precision Training of
 * Convolutional Neural Networks using Integer Operations" (ICLR 2018), and its int16 FMA.
 *
 * A DFP-b tensor is b-bit two's-complement integers I_i with ONE shared power-of-two exponent E:
 * x_i ~ I_i * 2^E. E is the smallest exponent with max|x| / 2^E <= 2^(b-1) - 1 (the largest magnitude uses
 * the whole integer range; the symmetric range [-(2^(b-1)-1), 2^(b-1)-1] keeps negation exact).
 *
 * The FMA: products I_a * I_b of two DFP-16 tensors are exact 31-bit integers and are summed in an int32
 * accumulator (exponent E_a + E_b). Sums of such products overflow int32 after a few terms in the worst
 * case, so, as in the paper's kernels, the accumulation is split into chunks: each chunk of `chunk`
 * products is summed in int32 (saturating, or wrapping like the bare instruction), converted to fp32
 * (rounded to nearest even) and scaled by 2^(E_a + E_b), and the chunk sums are added in fp32. Saturation
 * events are counted, so a study can see the overflow the chunk size lets through. The output is an fp32
 * array, or a DFP tensor again (`dfpQuantize` of it) for the next layer.
 */
import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { getFormat, intSpec, type Rounding } from '../formats/index.ts';
import { decodeInt, encodeIntWith, intLayout } from '../formats/int.ts';
import { addT } from './target-ops.ts';
import { Target } from './target.ts';

/** A DFP tensor: integers with one shared power-of-two exponent. */
export interface DfpTensor {
  readonly mantissas: Int32Array;
  readonly exponent: number;
  readonly bits: number;
}

export interface DfpOptions {
  /** Integer width b (default 16). */
  bits?: number;
  /** Rounding of x / 2^E to an integer (default nearest-even). */
  rounding?: Rounding;
  seed?: number;
}

/** x as a DFP tensor (see the header). All-zero input gets exponent 0. */
export function dfpQuantize(x: ArrayLike<number>, opts: DfpOptions = {}): DfpTensor {
  const bits = opts.bits ?? 16;
  if (!Number.isInteger(bits) || bits < 2 || bits > 16)
    throw new MixqError(`DFP width ${bits}`, { source: 'dfpQuantize', field: 'bits', expected: '2..16' });
  let amax = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    if (!Number.isFinite(a))
      throw new MixqError(`element ${i} is ${x[i]}`, { source: 'dfpQuantize', expected: 'finite values' });
    if (a > amax) amax = a;
  }
  const top = 2 ** (bits - 1) - 1;
  let e = 0;
  if (amax > 0) {
    e = Math.ceil(Math.log2(amax / top));
    while (amax / 2 ** e > top) e++; // log2 may be off by one ulp
    while (e > -1074 && amax / 2 ** (e - 1) <= top) e--;
  }
  const L = intLayout(intSpec(bits, true, true));
  const rounding = opts.rounding ?? 'nearest-even';
  const rng = new Rng(opts.seed ?? 0);
  const stochastic = rounding === 'stochastic' || rounding === 'stochastic-equal';
  const scale = 2 ** -e;
  const m = new Int32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    m[i] = decodeInt(L, encodeIntWith(L, x[i]! * scale, rounding, stochastic ? rng.nextU32() : 0, 0));
  }
  return { mantissas: m, exponent: e, bits };
}

/** The values I_i * 2^E. */
export function dfpDequantize(t: DfpTensor): Float64Array {
  const s = 2 ** t.exponent;
  return Float64Array.from(t.mantissas, (v) => v * s);
}

export interface DfpFmaOptions {
  /** Products summed in int32 before each conversion to fp32 (default 64). */
  chunk?: number;
  /** int32 overflow: 'saturate' (default) or 'wrap' (two's complement, as the bare instruction). */
  overflow?: 'saturate' | 'wrap';
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const FP32 = new Target(getFormat('fp32'));

/** The int16 FMA chain of a dot product: result in fp32, and the number of int32 overflows. */
function dfpDotRaw(
  a: Int32Array,
  ao: number,
  as: number,
  b: Int32Array,
  bo: number,
  bs: number,
  n: number,
  scale: number,
  chunk: number,
  wrap: boolean,
): { value: number; overflows: number } {
  let total = 0;
  let overflows = 0;
  for (let c = 0; c < n; c += chunk) {
    let acc = 0;
    for (let i = c; i < Math.min(n, c + chunk); i++) {
      const s = acc + a[ao + i * as]! * b[bo + i * bs]!;
      if (s < INT32_MIN || s > INT32_MAX) {
        overflows++;
        acc = wrap ? s - 2 ** 32 * Math.floor((s + 2 ** 31) / 2 ** 32) : s < 0 ? INT32_MIN : INT32_MAX;
      } else acc = s;
    }
    // int32 -> fp32 (nearest even), scaled by 2^(Ea+Eb) (exact unless it leaves fp32's range), fp32 add
    const part = FP32.value(FP32.value(acc, 0) * scale, 0);
    total = addT(FP32, total, part, 0);
  }
  return { value: total, overflows };
}

function chunkOf(opts: DfpFmaOptions): number {
  const chunk = opts.chunk ?? 64;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new MixqError(`chunk ${chunk}`, { source: 'dfp', field: 'chunk', expected: 'an integer >= 1' });
  return chunk;
}

/** Dot product of two DFP tensors by the chunked int16 FMA (see the header). */
export function dfpDot(
  a: DfpTensor,
  b: DfpTensor,
  opts: DfpFmaOptions = {},
): { value: number; overflows: number } {
  if (a.mantissas.length !== b.mantissas.length)
    throw new MixqError('operand lengths differ', { source: 'dfpDot', expected: 'equal lengths' });
  const scale = 2 ** (a.exponent + b.exponent);
  return dfpDotRaw(
    a.mantissas,
    0,
    1,
    b.mantissas,
    0,
    1,
    a.mantissas.length,
    scale,
    chunkOf(opts),
    opts.overflow === 'wrap',
  );
}

/** C = A B (row-major, A m x k, B k x n) by the chunked int16 FMA: fp32 values and the overflow count. */
export function dfpMatmul(
  A: DfpTensor,
  B: DfpTensor,
  m: number,
  k: number,
  n: number,
  opts: DfpFmaOptions = {},
): { values: Float64Array; overflows: number } {
  if (A.mantissas.length !== m * k || B.mantissas.length !== k * n)
    throw new MixqError(`shapes ${A.mantissas.length}, ${B.mantissas.length}`, {
      source: 'dfpMatmul',
      expected: `${m * k} and ${k * n} elements`,
    });
  const chunk = chunkOf(opts);
  const scale = 2 ** (A.exponent + B.exponent);
  const values = new Float64Array(m * n);
  let overflows = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const r = dfpDotRaw(
        A.mantissas,
        i * k,
        1,
        B.mantissas,
        j,
        n,
        k,
        scale,
        chunk,
        opts.overflow === 'wrap',
      );
      values[i * n + j] = r.value;
      overflows += r.overflows;
    }
  }
  return { values, overflows };
}

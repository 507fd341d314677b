/**
 * LLM-FP4's format search (Liu et al., "LLM-FP4: 4-Bit Floating-Point Quantized Transformers", 2023):
 * for a given bit width, try every exponent/mantissa split (E1M2, E2M1, E3M0 for 4 bits) with the
 * maximum-value search of the scale (scale rule 'float-max', which is the exponent-bias search when
 * restricted to powers of two), and keep the format with the smallest (weighted) squared error.
 */
import { MixqError } from '../core/errors.ts';
import type { FloatSpec, FormatSpec } from '../formats/spec.ts';
import { type ChooseOptions, type QuantizerConfig, chooseQParams } from './qparams.ts';
import { fakeQuantWith } from './quantizer.ts';

/**
 * Signed minifloat records of `bits` total bits for every split E + M = bits - 1 with E >= 1: IEEE-style
 * bias 2^(E-1) - 1, subnormals, no inf/NaN (all codes are finite, as in the MX element formats).
 */
export function minifloatCandidates(bits: number): FloatSpec[] {
  if (!(Number.isInteger(bits) && bits >= 3 && bits <= 16))
    throw new MixqError('bit width out of range', { field: 'bits', expected: '3..16' });
  const out: FloatSpec[] = [];
  for (let e = 1; e <= bits - 1; e++) {
    const m = bits - 1 - e;
    out.push({
      kind: 'float',
      name: `e${e}m${m}`,
      expBits: e,
      manBits: m,
      bias: 2 ** (e - 1) - 1,
      signed: true,
      subnormals: true,
      inf: false,
      nan: 'none',
      overflow: 'saturate',
    });
  }
  return out;
}

export interface FormatSearchResult {
  readonly element: FormatSpec;
  /** Squared error (weighted if weights were given) of every candidate, in candidate order. */
  readonly errors: readonly { readonly name: string; readonly error: number }[];
}

/** Picks the element format with the smallest error for x under the rest of `base` (granularity etc.). */
export function searchElementFormat(
  x: Float32Array,
  shape: readonly number[],
  base: Omit<QuantizerConfig, 'element'>,
  candidates: readonly FormatSpec[],
  opts: ChooseOptions = {},
): FormatSearchResult {
  if (candidates.length === 0)
    throw new MixqError('no candidate formats', { field: 'candidates', expected: '>= 1' });
  const errors: { name: string; error: number }[] = [];
  let best = candidates[0]!;
  let bestErr = Infinity;
  for (const element of candidates) {
    const cfg: QuantizerConfig = { ...base, element };
    const y = fakeQuantWith(x, chooseQParams(x, shape, cfg, opts));
    let e = 0;
    for (let i = 0; i < x.length; i++) e += (opts.weights ? opts.weights[i]! : 1) * (x[i]! - y[i]!) ** 2;
    errors.push({ name: element.name, error: e });
    if (e < bestErr) {
      bestErr = e;
      best = element;
    }
  }
  return { element: best, errors };
}

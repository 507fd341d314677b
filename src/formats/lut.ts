/**
 * Codebook (lookup-table) element formats: code i means values[i] (NF4, binary, user codebooks).
 *
 * Casting picks a neighbour in the sorted codebook; values outside [min, max] saturate; NaN encodes like 0.
 * Ties (a value exactly half-way between two codebook entries):
 * - `nearest-even`: the entry with the even code (the analogue of ties-to-even for a table); if both codes
 *   have the same parity, the entry of smaller magnitude (the lower one on equal magnitudes);
 * - `nearest-away`: the entry with the larger magnitude, and the positive one if magnitudes are equal.
 * Directed and stochastic modes use the two bracketing entries (P(upper) = distance from lower / gap);
 * `toward-zero` takes the entry nearer zero, or the one with x's sign when the pair straddles zero.
 * `nearest-odd` takes the entry with the odd code, and rounds toward zero when both codes have the same parity.
 */
import { MixqError } from '../core/errors.ts';
import { roundsUp } from './rounding.ts';
import type { LutSpec, Rounding } from './spec.ts';

export interface LutLayout {
  readonly spec: LutSpec;
  /** Codebook values sorted ascending (duplicates removed, first code kept). */
  readonly sorted: Float64Array;
  /** Code of each sorted value. */
  readonly codeOf: Uint32Array;
}

const layouts = new WeakMap<LutSpec, LutLayout>();

export function lutLayout(spec: LutSpec): LutLayout {
  const cached = layouts.get(spec);
  if (cached) return cached;
  const source = `format ${spec.name}`;
  const n = spec.values.length;
  if (!Number.isInteger(spec.bits) || spec.bits < 1 || spec.bits > 16)
    throw new MixqError(`codebook width ${spec.bits}`, { source, field: 'bits', expected: '1..16' });
  if (n < 1 || n > 2 ** spec.bits)
    throw new MixqError(`${n} codebook values`, {
      source,
      field: 'values',
      expected: `1..${2 ** spec.bits}`,
    });
  spec.values.forEach((v, i) => {
    if (!Number.isFinite(v) || Math.fround(v) !== v)
      throw new MixqError(`value ${v} is not a finite float32`, { source, field: `values[${i}]` });
  });
  const order = [...spec.values.keys()].sort((i, j) => spec.values[i]! - spec.values[j]! || i - j);
  const kept = order.filter((c, k) => k === 0 || spec.values[c] !== spec.values[order[k - 1]!]);
  const L: LutLayout = {
    spec,
    sorted: Float64Array.from(kept, (c) => spec.values[c]!),
    codeOf: Uint32Array.from(kept),
  };
  layouts.set(spec, L);
  return L;
}

export function decodeLut(L: LutLayout, code: number): number {
  return L.spec.values[code] ?? Number.NaN;
}

/** Reference cast of one number to a code. */
export function encodeLutWith(
  L: LutLayout,
  x: number,
  mode: Rounding,
  u32: number,
  randomBits: number,
): number {
  const s = L.sorted;
  const last = s.length - 1;
  if (Number.isNaN(x)) x = 0;
  if (x <= s[0]!) return L.codeOf[0]!;
  if (x >= s[last]!) return L.codeOf[last]!;
  // largest k with s[k] <= x (exists and k < last by the checks above)
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (s[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const a = s[lo]!;
  const b = s[hi]!;
  if (x === a) return L.codeOf[lo]!;
  let up: boolean;
  const dLo = x - a;
  const dHi = b - x;
  switch (mode) {
    case 'nearest-even': {
      if (dHi !== dLo) {
        up = dHi < dLo;
        break;
      }
      const evenLo = L.codeOf[lo]! % 2 === 0;
      const evenHi = L.codeOf[hi]! % 2 === 0;
      up = evenLo !== evenHi ? evenHi : Math.abs(b) < Math.abs(a);
      break;
    }
    case 'nearest-away':
      up =
        dHi < dLo || (dHi === dLo && (Math.abs(b) > Math.abs(a) || (Math.abs(b) === Math.abs(a) && b > 0)));
      break;
    case 'toward-zero':
      // the bracketing entry nearer zero; if they straddle zero (no 0 entry), the one with x's sign
      up = a >= 0 ? false : b <= 0 ? true : x > 0;
      break;
    case 'up':
      up = true;
      break;
    case 'down':
      up = false;
      break;
    case 'nearest-odd': {
      // the entry with the odd code (the analogue of round-to-odd for a table); same parity: toward zero
      const oddLo = L.codeOf[lo]! % 2 === 1;
      const oddHi = L.codeOf[hi]! % 2 === 1;
      up = oddLo !== oddHi ? oddHi : a >= 0 ? false : b <= 0 ? true : x > 0;
      break;
    }
    default:
      // stochastic modes: P(upper) = (x - a) / (b - a)
      up = roundsUp(mode, 0, dLo / (b - a), false, u32, randomBits);
  }
  return L.codeOf[up ? hi : lo]!;
}

/**
 * Independent references for the formats tests: brute-force rounding over a format's value table, written
 * without the codec's arithmetic (no exponent/quantum decomposition, only comparisons of distances).
 */
import { type FormatSpec, formatInfo, valueTable } from '../../src/formats/index.ts';

export interface Candidate {
  readonly value: number;
  /** Tie-break key for nearest-even: true when this candidate is the "even" one. */
  readonly even: boolean;
}

/** Finite non-negative values of a format with their code parity, plus a virtual value one step past max. */
export interface Ladder {
  readonly spec: FormatSpec;
  /** Sorted ascending, distinct (both signs for ints/LUTs and signed floats). */
  readonly values: Float64Array;
  readonly even: boolean[];
  /** The first value past max finite (floats only; reaching it means overflow), or NaN. */
  readonly beyond: number;
  readonly beyondEven: boolean;
  /** values plus +-beyond, and their even flags (1 = even), for the nearest search. */
  readonly cands: Float64Array;
  readonly candsEven: Uint8Array;
}

const ladders = new WeakMap<FormatSpec, Ladder>();

export function ladder(spec: FormatSpec): Ladder {
  const hit = ladders.get(spec);
  if (hit) return hit;
  const L = buildLadder(spec);
  ladders.set(spec, L);
  return L;
}

function buildLadder(spec: FormatSpec): Ladder {
  const t = valueTable(spec);
  const byValue = new Map<number, number>(); // value -> smallest code
  for (let c = 0; c < t.length; c++) {
    const v = t[c]!;
    if (!Number.isFinite(v)) continue;
    const key = v === 0 ? 0 : v;
    if (!byValue.has(key)) byValue.set(key, c);
  }
  const values = Float64Array.from([...byValue.keys()].sort((a, b) => a - b));
  let even: boolean[];
  let beyond = Number.NaN;
  let beyondEven = false;
  if (spec.kind === 'float') {
    const M = spec.manBits;
    const magMask = 2 ** (spec.expBits + M) - 1;
    // M >= 1: the even candidate has mantissa LSB 0. M = 0: the significand is the hidden 1 (odd) except
    // for zero, so "even" means zero.
    even = [...values].map((v) => (M === 0 ? v === 0 : (byValue.get(v)! & magMask & 1) === 0));
    const info = formatInfo(spec);
    // the step at the top binade is 2^(e_max - M); the code after max has parity of maxCode + 1
    const eMax = Math.floor(Math.log2(info.maxFinite));
    beyond = info.maxFinite + 2 ** (eMax - M);
    const maxCode = byValue.get(info.maxFinite)! & magMask;
    beyondEven = M === 0 ? false : ((maxCode + 1) & 1) === 0;
  } else if (spec.kind === 'int') {
    even = [...values].map((v) => v % 2 === 0);
  } else {
    even = [...values].map((v) => byValue.get(v)! % 2 === 0);
  }
  const cands = [...values];
  const candsEven = even.map((e) => (e ? 1 : 0));
  if (!Number.isNaN(beyond)) {
    cands.push(beyond);
    candsEven.push(beyondEven ? 1 : 0);
    if (values[0]! < 0) {
      cands.push(-beyond);
      candsEven.push(beyondEven ? 1 : 0);
    }
  }
  return {
    spec,
    values,
    even,
    beyond,
    beyondEven,
    cands: Float64Array.from(cands),
    candsEven: Uint8Array.from(candsEven),
  };
}

/**
 * Brute-force nearest: scan every value (and the virtual overflow value); ties go to the even candidate
 * (nearest-even) or the larger magnitude, positive on equal magnitude (nearest-away).
 * Returns the rounded value, or `Infinity * sign` meaning "overflowed" (caller applies the policy).
 */
export function bruteNearest(L: Ladder, x: number, away: boolean): number {
  // Candidates: every finite value, plus +-beyond (reaching it means overflow). Typed arrays keep the
  // scan over 65536 values fast.
  const cv = L.cands;
  const ce = L.candsEven;
  // Outside [lowest, highest] candidate the end is nearest (distances of huge x would all round equal).
  let hiV = -Infinity;
  let loV = Infinity;
  for (let i = 0; i < cv.length; i++) {
    if (cv[i]! > hiV) hiV = cv[i]!;
    if (cv[i]! < loV) loV = cv[i]!;
  }
  if (x >= hiV || x <= loV) {
    const end = x >= hiV ? hiV : loV;
    return Math.abs(end) === L.beyond ? end * Infinity : end;
  }
  let best = Infinity;
  let p0 = -1;
  let p1 = -1; // a second candidate at the same distance (a tie)
  for (let i = 0; i < cv.length; i++) {
    const d = Math.abs(cv[i]! - x);
    if (d < best) {
      best = d;
      p0 = i;
      p1 = -1;
    } else if (d === best) p1 = i;
  }
  const picks = p1 < 0 ? [p0] : [p0, p1];
  let pick = picks[0]!;
  if (picks.length > 1) {
    const v = (i: number) => cv[i]!;
    if (away) {
      pick = picks.reduce((p, c) =>
        Math.abs(v(c)) > Math.abs(v(p)) || (Math.abs(v(c)) === Math.abs(v(p)) && v(c) > v(p)) ? c : p,
      );
    } else {
      // Both even happens only between 0 and min normal of a format without subnormals: we define 0.
      const evens = picks.filter((c) => ce[c] === 1);
      pick =
        evens.length === 1 ? evens[0]! : picks.reduce((p, c) => (Math.abs(v(c)) < Math.abs(v(p)) ? c : p));
      if (evens.length !== 1 && L.spec.kind === 'float' && L.spec.manBits === 0)
        pick = picks.reduce((p, c) => (Math.abs(v(c)) > Math.abs(v(p)) ? c : p));
    }
  }
  const pv = cv[pick]!;
  if (Math.abs(pv) === L.beyond) return pv > 0 ? Infinity : -Infinity;
  return pv;
}

/** Largest value <= x and smallest value >= x among the finite values (undefined past the ends). */
export function bracket(L: Ladder, x: number): { down: number | undefined; up: number | undefined } {
  let down: number | undefined;
  let up: number | undefined;
  const v = L.values;
  for (let i = 0; i < v.length; i++) {
    if (v[i]! <= x) down = v[i]!;
    if (v[i]! >= x && up === undefined) up = v[i]!;
  }
  return { down, up };
}

/** float32 neighbours of x (x a float32): next toward +inf and -inf. */
const f = new Float32Array(1);
const u = new Int32Array(f.buffer);
export function nextUp(x: number): number {
  if (x === 0) return 2 ** -149;
  f[0] = x;
  u[0] = x > 0 ? u[0]! + 1 : u[0]! - 1;
  return f[0]!;
}
export function nextDown(x: number): number {
  return -nextUp(-x);
}

/** Same value, treating every NaN as equal and distinguishing +0 from -0. */
export function sameValue(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

/** Adversarial float32 inputs for a format: ties, just above/below ties, max, overflow edge, tiny, specials. */
export function adversarialInputs(L: Ladder, maxPairs = 400): number[] {
  const xs: number[] = [
    0,
    -0,
    Infinity,
    -Infinity,
    Number.NaN,
    2 ** -149,
    -(2 ** -149),
    1e-30,
    -1e30,
    3.4e38,
  ];
  const v = L.values;
  // every adjacent pair for small formats; for big ones a deterministic spread plus both ends
  const step = Math.max(1, Math.floor(v.length / maxPairs));
  const pairs: number[] = [];
  for (let i = 0; i + 1 < v.length; i += step) pairs.push(i);
  for (let i = Math.max(0, v.length - 8); i + 1 < v.length; i++) pairs.push(i);
  const zero = v.indexOf(0);
  for (let i = Math.max(0, zero - 8); i + 1 < v.length && i < zero + 8; i++) pairs.push(i);
  for (const i of pairs) {
    const mid = Math.fround((v[i]! + v[i + 1]!) / 2);
    xs.push(v[i]!, mid, nextUp(mid), nextDown(mid));
  }
  xs.push(v[v.length - 1]!);
  if (!Number.isNaN(L.beyond)) {
    const top = v[v.length - 1]!;
    const mid = Math.fround((top + L.beyond) / 2);
    for (const s of [1, -1])
      xs.push(s * mid, s * nextUp(mid), s * nextDown(mid), s * L.beyond, s * nextUp(L.beyond));
  }
  // tiny: below half the smallest positive value, and exactly half of it
  const minPos = [...v].find((a) => a > 0);
  if (minPos !== undefined)
    xs.push(Math.fround(minPos / 2), Math.fround(minPos / 3), Math.fround(-minPos / 2));
  return xs.map((x) => Math.fround(x));
}

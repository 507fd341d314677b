/**
 * Seeded pseudo-random generator for stochastic rounding and reproducible tests.
 *
 * xoshiro128** (Blackman & Vigna, 2018) on 32-bit integer arithmetic only (`Math.imul`, shifts), so the
 * same seed yields the same stream on every platform and JS engine. The 32-bit seed is expanded with
 * SplitMix32 so that nearby seeds give unrelated streams.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `new Rng(42).nextU32()` is the same number everywhere. */
  constructor(seed: number) {
    let z = seed >>> 0;
    const next = (): number => {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
      return (t ^ (t >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /**
   * The generator's state, four 32-bit words, written to `out` at `offset`: a kernel elsewhere (the
   * WebAssembly chop) can continue this very stream and hand the state back with `setState`.
   */
  getState(out: Uint32Array, offset = 0): void {
    out[offset] = this.s0;
    out[offset + 1] = this.s1;
    out[offset + 2] = this.s2;
    out[offset + 3] = this.s3;
  }

  /** Continues from a state written by `getState` (and advanced elsewhere by the same algorithm). */
  setState(src: Uint32Array, offset = 0): void {
    this.s0 = src[offset]! | 0;
    this.s1 = src[offset + 1]! | 0;
    this.s2 = src[offset + 2]! | 0;
    this.s3 = src[offset + 3]! | 0;
  }

  /** Uniform double in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextU32() * 2 ** -32;
  }

  /** Standard normal (Box–Muller, double precision). */
  nextNormal(): number {
    const u1 = (this.nextU32() + 1) * 2 ** -32; // (0, 1]
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * The jump matrix A^(2^log2Steps) of xoshiro128**, where A is one step of its (GF(2)-linear) state
 * update: 128 columns of four words, column 32 w + b being the state that bit b of word w alone moves
 * to. A state s jumps 2^log2Steps draws ahead as the XOR of the columns where s has a one, so a SIMD
 * kernel can run four generators started that far apart and still produce this one stream
 * (native/formats/chop.c). Computed by squaring: log2Steps matrix products of 128 x 128 bits.
 */
export function jumpColumns(log2Steps: number): Uint32Array {
  let m = new Uint32Array(512);
  for (let k = 0; k < 128; k++) {
    const s = m.subarray(4 * k, 4 * k + 4);
    s[k >>> 5] = (1 << (k & 31)) >>> 0;
    stepState(s);
  }
  for (let i = 0; i < log2Steps; i++) {
    const next = new Uint32Array(512);
    for (let k = 0; k < 128; k++)
      applyColumns(m, m.subarray(4 * k, 4 * k + 4), next.subarray(4 * k, 4 * k + 4));
    m = next;
  }
  return m;
}

/** out = M s over GF(2) (out must not alias s). */
export function applyColumns(m: Uint32Array, s: Uint32Array, out: Uint32Array): void {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  for (let k = 0; k < 128; k++) {
    if (((s[k >>> 5]! >>> (k & 31)) & 1) === 0) continue;
    a ^= m[4 * k]!;
    b ^= m[4 * k + 1]!;
    c ^= m[4 * k + 2]!;
    d ^= m[4 * k + 3]!;
  }
  out[0] = a;
  out[1] = b;
  out[2] = c;
  out[3] = d;
}

/** One xoshiro128** state update on four words (Rng.nextU32 without its output). */
function stepState(s: Uint32Array): void {
  let [s0, s1, s2, s3] = [s[0]!, s[1]!, s[2]!, s[3]!];
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl(s3, 11);
  s.set([s0, s1, s2, s3]);
}

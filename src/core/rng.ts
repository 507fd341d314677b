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

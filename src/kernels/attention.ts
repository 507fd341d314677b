/**
 * Attention over a KV cache held in kernel memory (native/kernels/attention.h): causal, multi-head with
 * grouped key / value heads (GQA), prefill (several query rows) and decode (one). Keys and values are
 * float32, one row of kvHeads x headDim values per position, per layer, at fixed addresses of the kernels'
 * memory, so a decode step copies in only the new row and the query; a pool's threads split the query heads
 * (the same result for any thread count: a head's arithmetic does not depend on which thread runs it).
 *
 * Why float32 and not float16 (llama.cpp's default KV type): at the contexts a browser or a laptop runs
 * (<= a few thousand positions) the cache of one layer fits in L2 and attention is bound by arithmetic, not
 * by reading it, and widening float16 without native conversions costs several SIMD operations per value;
 * float32 also keeps the kernel tied to its TypeScript reference (src/engine/ops.ts `attention`) without a
 * rounding of its own. The cost is memory: 8 bytes x kvHeads x headDim per position and layer (a 1B llama,
 * 22 layers x 4 x 64: 45 KiB per position, 92 MiB at 2048).
 *
 * Numerics vs the reference (float64 sums, test/kernels/attention.test.ts checks the bound): scores are
 * float32 dot products (4 lanes + a horizontal sum), exp is float64 rounded once to float32 as the
 * reference's Math.fround(Math.exp()), the softmax sums in float64 and the weighted sum of values is
 * float32 (relaxed builds may fuse multiply-adds).
 */
import { MixqError } from '../core/errors.ts';
import type { KernelContext } from './context.ts';

/** Kernels that threads split by something other than weight rows (the pool's table lists them). */
export const SPLIT_KERNELS: readonly string[] = ['attn_f32'];

const SRC = 'kernels: attention';

/**
 * Query-key pairs per head (rows x keys) from which threads split the heads: at a 1B llama's 32 heads x 64
 * a decode step at 256 positions is ~1 M multiply-adds, ~100 us on one thread.
 */
export const SPLIT_MIN_KEYS = 256;

/** Views of one layer's keys and values (capacity positions; valid until kernel memory grows). */
export interface KvViews {
  readonly k: Float32Array;
  readonly v: Float32Array;
}

interface Owned {
  readonly ctx: KernelContext;
  readonly blocks: number[];
}
const reclaim = new FinalizationRegistry<Owned>((o) => {
  for (const p of o.blocks) o.ctx.memory.release(p);
});

/**
 * Keys and values of `layers` layers for up to `maxLength` positions in kernel memory; grows as positions
 * are added (doubling, so a long generation reallocates O(log n) times). Released by `release()`, or when it
 * is garbage collected.
 */
export class KernelKvStore {
  /** kvHeads x headDim: floats per position per layer. */
  readonly width: number;
  /** Positions each layer has room for. */
  capacity = 0;
  private k: number[];
  private v: number[];
  private q = { p: 0, n: 0 };
  private o = { p: 0, n: 0 };
  private readonly owned: Owned;
  private released = false;

  constructor(
    readonly ctx: KernelContext,
    readonly layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly maxLength: number,
  ) {
    for (const [f, val] of [
      ['layers', layers],
      ['kvHeads', kvHeads],
      ['headDim', headDim],
      ['maxLength', maxLength],
    ] as const)
      if (!Number.isInteger(val) || val < 1)
        throw new MixqError(`${f} ${val}`, { source: SRC, field: f, expected: 'a positive integer' });
    this.width = kvHeads * headDim;
    this.k = new Array<number>(layers).fill(0);
    this.v = new Array<number>(layers).fill(0);
    this.owned = { ctx, blocks: [] };
    reclaim.register(this, this.owned, this);
  }

  /** Bytes of kernel memory the cache holds now. */
  get bytes(): number {
    return this.layers * 2 * this.capacity * this.width * 4;
  }

  /** Makes room for `n` positions, keeping the first `keep`. */
  reserve(n: number, keep: number): void {
    this.live();
    if (n <= this.capacity) return;
    if (n > this.maxLength)
      throw new MixqError(`${n} positions`, {
        source: SRC,
        field: 'positions',
        expected: `at most ${this.maxLength}`,
      });
    const cap = Math.min(this.maxLength, Math.max(n, 2 * this.capacity, 64));
    const mem = this.ctx.memory;
    const bytes = cap * this.width * 4;
    for (let l = 0; l < this.layers; l++)
      for (const side of [this.k, this.v]) {
        const p = mem.alloc(bytes);
        this.owned.blocks.push(p);
        const old = side[l]!;
        if (old) {
          mem.bytes().copyWithin(p, old, old + keep * this.width * 4);
          this.free(old);
        }
        side[l] = p;
      }
    this.capacity = cap;
  }

  /** Stores keys and values of `rows` positions from `pos` (rows x width floats each) in layer `l`. */
  write(l: number, pos: number, k: Float32Array, v: Float32Array): void {
    this.live();
    const n = k.length;
    if (n !== v.length || n % this.width !== 0 || pos + n / this.width > this.capacity)
      throw new MixqError(`${n / this.width} rows at ${pos}`, {
        source: SRC,
        field: 'rows',
        expected: `whole rows of ${this.width} within ${this.capacity} positions`,
      });
    const mem = this.ctx.memory;
    mem.f32(this.k[l]! + pos * this.width * 4, n).set(k);
    mem.f32(this.v[l]! + pos * this.width * 4, n).set(v);
  }

  /** Views of layer l's keys and values (the TypeScript reference reads them). */
  views(l: number): KvViews {
    this.live();
    const n = this.capacity * this.width;
    return { k: this.ctx.memory.f32(this.k[l]!, n), v: this.ctx.memory.f32(this.v[l]!, n) };
  }

  /**
   * Attention of `rows` query rows (q: rows x heads x headDim) at positions pos0 .. pos0 + rows - 1 over
   * layer l's positions 0 .. pos0 + rows - 1 (their keys and values already written); writes out (the
   * shape of q). heads must be a multiple of kvHeads.
   */
  attend(l: number, q: Float32Array, rows: number, pos0: number, heads: number, out: Float32Array): void {
    this.live();
    const hd = this.headDim;
    const n = rows * heads * hd;
    if (!Number.isInteger(heads) || heads < 1 || heads % this.kvHeads !== 0)
      throw new MixqError(`${heads} heads`, {
        source: SRC,
        field: 'heads',
        expected: `a multiple of ${this.kvHeads} (the key / value heads)`,
      });
    if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(pos0) || pos0 < 0)
      throw new MixqError(`rows ${rows} at ${pos0}`, {
        source: SRC,
        field: 'rows',
        expected: 'rows >= 1 at a position >= 0',
      });
    if (pos0 + rows > this.capacity || l < 0 || l >= this.layers || !Number.isInteger(l))
      throw new MixqError(`layer ${l}, positions up to ${pos0 + rows}`, {
        source: SRC,
        field: 'positions',
        expected: `a layer < ${this.layers} and at most ${this.capacity} positions`,
      });
    if (q.length !== n || out.length !== n)
      throw new MixqError(`q of ${q.length}, out of ${out.length}`, {
        source: SRC,
        field: 'q.length',
        expected: `${n} (rows ${rows} x heads ${heads} x ${hd})`,
      });
    const qp = this.buffer(this.q, 4 * n);
    const op = this.buffer(this.o, 4 * n);
    const mem = this.ctx.memory;
    mem.f32(qp, n).set(q);
    // threads split the heads once a head has enough keys to pay for the hand-over (~15 us per call);
    // below, one tile of all heads keeps the call on the calling thread (same results either way)
    const split = rows * (pos0 + rows) >= SPLIT_MIN_KEYS;
    this.ctx.runSplit(
      'attn_f32',
      [qp, this.k[l]!, this.v[l]!, op, rows, pos0, heads, this.kvHeads, hd],
      heads,
      4 * (pos0 + rows) + 64,
      split ? 1 : heads,
    );
    out.set(mem.f32(op, n));
  }

  /** Returns the cache's kernel memory (the store is unusable afterwards). */
  release(): void {
    if (this.released) return;
    this.released = true;
    reclaim.unregister(this);
    for (const p of this.owned.blocks) this.ctx.memory.release(p);
    this.owned.blocks.length = 0;
    this.capacity = 0;
  }

  private live(): void {
    if (this.released)
      throw new MixqError('KV cache used after release()', {
        source: SRC,
        field: 'cache',
        expected: 'a live cache',
      });
  }

  private free(p: number): void {
    const i = this.owned.blocks.indexOf(p);
    if (i >= 0) this.owned.blocks.splice(i, 1);
    this.ctx.memory.release(p);
  }

  private buffer(b: { p: number; n: number }, bytes: number): number {
    if (b.n < bytes) {
      if (b.p) this.free(b.p);
      b.p = this.ctx.memory.alloc(bytes);
      b.n = bytes;
      this.owned.blocks.push(b.p);
    }
    return b.p;
  }
}

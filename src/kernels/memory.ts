/**
 * The linear memory the kernels read and write: one WebAssembly.Memory (shared when worker threads use it)
 * with a first-fit allocator over the part above the module's own data and stack (`__heap_base`).
 * Weights, descriptors, activation buffers and per-thread scratch all live here, so a kernel call passes
 * addresses, never copies of weights.
 *
 * Typed-array views of the memory go stale when it grows (a grown ArrayBuffer is detached; a grown
 * SharedArrayBuffer keeps its old length): take views through `bytes()` / `f32()` right before use.
 */
import { MixqError } from '../core/errors.ts';

const PAGE = 65536;
/** Largest memory a wasm32 module can address (the kernels declare this maximum). */
export const MAX_KERNEL_MEMORY_BYTES = 4 * 1024 * 1024 * 1024;
/** Alignment of every allocation: a cache line, so SIMD loads never straddle one needlessly. */
export const ALIGN = 64;

export class KernelMemory {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  /** Free ranges [start, end), sorted, non-adjacent. */
  private free: [number, number][] = [];
  private readonly sizes = new Map<number, number>();
  private top: number;

  /**
   * @param base first byte the allocator may hand out (the module's `__heap_base`)
   * @param maxBytes cap on the memory (default 4 GiB, all a wasm32 module can address)
   */
  constructor(opts: { shared: boolean; base: number; initialBytes?: number; maxBytes?: number }) {
    const maxPages = Math.floor((opts.maxBytes ?? MAX_KERNEL_MEMORY_BYTES) / PAGE);
    const initial = Math.max(
      Math.ceil((opts.initialBytes ?? 1 << 20) / PAGE),
      Math.ceil((opts.base + ALIGN) / PAGE),
    );
    this.shared = opts.shared;
    this.memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared: opts.shared });
    this.top = Math.ceil(opts.base / ALIGN) * ALIGN;
  }

  /** Bytes the memory holds now. */
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** Allocates `bytes` (rounded up to ALIGN) and returns the address; contents are unspecified. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0)
      throw new MixqError(`cannot allocate ${bytes} bytes`, {
        source: 'kernel memory',
        field: 'bytes',
        expected: 'a non-negative integer',
      });
    const n = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const [s, e] = this.free[i]!;
      if (e - s >= n) {
        if (e - s === n) this.free.splice(i, 1);
        else this.free[i] = [s + n, e];
        this.sizes.set(s, n);
        return s;
      }
    }
    const p = this.top;
    this.ensure(p + n);
    this.top = p + n;
    this.sizes.set(p, n);
    return p;
  }

  /** Allocates and zero-fills. */
  calloc(bytes: number): number {
    const p = this.alloc(bytes);
    this.bytes().fill(0, p, p + Math.ceil(bytes / ALIGN) * ALIGN);
    return p;
  }

  /** Returns an allocation to the free list (merging neighbours; the top shrinks back when it can). */
  release(p: number): void {
    const n = this.sizes.get(p);
    if (n === undefined)
      throw new MixqError(`address ${p} was not allocated here`, {
        source: 'kernel memory',
        field: 'address',
        expected: 'an address returned by alloc and not yet released',
      });
    this.sizes.delete(p);
    let s = p;
    let e = p + n;
    const rest: [number, number][] = [];
    for (const r of this.free) {
      if (r[1] === s) s = r[0];
      else if (r[0] === e) e = r[1];
      else rest.push(r);
    }
    if (e === this.top) this.top = s;
    else {
      rest.push([s, e]);
      rest.sort((a, b) => a[0] - b[0]);
    }
    this.free = rest;
  }

  /** Grows the memory so that [0, end) is addressable. */
  ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (end > MAX_KERNEL_MEMORY_BYTES)
      throw new MixqError(`kernel memory would need ${end} bytes`, {
        source: 'kernel memory',
        field: 'size',
        expected: `at most ${MAX_KERNEL_MEMORY_BYTES} bytes (the wasm32 limit); split the model across contexts`,
      });
    // grow by at least 1/8 of the current size, so that many small allocations do not grow page by page
    const want = Math.max(end, have + Math.floor(have / 8));
    const pages = Math.ceil((Math.min(want, MAX_KERNEL_MEMORY_BYTES) - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch {
      this.memory.grow(Math.ceil((end - have) / PAGE));
    }
  }

  /** A byte view of the whole memory (take it right before use: growing invalidates it). */
  bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
  f32(p: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, p, n);
  }
  i32(p: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, p, n);
  }
  u8(p: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, p, n);
  }
  /** Bytes of an allocation (as rounded up by alloc). */
  sizeOf(p: number): number {
    const n = this.sizes.get(p);
    if (n === undefined)
      throw new MixqError(`address ${p} was not allocated here`, {
        source: 'kernel memory',
        field: 'address',
      });
    return n;
  }

  /** Bytes in use (allocated and not released), for reports. */
  get usedBytes(): number {
    let s = 0;
    for (const n of this.sizes.values()) s += n;
    return s;
  }
}

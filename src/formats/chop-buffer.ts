/**
 * chopBuffer: round data that already lives in WebAssembly memory, with no copy in or out.
 *
 * `chop` on a JavaScript Float32Array must copy each chunk into the kernel's memory and the result back
 * out; those copies, not the rounding, bound its speed (see bench/formats.bench.ts). A ChopBuffer owns a
 * WebAssembly memory: the caller writes values into `view` (decode, accumulate, read a file into it) and
 * `chopInPlace(n)` rounds the first n in place at memory bandwidth, in any rounding mode. Without
 * WebAssembly SIMD the view is an ordinary Float32Array and chopInPlace is `chop` in place: same results
 * either way, bit for bit.
 *
 * ```ts
 * const buf = chopBuffer(getFormat('bf16'), 1 << 20);
 * buf.view.set(values);                    // or fill buf.view directly
 * const rounded = buf.chopInPlace(values.length); // a view of the first n elements, rounded
 * ```
 *
 * `kernelFloat32Array(n)` is the plain allocator behind it: a Float32Array in its own kernel memory that
 * `chop` recognises, so results written into it (`chop(spec, jsArray, opts, arr)`: one copy in, no copy
 * out) or rounded in place (`chop(spec, arr, opts, arr)`: no copy) never cross the boundary twice.
 */
import { MixqError } from '../core/errors.ts';
import { DATA, kernelMemory, type KernelMemory } from './chop-wasm.ts';
import { chop } from './codec.ts';
import type { CastOptions, FormatSpec } from './spec.ts';

export interface ChopBuffer {
  readonly spec: FormatSpec;
  /** Elements `view` holds. */
  readonly capacity: number;
  /**
   * `capacity` float32 values in WebAssembly memory (where SIMD is available). The view is invalidated
   * (its buffer detached, length 0) when the memory grows, i.e. by `reserve`: read `view` again after.
   */
  readonly view: Float32Array;
  /** Whether `view` is in WebAssembly memory (false: plain memory, TypeScript rounding). */
  readonly wasm: boolean;
  /**
   * Rounds view[0, n) in place to `spec` (n defaults to capacity) and returns that subarray. Any rounding
   * mode and option of `chop` is accepted (float formats run the WebAssembly kernel in place; the others,
   * and modes without a kernel, the TypeScript paths).
   */
  chopInPlace(n?: number, opts?: CastOptions): Float32Array;
  /** Grows to at least `capacity` elements, keeping the contents; returns the new view (old views die). */
  reserve(capacity: number): Float32Array;
}

function checkCount(what: string, n: number, max: number, source = 'chopBuffer'): void {
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new MixqError(`${what} ${n}`, {
      source,
      field: what,
      expected: `an integer in 0..${max}`,
    });
}

/** Largest capacity: a 32-bit WebAssembly memory (4 GiB) minus the kernel's parameter block. */
const MAX_CAPACITY = (2 ** 32 - DATA) / 4;

/**
 * A Float32Array of `length` zeros that lives in its own WebAssembly kernel memory (where WebAssembly SIMD
 * runs; elsewhere an ordinary Float32Array): `chop` rounds in place on it, or from another view of its
 * memory, with no copy, and into it from any array with one copy. Its memory never grows, so the array
 * never detaches. Throws MixqError for a bad length or when the memory cannot be allocated.
 *
 * ```ts
 * const w = kernelFloat32Array(weights.length);
 * chop(getFormat('bf16'), weights, { rounding: 'toward-zero' }, w); // one copy in, rounded in place
 * chop(getFormat('bf16'), w, { rounding: 'up' }, w);                  // no copy
 * ```
 */
export function kernelFloat32Array(length: number): Float32Array {
  checkCount('length', length, MAX_CAPACITY, 'kernelFloat32Array');
  const mem = kernelMemory(length);
  return mem ? mem.f32.subarray(DATA >>> 2, (DATA >>> 2) + length) : new Float32Array(length);
}

/**
 * A buffer of `capacity` float32 values in WebAssembly memory that rounds to `spec` in place with no
 * copies. Each buffer has its own memory (capacity * 4 bytes plus 128, in 64 KB pages).
 */
export function chopBuffer(spec: FormatSpec, capacity: number): ChopBuffer {
  checkCount('capacity', capacity, MAX_CAPACITY);
  const mem: KernelMemory | null = kernelMemory(capacity);
  let cap = capacity;
  let view = mem ? mem.f32.subarray(DATA >>> 2, (DATA >>> 2) + cap) : new Float32Array(cap);
  return {
    spec,
    get capacity() {
      return cap;
    },
    get view() {
      return view;
    },
    wasm: mem !== null,
    chopInPlace(n = cap, opts) {
      checkCount('n', n, cap);
      const v = view.subarray(0, n);
      return chop(spec, v, opts, v);
    },
    reserve(capacity) {
      checkCount('capacity', capacity, MAX_CAPACITY);
      if (capacity <= cap) return view;
      if (mem) {
        mem.reserve(capacity);
        view = mem.f32.subarray(DATA >>> 2, (DATA >>> 2) + capacity);
      } else {
        const next = new Float32Array(capacity);
        next.set(view);
        view = next;
      }
      cap = capacity;
      return view;
    },
  };
}

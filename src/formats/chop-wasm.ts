/**
 * The WebAssembly SIMD chop: native/formats/chop.c (built by scripts/build-wasm.mjs into
 * wasm/chop.generated.ts) rounds float32 data in its memory, in place, in every rounding mode of
 * KERNEL_MODES, with overflow, inf, NaN and subnormals handled inside the kernel (no scalar fallback).
 *
 * The module imports its memory, so one compiled module serves many memories: a shared scratch memory
 * for `chop` on JavaScript arrays (chunks copied in, rounded in place, copied out) and one memory per
 * `chopBuffer` (data already in WebAssembly memory, rounded with no copy). Memory layout: the kernel's
 * parameter block (struct ChopParams) at byte 0, data from byte DATA on. The kernel uses no other memory
 * (no stack, no static data: the build gives it none).
 *
 * Stochastic modes: the caller's xoshiro128** state goes into the parameter block, the kernel draws one
 * number per element from it, in order, and the advanced state comes back into the caller's Rng.
 */
import { MixqError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import { base64Bytes, hasWasmSimd } from '../core/wasm.ts';
import type { ChopPlan } from './chop-plan.ts';
import { WASM_SIMD128 } from './wasm/chop.generated.ts';

/** First data byte of a kernel memory (after the parameter block; a multiple of 64: cache-line aligned). */
export const DATA = 128;
/**
 * Elements per chunk `chop` copies through the scratch memory (128 KB: L2-resident, so the kernel and the
 * copy out read what the copy in just wrote from cache; measured, bf16 and fp8, interleaved: 4K-64K
 * element chunks within noise of each other, 32K-64K a little ahead).
 */
export const CHUNK = 1 << 15;
const PAGE = 65536;
// Field offsets (32-bit words) of struct ChopParams in native/formats/chop.c, in declaration order.
const P = {
  mode: 0,
  floatPath: 1,
  absMask: 2,
  lo: 3,
  hi: 4,
  window: 5,
  finiteLimit: 6,
  keep: 7,
  drop: 8,
  half: 9,
  lsb: 10,
  srDrop: 11,
  srShift: 12,
  q: 13,
  invQ1: 14,
  invQ2: 15,
  srScale: 16,
  srUnscale: 17,
  ovfPos: 18,
  ovfNeg: 19,
  infOut: 20,
  nanOut: 21,
  zeroSign: 22,
  rng: 23, // 4 words
  floor: 27,
  zeroOut: 28,
} as const;

type ChopFn = (src: number, dst: number, n: number, params: number) => void;

/**
 * A WebAssembly memory with the chop kernel instantiated on it. `f32` / `u32` view the whole memory;
 * growing replaces the buffer (views of the old one are detached) and `refresh` re-reads it.
 */
export class KernelMemory {
  f32: Float32Array;
  u32: Uint32Array;
  private buffer: ArrayBufferLike;
  private readonly run: ChopFn;
  constructor(private readonly memory: WebAssembly.Memory) {
    this.run = new WebAssembly.Instance(kernelModule()!, { env: { memory } }).exports.chop_f32 as ChopFn;
    this.buffer = memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    homes.set(this.buffer, this);
  }
  /** Data capacity in float32 elements. */
  get capacity(): number {
    return (this.memory.buffer.byteLength - DATA) >>> 2;
  }
  /** Grows the memory to hold at least `elements` float32 data values (detaching the old buffer). */
  reserve(elements: number): void {
    const need = Math.ceil((DATA + 4 * elements) / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) this.memory.grow(need);
    this.refresh();
  }
  refresh(): void {
    if (this.memory.buffer === this.buffer) return;
    this.buffer = this.memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    homes.set(this.buffer, this);
  }
  /** Writes the plan (and the generator's state) into the parameter block. */
  load(plan: ChopPlan, rng: Rng | undefined): void {
    const u = this.u32;
    const f = this.f32;
    u[P.mode] = plan.mode;
    u[P.floatPath] = plan.floatPath ? 1 : 0;
    u[P.absMask] = plan.absMask;
    u[P.lo] = plan.lo;
    u[P.hi] = plan.hi;
    u[P.window] = plan.window;
    u[P.finiteLimit] = plan.finiteLimit;
    u[P.keep] = plan.keep;
    u[P.drop] = plan.drop;
    u[P.half] = plan.half;
    u[P.lsb] = plan.lsb;
    u[P.srDrop] = plan.srDrop;
    u[P.srShift] = plan.srShift;
    f[P.q] = plan.q;
    f[P.invQ1] = plan.invQ1;
    f[P.invQ2] = plan.invQ2;
    f[P.srScale] = plan.srScale;
    f[P.srUnscale] = plan.srUnscale;
    u[P.ovfPos] = plan.ovfPos;
    u[P.ovfNeg] = plan.ovfNeg;
    u[P.infOut] = plan.infOut;
    u[P.nanOut] = plan.nanOut;
    u[P.zeroSign] = plan.zeroSign;
    u[P.floor] = plan.floor;
    u[P.zeroOut] = plan.zeroOut;
    if (rng) rng.getState(u, P.rng);
  }
  /** Rounds n floats at byte offset `from` into byte offset `to` (both >= DATA; equal, or not overlapping). */
  chop(from: number, to: number, n: number): void {
    this.run(from, to, n, 0);
  }
  /** Hands the advanced generator state back to the caller's Rng. */
  unload(rng: Rng | undefined): void {
    if (rng) rng.setState(this.u32, P.rng);
  }
}

/** Kernel memories by their current buffer, so chop can tell data already in WebAssembly memory. */
const homes = new WeakMap<ArrayBufferLike, KernelMemory>();

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel module (checked to link here once), or null where WebAssembly SIMD is unavailable. */
function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = null;
    try {
      if (hasWasmSimd()) {
        const module = new WebAssembly.Module(base64Bytes(WASM_SIMD128));
        new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1 }) } });
        compiled = module;
      }
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** Whether the WebAssembly kernel runs here (WebAssembly SIMD128: Node >= 16.4, current browsers). */
export function wasmChopAvailable(): boolean {
  return kernelModule() !== null;
}

/**
 * A new kernel memory with room for `elements` float32 data values, or null where the kernel does not
 * run here. Throws MixqError when the memory cannot be allocated.
 */
export function kernelMemory(elements: number): KernelMemory | null {
  if (!wasmChopAvailable()) return null;
  try {
    const pages = Math.max(1, Math.ceil((DATA + 4 * elements) / PAGE));
    return new KernelMemory(new WebAssembly.Memory({ initial: pages }));
  } catch (e) {
    throw new MixqError(`cannot allocate ${elements} float32 values of WebAssembly memory`, {
      source: 'chopBuffer',
      field: 'capacity',
      expected: `fewer elements (${e instanceof Error ? e.message : String(e)})`,
    });
  }
}

let scratch: KernelMemory | null | undefined;

/**
 * The shared scratch memory `chop` copies JavaScript arrays through: two regions of CHUNK data elements,
 * the copy in at DATA and the kernel's output right after it (out of place: the kernel's one-pass loop).
 */
export function scratchMemory(): KernelMemory | null {
  if (scratch === undefined) scratch = kernelMemory(2 * CHUNK);
  return scratch;
}

/** The kernel memory whose current buffer is `buffer`, if any (data already in WebAssembly memory). */
export function memoryOf(buffer: ArrayBufferLike): KernelMemory | undefined {
  return homes.get(buffer);
}

/** The kernel memory `x` is a view of, when x lies in its data region. */
function homeOf(x: Float32Array): KernelMemory | undefined {
  return x.byteOffset >= DATA ? memoryOf(x.buffer) : undefined;
}

/**
 * Chop with the WebAssembly kernel, with as few copies as the arrays allow (the caller has resolved
 * partial overlaps):
 * - src and dst views of one kernel memory's data region: no copy (in place or out of place);
 * - dst in a kernel memory, src anywhere else: one copy (src into dst), rounded in place chunk by chunk
 *   while each chunk is in cache;
 * - otherwise chunk by chunk through the scratch memory: a copy in, the kernel into the second region,
 *   a copy out (each chunk stays in cache between the three steps).
 * Returns false where the kernel does not run here.
 */
export function chopWasm(
  plan: ChopPlan,
  src: Float32Array,
  dst: Float32Array,
  rng: Rng | undefined,
): boolean {
  const n = src.length;
  const home = homeOf(dst);
  if (home) {
    home.load(plan, rng);
    if (src.buffer === dst.buffer && src.byteOffset >= DATA) home.chop(src.byteOffset, dst.byteOffset, n);
    else {
      // copy a chunk in and round it in place while it is in cache (the generator's state carries over
      // from call to call in the parameter block)
      for (let c = 0; c < n; c += CHUNK) {
        const len = Math.min(CHUNK, n - c);
        dst.set(len === n ? src : src.subarray(c, c + len), c);
        const at = dst.byteOffset + 4 * c;
        home.chop(at, at, len);
      }
    }
    home.unload(rng);
    return true;
  }
  const S = scratchMemory();
  if (!S) return false;
  S.load(plan, rng);
  const a = DATA >>> 2;
  const b = a + CHUNK;
  const inA = S.f32.subarray(a, a + CHUNK);
  const outB = S.f32.subarray(b, b + CHUNK);
  for (let c = 0; c < n; c += CHUNK) {
    const len = Math.min(CHUNK, n - c);
    if (len === CHUNK) inA.set(src.subarray(c, c + CHUNK));
    else S.f32.set(len === n ? src : src.subarray(c, c + len), a);
    S.chop(DATA, DATA + 4 * CHUNK, len);
    dst.set(len === CHUNK ? outB : outB.subarray(0, len), c);
  }
  S.unload(rng);
  return true;
}

/**
 * The matrix engine: where quant/'s dense products run. One WebAssembly module (native/quant/matrix.h,
 * SIMD128) holds the kernels; an engine owns a memory, a bump arena inside it, and a way to run a task's
 * parts — inline on the calling thread (`inlineEngine`, the default, browser-safe) or spread over worker
 * threads sharing the memory (`createMatrixPool` in runtime/matrix-pool.node.ts, Node). The algorithms
 * take an engine as an argument; they never ask which kind it is.
 *
 * Determinism: a task is cut into parts by a rule that does not depend on the thread count (fixed row or
 * column chunks), every part writes its own memory, and any reduction over parts is done by the caller in
 * part order. So the same inputs give the same bytes on one thread or many.
 */
import { MixqError } from '../../core/errors.ts';
import {
  instantiateKernels,
  instantiateKernelsAsync,
  type MatrixKernels,
  type ThreadContext,
  WORK_BYTES,
} from './kernels.ts';
import { runTaskPart, type TaskName } from './tasks.ts';

/** A bump allocator over the engine's memory (main thread only; released in stack order). */
export class WasmArena {
  private top: number;

  constructor(
    readonly memory: WebAssembly.Memory,
    base: number,
  ) {
    this.top = base;
  }

  /** Reserves `bytes` (aligned to 64) and returns its byte offset; grows the memory when needed. */
  alloc(bytes: number): number {
    const p = (this.top + 63) & ~63;
    const end = p + Math.max(0, bytes);
    if (!(end <= 4 * 2 ** 30 - 65536))
      throw new MixqError(`the matrix engine needs ${(end / 2 ** 30).toFixed(2)} GiB of WebAssembly memory`, {
        field: 'matrix size',
        expected: 'at most 4 GiB of working memory (wasm32)',
      });
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / 65536));
      } catch {
        throw new MixqError(`cannot grow WebAssembly memory to ${(end / 2 ** 30).toFixed(2)} GiB`, {
          field: 'matrix size',
          expected: 'a smaller matrix, or more memory available to the engine',
        });
      }
    }
    this.top = end;
    return p;
  }

  /** The current top, to hand back to release(). */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  f64(ptr: number, n: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, n);
  }

  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }

  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, n);
  }

  /** Copies `src` into a fresh allocation and returns its offset. */
  put(src: Float32Array | Float64Array | Int32Array): number {
    const p = this.alloc(src.byteLength);
    new Uint8Array(this.memory.buffer, p, src.byteLength).set(
      new Uint8Array(src.buffer, src.byteOffset, src.byteLength),
    );
    return p;
  }
}

/** Where quant/'s matrix work runs. */
export interface MatrixEngine {
  /** Threads that run parts (1 for the inline engine). */
  readonly threads: number;
  /** The calling thread's context (its kernels, scratch and the memory). */
  readonly main: ThreadContext;
  readonly arena: WasmArena;
  /**
   * Runs parts 0 .. parts-1 of task `name` with numeric arguments `args` and returns when all are done.
   * Parts may run in any order on any thread; each writes its own memory.
   */
  run(name: TaskName, args: readonly number[], parts: number): void;
}

/** Runs fn inside an arena scope: everything fn allocates is released afterwards. */
export function scoped<T>(engine: MatrixEngine, fn: () => T): T {
  const mark = engine.arena.mark();
  try {
    return fn();
  } finally {
    engine.arena.release(mark);
  }
}

/** A memory for the kernels: `pages` 64 KiB pages to start with, growable to 4 GiB. */
export function kernelMemory(pages: number, shared: boolean): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: pages, maximum: 65536, shared });
}

/** A one-thread engine on its own memory, from an instantiated kernel module. */
function inlineEngineOn(memory: WebAssembly.Memory, kernels: MatrixKernels, heapBase: number): MatrixEngine {
  const arena = new WasmArena(memory, heapBase);
  const main: ThreadContext = { kernels, memory, work: arena.alloc(WORK_BYTES) };
  return {
    threads: 1,
    main,
    arena,
    run(name, args, parts) {
      for (let p = 0; p < parts; p++) runTaskPart(main, name, args, p);
    },
  };
}

/**
 * A one-thread engine on its own memory (works everywhere WebAssembly SIMD128 does). Compiles the kernels
 * synchronously: fine in Node and in workers; a browser's main thread refuses synchronous compiles of modules
 * over 4 KB, so there use `await loadInlineEngine()`.
 */
export function createInlineEngine(): MatrixEngine {
  const memory = kernelMemory(64, false);
  const { kernels, heapBase } = instantiateKernels(memory);
  return inlineEngineOn(memory, kernels, heapBase);
}

let inline: MatrixEngine | undefined;

/** The shared one-thread engine every algorithm uses unless given another (created on first use). */
export function inlineEngine(): MatrixEngine {
  if (!inline) {
    try {
      inline = createInlineEngine();
    } catch (e) {
      throw new MixqError(
        `the matrix kernels could not be compiled synchronously here (${e instanceof Error ? e.message : String(e)})`,
        { field: 'matrix engine', expected: 'await loadInlineEngine() once before (browsers main thread)' },
      );
    }
  }
  return inline;
}

/** Compiles the kernels asynchronously and makes the result the shared inline engine (any thread). */
export async function loadInlineEngine(): Promise<MatrixEngine> {
  if (!inline) {
    const memory = kernelMemory(64, false);
    const { kernels, heapBase } = await instantiateKernelsAsync(memory);
    inline ??= inlineEngineOn(memory, kernels, heapBase);
  }
  return inline;
}

/**
 * Kernel contexts on worker threads (Node): the threaded kernel module over one shared WebAssembly.Memory,
 * one instance per thread, each with its own C stack and scratch. A product cuts its rows into chunks at
 * multiples of the kernels' row tile (CHUNKS_PER_THREAD per thread), which the calling thread and the workers
 * claim from a shared counter until none is left; every row is computed by the same code whatever thread runs
 * it and whatever chunk holds it, so results do not depend on the thread count (test/kernels/pool.test.ts).
 * Calls are handed over through a control block per worker (Atomics.wait / notify): no message per call.
 *
 * Why chunks and not one fixed range per thread (issue 21, session 9): on this 2-vCPU VM a worker woken
 * from sleep often lands on the calling thread's vCPU and cannot start before the caller's own range is
 * done; with fixed halves the call then took up to two halves' time, and a missed poll put the pool in its
 * cooldown (every call sleeping and waking) for the next 64 calls. Each thread's half measured 0.95-1.05 ms of
 * a 4096 x 4096 float32 product, yet the calls through the pool took 1.3-1.4 ms back to back. Claimed chunks
 * let a late thread take fewer: back to back 2-thread calls measured 0.98-1.04 ms (halves 1.28-1.34 ms,
 * same process).
 *
 * @example
 *   const k = await createKernelPool({ threads: 2 });
 *   const w = k.prepare(source);
 *   const y = k.matvec(w, x);
 *   await k.close();
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { MixqError } from '../core/errors.ts';
import { startReadyWorkers } from '../core/worker-thread.node.ts';
import { KernelContext, type KernelOptions, type RowExecutor } from './context.ts';
import { KernelMemory } from './memory.ts';
import { chooseVariant, compileKernelModule, heapBase, type KernelExports } from './module.ts';
import { CTL, DEFAULT_POLL_US, pollWhile, runChunks } from './pool-control.ts';
import { SPLIT_KERNELS } from './attention.ts';
import { LAYOUTS } from './registry.ts';
import * as MT from './wasm/kernels-mt.generated.ts';

/** C stack of each worker instance. */
const STACK_BYTES = 256 * 1024;

export interface KernelPoolOptions extends KernelOptions {
  /** Threads including the calling one (default: the machine's available parallelism). */
  readonly threads?: number;
  /**
   * Microseconds a waiting thread polls before it sleeps (default 200): workers between calls, the calling
   * thread for its workers. 0: sleep at once (less CPU when the machine is oversubscribed; each call then
   * pays a thread's wake-up).
   */
  readonly pollMicros?: number;
}

/** Every kernel function a worker may be asked to run (the products, and read_rows for benchmarks). */
const NAMES: readonly string[] = [
  ...new Set([
    ...Object.values(LAYOUTS).flatMap((l) => [
      ...Object.values(l.kernels.matvec),
      ...Object.values(l.kernels.matmul),
    ]),
    'read_rows',
    ...SPLIT_KERNELS,
  ]),
];

/** Calls without polling after a poll that ended without the workers (PoolExecutor.cooldown). */
const COOLDOWN_CALLS = 64;

/**
 * Chunks per thread a call's rows are cut into (at multiples of the row tile); threads claim them from a
 * shared counter, so a late or slow thread takes fewer (issue 21).
 */
const CHUNKS_PER_THREAD = 4;

class PoolExecutor implements RowExecutor {
  /** Threads products use (at most the pool's). */
  threads: number;
  /** KernelPoolOptions.pollMicros. */
  private pollMicros: number;
  /**
   * Calls left before the waiting threads poll again. A poll of the calling thread that ends without its
   * workers means they were descheduled (the machine is oversubscribed: polling then only takes a core from
   * the threads that would make progress, measured 15-27% slower decoding); the threads then sleep at once
   * for the next COOLDOWN_CALLS calls and try polling again after that.
   */
  private cooldown = 0;
  private readonly scratch: { p: number; n: number }[];
  constructor(
    private readonly memory: KernelMemory,
    private readonly exports: KernelExports,
    private readonly ctls: Int32Array[],
    /** The shared chunk counter (pool-control.ts runChunks). */
    private readonly next: Int32Array,
    pollMicros: number,
  ) {
    this.threads = ctls.length + 1;
    this.scratch = Array.from({ length: this.threads }, () => ({ p: 0, n: 0 }));
    this.pollMicros = pollMicros;
  }
  /** A new polling budget (checked by the caller), tried at once. */
  setPolling(micros: number): void {
    this.pollMicros = Math.round(micros);
    this.cooldown = 0;
  }
  private scratchOf(t: number, bytes: number): number {
    const s = this.scratch[t]!;
    if (s.n < bytes) {
      if (s.p) this.memory.release(s.p);
      s.p = this.memory.alloc(bytes);
      s.n = bytes;
    }
    return s.p;
  }
  run(fn: string, args: readonly number[], rows: number, scratchBytes: number, rowTile: number): void {
    const tiles = Math.ceil(rows / rowTile);
    // one thread: the whole range in one call (no chunk to balance)
    const chunk = Math.ceil(tiles / (this.threads === 1 ? 1 : this.threads * CHUNKS_PER_THREAD)) * rowTile;
    const chunks = Math.ceil(rows / chunk);
    const fi = NAMES.indexOf(fn);
    if (fi < 0) throw new Error(`internal: kernel ${fn} is not in the pool's table`);
    const started: [Int32Array, number][] = [];
    const poll = this.cooldown > 0 ? 0 : this.pollMicros;
    if (this.cooldown > 0) this.cooldown--;
    Atomics.store(this.next, 0, 0);
    for (let t = 1; t < Math.min(this.threads, chunks); t++) {
      const c = this.ctls[t - 1]!;
      c[CTL.fn] = fi;
      c[CTL.poll] = poll;
      c[CTL.units] = rows;
      c[CTL.chunk] = chunk;
      c[CTL.argc] = args.length + 1;
      c.set(args, CTL.args);
      c[CTL.args + args.length] = this.scratchOf(t, scratchBytes);
      const seq = (c[CTL.seq]! + 1) | 0;
      Atomics.store(c, CTL.seq, seq);
      Atomics.notify(c, CTL.seq);
      started.push([c, seq]);
    }
    const f = this.exports[fn] as (...a: number[]) => void;
    let failed = false;
    let slept = false;
    try {
      runChunks(f, args, rows, chunk, this.scratchOf(0, scratchBytes), this.next);
    } finally {
      // every started worker has left the call before the next one resets the counter
      for (const [c, seq] of started) {
        for (;;) {
          const d = Atomics.load(c, CTL.done);
          if (d === seq || pollWhile(c, CTL.done, d, poll) === seq) break;
          slept = true;
          Atomics.wait(c, CTL.done, d, 1000);
        }
        if (c[CTL.err]) failed = true;
      }
    }
    if (slept && poll > 0) this.cooldown = COOLDOWN_CALLS;
    if (failed)
      throw new MixqError(`kernel ${fn} failed on a worker thread`, { source: 'kernel pool', field: fn });
  }
}

/** A kernel context whose products run on several threads. */
export class KernelPool extends KernelContext {
  private readonly workers: Worker[];
  private readonly ctls: Int32Array[];
  constructor(
    memory: KernelMemory,
    exports: KernelExports,
    variant: 'simd128' | 'relaxed',
    workers: Worker[],
    ctls: Int32Array[],
    next: Int32Array,
    pollMicros = DEFAULT_POLL_US,
  ) {
    super(memory, exports, variant, new PoolExecutor(memory, exports, ctls, next, Math.round(pollMicros)));
    this.workers = workers;
    this.ctls = ctls;
  }
  /** Threads the next products use: 1 .. the pool's size (the others stay idle). */
  useThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > this.workers.length + 1)
      throw new MixqError(`threads ${n}`, {
        source: 'kernel pool',
        field: 'threads',
        expected: `1..${this.workers.length + 1}`,
      });
    (this.executor as PoolExecutor).threads = n;
  }

  /** Microseconds waiting threads poll before they sleep (KernelPoolOptions.pollMicros). */
  usePolling(micros: number): void {
    checkPollMicros(micros);
    (this.executor as PoolExecutor).setPolling(micros);
  }

  /** Runs read_rows over `rows` rows of `rowBytes` from `base` on the active threads (memory bandwidth). */
  readRows(base: number, rowBytes: number, rows: number): void {
    this.executor.run('read_rows', [base, rowBytes], rows, 0, 1);
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    const exits = this.workers.map((w) => {
      w.ref(); // keep the process alive until the workers have gone
      return new Promise<void>((res) => w.once('exit', () => res()));
    });
    for (const c of this.ctls) {
      c[CTL.fn] = -1;
      Atomics.store(c, CTL.seq, (c[CTL.seq]! + 1) | 0);
      Atomics.notify(c, CTL.seq);
    }
    await Promise.all(exits);
  }
}

function checkPollMicros(micros: number): void {
  if (!Number.isFinite(micros) || micros < 0 || micros > 1e6)
    throw new MixqError(`pollMicros ${micros}`, {
      source: 'kernel pool',
      field: 'pollMicros',
      expected: '0..1000000 microseconds',
    });
}

/** A kernel context on `threads` threads (the calling thread and threads - 1 workers). */
export async function createKernelPool(opts: KernelPoolOptions = {}): Promise<KernelPool> {
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256)
    throw new MixqError(`threads ${threads}`, {
      source: 'kernel pool',
      field: 'threads',
      expected: '1..256',
    });
  if (opts.pollMicros !== undefined) checkPollMicros(opts.pollMicros);
  const variant = chooseVariant(opts.relaxed);
  const module = await compileKernelModule(`mt-${variant}`, MT.LOAD[variant]);
  const memory = new KernelMemory({
    shared: true,
    base: heapBase(module, true),
    ...(opts.maxMemoryBytes !== undefined ? { maxBytes: opts.maxMemoryBytes } : {}),
  });
  const inst = new WebAssembly.Instance(module, { env: { memory: memory.memory } });
  const ctls: Int32Array[] = [];
  const next = memory.calloc(4);
  const workers = await startReadyWorkers(threads - 1, './pool-worker.node', import.meta.url, () => {
    const ctl = memory.calloc(CTL.bytes);
    const stack = memory.alloc(STACK_BYTES);
    ctls.push(new Int32Array(memory.memory.buffer, ctl, CTL.words));
    return { module, memory: memory.memory, ctl, next, names: NAMES, stackTop: stack + STACK_BYTES };
  });
  return new KernelPool(
    memory,
    inst.exports as unknown as KernelExports,
    variant,
    workers,
    ctls,
    new Int32Array(memory.memory.buffer, next, 1),
    opts.pollMicros,
  );
}

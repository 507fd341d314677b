/**
 * A MatrixEngine (src/quant/matrix/engine.ts) whose task parts run on worker threads: one shared
 * WebAssembly memory, the shared-memory build of the kernels instantiated on every thread (each with its own
 * stack and scratch inside that memory), and a control block of atomics. `run` is synchronous: the calling
 * thread posts the task, takes parts itself like any worker, and blocks (Atomics.wait, allowed on Node's
 * main thread) until every part is done and every worker has seen the task. Parts are taken from a shared
 * counter in any order; since each part writes its own memory and the engine's tasks cut work by fixed
 * chunks, results are the same bytes for any thread count.
 *
 * Usage: `const pool = await createMatrixPool({ threads: 2 }); gptq(W, rows, cols, H, { ...cfg, engine:
 * pool }); await pool.close();` (workers are unref'd: an open pool does not keep the process alive).
 */
import { availableParallelism } from 'node:os';
import { MixqError } from '../core/errors.ts';
import { kernelMemory, type MatrixEngine, WasmArena } from '../quant/matrix/engine.ts';
import { instantiateKernels, STACK_BYTES, type ThreadContext, WORK_BYTES } from '../quant/matrix/kernels.ts';
import { runTaskPart, TASK_NAMES, type TaskName } from '../quant/matrix/tasks.ts';
import { WASM_SIMD128 as WASM_SHARED } from '../quant/wasm/matrix-mt.generated.ts';
import { startReadyWorkers } from '../core/worker-thread.node.ts';

/** Control block layout (Int32 slots, then float64 arguments, then an error message). */
export const CTRL = {
  GEN: 0,
  TASK: 1,
  PARTS: 2,
  NEXT: 3,
  DONE: 4,
  ACK: 5,
  ERR: 6,
  QUIT: 7,
  NARGS: 8,
  ERRLEN: 9,
  ARGS_BYTE: 256,
  MAX_ARGS: 96,
  ERR_BYTE: 1024,
  ERR_BYTES: 3072,
  BYTES: 4096,
} as const;

export interface MatrixPool extends MatrixEngine {
  /** Stops the workers. */
  close(): Promise<void>;
}

/** What a worker gets at start. */
export interface MatrixWorkerData {
  readonly ctrl: SharedArrayBuffer;
  readonly memory: WebAssembly.Memory;
  readonly stackTop: number;
  readonly work: number;
}

/** Takes parts of the posted task until none is left (every thread, the caller included, runs this). */
export function takeParts(ctx: ThreadContext, ctrlBuf: SharedArrayBuffer): void {
  const ctrl = new Int32Array(ctrlBuf);
  const name = TASK_NAMES[ctrl[CTRL.TASK]!]!;
  const parts = ctrl[CTRL.PARTS]!;
  const args = new Float64Array(ctrlBuf, CTRL.ARGS_BYTE, ctrl[CTRL.NARGS]!).slice();
  for (;;) {
    const p = Atomics.add(ctrl, CTRL.NEXT, 1);
    if (p >= parts) break;
    try {
      if (Atomics.load(ctrl, CTRL.ERR) === 0) runTaskPart(ctx, name, args, p);
    } catch (e) {
      if (Atomics.compareExchange(ctrl, CTRL.ERR, 0, 1) === 0) {
        const msg = new TextEncoder()
          .encode(e instanceof Error ? e.message : String(e))
          .slice(0, CTRL.ERR_BYTES);
        new Uint8Array(ctrlBuf, CTRL.ERR_BYTE, msg.length).set(msg);
        ctrl[CTRL.ERRLEN] = msg.length;
      }
    }
    if (Atomics.add(ctrl, CTRL.DONE, 1) + 1 === parts) Atomics.notify(ctrl, CTRL.DONE);
  }
}

/** A worker that makes no progress for this long is taken for dead (a part runs for seconds at most). */
const STALL_MS = 300_000;

/** Blocks until ctrl[slot] reaches `target`; a stall (a worker that died) raises instead of hanging. */
function waitFor(ctrl: Int32Array, slot: number, target: number, task: string): void {
  for (let v; (v = Atomics.load(ctrl, slot)) < target;) {
    if (Atomics.wait(ctrl, slot, v, STALL_MS) === 'timed-out' && Atomics.load(ctrl, slot) === v)
      throw new MixqError(`no progress for ${STALL_MS / 1000} s: a matrix worker stopped`, { field: task });
  }
}

/** Workers by default: the machine's parallelism. */
export function defaultMatrixThreads(): number {
  return Math.max(1, availableParallelism());
}

/**
 * Starts a pool of `threads` threads in all (the caller's thread is one of them, so threads - 1 workers).
 * threads = 1 gives an engine on shared memory without workers.
 */
export async function createMatrixPool(opts: { threads?: number } = {}): Promise<MatrixPool> {
  const threads = opts.threads ?? defaultMatrixThreads();
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256))
    throw new MixqError('bad thread count', { field: 'threads', expected: '1..256' });
  const memory = kernelMemory(64, true);
  const { kernels, heapBase } = instantiateKernels(memory, WASM_SHARED);
  const arena = new WasmArena(memory, heapBase);
  const main: ThreadContext = { kernels, memory, work: arena.alloc(WORK_BYTES) };
  const ctrlBuf = new SharedArrayBuffer(CTRL.BYTES);
  const ctrl = new Int32Array(ctrlBuf);
  const workers = await startReadyWorkers(threads - 1, './matrix-worker.node', import.meta.url, () => {
    const stack = arena.alloc(STACK_BYTES);
    const data: MatrixWorkerData = {
      ctrl: ctrlBuf,
      memory,
      stackTop: stack + STACK_BYTES,
      work: arena.alloc(WORK_BYTES),
    };
    return data;
  });
  let closed = false;
  return {
    threads,
    main,
    arena,
    run(name: TaskName, args: readonly number[], parts: number) {
      if (closed) throw new MixqError('the matrix pool is closed');
      if (parts <= 0) return;
      if (args.length > CTRL.MAX_ARGS) throw new MixqError('too many task arguments', { field: name });
      new Float64Array(ctrlBuf, CTRL.ARGS_BYTE, args.length).set(args);
      ctrl[CTRL.NARGS] = args.length;
      ctrl[CTRL.TASK] = TASK_NAMES.indexOf(name);
      ctrl[CTRL.PARTS] = parts;
      ctrl[CTRL.NEXT] = 0;
      ctrl[CTRL.DONE] = 0;
      ctrl[CTRL.ACK] = 0;
      ctrl[CTRL.ERR] = 0;
      Atomics.add(ctrl, CTRL.GEN, 1);
      Atomics.notify(ctrl, CTRL.GEN);
      takeParts(main, ctrlBuf);
      waitFor(ctrl, CTRL.DONE, parts, name);
      waitFor(ctrl, CTRL.ACK, workers.length, name);
      if (ctrl[CTRL.ERR]) {
        const msg = new TextDecoder().decode(
          new Uint8Array(ctrlBuf, CTRL.ERR_BYTE, ctrl[CTRL.ERRLEN]!).slice(),
        );
        throw new MixqError(msg, { source: 'matrix worker', field: name });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      ctrl[CTRL.QUIT] = 1;
      Atomics.add(ctrl, CTRL.GEN, 1);
      Atomics.notify(ctrl, CTRL.GEN);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

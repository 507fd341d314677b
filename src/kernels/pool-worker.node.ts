/**
 * A kernel worker thread (pool.node.ts): instantiates the threaded kernel module over the pool's shared
 * memory with its own C stack, then waits on its control block for calls. Control block (int32 words):
 * [0] sequence number of the current call, [1] sequence number done, [2] function index (-1: exit),
 * [3] argument count, [4] error flag, [5] microseconds to poll for the next call before sleeping,
 * [6] units of the call, [7] units per chunk, [8..24) arguments (the last one this thread's scratch). The
 * thread claims chunks from the pool's shared counter (`next`, pool-control.ts runChunks) until none is left.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CTL, pollWhile, runChunks } from './pool-control.ts';

interface Init {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly ctl: number;
  readonly next: number;
  readonly names: readonly string[];
  readonly stackTop: number;
}

const init = workerData as Init;
const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
(inst.exports.__stack_pointer as WebAssembly.Global).value = init.stackTop;
const fns = init.names.map((n) => inst.exports[n] as (...a: number[]) => void);
const c = new Int32Array(init.memory.buffer, init.ctl, CTL.words);
const next = new Int32Array(init.memory.buffer, init.next, 1);
parentPort!.postMessage('ready');
let last = 0;
for (;;) {
  if (pollWhile(c, CTL.seq, last, c[CTL.poll]!) === last) Atomics.wait(c, CTL.seq, last);
  const seq = Atomics.load(c, CTL.seq);
  if (seq === last) continue;
  last = seq;
  const f = c[CTL.fn]!;
  if (f < 0) break;
  const args = Array.from(c.subarray(CTL.args, CTL.args + c[CTL.argc]!));
  const scratch = args.pop()!;
  try {
    runChunks(fns[f]!, args, c[CTL.units]!, c[CTL.chunk]!, scratch, next);
    c[CTL.err] = 0;
  } catch (e) {
    c[CTL.err] = 1;
    parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
  Atomics.store(c, CTL.done, seq);
  Atomics.notify(c, CTL.done);
}

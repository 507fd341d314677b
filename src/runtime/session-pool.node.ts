/**
 * Evaluation on several cores with the same numbers: a `ModelRunner` backed by a small pool of worker
 * threads, each holding one deterministic single-threaded session of the same model (ort.node.ts).
 *
 * onnxruntime-node runs a session synchronously on the thread that calls `run` (its promise only defers
 * the call), so two sessions on one thread never overlap; sessions in worker threads do. Each run is
 * executed whole by one session with the same options, so its outputs are bit-identical to a run on a
 * session of the main thread; the evaluators (eval-ocr, eval-lm, fidelity) keep `runner.concurrency` runs
 * in flight and consume the results in input order (`forEachInOrder`), so every sum they form is formed in
 * the same order as on one session.
 *
 * A pool is opened per model (per evaluation) and must be released (`release`, or `withEvalRunner`): that
 * releases its sessions. The worker threads themselves are kept for the next pool (starting one costs
 * about half a second of loading from sources), unref'd so that they never keep the process alive, and
 * end after IDLE_MS without a pool.
 */
import type { Worker } from 'node:worker_threads';
import { MixqError } from '../core/errors.ts';
import {
  fromWire,
  openSession,
  type OrtSession,
  type OrtTensor,
  toWire,
  type WireTensor,
} from './ort.node.ts';
import { describeInputs, type ModelRunner, sessionRunner } from './runner.node.ts';
import { defaultPoolSize } from './sensitivity-pool.node.ts';
import { startModuleWorker } from '../core/worker-thread.node.ts';

export type WorkerRequest =
  | { kind: 'open'; model: string | Uint8Array }
  | { kind: 'run'; id: number; feeds: Record<string, WireTensor>; outputs: string[] }
  | { kind: 'release' };

export type WorkerReply =
  | {
      kind: 'ready';
      inputNames: readonly string[];
      outputNames: readonly string[];
      inputMetadata: OrtSession['inputMetadata'];
    }
  | { kind: 'failed'; error: string }
  | { kind: 'result'; id: number; outputs?: Record<string, WireTensor>; error?: string }
  | { kind: 'released' };

/** A runner that must be released when the evaluation is done. */
export interface EvalRunner extends ModelRunner {
  release(): Promise<void>;
}

/** Runs queued per worker: one running, one waiting, so a worker never waits for the main thread. */
const DEPTH = 2;
/** A worker without a pool for this long ends. */
const IDLE_MS = 30_000;

/** Sessions used by default: the cores up to 4 (defaultPoolSize); 0 (one session on this thread) on one core. */
export function defaultEvalSessions(): number {
  return defaultPoolSize();
}

// ------------------------------------------------------------------------------------- worker threads

/** A worker thread and the pool that currently uses it (none while parked). */
interface Thread {
  readonly worker: Worker;
  owner?: { message(m: WorkerReply): void; died(e: Error): void };
  dead?: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

const parked: Thread[] = [];

function spawnThread(): Thread {
  const worker = startModuleWorker('./session-worker.node', import.meta.url);
  const t: Thread = { worker };
  const died = (e: Error): void => {
    if (t.dead) return;
    t.dead = true;
    clearTimeout(t.timer);
    const i = parked.indexOf(t);
    if (i >= 0) parked.splice(i, 1);
    t.owner?.died(e);
  };
  worker.on('message', (m: WorkerReply) => t.owner?.message(m));
  worker.on('error', died);
  worker.on('exit', (code) => died(new MixqError(`an evaluation session worker exited with code ${code}`)));
  return t;
}

function takeThread(): Thread {
  for (let t = parked.pop(); t; t = parked.pop()) {
    clearTimeout(t.timer);
    if (!t.dead) return t;
  }
  return spawnThread();
}

/** Back to the parked threads (its session released): unref'd, ended after IDLE_MS. */
function park(t: Thread): void {
  t.owner = undefined;
  if (t.dead) return;
  t.worker.unref();
  t.timer = setTimeout(() => {
    const i = parked.indexOf(t);
    if (i >= 0) parked.splice(i, 1);
    void t.worker.terminate();
  }, IDLE_MS);
  t.timer.unref();
  parked.push(t);
}

/** End the parked worker threads now (they also end by themselves after IDLE_MS, and never hold the process). */
export async function closeIdleEvalWorkers(): Promise<void> {
  const ts = parked.splice(0);
  for (const t of ts) clearTimeout(t.timer);
  await Promise.all(ts.map((t) => t.worker.terminate()));
}

// ------------------------------------------------------------------------------------------ the pool

interface Pending {
  readonly id: number;
  readonly msg: WorkerRequest;
  readonly resolve: (r: Record<string, OrtTensor>) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  readonly thread: Thread;
  readonly running: Map<number, Pending>;
  /** Set while the pool waits for the worker to release its session. */
  released?: () => void;
}

/**
 * Open `size` (>= 1) worker sessions of `model` (a path, external data resolved next to it, or
 * self-contained bytes). Runs go to the least busy worker; `concurrency` is how many the caller should keep
 * in flight.
 */
export async function openRunnerPool(model: string | Uint8Array, size: number): Promise<EvalRunner> {
  if (!(size >= 1)) throw new MixqError('a session pool needs at least one session', { expected: '>= 1' });
  const slots: Slot[] = [];
  const queue: Pending[] = [];
  let nextId = 0;
  let closed: Error | undefined;
  let failed = false; // a worker died: the pool's threads are ended, not parked
  // a worker holds the process open only while it has work (an idle pool left open does not hang it)
  const busy = (s: Slot): void => {
    if (s.running.size > 0 || s.released) s.thread.worker.ref();
    else s.thread.worker.unref();
  };
  const pump = (): void => {
    while (queue.length > 0) {
      let best: Slot | undefined;
      for (const s of slots)
        if (s.running.size < DEPTH && (!best || s.running.size < best.running.size)) best = s;
      if (!best) return;
      const p = queue.shift()!;
      best.running.set(p.id, p);
      busy(best);
      best.thread.worker.postMessage(p.msg);
    }
  };
  // rejects every run not yet answered; later answers are dropped
  const close = (e: Error): void => {
    if (closed) return;
    closed = e;
    for (const s of slots) {
      for (const p of s.running.values()) p.reject(e);
      s.running.clear();
    }
    for (const p of queue.splice(0)) p.reject(e);
  };
  // a worker that fails takes the pool down: none waits forever
  const broken = (e: Error): void => {
    close(e);
    failed = true;
    for (const s of slots) {
      s.released?.();
      void s.thread.worker.terminate();
    }
  };
  let meta: Extract<WorkerReply, { kind: 'ready' }> | undefined;
  const ready: Promise<void>[] = [];
  for (let i = 0; i < size; i++) {
    const slot: Slot = { thread: takeThread(), running: new Map() };
    slots.push(slot);
    ready.push(
      new Promise<void>((resolve, reject) => {
        slot.thread.owner = {
          message(m) {
            if (m.kind === 'ready') {
              meta ??= m;
              busy(slot);
              resolve();
            } else if (m.kind === 'failed') {
              reject(new MixqError(m.error, { source: typeof model === 'string' ? model : '<bytes>' }));
            } else if (m.kind === 'result') {
              const p = slot.running.get(m.id);
              slot.running.delete(m.id);
              busy(slot);
              if (p) {
                if (m.error !== undefined) p.reject(new MixqError(m.error, { source: 'evaluation session' }));
                else p.resolve(fromWire(m.outputs!));
              }
              pump();
            } else if (m.kind === 'released') {
              slot.released?.();
            }
          },
          died(e) {
            reject(e);
            broken(e);
          },
        };
        slot.thread.worker.ref();
        slot.thread.worker.postMessage({ kind: 'open', model } satisfies WorkerRequest);
      }),
    );
  }
  let releasing: Promise<void> | undefined;
  // each worker releases its session after the run it is in; then the threads are parked for reuse
  const release = (): Promise<void> =>
    (releasing ??= (async () => {
      close(new MixqError('the evaluation session pool was released'));
      if (!failed)
        await Promise.all(
          slots.map(
            (s) =>
              new Promise<void>((resolve) => {
                s.released = resolve;
                busy(s);
                s.thread.worker.postMessage({ kind: 'release' } satisfies WorkerRequest);
              }),
          ),
        );
      if (failed) await Promise.all(slots.map((s) => s.thread.worker.terminate()));
      else for (const s of slots) park(s.thread);
    })());
  try {
    await Promise.all(ready);
  } catch (e) {
    await release();
    throw e;
  }
  const m = meta!;
  return {
    inputNames: m.inputNames,
    outputNames: m.outputNames,
    inputMetadata: describeInputs(m),
    concurrency: size * DEPTH,
    run(feeds, outputs) {
      if (closed) return Promise.reject(closed);
      return new Promise((resolve, reject) => {
        const id = nextId++;
        const msg: WorkerRequest = {
          kind: 'run',
          id,
          feeds: toWire(feeds),
          outputs: [...(outputs ?? m.outputNames)],
        };
        queue.push({ id, msg, resolve, reject });
        pump();
      });
    },
    release,
  };
}

/**
 * A runner for an evaluation: a pool of `sessions` worker sessions (default defaultEvalSessions()), or
 * with 0 one session on this thread. Release it when done.
 */
export async function openEvalRunner(
  model: string | Uint8Array,
  sessions: number = defaultEvalSessions(),
): Promise<EvalRunner> {
  if (sessions >= 1) return openRunnerPool(model, sessions);
  const session = await openSession(model);
  return { ...sessionRunner(session), release: () => session.release() };
}

/** Run `evaluate` on an evaluation runner of `model` and release it (also when `evaluate` throws). */
export async function withEvalRunner<T>(
  model: string | Uint8Array,
  evaluate: (runner: ModelRunner) => Promise<T>,
  sessions?: number,
): Promise<T> {
  const runner = await openEvalRunner(model, sessions);
  try {
    return await evaluate(runner);
  } finally {
    await runner.release();
  }
}

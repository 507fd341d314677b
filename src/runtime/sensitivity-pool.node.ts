/**
 * A pool of worker threads that score (weight, candidate) jobs (src/analysis/sensitivity/score.ts): the
 * quantizers, GPTQ fits and proxies of the sensitivity analysis, which are pure JavaScript and dominate
 * its time. Jobs are taken in submission order by whichever worker is free; results are the same numbers
 * the inline path gives (the same functions on the same inputs). A weight's matrix and statistics are
 * copied once into shared memory (shareWeight), so a job message carries no large array.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { LayerStats } from '../analysis/sensitivity/proxies.ts';
import type { ScoredCandidate, ScoreJob } from '../analysis/sensitivity/score.ts';
import { schemeId } from '../analysis/sensitivity/candidates.ts';
import { MixqError } from '../core/errors.ts';
import { startModuleWorker } from '../core/worker-thread.node.ts';

export interface ScorePool {
  readonly size: number;
  score(job: ScoreJob): Promise<ScoredCandidate | undefined>;
  /** Terminates the workers (pending jobs are rejected). */
  close(): Promise<void>;
}

/** Workers used by default: the machine's parallelism up to 4; 0 (inline) on one core. */
export function defaultPoolSize(): number {
  const n = Math.min(4, availableParallelism());
  return n > 1 ? n : 0;
}

function sharedCopy<T extends Float32Array | Float64Array>(x: T): T {
  const Ctor = x.constructor as new (b: SharedArrayBuffer) => T;
  const y = new Ctor(new SharedArrayBuffer(x.byteLength));
  y.set(x);
  return y;
}

const shared64 = (x: ArrayLike<number>): Float64Array =>
  x instanceof Float64Array ? sharedCopy(x) : sharedCopy(Float64Array.from(x));

function shareStats(s: LayerStats): LayerStats {
  return {
    channels: s.channels,
    meanSquare: shared64(s.meanSquare),
    ...(s.mean ? { mean: shared64(s.mean) } : {}),
    ...(s.gram ? { gram: shared64(s.gram) } : {}),
  };
}

type JobParts = Pick<ScoreJob, 'W' | 'st' | 'folds' | 'scoring'>;

/** A weight's matrix and statistics in shared memory (each distinct statistics object once), for many jobs without copies. */
export function shareWeight(parts: JobParts): JobParts {
  const copies = new Map<LayerStats, LayerStats>();
  const share = (s: LayerStats): LayerStats => {
    let c = copies.get(s);
    if (!c) copies.set(s, (c = shareStats(s)));
    return c;
  };
  const pair = (f: readonly [LayerStats, LayerStats] | undefined) =>
    f ? ({ folds: [share(f[0]), share(f[1])] } as const) : {};
  return {
    W: sharedCopy(parts.W),
    st: share(parts.st),
    ...pair(parts.folds),
    scoring: { st: share(parts.scoring.st), ...pair(parts.scoring.folds) },
  };
}

interface Pending {
  readonly id: number;
  readonly job: ScoreJob;
  readonly resolve: (r: ScoredCandidate | undefined) => void;
  readonly reject: (e: Error) => void;
}

type Reply = { id: number; result?: ScoredCandidate; error?: string };

/** Starts `size` workers (>= 1). */
export function createScorePool(size: number): ScorePool {
  const queue: Pending[] = [];
  const running = new Map<Worker, Pending>();
  const idle: Worker[] = [];
  let nextId = 0;
  let closed = false;
  const pump = (): void => {
    while (idle.length > 0 && queue.length > 0) {
      const w = idle.pop()!;
      const p = queue.shift()!;
      running.set(w, p);
      w.postMessage({ id: p.id, job: p.job });
    }
  };
  // a worker that fails takes the pool down: every pending job is rejected, none waits forever
  const broken = (e: Error): void => {
    if (closed) return;
    closed = true;
    for (const p of [...running.values(), ...queue.splice(0)]) p.reject(e);
    running.clear();
    for (const w of workers) void w.terminate();
  };
  const workers: Worker[] = [];
  for (let i = 0; i < size; i++) {
    const w = startModuleWorker('./sensitivity-worker.node', import.meta.url);
    w.on('message', (m: Reply) => {
      const p = running.get(w);
      running.delete(w);
      idle.push(w);
      if (p && m.id === p.id) {
        if (m.error !== undefined)
          p.reject(new MixqError(m.error, { source: 'sensitivity worker', field: schemeId(p.job.scheme) }));
        else p.resolve(m.result);
      }
      pump();
    });
    w.on('error', (e) => broken(e));
    w.on('exit', (code) => broken(new MixqError(`a sensitivity worker exited with code ${code}`)));
    idle.push(w);
    workers.push(w);
  }
  return {
    size,
    score(job) {
      if (closed) return Promise.reject(new MixqError('the sensitivity pool is closed'));
      return new Promise((resolve, reject) => {
        queue.push({ id: nextId++, job, resolve, reject });
        pump();
      });
    },
    async close() {
      broken(new MixqError('the sensitivity pool was closed'));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

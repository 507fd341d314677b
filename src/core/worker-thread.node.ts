/**
 * Starting a worker thread on one of mixq's own modules, from the compiled `dist/` (a `.js` file) or from
 * sources under tsx (a `.ts` file). Node 20 does not pass `--import` hooks on to workers, so from sources
 * the worker registers tsx's loader itself before importing the module.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker running the module `stem` (e.g. './session-worker.node', without extension) resolved next to
 * `base` (the caller's import.meta.url), with the caller's own extension. `options` (workerData, ...) go
 * to the Worker.
 */
export function startModuleWorker(stem: string, base: string, options: WorkerOptions = {}): Worker {
  const ts = base.endsWith('.ts');
  const url = new URL(`${stem}${ts ? '.ts' : '.js'}`, base);
  if (!ts) return new Worker(url, options);
  return new Worker(
    `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
      `.then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`,
    { ...options, eval: true },
  );
}

/**
 * Starts `count` workers of the module `stem` next to `base` (workerData of worker i: `dataOf(i)`), each of
 * which posts one message once it is ready, and resolves when all are, unref'd (an idle team does not keep
 * the process alive). If one fails to start, every worker is terminated and its error raised. The
 * start-up of mixq's worker-thread teams over shared WebAssembly memory (kernels/pool.node.ts,
 * runtime/matrix-pool.node.ts).
 */
export async function startReadyWorkers(
  count: number,
  stem: string,
  base: string,
  dataOf: (i: number) => unknown,
): Promise<Worker[]> {
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const w = startModuleWorker(stem, base, { workerData: dataOf(i) });
    workers.push(w);
    ready.push(
      new Promise((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
        w.once('exit', (code) =>
          reject(new Error(`a worker (${stem}) exited with code ${code} while starting`)),
        );
      }),
    );
  }
  try {
    await Promise.all(ready);
  } catch (e) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }
  for (const w of workers) {
    w.removeAllListeners('exit');
    w.unref();
  }
  return workers;
}

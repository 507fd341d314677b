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

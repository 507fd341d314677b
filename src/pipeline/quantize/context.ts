/**
 * What every stage of a `mixq quantize` run shares: the task, the loaded model (read and parsed once,
 * model.node.ts), the output target (targets.ts), the matrix engine GPTQ and AWQ run on, and the run's
 * log, progress and step timings.
 */
import { inlineEngine, type MatrixEngine } from '../../quant/matrix/engine.ts';
import type { Scheme } from '../../quant/scheme.ts';
import { createMatrixPool, defaultMatrixThreads } from '../../runtime/matrix-pool.node.ts';
import type { LoadedModel } from '../model.node.ts';
import type { QuantTask } from '../tasks.node.ts';
import type { OutputTarget } from './targets.ts';

export interface RunContext {
  readonly task: QuantTask;
  readonly model: LoadedModel;
  readonly target: OutputTarget;
  /**
   * Where GPTQ and AWQ do their dense work (simulated weights of plans, baselines, the written file): a
   * worker-thread matrix pool when the candidates hold such schemes, else one thread. Same bytes either way.
   */
  readonly matrix: MatrixEngine;
  readonly log: (line: string) => void;
  readonly progress: (step: string, done: number, total: number) => void;
  /** Closes the current step: its time since the previous lap goes into `timings` under `step`. */
  lap(step: string): void;
  /** Milliseconds since the previous lap. */
  sinceLap(): number;
  readonly timings: readonly { readonly step: string; readonly ms: number }[];
}

export function runContext(
  task: QuantTask,
  model: LoadedModel,
  target: OutputTarget,
  log: (line: string) => void,
  progress: (step: string, done: number, total: number) => void,
  start = performance.now(),
  matrix: MatrixEngine = inlineEngine(),
): RunContext {
  const timings: { step: string; ms: number }[] = [];
  let t0 = start;
  return {
    task,
    model,
    target,
    matrix,
    log,
    progress,
    timings,
    lap(step) {
      const t = performance.now();
      timings.push({ step, ms: t - t0 });
      t0 = t;
    },
    sinceLap: () => performance.now() - t0,
  };
}

/** A matrix engine for a run and how to release it. */
export interface RunMatrixEngine {
  readonly engine: MatrixEngine;
  close(): Promise<void>;
}

/**
 * The matrix engine of a run over `schemes`: a worker-thread pool of `threads` (default: the machine's
 * parallelism) when some scheme runs GPTQ or AWQ and more than one thread is asked, else the one-thread
 * engine. Results are the same bytes for any thread count (the engine's tasks cut work by fixed chunks).
 */
export async function openMatrixEngine(
  schemes: readonly Scheme[],
  threads = defaultMatrixThreads(),
): Promise<RunMatrixEngine> {
  const dense = schemes.some(
    (s) => s.blockType === undefined && (s.algorithm === 'gptq' || s.algorithm === 'awq'),
  );
  if (!dense || threads <= 1) return { engine: inlineEngine(), close: async () => {} };
  const pool = await createMatrixPool({ threads });
  return { engine: pool, close: () => pool.close() };
}

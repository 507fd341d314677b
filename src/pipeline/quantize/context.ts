/**
 * What every stage of a `mixq quantize` run shares: the task, the loaded model (read and parsed once,
 * model.node.ts), the output target (targets.ts), and the run's log, progress and step timings.
 */
import type { LoadedModel } from '../model.node.ts';
import type { QuantTask } from '../tasks.node.ts';
import type { OutputTarget } from './targets.ts';

export interface RunContext {
  readonly task: QuantTask;
  readonly model: LoadedModel;
  readonly target: OutputTarget;
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
): RunContext {
  const timings: { step: string; ms: number }[] = [];
  let t0 = start;
  return {
    task,
    model,
    target,
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

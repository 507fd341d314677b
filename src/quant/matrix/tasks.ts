/**
 * The static table of tasks an engine runs in parts. Worker threads import this same table, so a task is
 * named by its key and gets only numbers (byte offsets into the shared memory, sizes, scalars).
 */
import {
  gptqColumnsPart,
  gptqParamsPart,
  gptqPreparePart,
  gptqScatterPart,
  gptqTransposePart,
} from '../algorithms/gptq-steps.ts';
import { gemmPart } from './gemm.ts';
import { symUpperPart } from './gram.ts';
import type { ThreadContext } from './kernels.ts';

type TaskFn = (ctx: ThreadContext, args: ArrayLike<number>, part: number) => void;

const TASKS = {
  gemm: gemmPart,
  symUpper: symUpperPart,
  gptqPrepare: gptqPreparePart,
  gptqParams: gptqParamsPart,
  gptqColumns: gptqColumnsPart,
  gptqScatter: gptqScatterPart,
  gptqTranspose: gptqTransposePart,
} as const satisfies Record<string, TaskFn>;

export type TaskName = keyof typeof TASKS;

/** Task names in a fixed order (the worker pool sends the index). */
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

export function runTaskPart(ctx: ThreadContext, name: TaskName, args: ArrayLike<number>, part: number): void {
  TASKS[name](ctx, args, part);
}

/**
 * Stage 7, write: the output target's file for a plan, from the loaded model and the simulated weights,
 * and its check against the simulation (targets.ts verify). `mixq quantize` and `mixq apply` both end here.
 *
 *   takes  the output target, the WriteInput (model, task, plan, planned weights, corrected biases),
 *          whether to run a 'run' check and the simulation's metric
 *   gives  QuantizeOutput: the file, its notes and the check line (and the metric of a run)
 */
import type { OutputTarget } from './targets.ts';
import type { OutputFile, WriteInput } from './writers.node.ts';

export interface QuantizeOutput extends OutputFile {
  /** The task metric of the file run by onnxruntime ('run' checks). */
  readonly metric?: number;
  /** How the written file was checked against the simulation (undefined when not checked). */
  readonly check?: string;
}

export async function writeStage(
  target: OutputTarget,
  input: WriteInput,
  opts: { readonly run: boolean; readonly simulated?: number },
): Promise<QuantizeOutput | undefined> {
  if (!target.write) return undefined;
  const file = await target.write(input);
  const v = target.verify;
  if (!v || (v.kind === 'run' && !opts.run)) return file;
  const c = await v.check(file, input, opts.simulated);
  return { ...file, check: c.check, ...(c.metric !== undefined ? { metric: c.metric } : {}) };
}

/**
 * Stage 7, write: the output target's file for a plan, from the loaded model and the simulated weights,
 * and its check against the simulation (targets.ts verify). `mixq quantize` and `mixq apply` both end here.
 *
 *   takes  the output target, the WriteInput (model, task, plan, planned weights, corrected biases),
 *          whether to run a 'run' check and the simulation's metric
 *   gives  QuantizeOutput: the file, its notes and the check line (and the metric of a run)
 */
import type { OutputTarget } from './targets.ts';
import type { OutputCheck, OutputFile, WriteInput } from './writers.node.ts';

export interface QuantizeOutput extends OutputFile {
  /** The task metric of the file run in its runtime (onnxruntime, mixq's engine; 'run' checks). */
  readonly metric?: number;
  /** mixq's engine: measured decode ms per token, and of it the weight products. */
  readonly msPerToken?: number;
  readonly productsMsPerToken?: number;
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
  const checks: OutputCheck[] = [];
  if (v?.readBack) checks.push(await v.readBack(file, input));
  if (v?.run && opts.run) checks.push(await v.run(file, input, opts.simulated));
  if (checks.length === 0) return file;
  const ran = checks.find((c) => c.metric !== undefined);
  const speed = checks.find((c) => c.msPerToken !== undefined);
  return {
    ...file,
    check: checks.map((c) => c.check).join('; '),
    ...(ran ? { metric: ran.metric } : {}),
    ...(speed ? { msPerToken: speed.msPerToken, productsMsPerToken: speed.productsMsPerToken } : {}),
  };
}

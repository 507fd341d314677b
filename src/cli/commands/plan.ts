/**
 * `mixq plan [model] [--bits N | --size S | --max-loss P] [--out plan.json]`: sensitivity and allocation
 * only (no baselines, no model written); the plan file can be edited, then `mixq apply` builds the model.
 */
import { type CommandDef, defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../io/files.node.ts';
import { serialisePlan } from '../../plan/serialise.ts';
import { type QuantizeResult, quantizeModel } from '../../pipeline/quantize/index.ts';
import { failCli, usageExitCode } from '../errors.ts';
import { isGgufInput, runGgufPlan } from '../gguf-plan.ts';
import { progressBar, quantizeArgs, quantizeOptions, stderrLog } from '../quantize-args.ts';
import { jsonText } from '../json.ts';

const planCommand = defineCommand({
  meta: { name: 'plan', description: 'Write a mixed-precision plan (per-weight formats under a budget)' },
  args: {
    ...quantizeArgs,
    out: { type: 'string', description: 'plan file to write (default plan.json)' },
    imatrix: {
      type: 'string',
      description: 'GGUF input: importance matrix (imatrix.dat, GGUF or mixq JSON)',
    },
  },
  async run({ args }) {
    if (await isGgufInput(args.model)) return runGgufPlan(args);
    if (args.imatrix)
      failCli('plan', new MixqError('--imatrix is for GGUF inputs', { source: 'argument --imatrix' }), 2);
    let opts: ReturnType<typeof quantizeOptions>;
    try {
      opts = quantizeOptions(args);
    } catch (e) {
      failCli('plan', e, 2);
    }
    const json = Boolean(args.json);
    const bar = progressBar(!json);
    let r: QuantizeResult;
    try {
      r = await quantizeModel({
        ...opts,
        evaluation: { ...opts.evaluation, baselines: false, sweep: opts.evaluation?.sweep ?? [] },
        output: { ...opts.output, write: false },
        onProgress: bar.update,
        log: stderrLog(json),
      });
    } catch (e) {
      bar.stop();
      failCli('plan', e, usageExitCode(e));
    }
    bar.stop();
    const out = args.out ? String(args.out) : 'plan.json';
    try {
      await writeFileAtomic(out, serialisePlan(r.plan), [r.task.modelPath]);
    } catch (e) {
      failCli('plan', e, 1);
    }
    const t = r.plan.totals;
    if (json) {
      process.stdout.write(`${jsonText({ plan: out, totals: t, metric: r.metric, fp32: r.fp32 })}\n`);
      return;
    }
    const unit = r.task.metric.unit ?? '';
    process.stdout.write(
      `${r.plan.weights.length} weights, ${t.bitsPerWeight.toFixed(3)} bits per weight, ${t.bytes} bytes; ${r.task.metric.name} ${r.metric.toFixed(4)}${unit} (fp32 ${r.fp32.toFixed(4)}${unit})\nwrote ${out}\n`,
    );
  },
});

export default planCommand as unknown as CommandDef;

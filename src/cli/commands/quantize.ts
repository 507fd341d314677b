/**
 * `mixq quantize [model] [--bits N | --size S | --max-loss P] [--latency ms] [--out dir]
 * [--emit onnx|gguf|safetensors|runtime|none] ...`: the main job (src/pipeline/quantize/). A GGUF language model
 * ('stories' or a .gguf path) goes to its own job (src/cli/quantize-llm.ts, src/pipeline/llm/); a transformers.js
 * folder runs the main job with its language-model task (pipeline/lm-task.node.ts) and is written back as a
 * transformers.js folder. Writes into the output folder, atomically: the plan (plan.json), the report
 * (report.html, report.json) and, unless --emit none, the quantized model; prints the terminal summary, the
 * equal-size comparison (a language model's KL / top-1 / perplexity rows) and the output's size.
 */
import { join } from 'node:path';
import { type CommandDef, defineCommand } from 'citty';
import { writeFileAtomic } from '../../io/files.node.ts';
import { concatBytes } from '../../io/gguf/write.ts';
import { serialisePlan } from '../../plan/serialise.ts';
import { type QuantizeResult, quantizeModel } from '../../pipeline/quantize/index.ts';
import { reportJson } from '../../report/json.ts';
import { formatBytes } from '../../report/summary.ts';
import { renderTerminalSummary } from '../../report/terminal.ts';
import type { LmEvalRow } from '../../pipeline/llm/evaluate.ts';
import { failCli, usageExitCode } from '../errors.ts';
import { progressBar, quantizeArgs, quantizeOptions, stderrLog } from '../quantize-args.ts';
import { MixqError } from '../../core/errors.ts';
import { jsonText } from '../json.ts';
import { isGgufLmModel, runQuantizeLlm } from '../quantize-llm.ts';
import { writeLmFolder } from '../../pipeline/lm-task.node.ts';

function comparisonTable(r: QuantizeResult): string {
  const unit = r.task.metric.unit ?? '';
  const f = (x: number) => `${x.toFixed(4)}${unit}`;
  const rows = r.comparisons.map((c) => {
    const ci = c.differenceCi;
    const noise = ci && ci[0] <= 0 && ci[1] >= 0;
    const diff = ci ? ` (mixq - baseline ${f(ci[0])}..${f(ci[1])}${noise ? ': within noise' : ''})` : '';
    const verdict = c.samePlan
      ? "the same plan (mixq's validation kept the uniform plan)"
      : `${c.better ? 'mixq better' : 'baseline better or equal'}${diff}`;
    return `  ${c.baseline.padEnd(28)} ${c.bitsPerWeight.toFixed(3).padStart(6)} b/w  ${f(c.baselineMetric).padStart(10)}  mixq ${f(c.mixqMetric).padStart(10)}  ${verdict}`;
  });
  return rows.length
    ? [`equal size, ${r.task.metric.name} (${r.task.metric.direction} is better):`, ...rows].join('\n')
    : '';
}

/** A language model's rows: fp32, mixq's plan, and each baseline beside mixq at its size (paired KL). */
function lmTable(r: QuantizeResult): string {
  const lm = r.lm!;
  const f = (x: number) => x.toPrecision(4);
  const row = (x: LmEvalRow) =>
    `  ${x.label.padEnd(56)} ${String(x.weightBytes).padStart(9)} B ${x.bitsPerWeight.toFixed(3).padStart(6)} b/w  KL ${f(x.kl).padStart(10)}  top-1 ${f(x.top1)}  ppl ${f(x.perplexity)}`;
  const lines = [
    `evaluation (${lm.input.windows} windows, ${lm.input.tokens} tokens): KL to fp32 (nats/token), top-1 agreement, perplexity; weight bytes`,
    row(lm.input),
    row(lm.mixq),
  ];
  for (const c of r.comparisons) {
    if (!c.lm) continue;
    lines.push(row(c.lm.baseline), row(c.lm.mixq));
    const ci = c.differenceCi;
    if (ci)
      lines.push(
        `    mixq - baseline KL: [${f(ci[0])}, ${f(ci[1])}] (95% paired) ${ci[1] < 0 ? 'mixq lower' : ci[0] > 0 ? 'baseline lower' : 'within noise'}`,
      );
  }
  return lines.join('\n');
}

const quantizeCommand = defineCommand({
  meta: {
    name: 'quantize',
    description:
      'Mixed-precision quantization: sensitivity, budgeted allocation, baselines, plan, report and the quantized model',
  },
  args: {
    ...quantizeArgs,
    out: { type: 'string', description: 'output folder (default mixq-out/<model>)' },
    baselines: {
      type: 'boolean',
      description: 'evaluate uniform baselines and the rule mix (default true)',
      default: true,
    },
    imatrix: {
      type: 'string',
      description:
        "a GGUF language model: your importance matrix (llama-imatrix's imatrix.dat or GGUF, or mixq JSON) instead of the one mixq computes on the calibration windows; --no-imatrix: none",
    },
    'imatrix-out': {
      type: 'string',
      description:
        "a GGUF language model: where to save the importance matrix ('.dat' legacy, '.json', else GGUF; default <out>/<model>-imatrix.gguf)",
    },
  },
  async run({ args }) {
    if (isGgufLmModel(args.model)) {
      await runQuantizeLlm(args as Record<string, unknown>);
      return;
    }
    let opts: ReturnType<typeof quantizeOptions>;
    try {
      for (const flag of ['imatrix', 'imatrix-out'] as const)
        if (args[flag] !== undefined)
          throw new MixqError(`--${flag} is for GGUF language models`, {
            source: `argument --${flag}`,
            expected: "a .gguf model, a Hugging Face folder or 'stories'",
          });
      opts = quantizeOptions(args);
    } catch (e) {
      failCli('quantize', e, 2);
    }
    const json = Boolean(args.json);
    const bar = progressBar(!json);
    const log = stderrLog(json);
    let r: QuantizeResult;
    try {
      r = await quantizeModel({
        ...opts,
        evaluation: { ...opts.evaluation, baselines: args.baselines !== false },
        onProgress: bar.update,
        log,
      });
    } catch (e) {
      bar.stop();
      failCli('quantize', e, usageExitCode(e));
    }
    bar.stop();
    const out = args.out ? String(args.out) : join('mixq-out', r.task.name.replace(/\.onnx$/, ''));
    const { renderHtmlReport } = await import('../../report/html.ts');
    const protect = [r.task.modelPath];
    const written: string[] = [];
    try {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(out, { recursive: true });
      const put = async (name: string, data: Uint8Array | string) => {
        await writeFileAtomic(join(out, name), data, protect);
        written.push(join(out, name));
      };
      await put('plan.json', serialisePlan(r.plan));
      await put('report.json', reportJson(r.report));
      await put('report.html', await renderHtmlReport(r.report));
      // a transformers.js folder in: the same layout out (load it with dtype 'fp32')
      if (r.output?.format === 'onnx' && r.task.lm)
        written.push(...(await writeLmFolder(r.task.lm.folder, out, r.output.chunks)));
      else if (r.output) await put(r.output.fileName, concatBytes(r.output.chunks));
    } catch (e) {
      failCli('quantize', e, 1);
    }
    const t = r.plan.totals;
    if (json) {
      process.stdout.write(
        `${jsonText({
          model: r.task.name,
          metric: r.task.metric,
          fp32: r.fp32,
          plan: {
            ...t,
            metric: r.metric,
            budget: r.plan.budget,
            solver: r.plan.solver,
            ...(r.plan.latency ? { latency: r.plan.latency } : {}),
          },
          comparisons: r.comparisons,
          ...(r.output
            ? {
                output: {
                  format: r.output.format,
                  file: r.output.fileName,
                  bytes: r.output.size,
                  ...(r.output.metric !== undefined ? { metric: r.output.metric } : {}),
                  check: r.output.check,
                  ...(r.output.msPerToken !== undefined
                    ? { msPerToken: r.output.msPerToken, productsMsPerToken: r.output.productsMsPerToken }
                    : {}),
                  notes: r.output.notes,
                },
              }
            : {}),
          files: written,
          timings: r.report.timings,
        })}\n`,
      );
      return;
    }
    process.stdout.write(
      renderTerminalSummary(r.report, {
        color: Boolean(process.stdout.isTTY),
        width: process.stdout.columns ?? 100,
      }),
    );
    const cmp = r.lm ? lmTable(r) : comparisonTable(r);
    if (cmp) process.stdout.write(`\n${cmp}\n`);
    const unit = r.task.metric.unit ?? '';
    process.stdout.write(
      `\nplan: ${t.bitsPerWeight.toFixed(3)} bits per weight over ${r.plan.weights.length} weights (${t.elements} elements), ${formatBytes(t.bytes)} of quantized weights; ${r.task.metric.name} ${r.metric.toFixed(4)}${unit} vs fp32 ${r.fp32.toFixed(4)}${unit}\n`,
    );
    const lat = r.plan.latency;
    if (lat)
      process.stdout.write(
        `speed in mixq's engine: predicted ${lat.predictedMsPerToken.toFixed(3)} ms/token of weight products${lat.maxMsPerToken !== undefined ? ` (bound ${lat.maxMsPerToken})` : ''}${r.output?.msPerToken !== undefined ? `; measured ${r.output.msPerToken.toFixed(3)} ms/token (${r.output.productsMsPerToken!.toFixed(3)} in weight products)` : ''}\n`,
      );
    if (r.output?.format === 'onnx' && r.task.lm)
      process.stdout.write(
        `model: ${out} (transformers.js folder; onnx/model.onnx ${formatBytes(r.output.size)}, load with dtype: 'fp32'); ${r.output.check ?? 'not checked'}\n`,
      );
    else if (r.output)
      process.stdout.write(
        `model: ${join(out, r.output.fileName)} ${formatBytes(r.output.size)} (float parts included); ${r.output.check ?? 'not checked'}\n`,
      );
    process.stdout.write(`wrote ${written.join(', ')}\n`);
  },
});

export default quantizeCommand as unknown as CommandDef;

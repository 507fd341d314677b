/**
 * `mixq w8a8 [model] [--smoothquant] [--alpha 0.5] [--clip minmax|percentile] [--out file] [--no-eval] [--json]`:
 * static weight + activation int8 (QDQ) ONNX for onnxruntime's integer kernels (src/runtime/w8a8.node.ts),
 * calibrated on the task's calibration data (the same probe `mixq quantize` calibrates on), then scored
 * against the fp32 file on the task's evaluation data. Output written atomically, never over the input.
 */
import { type CommandDef, defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../io/files.node.ts';
import { resolveTask } from '../../pipeline/tasks.node.ts';
import { formatBytes } from '../../report/summary.ts';
import { withEvalRunner } from '../../runtime/session-pool.node.ts';
import { exportW8A8, type W8A8Export } from '../../runtime/w8a8.node.ts';
import { loadWeightFedModel } from '../../runtime/weights.node.ts';
import { failCli, usageExitCode } from '../errors.ts';
import { jsonText } from '../json.ts';

function bad(field: string, value: string, expected: string): never {
  throw new MixqError(`bad value '${value}'`, { source: `argument --${field}`, expected });
}

const w8a8Command = defineCommand({
  meta: {
    name: 'w8a8',
    description: 'Write a static int8 weight + activation (QDQ) ONNX model calibrated on the task data',
  },
  args: {
    model: {
      type: 'positional',
      description: "'gpt' (default), 'ocr' or a path to an .onnx model",
      required: false,
    },
    smoothquant: {
      type: 'boolean',
      description: 'fold SmoothQuant scales into LayerNorms first',
      default: false,
    },
    alpha: { type: 'string', description: 'SmoothQuant migration strength (default 0.5)' },
    clip: { type: 'string', description: "activation range: 'minmax' (default) or 'percentile' (99.99)" },
    out: { type: 'string', description: 'output .onnx file (default <model>_w8a8.onnx)' },
    eval: { type: 'boolean', description: 'score fp32 and W8A8 on the evaluation data', default: true },
    json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
  },
  async run({ args }) {
    const model = args.model ? String(args.model) : 'gpt';
    let result: W8A8Export;
    let out: string;
    let metrics: { fp32: number; w8a8: number } | undefined;
    const task = (() => {
      try {
        return resolveTask(model);
      } catch (e) {
        return failCli('w8a8', e, usageExitCode(e));
      }
    })();
    try {
      const clip = args.clip ? String(args.clip) : 'minmax';
      if (clip !== 'minmax' && clip !== 'percentile') bad('clip', clip, "'minmax' or 'percentile'");
      let alpha = 0.5;
      if (args.alpha !== undefined) {
        alpha = Number(args.alpha);
        if (!(alpha >= 0 && alpha <= 1)) bad('alpha', String(args.alpha), 'a number in [0, 1]');
        if (!args.smoothquant) bad('alpha', String(args.alpha), '--alpha together with --smoothquant');
      }
      const fed = await loadWeightFedModel(task.modelPath);
      const { feeds } = await task.probe(fed);
      result = await exportW8A8(task.modelPath, feeds, {
        clip,
        ...(args.smoothquant ? { smoothQuant: { alpha } } : {}),
      });
      if (result.layers.length === 0)
        throw new MixqError('no MatMul with a constant weight to quantize', {
          source: task.modelPath,
          expected: 'a model with MatMul layers (Conv and Gemm are not W8A8-quantized yet)',
        });
      out = args.out ? String(args.out) : `${task.name.replace(/\.onnx$/i, '')}_w8a8.onnx`;
      await writeFileAtomic(out, result.bytes, [task.modelPath]);
      if (args.eval) {
        const fp32 = await withEvalRunner(task.modelPath, (r) => task.evaluate(r));
        const w8a8 = await withEvalRunner(result.bytes, (r) => task.evaluate(r));
        metrics = { fp32, w8a8 };
      }
    } catch (e) {
      failCli('w8a8', e, usageExitCode(e));
    }
    const unit = task.metric.unit ?? '';
    if (args.json) {
      process.stdout.write(
        `${jsonText({
          out,
          bytes: result.bytes.length,
          layers: result.layers.length,
          skipped: result.skipped,
          smoothed: result.smoothed.length,
          calibration: task.calibration,
          ...(metrics ? { metricName: task.metric.name, ...metrics } : {}),
          notes: result.notes,
        })}\n`,
      );
      return;
    }
    process.stdout.write(
      `wrote ${out}: ${formatBytes(result.bytes.length)}; ${result.layers.length} MatMuls with int8 weights and activations` +
        `${result.smoothed.length ? `, ${result.smoothed.length} smoothed` : ''}, ${result.skipped.length} left in float\n`,
    );
    if (metrics)
      process.stdout.write(
        `${task.metric.name}: fp32 ${metrics.fp32.toFixed(4)}${unit}, W8A8 ${metrics.w8a8.toFixed(4)}${unit} (${task.evaluation})\n`,
      );
    for (const n of result.notes) process.stdout.write(`note: ${n}\n`);
  },
});

export default w8a8Command as unknown as CommandDef;

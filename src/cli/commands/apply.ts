/**
 * `mixq apply <model> <plan.json> [--out file.onnx] [--eval] [--force]`: builds the quantized ONNX model a
 * plan describes (src/pipeline/apply.node.ts) and prints its size and bits per weight.
 */
import { readFile } from 'node:fs/promises';
import { type CommandDef, defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../io/files.node.ts';
import { parsePlan } from '../../plan/parse.ts';
import { type ApplyResult, applyPlan } from '../../pipeline/apply.node.ts';
import { taskModelPath } from '../../pipeline/tasks.node.ts';
import { quantizeArgs, taskData } from '../quantize-args.ts';
import { formatBytes } from '../../report/summary.ts';
import { failCli, usageExitCode } from '../errors.ts';
import { isGgufInput, runGgufApply } from '../gguf-plan.ts';
import { jsonText } from '../json.ts';

const applyCommand = defineCommand({
  meta: {
    name: 'apply',
    description: 'Apply a plan file to its model and write the quantized model (ONNX, GGUF or safetensors)',
  },
  args: {
    model: {
      type: 'positional',
      description: "'gpt', 'ocr', an .onnx model or a .gguf file",
      required: true,
    },
    plan: { type: 'positional', description: 'plan file (mixq plan / mixq quantize)', required: true },
    out: { type: 'string', description: 'output .onnx file (default <model>_q4.onnx in the current folder)' },
    eval: { type: 'boolean', description: "evaluate the written model on the task's data", default: false },
    calibration: {
      type: 'string',
      description:
        "gpt / ocr: calibration size (default: the plan's objective.calibration.size); an .onnx model: the folder of inputs the plan was made with (needed for GPTQ / bias-corrected plans)",
    },
    synthetic: quantizeArgs.synthetic,
    force: { type: 'boolean', description: 'apply even if the plan names another file', default: false },
    json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
    imatrix: { type: 'string', description: "GGUF input: the plan's importance matrix" },
    emit: {
      type: 'string',
      description:
        "output: 'onnx', 'onnx-native', 'gguf', 'safetensors' or 'runtime' (a mixq engine file; default: gguf for ggml block plans, else onnx when ONNX can store every scheme, else safetensors)",
    },
  },
  async run({ args }) {
    if (await isGgufInput(args.model)) return runGgufApply(args);
    if (args.imatrix)
      failCli('apply', new MixqError('--imatrix is for GGUF inputs', { source: 'argument --imatrix' }), 2);
    const emit = args.emit === undefined || args.emit === '' ? undefined : String(args.emit);
    const targets = ['onnx', 'onnx-native', 'gguf', 'safetensors', 'runtime'] as const;
    if (emit !== undefined && !(targets as readonly string[]).includes(emit))
      failCli(
        'apply',
        new MixqError(`bad value '${emit}'`, { source: 'argument --emit', expected: targets.join(', ') }),
        2,
      );
    const planPath = String(args.plan);
    let r: ApplyResult;
    let out: string;
    try {
      const text = await readFile(planPath, 'utf8').catch((e: Error) => {
        throw new Error(`cannot read ${planPath}: ${e.message}`);
      });
      const plan = parsePlan(text, planPath);
      r = await applyPlan(String(args.model), plan, {
        force: Boolean(args.force),
        evaluate: Boolean(args.eval),
        planSource: planPath,
        data: taskData(String(args.model), args),
        ...(emit ? { target: emit as (typeof targets)[number] } : {}),
      });
      out = args.out ? String(args.out) : r.fileName;
      await writeFileAtomic(out, r.bytes, [taskModelPath(String(args.model)), planPath]);
    } catch (e) {
      failCli('apply', e, usageExitCode(e));
    }
    const elements = r.weights.reduce((s, w) => s + w.dims.reduce((p, d) => p * d, 1), 0);
    const stored = r.weights.reduce((s, w) => s + w.codeBytes + w.scaleBytes + w.zeroPointBytes, 0);
    const bpw = elements ? (8 * stored) / elements : 0;
    if (args.json) {
      process.stdout.write(
        `${jsonText({ out, bytes: r.bytes.length, quantizedWeights: r.weights.length, elements, storedBytes: stored, bitsPerWeight: bpw, ...(r.metric !== undefined ? { metric: r.metric, metricName: r.metricName } : {}), notes: r.notes })}\n`,
      );
      return;
    }
    const what = r.weights.length
      ? `${r.weights.length} quantized weights, ${bpw.toFixed(3)} bits per weight (${formatBytes(stored)} of codes, scales and zero points)`
      : 'quantized as planned';
    process.stdout.write(
      `wrote ${out}: ${formatBytes(r.bytes.length)}; ${what}${r.metric !== undefined ? `; ${r.metricName} ${r.metric.toFixed(4)}` : ''}\n`,
    );
    for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
  },
});

export default applyCommand as unknown as CommandDef;

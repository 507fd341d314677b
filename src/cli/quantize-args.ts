/**
 * Arguments shared by `mixq quantize` and `mixq plan`: the budget (--bits / --size / --max-loss), the
 * target, the candidate set, and a progress bar for the long steps.
 */
import cliProgress from 'cli-progress';
import { parseCandidateIds } from '../analysis/sensitivity/candidates.ts';
import { MixqError } from '../core/errors.ts';
import type { QuantizeBudget, QuantizeOptions, TargetName } from '../pipeline/quantize/index.ts';
import { isLmFolder } from '../pipeline/lm-task.node.ts';
import type { LmSplitCounts } from '../pipeline/llm/text-split.ts';
import type { TaskOptions } from '../pipeline/tasks.node.ts';

export const quantizeArgs = {
  model: {
    type: 'positional',
    description:
      "'gpt' (default), 'ocr', a path to an .onnx model, 'stories' (bundled stories260K GGUF), a path to a .gguf language model, a Hugging Face folder or a transformers.js folder (onnx/model.onnx with past_key_values)",
    required: false,
  },
  bits: {
    type: 'string',
    description:
      "budget: average bits per quantized weight, scales included (default 4; a GGUF language model: the size of llama.cpp's Q4_K_M mix for it, else its smallest file)",
  },
  size: {
    type: 'string',
    description: "budget: bytes of the quantized weights, e.g. '900kB', '1.5MB', '123456'",
  },
  'max-loss': {
    type: 'string',
    description:
      "accuracy target: smallest plan whose metric is within this of fp32, e.g. '1%' (real evaluations)",
  },
  emit: {
    type: 'string',
    description:
      "output: 'onnx' (default; every format: onnxruntime's quantized operators where they take it, else bit-plane packed codes decoded at load), 'gguf' (gpt only; ggml block types), 'safetensors' (every RTN format, packed), 'runtime' (gpt only; a mixq engine file: every format mixq's engine runs, for mixq run), 'none' (every format, simulated)",
  },
  latency: {
    type: 'string',
    description:
      "--emit runtime: bound on the predicted ms per decode token of the weight products in mixq's engine (measured cost table); alone, or with --bits / --size / --max-loss",
  },
  'cost-table': {
    type: 'string',
    description:
      '--emit runtime: a cost table file (JSON) instead of the one measured on this machine and cached in ~/.cache/mixq',
  },
  threads: { type: 'string', description: "--emit runtime: threads of mixq's engine the plan is for (1)" },
  activations: {
    type: 'string',
    description:
      "--emit runtime: the engine's activation mode the plan is for: 'auto' (default) or 'lut8' (int1..int4 weights on lookup tables, costed and run so: mixq run --activations lut8)",
  },
  damage: { type: 'string', description: "'proxy' (default, noise-calibrated) or 'kl' (measure every pair)" },
  candidates: {
    type: 'string',
    description: 'comma-separated candidate ids (see docs), instead of the default set',
  },
  sweep: {
    type: 'string',
    description: "bits-per-weight budgets of the report's Pareto sweep (default 3,3.5,4,5)",
  },
  calibration: {
    type: 'string',
    description:
      'an .onnx model: a folder of real inputs (.npy, JSON feeds, images + preprocess.json; split calibration / validation / evaluation); gpt: calibration windows of 128 characters (8); ocr: calibration lines per variant (2); a language model (GGUF, Hugging Face or transformers.js folder): a UTF-8 text file split into calibration / validation / evaluation windows (default for stories: the bundled TinyStories text)',
  },
  eval: {
    type: 'string',
    description:
      'a language model (GGUF or transformers.js folder): a separate evaluation text file (default: after validation in --calibration)',
  },
  windows: {
    type: 'string',
    description:
      'a language model (GGUF or transformers.js folder): calibration,validation,evaluation windows of 256 tokens (default 4,8,32)',
  },
  synthetic: {
    type: 'boolean',
    description: 'an .onnx model without --calibration: plan on seeded random inputs (warned on every plan)',
  },
  metric: {
    type: 'string',
    description:
      "an .onnx model: how outputs are measured, comma-separated 'kind[:arg]' or 'output=kind[:arg]' (distribution[:axis], probability-map[:threshold], embedding, tensor); default chosen per output",
  },
  output: {
    type: 'string',
    description: 'an .onnx model: comma-separated outputs to measure (default every float output)',
  },
  'eval-size': {
    type: 'string',
    description: 'gpt: characters per evaluation (16384, at most 180224); ocr: lines',
  },
  'bias-correction': {
    type: 'boolean',
    description:
      'correct layer biases for the mean shift quantization causes (default on for --emit onnx / none; --no-bias-correction)',
  },
  select: {
    type: 'boolean',
    description:
      "keep at each budget the best, on the validation split, of the solver's plan and the uniform plans within 10% below the budget (default on; --no-select keeps the solver's plan)",
  },
  native: {
    type: 'boolean',
    description:
      "--emit onnx: onnxruntime's quantized operators only (int2/4/8, FP8), which keep weights low-bit in memory at run time",
  },
  json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
} as const;

function bad(flag: string, value: string, expected: string): never {
  throw new MixqError(`bad value '${value}'`, { source: `argument --${flag}`, expected });
}

/** --windows c,v,e of a language model: calibration, validation and evaluation window counts. */
export function parseWindows(v: unknown): Partial<LmSplitCounts> {
  if (v === undefined || v === '') return {};
  const parts = String(v)
    .split(',')
    .map((x) => Number(x.trim()));
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 1))
    bad('windows', String(v), 'three window counts: calibration,validation,evaluation, e.g. 4,8,32');
  return { calibration: parts[0]!, validation: parts[1]!, evaluation: parts[2]! };
}

/** '1.5MB', '900kB', '2MiB', '123456' -> bytes. */
export function parseSize(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|KiB|MiB|GiB)?\s*$/.exec(v);
  if (!m) bad('size', v, "a size such as '1.5MB', '900kB' or a byte count");
  const unit = m[2] ?? 'B';
  const mult: Record<string, number> = {
    B: 1,
    kB: 1e3,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    KiB: 1024,
    MiB: 1024 ** 2,
    GiB: 1024 ** 3,
  };
  const bytes = Math.floor(Number(m[1]) * mult[unit]!);
  if (!(bytes > 0)) bad('size', v, 'a positive size');
  return bytes;
}

/** --latency in ms per token, if given. */
export function parseLatency(args: Record<string, unknown>): number | undefined {
  const v = args.latency;
  if (v === undefined || v === '') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?(?:e-?\d+)?)\s*(ms)?\s*$/.exec(String(v));
  const ms = m ? Number(m[1]) : NaN;
  if (!(ms > 0 && Number.isFinite(ms)))
    bad('latency', String(v), "milliseconds per token, e.g. '0.5' or '2ms'");
  return ms;
}

export function parseBudget(args: Record<string, unknown>): QuantizeBudget {
  const given = ['bits', 'size', 'max-loss'].filter((k) => args[k] !== undefined && args[k] !== '');
  const latency = parseLatency(args);
  if (given.length === 0 && latency !== undefined) return { kind: 'latency', msPerToken: latency };
  if (given.length > 1)
    throw new MixqError(`--${given.join(' and --')} given together`, {
      source: 'arguments',
      expected: 'one budget: --bits, --size or --max-loss',
    });
  if (args.size !== undefined && args.size !== '')
    return { kind: 'bytes', bytes: parseSize(String(args.size)) };
  const loss = args['max-loss'];
  if (loss !== undefined && loss !== '') {
    const s = String(loss);
    const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(s);
    if (!m) bad('max-loss', s, "a relative loss such as '1%' or '0.01'");
    const relative = m[2] ? Number(m[1]) / 100 : Number(m[1]);
    if (!(relative > 0 && relative < 1)) bad('max-loss', s, 'between 0 and 100%');
    return { kind: 'maxLoss', relative };
  }
  const bits = args.bits === undefined || args.bits === '' ? 4 : Number(args.bits);
  if (!(Number.isFinite(bits) && bits > 0 && bits <= 32))
    bad('bits', String(args.bits), 'a number in (0, 32]');
  return { kind: 'bitsPerWeight', bits };
}

const list = (v: unknown): string[] =>
  v === undefined || v === ''
    ? []
    : String(v)
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x);

/**
 * The task's data flags: --calibration is a sample count for the bundled models, a folder of inputs for
 * an .onnx model and a text file for a transformers.js folder (with --eval and --windows); --synthetic,
 * --metric and --output (the task refuses them for bundled models and language models).
 */
export function taskData(model: string, args: Record<string, unknown>): TaskOptions {
  const bundled = model === 'gpt' || model === 'ocr';
  const cal =
    args.calibration === undefined || args.calibration === '' ? undefined : String(args.calibration);
  let data: TaskOptions = {};
  if (cal !== undefined && bundled) {
    const calibrationSize = Number(cal);
    if (!(Number.isInteger(calibrationSize) && calibrationSize > 0))
      bad('calibration', cal, `a positive integer for the bundled '${model}'`);
    data = { calibrationSize };
  } else if (cal !== undefined) data = { calibrationData: cal };
  const metrics = list(args.metric);
  const outputs = list(args.output);
  const lm = isLmFolder(model);
  const windows = lm ? parseWindows(args.windows) : {};
  return {
    ...data,
    ...(lm && typeof args.eval === 'string' && args.eval !== '' ? { evalText: args.eval } : {}),
    ...(Object.keys(windows).length ? { windows } : {}),
    ...(args.synthetic === true ? { synthetic: true } : {}),
    ...(metrics.length ? { metrics } : {}),
    ...(outputs.length ? { outputs } : {}),
  };
}

/** The QuantizeOptions the shared flags describe (budget included); candidate ids are parsed here. */
export function quantizeOptions(args: Record<string, unknown>): Omit<QuantizeOptions, 'onProgress' | 'log'> {
  const emit = args.emit === undefined ? 'onnx' : String(args.emit);
  if (emit !== 'onnx' && emit !== 'gguf' && emit !== 'safetensors' && emit !== 'runtime' && emit !== 'none')
    bad('emit', emit, "'onnx', 'gguf', 'safetensors', 'runtime' or 'none'");
  let threads: number | undefined;
  if (args.threads !== undefined) {
    threads = Number(args.threads);
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64))
      bad('threads', String(args.threads), 'an integer 1..64');
  }
  const budget = parseBudget(args);
  const latency = parseLatency(args);
  const activations = args.activations === undefined ? undefined : String(args.activations);
  if (activations !== undefined && activations !== 'auto' && activations !== 'lut8')
    bad('activations', activations, "'auto' or 'lut8'");
  if (args.native === true && emit !== 'onnx')
    bad('native', `--emit ${emit}`, '--native with --emit onnx only');
  const target: TargetName = args.native === true ? 'onnx-native' : emit;
  const damage = args.damage === undefined ? 'proxy' : String(args.damage);
  if (damage !== 'proxy' && damage !== 'kl') bad('damage', damage, "'proxy' or 'kl'");
  let sweep: number[] | undefined;
  if (args.sweep !== undefined) {
    sweep = String(args.sweep)
      .split(',')
      .map((x) => Number(x));
    if (sweep.some((x) => !(Number.isFinite(x) && x > 0)))
      bad('sweep', String(args.sweep), "comma-separated bits per weight, e.g. '3,3.5,4,5'");
  }
  let evalSize: number | undefined;
  if (args['eval-size'] !== undefined) {
    evalSize = Number(args['eval-size']);
    if (!(Number.isInteger(evalSize) && evalSize > 0))
      bad('eval-size', String(args['eval-size']), 'a positive integer');
  }
  const model = args.model === undefined || args.model === '' ? 'gpt' : String(args.model);
  return {
    model,
    task: { ...taskData(model, args), ...(evalSize ? { evalSize } : {}) },
    budget,
    candidates: {
      damage: damage === 'kl' ? 'kl' : 'noiseCalibrated',
      ...(args.candidates ? { schemes: parseCandidateIds(String(args.candidates).split(',')) } : {}),
      ...(typeof args['bias-correction'] === 'boolean' ? { biasCorrection: args['bias-correction'] } : {}),
    },
    evaluation: { ...(sweep ? { sweep } : {}), ...(args.select === false ? { select: false } : {}) },
    output: { target },
    ...(latency !== undefined || args['cost-table'] || threads || activations
      ? {
          latency: {
            ...(latency !== undefined && budget.kind !== 'latency' ? { msPerToken: latency } : {}),
            ...(args['cost-table'] ? { costTable: String(args['cost-table']) } : {}),
            ...(threads ? { threads } : {}),
            ...(activations === 'lut8' ? { activations: 'lut8' as const } : {}),
          },
        }
      : {}),
  };
}

/** A job's log lines on stderr, silent with --json (stdout then holds the JSON alone). */
export function stderrLog(json: boolean): (line: string) => void {
  return (line) => {
    if (!json) process.stderr.write(`${line}\n`);
  };
}

/** A progress bar on stderr for a TTY (one bar, relabelled per step); no-op otherwise. */
export function progressBar(enabled: boolean): {
  update: (step: string, done: number, total: number) => void;
  stop: () => void;
} {
  if (!enabled || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: '{step} [{bar}] {value}/{total}',
      hideCursor: true,
      clearOnComplete: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(step, done, total) {
      if (!started) {
        bar.start(total, done, { step });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done, { step });
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

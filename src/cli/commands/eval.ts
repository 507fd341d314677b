/**
 * `mixq eval <model> [--data <file>] [--metric bpc|cer|fidelity] [--reference <fp32.onnx>] [--limit N]
 * [--stride N] [--json]`: runs a model with onnxruntime-node and prints its metric (see
 * src/runtime/evaluate.node.ts for the defaults). `gpt` and `ocr` name the bundled models.
 */
import { type CommandDef, defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import {
  EVAL_METRICS,
  type EvalMetric,
  type EvalReport,
  evaluateModel,
} from '../../runtime/evaluate.node.ts';
import { failCli } from '../errors.ts';
import { jsonText } from '../json.ts';

function positiveInt(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    failCli(
      'eval',
      new MixqError(`bad value '${v}'`, { source: `argument --${name}`, expected: 'a positive integer' }),
      2,
    );
  return n;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function render(r: EvalReport, seconds: number): string {
  if (r.metric === 'bpc') {
    const x = r.result;
    return [
      `model: ${r.model}   data: ${r.data}`,
      `bits per character: ${x.bitsPerChar.toFixed(4)} ± ${x.bitsPerCharStdError.toFixed(4)} (bootstrap s.e. over windows)`,
      `nats per character: ${x.natsPerChar.toFixed(4)}   perplexity: ${x.perplexity.toFixed(4)}`,
      `scored characters: ${x.scoredTokens}   windows: ${x.windows} (context ${x.context}, stride ${x.stride})   ${seconds.toFixed(1)} s`,
    ].join('\n');
  }
  if (r.metric === 'cer') {
    const x = r.result;
    const rows = Object.entries(x.byVariant).map(
      ([k, v]) =>
        `  ${k.padEnd(9)} CER ${pct(v.cer)} ± ${pct(v.cerStdError)}   exact lines ${pct(v.lineAccuracy)}   (${v.lines} lines, ${v.chars} chars)`,
    );
    return [
      `model: ${r.model}   data: ${r.data}`,
      `CER ${pct(x.cer)} ± ${pct(x.cerStdError)}   exact lines ${pct(x.lineAccuracy)}   (${x.lines} lines, ${x.chars} chars, ${x.edits} edits)`,
      ...rows,
      `${seconds.toFixed(1)} s`,
    ].join('\n');
  }
  const x = r.result;
  return [
    `model: ${r.model}   reference: ${r.reference}   inputs: ${r.inputs} (${x.rows} output rows)`,
    `KL(reference || model): mean ${x.klMean.toExponential(3)} nats, max ${x.klMax.toExponential(3)}`,
    `top-1 agreement: ${pct(x.top1Agreement)}   output SQNR: ${Number.isFinite(x.sqnrDb) ? `${x.sqnrDb.toFixed(2)} dB` : 'inf (identical)'}`,
    `${seconds.toFixed(1)} s`,
  ].join('\n');
}

const evalCommand = defineCommand({
  meta: {
    name: 'eval',
    description:
      'Evaluate a model with onnxruntime: bits/char (gpt), OCR CER (ocr), or fidelity to an fp32 reference',
  },
  args: {
    model: { type: 'positional', description: "'gpt', 'ocr' or a path to an .onnx model", required: true },
    metric: { type: 'string', description: 'bpc | cer | fidelity (default: by model)' },
    data: {
      type: 'string',
      description: 'bpc: a text file; cer: a folder with lines.json + lines.u8.gz, or its validation.json',
    },
    reference: { type: 'string', description: "fp32 reference for fidelity: 'gpt', 'ocr' or a path" },
    limit: { type: 'string', description: 'bpc: first N characters; cer/fidelity: first N lines or samples' },
    stride: { type: 'string', description: 'bpc: window stride (default context/2)' },
    json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
  },
  async run({ args }) {
    const metric = args.metric as string | undefined;
    if (metric !== undefined && !EVAL_METRICS.includes(metric as EvalMetric)) {
      failCli(
        'eval',
        new MixqError(`unknown metric '${metric}'`, {
          source: 'argument --metric',
          expected: EVAL_METRICS.join('|'),
        }),
        2,
      );
    }
    const limit = positiveInt(args.limit, 'limit');
    const stride = positiveInt(args.stride, 'stride');
    const t0 = performance.now();
    let report: EvalReport;
    try {
      report = await evaluateModel({
        model: String(args.model),
        ...(metric ? { metric: metric as EvalMetric } : {}),
        ...(args.data ? { data: String(args.data) } : {}),
        ...(args.reference ? { reference: String(args.reference) } : {}),
        ...(limit ? { limit } : {}),
        ...(stride ? { stride } : {}),
      });
    } catch (e) {
      failCli('eval', e, 1);
    }
    const seconds = (performance.now() - t0) / 1000;
    if (args.json) {
      // JSON has no Infinity: an identical output's SQNR is reported as null.
      const text = jsonText({ ...report, seconds });
      process.stdout.write(`${text}\n`);
      return;
    }
    process.stdout.write(`${render(report, seconds)}\n`);
  },
});

// The command table holds CommandDef with generic args; citty's typed args make that a cast.
export default evalCommand as unknown as CommandDef;

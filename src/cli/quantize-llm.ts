/**
 * `mixq quantize <model.gguf | stories> [--bits b | --size bytes] [--calibration <text file>]
 * [--eval <text file>] [--windows c,v,e] [--imatrix f | --no-imatrix] [--imatrix-out f] [--out dir] [--json]`: the GGUF language-model job
 * (src/pipeline/llm/). Writes into the output folder, atomically: the quantized GGUF, plan.json (the
 * `mixq plan` schema; `mixq apply model.gguf plan.json` writes the same file), report.json and
 * report.html; prints the split, the terminal summary and the equal-size table.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MixqError } from '../core/errors.ts';
import { writeFileAtomic } from '../io/files.node.ts';
import { serialisePlan } from '../plan/serialise.ts';
import type { PlanBudget } from '../plan/schema.ts';
import type { LmEvalRow } from '../pipeline/llm/evaluate.ts';
import type { QuantizeGgufLmResult } from '../pipeline/llm/index.node.ts';
import type { LmSplitCounts } from '../pipeline/llm/text-split.ts';
import { reportJson } from '../report/json.ts';
import { renderTerminalSummary } from '../report/terminal.ts';
import { failCli, usageExitCode } from './errors.ts';
import { jsonText } from './json.ts';
import { parseSize, parseWindows, progressBar, stderrLog } from './quantize-args.ts';

/**
 * Whether `mixq quantize <model>` is a language model for the GGUF job: 'stories', a .gguf file, or a
 * Hugging Face folder (config.json and *.safetensors).
 */
export function isGgufLmModel(model: unknown): boolean {
  if (model === 'stories') return true;
  if (typeof model !== 'string') return false;
  if (/\.gguf$/i.test(model)) return true;
  try {
    return (
      statSync(model).isDirectory() &&
      existsSync(join(model, 'config.json')) &&
      readdirSync(model).some((f) => f.endsWith('.safetensors'))
    );
  } catch {
    return false;
  }
}

function bad(flag: string, value: string, expected: string): never {
  throw new MixqError(`bad value '${value}'`, { source: `argument --${flag}`, expected });
}

/** --bits / --size; undefined when neither is given (the pipeline then picks the default and says why). */
function parseLmBudget(args: Record<string, unknown>): PlanBudget | undefined {
  const given = (k: string) => args[k] !== undefined && args[k] !== '';
  if (given('max-loss'))
    throw new MixqError('--max-loss is not available for GGUF language models', {
      source: 'argument --max-loss',
      expected: '--bits (bits per weight over the quantized tensors) or --size (output file bytes)',
    });
  if (given('bits') && given('size'))
    throw new MixqError('--bits and --size given together', { source: 'arguments', expected: 'one budget' });
  if (given('size')) return { kind: 'bytes', bytes: parseSize(String(args.size)) };
  if (!given('bits')) return undefined;
  const bits = Number(args.bits);
  if (!(Number.isFinite(bits) && bits > 0 && bits <= 32))
    bad('bits', String(args.bits), 'a number in (0, 32]');
  return { kind: 'bitsPerWeight', bits };
}

function parseDamage(v: unknown): 'calibrated' | 'kl' | undefined {
  if (v === undefined || v === '' || v === 'proxy') return undefined;
  if (v === 'kl') return 'kl';
  return bad(
    'damage',
    String(v),
    "'proxy' (squared error calibrated per tensor to KL) or 'kl' (every pair measured)",
  );
}

/** --imatrix <file> | --no-imatrix, --imatrix-out <file>. */
function parseImatrixArgs(args: Record<string, unknown>): { imatrix?: string | false; imatrixOut?: string } {
  const v = args.imatrix;
  const out = args['imatrix-out'];
  if (v === true || v === '')
    bad('imatrix', String(v), 'an importance-matrix file (imatrix.dat, GGUF or JSON)');
  if (out === true || out === false || out === '')
    bad('imatrix-out', String(out), "a file name ('.dat' legacy, '.json', else GGUF)");
  if (v === false && out !== undefined)
    throw new MixqError('--imatrix-out with --no-imatrix', {
      source: 'arguments',
      expected: 'one of them (--no-imatrix: no importance matrix to save)',
    });
  return {
    ...(v === false ? { imatrix: false as const } : v !== undefined ? { imatrix: String(v) } : {}),
    ...(out !== undefined ? { imatrixOut: String(out) } : {}),
  };
}

const e3 = (x: number) => x.toExponential(2);

function row(r: LmEvalRow): string {
  return `  ${r.label.padEnd(30)} ${String(r.fileBytes).padStart(9)} B ${r.bitsPerWeight.toFixed(3).padStart(7)} b/w  KL ${e3(r.kl)} [${e3(r.klCi[0])}, ${e3(r.klCi[1])}]  top-1 ${r.top1.toFixed(4)}  ppl ${r.perplexity.toFixed(4)}`;
}

/** The equal-size table: every baseline, mixq's plan at its size and the paired KL difference. */
export function lmComparisonTable(r: QuantizeGgufLmResult): string {
  const lines = [
    `evaluation (${r.mixq.windows} windows, ${r.mixq.tokens} tokens): KL(input || model) nats/token [95% interval], top-1 agreement, perplexity`,
    row(r.input),
    row(r.mixq),
  ];
  for (const [i, c] of r.comparisons.entries()) {
    const b = r.baselines.find((x) => x.label === c.baseline)!;
    const noise = c.differenceCi[0] <= 0 && c.differenceCi[1] >= 0;
    lines.push(row(b), row(r.equalSize[i]!));
    lines.push(
      c.samePlan
        ? '    the same types (mixq chose the baseline)'
        : `    mixq - ${c.baseline}: KL ${e3(c.mixqKl - c.baselineKl)} [${e3(c.differenceCi[0])}, ${e3(c.differenceCi[1])}]${noise ? ' within noise' : c.differenceCi[1] < 0 ? ' mixq better' : ' baseline better'}`,
    );
  }
  return lines.join('\n');
}

export async function runQuantizeLlm(args: Record<string, unknown>): Promise<void> {
  let budget: PlanBudget | undefined;
  let windows: Partial<LmSplitCounts>;
  let damage: 'calibrated' | 'kl' | undefined;
  let imatrix: { imatrix?: string | false; imatrixOut?: string };
  try {
    if (args.emit !== undefined && args.emit !== '' && args.emit !== 'gguf')
      bad('emit', String(args.emit), "'gguf' (a GGUF language model is written as GGUF)");
    budget = parseLmBudget(args);
    windows = parseWindows(args.windows);
    // a number after --calibration keeps its meaning for bundled models: calibration windows
    const cal = args.calibration;
    if (typeof cal === 'string' && /^\d+$/.test(cal) && !existsSync(cal)) {
      windows = { ...windows, calibration: Number(cal) };
      delete args.calibration;
    }
    damage = parseDamage(args.damage);
    imatrix = parseImatrixArgs(args);
  } catch (e) {
    failCli('quantize', e, 2);
  }
  const json = Boolean(args.json);
  const bar = progressBar(!json);
  const log = stderrLog(json);
  const model = String(args.model);
  const out = args.out
    ? String(args.out)
    : join('mixq-out', model.replace(/^.*[/\\]/, '').replace(/\.gguf$/i, ''));
  let r: QuantizeGgufLmResult;
  try {
    const { quantizeGgufLm } = await import('../pipeline/llm/index.node.ts');
    r = await quantizeGgufLm({
      model,
      ...(budget ? { budget } : {}),
      ...(args.calibration !== undefined && args.calibration !== ''
        ? { calibration: String(args.calibration) }
        : {}),
      ...(args.eval !== undefined && args.eval !== '' ? { evalText: String(args.eval) } : {}),
      windows,
      ...(damage ? { damage } : {}),
      ...imatrix,
      baselines: args.baselines !== false,
      select: args.select !== false,
      out,
      onProgress: bar.update,
      log,
      command: `mixq ${process.argv.slice(2).join(' ')}`,
    });
  } catch (e) {
    bar.stop();
    failCli('quantize', e, usageExitCode(e));
  }
  bar.stop();
  const written = [
    r.output.path,
    ...(r.imatrix?.origin === 'computed' ? [r.imatrix.path] : []),
    ...(r.imatrix?.origin === 'file' && args['imatrix-out'] !== undefined
      ? [String(args['imatrix-out'])]
      : []),
  ];
  try {
    const { renderHtmlReport } = await import('../report/html.ts');
    const protect = [r.modelPath];
    for (const [name, data] of [
      ['plan.json', serialisePlan(r.plan)],
      ['report.json', reportJson(r.report)],
      ['report.html', await renderHtmlReport(r.report)],
    ] as const) {
      await writeFileAtomic(join(out, name), data, protect);
      written.push(join(out, name));
    }
  } catch (e) {
    failCli('quantize', e, 1);
  }
  if (json) {
    process.stdout.write(
      `${jsonText({
        model: r.name,
        split: r.splitLines,
        plan: { ...r.plan.totals, budget: r.plan.budget, solver: r.plan.solver, chosen: r.selection.chosen },
        output: r.output,
        ...(r.imatrix ? { imatrix: r.imatrix } : {}),
        input: r.input,
        mixq: r.mixq,
        baselines: r.baselines,
        equalSize: r.equalSize,
        comparisons: r.comparisons,
        notes: r.notes,
        files: written,
        timings: r.timings,
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
  process.stdout.write(`\n${r.splitLines.join('\n')}\n\n${lmComparisonTable(r)}\n`);
  if (r.notes.length) process.stdout.write(`\nnotes:\n${r.notes.map((n) => `  ${n}`).join('\n')}\n`);
  process.stdout.write(
    `\nmodel: ${r.output.path} ${r.output.bytes} bytes; ${r.output.check}\nwrote ${written.join(', ')}\n`,
  );
}

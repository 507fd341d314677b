/**
 * `mixq numerics <study> [options]`: runs a low-precision numerics study (src/numerics/studies), prints its
 * tables, headline and fingerprint, and writes its plot (`--out`, .svg or .html; default
 * numerics-<study>.svg). `--quick` runs the reduced size that test/numerics/studies.test.ts fingerprints.
 *
 *   lu-ir     LU in fp16 / bf16, LU-IR and GMRES-IR to float64 accuracy   --n --mode --kappas --formats
 *   harmonic  harmonic sum in fp16 / bf16, RN vs SR                       --terms --seeds --formats
 *   heat      heat equation in fp16 / bf16, RN vs SR                      --points --r --time --seeds --formats
 *   train     digits MLP with fp8 / fp4 / nvfp4 / int8 / bf16 tensors     --epochs --hidden --batch --lr --configs
 *                                                                          --samples --data
 * Every study takes --seed and gives the same numbers (and fingerprint) on every run.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { defineCommand } from 'citty';
import type { TopLevelSpec } from 'vega-lite';
import { MixqError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../io/files.node.ts';
import { luIrStudy } from '../../numerics/studies/lu-ir.ts';
import { harmonicStudy, heatStudy } from '../../numerics/studies/rn-vs-sr.ts';
import type { StudyPlot, StudyResult } from '../../numerics/studies/study.ts';
import { DEFAULT_TRAIN_CONFIGS, trainStudy } from '../../numerics/studies/train.ts';
import { renderSvg } from '../../report/svg.ts';
import { PACKAGE_ROOT } from '../../runtime/bundled.node.ts';
import { failCli, usageExitCode } from '../errors.ts';

const CMD = 'numerics';
const STUDIES = ['lu-ir', 'harmonic', 'heat', 'train'] as const;
type StudyName = (typeof STUDIES)[number];

/** The bundled digits (models/digits/digits.u8.gz). */
export const DIGITS_PATH = join(PACKAGE_ROOT, 'models', 'digits', 'digits.u8.gz');
const MAX_DATA_BYTES = 32 * 1024 * 1024;

function num(v: unknown, flag: string, lo: number, hi: number, integer = true): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi || (integer && !Number.isInteger(x)))
    throw new MixqError(`--${flag} ${String(v)}`, {
      source: `argument --${flag}`,
      expected: `${integer ? 'an integer' : 'a number'} in ${lo}..${hi}`,
    });
  return x;
}

function list(v: unknown): string[] | undefined {
  return v === undefined
    ? undefined
    : String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

/** The digits bytes from a .u8.gz (or raw .u8) file, size-capped. */
export function readDigits(path: string): Uint8Array {
  const size = statSync(path).size;
  if (size > MAX_DATA_BYTES)
    throw new MixqError(`${size} bytes`, { source: path, expected: `at most ${MAX_DATA_BYTES} bytes` });
  const raw = readFileSync(path);
  const bytes = path.endsWith('.gz') ? gunzipSync(raw, { maxOutputLength: MAX_DATA_BYTES }) : raw;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** The reduced sizes of --quick (also the fingerprinted sizes of the reproducibility test). */
export const QUICK = {
  'lu-ir': { n: 24, log10Kappas: [1, 3, 5, 8] },
  harmonic: { terms: 4096, seeds: 3 },
  heat: { points: 15, time: 0.02, seeds: 2 },
  train: { epochs: 2, samples: 400, configs: ['fp32', 'bf16-sr', 'fp8', 'nvfp4', 'int8'] },
} as const;

/** Runs a study from CLI-style arguments. */
export function runStudy(name: StudyName, args: Record<string, unknown>): StudyResult {
  const quick = args.quick === true;
  const seed = num(args.seed, 'seed', 0, 2 ** 32 - 1);
  switch (name) {
    case 'lu-ir': {
      const kappas = list(args.kappas)?.map((k) => num(k, 'kappas', 0, 15)!);
      const mode = num(args.mode, 'mode', 2, 3) as 2 | 3 | undefined;
      return luIrStudy({
        ...(quick ? QUICK['lu-ir'] : {}),
        ...defined({
          n: num(args.n, 'n', 2, 1000),
          log10Kappas: kappas,
          formats: list(args.formats),
          mode,
          seed,
        }),
      });
    }
    case 'harmonic':
      return harmonicStudy({
        ...(quick ? QUICK.harmonic : {}),
        ...defined({
          terms: num(args.terms, 'terms', 1, 1e8),
          seeds: num(args.seeds, 'seeds', 1, 1000),
          formats: list(args.formats),
          seed,
        }),
      });
    case 'heat':
      return heatStudy({
        ...(quick ? QUICK.heat : {}),
        ...defined({
          points: num(args.points, 'points', 3, 10000),
          r: num(args.r, 'r', 1e-9, 0.5, false),
          time: num(args.time, 'time', 1e-9, 100, false),
          seeds: num(args.seeds, 'seeds', 1, 1000),
          formats: list(args.formats),
          seed,
        }),
      });
    case 'train': {
      const path = args.data === undefined ? DIGITS_PATH : String(args.data);
      return trainStudy({
        ...(quick ? QUICK.train : {}),
        data: readDigits(path),
        ...defined({
          epochs: num(args.epochs, 'epochs', 1, 1000),
          hidden: num(args.hidden, 'hidden', 1, 4096),
          batch: num(args.batch, 'batch', 1, 4096),
          lr: num(args.lr, 'lr', 1e-9, 100, false),
          samples: num(args.samples, 'samples', 20, 1e7),
          seed,
          configs: list(args.configs),
        }),
      });
    }
  }
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A study plot as a vega-lite spec: lines (or points) per series, one panel per `panel` value. */
export function plotSpec(p: StudyPlot): TopLevelSpec {
  const panels = new Set(p.points.map((q) => q.panel).filter((v) => v !== undefined));
  const encoding = {
    x: {
      field: 'x',
      type: 'quantitative',
      title: p.x.label,
      scale: p.x.log ? { type: 'log' } : { zero: false },
    },
    y: {
      field: 'y',
      type: 'quantitative',
      title: p.y.label,
      scale: p.y.log ? { type: 'log' } : { zero: false },
    },
    color: { field: 'series', type: 'nominal', title: null },
  } as const;
  const mark = { type: p.mark ?? 'line', point: p.mark !== 'point' && p.points.length < 400 } as const;
  if (panels.size > 0)
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: p.title,
      data: { values: p.points.map((q) => ({ ...q })) },
      facet: { field: 'panel', type: 'nominal', title: null, sort: [...panels] as string[] },
      columns: Math.min(2, panels.size),
      spec: { width: 320, height: 200, mark, encoding },
      resolve: { scale: { x: 'independent', y: 'independent' } },
    } as TopLevelSpec;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: p.title,
    width: 560,
    height: 320,
    data: { values: p.points.map((q) => ({ ...q })) },
    mark,
    encoding,
  } as TopLevelSpec;
}

/** The study's tables as aligned text. */
export function formatStudy(r: StudyResult): string {
  const out: string[] = [
    `${r.title}`,
    `parameters: ${Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    '',
  ];
  for (const t of r.tables) {
    out.push(t.title);
    const cells = [t.columns, ...t.rows].map((row) => row.map(String));
    const widths = t.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
    const line = (row: string[]) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd();
    out.push(line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of cells.slice(1)) out.push(line(row));
    out.push('');
  }
  out.push(r.headline, `fingerprint ${r.hash}`);
  return `${out.join('\n')}\n`;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export default defineCommand({
  meta: { name: 'numerics', description: 'Run a low-precision numerics study: lu-ir, harmonic, heat, train' },
  args: {
    study: { type: 'positional', description: `one of ${STUDIES.join(', ')}`, required: true },
    out: { type: 'string', description: 'plot file, .svg or .html (default numerics-<study>.svg)' },
    json: { type: 'boolean', description: 'print the result as JSON', default: false },
    quick: { type: 'boolean', description: 'reduced size (the fingerprinted test size)', default: false },
    seed: { type: 'string', description: 'seed (default 1)' },
    n: { type: 'string', description: 'lu-ir: matrix size (default 100)' },
    mode: { type: 'string', description: 'lu-ir: randsvd mode 2 or 3 (default 2)' },
    kappas: {
      type: 'string',
      description: 'lu-ir: log10 condition numbers, comma separated (default 1..10)',
    },
    formats: {
      type: 'string',
      description: 'lu-ir / harmonic / heat: formats, comma separated (default fp16,bf16)',
    },
    terms: { type: 'string', description: 'harmonic: number of terms (default 65536)' },
    seeds: { type: 'string', description: 'harmonic / heat: stochastic-rounding repetitions' },
    points: { type: 'string', description: 'heat: interior grid points (default 31)' },
    r: { type: 'string', description: 'heat: dt / dx^2 (default 0.02)' },
    time: { type: 'string', description: 'heat: final time (default 0.1)' },
    epochs: { type: 'string', description: 'train: epochs (default 15)' },
    hidden: { type: 'string', description: 'train: hidden units (default 32)' },
    batch: { type: 'string', description: 'train: minibatch (default 32)' },
    lr: { type: 'string', description: 'train: learning rate (default 0.2, decayed to lr/20)' },
    configs: {
      type: 'string',
      description: `train: configurations (default ${DEFAULT_TRAIN_CONFIGS.join(',')})`,
    },
    samples: { type: 'string', description: 'train: use this many digits (default all 1797)' },
    data: {
      type: 'string',
      description: 'train: digits file (default the bundled models/digits/digits.u8.gz)',
    },
  },
  async run({ args }) {
    try {
      const name = String(args.study);
      if (!(STUDIES as readonly string[]).includes(name))
        throw new MixqError(`unknown study '${name}'`, {
          source: 'argument study',
          expected: STUDIES.join(', '),
        });
      const result = runStudy(name as StudyName, args);
      if (args.json) {
        process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
        return;
      }
      process.stdout.write(formatStudy(result));
      const out = args.out === undefined ? `numerics-${name}.svg` : String(args.out);
      if (!out.endsWith('.svg') && !out.endsWith('.html'))
        throw new MixqError(`--out ${out}`, { source: 'argument --out', expected: 'a .svg or .html path' });
      const svg = await renderSvg(plotSpec(result.plot));
      const body = out.endsWith('.html')
        ? `<!doctype html><meta charset="utf-8"><title>${escapeHtml(result.title)}</title><h1>${escapeHtml(result.title)}</h1>${svg}<pre>${escapeHtml(formatStudy(result))}</pre>\n`
        : svg;
      await writeFileAtomic(out, body);
      process.stdout.write(`plot: ${out}\n`);
    } catch (e) {
      failCli(CMD, e, usageExitCode(e));
    }
  },
});

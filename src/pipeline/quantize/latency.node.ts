/**
 * The planner's latency model (`mixq quantize --latency <ms/token>`, HAWQ-V3 / OHQ style): the time of one
 * decode token's weight products in mixq's engine, predicted as the sum over weights of the measured
 * seconds per product of the weight's format and shape (engine/cost.ts measureCostTable), and bounded in
 * the allocation as one more linear constraint. Only targets mixq's engine runs have it (targets.ts
 * `costFormat`).
 *
 * The table: measured on this machine with the kernels the engine uses (SIMD128 or relaxed SIMD, the
 * thread count), weights rotated over the model's working set at 4 bits (at most 64 MiB, so a product's
 * weights are as cold as during a token), and cached in `<cache>/mixq/cost-<key>.json` (cache =
 * $MIXQ_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache), keyed by CPU model, core count, thread count, kernel
 * variant and build, Node and mixq versions: entries missing for a run are measured and added. `--cost-table <file>`
 * reads a table file instead and measures nothing (reproducible tests; a missing entry is an error).
 *
 * File (JSON): { "kind": "mixq-cost-table", "version": 1, "machine": {...}, "entries": [CostEntry, ...] }.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { type CostEntry, type CostFormat, costFormatName, measureCostTable } from '../../engine/cost.ts';
import { writeFileAtomic } from '../../io/files.node.ts';
import { createKernels, type KernelContext } from '../../kernels/context.ts';
import { createKernelPool } from '../../kernels/pool.node.ts';
import { lutMisfit } from '../../kernels/lut.ts';
import { KERNELS_BUILD } from '../../kernels/module.ts';
import type { RowLayout } from '../../quant/layout.ts';
import type { Scheme } from '../../quant/scheme.ts';
import { VERSION } from '../../version.ts';
import type { Allocation, AllocWeight } from '../../analysis/allocate/problem.ts';
import type { RunContext } from './context.ts';
import type { LatencyOptions } from './options.ts';
import type { Sensitivity } from './sensitivity.ts';

const SRC = 'cost table';

/** Milliseconds per token of a weight's product under a scheme, from the cost table. */
export interface LatencyModel {
  /** ms per decode product of `s` (row frame) on a weight of `layout`; undefined when the engine cannot run it. */
  msOf(s: Scheme, layout: RowLayout): number | undefined;
  /** Where the table came from (a file, the cache, measured now), for the report. */
  readonly source: string;
  readonly threads: number;
  /** The engine's activation mode the costs are for. */
  readonly activations: 'auto' | 'lut8';
}

export interface CostTableFile {
  readonly kind: 'mixq-cost-table';
  readonly version: 1;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly entries: readonly CostEntry[];
}

/** The cache folder: $MIXQ_CACHE_DIR, else $XDG_CACHE_HOME/mixq or ~/.cache/mixq. */
export function mixqCacheDir(): string {
  return process.env.MIXQ_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mixq');
}

const key = (format: string, rows: number, cols: number) => `${format}|${rows}x${cols}`;

function checkEntries(v: unknown, source: string): CostEntry[] {
  const o = v as Partial<CostTableFile> | null;
  if (typeof o !== 'object' || o === null || o.kind !== 'mixq-cost-table' || o.version !== 1)
    throw new MixqError('not a mixq cost table', {
      source,
      field: 'kind',
      expected: '{ "kind": "mixq-cost-table", "version": 1, "entries": [...] }',
    });
  if (!Array.isArray(o.entries))
    throw new MixqError('no entries', { source, field: 'entries', expected: 'a list of cost entries' });
  return o.entries.map((e: Partial<CostEntry>, i) => {
    const ok =
      typeof e.format === 'string' &&
      Number.isInteger(e.rows) &&
      Number.isInteger(e.cols) &&
      typeof e.secondsPerCall === 'number' &&
      Number.isFinite(e.secondsPerCall) &&
      e.secondsPerCall >= 0;
    if (!ok)
      throw new MixqError(`entry ${JSON.stringify(e).slice(0, 80)}`, {
        source,
        field: `entries[${i}]`,
        expected: '{ "format", "rows", "cols", "secondsPerCall" >= 0, ... }',
      });
    return e as CostEntry;
  });
}

async function readTable(path: string): Promise<CostEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new MixqError(`cannot read: ${(e as Error).message}`, {
      source: path,
      expected: 'a cost table file',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MixqError(`not JSON (${(e as Error).message})`, {
      source: path,
      expected: 'a cost table file',
    });
  }
  return checkEntries(json, path);
}

/**
 * The latency model for `weights` under their candidate schemes: `costFormat` maps a scheme to what the
 * engine runs (the target's), undefined for schemes it cannot.
 */
export async function latencyModel(
  weights: readonly { readonly layout: RowLayout; readonly schemes: readonly Scheme[] }[],
  engineFormat: (s: Scheme, cols: number) => CostFormat | undefined,
  opts: LatencyOptions,
  log: (line: string) => void,
): Promise<LatencyModel> {
  const threads = opts.threads ?? 1;
  const activations = opts.activations ?? 'auto';
  if (activations !== 'auto' && activations !== 'lut8')
    throw new MixqError(`activations ${String(activations)}`, {
      source: SRC,
      field: 'activations',
      expected: "'auto' or 'lut8'",
    });
  // 'lut8': the engine loads the weights the lookup-table layout takes in it (engine/load.ts)
  const costFormat = (s: Scheme, cols: number): CostFormat | undefined => {
    const f = engineFormat(s, cols);
    if (f === undefined || activations !== 'lut8' || typeof f === 'string') return f;
    return lutMisfit({ element: f.element, groups: f.groups, cols }) ? f : { ...f, layout: 'lut' };
  };
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64))
    throw new MixqError(`threads ${threads}`, { source: SRC, field: 'threads', expected: '1..64' });
  // what the run needs: every (format, shape) of every candidate
  const need = new Map<string, { f: CostFormat; rows: number; cols: number }>();
  let elements = 0;
  for (const w of weights) {
    elements += w.layout.rows * w.layout.cols;
    for (const s of w.schemes) {
      const f = costFormat(s, w.layout.cols);
      if (f !== undefined)
        need.set(key(costFormatName(f), w.layout.rows, w.layout.cols), {
          f,
          rows: w.layout.rows,
          cols: w.layout.cols,
        });
    }
  }
  const table = new Map<string, CostEntry>();
  let source: string;
  if (opts.costTable) {
    for (const e of await readTable(opts.costTable)) table.set(key(e.format, e.rows, e.cols), e);
    const missing = [...need.keys()].filter((k) => !table.has(k));
    if (missing.length > 0)
      throw new MixqError(
        `no entry for ${missing[0]!.replace('|', ' on ')}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`,
        {
          source: opts.costTable,
          field: 'entries',
          expected:
            'an entry for every candidate format and weight shape (or no --cost-table: measured and cached)',
        },
      );
    source = opts.costTable;
  } else {
    // weights rotated over the model's working set at 4 bits, 256 KiB .. 64 MiB (a power of two)
    const rotateBytes = 2 ** Math.round(Math.log2(Math.min(64 * 2 ** 20, Math.max(2 ** 18, elements / 2))));
    const pool = threads === 1 ? undefined : await createKernelPool({ threads });
    const kernels: KernelContext = pool ?? (await createKernels());
    try {
      const machine = {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        threads,
        kernels: kernels.variant,
        node: process.version,
        mixq: VERSION,
        kernelsBuild: KERNELS_BUILD.slice(0, 16),
        rotateBytes,
      };
      const id = createHash('sha256').update(JSON.stringify(machine)).digest('hex').slice(0, 16);
      const dir = mixqCacheDir();
      const path = join(dir, `cost-${id}.json`);
      try {
        for (const e of await readTable(path)) table.set(key(e.format, e.rows, e.cols), e);
      } catch {
        // no cache yet (or an unreadable one, measured again)
      }
      const missing = [...need].filter(([k]) => !table.has(k)).map(([, v]) => v);
      if (missing.length > 0) {
        log(`cost table: measuring ${missing.length} format x shape entries on ${threads} thread(s)`);
        for (const m of missing) {
          const [e] = measureCostTable(kernels, [{ rows: m.rows, cols: m.cols }], [m.f], {
            minMs: 40,
            rotateBytes,
          });
          table.set(key(e!.format, e!.rows, e!.cols), e!);
        }
        const file: CostTableFile = {
          kind: 'mixq-cost-table',
          version: 1,
          machine,
          entries: [...table.values()],
        };
        await mkdir(dir, { recursive: true });
        await writeFileAtomic(path, `${JSON.stringify(file, null, 1)}\n`);
        source = `${path} (${missing.length} entries measured now)`;
      } else source = `${path} (cached)`;
    } finally {
      await pool?.close();
    }
  }
  return {
    source,
    threads,
    activations,
    msOf(s, layout) {
      const f = costFormat(s, layout.cols);
      if (f === undefined) return undefined;
      const e = table.get(key(costFormatName(f), layout.rows, layout.cols));
      return e === undefined ? undefined : e.secondsPerCall * 1e3;
    },
  };
}

/** The latency model of a run and the allocation weights with each option's latency (ms per token). */
export interface SpeedModel {
  readonly model: LatencyModel;
  readonly allocWeights: readonly AllocWeight[];
}

/**
 * Stage 2b, latency (targets mixq's engine runs): the cost table for every analysed weight's options, and
 * the allocation weights with their latency.
 */
export async function latencyStage(
  ctx: RunContext,
  sens: Sensitivity,
  costFormat: (s: Scheme, cols: number) => CostFormat | undefined,
  opts: LatencyOptions,
): Promise<SpeedModel> {
  // a table read by Gather (token embedding) is a row lookup per token, not a product: latency 0
  const product = (w: Sensitivity['weights'][number]) => w.consumer.split(':')[0] !== 'Gather';
  const model = await latencyModel(
    sens.weights.filter(product).map((w) => ({ layout: w.layout, schemes: w.options.map((o) => o.scheme) })),
    costFormat,
    opts,
    ctx.log,
  );
  ctx.log(`cost table: ${model.source}`);
  const allocWeights = sens.allocWeights.map((aw, i) => {
    const w = sens.weights[i]!;
    if (!product(w)) return { ...aw, candidates: aw.candidates.map((c) => ({ ...c, latency: 0 })) };
    return {
      ...aw,
      candidates: aw.candidates.map((c, k) => {
        const ms = model.msOf(w.options[k]!.scheme, w.layout);
        if (ms === undefined)
          throw new MixqError(`no cost for ${c.scheme} on ${w.name}`, {
            source: SRC,
            field: w.name,
            expected: "a scheme mixq's engine runs",
          });
        return { ...c, latency: ms };
      }),
    };
  });
  return { model, allocWeights };
}

/** Predicted ms per token of an allocation's weight products (undefined without latencies). */
export function predictedMsPerToken(weights: readonly AllocWeight[], a: Allocation): number | undefined {
  let s = 0;
  for (const [i, w] of weights.entries()) {
    const l = w.candidates[a.choice[i]!]?.latency;
    if (l === undefined) return undefined;
    s += l;
  }
  return s;
}

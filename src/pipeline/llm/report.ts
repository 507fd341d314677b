/**
 * The report of a GGUF language-model job (browser-safe): ReportData for the HTML / terminal / JSON
 * renderers. The metric is the mean KL(input || model) per token on the evaluation windows (lower is
 * better, 0 for the input); each point's `outputs` carries the top-1 agreement, and the notes the
 * perplexities. Series: 'mixq' (the chosen plan and the plans made at each baseline's size, budget
 * '= <baseline>'), one 'rule' series per llama.cpp mix and one 'uniform' series per uniform type.
 */
import type { Plan } from '../../plan/schema.ts';
import type { ReportData, ReportPoint, ReportSeries } from '../../report/types.ts';
import { equalSizeBudget } from '../../report/summary.ts';
import type { GgufDamageTable } from '../gguf/damage.ts';
import type { LmEvalRow } from './evaluate.ts';
import type { LmSelection } from './index.node.ts';

export interface LmReportInput {
  readonly name: string;
  readonly plan: Plan;
  readonly budget: string;
  readonly table: GgufDamageTable;
  /** What the table's damage is. */
  readonly measure: string;
  readonly selection: LmSelection;
  readonly validation: string;
  readonly mixq: LmEvalRow;
  readonly input: LmEvalRow;
  readonly baselines: readonly LmEvalRow[];
  readonly equalSize: readonly LmEvalRow[];
  readonly notes: readonly string[];
  readonly timings: readonly { readonly step: string; readonly ms: number }[];
  readonly command?: string;
}

function point(r: LmEvalRow, budget?: string): ReportPoint {
  return {
    bitsPerWeight: r.bitsPerWeight,
    bytes: r.weightBytes,
    metric: r.kl,
    ...(budget !== undefined ? { budget } : {}),
    ...(r.predictedDamage !== undefined ? { predictedDamage: r.predictedDamage } : {}),
    metricChangeCi: r.klCi,
    outputs: [
      {
        output: 'next token',
        kind: 'distribution',
        damage: r.kl,
        count: r.tokens,
        klMean: r.kl,
        top1Agreement: r.top1,
      },
    ],
  };
}

function layerOf(name: string): { layer?: number; role?: string } {
  const m = /^blk\.(\d+)\.([a-z_0-9]+)\./.exec(name);
  if (m) return { layer: Number(m[1]), role: m[2]! };
  return { role: name.replace(/\.weight$/, '') };
}

const fmt = (x: number) => x.toPrecision(4);

export function buildLmReport(r: LmReportInput): ReportData {
  const mixqBase = r.equalSize.map((e) => point(e, equalSizeBudget(e.label.replace(/^mixq = /, ''))));
  const series: ReportSeries[] = [
    { name: 'mixq', kind: 'mixq', points: [point(r.mixq, r.budget), ...mixqBase] },
    ...r.baselines.map((b): ReportSeries => ({
      name: b.label,
      kind: b.kind === 'llama.cpp' ? 'rule' : 'uniform',
      points: [point(b)],
    })),
  ];
  const elements = r.table.weights.reduce((s, w) => s + w.elements, 0);
  const ppl = [r.input, r.mixq, ...r.baselines].map(
    (x) =>
      `${x.label}: perplexity ${fmt(x.perplexity)} (x${fmt(x.perplexityRatioCi[0])}..${fmt(x.perplexityRatioCi[1])} of the input's), top-1 ${fmt(x.top1)}, ${x.fileBytes} bytes`,
  );
  return {
    schemaVersion: 1,
    title: `mixq plan for ${r.name} (GGUF, measured in llama.cpp)`,
    model: { name: r.name, format: 'gguf', elements, fp32Bytes: 4 * elements },
    metric: { name: 'KL to the input (nats/token)', fp32: 0, direction: 'lower' },
    budgets: [r.budget],
    plan: {
      budget: r.budget,
      weights: r.plan.weights.length,
      elements,
      bytes: r.mixq.weightBytes,
      bitsPerWeight: r.mixq.bitsPerWeight,
      predictedDamage: r.plan.totals.predictedDamage,
      metric: r.mixq.kl,
      metricChangeCi: r.mixq.klCi,
      solver: r.plan.solver.name,
      solverStatus: r.plan.solver.status,
      selection: {
        chosen: r.selection.chosen,
        metric: 'KL to the input on validation (nats/token)',
        tried: r.selection.tried.map((t) => ({
          label: t.plan.label,
          bitsPerWeight: t.plan.bitsPerWeight,
          bytes: t.plan.weightBytes,
          validation: t.validationKl,
        })),
      },
      validation: r.validation,
    },
    series,
    layers: r.plan.weights.map((w) => ({
      name: w.name,
      ...layerOf(w.name),
      bitsPerWeight: w.bitsPerWeight,
      scheme: w.scheme.blockType ?? w.scheme.format,
      elements: w.shape.reduce((a, b) => a * b, 1),
      bytes: w.bytes,
    })),
    sensitivity: {
      measure: r.measure,
      candidates: r.table.types,
      weights: r.table.weights.map((w) => ({
        name: w.name,
        ...layerOf(w.name),
        damage: r.table.types.map((t) => w.candidates.find((c) => c.type === t)?.damage ?? null),
      })),
    },
    correlations: [],
    timings: r.timings,
    ...(r.command ? { generated: { command: r.command } } : {}),
    notes: [...ppl, ...r.notes],
  };
}

/**
 * A synthetic but realistic ReportData, shaped like the bundled GPT (token embedding, n blocks of
 * attn_qkv / attn_proj / mlp_fc / mlp_proj at width 192, head) evaluated on perplexity. The numbers are
 * made up to look like a real sweep (damage ~ 4^-bits with a per-weight factor; first/last blocks and
 * FFN-down more sensitive), seeded so every run is identical. Used by the report tests and by
 * scripts/dev/demo-report.ts.
 */
import { Rng } from '../../src/core/rng.ts';
import type { ReportData, ReportLayer, ReportSeries } from '../../src/report/types.ts';

const D = 192;
const ROLES = [
  { role: 'attn_qkv', rows: D, cols: 3 * D },
  { role: 'attn_proj', rows: D, cols: D },
  { role: 'mlp_fc', rows: D, cols: 4 * D },
  { role: 'mlp_proj', rows: 4 * D, cols: D },
] as const;

export interface FixtureOptions {
  /** Number of transformer blocks (default 6). */
  readonly blocks?: number;
  /** Replace some names by hostile strings (HTML / control characters) to test escaping. */
  readonly hostile?: boolean;
}

export const HOSTILE_NAME = '<script>alert("x")</script>';

export function demoReport(opts: FixtureOptions = {}): ReportData {
  const blocks = opts.blocks ?? 6;
  const rng = new Rng(20261122);
  const weights: { name: string; layer?: number; role: string; elements: number; sens: number }[] = [];
  weights.push({ name: 'wte', role: 'token_embd', elements: 96 * D, sens: 0.6 });
  for (let b = 0; b < blocks; b++) {
    const edge = b === 0 || b === blocks - 1 ? 3 : 1;
    for (const r of ROLES) {
      const roleF = r.role === 'mlp_proj' ? 2.5 : r.role === 'attn_qkv' ? 1.6 : 1;
      weights.push({
        name: `blocks.${b}.${r.role}`,
        layer: b,
        role: r.role,
        elements: r.rows * r.cols,
        sens: edge * roleF * Math.exp(0.5 * rng.nextNormal()),
      });
    }
  }
  weights.push({ name: 'head', role: 'output', elements: D * 96, sens: 4 });
  if (opts.hostile && weights[1]) weights[1].name = HOSTILE_NAME;
  const elements = weights.reduce((s, w) => s + w.elements, 0);

  // Candidates with their exact bits per weight (fp16 scales) and effective bits for the damage model.
  const candidates = [
    { label: 'int8 per-channel', bpw: 8 + 16 / D, eff: 8 },
    { label: 'int6 g32 gptq', bpw: 6.5, eff: 6.1 },
    { label: 'int4 g32 gptq', bpw: 4.5, eff: 4.2 },
    { label: 'nvfp4', bpw: 4.5, eff: 3.9 },
    { label: 'int3 g32 gptq', bpw: 3.5, eff: 3.1 },
    { label: 'int2 g32 gptq', bpw: 2.5, eff: 2.0 },
  ];
  const damage = (sens: number, eff: number) => sens * 2e-2 * 4 ** -eff;

  // The chosen plan at 4.0 b/w: sensitive weights get 6 bits, the least sensitive 3.
  const sorted = [...weights].sort((a, b) => a.sens - b.sens);
  const pick = new Map<string, (typeof candidates)[number]>();
  sorted.forEach((w, i) => {
    const q = i / sorted.length;
    pick.set(
      w.name,
      (q < 0.5 ? candidates[4] : q < 0.92 ? candidates[2] : candidates[1]) as (typeof candidates)[number],
    );
  });
  const layers: ReportLayer[] = weights.map((w) => {
    const c = pick.get(w.name) as (typeof candidates)[number];
    return {
      name: w.name,
      ...(w.layer === undefined ? {} : { layer: w.layer }),
      role: w.role,
      bitsPerWeight: c.bpw,
      scheme: c.label,
      elements: w.elements,
      bytes: Math.ceil((w.elements * c.bpw) / 8),
    };
  });
  const planBytes = layers.reduce((s, l) => s + (l.bytes ?? 0), 0);
  const planBits = (8 * planBytes) / elements;
  const planDamage = weights.reduce(
    (s, w) => s + damage(w.sens, (pick.get(w.name) as { eff: number }).eff),
    0,
  );

  const fp32 = 5.214;
  // Perplexity of a model at `eff` effective bits: grows roughly like 2^-eff, sharply below 3.
  const ppl = (eff: number, penalty = 1) => fp32 * (1 + penalty * 1.6 * 2 ** -((eff - 1.2) ** 1.15));
  const pt = (bpw: number, eff: number, penalty = 1, budget?: string) => ({
    bitsPerWeight: bpw,
    bytes: Math.round((elements * bpw) / 8),
    metric: Number(ppl(eff, penalty).toFixed(4)),
    ...(budget ? { budget } : {}),
  });
  const budgets = [3, 3.5, 4, 4.5, 5, 6, 8];
  const series: ReportSeries[] = [
    {
      name: 'mixq',
      kind: 'mixq',
      points: budgets.map((b) => ({
        ...pt(b, b + 0.55, 0.8, `${b} b/w`),
        predictedDamage: Number((planDamage * 4 ** (4 - b)).toPrecision(4)),
      })),
    },
    { name: 'INT8 per-channel', kind: 'uniform', points: [pt(8 + 16 / D, 8)] },
    { name: 'FP8 E4M3 per-channel', kind: 'uniform', points: [pt(8 + 16 / D, 7.2)] },
    { name: 'INT4 RTN g128', kind: 'uniform', points: [pt(4.125, 3.55)] },
    { name: 'INT4 RTN g32', kind: 'uniform', points: [pt(4.5, 3.85)] },
    { name: 'INT4 GPTQ g128', kind: 'uniform', points: [pt(4.125, 3.9)] },
    { name: 'INT4 GPTQ g32', kind: 'uniform', points: [pt(4.5, 4.2)] },
    { name: 'NVFP4', kind: 'uniform', points: [pt(4.5, 3.95)] },
    { name: 'MXFP4', kind: 'uniform', points: [pt(4.25, 3.45)] },
    { name: 'Q4_K_M rule', kind: 'rule', points: [pt(4.85, 4.75), pt(3.9, 3.7)] },
  ];

  return {
    schemaVersion: 1,
    model: { name: opts.hostile ? `gpt-tiny ${HOSTILE_NAME}` : 'gpt-tiny', format: 'onnx', elements },
    metric: { name: 'perplexity', fp32, direction: 'lower' },
    budgets: budgets.map((b) => `${b} b/w`),
    plan: {
      budget: '--bits 4.0',
      weights: layers.length,
      elements,
      bytes: planBytes,
      bitsPerWeight: planBits,
      predictedDamage: Number(planDamage.toPrecision(6)),
      measuredDamage: Number((planDamage * 1.3).toPrecision(6)),
      metric: pt(4, 4.55, 0.8).metric,
      solver: 'highs',
      solverStatus: 'optimal',
    },
    series,
    layers,
    sensitivity: {
      measure: 'KL divergence',
      candidates: candidates.map((c) => c.label),
      weights: weights.map((w) => ({
        name: w.name,
        ...(w.layer === undefined ? {} : { layer: w.layer }),
        role: w.role,
        damage: candidates.map((c) => Number(damage(w.sens, c.eff).toPrecision(4))),
      })),
    },
    correlations: [
      { proxy: 'KL divergence (per weight)', model: 'gpt-tiny', spearman: 0.912, kendall: 0.771, n: 26 },
      { proxy: 'imatrix-weighted MSE', model: 'gpt-tiny', spearman: 0.874, kendall: 0.702, n: 26 },
      { proxy: 'weight MSE', model: 'gpt-tiny', spearman: 0.611, kendall: 0.452, n: 26 },
      { proxy: 'Hessian trace (HAWQ)', model: 'gpt-tiny', spearman: 0.795, kendall: 0.618, n: 26 },
    ],
    timings: [
      { step: 'load + calibrate', ms: 1830 },
      { step: 'sensitivity (6 candidates)', ms: 41_200 },
      { step: 'allocation (7 budgets, HiGHS)', ms: 920 },
      { step: 'apply + evaluate (17 models)', ms: 63_400 },
      { step: 'report', ms: 1450 },
    ],
    generated: {
      by: 'mixq 0.1.0 (demo fixture)',
      at: '2026-11-22T17:00:00Z',
      command: 'mixq quantize --bits 4.0',
    },
    notes: ['Synthetic demo data: the numbers illustrate the layout and are not measurements.'],
  };
}

/**
 * The GGUF damage table calibrated against KL measured in llama.cpp, on the calibration windows.
 *
 * The table's damage of type T on tensor W is a squared error (pipeline/gguf/damage.ts) whose scale
 * differs from tensor to tensor: an error in the token embedding and the same error in an attention
 * projection do not move the next-token distribution alike. For each tensor with a choice, one probe is
 * measured end to end: the model with only that tensor re-quantized to its smallest candidate type
 * (every other tensor as in the input), KL(input || probe) on the calibration windows. The tensor's
 * factor is KL / damage(probe), and every candidate's damage becomes factor * damage: predicted KL in
 * nats per token, additive over tensors to first order, which is what the MILP sums. A tensor whose
 * candidates are all one type (nothing to choose) takes the median factor. Cost: one written file and one
 * llama.cpp pass over the calibration windows per tensor.
 *
 * measureDamageKl (`--damage kl`) measures every (tensor, candidate type) pair that way instead: the
 * damage is the KL itself, at one pass per pair.
 */
import type { GgufDamageTable, GgufDamageWeight } from '../gguf/damage.ts';
import type { GgufLmBench } from './measure.node.ts';
import type { TokenWindow } from '../../runtime/lm-windows.ts';

export interface KlCalibration {
  readonly table: GgufDamageTable;
  /** Per weight: the probe type, its squared error, the measured KL and the factor. */
  readonly probes: readonly {
    readonly name: string;
    readonly type?: string;
    readonly damage: number;
    readonly kl?: number;
    readonly factor: number;
  }[];
}

function probeOf(w: GgufDamageWeight) {
  const real = w.candidates.filter((c) => c.damage > 0);
  if (real.length === 0 || new Set(w.candidates.map((c) => c.type)).size < 2) return undefined;
  return real.reduce((a, b) => (b.bytes < a.bytes || (b.bytes === a.bytes && b.damage > a.damage) ? b : a));
}

export async function calibrateDamage(
  bench: GgufLmBench,
  table: GgufDamageTable,
  windows: readonly TokenWindow[],
  onProgress?: (done: number, total: number) => void,
): Promise<KlCalibration> {
  const probes: { name: string; type?: string; damage: number; kl?: number; factor: number }[] = [];
  const total = table.weights.length;
  for (const [i, w] of table.weights.entries()) {
    const p = probeOf(w);
    if (!p) probes.push({ name: w.name, damage: 0, factor: Number.NaN });
    else {
      const s = await bench.score(new Map([[w.name, p.type]]), windows);
      const kl = Math.max(0, s.klMean ?? 0);
      probes.push({ name: w.name, type: p.type, damage: p.damage, kl, factor: kl / p.damage });
    }
    onProgress?.(i + 1, total);
  }
  const measured = probes
    .filter((p) => Number.isFinite(p.factor))
    .map((p) => p.factor)
    .sort((a, b) => a - b);
  const median = measured.length ? measured[Math.floor(measured.length / 2)]! : 1;
  for (const p of probes) if (!Number.isFinite(p.factor)) p.factor = median;
  const weights = table.weights.map((w, i) => ({
    ...w,
    candidates: w.candidates.map((c) => ({ ...c, damage: c.damage * probes[i]!.factor })),
  }));
  return { table: { ...table, weights }, probes };
}

/** `--damage kl`: every (tensor, type) pair measured alone in llama.cpp on the calibration windows. */
export async function measureDamageKl(
  bench: GgufLmBench,
  table: GgufDamageTable,
  windows: readonly TokenWindow[],
  onProgress?: (done: number, total: number) => void,
): Promise<KlCalibration> {
  const total = table.weights.reduce((s, w) => s + w.candidates.length, 0);
  let done = 0;
  const probes: KlCalibration['probes'][number][] = [];
  const weights: GgufDamageWeight[] = [];
  for (const w of table.weights) {
    const single = new Set(w.candidates.map((c) => c.type)).size < 2;
    const candidates = [];
    for (const c of w.candidates) {
      let kl = 0;
      if (c.damage > 0 && !single) {
        const s = await bench.score(new Map([[w.name, c.type]]), windows);
        kl = Math.max(0, s.klMean ?? 0);
      }
      candidates.push({ ...c, damage: kl });
      onProgress?.(++done, total);
    }
    weights.push({ ...w, candidates });
    probes.push({ name: w.name, damage: 0, factor: Number.NaN });
  }
  return { table: { ...table, weights }, probes };
}

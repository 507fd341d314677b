/**
 * Stage 2, sensitivity: the damage of every (weight, candidate) pair (proxies, noise-calibrated, and the
 * measured KL with `damage: 'kl'`), then the options each weight has on the output target: the candidates
 * the target can store on it, with the target's exact bytes. A weight no candidate fits stays in float,
 * and the log says why and what to add.
 *
 *   takes  the run context, the calibration, the candidate schemes, the damage measure
 *   gives  Sensitivity: the analysis (table, statistics, row layouts), the analysed weights with their
 *          options, and the allocation problem's weights (candidates aligned with the options)
 */
import type { AllocWeight } from '../../analysis/allocate/problem.ts';
import { ruleCategories } from '../../analysis/allocate/rule-mix.ts';
import { schemeId } from '../../analysis/sensitivity/candidates.ts';
import type { LayerStats } from '../../analysis/sensitivity/proxies.ts';
import { applicable } from '../../analysis/sensitivity/apply-scheme.ts';
import { type DamageSource, weightOptions } from '../../analysis/sensitivity/table.ts';
import { MixqError } from '../../core/errors.ts';
import type { RowLayout } from '../../quant/layout.ts';
import { hasScaleSearch, representable, type Scheme } from '../../quant/scheme.ts';
import { analyzeLoadedModel, type SensitivityAnalysis } from '../../runtime/sensitivity.node.ts';
import type { Calibrated } from './calibrate.ts';
import type { RunContext } from './context.ts';

/** One candidate a weight can take on the target. */
export interface SchemeOption {
  readonly scheme: Scheme;
  /** The target's exact bytes, and the information bits a bits-per-weight budget counts. */
  readonly bytes: number;
  readonly bits: number;
  readonly damage: number;
  /** The measured KL of this weight alone, when measured. */
  readonly measuredKl?: number;
}

/** A weight of the analysis, with what the target lets it be. */
export interface AnalysedWeight {
  readonly name: string;
  readonly layout: RowLayout;
  readonly stats: LayerStats;
  /** First consumer, e.g. 'MatMul:1'. */
  readonly consumer: string;
  readonly layer?: number;
  readonly role?: string;
  readonly elements: number;
  /** The options, aligned with the weight's allocation candidates (allocation choice = option index). */
  readonly options: readonly SchemeOption[];
}

export interface Sensitivity {
  /** The candidate schemes measured (row frame). */
  readonly candidates: readonly Scheme[];
  readonly analysis: SensitivityAnalysis;
  /** Every analysed weight that has an option (the weights a plan quantizes), in table order. */
  readonly weights: readonly AnalysedWeight[];
  /** The allocation problem's weights, in the same order. */
  readonly allocWeights: readonly AllocWeight[];
  /** Elements of the quantized weights, and of the float weights left in float. */
  readonly elements: number;
  readonly floatElements: number;
  /** Analysed weights no candidate fits (left in float), with why. */
  readonly unplaced: readonly { readonly name: string; readonly why: string }[];
}

/**
 * The schemes the output layer (a classifier's logits) may take: none with a clipping search while another
 * candidate remains (undefined: no restriction). Clipping shrinks each class's largest weights, and the few
 * calibration samples hold few of the classes. PP-OCRv4's CTC head alone at INT2 g32 GPTQ: CER +0.07 points
 * over fp32 with min-max ranges, +0.32 with the search (paired 95% interval +0.18..+0.46 over the 296
 * evaluation lines), though the search's predicted damage was smaller.
 */
export function outputLayerSchemes(schemes: readonly Scheme[]): Scheme[] | undefined {
  const plain = schemes.filter((s) => !hasScaleSearch(s));
  return plain.length > 0 && plain.length < schemes.length ? plain : undefined;
}

/** Why `s` is not an option for a weight (for the message of a weight left in float). */
function whyNot(ctx: RunContext, s: Scheme, w: Omit<AnalysedWeight, 'options'>, hasDamage: boolean): string {
  const id = schemeId(s);
  if (!applicable(s, w.layout, w.stats)) {
    if (s.blockType !== undefined)
      return `${id}: rows of ${w.layout.cols} are not whole ${s.blockType} blocks`;
    if (s.algorithm === 'gptq' || s.algorithm === 'awq')
      return `${id}: ${s.algorithm.toUpperCase()} needs X^T X of a matrix or 1 x 1 convolution (${w.layout.dims.join('x')})`;
    return `${id}: needs calibration statistics`;
  }
  if (!representable(s, w.layout))
    return `${id}: groups along a ${w.layout.dims.join('x')} kernel's flattened reduction are not runs of one tensor axis`;
  if (!hasDamage) return `${id}: no damage measured`;
  return `${id}: ${ctx.target.name} cannot store it on a ${w.consumer.split(':')[0]} weight of ${w.layout.dims.join('x')}`;
}

export async function measureSensitivity(
  ctx: RunContext,
  cal: Calibrated,
  candidates: readonly Scheme[],
  damage: DamageSource,
): Promise<Sensitivity> {
  const { model, task } = ctx;
  const axes = new Map<string, number>();
  for (const [name, t] of model.tensors) if (t.outputAxis !== undefined) axes.set(name, t.outputAxis);
  const analysis = await analyzeLoadedModel(cal.fed, axes, {
    probe: (m) => task.probe(m),
    calibration: cal.calibration,
    candidates,
    ...(cal.biasCorrected ? { biasCorrected: cal.biasCorrected } : {}),
    measure: damage === 'kl',
    modelName: task.displayName,
    onProgress: (d, t) => ctx.progress('sensitivity', d, t),
  });
  const fedByName = new Map(model.weights.map((w) => [w.name, w] as const));
  const base = analysis.table.weights.map((w) => {
    const info = model.tensors.get(w.name);
    return {
      name: w.name,
      layout: analysis.layouts.get(w.name)!,
      stats: analysis.stats.get(w.name)!,
      consumer: fedByName.get(w.name)?.consumers[0] ?? '',
      ...(info?.layer !== undefined ? { layer: info.layer } : {}),
      ...(info?.role !== undefined ? { role: info.role } : {}),
      elements: w.elements,
    };
  });
  const cats = ruleCategories(base.map((w) => ({ name: w.name, ...(w.role ? { role: w.role } : {}) })));
  const weights: AnalysedWeight[] = [];
  const allocWeights: AllocWeight[] = [];
  const unplaced: { name: string; why: string }[] = [];
  for (const [i, w] of base.entries()) {
    const tw = analysis.table.weights[i]!;
    const options: SchemeOption[] = weightOptions(tw, damage, analysis.table.baselineMetric, (e) =>
      representable(e.scheme, w.layout) ? ctx.target.cost(e.scheme, w, model) : undefined,
    ).map((o) => ({
      scheme: o.entry.scheme,
      bytes: o.bytes,
      bits: o.bits,
      damage: o.damage,
      ...(o.entry.measured ? { measuredKl: o.entry.measured.kl } : {}),
    }));
    if (options.length === 0) {
      const measured = new Set(
        weightOptions(tw, damage, analysis.table.baselineMetric).map((o) => o.entry.scheme),
      );
      const why = candidates.map((s) => whyNot(ctx, s, w, measured.has(s))).join('; ');
      unplaced.push({ name: w.name, why });
      ctx.log(
        `${w.name} stays in float: no candidate fits it (${why}); add one that does to --candidates, e.g. int8-pc-rtn`,
      );
      continue;
    }
    const ids = options.map((o) => schemeId(o.scheme));
    const plain = options.filter((o) => !hasScaleSearch(o.scheme));
    const restrict = cats[i] === 'output' && plain.length > 0 && plain.length < options.length;
    if (restrict) ctx.log(`output layer ${w.name}: candidates without the clipping search only`);
    weights.push({ ...w, options });
    allocWeights.push({
      name: w.name,
      elements: w.elements,
      candidates: options.map((o, k) => ({
        scheme: ids[k]!,
        bytes: o.bytes,
        bits: o.bits,
        damage: o.damage,
      })),
      ...(restrict ? { allowed: plain.map((o) => schemeId(o.scheme)) } : {}),
    });
  }
  if (weights.length === 0)
    throw new MixqError(`no candidate scheme can store any weight for target ${ctx.target.name}`, {
      source: '--candidates',
      expected: '--emit none / safetensors, or other --candidates (e.g. int8-pc-rtn)',
    });
  const planned = new Set(weights.map((w) => w.name));
  return {
    candidates,
    analysis,
    weights,
    allocWeights,
    elements: weights.reduce((s, w) => s + w.elements, 0),
    floatElements: model.weights.reduce((s, w) => s + (planned.has(w.name) ? 0 : w.elementCount), 0),
    unplaced,
  };
}

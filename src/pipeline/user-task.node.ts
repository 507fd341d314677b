/**
 * The task of any ONNX model mixq does not bundle: the user's inputs (`--calibration <folder>`, split into
 * calibration / validation / evaluation that never overlap, io/feeds.node.ts), or seeded random inputs
 * only when asked (`--synthetic`, with a warning on every plan), and a fidelity measure per output chosen
 * from the graph and one fp32 sample (analysis/output-measures.ts: distributions -> KL, probability maps ->
 * binary KL and mask agreement, embeddings -> cosine, other tensors -> relative MSE), overridable with
 * `--metric` and `--output`. The task metric is the weighted damage of the measured outputs vs fp32 (0 =
 * identical); the fp32 outputs of each split are computed once.
 */
import { basename } from 'node:path';
import {
  accumulateMeasure,
  chooseMeasure,
  combinedDamage,
  finishMeasure,
  type MeasureResult,
  newMeasureAccumulator,
  type OutputMeasure,
  parseMeasureOverride,
} from '../analysis/output-measures.ts';
import { MixqError } from '../core/errors.ts';
import type { FeedSample } from '../io/feeds.ts';
import { readFeedFolder } from '../io/feeds.node.ts';
import { outputProducers } from '../io/onnx/outputs.ts';
import type { ModelProto } from '../io/onnx/proto-types.ts';
import { syntheticFeeds } from '../runtime/fidelity.node.ts';
import { type Feeds, fromWire, ort } from '../runtime/ort.node.ts';
import type { InputMeta, ModelRunner } from '../runtime/runner.node.ts';
import { type DamageProbe, type ProbeOutput, runOutputs } from '../runtime/sensitivity.node.ts';
import { withEvalRunner } from '../runtime/session-pool.node.ts';
import type { TaskDefinition, TaskScore } from './tasks.node.ts';

/** Where a user model's data comes from and how its outputs are measured. */
export interface UserDataOptions {
  /** A folder of the user's inputs (`--calibration`; io/feeds.node.ts says what it may hold). */
  readonly calibrationData?: string;
  /** Seeded random inputs instead (`--synthetic`): an explicit opt-in, warned on every plan. */
  readonly synthetic?: boolean;
  /** Measure overrides (`--metric`): 'kind[:arg]' for every measured output or 'output=kind[:arg]'. */
  readonly metrics?: readonly string[];
  /** The outputs measured (`--output`); default every float output. */
  readonly outputs?: readonly string[];
  /** Synthetic samples per split (default 8 for validation and evaluation, 4 for calibration). */
  readonly evalSize?: number;
  readonly calibrationSize?: number;
}

/** The advice of a refusal for lack of data. */
export const DATA_ADVICE =
  '--calibration <folder> of real inputs (.npy, JSON feeds or images with preprocess.json), or --synthetic to accept random inputs';

/** The advice of a refusal of a measure that cannot see damage. */
export const MEASURE_ADVICE =
  '--metric <kind> or --output <name> to measure an output that depends on the weights, or --calibration <folder> of real inputs';

interface UserData {
  readonly splits: Record<'calibration' | 'validation' | 'evaluation', readonly Feeds[]>;
  readonly rule: string;
  readonly measures: readonly OutputMeasure[];
  readonly synthetic: boolean;
}

const ortFeeds = (s: FeedSample): Feeds => fromWire(s.tensors);

async function readSplits(
  path: string,
  opts: UserDataOptions,
  inputs: readonly InputMeta[],
): Promise<Pick<UserData, 'splits' | 'rule' | 'synthetic'>> {
  if (opts.calibrationData) {
    const split = await readFeedFolder(opts.calibrationData, inputs);
    return {
      splits: {
        calibration: split.calibration.map(ortFeeds),
        validation: split.validation.map(ortFeeds),
        evaluation: split.evaluation.map(ortFeeds),
      },
      rule: `${opts.calibrationData}: ${split.rule}`,
      synthetic: false,
    };
  }
  if (!opts.synthetic)
    throw new MixqError(`${basename(path)} is not a bundled model and no calibration data was given`, {
      source: path,
      expected: DATA_ADVICE,
    });
  const n = opts.evalSize ?? 8;
  const cal = opts.calibrationSize ?? 4;
  return {
    splits: {
      calibration: syntheticFeeds(inputs, cal),
      validation: syntheticFeeds(inputs, n, { seed: 11 }),
      evaluation: syntheticFeeds(inputs, n, { seed: 7 }),
    },
    rule: `SYNTHETIC random inputs (--synthetic): ${cal} to calibrate, ${n} to validate (seed 11), ${n} to evaluate (seed 7)`,
    synthetic: true,
  };
}

/** The measures of the model's outputs from the graph and fp32's outputs on one sample, with overrides. */
function chooseMeasures(
  path: string,
  proto: ModelProto | undefined,
  sample: Record<string, ort.Tensor>,
  opts: UserDataOptions,
): OutputMeasure[] {
  const producers = proto ? outputProducers(proto) : new Map();
  const names = opts.outputs?.length ? [...opts.outputs] : Object.keys(sample);
  for (const n of names)
    if (!(n in sample))
      throw new MixqError(`no output '${n}'`, {
        source: '--output',
        expected: `one of ${Object.keys(sample).join(', ')}`,
      });
  const overrides = (opts.metrics ?? []).map((m) => parseMeasureOverride(m));
  for (const o of overrides)
    if (o.output !== undefined && !names.includes(o.output))
      throw new MixqError(`no measured output '${o.output}'`, {
        source: '--metric',
        expected: `one of ${names.join(', ')}`,
      });
  const float = names.filter((n) => sample[n]!.type === 'float32');
  const measures: OutputMeasure[] = [];
  for (const name of float) {
    const t = sample[name]!;
    const data = t.data as Float32Array;
    const o = overrides.find((x) => x.output === name) ?? overrides.find((x) => x.output === undefined);
    const weight = 1 / float.length;
    const chosen = chooseMeasure(
      { name, producer: producers.get(name), sample: { dims: t.dims, data }, float: true },
      weight,
      o?.threshold,
    );
    if (!chosen) continue;
    if (!o || o.kind === chosen.kind) {
      measures.push(o?.axis !== undefined ? { ...chosen, axis: o.axis, flattenFrom: undefined } : chosen);
      continue;
    }
    measures.push({
      output: name,
      kind: o.kind,
      weight,
      ...(o.axis !== undefined ? { axis: o.axis } : {}),
      ...(o.kind === 'distribution' ? { values: 'logits' as const } : {}),
      ...(o.kind === 'probability-map' ? { threshold: o.threshold ?? 0.5 } : {}),
      reason: `--metric ${o.kind}${(o.threshold ?? o.axis ?? '') ? `:${o.threshold ?? o.axis}` : ''} (chosen: ${chosen.kind}, ${chosen.reason})`,
    });
  }
  if (measures.length === 0)
    throw new MixqError('no float output to measure', {
      source: path,
      expected: 'a float32 output (--output)',
    });
  return measures;
}

/** Each measure's statistics and the weighted damage of candidate outputs vs fp32's. */
export function measureOutputs(
  measures: readonly OutputMeasure[],
  ref: readonly (readonly ProbeOutput[])[],
  out: readonly (readonly ProbeOutput[])[],
): { damage: number; outputs: MeasureResult[] } {
  const outputs = measures.map((m, k) => {
    const acc = newMeasureAccumulator(m);
    out.forEach((o, i) => accumulateMeasure(acc, ref[i]![k]!.data, o[k]!.data, ref[i]![k]!.dims));
    return finishMeasure(acc);
  });
  return { damage: combinedDamage(outputs, measures), outputs };
}

/** What the measures are, in one line. */
export function describeMeasures(measures: readonly OutputMeasure[]): string {
  return measures
    .map(
      (m) =>
        `${m.output}: ${m.kind}${measures.length > 1 ? ` (weight ${m.weight.toFixed(2)})` : ''} — ${m.reason}`,
    )
    .join('; ');
}

/**
 * The task of a user's ONNX model. Its data and measures are read on first use (`prepare`); `fp32`
 * gives the model's bytes (or path) for the fp32 references, `graph` its parsed form (output producers).
 */
export function userTask(
  path: string,
  opts: UserDataOptions,
  fp32Model: () => string | Uint8Array,
  graph: () => ModelProto | undefined,
): TaskDefinition & { prepare(): Promise<void> } {
  let data: Promise<UserData> | undefined;
  let known: UserData | undefined;
  const load = (): Promise<UserData> =>
    (data ??= withEvalRunner(fp32Model(), async (fp32) => {
      const { splits, rule, synthetic } = await readSplits(path, opts, fp32.inputMetadata);
      const sample = await fp32.run(splits.calibration[0]!);
      known = { splits, rule, synthetic, measures: chooseMeasures(path, graph(), sample, opts) };
      return known;
    }));
  const references = new Map<string, Promise<ProbeOutput[][]>>();
  const score = async (runner: ModelRunner, split: 'validation' | 'evaluation'): Promise<TaskScore> => {
    const d = await load();
    const names = d.measures.map((m) => m.output);
    let ref = references.get(split);
    if (!ref) {
      ref = withEvalRunner(fp32Model(), (r) => runOutputs(r, d.splits[split], names));
      references.set(split, ref);
    }
    const { damage, outputs } = measureOutputs(
      d.measures,
      await ref,
      await runOutputs(runner, d.splits[split], names),
    );
    return { value: damage, outputs };
  };
  const what = (split: keyof UserData['splits']) =>
    known ? `${known.splits[split].length} ${known.synthetic ? 'synthetic ' : ''}samples` : 'the samples';
  return {
    name: basename(path),
    displayName: basename(path),
    modelPath: path,
    metric: { name: 'damage vs fp32', direction: 'lower', relative: false },
    get calibration() {
      return known ? `${what('calibration')} (${known.rule})` : 'the calibration samples';
    },
    get calibrationSize() {
      return known?.splits.calibration.length ?? opts.calibrationSize ?? 4;
    },
    get evaluation() {
      return `damage vs fp32 (${known ? describeMeasures(known.measures) : 'per output'}) on ${what('evaluation')}`;
    },
    get validation() {
      return `damage vs fp32 on ${what('validation')}`;
    },
    get warning() {
      return known?.synthetic
        ? 'made from SYNTHETIC random inputs (--synthetic): its damage on real inputs is unknown; pass --calibration <folder>'
        : undefined;
    },
    async prepare() {
      await load();
    },
    async probe(): Promise<DamageProbe> {
      const d = await load();
      return {
        feeds: d.splits.calibration,
        outputs: d.measures.map((m) => m.output),
        measure: describeMeasures(d.measures),
        damage: (ref, out) => measureOutputs(d.measures, ref, out).damage,
      };
    },
    score: (runner) => score(runner, 'evaluation'),
    validate: (runner) => score(runner, 'validation'),
  };
}

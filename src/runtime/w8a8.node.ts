/**
 * Static W8A8 export with onnxruntime-node calibration (the in-memory rewrite: export/onnx/activations.ts).
 *
 * calibrateActivationRanges runs calibration feeds through a copy of the model whose W8A8 target
 * activations (the float inputs of MatMuls with constant weights) are extra graph outputs, and keeps per
 * tensor: min, max, per-channel max |x| (last axis; SmoothQuant's statistic) and a bounded deterministic
 * sample of the values (every value until `maxSamples`, then every 2nd, 4th, ...: a stride sample).
 * The range used for quantization ("clipping") is
 *   'minmax'     : [min, max] of everything seen (default; nothing saturates on the calibration data);
 *   'percentile' : [q(1 - p), q(p)] of the sample with p = `percentile` (default 99.99): the 0.01% most
 *                  extreme values on each side saturate, buying resolution for the rest.
 *
 * exportW8A8: fp32 file -> [calibrate -> SmoothQuant fold] -> calibrate -> int8 weights + QDQ activations,
 * returned as self-contained ONNX bytes (external data inlined).
 */
import { MixqError } from '../core/errors.ts';
import {
  type ActivationQdqOptions,
  type ActivationRange,
  findW8A8Targets,
  insertActivationQdq,
  smoothQuantOnnx,
  type W8A8Layer,
} from '../export/onnx/activations.ts';
import { inlineExternalData } from '../io/onnx/inline.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import type { ValueInfoProto } from '../io/onnx/proto-types.ts';
import { type OnnxModel, readOnnx, writeOnnx } from '../io/onnx/read.ts';
import { onnxMessageType } from '../io/onnx/schema.ts';
import { type Feeds, openSession } from './ort.node.ts';

export type ClipMethod = 'minmax' | 'percentile';

export interface CalibrationRangeOptions {
  /** Default 'minmax'. */
  readonly clip?: ClipMethod;
  /** Two-sided percentile for 'percentile' (default 99.99). */
  readonly percentile?: number;
  /** Values kept per tensor for percentiles (default 2^21). */
  readonly maxSamples?: number;
  /** Tensors to calibrate; default the W8A8 targets' activations (findW8A8Targets with these options). */
  readonly activations?: readonly string[];
  readonly exclude?: readonly string[];
  readonly includeLogits?: boolean;
}

export interface CalibratedActivation extends ActivationRange {
  readonly activation: string;
  /** Raw extremes seen (min / max above are after clipping). */
  readonly observedMin: number;
  readonly observedMax: number;
  /** Per-channel max |x| over the last axis. */
  readonly channelAbsMax: Float32Array;
  readonly count: number;
}

class Stat {
  min = Infinity;
  max = -Infinity;
  count = 0;
  absMax: Float32Array | undefined;
  sample: Float32Array;
  n = 0;
  stride = 1;
  constructor(cap: number) {
    this.sample = new Float32Array(cap);
  }
  add(data: Float32Array, channels: number): void {
    if (!this.absMax) this.absMax = new Float32Array(channels);
    else if (this.absMax.length !== channels)
      throw new MixqError('activation changed its channel count between feeds', {
        source: 'calibrateActivationRanges',
        expected: `${this.absMax.length}`,
      });
    const am = this.absMax;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      const a = Math.abs(v);
      const c = i % channels;
      if (a > am[c]!) am[c] = a;
      const idx = this.count++;
      if (idx % this.stride !== 0) continue;
      if (this.n === this.sample.length) {
        // halve: keep every other kept value (indices that are multiples of the doubled stride)
        const half = Math.ceil(this.n / 2);
        for (let j = 0; j < half; j++) this.sample[j] = this.sample[2 * j]!;
        this.n = half;
        this.stride *= 2;
      }
      if (idx % this.stride === 0) this.sample[this.n++] = v;
    }
  }
}

function quantile(sorted: Float32Array, p: number): number {
  if (sorted.length === 0) return 0;
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

async function selfContained(model: OnnxModel): Promise<OnnxModel> {
  const m = readOnnx(writeOnnx(model), {
    source: model.source,
    externalData: model.externalData,
    limits: model.limits,
  });
  await inlineExternalData(m);
  return m;
}

/**
 * Per-tensor calibrated ranges (and per-channel max |x|) of the W8A8 target activations of `model` (an
 * in-memory model or a path) over `feeds`. Deterministic: feeds are processed in order.
 * @throws MixqError when no feeds are given or an activation is not float32.
 */
export async function calibrateActivationRanges(
  model: OnnxModel | string,
  feeds: Iterable<Feeds> | AsyncIterable<Feeds>,
  opts: CalibrationRangeOptions = {},
): Promise<Map<string, CalibratedActivation>> {
  const clip = opts.clip ?? 'minmax';
  const p = (opts.percentile ?? 99.99) / 100;
  if (clip !== 'minmax' && clip !== 'percentile')
    throw new MixqError(`clip ${String(clip)}`, { field: 'clip', expected: "'minmax' or 'percentile'" });
  if (!(p > 0.5 && p <= 1))
    throw new MixqError(`percentile ${opts.percentile}`, { field: 'percentile', expected: '50 < p <= 100' });
  const file = typeof model === 'string' ? await readOnnxFile(model) : undefined;
  let bytes: Uint8Array;
  let names: string[];
  try {
    const m = await selfContained(file ?? (model as OnnxModel));
    names = [...new Set(opts.activations ?? findW8A8Targets(m, opts).targets.map((t) => t.activation))];
    const graph = m.proto.graph!;
    const outs = new Set(graph.output.map((o) => o.name));
    for (const n of names)
      if (!outs.has(n))
        graph.output.push(
          onnxMessageType('ValueInfoProto').fromObject({ name: n }) as unknown as ValueInfoProto,
        );
    bytes = writeOnnx(m);
  } finally {
    await file?.close();
  }
  const session = await openSession(bytes);
  const cap = opts.maxSamples ?? 1 << 21;
  const stats = new Map(names.map((n) => [n, new Stat(cap)]));
  let runs = 0;
  for await (const f of feeds) {
    const res = await session.run(f, names);
    for (const n of names) {
      const t = res[n];
      if (t?.type !== 'float32')
        throw new MixqError(`activation is ${t?.type ?? 'missing'}`, {
          source: 'calibrateActivationRanges',
          field: n,
          expected: 'float32',
        });
      stats.get(n)!.add(t.data as Float32Array, t.dims[t.dims.length - 1] ?? 1);
    }
    runs++;
  }
  await session.release();
  if (runs === 0)
    throw new MixqError('no calibration feeds', { source: 'calibrateActivationRanges', field: 'feeds' });
  const out = new Map<string, CalibratedActivation>();
  for (const [n, s] of stats) {
    let min = s.min;
    let max = s.max;
    if (clip === 'percentile') {
      const sorted = s.sample.slice(0, s.n).sort();
      min = quantile(sorted, 1 - p);
      max = quantile(sorted, p);
    }
    out.set(n, {
      activation: n,
      min,
      max,
      observedMin: s.min,
      observedMax: s.max,
      channelAbsMax: s.absMax ?? new Float32Array(0),
      count: s.count,
    });
  }
  return out;
}

export interface W8A8ExportOptions
  extends ActivationQdqOptions, Omit<CalibrationRangeOptions, 'activations'> {
  /** SmoothQuant before quantizing: true (alpha 0.5), { alpha }, or false / absent (off). */
  readonly smoothQuant?: boolean | { readonly alpha?: number };
}

export interface W8A8Export {
  /** Self-contained ONNX bytes. */
  readonly bytes: Uint8Array;
  readonly layers: readonly W8A8Layer[];
  readonly skipped: readonly { readonly node: string; readonly reason: string }[];
  /** Activations whose SmoothQuant scales were folded, and into what. */
  readonly smoothed: readonly {
    readonly activation: string;
    readonly target: string;
    readonly node: string;
  }[];
  readonly ranges: ReadonlyMap<string, CalibratedActivation>;
  readonly notes: readonly string[];
}

/**
 * The W8A8 model of an fp32 ONNX file, calibrated on `feeds` (an array: it is read twice with SmoothQuant).
 * @example
 *   const { bytes, layers } = await exportW8A8('models/gpt/model.onnx', calibrationFeeds, { smoothQuant: true });
 *   await writeFileAtomic('gpt-w8a8.onnx', bytes);
 */
export async function exportW8A8(
  modelPath: string,
  feeds: readonly Feeds[],
  opts: W8A8ExportOptions = {},
): Promise<W8A8Export> {
  const file = await readOnnxFile(modelPath);
  let model: OnnxModel;
  try {
    model = await selfContained(file);
  } finally {
    await file.close();
  }
  const notes: string[] = [];
  let smoothed: { activation: string; target: string; node: string }[] = [];
  if (opts.smoothQuant) {
    const alpha = typeof opts.smoothQuant === 'object' ? opts.smoothQuant.alpha : undefined;
    const first = await calibrateActivationRanges(model, feeds, { ...opts, clip: 'minmax' });
    const absMax = new Map([...first].map(([k, v]) => [k, v.channelAbsMax]));
    const sq = await smoothQuantOnnx(model, absMax, { ...opts, ...(alpha === undefined ? {} : { alpha }) });
    model = sq.model;
    smoothed = sq.folded.map((f) => ({ activation: f.activation, target: f.target, node: f.node }));
    for (const s of sq.skipped) notes.push(`SmoothQuant skipped '${s.activation}': ${s.reason}`);
  }
  const ranges = await calibrateActivationRanges(model, feeds, opts);
  const q = await insertActivationQdq(model, ranges, opts);
  await inlineExternalData(q.model);
  return {
    bytes: writeOnnx(q.model),
    layers: q.layers,
    skipped: q.skipped,
    smoothed,
    ranges,
    notes: [...notes, ...q.notes],
  };
}

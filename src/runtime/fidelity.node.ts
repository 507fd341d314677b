/**
 * Label-free fidelity of any ONNX model to a reference (normally its fp32 original): both run on the same
 * inputs, and every float output is compared row by row along its last axis (KL divergence of the output
 * distributions, top-1 agreement, output SQNR; see metrics.ts).
 *
 * For a model mixq knows nothing about, the inputs are synthetic and seeded: float inputs are standard
 * normal, integer inputs uniform in [0, intHigh), symbolic dimensions take `dims[name]` or 1. That is a
 * weaker test than real data; the bundled models use their own data (eval-lm / eval-ocr).
 */

import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import {
  accumulateFidelity,
  detectOutputKind,
  type FidelityAccumulator,
  type FidelityResult,
  finishFidelity,
  newFidelityAccumulator,
} from './metrics.ts';
import { type Feeds, ort } from './ort.node.ts';
import { concurrencyOf, forEachInOrder, type InputMeta, type ModelRunner } from './runner.node.ts';

export interface SyntheticInputOptions {
  /** Sizes of symbolic dimensions by name (e.g. { seq: 64 }); unnamed ones are 1. */
  readonly dims?: Readonly<Record<string, number>>;
  /** Integer inputs are drawn uniformly from [0, intHigh); default 16. */
  readonly intHigh?: number;
  readonly seed?: number;
}

/** One seeded synthetic feed per sample. */
export function syntheticFeeds(
  inputs: readonly InputMeta[],
  samples: number,
  opts: SyntheticInputOptions = {},
): Feeds[] {
  const rng = new Rng(opts.seed ?? 20240601);
  const intHigh = opts.intHigh ?? 16;
  const out: Feeds[] = [];
  for (let s = 0; s < samples; s++) {
    const feeds: Feeds = {};
    for (const m of inputs) {
      const dims = m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : (opts.dims?.[String(d)] ?? 1)));
      const n = dims.reduce((a, b) => a * b, 1);
      if (m.type === 'float32') {
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) x[i] = rng.nextNormal();
        feeds[m.name] = new ort.Tensor('float32', x, dims);
      } else if (m.type === 'int64') {
        const x = new BigInt64Array(n);
        for (let i = 0; i < n; i++) x[i] = BigInt(Math.floor(rng.nextFloat() * intHigh));
        feeds[m.name] = new ort.Tensor('int64', x, dims);
      } else if (m.type === 'int32') {
        const x = new Int32Array(n);
        for (let i = 0; i < n; i++) x[i] = Math.floor(rng.nextFloat() * intHigh);
        feeds[m.name] = new ort.Tensor('int32', x, dims);
      } else {
        throw new MixqError(`cannot synthesise an input of type ${m.type}`, {
          field: m.name,
          expected: 'float32, int64 or int32 (pass real inputs instead)',
        });
      }
    }
    out.push(feeds);
  }
  return out;
}

/**
 * Compare all float outputs of `candidate` and `reference` over `feeds`; outputs matched by name. Feeds
 * run `concurrency` at a time (session pools) and are compared in order.
 */
export async function accumulateFeedsFidelity(
  candidate: ModelRunner,
  reference: ModelRunner,
  feeds: readonly Feeds[],
  acc: FidelityAccumulator,
): Promise<void> {
  const compare = (r: Record<string, ort.Tensor>, c: Record<string, ort.Tensor>): void => {
    for (const name of reference.outputNames) {
      const rt = r[name];
      const ct = c[name];
      if (rt?.type !== 'float32') continue;
      if (ct?.type !== 'float32' || ct.data.length !== rt.data.length) {
        throw new MixqError('candidate output does not match the reference', {
          field: name,
          expected: `float32 [${rt.dims.join(', ')}]`,
        });
      }
      const row = rt.dims.length ? rt.dims[rt.dims.length - 1]! : 1;
      const rd = rt.data as Float32Array;
      accumulateFidelity(acc, rd, ct.data as Float32Array, row, detectOutputKind(rd, row));
    }
  };
  await forEachInOrder(
    feeds.length,
    concurrencyOf(candidate, reference),
    (i) => Promise.all([reference.run(feeds[i]!), candidate.run(feeds[i]!)]),
    ([r, c]) => compare(r, c),
  );
}

/** Fidelity over synthetic inputs, for arbitrary models. */
export async function evaluateFidelity(
  candidate: ModelRunner,
  reference: ModelRunner,
  samples = 8,
  opts: SyntheticInputOptions = {},
): Promise<FidelityResult> {
  const acc = newFidelityAccumulator();
  await accumulateFeedsFidelity(
    candidate,
    reference,
    syntheticFeeds(reference.inputMetadata, samples, opts),
    acc,
  );
  return finishFidelity(acc);
}

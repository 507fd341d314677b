/** Shared pieces of the engine tests: log-softmax rows, their comparison, exact GGUF weights. */
import { BLOCK_TYPES, type BlockTypeName } from '../../src/blocks/registry.ts';
import type { GgufFile } from '../../src/io/gguf/read.ts';
import type { ReferenceWeights } from '../../src/engine/reference.ts';

/** log-softmax of each row of `rows` x V logits, in float64. */
export function logSoftmaxRows(logits: ArrayLike<number>, V: number): Float64Array {
  const rows = logits.length / V;
  const out = new Float64Array(logits.length);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v]! - m);
    const lse = m + Math.log(s);
    for (let v = 0; v < V; v++) out[r * V + v] = logits[r * V + v]! - lse;
  }
  return out;
}

export interface RowComparison {
  /** Largest |a - b| over every row and token (log-probabilities: logits up to each row's constant). */
  readonly maxAbs: number;
  /** Share of rows whose argmax agrees. */
  readonly top1: number;
  /** Mean KL(a || b) per row, nats. */
  readonly klMean: number;
}

/** Compares two sets of log-prob rows (the first `rows` rows of each). */
export function compareRows(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  V: number,
  rows = a.length / V,
): RowComparison {
  let maxAbs = 0;
  let agree = 0;
  let kl = 0;
  for (let r = 0; r < rows; r++) {
    let ia = 0;
    let ib = 0;
    for (let v = 0; v < V; v++) {
      const x = a[r * V + v]!;
      const y = b[r * V + v]!;
      maxAbs = Math.max(maxAbs, Math.abs(x - y));
      kl += Math.exp(x) * (x - y);
      if (x > a[r * V + ia]!) ia = v;
      if (y > b[r * V + ib]!) ib = v;
    }
    if (ia === ib) agree++;
  }
  return { maxAbs, top1: agree / rows, klMean: kl / rows };
}

/** Every tensor of a GGUF decoded exactly (mixq's ggml codecs are bit-exact with ggml's dequantize). */
export async function ggufWeights(file: GgufFile): Promise<ReferenceWeights> {
  const m = new Map<string, Float32Array>();
  for (const t of file.tensors)
    m.set(
      t.name,
      BLOCK_TYPES[t.type.name.toUpperCase() as BlockTypeName].decode(
        await file.readTensorBytes(t),
        t.nElements,
      ),
    );
  return (name) => {
    const v = m.get(name);
    if (!v) throw new Error(`no tensor ${name}`);
    return v;
  };
}

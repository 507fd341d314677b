/**
 * Importance matrices computed by mixq's engine, as llama.cpp's `llama-imatrix` computes them
 * (tools/imatrix/imatrix.cpp, IMatrixCollector::collect_imatrix, ggml-org/llama.cpp 006e7ef):
 *
 *   for every weight matrix W used in a matrix product y = W x, and every column j of W (input feature),
 *   sum2_j = sum over the calibration tokens t of x_tj^2,  count = tokens seen,  entry_j = sum2_j / count.
 *
 * What it covers, as llama-imatrix does: the products of the transformer blocks ('blk.*': attn_q / attn_k /
 * attn_v (one input, three entries), attn_output, ffn_gate / ffn_up, ffn_down; gpt2: attn_qkv, ffn_up), and
 * the LM head 'output.weight' only with `processOutput` (llama-imatrix --process-output; a head tied to the
 * token embedding is never collected, its name is not 'output.weight'). The token embedding is a row
 * lookup, not a product: no entry. Products over fewer than `minRows` tokens (default 16) are skipped, as
 * llama-imatrix skips batches of fewer than 16 tokens. Each window is one batch (one prefill from an
 * empty cache, BOS included when the window has one): llama-imatrix's chunk, all of whose tokens count.
 *
 * The inputs are the engine's float32 activations; run the model with `activations: 'f32'` so no product
 * rounds its input to int8 (the captured x is the product's float input either way, but the activations
 * downstream of int8 products differ). Sums are float64 (llama-imatrix sums in float32; the means agree
 * to float32 rounding). Browser-safe.
 */
import { MixqError } from '../core/errors.ts';
import type { ImatrixData } from '../io/gguf/imatrix.ts';
import type { EngineModel, ProductSite } from './model.ts';

export interface CollectImatrixOptions {
  /** Also collect the LM head 'output.weight' (llama-imatrix --process-output). Default false. */
  readonly processOutput?: boolean;
  /** Products over fewer rows (tokens) are not collected (llama-imatrix: 16). */
  readonly minRows?: number;
  /** Data set names recorded in the file (imatrix.datasets). */
  readonly datasets?: readonly string[];
  /** Called after each window. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Raw sums, as llama-imatrix keeps them: per tensor name, sum of x^2 per column and the token count. */
export interface ImatrixSums {
  readonly sums2: ReadonlyMap<string, Float64Array>;
  readonly counts: ReadonlyMap<string, number>;
  /** Windows (llama-imatrix's chunks) run. */
  readonly chunks: number;
  /** Tokens of the longest window (imatrix.chunk_size). */
  readonly chunkSize: number;
  readonly datasets: readonly string[];
}

/** GGUF names of the weights a product site multiplies (q|k|v share their input, so do gate|up). */
function siteNames(family: 'llama' | 'gpt2', site: ProductSite, layer: number): string[] {
  const b = `blk.${layer}.`;
  switch (site) {
    case 'qkv':
      return family === 'gpt2'
        ? [`${b}attn_qkv.weight`]
        : [`${b}attn_q.weight`, `${b}attn_k.weight`, `${b}attn_v.weight`];
    case 'attn_output':
      return [`${b}attn_output.weight`];
    case 'ffn_in':
      return family === 'gpt2' ? [`${b}ffn_up.weight`] : [`${b}ffn_gate.weight`, `${b}ffn_up.weight`];
    case 'ffn_down':
      return [`${b}ffn_down.weight`];
    case 'output':
      return ['output.weight'];
  }
}

/**
 * Runs every window through `model` (one prefill each, from an empty cache) and sums the squared inputs
 * of every covered product. The model's hook is restored afterwards.
 * @example const s = collectImatrix(model, calibrationWindows.map((w) => w.tokens)); imatrixFromSums(s)
 */
export function collectImatrix(
  model: EngineModel,
  windows: readonly ArrayLike<number>[],
  opts: CollectImatrixOptions = {},
): ImatrixSums {
  const minRows = opts.minRows ?? 16;
  if (windows.length === 0)
    throw new MixqError('no calibration windows', {
      source: 'imatrix',
      field: 'windows',
      expected: 'at least one window of tokens',
    });
  const tiedHead = model.weights.output === model.weights.tokenEmbd;
  const withHead = opts.processOutput === true && !tiedHead;
  // one accumulator per site and layer (shared by the weights that read the same input)
  const acc = new Map<string, { names: string[]; sum2: Float64Array; count: number }>();
  const family = model.config.family;
  const previous = model.onProductInput;
  let chunkSize = 0;
  let chunks = 0;
  model.onProductInput = (site, layer, x, rows) => {
    if (rows < minRows || (site === 'output' && !withHead)) return;
    const cols = x.length / rows;
    const key = `${site}:${layer}`;
    let a = acc.get(key);
    if (!a)
      acc.set(key, (a = { names: siteNames(family, site, layer), sum2: new Float64Array(cols), count: 0 }));
    const s = a.sum2;
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) {
        const v = x[o + j]!;
        s[j]! += v * v;
      }
    }
    a.count += rows;
  };
  try {
    for (const [i, w] of windows.entries()) {
      // logits only when the head is collected (its input is the normed last hidden state of every row)
      const cache = model.newCache(Math.min(model.maxContext, Math.max(1, w.length)));
      try {
        model.forward(w, cache, withHead ? 0 : w.length);
      } finally {
        cache.release();
      }
      chunkSize = Math.max(chunkSize, w.length);
      chunks++;
      opts.onProgress?.(i + 1, windows.length);
    }
  } finally {
    model.onProductInput = previous;
  }
  const sums2 = new Map<string, Float64Array>();
  const counts = new Map<string, number>();
  for (const a of acc.values())
    for (const n of a.names) {
      sums2.set(n, a.sum2.slice());
      counts.set(n, a.count);
    }
  return { sums2, counts, chunks, chunkSize, datasets: [...(opts.datasets ?? [])] };
}

/** The means (sum2 / count, rounded once to float32): what llama-quantize reads from an imatrix file. */
export function imatrixFromSums(s: ImatrixSums): ImatrixData & {
  readonly counts: ReadonlyMap<string, number>;
  readonly chunkSize: number;
} {
  const entries = new Map<string, Float32Array>();
  for (const [name, sum2] of [...s.sums2].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const c = s.counts.get(name)!;
    entries.set(
      name,
      Float32Array.from(sum2, (v) => v / c),
    );
  }
  return {
    format: 'gguf',
    entries,
    datasets: s.datasets,
    chunkCount: s.chunks,
    counts: s.counts,
    chunkSize: s.chunkSize,
  };
}

/**
 * OCR evaluation for CTC text-line recognisers (PP-OCRv4 rec): one line per runtime call (widths differ),
 * greedy CTC decoding, character error rate = total Levenshtein distance / total reference characters,
 * and exact-line accuracy. Reported for all lines and per variant (clean / degraded).
 *
 * Lines run `runner.concurrency` at a time (a session pool) and are scored in input order, so every
 * number is the one a single session gives.
 */

import { ctcGreedyDecode } from './ctc.ts';
import { type OcrLine, ocrInput } from './bundled.node.ts';
import { type FidelityAccumulator, accumulateFidelity, bootstrapStdError, levenshtein } from './metrics.ts';
import { floatTensor } from './ort.node.ts';
import { concurrencyOf, forEachInOrder, type ModelRunner } from './runner.node.ts';

export interface OcrScore {
  readonly cer: number;
  /** Bootstrap standard error of the CER over lines. */
  readonly cerStdError: number;
  readonly lineAccuracy: number;
  readonly lines: number;
  readonly chars: number;
  readonly edits: number;
}

export interface OcrResult extends OcrScore {
  readonly byVariant: Readonly<Record<string, OcrScore>>;
  /** Decoded text per line, in input order. */
  readonly predictions: readonly string[];
  /** Edits and ground-truth characters per line, in input order (paired comparisons). */
  readonly perLine: { readonly edits: readonly number[]; readonly chars: readonly number[] };
}

/** Run one line; returns the raw [T, classes] output. */
export async function runOcrLine(
  runner: ModelRunner,
  line: OcrLine,
): Promise<{ data: Float32Array; steps: number; classes: number }> {
  const input = runner.inputNames[0]!;
  const output = runner.outputNames[0]!;
  const res = await runner.run({ [input]: floatTensor(ocrInput(line), [1, 3, line.height, line.width]) }, [
    output,
  ]);
  const t = res[output]!;
  const dims = t.dims;
  return { data: t.data as Float32Array, steps: dims[1]!, classes: dims[2]! };
}

function score(edits: number[], chars: number[], exact: number[]): OcrScore {
  const e = edits.reduce((a, b) => a + b, 0);
  const c = chars.reduce((a, b) => a + b, 0);
  return {
    cer: c ? e / c : 0,
    cerStdError: bootstrapStdError(edits, chars),
    lineAccuracy: exact.length ? exact.reduce((a, b) => a + b, 0) / exact.length : 0,
    lines: exact.length,
    chars: c,
    edits: e,
  };
}

export async function evaluateOcr(
  runner: ModelRunner,
  lines: readonly OcrLine[],
  charset: readonly string[],
  onProgress?: (done: number, total: number) => void,
): Promise<OcrResult> {
  const predictions: string[] = [];
  const groups = new Map<string, { edits: number[]; chars: number[]; exact: number[] }>();
  const all = { edits: [] as number[], chars: [] as number[], exact: [] as number[] };
  const visit = (out: { data: Float32Array; steps: number }, i: number): void => {
    const line = lines[i]!;
    const text = ctcGreedyDecode(out.data, out.steps, charset);
    predictions.push(text);
    const d = levenshtein(line.text, text);
    const n = Array.from(line.text).length;
    let g = groups.get(line.variant);
    if (!g) {
      g = { edits: [], chars: [], exact: [] };
      groups.set(line.variant, g);
    }
    for (const s of [g, all]) {
      s.edits.push(d);
      s.chars.push(n);
      s.exact.push(text === line.text ? 1 : 0);
    }
    onProgress?.(i + 1, lines.length);
  };
  await forEachInOrder(lines.length, concurrencyOf(runner), (i) => runOcrLine(runner, lines[i]!), visit);
  const byVariant: Record<string, OcrScore> = {};
  for (const [k, g] of groups) byVariant[k] = score(g.edits, g.chars, g.exact);
  return {
    ...score(all.edits, all.chars, all.exact),
    byVariant,
    predictions,
    perLine: { edits: all.edits, chars: all.chars },
  };
}

/** Fidelity of `candidate` to `reference` over the lines' output distributions (rows = time steps). */
export async function ocrFidelity(
  candidate: ModelRunner,
  reference: ModelRunner,
  lines: readonly OcrLine[],
  acc: FidelityAccumulator,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  await forEachInOrder(
    lines.length,
    concurrencyOf(candidate, reference),
    (i) => Promise.all([runOcrLine(reference, lines[i]!), runOcrLine(candidate, lines[i]!)]),
    ([r, c], i) => {
      accumulateFidelity(acc, r.data, c.data, r.classes, 'probabilities');
      onProgress?.(i + 1, lines.length);
    },
  );
}

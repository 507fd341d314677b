/**
 * A `ModelRunner` is what every evaluator runs: a loaded model that maps data inputs to outputs. The
 * plain runner wraps one onnxruntime session; the weight-fed runner (weights.node.ts) adds the model's
 * weights as extra feeds, so variants with substituted weights reuse one session.
 */

import { MixqError } from '../core/errors.ts';
import type { Feeds, OrtSession, OrtTensor } from './ort.node.ts';
import { openSession } from './ort.node.ts';

export interface ModelRunner {
  /** Data inputs the caller must feed (weights fed internally are not listed). */
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Feeds, outputs?: readonly string[]): Promise<Record<string, OrtTensor>>;
  /** Shapes/types of the data inputs as the model declares them (symbolic dims as strings). */
  readonly inputMetadata: readonly InputMeta[];
  /**
   * How many runs the runner executes at once (a session pool, session-pool.node.ts); evaluators keep
   * that many in flight with `forEachInOrder`. Absent: 1 (runs execute one after the other).
   */
  readonly concurrency?: number;
}

export interface InputMeta {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

export function describeInputs(
  session: Pick<OrtSession, 'inputMetadata'>,
  skip: ReadonlySet<string> = new Set(),
): InputMeta[] {
  const out: InputMeta[] = [];
  for (const m of session.inputMetadata) {
    if (skip.has(m.name)) continue;
    if (!m.isTensor) {
      throw new MixqError('non-tensor model inputs are not supported', { field: m.name, expected: 'tensor' });
    }
    out.push({ name: m.name, type: m.type, shape: m.shape });
  }
  return out;
}

export function sessionRunner(session: OrtSession): ModelRunner {
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: describeInputs(session),
    run: (feeds, outputs) => session.run(feeds, outputs ? [...outputs] : session.outputNames),
  };
}

/** Open a model file (or bytes) as a plain runner. */
export async function openRunner(model: string | Uint8Array): Promise<ModelRunner> {
  return sessionRunner(await openSession(model));
}

/**
 * Start `run(i)` for i = 0..n-1 with up to `window` runs in flight, and hand each result to `visit` in
 * index order (result i only after results 0..i-1), whatever order the runs finish in. With `window` 1 this
 * is the plain sequential loop. The first failing run (in index order) is thrown; runs still in flight
 * then finish unobserved.
 */
export async function forEachInOrder<T>(
  n: number,
  window: number,
  run: (i: number) => Promise<T>,
  visit: (result: T, i: number) => void,
): Promise<void> {
  const w = Math.max(1, Math.floor(window));
  const started: (Promise<T> | undefined)[] = [];
  let next = 0;
  for (let i = 0; i < n; i++) {
    while (next < n && next < i + w) {
      const p = run(next);
      p.catch(() => {}); // awaited below, in order; a later failure must not surface as unhandled first
      started[next++] = p;
    }
    const r = await started[i]!;
    started[i] = undefined;
    visit(r, i);
  }
}

/** The number of runs to keep in flight on all of `runners` together (the smallest concurrency). */
export function concurrencyOf(...runners: readonly ModelRunner[]): number {
  return Math.max(1, Math.min(...runners.map((r) => r.concurrency ?? 1)));
}

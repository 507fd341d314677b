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
}

export interface InputMeta {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

export function describeInputs(session: OrtSession, skip: ReadonlySet<string> = new Set()): InputMeta[] {
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

/**
 * Evaluating weight variants with plain sessions: each variant is the model's bytes with some float
 * weights replaced (io/onnx/patch.ts: the model is encoded once, a variant is a copy with new values
 * written over the weights' data, not a new encoding), on which ordinary sessions are opened (so
 * onnxruntime constant-folds and pre-packs the weights as it would for a deployed file), the caller's
 * evaluation runs, and the sessions are released. For evaluations that take seconds this is faster than
 * feeding weights as inputs (weights.node.ts): PP-OCRv4 on 296 lines, 27 s instead of 44 s on one session.
 * The sessions are an evaluation pool (session-pool.node.ts): one per core, same numbers as one session.
 */
import { readOnnxFileInlined } from '../io/onnx/file.node.ts';
import { type PatchableModel, patchableModel } from '../io/onnx/patch.ts';
import type { ModelRunner } from './runner.node.ts';
import { withEvalRunner } from './session-pool.node.ts';

export interface VariantEvaluator {
  /** Runs `evaluate` on the model with `replacements` (float32 values, original layout) in place. */
  run<T>(
    replacements: ReadonlyMap<string, Float32Array>,
    evaluate: (runner: ModelRunner) => Promise<T>,
  ): Promise<T>;
  /** The model bytes of a variant (self-contained). */
  bytes(replacements: ReadonlyMap<string, Float32Array>): Uint8Array;
}

/** The evaluator of a model's variants over a patchable encoding of it. */
export function variantEvaluator(model: PatchableModel): VariantEvaluator {
  return {
    bytes: (replacements) => model.patch(replacements),
    run: (replacements, evaluate) => withEvalRunner(model.patch(replacements), evaluate),
  };
}

/**
 * Reads the model at `path` (external data inlined) and returns the evaluator of variants of the named
 * weights.
 */
export async function openVariantEvaluator(path: string, names: Iterable<string>): Promise<VariantEvaluator> {
  return variantEvaluator(await patchableModel(await readOnnxFileInlined(path), names));
}

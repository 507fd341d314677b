/**
 * The loaded model: what a `mixq quantize` or `mixq apply` run knows about its input, read and parsed ONCE
 * and handed to every stage (calibration, sensitivity, evaluation, bias correction, the writers).
 *
 *   bytes   read once; the plan's identity (name, size, sha256) is computed from them
 *   parse   one decode (io/onnx/read.ts), external data inlined once
 *   view    the format-neutral graph view (roles, layers, consumers, output axes) and the ai.onnx opset the
 *           output can have (raised to 21 when every operator converts exactly)
 *   weights every float32 weight of rank >= 2 (what can be quantized and fed), with its original values,
 *           and the float bias each one's layer owns
 *   runtime a patchable encoding (io/onnx/patch.ts) from which every evaluated variant is a copy with new
 *           weights written in, and the weight-fed session (runtime/weights.node.ts) made on demand for
 *           calibration and sensitivity; both are built from the parsed model, never from the file again
 *
 * Stages read the format-neutral members (identity, tensors, weights, original, biases, variants, fed);
 * only ONNX writers read `onnx`. A later input kind (a GGUF file, a Hugging Face folder) is another
 * implementation of the same interface with its own `kind` and format handle.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { MixqError } from '../core/errors.ts';
import { findBiases } from '../export/onnx/bias.ts';
import { opsetVersion } from '../export/onnx/build.ts';
import { canUpgradeOpset } from '../export/onnx/opset.ts';
import type { TensorInfo } from '../graph/model.ts';
import { readOnnxFileInlined } from '../io/onnx/file.node.ts';
import { patchableModel } from '../io/onnx/patch.ts';
import type { OnnxModel } from '../io/onnx/read.ts';
import { onnxModelView } from '../io/onnx/view.ts';
import { listWeights, loadWeightFloat32 } from '../io/onnx/weights.ts';
import type { PlanModel } from '../plan/schema.ts';
import { type VariantEvaluator, variantEvaluator } from '../runtime/variants.node.ts';
import {
  type FedWeight,
  feedableWeights,
  type WeightFedModel,
  weightFedModel,
} from '../runtime/weights.node.ts';

/** The dense float bias each weight's layer owns, with its original values. */
export interface ModelBiases {
  /** Weight -> its bias constant. */
  readonly names: ReadonlyMap<string, string>;
  /** Bias name -> original values. */
  readonly values: ReadonlyMap<string, Float32Array>;
}

export interface LoadedModel {
  readonly kind: 'onnx';
  /** Where it was read from. */
  readonly path: string;
  /** Name, size and sha256 of the file, as a plan records them. */
  readonly identity: Required<PlanModel>;
  /** Every tensor's facts (role, layer, consumers, output axis) from the graph view, by name. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The float weights that can be quantized and replaced (float32, rank >= 2), in file order. */
  readonly weights: readonly FedWeight[];
  /** A weight's original values (a copy). */
  original(name: string): Float32Array;
  readonly biases: ModelBiases;
  /** Evaluation of variants (weights and biases replaced) with plain onnxruntime sessions. */
  readonly variants: VariantEvaluator;
  /** Self-contained bytes of the model as read, for onnxruntime (fp32 references). */
  readonly fp32: Uint8Array;
  /** The weight-fed rewrite with one session open (calibration capture and per-weight damage). */
  fed(opts?: { captureInputs?: boolean }): Promise<WeightFedModel>;
  /** The parsed ONNX model (not to be changed) and the ai.onnx opset an output can have. */
  readonly onnx: { readonly model: OnnxModel; readonly opset: number };
}

/** The float biases of the layers of `weights`, with their values. */
async function readBiases(model: OnnxModel, weights: Iterable<string>): Promise<ModelBiases> {
  const names = new Map<string, string>();
  const values = new Map<string, Float32Array>();
  const dense = new Map(listWeights(model).map((w) => [w.name, w] as const));
  for (const [w, b] of findBiases(model.proto.graph!, weights)) {
    const bw = dense.get(b);
    if (!bw || bw.sparse) continue;
    names.set(w, b);
    values.set(b, Float32Array.from(await loadWeightFloat32(model, bw)));
  }
  return { names, values };
}

/** Reads and parses the ONNX model at `path` once (see the file comment). */
export async function loadModel(path: string): Promise<LoadedModel> {
  const file = await readOnnxFileInlined(path);
  const model: OnnxModel = file;
  const proto = model.proto;
  if (!proto.graph) throw new MixqError('model has no graph', { source: path, field: 'ModelProto.graph' });
  const own = opsetVersion(proto, '') ?? 1;
  const opset = canUpgradeOpset(proto, 21) ? Math.max(own, 21) : own;
  const tensors = new Map(onnxModelView(model).tensors.map((t) => [t.name, t] as const));
  const weights = feedableWeights(model);
  const names = new Set(weights.map((w) => w.name));
  const originals = new Map<string, Float32Array>();
  for (const w of listWeights(model))
    if (w.path === 'graph' && names.has(w.name)) originals.set(w.name, await loadWeightFloat32(model, w));
  const biases = await readBiases(
    model,
    weights.map((w) => w.name),
  );
  const patchable = await patchableModel(model, [...originals.keys(), ...biases.values.keys()]);
  return {
    kind: 'onnx',
    path,
    identity: {
      file: basename(path),
      size: file.bytes.length,
      sha256: createHash('sha256').update(file.bytes).digest('hex'),
    },
    tensors,
    weights,
    original(name) {
      const o = originals.get(name);
      if (!o) throw new MixqError('not a float weight of the model', { source: path, field: name });
      return o.slice();
    },
    biases,
    variants: variantEvaluator(patchable),
    fp32: patchable.bytes,
    fed: (opts = {}) => weightFedModel(model, opts),
    onnx: { model, opset },
  };
}

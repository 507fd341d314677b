/**
 * Fast re-evaluation with substituted weights, and activation capture, by rewriting the model ONCE.
 *
 * onnxruntime-node cannot swap an initializer of a live session, and re-serialising plus re-loading the
 * whole model per variant costs seconds. Instead the model is rewritten once:
 * - every selected float32 weight (initializer, or `Constant` node as paddle2onnx writes them) is removed
 *   from the graph and declared as a graph input of the same name and shape;
 * - remaining external data is inlined, so the session can be created from bytes.
 * One session then serves every variant: each run feeds all weights, the originals (held once in memory)
 * except those the variant replaces. (Keeping them as initializers that are also graph inputs, IR >= 4
 * "overridable initializers", would avoid feeding the originals, but onnxruntime-node only forwards feeds
 * named in `session.inputNames`, which excludes overridable initializers: the override is silently lost.)
 *
 * Caveat: onnxruntime cannot constant-fold or fuse weights that are inputs (e.g. Conv+BatchNorm
 * fusion), so the fed model's outputs can differ from the original file's by float rounding. Compare
 * variants against `model.baseline` (the same rewritten graph with no replacement), not against a
 * session of the original file.
 *
 * Calibration capture (`captureInputs`): the activation input of every MatMul / Gemm / Conv whose weight
 * is selected is added as an extra graph output, so one run returns the tensors the weights multiply.
 */

import { MixqError } from '../core/errors.ts';
import { cloneOnnxModel } from '../io/onnx/clone.ts';
import { readOnnxFile } from '../io/onnx/file.node.ts';
import type { GraphProto, NodeProto, TensorProto, ValueInfoProto } from '../io/onnx/proto-types.ts';
import { type OnnxModel, writeOnnx } from '../io/onnx/read.ts';
import { onnxMessageType } from '../io/onnx/schema.ts';
import { bytesToFloat32, loadTensorBytes, setTensorBytes } from '../io/onnx/tensor-data.ts';
import { listWeights, type OnnxWeight } from '../io/onnx/weights.ts';
import { type Feeds, openSession, ort } from './ort.node.ts';
import { describeInputs, type ModelRunner } from './runner.node.ts';

const FLOAT = 1; // TensorProto.DataType.FLOAT

export interface FedWeight {
  readonly name: string;
  readonly dims: readonly number[];
  readonly elementCount: number;
  /** 'initializer' or 'constant' in the original file. */
  readonly origin: string;
  /** Ops (and input slot) that read it, e.g. 'MatMul:1'. */
  readonly consumers: readonly string[];
}

export interface WeightFedOptions {
  /** Which weights become feedable; default float32 tensors with at least 2 dims (matrices, kernels). */
  readonly select?: (w: OnnxWeight) => boolean;
  /** Also expose the activation inputs of MatMul/Gemm/Conv nodes reading a selected weight. */
  readonly captureInputs?: boolean;
}

export interface CapturePoint {
  /** The graph value exposed as an output (the activation the weight multiplies). */
  readonly activation: string;
  readonly weight: string;
  readonly op: string;
  readonly node: string;
}

export interface WeightFedModel {
  /** The rewritten model with its original weights (no replacement). */
  readonly baseline: ModelRunner;
  readonly weights: readonly FedWeight[];
  /** Activation capture points (empty unless captureInputs). */
  readonly captures: readonly CapturePoint[];
  /** The weight's original values (a copy). */
  original(name: string): Float32Array;
  /** A runner that feeds `replacements` in place of the named weights; same session, nothing reloaded. */
  withWeights(replacements: ReadonlyMap<string, Float32Array>): ModelRunner;
  /** The rewritten model bytes (self-contained). */
  readonly bytes: Uint8Array;
}

function valueInfo(name: string, elemType: number, dims: readonly number[]): ValueInfoProto {
  return onnxMessageType('ValueInfoProto').fromObject({
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
  }) as unknown as ValueInfoProto;
}

/** Reads `path`, rewrites it (see the file comment) and opens one session on the result. */
export async function loadWeightFedModel(path: string, opts: WeightFedOptions = {}): Promise<WeightFedModel> {
  const file = await readOnnxFile(path);
  try {
    return await weightFedModel(file, opts);
  } finally {
    await file.close();
  }
}

/** Consumers ('MatMul:1', ...) of every value of the main graph (weights in subgraphs stay as they are). */
function consumersOf(graph: GraphProto): Map<string, string[]> {
  const consumers = new Map<string, string[]>();
  for (const node of graph.node)
    node.input.forEach((name, slot) => {
      const list = consumers.get(name) ?? [];
      list.push(`${node.op_type}:${slot}`);
      consumers.set(name, list);
    });
  return consumers;
}

const defaultSelect = (w: OnnxWeight): boolean => w.dataType === FLOAT && w.dims.length >= 2;

function selected(model: OnnxModel, select: (w: OnnxWeight) => boolean): OnnxWeight[] {
  return listWeights(model).filter(
    (w) => w.path === 'graph' && (w.kind === 'initializer' || w.kind === 'constant') && select(w),
  );
}

/**
 * The weights a weight-fed model feeds (by default float32 weights of rank >= 2 of the main graph), with
 * their consumers, without rewriting anything.
 */
export function feedableWeights(model: OnnxModel, select = defaultSelect): FedWeight[] {
  const graph = model.proto.graph;
  if (!graph) throw new MixqError('model has no graph', { source: model.source, field: 'ModelProto.graph' });
  const consumers = consumersOf(graph);
  return selected(model, select).map((w) => {
    if (w.dataType !== FLOAT)
      throw new MixqError('only float32 weights can be fed', {
        source: model.source,
        field: w.name,
        expected: 'float32',
      });
    return {
      name: w.name,
      dims: w.dims,
      elementCount: w.elementCount,
      origin: w.kind,
      consumers: consumers.get(w.name) ?? [],
    };
  });
}

/** Adds the activation input of every MatMul / Gemm / Conv reading a fed weight as a graph output. */
function exposeActivations(graph: GraphProto, fed: ReadonlySet<string>): CapturePoint[] {
  const captures: CapturePoint[] = [];
  const outputs = new Set(graph.output.map((o) => o.name));
  const extra: ValueInfoProto[] = [];
  for (const node of graph.node) {
    if (node.op_type !== 'MatMul' && node.op_type !== 'Gemm' && node.op_type !== 'Conv') continue;
    // MatMul(A, W), Gemm(A, W, C), Conv(X, W, B): the weight is input 1, the activation input 0.
    const wIn = node.input[1];
    const act = node.input[0];
    if (!wIn || !act || !fed.has(wIn)) continue;
    captures.push({ activation: act, weight: wIn, op: node.op_type, node: node.name });
    if (!outputs.has(act)) {
      outputs.add(act);
      extra.push(onnxMessageType('ValueInfoProto').fromObject({ name: act }) as unknown as ValueInfoProto);
    }
  }
  graph.output = [...graph.output, ...extra];
  return captures;
}

/**
 * The weight-fed rewrite of a model already read (see the file comment; the model itself is not changed)
 * with one session open on it.
 */
export async function weightFedModel(model: OnnxModel, opts: WeightFedOptions = {}): Promise<WeightFedModel> {
  const select = opts.select ?? defaultSelect;
  const file = cloneOnnxModel(model);
  const path = model.source;
  const graph = file.proto.graph;
  if (!graph) throw new MixqError('model has no graph', { source: path, field: 'ModelProto.graph' });
  const fed = feedableWeights(file, select);
  const originals = new Map<string, { data: Float32Array; dims: readonly number[] }>();
  const dropNodes = new Set<NodeProto>();
  const dropInits = new Set<TensorProto>();
  const existingInputs = new Set(graph.input.map((v) => v.name));
  const newInputs: ValueInfoProto[] = [];
  for (const w of selected(file, select)) {
    const raw = await loadTensorBytes(file, w.tensor);
    originals.set(w.name, { data: bytesToFloat32(raw, w.dataType, w.elementCount, path), dims: w.dims });
    if (w.kind === 'constant') dropNodes.add(w.node as NodeProto);
    else dropInits.add(w.tensor);
    if (!existingInputs.has(w.name)) newInputs.push(valueInfo(w.name, FLOAT, w.dims));
  }
  if (dropNodes.size) graph.node = graph.node.filter((n) => !dropNodes.has(n));
  graph.initializer = graph.initializer.filter((t) => !dropInits.has(t));
  // Remaining external tensors (not selected) are inlined: the rewritten model is loaded from bytes.
  for (const w of listWeights(file)) {
    if (w.external)
      setTensorBytes(w.tensor, (await loadTensorBytes(file, w.tensor)).slice(), { dims: w.dims });
  }
  graph.input = [...graph.input, ...newInputs];
  const captures = opts.captureInputs ? exposeActivations(graph, new Set(fed.map((f) => f.name))) : [];
  const bytes = writeOnnx(file);
  const session = await openSession(bytes);
  const fedNames = new Set(fed.map((f) => f.name));
  const dataInputs = describeInputs(session, fedNames);
  const captureNames = new Set(captures.map((c) => c.activation));
  const modelOutputs = session.outputNames.filter((n) => !captureNames.has(n));
  const originalFeeds: Feeds = {};
  for (const [name, o] of originals) originalFeeds[name] = new ort.Tensor('float32', o.data, o.dims);
  const makeRunner = (replaced: Feeds): ModelRunner => ({
    inputNames: dataInputs.map((m) => m.name),
    outputNames: modelOutputs,
    inputMetadata: dataInputs,
    run: (feeds, outputs) =>
      session.run({ ...feeds, ...originalFeeds, ...replaced }, outputs ? [...outputs] : modelOutputs),
  });
  return {
    baseline: makeRunner({}),
    weights: fed,
    captures,
    bytes,
    original(name) {
      const o = originals.get(name);
      if (!o) throw new MixqError('not a fed weight', { field: name });
      return o.data.slice();
    },
    withWeights(replacements) {
      const feeds: Feeds = {};
      for (const [name, data] of replacements) {
        const o = originals.get(name);
        if (!o) {
          throw new MixqError('not a feedable weight of this model', {
            field: name,
            expected: 'a name from .weights',
          });
        }
        if (data.length !== o.data.length) {
          throw new MixqError(`replacement has ${data.length} values`, {
            field: name,
            expected: `${o.data.length}`,
          });
        }
        feeds[name] = new ort.Tensor('float32', data, o.dims);
      }
      return makeRunner(feeds);
    },
  };
}

/**
 * Evaluate a variant of `model` with some weights replaced, reusing the model's session.
 * @example
 *   const m = await loadWeightFedModel('models/gpt/model.onnx');
 *   const q = new Map([['blocks.0.mlp_fc', quantized]]);
 *   const r = await evaluateWithWeights(m, q, (runner) => evaluateLm(runner, ids, { context: 128 }));
 */
export function evaluateWithWeights<T>(
  model: WeightFedModel,
  replacements: ReadonlyMap<string, Float32Array>,
  evaluate: (runner: ModelRunner) => Promise<T>,
): Promise<T> {
  return evaluate(model.withWeights(replacements));
}

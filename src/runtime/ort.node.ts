/**
 * Thin adapter over onnxruntime-node (the CPU runtime mixq measures real models with).
 *
 * Sessions are created with one intra-op and one inter-op thread and sequential execution: the CPU
 * kernels then reduce in a fixed order, so the same model and inputs give bit-identical outputs on every
 * run (the harness promises reproducible numbers). Evaluations use the other cores with several such
 * sessions in worker threads (session-pool.node.ts), not with more threads per session.
 */

import * as ort from 'onnxruntime-node';
import { MixqError } from '../core/errors.ts';

export type OrtSession = ort.InferenceSession;
export type OrtTensor = ort.Tensor;
export type Feeds = Record<string, ort.Tensor>;

/** Session options used for every evaluation session (deterministic, single-threaded). */
export function deterministicOptions(): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
}

/**
 * Open an ONNX model from a path (external data is resolved next to the file) or from bytes (the model
 * must then be self-contained).
 */
export async function openSession(model: string | Uint8Array): Promise<OrtSession> {
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, deterministicOptions())
      : await ort.InferenceSession.create(model, deterministicOptions());
  } catch (e) {
    throw new MixqError(`onnxruntime could not load the model: ${(e as Error).message.split('\n')[0]}`, {
      source: typeof model === 'string' ? model : '<bytes>',
    });
  }
}

/** A tensor as it crosses a thread boundary (postMessage): plain type, data and dims. */
export interface WireTensor {
  readonly type: string;
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint8Array | readonly string[];
  readonly dims: readonly number[];
}

/** Named tensors as WireTensors (the data arrays are shared, not copied). */
export function toWire(tensors: Readonly<Record<string, ort.Tensor>>): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {};
  for (const [name, t] of Object.entries(tensors))
    out[name] = { type: t.type, data: t.data as WireTensor['data'], dims: [...t.dims] };
  return out;
}

/** The inverse of toWire. */
export function fromWire(wire: Readonly<Record<string, WireTensor>>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(wire))
    out[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
  return out;
}

export function int64Tensor(ids: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  const data = new BigInt64Array(ids.length);
  for (let i = 0; i < ids.length; i++) data[i] = BigInt(ids[i]!);
  return new ort.Tensor('int64', data, dims);
}

export function floatTensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

/** Run and return the named output (default: the first) as float32 data with its dims. */
export async function runFloat(
  session: OrtSession,
  feeds: Feeds,
  output?: string,
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const name = output ?? session.outputNames[0];
  if (name === undefined) throw new MixqError('model has no outputs', { field: 'graph.output' });
  const res = await session.run(feeds, [name]);
  const t = res[name];
  if (t?.type !== 'float32') {
    throw new MixqError(`output ${name} is not float32`, { field: name, expected: 'float32' });
  }
  return { data: t.data as Float32Array, dims: t.dims };
}

export { ort };

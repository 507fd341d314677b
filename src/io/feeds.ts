/**
 * Model inputs from the user's own data ("feeds"): one sample is one value per model input. This module
 * turns arrays read from .npy files, JSON or images into tensors of the model's input types, checking names,
 * dtypes and shapes with one-line errors that name the file and field, and splits a list of samples into
 * calibration / validation / evaluation sets that never overlap. Browser-safe; reading a folder is in
 * feeds.node.ts.
 */
import { MixqError } from '../core/errors.ts';
import type { NpyArray } from './npy.ts';

/** A model input as the runtime describes it: ONNX type name ('float32', 'int64', ...) and shape. */
export interface FeedInput {
  readonly name: string;
  readonly type: string;
  /** Fixed sizes, or names / -1 for dims a sample chooses. */
  readonly shape: readonly (number | string)[];
}

export type FeedData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

/** One input value of one sample. */
export interface FeedTensor {
  readonly type: 'float32' | 'int64' | 'int32' | 'bool' | 'uint8';
  readonly dims: readonly number[];
  readonly data: FeedData;
}

/** One sample: a tensor per model input, and where it came from. */
export interface FeedSample {
  readonly id: string;
  readonly tensors: Readonly<Record<string, FeedTensor>>;
}

/** An array before conversion: from .npy, JSON or an image. */
export interface RawArray {
  readonly dtype: NpyArray['dtype'];
  readonly shape: readonly number[];
  readonly data: NpyArray['data'] | readonly number[];
}

const FLOAT_DTYPES = new Set(['float16', 'float32', 'float64']);
const INT_DTYPES = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

function fixedDim(d: number | string): number | undefined {
  return typeof d === 'number' && d >= 0 ? d : undefined;
}

/**
 * Converts one array to the input's type and checks its shape against the input's. A sample one rank
 * short of the input whose first dimension is 1 or free gets a leading batch dimension of 1.
 */
export function toFeedTensor(arr: RawArray, input: FeedInput, source: string): FeedTensor {
  const field = input.name;
  let dims = [...arr.shape];
  if (dims.length === input.shape.length - 1 && (fixedDim(input.shape[0]!) ?? 1) === 1) dims = [1, ...dims];
  if (dims.length !== input.shape.length)
    throw new MixqError(`shape [${arr.shape.join(', ')}] has rank ${arr.shape.length}`, {
      source,
      field,
      expected: `rank ${input.shape.length} like [${input.shape.join(', ')}]`,
    });
  input.shape.forEach((d, i) => {
    const f = fixedDim(d);
    if (f !== undefined && dims[i] !== f)
      throw new MixqError(`shape [${dims.join(', ')}] has ${dims[i]} at axis ${i}`, {
        source,
        field,
        expected: `[${input.shape.join(', ')}]`,
      });
  });
  const n = dims.reduce((a, b) => a * b, 1);
  if (arr.data.length !== n)
    throw new MixqError(`${arr.data.length} values for shape [${dims.join(', ')}]`, {
      source,
      field,
      expected: `${n} values`,
    });
  const isFloat = FLOAT_DTYPES.has(arr.dtype);
  switch (input.type) {
    case 'float32': {
      if (!isFloat && !INT_DTYPES.has(arr.dtype))
        throw new MixqError(`dtype ${arr.dtype}`, { source, field, expected: 'a float (or integer) array' });
      const data =
        arr.data instanceof Float32Array
          ? arr.data
          : Float32Array.from(arr.data as ArrayLike<number>, Number);
      for (let i = 0; i < data.length; i++)
        if (!Number.isFinite(data[i]!))
          throw new MixqError(`value ${data[i]} at index ${i} is not finite`, {
            source,
            field,
            expected: 'finite values',
          });
      return { type: 'float32', dims, data };
    }
    case 'int64':
    case 'int32':
    case 'uint8':
    case 'bool': {
      if (isFloat && arr.dtype !== 'float64')
        throw new MixqError(`dtype ${arr.dtype}`, {
          source,
          field,
          expected: `integers for a ${input.type} input`,
        });
      const lo = input.type === 'int32' ? -(2 ** 31) : input.type === 'int64' ? -(2 ** 63) : 0;
      const hi =
        input.type === 'int32'
          ? 2 ** 31 - 1
          : input.type === 'int64'
            ? 2 ** 63 - 1
            : input.type === 'bool'
              ? 1
              : 255;
      const values = Array.from(arr.data as ArrayLike<number | bigint>);
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        const num = Number(v);
        if (typeof v === 'number' && !Number.isInteger(v))
          throw new MixqError(`value ${v} at index ${i} is not an integer`, {
            source,
            field,
            expected: `integers for a ${input.type} input`,
          });
        if (num < lo || num > hi)
          throw new MixqError(`value ${v} at index ${i} is out of range`, {
            source,
            field,
            expected: `${lo}..${hi}`,
          });
      }
      if (input.type === 'int64')
        return { type: 'int64', dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
      if (input.type === 'int32') return { type: 'int32', dims, data: Int32Array.from(values, Number) };
      return { type: input.type, dims, data: Uint8Array.from(values, Number) };
    }
    default:
      throw new MixqError(`input type ${input.type} cannot be fed from files`, {
        source,
        field,
        expected: 'float32, int64, int32, uint8 or bool',
      });
  }
}

/** Largest number of values one JSON feed may hold (a 4k x 4k RGB image as numbers). */
export const MAX_JSON_FEED_VALUES = 3 * 4096 * 4096;

/**
 * Reads one JSON sample: `{ "<input>": { "dims": [...], "data": [...] } | nested arrays }`. Values are
 * numbers; integers keep their exact value for integer inputs.
 */
export function jsonSample(
  text: string,
  inputs: readonly FeedInput[],
  source: string,
  id: string,
): FeedSample {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new MixqError(`not valid JSON: ${(e as Error).message}`, { source, field: 'json' });
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new MixqError('a JSON feed must be an object keyed by input name', {
      source,
      field: '(root)',
      expected: `{ ${inputs.map((i) => `"${i.name}": ...`).join(', ')} }`,
    });
  const rec = obj as Record<string, unknown>;
  for (const k of Object.keys(rec))
    if (!inputs.some((i) => i.name === k))
      throw new MixqError(`'${k}' is not an input of the model`, {
        source,
        field: k,
        expected: `one of ${inputs.map((i) => i.name).join(', ')}`,
      });
  const tensors: Record<string, FeedTensor> = {};
  for (const input of inputs) {
    const v = rec[input.name];
    if (v === undefined)
      throw new MixqError('input missing', {
        source,
        field: input.name,
        expected: 'a value for every model input',
      });
    tensors[input.name] = toFeedTensor(jsonArray(v, source, input.name), input, source);
  }
  return { id, tensors };
}

function jsonArray(v: unknown, source: string, field: string): RawArray {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const dims = o.dims;
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && (d as number) >= 0))
      throw new MixqError('dims must be a list of non-negative integers', { source, field: `${field}.dims` });
    const flat = flatten(o.data, source, `${field}.data`);
    return { dtype: flat.every(Number.isInteger) ? 'int64' : 'float64', shape: dims as number[], data: flat };
  }
  const shape: number[] = [];
  for (let x: unknown = v; Array.isArray(x); x = x[0]) shape.push(x.length);
  const flat = flatten(v, source, field);
  return { dtype: flat.every(Number.isInteger) ? 'int64' : 'float64', shape, data: flat };
}

function flatten(v: unknown, source: string, field: string): number[] {
  const out: number[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth > 16)
      throw new MixqError('arrays nested too deep', { source, field, expected: '<= 16 levels' });
    if (typeof x === 'number') {
      if (out.length >= MAX_JSON_FEED_VALUES)
        throw new MixqError('too many values', { source, field, expected: `<= ${MAX_JSON_FEED_VALUES}` });
      out.push(x);
    } else if (Array.isArray(x)) for (const y of x) walk(y, depth + 1);
    else
      throw new MixqError(`${JSON.stringify(x)?.slice(0, 20)} is not a number`, {
        source,
        field,
        expected: 'numbers',
      });
  };
  walk(v, 0);
  return out;
}

/** Which set a sample belongs to. */
export type FeedSplit = 'calibration' | 'validation' | 'evaluation';

export interface SplitFeeds {
  readonly calibration: readonly FeedSample[];
  readonly validation: readonly FeedSample[];
  readonly evaluation: readonly FeedSample[];
  /** How the split was made, for the log and the report. */
  readonly rule: string;
}

/**
 * Splits samples (in the given, sorted order) so the three sets never overlap: of every four consecutive
 * samples the first two calibrate, the third validates and the fourth evaluates, so every set spans the
 * whole list. At least 4 samples.
 */
export function splitSamples(samples: readonly FeedSample[], source: string): SplitFeeds {
  if (samples.length < 4)
    throw new MixqError(
      `${samples.length} samples cannot be split into calibration, validation and evaluation`,
      {
        source,
        field: 'samples',
        expected: 'at least 4 (of every 4 in name order: 2 calibrate, 1 validates, 1 evaluates)',
      },
    );
  const sets: Record<FeedSplit, FeedSample[]> = { calibration: [], validation: [], evaluation: [] };
  samples.forEach((s, i) => {
    const k = i % 4;
    sets[k < 2 ? 'calibration' : k === 2 ? 'validation' : 'evaluation'].push(s);
  });
  return {
    ...sets,
    rule: `${samples.length} samples in name order; of every 4, #1-2 calibrate, #3 validates, #4 evaluates`,
  };
}

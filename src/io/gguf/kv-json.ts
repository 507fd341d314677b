/**
 * GGUF metadata (key-values) as JSON, for files that carry a model's GGUF description without being GGUF:
 * mixq's engine files (quantized safetensors whose `__metadata__` holds the GGUF key-values of the
 * architecture, hyper-parameters and tokenizer; docs/safetensors-quantized.md "Engine files").
 *
 *   [{ "key": "general.architecture", "type": "str", "value": "gpt2" },
 *    { "key": "gpt2.block_count", "type": "u32", "value": 4 },
 *    { "key": "tokenizer.ggml.tokens", "type": "arr", "value": { "itemType": "str", "items": ["a", ...] } },
 *    { "key": "x.count", "type": "u64", "value": "18446744073709551615" }]     u64 / i64 as decimal strings
 *
 * Reading checks every type and value as the GGUF reader does (integers in range, bool, nesting depth) and
 * caps the number of keys and array items with IoLimits. Browser-safe.
 */
import { MixqError } from '../../core/errors.ts';
import { type IoLimits, resolveLimits } from '../limits.ts';
import type { GgufArray, GgufKV, GgufTensorInfo, GgufValue, GgufFile } from './read.ts';
import { GGUF_VALUE_TYPES, type GgufValueType } from './types.ts';

/** The safetensors `__metadata__` key that holds a model's GGUF key-values in mixq engine files. */
export const GGUF_KV_METADATA_KEY = 'mixq.gguf_kv';

/** What a model's configuration and tokenizer are read from: GGUF key-values and tensor names / dims. */
export type GgufMetadata = Pick<GgufFile, 'source' | 'get'> & {
  readonly kv: readonly GgufKV[];
  readonly tensors: readonly Pick<GgufTensorInfo, 'name' | 'ne'>[];
};

/** A GgufMetadata from key-values and tensors (ne in ggml order). */
export function ggufMetadata(
  source: string,
  kv: readonly GgufKV[],
  tensors: readonly Pick<GgufTensorInfo, 'name' | 'ne'>[],
): GgufMetadata {
  const map = new Map(kv.map((e) => [e.key, e.value] as const));
  return { source, kv, tensors, get: (k) => map.get(k) };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function valueJson(type: GgufValueType, v: GgufValue): Json {
  if (type === 'arr') {
    const a = v as GgufArray;
    return { itemType: a.itemType, items: a.items.map((x) => valueJson(a.itemType, x)) };
  }
  if (typeof v === 'bigint') return v.toString();
  return v as Json;
}

/** GGUF key-values as a JSON string. */
export function ggufKvToJson(kv: readonly GgufKV[]): string {
  return JSON.stringify(kv.map((e) => ({ key: e.key, type: e.type, value: valueJson(e.type, e.value) })));
}

const INT_RANGE: Partial<Record<GgufValueType, [number, number]>> = {
  u8: [0, 255],
  i8: [-128, 127],
  u16: [0, 65535],
  i16: [-32768, 32767],
  u32: [0, 4294967295],
  i32: [-2147483648, 2147483647],
};
const BIG_RANGE: Partial<Record<GgufValueType, [bigint, bigint]>> = {
  u64: [0n, 2n ** 64n - 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/**
 * Parses GGUF key-values written by ggufKvToJson. `source` and `field` name the text in errors.
 * @example const kv = parseGgufKvJson(st.metadata['mixq.gguf_kv'], 'model.safetensors', 'mixq.gguf_kv');
 */
export function parseGgufKvJson(
  text: string,
  source: string,
  field: string,
  limits: Partial<IoLimits> = {},
): GgufKV[] {
  const lim = resolveLimits(limits);
  const fail = (message: string, f: string, expected: string): never => {
    throw new MixqError(message, { source, field: f, expected });
  };
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    fail(`not JSON (${(e as Error).message})`, field, 'a JSON list of GGUF key-values');
  }
  if (!Array.isArray(root)) return fail('not a list', field, '[{ "key", "type", "value" }, ...]');
  if (root.length > lim.maxKvCount)
    fail(`${root.length} keys`, field, `at most ${lim.maxKvCount} (IoLimits.maxKvCount)`);
  let items = 0;
  const value = (type: unknown, v: unknown, f: string, depth: number): GgufValue => {
    if (typeof type !== 'string' || !(GGUF_VALUE_TYPES as readonly string[]).includes(type))
      return fail(`type ${JSON.stringify(type)}`, f, GGUF_VALUE_TYPES.join(', '));
    const t = type as GgufValueType;
    const int = INT_RANGE[t];
    if (int) {
      if (!Number.isInteger(v) || (v as number) < int[0] || (v as number) > int[1])
        fail(`value ${JSON.stringify(v)}`, f, `an integer in ${int[0]}..${int[1]} (${t})`);
      return v as number;
    }
    const big = BIG_RANGE[t];
    if (big) {
      if (typeof v !== 'string' || !/^-?\d{1,20}$/.test(v))
        return fail(`value ${JSON.stringify(v)}`, f, `a decimal string (${t})`);
      const b = BigInt(v);
      if (b < big[0] || b > big[1]) fail(`value ${v}`, f, `${big[0]}..${big[1]} (${t})`);
      return b;
    }
    if (t === 'f32' || t === 'f64') {
      if (typeof v !== 'number') fail(`value ${JSON.stringify(v)}`, f, `a number (${t})`);
      return v as number;
    }
    if (t === 'bool') {
      if (typeof v !== 'boolean') fail(`value ${JSON.stringify(v)}`, f, 'true or false');
      return v as boolean;
    }
    if (t === 'str') {
      if (typeof v !== 'string') fail(`value ${JSON.stringify(v)}`, f, 'a string');
      return v as string;
    }
    if (depth >= 4) fail('arrays nested too deep', f, 'at most 4 levels');
    const o = v as { itemType?: unknown; items?: unknown } | null;
    if (typeof o !== 'object' || o === null || !Array.isArray(o.items))
      return fail('not an array value', f, '{ "itemType", "items": [...] }');
    items += o.items.length;
    if (items > lim.maxArrayLength)
      fail(`${items} array items`, f, `at most ${lim.maxArrayLength} (IoLimits.maxArrayLength)`);
    const itemType = o.itemType as GgufValueType;
    return {
      itemType,
      items: o.items.map((x, i) => value(itemType, x, `${f}[${i}]`, depth + 1)),
    };
  };
  const seen = new Set<string>();
  return root.map((e: unknown, i) => {
    const f = `${field}[${i}]`;
    const o = e as { key?: unknown; type?: unknown; value?: unknown } | null;
    if (typeof o !== 'object' || o === null || typeof o.key !== 'string' || o.key === '')
      return fail('no key', f, '{ "key": "...", "type": "...", "value": ... }');
    if (seen.has(o.key)) fail(`duplicate key '${o.key}'`, f, 'distinct keys');
    seen.add(o.key);
    return { key: o.key, type: o.type as GgufValueType, value: value(o.type, o.value, `${f}.value`, 0) };
  });
}

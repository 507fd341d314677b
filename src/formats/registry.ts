/**
 * The format registry: an explicit static table (no registration by import side effects), the aliases,
 * and name parsing for custom floats (`e3m4`, `ue5m3`) and narrow integers (`int6_narrow`).
 */
import { MixqError } from '../core/errors.ts';
import { codebookFormats } from './catalog/codebooks.ts';
import { fp8_e4m3, fp8_e4m3fn, fp8_e4m3fnuz, fp8_e5m2, fp8_e5m2fnuz } from './catalog/fp8.ts';
import { bf16, fp16, fp32, fp64, tf32 } from './catalog/ieee.ts';
import { intSpec, narrowInts, signedInts, ternary, unsignedInts } from './catalog/integers.ts';
import { fp4_e2m1fn, fp6_e2m3fn, fp6_e3m2fn } from './catalog/mx-elements.ts';
import { e8m0fnu } from './catalog/scale.ts';
import { floatLayout64 } from './minifloat.ts';
import type { FloatSpec, FormatSpec, NanEncoding } from './spec.ts';

/** Every named format, in display order. */
export const FORMATS: readonly FormatSpec[] = [
  fp32,
  tf32,
  fp16,
  bf16,
  fp8_e4m3fn,
  fp8_e4m3,
  fp8_e5m2,
  fp8_e4m3fnuz,
  fp8_e5m2fnuz,
  fp6_e3m2fn,
  fp6_e2m3fn,
  fp4_e2m1fn,
  e8m0fnu,
  ...signedInts,
  ...unsignedInts,
  ...narrowInts,
  ternary,
  ...codebookFormats,
];

/**
 * Formats whose values are not all float32: targets for float64 data only (chop of a Float64Array or a
 * number, encode, encodeBig). Kept out of FORMATS, whose every entry the float32 APIs accept.
 */
export const WIDE_FORMATS: readonly FormatSpec[] = [fp64];

/** Short and foreign (ml_dtypes, numpy, ONNX) names -> canonical name. Keys are lower case. */
export const ALIASES: Readonly<Record<string, string>> = {
  float32: 'fp32',
  f32: 'fp32',
  float: 'fp32',
  single: 'fp32',
  float64: 'fp64',
  f64: 'fp64',
  double: 'fp64',
  binary64: 'fp64',
  tensorfloat32: 'tf32',
  float16: 'fp16',
  f16: 'fp16',
  half: 'fp16',
  bfloat16: 'bf16',
  e4m3: 'fp8_e4m3fn',
  e4m3fn: 'fp8_e4m3fn',
  fp8: 'fp8_e4m3fn',
  float8_e4m3fn: 'fp8_e4m3fn',
  float8_e4m3: 'fp8_e4m3',
  e5m2: 'fp8_e5m2',
  float8_e5m2: 'fp8_e5m2',
  e4m3fnuz: 'fp8_e4m3fnuz',
  float8_e4m3fnuz: 'fp8_e4m3fnuz',
  e5m2fnuz: 'fp8_e5m2fnuz',
  float8_e5m2fnuz: 'fp8_e5m2fnuz',
  e3m2: 'fp6_e3m2fn',
  float6_e3m2fn: 'fp6_e3m2fn',
  e2m3: 'fp6_e2m3fn',
  float6_e2m3fn: 'fp6_e2m3fn',
  e2m1: 'fp4_e2m1fn',
  fp4: 'fp4_e2m1fn',
  float4_e2m1fn: 'fp4_e2m1fn',
  e8m0: 'e8m0fnu',
  float8_e8m0fnu: 'e8m0fnu',
  ue8m0: 'e8m0fnu',
  int2_narrow: 'ternary',
  normalfloat4: 'nf4',
  bool: 'uint1',
};

const byName = new Map<string, FormatSpec>([...FORMATS, ...WIDE_FORMATS].map((f) => [f.name, f]));

function lookup(name: string): FormatSpec | undefined {
  const key = name.trim().toLowerCase();
  const hit = byName.get(key) ?? byName.get(ALIASES[key] ?? '');
  if (hit) return hit;
  const narrow = /^int(\d+)_narrow$/.exec(key);
  if (narrow) {
    const bits = Number(narrow[1]);
    if (bits >= 3 && bits <= 16) return intSpec(bits, true, true);
  }
  return undefined;
}

function unknown(name: string, source: string): MixqError {
  return new MixqError(`unknown format '${name}'`, {
    source,
    expected: `one of ${[...FORMATS, ...WIDE_FORMATS].map((f) => f.name).join(', ')}, an alias (${Object.keys(ALIASES).join(', ')}), intN_narrow${source === 'parseFormat' ? ', or a custom float eXmY / ueXmY' : ''}`,
  });
}

/**
 * A registered format by canonical name or alias (case-insensitive). `getFormat('e4m3').name === 'fp8_e4m3fn'`.
 * Throws MixqError naming the unknown name and listing the valid ones.
 */
export function getFormat(name: string): FormatSpec {
  const f = lookup(name);
  if (!f) throw unknown(name, 'getFormat');
  return f;
}

/** Refinements of a float format (the CLI's --bias, --no-inf, --nan, --no-subnormals, --saturate). */
export interface FloatOverrides {
  bias?: number;
  inf?: boolean;
  nan?: NanEncoding;
  subnormals?: boolean;
  /** Default overflow becomes 'saturate'. */
  saturate?: boolean;
}

const CUSTOM_FLOAT = /^(u?)e(\d+)m(\d+)$/;

/**
 * A registered format, or any custom float `eXmY` (signed) / `ueXmY` (unsigned) with IEEE-like defaults:
 * bias 2^(X-1)-1, inf and IEEE NaN, subnormals, overflow to inf. With no mantissa bits (Y = 0) there is no
 * room for an IEEE NaN, so the default is then no inf and no NaN. Overrides refine the result; registered
 * names win over the pattern (`e4m3` is the alias of fp8_e4m3fn; spell the IEEE-like one `fp8_e4m3`).
 * `parseFormat('e3m4')` -> E3M4 bias 3, max 15.5; `parseFormat('e5m2', { saturate: true })`.
 */
export function parseFormat(name: string, overrides: FloatOverrides = {}): FormatSpec {
  const key = name.trim().toLowerCase();
  let base: FormatSpec | undefined = lookup(key);
  if (!base) {
    const m = CUSTOM_FLOAT.exec(key);
    if (!m) throw unknown(name, 'parseFormat');
    const expBits = Number(m[2]);
    const manBits = Number(m[3]);
    const special = manBits > 0 && expBits >= 2;
    base = {
      kind: 'float',
      name: key,
      expBits,
      manBits,
      bias: 2 ** (expBits - 1) - 1,
      signed: m[1] !== 'u',
      subnormals: true,
      inf: special,
      nan: special ? 'ieee' : 'none',
      overflow: 'ieee',
      description: `custom ${m[1] === 'u' ? 'unsigned ' : ''}E${expBits}M${manBits}`,
    };
  }
  const keys = Object.keys(overrides).filter((k) => overrides[k as keyof FloatOverrides] !== undefined);
  if (keys.length > 0) {
    if (base.kind !== 'float')
      throw new MixqError(`overrides (${keys.join(', ')}) apply only to float formats`, {
        source: 'parseFormat',
        field: name,
      });
    base = applyOverrides(base, overrides);
  }
  if (base.kind === 'float') floatLayout64(base); // validate now, so a bad custom format fails at parse time
  return base;
}

function applyOverrides(f: FloatSpec, o: FloatOverrides): FloatSpec {
  const inf = o.inf ?? (o.nan !== undefined && o.nan !== 'ieee' ? false : f.inf);
  const spec: FloatSpec = {
    ...f,
    bias: o.bias ?? f.bias,
    inf,
    nan: o.nan ?? f.nan,
    subnormals: o.subnormals ?? f.subnormals,
    overflow: o.saturate ? 'saturate' : f.overflow,
  };
  const parts: string[] = [];
  if (spec.bias !== f.bias) parts.push(`bias=${spec.bias}`);
  if (spec.inf !== f.inf) parts.push(spec.inf ? 'inf' : 'no-inf');
  if (spec.nan !== f.nan) parts.push(`nan=${spec.nan}`);
  if (spec.subnormals !== f.subnormals) parts.push(spec.subnormals ? 'subnormals' : 'no-subnormals');
  if (spec.overflow !== f.overflow) parts.push('saturate');
  return parts.length === 0 ? spec : { ...spec, name: `${f.name}(${parts.join(',')})` };
}

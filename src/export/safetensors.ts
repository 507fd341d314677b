/**
 * Quantized safetensors (quant_method "mixq", version 1): weights stored as packed codes plus scales and
 * zero points, with a `quantization_config` JSON string in `__metadata__` that says how to dequantize each
 * one. The exact layout, enough to write a loader from scratch (a numpy one is included), is
 * docs/safetensors-quantized.md. In short, for a quantized weight W of shape S:
 *
 *   W.qweight       U8   element codes, one LSB-first bit stream over W in row-major order (formats/pack.ts)
 *   W.scales        F32 | F16 | BF16 | U8 (e8m0 exponent codes) | F8_E4M3 | U8 (packed double sub-scales);
 *                   absent for scale_format none (scale 1: FP16 / BF16 weights stored as their own codes)
 *   W.global_scale  F32 [1]      (scale_format fp8_e4m3fn: per-tensor factor of the e4m3 codes)
 *   W.super_scales  F16 [n]      (scale_format double: one per run of super_group scales)
 *   W.zeros         U8   packed  (integer element formats, asymmetric: zero-point codes, element bits each)
 *   W.offsets       F16          (table element formats (floats, codebooks), asymmetric: additive offsets)
 *
 * Dequantized values are exactly src/quant's fake-quant values (quantizer.ts dequantize == fakeQuantWith),
 * and the bytes of a weight's tensors add up to storageCost(cfg, shape).bytes exactly: both round each
 * section (codes, scales, shared scales, zero points) up to whole bytes.
 *
 * Browser-safe: works on bytes in memory (or any SafetensorsFile); write the chunks with
 * io/files.node.ts `writeFileAtomic`.
 */
import { f16BitsToF32, f32ToF16Bits } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import { getFormat, packCodes, packedBytes, parseFormat, unpackCodes, valueTable } from '../formats/index.ts';
import type { FormatSpec } from '../formats/spec.ts';
import {
  floatBytesToF32,
  SAFETENSORS_FLOAT_DTYPES,
  type SafetensorsDtype,
} from '../io/safetensors/dtypes.ts';
import {
  parseSafetensors,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
} from '../io/safetensors/read.ts';
import { referenceOrder, type SafetensorsTensorInput, writeSafetensors } from '../io/safetensors/write.ts';
import type { IoLimits } from '../io/limits.ts';
import type { ElementGrid } from '../quant/element.ts';
import { type Granularity, groupCount, groupLayout } from '../quant/granularity.ts';
import {
  type ChooseOptions,
  chooseQParams,
  type QParams,
  qparamsOf,
  type QuantizerConfig,
  quantizerGrid,
} from '../quant/qparams.ts';
import { dequantize, type QuantizedTensor, quantize } from '../quant/quantizer.ts';
import { checkScaleFormat, loadScales, type ScaleFormat } from '../quant/scale-format.ts';

export const MIXQ_QUANT_METHOD = 'mixq';
export const MIXQ_QUANT_VERSION = 1;

/** How the element codes of a weight decode to grid values (what a loader needs besides the name). */
export type MixqElementJson =
  | { readonly kind: 'int'; readonly signed: boolean; readonly narrow: boolean; readonly code_base: number }
  | {
      readonly kind: 'float';
      readonly exp_bits: number;
      readonly man_bits: number;
      readonly bias: number;
      readonly signed: boolean;
      readonly subnormals: boolean;
      readonly has_zero: boolean;
    }
  | { readonly kind: 'lut'; readonly values: readonly number[] };

export type MixqGranularityJson =
  | { readonly kind: 'tensor' }
  | { readonly kind: 'axis'; readonly axis: number }
  | { readonly kind: 'group'; readonly axis: number; readonly size: number }
  | { readonly kind: 'block'; readonly rows: number; readonly cols: number };

export type MixqScaleFormatJson =
  | 'fp32'
  | 'fp16'
  | 'bf16'
  | 'e8m0'
  | 'fp8_e4m3fn'
  | 'none'
  | { readonly kind: 'double'; readonly sub_bits: number; readonly super_group: number };

/** One weight's entry in `quantization_config.weights`. */
export interface MixqWeightJson {
  /** Element format name (src/formats getFormat / parseFormat), e.g. 'uint4', 'fp4_e2m1fn', 'nf4'. */
  readonly format: string;
  readonly bits: number;
  readonly element: MixqElementJson;
  readonly granularity: MixqGranularityJson;
  readonly scale_format: MixqScaleFormatJson;
  readonly symmetric: boolean;
  readonly shape: readonly number[];
  readonly algorithm: string;
}

/** The parsed `quantization_config` metadata value. */
export interface MixqQuantizationConfig {
  readonly quant_method: 'mixq';
  readonly version: 1;
  readonly weights: Readonly<Record<string, MixqWeightJson>>;
}

/** A weight to quantize here with src/quant (chooseQParams + quantize, i.e. RTN with cfg's scale rule). */
export interface QuantizeWeightInput {
  readonly kind: 'quantize';
  readonly name: string;
  readonly values: Float32Array;
  readonly shape: readonly number[];
  readonly quantizer: QuantizerConfig;
  /** Recorded in the config; default 'rtn'. */
  readonly algorithm?: string;
  readonly options?: ChooseOptions;
  /**
   * The plan scheme's outliers (plan/schema.ts PlanOutliers), when it has any. This format (version 1)
   * has no side matrix for them, so a weight that names outliers is refused rather than written without.
   */
  readonly outliers?: { readonly kind: string };
}

/** A weight already quantized elsewhere (GPTQ, AWQ, ...): storage codes and the QParams they use. */
export interface CodesWeightInput {
  readonly kind: 'codes';
  readonly name: string;
  /** Storage code of every element, row-major (QuantizedTensor.codes / GptqResult.codes). */
  readonly codes: ArrayLike<number>;
  /** Parameters; the file stores params.scaleCodes / scaleShared / zero / offset as they are. */
  readonly params: QParams;
  readonly algorithm?: string;
}

/** A tensor stored unchanged (norms, biases, embeddings kept in float). */
export interface FloatTensorInput extends SafetensorsTensorInput {
  readonly kind: 'float';
}

export type QuantizedSafetensorsInput = QuantizeWeightInput | CodesWeightInput | FloatTensorInput;

export interface WriteQuantizedOptions {
  /** Extra `__metadata__` entries (e.g. { format: 'pt' }); 'quantization_config' is reserved. */
  readonly metadata?: Readonly<Record<string, string>>;
}

const WSRC = 'quantized safetensors writer';
/** The tensors of a quantized weight W are named `W.<role>`. */
export type MixqTensorRole = 'qweight' | 'scales' | 'global_scale' | 'super_scales' | 'zeros' | 'offsets';

const numel = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** Shape of the per-group parameter tensors (group ids in src/quant's row-major order). */
export function quantizedGroupShape(shape: readonly number[], g: Granularity): number[] {
  const rank = shape.length;
  if (g.kind === 'tensor') return [1];
  if (g.kind === 'block') {
    const R = shape[rank - 2] ?? 1;
    const C = shape[rank - 1] ?? 1;
    return [...shape.slice(0, rank - 2), Math.ceil(R / g.rows), Math.ceil(C / g.cols)];
  }
  const a = g.axis < 0 ? g.axis + rank : g.axis;
  if (g.kind === 'axis') return [shape[a] ?? 1];
  return [...shape.slice(0, a), ...shape.slice(a + 1), Math.ceil((shape[a] ?? 0) / g.size)];
}

/**
 * Shape of a U8 tensor holding `logical` codes of `bits` bits as one LSB-first stream: rows of the last
 * dimension when they fill whole bytes ([..., last * bits / 8]), else the flat byte count.
 */
export function packedTensorShape(logical: readonly number[], bits: number): number[] {
  const last = logical[logical.length - 1];
  if (last !== undefined && (last * bits) % 8 === 0) return [...logical.slice(0, -1), (last * bits) / 8];
  return [packedBytes(numel(logical), bits)];
}

/** The JSON descriptor of an element format (also used to check that a name resolves to the same format). */
export function mixqElementJson(spec: FormatSpec): MixqElementJson {
  if (spec.kind === 'int') {
    const qmax = 2 ** (spec.bits - 1) - 1;
    return {
      kind: 'int',
      signed: spec.signed,
      narrow: spec.narrow,
      code_base: spec.signed ? (spec.narrow ? -qmax : -qmax - 1) : 0,
    };
  }
  if (spec.kind === 'float')
    return {
      kind: 'float',
      exp_bits: spec.expBits,
      man_bits: spec.manBits,
      bias: spec.bias,
      signed: spec.signed,
      subnormals: spec.subnormals,
      has_zero: spec.zero !== false,
    };
  return { kind: 'lut', values: Array.from(valueTable(spec)) };
}

/** A format by name: registered names and aliases (getFormat), else custom eXmY / ueXmY (parseFormat). */
function resolveFormat(name: string): FormatSpec {
  try {
    return getFormat(name);
  } catch {
    return parseFormat(name);
  }
}

function granularityJson(g: Granularity, rank: number): MixqGranularityJson {
  if (g.kind === 'tensor') return { kind: 'tensor' };
  if (g.kind === 'block') return { kind: 'block', rows: g.rows, cols: g.cols };
  const axis = g.axis < 0 ? g.axis + rank : g.axis;
  return g.kind === 'axis' ? { kind: 'axis', axis } : { kind: 'group', axis, size: g.size };
}

function scaleFormatJson(f: ScaleFormat): MixqScaleFormatJson {
  return typeof f === 'object' ? { kind: 'double', sub_bits: f.subBits, super_group: f.superGroup } : f;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Whether a parsed JSON value equals an element descriptor (key order does not matter). */
function sameElement(v: unknown, want: MixqElementJson): boolean {
  if (!isObject(v)) return false;
  const keys = Object.keys(want) as (keyof MixqElementJson)[];
  if (Object.keys(v).length !== keys.length) return false;
  return keys.every((k) => sameJson(v[k], want[k]));
}

function f32Bytes(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i]!, true);
  return out;
}

function u16Bytes(codes: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(codes.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < codes.length; i++) dv.setUint16(2 * i, codes[i]!, true);
  return out;
}

/** Checks a (codes, params) pair is storable exactly as given; returns the element grid. */
function checkCodes(name: string, codes: ArrayLike<number>, params: QParams): ElementGrid {
  const fail = (message: string, field: string, expected: string) =>
    new MixqError(`weight '${name}': ${message}`, { source: WSRC, field, expected });
  const cfg = params.config;
  const grid = quantizerGrid(cfg);
  const n = numel(params.shape);
  if (codes.length !== n)
    throw fail(`${codes.length} codes`, 'codes.length', `${n} (shape [${params.shape}])`);
  const nG = groupCount(params.shape, cfg.granularity);
  if (params.scale.length !== nG || params.scaleCodes.length !== nG)
    throw fail(`${params.scaleCodes.length} scale codes`, 'params.scaleCodes', `${nG} (one per group)`);
  const top = 2 ** grid.bits;
  for (let i = 0; i < n; i++) {
    const c = codes[i]!;
    if (!(Number.isInteger(c) && c >= 0 && c < top))
      throw fail(`code ${c} at element ${i}`, 'codes', `an integer in 0..${top - 1}`);
    if (grid.kind === 'table' && !Number.isFinite(grid.codeValues[c]!))
      throw fail(
        `code ${c} at element ${i} is not a finite value of ${cfg.element.name}`,
        'codes',
        'finite codes',
      );
  }
  const sf = cfg.scaleFormat ?? 'fp32';
  const loaded = loadScales(sf, params.scaleCodes, params.scaleShared);
  for (let g = 0; g < nG; g++)
    if (!Object.is(loaded[g], params.scale[g]))
      throw fail(
        `scale codes decode to ${loaded[g]} but params.scale[${g}] is ${params.scale[g]}`,
        'params.scale',
        'the scales that params.scaleCodes / scaleShared store',
      );
  for (let g = 0; g < nG; g++) {
    const z = params.zero[g]!;
    const o = params.offset[g]!;
    if (grid.kind === 'int') {
      const want = cfg.symmetric ? (grid.qmin === 0 ? (grid.qmax + 1) / 2 : 0) : undefined;
      if (
        want !== undefined
          ? z !== want
          : !(Number.isInteger(z) && z >= grid.codeBase && z < grid.codeBase + top)
      )
        throw fail(
          `zero point ${z} of group ${g}`,
          'params.zero',
          want !== undefined
            ? `${want} (symmetric)`
            : `an integer in ${grid.codeBase}..${grid.codeBase + top - 1}`,
        );
    } else if (cfg.symmetric ? o !== 0 : f16BitsToF32(f32ToF16Bits(o)) !== o)
      throw fail(
        `offset ${o} of group ${g}`,
        'params.offset',
        cfg.symmetric ? '0 (symmetric)' : 'an fp16 value',
      );
  }
  return grid;
}

/**
 * Serialises float tensors and quantized weights into a safetensors file (chunks: header, then data).
 * Tensors are written in the reference writer's order (wider dtypes first, then by name), so every
 * tensor is naturally aligned and the data section has no padding.
 * @example
 *   const chunks = writeQuantizedSafetensors([
 *     { kind: 'quantize', name: 'fc.weight', values: w, shape: [64, 128],
 *       quantizer: { element: getFormat('uint4'), granularity: { kind: 'group', axis: 1, size: 32 },
 *                    symmetric: false, scaleFormat: 'fp16' } },
 *     { kind: 'float', name: 'fc.bias', dtype: 'F32', shape: [64], data: biasBytes },
 *   ]);
 *   await writeFileAtomic('model.mixq.safetensors', chunks);   // or concatBytes(chunks) in a browser
 */
export function writeQuantizedSafetensors(
  inputs: readonly QuantizedSafetensorsInput[],
  options: WriteQuantizedOptions = {},
): Uint8Array[] {
  const out: SafetensorsTensorInput[] = [];
  const weights: Record<string, MixqWeightJson> = {};
  const quantNames = new Set<string>();
  for (const t of inputs) if (t.kind !== 'float') quantNames.add(t.name);
  const ROLE = /^(.*)\.(qweight|scales|global_scale|super_scales|zeros|offsets)$/;
  inputs.forEach((t, i) => {
    if (t.kind === 'float') {
      if (quantNames.has(t.name) || quantNames.has(ROLE.exec(t.name)?.[1] ?? ''))
        throw new MixqError(`float tensor '${t.name}' has the name of a quantized weight or of its parts`, {
          source: WSRC,
          field: `inputs[${i}].name`,
          expected: 'distinct names',
        });
      out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: t.data });
      return;
    }
    if (t.name === '' || Object.hasOwn(weights, t.name))
      throw new MixqError(`weight name '${t.name}' is empty or repeated`, {
        source: WSRC,
        field: `inputs[${i}].name`,
        expected: 'unique non-empty names',
      });
    if (t.kind === 'quantize' && t.outliers !== undefined)
      throw new MixqError(
        `weight '${t.name}' keeps ${t.outliers.kind} outlier weights in a side matrix, which mixq safetensors version 1 cannot store`,
        {
          source: WSRC,
          field: `inputs[${i}].outliers`,
          expected:
            'a scheme without outliers (ONNX cannot store them either; mixq quantize --emit none evaluates them simulated)',
        },
      );
    let q: QuantizedTensor;
    if (t.kind === 'quantize') {
      const params = chooseQParams(t.values, t.shape, t.quantizer, t.options);
      q = quantize(t.values, params);
    } else {
      checkCodes(t.name, t.codes, t.params);
      q = { params: t.params, codes: Uint16Array.from(t.codes) };
    }
    const { params } = q;
    const cfg = params.config;
    const spec = cfg.element;
    const element = mixqElementJson(spec);
    let resolved: FormatSpec | undefined;
    try {
      resolved = resolveFormat(spec.name);
    } catch {
      resolved = undefined;
    }
    if (!resolved || !sameJson(mixqElementJson(resolved), element))
      throw new MixqError(`element format '${spec.name}' is not the format that name resolves to`, {
        source: WSRC,
        field: `inputs[${i}].element`,
        expected: 'a registered format (getFormat) or a default custom float eXmY',
      });
    const sf = cfg.scaleFormat ?? 'fp32';
    checkScaleFormat(sf);
    const grid = params.grid;
    const shape = [...params.shape];
    const gShape = quantizedGroupShape(shape, cfg.granularity);
    const nG = params.layout.nGroups;
    weights[t.name] = {
      format: spec.name,
      bits: grid.bits,
      element,
      granularity: granularityJson(cfg.granularity, shape.length),
      scale_format: scaleFormatJson(sf),
      symmetric: cfg.symmetric,
      shape,
      algorithm: t.algorithm ?? 'rtn',
    };
    const push = (suffix: MixqTensorRole, dtype: SafetensorsDtype, s: number[], data: Uint8Array) =>
      out.push({ name: `${t.name}.${suffix}`, dtype, shape: s, data });
    push('qweight', 'U8', packedTensorShape(shape, grid.bits), packCodes(q.codes, grid.bits));
    const codes = params.scaleCodes;
    if (sf === 'fp32') push('scales', 'F32', gShape, f32Bytes(params.scale));
    else if (sf === 'fp16' || sf === 'bf16')
      push('scales', sf === 'fp16' ? 'F16' : 'BF16', gShape, u16Bytes(codes));
    else if (sf === 'e8m0') push('scales', 'U8', gShape, Uint8Array.from(codes));
    else if (sf === 'fp8_e4m3fn') {
      push('scales', 'F8_E4M3', gShape, Uint8Array.from(codes));
      push('global_scale', 'F32', [1], f32Bytes(params.scaleShared));
    } else if (sf !== 'none') {
      push('scales', 'U8', packedTensorShape(gShape, sf.subBits), packCodes(codes, sf.subBits));
      push(
        'super_scales',
        'F16',
        [params.scaleShared.length],
        u16Bytes(Array.from(params.scaleShared, f32ToF16Bits)),
      );
    }
    if (!cfg.symmetric) {
      if (grid.kind === 'int') {
        const z = new Uint16Array(nG);
        for (let g = 0; g < nG; g++) z[g] = params.zero[g]! - grid.codeBase;
        push('zeros', 'U8', packedTensorShape(gShape, grid.bits), packCodes(z, grid.bits));
      } else push('offsets', 'F16', gShape, u16Bytes(Array.from(params.offset, f32ToF16Bits)));
    }
  });
  const metadata: Record<string, string> = {};
  if (options.metadata) {
    for (const k of Object.keys(options.metadata)) {
      if (k === 'quantization_config')
        throw new MixqError('metadata key quantization_config is reserved', {
          source: WSRC,
          field: 'options.metadata.quantization_config',
          expected: 'other keys',
        });
      metadata[k] = options.metadata[k]!;
    }
  }
  const config: MixqQuantizationConfig = {
    quant_method: MIXQ_QUANT_METHOD,
    version: MIXQ_QUANT_VERSION,
    weights,
  };
  metadata.quantization_config = JSON.stringify(config);
  return writeSafetensors({ tensors: referenceOrder(out), metadata });
}

// ------------------------------------------------------------------------------------------------ reader

/** One quantized weight of a file, validated against its tensors. */
export interface QuantizedWeightInfo {
  readonly name: string;
  readonly shape: readonly number[];
  /** The quantizer, as src/quant takes it (no scale rule: that only matters when choosing parameters). */
  readonly quantizer: QuantizerConfig;
  readonly algorithm: string;
  readonly entry: MixqWeightJson;
  /** The safetensors tensors that store it, by role. */
  readonly tensors: Readonly<Partial<Record<MixqTensorRole, SafetensorsTensorInfo>>>;
  /** Bytes of those tensors (= storageCost(quantizer, shape).bytes). */
  readonly bytes: number;
}

export interface QuantizedSafetensors {
  readonly file: SafetensorsFile;
  readonly config: MixqQuantizationConfig;
  readonly weights: readonly QuantizedWeightInfo[];
  /** Every tensor that is not part of a quantized weight, in data order. */
  readonly floatTensors: readonly SafetensorsTensorInfo[];
  /** Codes and parameters of a quantized weight (src/quant's QuantizedTensor). */
  load(name: string): Promise<QuantizedTensor>;
  /** Dequantized values of a quantized weight: exactly fakeQuant's values for the same quantizer. */
  dequantize(name: string): Promise<Float32Array>;
  /** A float tensor (F64/F32/F16/BF16/F8_*) as float32. */
  readFloat(name: string): Promise<Float32Array>;
}

const isCount = (v: unknown, min: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/**
 * Opens a quantized safetensors file (bytes in memory, or an already opened SafetensorsFile) and validates
 * its quantization_config against the tensors. Bad config raises MixqError naming the field
 * (e.g. `quantization_config.weights.fc.weight.granularity.size`).
 * @example
 *   const q = await readQuantizedSafetensors(bytes);
 *   for (const w of q.weights) console.log(w.name, w.entry.format, await q.dequantize(w.name));
 */
export async function readQuantizedSafetensors(
  input: Uint8Array | SafetensorsFile,
  opts: { name?: string; limits?: Partial<IoLimits> } = {},
): Promise<QuantizedSafetensors> {
  const file =
    input instanceof Uint8Array
      ? await parseSafetensors(input, opts.name ?? '<memory>', opts.limits ? { limits: opts.limits } : {})
      : input;
  const src = file.source;
  const fail = (message: string, field: string, expected: string) =>
    new MixqError(message, { source: src, field, expected });
  const raw = file.metadata?.quantization_config;
  if (raw === undefined)
    throw fail(
      'no quantization config',
      '__metadata__.quantization_config',
      'a mixq quantization_config JSON string',
    );
  let root: unknown;
  try {
    root = JSON.parse(raw);
  } catch (e) {
    throw fail(`not JSON (${(e as Error).message})`, '__metadata__.quantization_config', 'a JSON object');
  }
  const F = 'quantization_config';
  if (!isObject(root)) throw fail('not an object', F, 'a JSON object');
  if (root.quant_method !== MIXQ_QUANT_METHOD)
    throw fail(`quant_method is ${JSON.stringify(root.quant_method)}`, `${F}.quant_method`, '"mixq"');
  if (root.version !== MIXQ_QUANT_VERSION)
    throw fail(`version is ${JSON.stringify(root.version)}`, `${F}.version`, String(MIXQ_QUANT_VERSION));
  if (!isObject(root.weights)) throw fail('weights is not an object', `${F}.weights`, '{ "<name>": {...} }');
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const used = new Set<string>();
  const weights: QuantizedWeightInfo[] = [];
  const entries: Record<string, MixqWeightJson> = {};
  for (const name of Object.keys(root.weights)) {
    const info = parseWeight(name, root.weights[name], `${F}.weights.${name}`, byName, fail);
    for (const t of Object.values(info.tensors)) used.add(t.name);
    entries[name] = info.entry;
    weights.push(info);
  }
  const weightMap = new Map(weights.map((w) => [w.name, w]));
  const config: MixqQuantizationConfig = { quant_method: MIXQ_QUANT_METHOD, version: 1, weights: entries };
  const floatTensors = file.tensors.filter((t) => !used.has(t.name));

  const load = async (name: string): Promise<QuantizedTensor> => {
    const w = weightMap.get(name);
    if (!w) throw fail(`no quantized weight '${name}'`, 'name', `one of ${[...weightMap.keys()].join(', ')}`);
    return loadWeight(file, w, fail);
  };
  return {
    file,
    config,
    weights,
    floatTensors,
    load,
    dequantize: async (name) => dequantize(await load(name)),
    readFloat: async (name) => {
      const t = byName.get(name);
      if (!t || used.has(name))
        throw fail(`no float tensor '${name}'`, 'name', 'a tensor that is not part of a quantized weight');
      if (!SAFETENSORS_FLOAT_DTYPES.includes(t.dtype))
        throw fail(
          `tensor '${name}' is ${t.dtype}`,
          `tensors['${name}'].dtype`,
          SAFETENSORS_FLOAT_DTYPES.join('|'),
        );
      return floatBytesToF32(t.dtype, await file.readTensorBytes(t));
    },
  };
}

type Fail = (message: string, field: string, expected: string) => MixqError;

function parseGranularity(v: unknown, f: string, rank: number, fail: Fail): MixqGranularityJson {
  if (!isObject(v)) throw fail('not an object', f, '{ "kind": "tensor" | "axis" | "group" | "block", ... }');
  const axisOk = (a: unknown): a is number => isCount(a, 0) && a < rank;
  switch (v.kind) {
    case 'tensor':
      return { kind: 'tensor' };
    case 'axis':
      if (!axisOk(v.axis)) throw fail(`axis ${JSON.stringify(v.axis)}`, `${f}.axis`, `0..${rank - 1}`);
      return { kind: 'axis', axis: v.axis };
    case 'group':
      if (!axisOk(v.axis)) throw fail(`axis ${JSON.stringify(v.axis)}`, `${f}.axis`, `0..${rank - 1}`);
      if (!isCount(v.size, 1)) throw fail(`size ${JSON.stringify(v.size)}`, `${f}.size`, 'an integer >= 1');
      return { kind: 'group', axis: v.axis, size: v.size };
    case 'block':
      if (rank < 2) throw fail('block granularity on a tensor of rank < 2', `${f}.kind`, 'rank >= 2');
      if (!isCount(v.rows, 1)) throw fail(`rows ${JSON.stringify(v.rows)}`, `${f}.rows`, 'an integer >= 1');
      if (!isCount(v.cols, 1)) throw fail(`cols ${JSON.stringify(v.cols)}`, `${f}.cols`, 'an integer >= 1');
      return { kind: 'block', rows: v.rows, cols: v.cols };
    default:
      throw fail(`kind ${JSON.stringify(v.kind)}`, `${f}.kind`, 'tensor|axis|group|block');
  }
}

function parseScaleFormat(v: unknown, f: string, fail: Fail): ScaleFormat {
  if (v === 'fp32' || v === 'fp16' || v === 'bf16' || v === 'e8m0' || v === 'fp8_e4m3fn' || v === 'none')
    return v;
  if (isObject(v) && v.kind === 'double') {
    if (!(isCount(v.sub_bits, 2) && v.sub_bits <= 16))
      throw fail(`sub_bits ${JSON.stringify(v.sub_bits)}`, `${f}.sub_bits`, '2..16');
    if (!isCount(v.super_group, 1))
      throw fail(`super_group ${JSON.stringify(v.super_group)}`, `${f}.super_group`, 'an integer >= 1');
    return { kind: 'double', subBits: v.sub_bits, superGroup: v.super_group };
  }
  throw fail(
    `${JSON.stringify(v)}`,
    f,
    'fp32|fp16|bf16|e8m0|fp8_e4m3fn|{"kind":"double","sub_bits","super_group"}',
  );
}

function parseWeight(
  name: string,
  v: unknown,
  f: string,
  byName: ReadonlyMap<string, SafetensorsTensorInfo>,
  fail: Fail,
): QuantizedWeightInfo {
  if (!isObject(v)) throw fail('not an object', f, 'a weight entry object');
  if (byName.has(name))
    throw fail(`a tensor is also named '${name}'`, f, 'quantized weights stored only as <name>.qweight etc.');
  const shape = v.shape;
  if (!Array.isArray(shape) || !shape.every((d) => isCount(d, 0)))
    throw fail(`shape ${JSON.stringify(shape)}`, `${f}.shape`, 'an array of non-negative integers');
  const dims = shape as number[];
  if (typeof v.format !== 'string')
    throw fail(`format ${JSON.stringify(v.format)}`, `${f}.format`, 'a format name');
  let spec: FormatSpec;
  try {
    spec = resolveFormat(v.format);
  } catch {
    throw fail(
      `unknown format '${v.format}'`,
      `${f}.format`,
      'a format name known to getFormat / parseFormat',
    );
  }
  let grid: ElementGrid;
  try {
    grid = quantizerGrid({ element: spec, granularity: { kind: 'tensor' }, symmetric: false });
  } catch (e) {
    throw fail(
      `format '${v.format}' is not a quantizer element (${(e as Error).message})`,
      `${f}.format`,
      'a <= 16-bit format',
    );
  }
  if (v.bits !== grid.bits)
    throw fail(`bits ${JSON.stringify(v.bits)}`, `${f}.bits`, `${grid.bits} (format ${spec.name})`);
  const element = mixqElementJson(spec);
  if (!sameElement(v.element, element))
    throw fail(`element ${JSON.stringify(v.element)}`, `${f}.element`, JSON.stringify(element));
  const granularity = parseGranularity(v.granularity, `${f}.granularity`, dims.length, fail);
  const scaleFormat = parseScaleFormat(v.scale_format, `${f}.scale_format`, fail);
  if (typeof v.symmetric !== 'boolean')
    throw fail(`symmetric ${JSON.stringify(v.symmetric)}`, `${f}.symmetric`, 'true or false');
  const symmetric = v.symmetric;
  if (scaleFormat === 'none' && !symmetric)
    throw fail(
      'scale_format "none" with symmetric false',
      `${f}.symmetric`,
      'true (no scale, no zero point)',
    );
  if (typeof v.algorithm !== 'string' || v.algorithm === '')
    throw fail(
      `algorithm ${JSON.stringify(v.algorithm)}`,
      `${f}.algorithm`,
      'a non-empty string, e.g. "rtn"',
    );
  const quantizer: QuantizerConfig = { element: spec, granularity, symmetric, scaleFormat };
  try {
    quantizerGrid(quantizer);
  } catch (e) {
    throw fail((e as Error).message, `${f}.symmetric`, 'false for a format without positive values');
  }
  const entry: MixqWeightJson = {
    format: v.format,
    bits: grid.bits,
    element,
    granularity,
    scale_format: scaleFormatJson(scaleFormat),
    symmetric,
    shape: dims,
    algorithm: v.algorithm,
  };
  // the tensors this entry needs, with their exact dtype and shape
  const gShape = quantizedGroupShape(dims, granularity);
  const nG = numel(gShape);
  const want: [MixqTensorRole, SafetensorsDtype, number[]][] = [
    ['qweight', 'U8', packedTensorShape(dims, grid.bits)],
  ];
  if (scaleFormat === 'fp32') want.push(['scales', 'F32', gShape]);
  else if (scaleFormat === 'fp16') want.push(['scales', 'F16', gShape]);
  else if (scaleFormat === 'bf16') want.push(['scales', 'BF16', gShape]);
  else if (scaleFormat === 'e8m0') want.push(['scales', 'U8', gShape]);
  else if (scaleFormat === 'fp8_e4m3fn')
    want.push(['scales', 'F8_E4M3', gShape], ['global_scale', 'F32', [1]]);
  else if (scaleFormat !== 'none')
    want.push(
      ['scales', 'U8', packedTensorShape(gShape, scaleFormat.subBits)],
      ['super_scales', 'F16', [Math.ceil(nG / scaleFormat.superGroup)]],
    );
  if (!symmetric) {
    if (grid.kind === 'int') want.push(['zeros', 'U8', packedTensorShape(gShape, grid.bits)]);
    else want.push(['offsets', 'F16', gShape]);
  }
  const tensors: Partial<Record<MixqTensorRole, SafetensorsTensorInfo>> = {};
  let bytes = 0;
  for (const [suffix, dtype, s] of want) {
    const tn = `${name}.${suffix}`;
    const t = byName.get(tn);
    if (!t) throw fail(`tensor '${tn}' is missing`, `tensors['${tn}']`, `a ${dtype} tensor of shape [${s}]`);
    if (t.dtype !== dtype) throw fail(`dtype ${t.dtype}`, `tensors['${tn}'].dtype`, dtype);
    if (!sameJson(t.shape, s))
      throw fail(`shape [${t.shape}]`, `tensors['${tn}'].shape`, `[${s}] (from ${f})`);
    tensors[suffix] = t;
    bytes += t.nbytes;
  }
  return { name, shape: dims, quantizer, algorithm: v.algorithm, entry, tensors, bytes };
}

async function loadWeight(
  file: SafetensorsFile,
  w: QuantizedWeightInfo,
  fail: Fail,
): Promise<QuantizedTensor> {
  const cfg = w.quantizer;
  const grid = quantizerGrid(cfg);
  const layout = groupLayout(w.shape, cfg.granularity);
  const nG = layout.nGroups;
  const n = numel(w.shape);
  const read = (t: SafetensorsTensorInfo | undefined): Promise<Uint8Array> =>
    t ? file.readTensorBytes(t) : Promise.resolve(new Uint8Array(0));
  const tn = (s: string) => `tensors['${w.name}.${s}']`;
  const codes = Uint16Array.from(unpackCodes(await read(w.tensors.qweight), grid.bits, n));
  if (grid.kind === 'table')
    for (let i = 0; i < n; i++)
      if (!Number.isFinite(grid.codeValues[codes[i]!]!))
        throw fail(
          `code ${codes[i]} at element ${i} is not a finite ${cfg.element.name} value`,
          tn('qweight'),
          'finite codes',
        );
  const sf = cfg.scaleFormat ?? 'fp32';
  const sb = await read(w.tensors.scales);
  const dv = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
  const scaleCodes = new Uint32Array(nG);
  let shared: Float32Array = new Float32Array(0);
  if (sf === 'fp32') for (let g = 0; g < nG; g++) scaleCodes[g] = dv.getUint32(4 * g, true);
  else if (sf === 'fp16' || sf === 'bf16')
    for (let g = 0; g < nG; g++) scaleCodes[g] = dv.getUint16(2 * g, true);
  else if (sf === 'e8m0' || sf === 'fp8_e4m3fn') scaleCodes.set(sb);
  else if (sf !== 'none') scaleCodes.set(unpackCodes(sb, sf.subBits, nG));
  if (sf === 'fp8_e4m3fn') shared = floatBytesToF32('F32', await read(w.tensors.global_scale));
  else if (typeof sf === 'object') shared = floatBytesToF32('F16', await read(w.tensors.super_scales));
  const scale = loadScales(sf, scaleCodes, shared);
  // an NVFP4 block whose E4M3 scale code is 0 is all zeros (blocks/nvfp4.ts); other scales are never 0
  const zeroScale = sf === 'fp8_e4m3fn';
  for (let g = 0; g < nG; g++)
    if (!(Number.isFinite(scale[g]!) && (scale[g]! !== 0 || zeroScale)))
      throw fail(`scale of group ${g} is ${scale[g]}`, tn('scales'), 'finite non-zero scales');
  const zero = new Float32Array(nG);
  const offset = new Float32Array(nG);
  if (grid.kind === 'int') {
    if (cfg.symmetric) zero.fill(grid.qmin === 0 ? (grid.qmax + 1) / 2 : 0);
    else {
      const z = unpackCodes(await read(w.tensors.zeros), grid.bits, nG);
      for (let g = 0; g < nG; g++) zero[g] = z[g]! + grid.codeBase;
    }
  } else if (!cfg.symmetric) {
    const o = floatBytesToF32('F16', await read(w.tensors.offsets));
    for (let g = 0; g < nG; g++)
      if (!Number.isFinite(o[g]!))
        throw fail(`offset of group ${g} is ${o[g]}`, tn('offsets'), 'finite offsets');
    offset.set(o);
  }
  const params = qparamsOf(cfg, w.shape, { scale, codes: scaleCodes, shared }, zero, offset, layout, grid);
  return { params, codes };
}

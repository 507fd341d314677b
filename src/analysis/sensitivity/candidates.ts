/**
 * Candidate quantization schemes for the sensitivity analysis, as data: a QuantizerConfig plus the PTQ
 * algorithm that produces the quantized weight (RTN, GPTQ, AWQ), with an id the allocator and the plan
 * file use.
 *
 * Every weight is handled as a "row matrix" [rows = output channels, cols = reduction] (layout.ts):
 * per-channel = one scale per row (granularity axis 0), grouped = runs of g consecutive columns
 * (granularity group along axis 1). Storage is therefore storageCost(quantizer, [rows, cols]), exact to
 * the bit (codes + scales + shared scales + zero points).
 *
 * Scale storage follows the formats' own specifications or common practice:
 * - INTn per-channel: fp32 scale per row (plus an n-bit zero point when asymmetric);
 * - INTn grouped (g32 / g128): fp16 scale (+ n-bit zero point) per group, as GPTQ / ggml Q4_1 store them;
 * - FP8 / FP6 / FP4 per-channel: fp32 scale per row; NF4: groups of 64 with an fp16 absmax (bitsandbytes
 *   uses 64-element blocks);
 * - MXFP4/6/8 (OCP MX v1.0): groups of 32 with an E8M0 power-of-two scale;
 * - NVFP4: E2M1 in groups of 16 with an FP8 E4M3 scale, plus one fp32 tensor scale.
 * - FP16 / BF16 ('fp16-rtn', 'bf16-rtn'): the weight cast to 16 bits, no scale (scale format 'none'); the
 *   choice that spends more than 8 bits on a layer that needs them.
 *
 * Salient-weight candidates (ids '<rtn id>-sp<percent>', e.g. 'int3-g32-rtn-sp1'): the RTN candidate on
 * the matrix with that percentage of its weights removed and kept in fp16 in a CSR side matrix
 * (src/quant/algorithms/outliers.ts salientSparse, criterion 'hessian' with H_jj = E[x_j^2]); storage is
 * the dense part plus the side matrix, exactly (salientStorage). '-spa<percent>' ranks by the
 * 'activation' criterion (|w| * rms(x)) instead. They need the layer's calibration statistics.
 *
 * Clipping-search candidates (ids '<int rtn | gptq id>-mse', e.g. 'int3-g32-rtn-mse', 'int2-g32-gptq-mse'):
 * each group's range minimises the squared rounding error over clipping ratios instead of taking the
 * min-max range (clipSearchCandidate). They combine with salient weights: 'int3-g32-rtn-mse-sp1'.
 */
import { getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { getFormat } from '../../formats/index.ts';
import { salientStorage } from '../../quant/algorithms/outliers.ts';
import type { QuantizerConfig, ScaleRule } from '../../quant/qparams.ts';
import { storageCost } from '../../quant/quantizer.ts';
import type { ScaleFormat } from '../../quant/scale-format.ts';

export type SensitivityAlgorithm = 'rtn' | 'gptq' | 'awq';

export interface SensitivityCandidate {
  /** Unique id, e.g. 'int4-g32-rtn', 'nvfp4-rtn'; used as the allocator's scheme id. */
  readonly id: string;
  /** Element format + granularity name without the algorithm, e.g. 'int4-g32'. */
  readonly scheme: string;
  readonly quantizer: QuantizerConfig;
  readonly algorithm: SensitivityAlgorithm;
  /** Nominal element bits (before scales), for sorting and display. */
  readonly elementBits: number;
  /**
   * A ggml block type (src/blocks registry name, e.g. 'Q4_K'): rows are encoded with ggml's own quantizer
   * (with the calibration importance matrix when known) and stored in its block layout. `quantizer` is then
   * only a nominal description (element bits, block size) for display.
   */
  readonly blockType?: string;
  /**
   * Salient weights kept in fp16 in a CSR side matrix (RTN candidates only): `fraction` of all weights,
   * ranked by `criterion` (outliers.ts salientSparse). The dense part is `quantizer` with RTN.
   */
  readonly salient?: SalientSpec;
}

/** The salient-weight part of a candidate. */
export interface SalientSpec {
  /** Fraction of all weights kept in fp16, in (0, 1). */
  readonly fraction: number;
  readonly criterion: 'hessian' | 'activation';
}

type Gran = 'pc' | number;

function granularity(g: Gran): QuantizerConfig['granularity'] {
  return g === 'pc' ? { kind: 'axis', axis: 0 } : { kind: 'group', axis: 1, size: g };
}

function intScheme(bits: number, g: Gran): { scheme: string; quantizer: QuantizerConfig } {
  // 8 and 6 bit: symmetric signed (zero point not worth its bits); <= 5 bit: asymmetric unsigned with a
  // zero point, as GPTQ and ggml's Q4_1 / Q*_K do (a 4-bit symmetric grid wastes a level).
  const symmetric = bits >= 6;
  const scaleFormat: ScaleFormat = g === 'pc' ? 'fp32' : 'fp16';
  return {
    scheme: `int${bits}-${g === 'pc' ? 'pc' : `g${g}`}`,
    quantizer: {
      element: getFormat(symmetric ? `int${bits}` : `uint${bits}`),
      granularity: granularity(g),
      symmetric,
      scaleFormat,
    },
  };
}

function floatScheme(
  scheme: string,
  format: string,
  g: Gran,
  scaleFormat: ScaleFormat,
): { scheme: string; quantizer: QuantizerConfig } {
  return {
    scheme,
    quantizer: { element: getFormat(format), granularity: granularity(g), symmetric: true, scaleFormat },
  };
}

/** Every element-format x granularity scheme of the full set, in a stable order. */
function allSchemes(): { scheme: string; quantizer: QuantizerConfig }[] {
  const out: { scheme: string; quantizer: QuantizerConfig }[] = [];
  for (const bits of [8, 7, 6, 5, 4, 3, 2])
    for (const g of ['pc', 128, 32] as Gran[]) out.push(intScheme(bits, g));
  out.push(floatScheme('fp8_e4m3-pc', 'fp8_e4m3fn', 'pc', 'fp32'));
  out.push(floatScheme('fp8_e5m2-pc', 'fp8_e5m2', 'pc', 'fp32'));
  out.push(floatScheme('fp6_e3m2-pc', 'fp6_e3m2fn', 'pc', 'fp32'));
  out.push(floatScheme('fp6_e2m3-pc', 'fp6_e2m3fn', 'pc', 'fp32'));
  out.push(floatScheme('fp4_e2m1-pc', 'fp4_e2m1fn', 'pc', 'fp32'));
  out.push(floatScheme('mxfp8', 'fp8_e4m3fn', 32, 'e8m0'));
  out.push(floatScheme('mxfp6', 'fp6_e3m2fn', 32, 'e8m0'));
  out.push(floatScheme('mxfp4', 'fp4_e2m1fn', 32, 'e8m0'));
  out.push(floatScheme('nvfp4', 'fp4_e2m1fn', 16, 'fp8_e4m3fn'));
  out.push(floatScheme('nf4-g64', 'nf4', 64, 'fp16'));
  // 16-bit weights without a scale (a plain cast): where a sensitive layer is worth more than 8 bits
  out.push(floatScheme('fp16', 'fp16', 'pc', 'none'));
  out.push(floatScheme('bf16', 'bf16', 'pc', 'none'));
  return out;
}

/** Nominal element bits of a quantizer (before scales). */
export function elementBitsOf(q: QuantizerConfig): number {
  const e = q.element;
  if (e.kind === 'int') return e.bits;
  const n = e.name;
  if (n === 'fp16' || n === 'bf16') return 16;
  if (n.startsWith('fp8')) return 8;
  if (n.startsWith('fp6')) return 6;
  return 4;
}

function make(
  s: { scheme: string; quantizer: QuantizerConfig },
  algorithm: SensitivityAlgorithm,
): SensitivityCandidate {
  return {
    id: `${s.scheme}-${algorithm}`,
    scheme: s.scheme,
    quantizer: s.quantizer,
    algorithm,
    elementBits: elementBitsOf(s.quantizer),
  };
}

/**
 * The full candidate set: every scheme with RTN; the grouped and per-channel INT2..INT8 and the 4-bit
 * float / NF4 schemes also with GPTQ and AWQ (they need X^T X of the layer; see applicable()).
 */
export function fullCandidates(): SensitivityCandidate[] {
  const out: SensitivityCandidate[] = [];
  for (const s of allSchemes()) {
    out.push(make(s, 'rtn'));
    const q = s.quantizer;
    const bits = elementBitsOf(q);
    if (q.element.kind === 'int' || (bits === 4 && s.scheme !== 'mxfp4')) {
      out.push(make(s, 'gptq'));
      out.push(make(s, 'awq'));
    }
  }
  return out;
}

/**
 * Scheme ids of the default (fast) set, all RTN: one eval per candidate per weight, no GPTQ/AWQ cost. FP16
 * lets a budget above 8 bits per weight go to the layers that need it (without it, the best plan at INT8's
 * size is INT8 everywhere).
 */
export const DEFAULT_CANDIDATE_IDS: readonly string[] = [
  'int8-pc-rtn',
  'int6-pc-rtn',
  'int5-g32-rtn',
  'int4-pc-rtn',
  'int4-g32-rtn',
  'int3-g32-rtn',
  'int2-g32-rtn',
  'fp8_e4m3-pc-rtn',
  'mxfp4-rtn',
  'nvfp4-rtn',
  'nf4-g64-rtn',
  'fp16-rtn',
];

/**
 * The default candidate set (12 RTN schemes spanning 2..8 bits, integer and float, per-channel and
 * grouped, and FP16): small enough that measuring every (weight, candidate) pair end to end takes minutes on the
 * bundled models.
 */
export function defaultCandidates(): SensitivityCandidate[] {
  const all = new Map(fullCandidates().map((c) => [c.id, c] as const));
  return DEFAULT_CANDIDATE_IDS.map((id) => all.get(id)!);
}

/** ggml block types offered as candidates, largest first (K-quants need rows that are multiples of 256). */
export const GGML_CANDIDATE_TYPES: readonly string[] = [
  'Q8_0',
  'Q6_K',
  'Q5_K',
  'Q5_1',
  'Q5_0',
  'Q4_K',
  'Q4_1',
  'Q4_0',
  'IQ4_NL',
  'Q3_K',
  'Q2_K',
];

/** Nominal element of a ggml type (display and plan files): its code width and signedness. */
function ggmlElement(type: string): { bits: number; signed: boolean } {
  const bits = Number(/^I?Q(\d)/.exec(type)?.[1] ?? 8);
  // Q*_0, Q6_K, Q3_K and IQ4_NL are symmetric (signed); Q*_1, Q4_K, Q5_K and Q2_K carry a minimum
  const signed = /_0$|^Q6_K$|^Q3_K$|^IQ4_NL$/.test(type);
  return { bits, signed };
}

/** One candidate per ggml block type (ids 'ggml-q4_k', ...): ggml's quantizers, imatrix path when known. */
export function ggmlCandidates(): SensitivityCandidate[] {
  return GGML_CANDIDATE_TYPES.map((t) => {
    const bt = getBlockType(t);
    const e = ggmlElement(t);
    const quantizer: QuantizerConfig = {
      element: getFormat(`${e.signed ? 'int' : 'uint'}${e.bits}`),
      granularity: { kind: 'group', axis: 1, size: bt.blockSize },
      symmetric: e.signed,
      scaleFormat: 'fp16',
    };
    return {
      id: `ggml-${t.toLowerCase()}`,
      scheme: t.toLowerCase(),
      quantizer,
      algorithm: 'rtn',
      elementBits: e.bits,
      blockType: t,
    };
  });
}

/** A percentage as written in ids: shortest decimal, float noise of fraction * 100 removed (7, 0.5, 12.5). */
function percentText(fraction: number): string {
  return String(Number((fraction * 100).toPrecision(12)));
}

/**
 * The salient-weight variant of an RTN candidate: `fraction` of the weights (0 < fraction < 1) kept in fp16,
 * ranked by `criterion`. Id: base id + '-sp<percent>' ('hessian') or '-spa<percent>' ('activation').
 */
export function salientCandidate(
  base: SensitivityCandidate,
  fraction: number,
  criterion: SalientSpec['criterion'] = 'hessian',
): SensitivityCandidate {
  if (base.algorithm !== 'rtn' || base.blockType !== undefined || base.salient !== undefined)
    throw new MixqError(`salient weights are only offered on plain RTN candidates, not '${base.id}'`, {
      field: base.id,
      expected: 'an RTN element-format candidate (no gptq / awq / ggml / salient)',
    });
  if (!(fraction > 0 && fraction < 1))
    throw new MixqError(`salient fraction ${fraction} of '${base.id}'`, {
      field: `${base.id}.salient.fraction`,
      expected: 'a number in (0, 1)',
    });
  return {
    ...base,
    id: `${base.id}-sp${criterion === 'activation' ? 'a' : ''}${percentText(fraction)}`,
    salient: { fraction, criterion },
  };
}

/** The clipping search of '-mse' candidates: GPTQ's grid over clipping ratios, least squared error. */
export const MSE_SCALE_RULE: ScaleRule = { kind: 'mse' };

/**
 * The clipping-search variant of an integer RTN or GPTQ candidate: each group's range is the clipping
 * ratio (1, 0.99, ... 0.2 of its min-max range) with the least squared error (qparams.ts 'mse', as GPTQ's
 * `mse` option) instead of the min-max range. Same storage; id: base id + '-mse'.
 */
export function clipSearchCandidate(base: SensitivityCandidate): SensitivityCandidate {
  const q = base.quantizer;
  if (
    q.element.kind !== 'int' ||
    (base.algorithm !== 'rtn' && base.algorithm !== 'gptq') ||
    base.blockType !== undefined ||
    base.salient !== undefined ||
    (q.scaleRule !== undefined && q.scaleRule.kind !== 'minmax')
  )
    throw new MixqError(
      `the clipping search is only offered on integer RTN / GPTQ candidates, not '${base.id}'`,
      {
        field: base.id,
        expected: 'an integer rtn or gptq candidate with the min-max rule (no ggml / salient)',
      },
    );
  return { ...base, id: `${base.id}-mse`, quantizer: { ...q, scaleRule: MSE_SCALE_RULE } };
}

const SALIENT_ID = /^(.+)-sp(a?)(\d+(?:\.\d+)?)$/;
const SALIENT_FORM =
  "'<rtn candidate id>-sp<percent>' (or '-spa<percent>' for the activation criterion), percent in (0, 100), e.g. 'int3-g32-rtn-sp1' or 'int4-g32-rtn-sp0.5'";

/**
 * Looks candidates up by id in the full set and the ggml set, plus salient variants '<rtn id>-sp<percent>'
 * (salientCandidate). Unknown ids throw a RangeError naming them; a malformed salient suffix (or one on a
 * non-RTN base) throws a MixqError naming the id and the expected form.
 */
export function candidatesById(ids: readonly string[]): SensitivityCandidate[] {
  const all = new Map([...fullCandidates(), ...ggmlCandidates()].map((c) => [c.id, c] as const));
  const resolve = (id: string): SensitivityCandidate => {
    const c = all.get(id);
    if (c) return c;
    if (id.endsWith('-mse')) {
      const base = all.get(id.slice(0, -4));
      if (base) return clipSearchCandidate(base);
    }
    if (id.includes('-sp')) {
      const m = SALIENT_ID.exec(id);
      let base: SensitivityCandidate | undefined;
      try {
        base = m ? resolve(m[1]!) : undefined;
      } catch {
        base = undefined;
      }
      const pct = m ? Number(m[3]) : NaN;
      if (
        !m ||
        !base ||
        base.algorithm !== 'rtn' ||
        base.blockType !== undefined ||
        base.salient !== undefined ||
        !(pct > 0 && pct < 100)
      )
        throw new MixqError(`malformed salient candidate id '${id}'`, {
          source: 'candidate id',
          field: id,
          expected: SALIENT_FORM,
        });
      return salientCandidate(base, pct / 100, m[2] === 'a' ? 'activation' : 'hessian');
    }
    throw new RangeError(`unknown candidate '${id}'`);
  };
  return ids.map(resolve);
}

/** Exact storage of a candidate on a weight of `rows` outputs x `cols` reduction elements. */
export function candidateCost(
  c: SensitivityCandidate,
  rows: number,
  cols: number,
): { bits: number; bytes: number } {
  if (c.blockType) {
    const bt = getBlockType(c.blockType);
    const bytes = rows * Math.ceil(cols / bt.blockSize) * bt.bytesPerBlock;
    return { bits: 8 * bytes, bytes };
  }
  if (c.salient) {
    const s = salientStorage(c.quantizer, rows, cols, { fraction: c.salient.fraction });
    return { bits: s.bits, bytes: s.bytes };
  }
  const s = storageCost(c.quantizer, [rows, cols]);
  return { bits: s.bits, bytes: s.bytes };
}

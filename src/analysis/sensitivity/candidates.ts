/**
 * Candidate schemes for the sensitivity analysis and the allocator, as data: each candidate is a Scheme
 * (src/quant/scheme.ts) on the row frame [rows = output channels, cols = reduction] (quant/layout.ts):
 * per-channel = one scale per row (granularity axis 0), grouped = runs of g consecutive columns
 * (granularity group along axis 1). Storage is exact to the bit (schemeStorage: codes + scales + shared
 * scales + zero points, or a ggml block layout, or the dense part plus a CSR side matrix).
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
 * Identifiers (schemeId) are derived from the scheme, for printing and for `--candidates`; they are parsed
 * once, at the command line (parseCandidateIds), never looked up inside the pipeline. Format parts use the
 * canonical format names ('fp8_e4m3fn-pc-rtn'); the short names of earlier versions ('fp8_e4m3-pc-rtn')
 * are accepted as aliases.
 *
 * Salient-weight candidates (ids '<rtn id>-sp<percent>', e.g. 'int3-g32-rtn-sp1'): the RTN candidate on
 * the matrix with that percentage of its weights removed and kept in fp16 in a CSR side matrix
 * (src/quant/algorithms/outliers.ts salientSparse, criterion 'hessian' with H_jj = E[x_j^2]); storage is
 * the dense part plus the side matrix, exactly (salientStorage). '-spa<percent>' ranks by the
 * 'activation' criterion (|w| * rms(x)) instead. They need the layer's calibration statistics.
 *
 * Clipping-search candidates (ids '<int rtn | gptq id>-mse', e.g. 'int3-g32-rtn-mse', 'int2-g32-gptq-mse'):
 * each group's range minimises the squared rounding error over clipping ratios instead of taking the
 * min-max range (clipSearchScheme). They combine with salient weights: 'int3-g32-rtn-mse-sp1'.
 */
import { getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { getFormat } from '../../formats/index.ts';
import type { FormatSpec } from '../../formats/spec.ts';
import { salientStorage } from '../../quant/algorithms/outliers.ts';
import type { RowLayout } from '../../quant/layout.ts';
import type { ScaleRule } from '../../quant/qparams.ts';
import { storageCost } from '../../quant/quantizer.ts';
import type { ScaleFormat } from '../../quant/scale-format.ts';
import { quantizerOf, salientOf, type Scheme, type SchemeAlgorithm } from '../../quant/scheme.ts';

/** Per channel, or groups of this many columns. */
export type RowGranularity = 'pc' | number;

function rowGranularity(g: RowGranularity): Scheme['granularity'] {
  return g === 'pc' ? { kind: 'axis', axis: 0 } : { kind: 'group', axis: 1, size: g };
}

/**
 * An integer scheme on the row frame. 8 and 6 bit: symmetric signed (a zero point is not worth its bits);
 * <= 5 bit: asymmetric unsigned with a zero point, as GPTQ and ggml's Q4_1 / Q*_K do (a 4-bit symmetric
 * grid wastes a level). Scales fp32 per channel, fp16 per group.
 * @example intScheme(4, 32, 'gptq') // 'int4-g32-gptq'
 */
export function intScheme(bits: number, g: RowGranularity, algorithm: SchemeAlgorithm = 'rtn'): Scheme {
  const symmetric = bits >= 6;
  return {
    format: symmetric ? `int${bits}` : `uint${bits}`,
    granularity: rowGranularity(g),
    algorithm,
    scaleFormat: g === 'pc' ? 'fp32' : 'fp16',
    symmetric,
  };
}

/** A symmetric float / codebook scheme on the row frame. */
export function floatScheme(
  format: string,
  g: RowGranularity,
  scaleFormat: ScaleFormat,
  algorithm: SchemeAlgorithm = 'rtn',
): Scheme {
  return {
    format: getFormat(format).name,
    granularity: rowGranularity(g),
    algorithm,
    scaleFormat,
    symmetric: true,
  };
}

/** The named block-scaled float schemes. */
export const MXFP8_RTN = floatScheme('fp8_e4m3fn', 32, 'e8m0');
export const MXFP6_RTN = floatScheme('fp6_e3m2fn', 32, 'e8m0');
export const MXFP4_RTN = floatScheme('fp4_e2m1fn', 32, 'e8m0');
export const NVFP4_RTN = floatScheme('fp4_e2m1fn', 16, 'fp8_e4m3fn');

/** Every element-format x granularity scheme of the full set (RTN), in a stable order. */
function allSchemes(): Scheme[] {
  const out: Scheme[] = [];
  for (const bits of [8, 7, 6, 5, 4, 3, 2])
    for (const g of ['pc', 128, 32] as RowGranularity[]) out.push(intScheme(bits, g));
  for (const f of ['fp8_e4m3fn', 'fp8_e5m2', 'fp6_e3m2fn', 'fp6_e2m3fn', 'fp4_e2m1fn'])
    out.push(floatScheme(f, 'pc', 'fp32'));
  out.push(MXFP8_RTN, MXFP6_RTN, MXFP4_RTN, NVFP4_RTN, floatScheme('nf4', 64, 'fp16'));
  // 16-bit weights without a scale (a plain cast): where a sensitive layer is worth more than 8 bits
  out.push(floatScheme('fp16', 'pc', 'none'), floatScheme('bf16', 'pc', 'none'));
  return out;
}

/** Nominal element bits of a scheme (before scales), for sorting and display. */
export function elementBitsOf(s: Scheme): number {
  return elementBits(getFormat(s.format));
}

function elementBits(e: FormatSpec): number {
  if (e.kind === 'int') return e.bits;
  const n = e.name;
  if (n === 'fp16' || n === 'bf16') return 16;
  if (n.startsWith('fp8')) return 8;
  if (n.startsWith('fp6')) return 6;
  return 4;
}

/**
 * The full candidate set: every scheme with RTN; the grouped and per-channel INT2..INT8 and the 4-bit
 * float / NF4 schemes also with GPTQ and AWQ (they need X^T X of the layer; see applicable()).
 */
export function fullCandidates(): Scheme[] {
  const out: Scheme[] = [];
  for (const s of allSchemes()) {
    out.push(s);
    const e = getFormat(s.format);
    if (e.kind === 'int' || (elementBits(e) === 4 && s !== MXFP4_RTN))
      out.push({ ...s, algorithm: 'gptq' }, { ...s, algorithm: 'awq' });
  }
  return out;
}

/**
 * The default (fast) set, all RTN: one evaluation per candidate per weight, no GPTQ / AWQ cost; 12 schemes
 * spanning 2..8 bits, integer and float, per-channel and grouped. FP16 lets a budget above 8 bits per
 * weight go to the layers that need it (without it, the best plan at INT8's size is INT8 everywhere).
 */
export function defaultCandidates(): Scheme[] {
  return [
    intScheme(8, 'pc'),
    intScheme(6, 'pc'),
    intScheme(5, 32),
    intScheme(4, 'pc'),
    intScheme(4, 32),
    intScheme(3, 32),
    intScheme(2, 32),
    floatScheme('fp8_e4m3fn', 'pc', 'fp32'),
    MXFP4_RTN,
    NVFP4_RTN,
    floatScheme('nf4', 64, 'fp16'),
    floatScheme('fp16', 'pc', 'none'),
  ];
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

/**
 * A ggml block type as a scheme on the row frame: ggml's own quantizer with the calibration importance
 * matrix where known ('imatrix'). Format, granularity and symmetry describe it nominally (code width and
 * signedness: Q*_0, Q6_K, Q3_K and IQ4_NL are symmetric; Q*_1, Q4_K, Q5_K and Q2_K carry a minimum).
 */
export function ggmlScheme(type: string): Scheme {
  const bt = getBlockType(type);
  const bits = Number(/^I?Q(\d)/.exec(bt.name)?.[1] ?? 8);
  const signed = /_0$|^Q6_K$|^Q3_K$|^IQ4_NL$/.test(bt.name);
  return {
    format: `${signed ? 'int' : 'uint'}${bits}`,
    granularity: { kind: 'group', axis: 1, size: bt.blockSize },
    algorithm: 'imatrix',
    scaleFormat: 'fp16',
    symmetric: signed,
    blockType: bt.name,
  };
}

/** One candidate per ggml block type (ids 'ggml-q4_k', ...). */
export function ggmlCandidates(): Scheme[] {
  return GGML_CANDIDATE_TYPES.map(ggmlScheme);
}

/** A percentage as written in ids: shortest decimal, float noise of fraction * 100 removed (7, 0.5, 12.5). */
function percentText(fraction: number): string {
  return String(Number((fraction * 100).toPrecision(12)));
}

/** Whether a scheme is a plain RTN element-format scheme (no block type, outliers or range search). */
function plainRtn(s: Scheme): boolean {
  return s.algorithm === 'rtn' && s.blockType === undefined && s.outliers === undefined;
}

/**
 * The salient-weight variant of an RTN scheme: `fraction` of the weights (0 < fraction < 1) kept in fp16,
 * ranked by `criterion`. Id: base id + '-sp<percent>' ('hessian') or '-spa<percent>' ('activation').
 */
export function salientScheme(
  base: Scheme,
  fraction: number,
  criterion: 'hessian' | 'activation' = 'hessian',
): Scheme {
  if (!plainRtn(base))
    throw new MixqError(`salient weights are only offered on plain RTN candidates, not '${schemeId(base)}'`, {
      field: schemeId(base),
      expected: 'an RTN element-format candidate (no gptq / awq / ggml / salient)',
    });
  if (!(fraction > 0 && fraction < 1))
    throw new MixqError(`salient fraction ${fraction} of '${schemeId(base)}'`, {
      field: `${schemeId(base)}.salient.fraction`,
      expected: 'a number in (0, 1)',
    });
  return { ...base, outliers: { kind: 'salient', criterion, fraction } };
}

/** The clipping search of '-mse' candidates: GPTQ's grid over clipping ratios, least squared error. */
export const MSE_SCALE_RULE: ScaleRule = { kind: 'mse' };

/**
 * The clipping-search variant of an integer RTN or GPTQ scheme: each group's range is the clipping ratio
 * (1, 0.99, ... 0.2 of its min-max range) with the least squared error (qparams.ts 'mse', as GPTQ's `mse`
 * option) instead of the min-max range. Same storage; id: base id + '-mse'.
 */
export function clipSearchScheme(base: Scheme): Scheme {
  if (
    getFormat(base.format).kind !== 'int' ||
    (base.algorithm !== 'rtn' && base.algorithm !== 'gptq') ||
    base.blockType !== undefined ||
    base.outliers !== undefined ||
    (base.scaleRule !== undefined && base.scaleRule.kind !== 'minmax')
  )
    throw new MixqError(
      `the clipping search is only offered on integer RTN / GPTQ candidates, not '${schemeId(base)}'`,
      {
        field: schemeId(base),
        expected: 'an integer rtn or gptq candidate with the min-max rule (no ggml / salient)',
      },
    );
  return { ...base, scaleRule: MSE_SCALE_RULE };
}

/** Short names of the OCP MX element formats (blocks/mx.ts), as candidate names. */
const MX_NAMES: Readonly<Record<string, string>> = {
  fp8_e4m3fn: 'mxfp8',
  fp8_e5m2: 'mxfp8_e5m2',
  fp6_e3m2fn: 'mxfp6',
  fp6_e2m3fn: 'mxfp6_e2m3',
  fp4_e2m1fn: 'mxfp4',
};

/** Text of a scale format, for names. */
function scaleText(f: ScaleFormat): string {
  return typeof f === 'string' ? f : `double${f.subBits}x${f.superGroup}`;
}

/**
 * The scheme's name without its algorithm: 'int4-g32', 'int8-pc', 'mxfp4', 'nvfp4', 'nf4-g64',
 * 'fp8_e4m3fn-pc', 'fp16', 'q4_k'. A scale format other than the family's usual one is named
 * ('-s<format>'), so different schemes never share a name.
 */
export function schemeName(s: Scheme): string {
  if (s.blockType !== undefined) return s.blockType.toLowerCase();
  const e = getFormat(s.format);
  const g = s.granularity;
  const part = g.kind === 'group' ? `g${g.size}` : g.kind === 'axis' ? 'pc' : g.kind;
  const grouped = g.kind === 'group';
  let name: string;
  let usual: ScaleFormat;
  if (e.kind === 'int') {
    // the candidate set's convention: symmetric = signed codes, asymmetric = unsigned with a zero point
    const conventional = e.signed === s.symmetric && !e.narrow;
    name = `${conventional ? `int${e.bits}` : e.name}-${part}`;
    usual = grouped ? 'fp16' : 'fp32';
  } else if (s.scaleFormat === 'e8m0' && grouped && g.size === 32 && MX_NAMES[e.name]) {
    name = MX_NAMES[e.name]!;
    usual = 'e8m0';
  } else if (e.name === 'fp4_e2m1fn' && grouped && g.size === 16 && s.scaleFormat === 'fp8_e4m3fn') {
    name = 'nvfp4';
    usual = 'fp8_e4m3fn';
  } else if ((e.name === 'fp16' || e.name === 'bf16') && s.scaleFormat === 'none' && !grouped) {
    name = e.name;
    usual = 'none';
  } else {
    name = `${e.name}-${part}`;
    usual = grouped ? 'fp16' : 'fp32';
  }
  if (scaleText(s.scaleFormat) !== scaleText(usual)) name += `-s${scaleText(s.scaleFormat)}`;
  if (!s.symmetric && e.kind !== 'int') name += '-asym';
  return name;
}

/** A scale rule as an id suffix ('' for min-max). */
function ruleText(r: ScaleRule | undefined): string {
  if (!r || r.kind === 'minmax') return '';
  const params = Object.entries(r)
    .filter(([k]) => k !== 'kind')
    .map(([k, v]) => `${k}${String(v)}`);
  return `-${r.kind}${params.length ? `(${params.join(',')})` : ''}`;
}

/**
 * The candidate id of a scheme: name + algorithm (+ '-mse' for the clipping search, + '-sp<percent>' for
 * salient weights); ggml block types 'ggml-<type>'. Derived for printing; unique over the candidate sets.
 * @example schemeId(intScheme(4, 32, 'gptq')) // 'int4-g32-gptq'
 */
export function schemeId(s: Scheme): string {
  if (s.blockType !== undefined) return `ggml-${s.blockType.toLowerCase()}`;
  const sal = s.outliers?.kind === 'salient' ? salientOf(s) : undefined;
  const sp = sal ? `-sp${sal.criterion === 'activation' ? 'a' : ''}${percentText(sal.fraction)}` : '';
  return `${schemeName(s)}-${s.algorithm}${ruleText(s.scaleRule)}${sp}`;
}

/** Ids of earlier versions, before format parts used the canonical format names. */
const ID_ALIASES: Readonly<Record<string, string>> = {
  'fp8_e4m3-pc': 'fp8_e4m3fn-pc',
  'fp6_e3m2-pc': 'fp6_e3m2fn-pc',
  'fp6_e2m3-pc': 'fp6_e2m3fn-pc',
  'fp4_e2m1-pc': 'fp4_e2m1fn-pc',
};

const SALIENT_ID = /^(.+)-sp(a?)(\d+(?:\.\d+)?)$/;
const SALIENT_FORM =
  "'<rtn candidate id>-sp<percent>' (or '-spa<percent>' for the activation criterion), percent in (0, 100), e.g. 'int3-g32-rtn-sp1' or 'int4-g32-rtn-sp0.5'";

let known: Map<string, Scheme> | undefined;

/**
 * The schemes behind candidate ids (the command line's `--candidates`): the full set and the ggml set,
 * their '-mse' clipping-search and '-sp<percent>' salient variants, and the ids of earlier versions
 * (ID_ALIASES). Unknown or malformed ids throw a MixqError naming the id and the expected form.
 */
export function parseCandidateIds(ids: readonly string[], source = '--candidates'): Scheme[] {
  known ??= new Map([...fullCandidates(), ...ggmlCandidates()].map((s) => [schemeId(s), s] as const));
  const all = known;
  const canonical = (id: string): string => {
    for (const [old, now] of Object.entries(ID_ALIASES))
      if (id.startsWith(`${old}-`)) return now + id.slice(old.length);
    return id;
  };
  const resolve = (raw: string): Scheme => {
    const id = canonical(raw);
    const s = all.get(id);
    if (s) return s;
    if (id.endsWith('-mse')) {
      const base = all.get(id.slice(0, -4));
      if (base) return clipSearchScheme(base);
    }
    if (id.includes('-sp')) {
      const m = SALIENT_ID.exec(id);
      let base: Scheme | undefined;
      try {
        base = m ? resolve(m[1]!) : undefined;
      } catch {
        base = undefined;
      }
      const pct = m ? Number(m[3]) : NaN;
      if (!m || !base || !plainRtn(base) || !(pct > 0 && pct < 100))
        throw new MixqError(`malformed salient candidate id '${raw}'`, {
          source,
          field: raw,
          expected: SALIENT_FORM,
        });
      return salientScheme(base, pct / 100, m[2] === 'a' ? 'activation' : 'hessian');
    }
    throw new MixqError(`unknown candidate '${raw}'`, {
      source,
      field: raw,
      expected: 'an id such as int4-g32-rtn, int3-g32-gptq-mse, nvfp4-rtn or ggml-q4_k (docs/candidates.md)',
    });
  };
  return ids.map(resolve);
}

/** Exact storage of a row-frame scheme on a weight of `rows` outputs x `cols` reduction elements. */
export function schemeStorage(s: Scheme, rows: number, cols: number): { bits: number; bytes: number } {
  if (s.blockType !== undefined) {
    const bt = getBlockType(s.blockType);
    const bytes = rows * Math.ceil(cols / bt.blockSize) * bt.bytesPerBlock;
    return { bits: 8 * bytes, bytes };
  }
  const q = quantizerOf(s);
  const sal = salientOf(s);
  const c = sal ? salientStorage(q, rows, cols, { fraction: sal.fraction }) : storageCost(q, [rows, cols]);
  return { bits: c.bits, bytes: c.bytes };
}

/** schemeStorage on a weight's row layout. */
export function schemeCost(s: Scheme, L: RowLayout): { bits: number; bytes: number } {
  return schemeStorage(s, L.rows, L.cols);
}

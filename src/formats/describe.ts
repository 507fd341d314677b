/**
 * Human-readable descriptions of formats: the rows of `mixq formats`, `mixq formats show` and
 * docs/formats.md, computed from the registry so the three never disagree.
 */
import { type FormatInfo, formatBits, formatInfo, valueTable } from './codec.ts';
import { floatLayout } from './minifloat.ts';
import { ALIASES, FORMATS } from './registry.ts';
import type { FormatSpec } from './spec.ts';

/** Shortest exact-enough text for a limit: integers as is, powers of two as 2^k, else 6 digits. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  const e = Math.log2(Math.abs(v));
  if (Number.isInteger(e)) return `${v < 0 ? '-' : ''}2^${e}`;
  return Number(v.toPrecision(6)).toString();
}

/** One line of the format table. */
export interface FormatRow {
  readonly name: string;
  readonly kind: FormatSpec['kind'];
  readonly bits: number;
  readonly info: FormatInfo;
  /** 'inf+NaN', 'NaN', 'inf' or '-'. */
  readonly specials: string;
  /** What happens on overflow by default: 'inf', 'NaN' or 'saturate'. */
  readonly overflow: string;
  readonly aliases: readonly string[];
  readonly description: string;
}

export function describeFormat(spec: FormatSpec): FormatRow {
  const info = formatInfo(spec);
  const specials = info.hasInf && info.hasNan ? 'inf+NaN' : info.hasNan ? 'NaN' : info.hasInf ? 'inf' : '-';
  let overflow = 'saturate';
  if (spec.kind === 'float' && spec.overflow !== 'saturate') {
    overflow = spec.overflow === 'ieee' && info.hasInf ? 'inf' : info.hasNan ? 'NaN' : 'saturate';
  }
  return {
    name: spec.name,
    kind: spec.kind,
    bits: formatBits(spec),
    info,
    specials,
    overflow,
    aliases: Object.entries(ALIASES)
      .filter(([, target]) => target === spec.name)
      .map(([alias]) => alias),
    description: spec.description ?? '',
  };
}

/** Rows for every registered format, in registry order. */
export function formatTable(): FormatRow[] {
  return FORMATS.map(describeFormat);
}

/** Bit layout of a format as text, e.g. 'S EEEE MMM' (floats) or '8-bit two's complement'. */
export function bitLayout(spec: FormatSpec): string {
  if (spec.kind === 'float') {
    const L = floatLayout(spec);
    return [L.signed ? 'S' : '', 'E'.repeat(L.E), 'M'.repeat(L.M)].filter(Boolean).join(' ');
  }
  if (spec.kind === 'int')
    return spec.signed ? `${spec.bits}-bit two's complement` : `${spec.bits}-bit unsigned`;
  return `${spec.bits}-bit index into ${spec.values.length} values`;
}

/** Every code and its value (formats of <= 16 bits), for `mixq formats show`. */
export function codeListing(spec: FormatSpec): { code: number; value: number }[] {
  const t = valueTable(spec);
  return Array.from(t, (value, code) => ({ code, value }));
}

/** The formats every formats test runs over: the registry's small formats plus custom floats. */
import { FORMATS, type FormatSpec, formatBits, lutSpec, parseFormat } from '../../src/formats/index.ts';

export const CUSTOM: readonly FormatSpec[] = [
  parseFormat('e3m4'),
  parseFormat('e5m3'),
  parseFormat('ue5m3'),
  parseFormat('ue4m3', { nan: 'all-ones' }),
  parseFormat('e2m0'),
  parseFormat('e3m0'),
  parseFormat('e4m3', { subnormals: false }),
  parseFormat('e3m2', { bias: 2 }),
  parseFormat('fp8_e5m2', { saturate: true }),
  parseFormat('e4m3', { nan: 'ieee', inf: false }),
  parseFormat('int6_narrow'),
  lutSpec('skewed', [0.5, -2, 0, 1, -0.25, 3]),
];

/** Registered formats of <= 16 bits, plus CUSTOM. */
export const SMALL: readonly FormatSpec[] = [...FORMATS.filter((f) => formatBits(f) <= 16), ...CUSTOM];

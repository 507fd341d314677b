/**
 * `mixq chop --format <f> [--rounding <r>] [--seed N] [--random-bits r] [--bias N] [--no-inf]
 *  [--nan ieee|all-ones|none] [--no-subnormals] [--saturate] [--json] [--bits] <numbers...>`
 *
 * Rounds numbers to representable values of a format (registered, alias, or any custom eXmY / ueXmY) and
 * prints them, one per line. Numbers come from the arguments, or from standard input (one per line) when
 * none are given; each is a decimal, a float32 bit pattern written 0x + 8 hex digits or a float64 one
 * written 0x + 16 hex digits. Every input is read as a double and rounded to the format exactly once
 * (float64 chop, formats/round64.ts), so formats up to e11m52 / fp64 work and no float32 step rounds
 * first. `--json` prints a JSON array (NaN/inf as strings), `--bits` prints each result's bit pattern:
 * float32 (0x + 8 hex digits) for formats whose values are float32, else float64 (0x + 16). Negative
 * numbers may follow `--`.
 */
import { defineCommand } from 'citty';
import { f32ToBits } from '../../core/bits.ts';
import { MixqError } from '../../core/errors.ts';
import {
  type CastOptions,
  chop,
  type FloatOverrides,
  formatInfo,
  formatNumber,
  type NanEncoding,
  parseFormat,
  ROUNDINGS,
  type Rounding,
} from '../../formats/index.ts';
import { failCli, usageExitCode } from '../errors.ts';

const CMD = 'chop';

/** Options that take a value: their value must not be read as a number. */
const VALUE_FLAGS = new Set([
  '--format',
  '-f',
  '--rounding',
  '-r',
  '--seed',
  '--random-bits',
  '--bias',
  '--nan',
]);

/** Positional numbers from the raw argv (citty's parser would read "-1.5" as flags). */
function numberTokens(rawArgs: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === '--') {
      out.push(...rawArgs.slice(i + 1));
      break;
    }
    if (VALUE_FLAGS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('--') || (a.startsWith('-') && !/^-[0-9.]/.test(a) && !/^-(inf|nan)/i.test(a))) continue;
    out.push(a);
  }
  return out;
}

/** A decimal (also inf, -inf, nan), a float32 bit pattern 0x + 8 hex digits or a float64 one 0x + 16. */
export function parseNumber(token: string, where: string): number {
  const t = token.trim();
  if (/^0x[0-9a-f]{8}$/i.test(t)) {
    const f = new Float32Array(new Uint32Array([Number.parseInt(t.slice(2), 16)]).buffer);
    return f[0]!;
  }
  if (/^0x[0-9a-f]{16}$/i.test(t)) return new Float64Array(BigUint64Array.of(BigInt(t)).buffer)[0]!;
  const lower = t.toLowerCase();
  if (/^[+-]?(inf|infinity)$/.test(lower)) return lower.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/.test(lower)) return Number.NaN;
  const v = Number(t);
  if (t === '' || Number.isNaN(v))
    throw new MixqError(`cannot read '${token}' as a number`, {
      source: where,
      expected: 'a decimal, inf, nan, or 0x + 8 / 16 hex digits (float32 / float64 bits)',
    });
  return v;
}

function intArg(value: unknown, flag: string, lo: number, hi: number): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new MixqError(`${flag} ${String(value)}`, {
      source: `argument ${flag}`,
      expected: `an integer ${lo}..${hi}`,
    });
  return v;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export default defineCommand({
  meta: { name: 'chop', description: 'Round numbers to a format and print the results (Pychop-style chop)' },
  args: {
    format: {
      type: 'string',
      alias: 'f',
      description: 'format name, alias, or custom eXmY / ueXmY',
      required: true,
    },
    rounding: { type: 'string', alias: 'r', description: `rounding: ${ROUNDINGS.join(', ')}` },
    seed: { type: 'string', description: 'seed of the stochastic modes (default 0)' },
    'random-bits': {
      type: 'string',
      description: 'r-bit stochastic rounding (implies --rounding stochastic)',
    },
    bias: { type: 'string', description: 'exponent bias of the float format' },
    inf: { type: 'boolean', description: 'the format has inf (--no-inf: no inf)' },
    nan: { type: 'string', description: 'NaN encoding: ieee, all-ones, none' },
    subnormals: { type: 'boolean', description: 'the format has subnormals (--no-subnormals: none)' },
    saturate: { type: 'boolean', description: 'overflow saturates to max finite', default: false },
    json: { type: 'boolean', description: 'print a JSON array only', default: false },
    bits: {
      type: 'boolean',
      description:
        'print bit patterns (float32: 0x + 8 hex digits; formats wider than float32: float64, 0x + 16)',
      default: false,
    },
  },
  async run({ args, rawArgs }) {
    try {
      const nan = args.nan === undefined ? undefined : String(args.nan);
      if (nan !== undefined && !['ieee', 'all-ones', 'none'].includes(nan))
        throw new MixqError(`--nan ${nan}`, { source: 'argument --nan', expected: 'ieee, all-ones or none' });
      const overrides: FloatOverrides = {
        bias: intArg(args.bias, '--bias', -1000, 1000),
        inf: args.inf === false ? false : undefined,
        nan: nan as NanEncoding | undefined,
        subnormals: args.subnormals === false ? false : undefined,
        saturate: args.saturate ? true : undefined,
      };
      const spec = parseFormat(String(args.format), overrides);
      const randomBits = intArg(args['random-bits'], '--random-bits', 1, 32);
      const rounding = (args.rounding ?? (randomBits ? 'stochastic' : 'nearest-even')) as Rounding;
      if (!ROUNDINGS.includes(rounding))
        throw new MixqError(`unknown rounding '${rounding}'`, {
          source: 'argument --rounding',
          expected: ROUNDINGS.join(', '),
        });
      const opts: CastOptions = {
        rounding,
        seed: intArg(args.seed, '--seed', 0, 2 ** 32 - 1) ?? 0,
        randomBits,
      };
      let tokens = numberTokens(rawArgs);
      let where = 'argument';
      if (tokens.length === 0) {
        tokens = (await readStdin()).split(/\r?\n/).filter((l) => l.trim() !== '');
        where = 'stdin';
      }
      const src = Float64Array.from(tokens, (t, i) => parseNumber(t, `${where} ${i + 1}`));
      const out = chop(spec, src, opts);
      const float32 = formatInfo(spec).float32;
      if (args.json) {
        const vals = Array.from(out, (v) =>
          Number.isFinite(v) ? (Object.is(v, -0) ? -0 : v) : formatNumber(v),
        );
        process.stdout.write(`${JSON.stringify(vals)}\n`);
      } else if (args.bits) {
        process.stdout.write(Array.from(out, (v) => `${bitPattern(v, float32)}\n`).join(''));
      } else {
        process.stdout.write(
          Array.from(out, (v) => `${Object.is(v, -0) ? '-0' : formatPlain(v)}\n`).join(''),
        );
      }
    } catch (e) {
      failCli(CMD, e, usageExitCode(e));
    }
  },
});

function bitPattern(v: number, float32: boolean): string {
  if (float32) return `0x${f32ToBits(v).toString(16).padStart(8, '0')}`;
  return `0x${new BigUint64Array(Float64Array.of(v).buffer)[0]!.toString(16).padStart(16, '0')}`;
}

function formatPlain(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : String(v);
}

/**
 * The arithmetic context against the exact BigInt oracle (test/formats/oracle.ts, independent of the
 * code under test): add / sub / mul / div / fma / sqrt of doubles rounded ONCE to formats from FP8 to
 * binary64 in every mode, on operands that exercise each path of the implementation: results that are
 * doubles, exact TwoSum / TwoProduct pairs (compressed by round-to-odd), quotients and roots (residual
 * signs), three-term fmas and extreme exponents (exact BigInt fallback), and the double-rounding traps
 * (an exact result a hair off a tie of the format whose double rounding lands on the tie).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import {
  chop,
  type FloatSpec,
  intSpec,
  parseFormat,
  ROUNDINGS,
  type Rounding,
} from '../../src/formats/index.ts';
import { withPrecision } from '../../src/numerics/index.ts';
import { addT, divT, fmaT, mulT, sqrtT } from '../../src/numerics/target-ops.ts';
import { Target } from '../../src/numerics/target.ts';
import {
  addRat,
  divRat,
  mulRat,
  oracleRound,
  oracleRoundInt,
  ratOfDouble,
  residual32,
  type Real,
  sqrtRat,
} from '../formats/oracle.ts';

const FORMATS = ['fp16', 'bf16', 'fp8_e4m3fn', 'fp32', 'e8m40', 'e11m51', 'fp64', 'e5m30'].map(
  (n) => parseFormat(n) as FloatSpec,
);
const MODES: { rounding: Rounding; randomBits?: number }[] = [
  ...ROUNDINGS.map((rounding) => ({ rounding })),
  { rounding: 'stochastic', randomBits: 6 },
];

type Op = 'add' | 'sub' | 'mul' | 'div' | 'fma' | 'sqrt';

function exact(op: Op, a: number, b: number, c: number): Real | number {
  // specials and zeros: the result of binary64 (rounded by the context like any double)
  const r = (x: number) => ratOfDouble(x);
  if (![a, b, c].every(Number.isFinite)) return Number.NaN;
  switch (op) {
    case 'add':
      return addRat(r(a), r(b));
    case 'sub':
      return addRat(r(a), r(-b));
    case 'mul':
      return mulRat(r(a), r(b));
    case 'div':
      return b === 0 ? Number.NaN : divRat(r(a), r(b));
    case 'fma':
      return addRat(mulRat(r(a), r(b)), r(c));
    case 'sqrt':
      return a < 0 ? Number.NaN : sqrtRat(r(a));
  }
}

/** Operand triples that exercise every path (see the header), plus random ones. */
function operands(spec: FloatSpec, rng: Rng): [number, number, number][] {
  const M = spec.manBits;
  const out: [number, number, number][] = [];
  const tie = 1 + 2 ** -(M + 1); // an exact tie between 1 and 1 + 2^-M
  for (const k of [20, 40, 60, 75, 100, 130]) {
    const d = 2 ** -k;
    out.push([tie, d, d], [tie, -d, d], [1, d, -d], [-tie, d, 1], [3, d, 0.5]);
  }
  out.push(
    [1 + 2 ** -26, 1 + 2 ** -27, 2 ** -60], // a product of 54 bits: an exact pair; a three-term fma
    [1 + 2 ** -30, 1 - 2 ** -30, -1], // fma cancellation: -2^-60
    [1, 3, 0],
    [2, 3, 1],
    [1e-200, 1e-200, 1e-300], // underflowing product: the exact fallback
    [1e200, 1e200, -1e300], // overflowing product
    [1e308, 1e308, 1],
    [5e-324, 5e-324, 5e-324],
    [0.1, -0.1, 0.1],
    [1e-300, 1e300, 3],
    [2, 0, 7],
    [7e-310, 3, 1e-310],
    [65504, 65535.99, 1e-5],
    [448, 465, 1],
  );
  for (let i = 0; i < 40; i++) {
    // values of the format, and arbitrary doubles over a modest range
    const v = () => chop(spec, (rng.nextFloat() - 0.5) * 2 ** (rng.nextFloat() * 20 - 10));
    const d = () => (rng.nextFloat() - 0.5) * 2 ** (rng.nextFloat() * 60 - 30);
    out.push([v(), v(), v()], [d(), d(), d()]);
  }
  return out;
}

test('scalar operations round the exact result once, for formats from FP8 to binary64, every mode', () => {
  const rng = new Rng(2024);
  let checked = 0;
  for (const spec of FORMATS) {
    const cases = operands(spec, rng);
    for (const m of MODES) {
      const ctx = withPrecision({ format: spec, ...m, seed: 9 });
      const draws = new Rng(9);
      const stochastic = m.rounding.startsWith('stochastic');
      for (const [a, b, c] of cases) {
        for (const op of ['add', 'sub', 'mul', 'div', 'fma', 'sqrt'] as const) {
          if (op === 'sqrt' && (checked & 3) !== 0 && spec.manBits > 30) continue; // big isqrt: sample
          const x = op === 'sqrt' ? Math.abs(a) : a;
          const got = op === 'fma' ? ctx.fma(x, b, c) : op === 'sqrt' ? ctx.sqrt(x) : ctx[op](x, b);
          const u = stochastic ? draws.nextU32() : 0;
          const ex = exact(op, x, b, c);
          let want: number;
          if (typeof ex === 'number') {
            // inf / NaN operands, x / 0, sqrt(-x): the binary64 result, rounded like any double
            const d = op === 'fma' ? x * b + c : op === 'sqrt' ? Math.sqrt(x) : op === 'div' ? x / b : x + b;
            want = chop(spec, d, { ...m, rng: { nextU32: () => u } as Rng });
          } else if (ex.kind === 'rat' && ex.num === 0n) {
            assert.ok(got === 0, `${spec.name} ${op}(${x}, ${b}, ${c}): exact zero, got ${got}`);
            checked++;
            continue;
          } else {
            want = oracleRound(spec, ex, { ...m, u32: u });
          }
          assert.ok(
            Object.is(got, want),
            `${spec.name} ${m.rounding}${m.randomBits ? `/${m.randomBits}` : ''} ${op}(${x}, ${b}, ${c}): ${got}, oracle ${want}`,
          );
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 30_000, `${checked}`);
});

test('stochastic draws aimed at the threshold of exact results (the compression must not blur it)', () => {
  // every stochastic format width: fp16 (compressed), fp32 and e8m40 (exact fallback unless r-bit)
  for (const name of ['fp16', 'bf16', 'fp32', 'e8m40', 'fp64']) {
    const spec = parseFormat(name) as FloatSpec;
    for (const randomBits of [0, 4, 20]) {
      const t = new Target(spec, { rounding: 'stochastic', randomBits });
      const cases: [Op, number, number, number][] = [
        ['add', 1, 2 ** -40 + 2 ** -70, 0],
        ['add', 1 + 2 ** -30, -(2 ** -62), 0],
        ['mul', 1 + 2 ** -26, 1 + 2 ** -27 + 2 ** -50, 0],
        ['div', 1, 3, 0],
        ['div', 2, 7, 0],
        ['sqrt', 2, 0, 0],
        ['fma', 1 + 2 ** -30, 1 + 2 ** -31, 2 ** -90],
      ];
      for (const [op, a, b, c] of cases) {
        const ex = exact(op, a, b, c) as Real;
        const th = residual32(spec, ex);
        for (const u of [th - 1, th, th + 1]) {
          if (u < 0 || u >= 2 ** 32) continue;
          const got =
            op === 'add'
              ? addT(t, a, b, u)
              : op === 'mul'
                ? mulT(t, a, b, u)
                : op === 'div'
                  ? divT(t, a, b, u)
                  : op === 'sqrt'
                    ? sqrtT(t, a, u)
                    : fmaT(t, a, b, c, u);
          const want = oracleRound(spec, ex, { rounding: 'stochastic', u32: u, randomBits });
          assert.ok(
            Object.is(got, want),
            `${name} r=${randomBits} ${op}(${a}, ${b}, ${c}) u=${u}: ${got} vs ${want}`,
          );
        }
      }
    }
  }
});

test('integer contexts: exact result rounded once, then saturated', () => {
  const int8 = intSpec(8, true);
  for (const m of MODES) {
    const ctx = withPrecision({ format: int8, ...m, seed: 4 });
    const draws = new Rng(4);
    for (const [a, b] of [
      [7, 2],
      [-7, 2],
      [100, 3],
      [1, 3],
      [-2.5, 1],
      [127, 1.5],
      [-100, -3],
    ] as const) {
      const u = () => (m.rounding.startsWith('stochastic') ? draws.nextU32() : 0);
      const q = ctx.div(a, b);
      assert.equal(
        q,
        oracleRoundInt(int8, divRat(ratOfDouble(a), ratOfDouble(b)), { ...m, u32: u() }),
        `div ${a} ${b} ${m.rounding}`,
      );
      const p = ctx.mul(a, b);
      assert.equal(p, oracleRoundInt(int8, a * b, { ...m, u32: u() }), `mul ${a} ${b}`);
    }
  }
});

test('bad options are one MixqError naming the field', () => {
  assert.throws(() => withPrecision({ format: 'fp99' }), /withPrecision: format: unknown format 'fp99'/);
  assert.throws(
    () => withPrecision({ format: 'fp16', rounding: 'upp' as Rounding }),
    /rounding: unknown rounding/,
  );
  assert.throws(() => withPrecision({ format: 'nf4' }), /codebook format nf4/);
  assert.throws(
    () => withPrecision({ format: 'fp8', accumulator: { format: 'int32' } }),
    /integer accumulator/,
  );
  assert.throws(() => withPrecision({ format: 'int8', accumulator: { format: 'int99' } }), /int2 .. int53/);
  assert.throws(() => withPrecision({ format: 'fp16' }).dot([1, 2], [1]), /operand lengths 2 and 1/);
});

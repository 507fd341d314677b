// Quantizer properties (fast-check) and hand-checked cases: element grids, granularity, scale rules,
// scale storage, idempotence, sign symmetry, error monotone in bits, storage formula == packed bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Rng } from '../../src/core/rng.ts';
import { MixqError } from '../../src/core/errors.ts';
import { chop, getFormat, intSpec } from '../../src/formats/index.ts';
import type { FormatSpec } from '../../src/formats/spec.ts';
import { elementGrid, roundToGrid, type TableGrid } from '../../src/quant/element.ts';
import { type Granularity, groupLayout } from '../../src/quant/granularity.ts';
import {
  chooseQParams,
  fakeQuantValue,
  paramsFromRange,
  type QuantizerConfig,
  quantizerGrid,
} from '../../src/quant/qparams.ts';
import {
  dequantize,
  fakeQuant,
  fakeQuantWith,
  packQuantized,
  quantize,
  storageCost,
  unpackQuantized,
} from '../../src/quant/quantizer.ts';
import { loadScales, type ScaleFormat, storeScales } from '../../src/quant/scale-format.ts';

function normals(seed: number, n: number, sd = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.nextNormal() * sd);
}
function sse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

const SCALE_FORMATS: ScaleFormat[] = [
  'fp32',
  'fp16',
  'bf16',
  'e8m0',
  'fp8_e4m3fn',
  { kind: 'double', subBits: 6, superGroup: 8 },
];
const ELEMENTS: FormatSpec[] = [
  intSpec(2, true),
  intSpec(3, false),
  intSpec(4, true),
  intSpec(4, false),
  intSpec(8, true, true),
  getFormat('fp4_e2m1fn'),
  getFormat('fp8_e4m3fn'),
  getFormat('fp6_e3m2fn'),
  getFormat('nf4'),
];

// --- element grids ---------------------------------------------------------------------------------------

test('fp4_e2m1fn grid: values and round-to-nearest-even ties, saturation', () => {
  const g = elementGrid(getFormat('fp4_e2m1fn')) as TableGrid;
  assert.deepEqual(Array.from(g.values), [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  const cases: [number, number][] = [
    [0.25, 0],
    [0.75, 1],
    [1.25, 1],
    [1.75, 2],
    [2.5, 2],
    [3.5, 4],
    [5, 4],
    [-5, -4],
    [-2.5, -2],
    [7, 6],
    [100, 6],
    [-100, -6],
  ];
  for (const [x, want] of cases) assert.equal(roundToGrid(g, x), want, `round(${x})`);
});

test('table rounding equals brute-force nearest (ties to even code) for every signed minifloat tested', () => {
  for (const name of ['fp4_e2m1fn', 'fp6_e2m3fn', 'fp8_e4m3fn', 'fp8_e5m2']) {
    const g = elementGrid(getFormat(name)) as TableGrid;
    const r = new Rng(7);
    for (let t = 0; t < 3000; t++) {
      // mix random points and exact midpoints between neighbours
      const k = r.nextU32() % (g.values.length - 1);
      const x = t % 2 ? (g.values[k]! + g.values[k + 1]!) / 2 : (r.nextFloat() * 2 - 1) * g.qmax * 1.1;
      let best = 0;
      for (let i = 1; i < g.values.length; i++) {
        const d = Math.abs(g.values[i]! - x);
        const db = Math.abs(g.values[best]! - x);
        if (d < db || (d === db && (g.codes[i]! & 1) === 0)) best = i;
      }
      assert.equal(roundToGrid(g, x), g.values[best], `${name} x=${x}`);
    }
  }
});

test('table rounding agrees with the formats library chop (nearest-even, saturating) - differential', () => {
  for (const name of ['fp4_e2m1fn', 'fp6_e3m2fn', 'fp6_e2m3fn', 'fp8_e4m3fn', 'fp8_e5m2']) {
    const spec = getFormat(name);
    const g = elementGrid(spec) as TableGrid;
    const r = new Rng(9);
    const x = Float32Array.from({ length: 4000 }, (_, i) =>
      i % 3 === 0
        ? g.values[r.nextU32() % g.values.length]! * (1 + 2 ** -4)
        : (r.nextFloat() * 2 - 1) * g.qmax * 0.999,
    );
    const want = chop(spec, x, { rounding: 'nearest-even', overflow: 'saturate' });
    for (let i = 0; i < x.length; i++) {
      const got = roundToGrid(g, x[i]!);
      assert.ok(got === want[i], `${name} x=${x[i]}: ${got} vs chop ${want[i]}`);
    }
  }
});

test('int grids: ranges of signed, unsigned and narrow integers', () => {
  const r = (s: FormatSpec) => {
    const g = elementGrid(s);
    return [g.qmin, g.qmax];
  };
  assert.deepEqual(r(intSpec(4, true)), [-8, 7]);
  assert.deepEqual(r(intSpec(4, false)), [0, 15]);
  assert.deepEqual(r(intSpec(8, true, true)), [-127, 127]);
  const g = elementGrid(intSpec(4, true));
  assert.equal(roundToGrid(g, 2.5), 2);
  assert.equal(roundToGrid(g, 3.5), 4);
  assert.equal(roundToGrid(g, -2.5), -2);
  assert.equal(roundToGrid(g, 9), 7);
});

// --- granularity -----------------------------------------------------------------------------------------

test('group layouts: axis, group (ragged), block, tensor', () => {
  assert.deepEqual(Array.from(groupLayout([2, 3], { kind: 'axis', axis: 0 }).index), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(groupLayout([2, 3], { kind: 'axis', axis: 1 }).index), [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(
    Array.from(groupLayout([2, 5], { kind: 'group', axis: 1, size: 2 }).index),
    [0, 0, 1, 1, 2, 3, 3, 4, 4, 5],
  );
  assert.deepEqual(
    Array.from(groupLayout([4, 2], { kind: 'group', axis: 0, size: 2 }).index),
    [0, 2, 0, 2, 1, 3, 1, 3],
  );
  assert.deepEqual(
    Array.from(groupLayout([3, 4], { kind: 'block', rows: 2, cols: 2 }).index),
    [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3],
  );
  assert.deepEqual(Array.from(groupLayout([2, 2], { kind: 'tensor' }).sizes), [4]);
  assert.throws(
    () => groupLayout([2, 5], { kind: 'group', axis: 1, size: 2, ragged: 'refuse' }),
    (e: unknown) => e instanceof MixqError && /multiple of the group size/.test(e.message),
  );
  assert.throws(() => groupLayout([2, 5], { kind: 'axis', axis: 2 }), MixqError);
});

// --- scale rules and storage -----------------------------------------------------------------------------

test('scale storage: stored scales are representable and e8m0 never rounds down', () => {
  const raw = Float64Array.from(normals(3, 64), (v) => Math.abs(v) * 0.01 + 1e-4);
  for (const f of SCALE_FORMATS) {
    const st = storeScales(f, raw);
    const back = loadScales(f, st.codes, st.shared);
    assert.deepEqual(back, st.scale, `round trip ${JSON.stringify(f)}`);
    for (let i = 0; i < raw.length; i++) {
      const rel = Math.abs(st.scale[i]! / raw[i]! - 1);
      if (f === 'e8m0') {
        assert.ok(st.scale[i]! >= Math.fround(raw[i]!) && rel < 1, 'e8m0 rounds up within a factor 2');
        assert.ok(Number.isInteger(Math.log2(st.scale[i]!)));
      } else if (f === 'fp16') assert.ok(rel <= 2 ** -11);
      else if (f === 'bf16') assert.ok(rel <= 2 ** -8);
    }
  }
});

test('minmax vs percentile 100 agree; mse and float-max searches never lose to minmax', () => {
  const x = normals(11, 8 * 64);
  x[5] = 9; // an outlier the searches should clip
  const base: QuantizerConfig = {
    element: intSpec(4, true),
    granularity: { kind: 'axis', axis: 0 },
    symmetric: true,
  };
  const mm = chooseQParams(x, [8, 64], base);
  const p100 = chooseQParams(x, [8, 64], { ...base, scaleRule: { kind: 'percentile', p: 100 } });
  assert.deepEqual(p100.scale, mm.scale);
  const eMinmax = sse(x, fakeQuantWith(x, mm));
  for (const rule of [
    { kind: 'mse' } as const,
    { kind: 'float-max' } as const,
    { kind: 'percentile', p: 99 } as const,
  ]) {
    const e = sse(x, fakeQuant(x, [8, 64], { ...base, scaleRule: rule }));
    if (rule.kind !== 'percentile') assert.ok(e <= eMinmax + 1e-9, `${rule.kind}: ${e} vs ${eMinmax}`);
  }
  // LLM-FP4 style: fp4 element, exponent-bias (power-of-two scale) search
  const fp4: QuantizerConfig = {
    element: getFormat('fp4_e2m1fn'),
    granularity: { kind: 'group', axis: 1, size: 32 },
    symmetric: true,
    scaleRule: { kind: 'float-max', powerOfTwo: true },
  };
  const p = chooseQParams(x, [8, 64], fp4);
  for (const s of p.scale) assert.ok(Number.isInteger(Math.log2(s)), `scale ${s} is a power of two`);
  const eMax = sse(x, fakeQuant(x, [8, 64], { ...fp4, scaleRule: { kind: 'float-max' } }));
  assert.ok(eMax <= sse(x, fakeQuant(x, [8, 64], { ...fp4, scaleRule: { kind: 'minmax' } })) + 1e-9);
});

test('bits per weight by hand: int4 g32 fp16 asym = 4.625, K-quant style double scales = 4.375', () => {
  const q: QuantizerConfig = {
    element: intSpec(4, false),
    granularity: { kind: 'group', axis: 1, size: 32 },
    symmetric: false,
    scaleFormat: 'fp16',
  };
  assert.equal(storageCost(q, [16, 256]).bitsPerWeight, 4 + (16 + 4) / 32);
  assert.equal(
    storageCost({ ...q, scaleFormat: { kind: 'double', subBits: 6, superGroup: 8 } }, [16, 256])
      .bitsPerWeight,
    4 + (6 + 4) / 32 + 16 / 256,
  );
  // nvfp4-like: fp4 elements, 16-groups, e4m3 scales + one fp32 global
  const nv: QuantizerConfig = {
    element: getFormat('fp4_e2m1fn'),
    granularity: { kind: 'group', axis: 1, size: 16 },
    symmetric: true,
    scaleFormat: 'fp8_e4m3fn',
  };
  assert.equal(storageCost(nv, [4, 64]).bits, 4 * 64 * 4 + 16 * 8 + 32);
});

// --- properties ------------------------------------------------------------------------------------------

const granArb: fc.Arbitrary<Granularity> = fc.oneof(
  fc.constant<Granularity>({ kind: 'tensor' }),
  fc.constantFrom<Granularity>(
    { kind: 'axis', axis: 0 },
    { kind: 'axis', axis: 1 },
    { kind: 'axis', axis: -1 },
  ),
  fc.constantFrom(16, 32, 64, 7).map<Granularity>((size) => ({ kind: 'group', axis: 1, size })),
  fc
    .record({ rows: fc.integer({ min: 1, max: 5 }), cols: fc.integer({ min: 1, max: 9 }) })
    .map<Granularity>((b) => ({
      kind: 'block',
      ...b,
    })),
);
const cfgArb = fc.record({
  element: fc.constantFrom(...ELEMENTS),
  granularity: granArb,
  symmetric: fc.boolean(),
  scaleFormat: fc.constantFrom(...SCALE_FORMATS),
  scaleRule: fc.constantFrom<QuantizerConfig['scaleRule']>(
    { kind: 'minmax' },
    { kind: 'mse', grid: 10 },
    { kind: 'percentile', p: 99 },
  ),
});
const caseArb = fc.record({
  cfg: cfgArb,
  rows: fc.integer({ min: 1, max: 6 }),
  cols: fc.integer({ min: 1, max: 70 }),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  sd: fc.constantFrom(1, 1e-3, 50, 1e-30),
});

test('property: storage formula == packed bytes, and unpack(pack(q)) dequantizes identically', () => {
  fc.assert(
    fc.property(caseArb, ({ cfg, rows, cols, seed, sd }) => {
      const x = normals(seed, rows * cols, sd);
      const q = quantize(x, chooseQParams(x, [rows, cols], cfg));
      const bytes = packQuantized(q);
      const cost = storageCost(cfg, [rows, cols]);
      assert.equal(bytes.length, cost.bytes);
      assert.ok(cost.bits <= cost.bytes * 8 && cost.bytes * 8 - cost.bits < 32);
      const back = unpackQuantized(bytes, cfg, [rows, cols]);
      assert.deepEqual(back.codes, q.codes);
      assert.deepEqual(dequantize(back), dequantize(q));
    }),
    { numRuns: 150, seed: 4 },
  );
});

test('property: quantizing a quantized tensor with the same parameters changes nothing; dequantize == fakeQuant', () => {
  fc.assert(
    fc.property(caseArb, ({ cfg, rows, cols, seed, sd }) => {
      const x = normals(seed, rows * cols, sd);
      const p = chooseQParams(x, [rows, cols], cfg);
      const y = fakeQuantWith(x, p);
      assert.deepEqual(dequantize(quantize(x, p)), y);
      assert.deepEqual(fakeQuantWith(y, p), y);
    }),
    { numRuns: 150, seed: 5 },
  );
});

test('property: symmetric quantizers on sign-symmetric grids are odd functions', () => {
  const symElems = ELEMENTS.filter((e) => e.kind === 'float' || (e.kind === 'int' && e.signed));
  fc.assert(
    fc.property(caseArb, fc.constantFrom(...symElems), ({ cfg, rows, cols, seed, sd }, element) => {
      const c = { ...cfg, element, symmetric: true };
      const x = normals(seed, rows * cols, sd);
      const neg = x.map((v) => -v);
      const a = fakeQuant(x, [rows, cols], c);
      const b = fakeQuant(neg, [rows, cols], c);
      for (let i = 0; i < a.length; i++) assert.ok(a[i] === -b[i]!, `i=${i}: ${a[i]} vs ${b[i]}`);
    }),
    { numRuns: 150, seed: 6 },
  );
});

test('property: error is monotone in bits (int 2..8, per-group and per-row, sym and asym)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.boolean(),
      fc.boolean(),
      fc.constantFrom<Granularity>({ kind: 'axis', axis: 0 }, { kind: 'group', axis: 1, size: 32 }),
      (seed, symmetric, signed, granularity) => {
        const x = normals(seed, 4 * 256);
        let prev = Infinity;
        for (let b = 2; b <= 8; b++) {
          const e = sse(x, fakeQuant(x, [4, 256], { element: intSpec(b, signed), granularity, symmetric }));
          assert.ok(e < prev, `bits ${b}: ${e} !< ${prev}`);
          prev = e;
        }
      },
    ),
    { numRuns: 40, seed: 7 },
  );
});

test('stochastic rounding: only the two neighbours, unbiased per element, reproducible by seed', () => {
  const x = normals(21, 4 * 64);
  for (const element of [intSpec(4, true), getFormat('fp4_e2m1fn')]) {
    const cfg: QuantizerConfig = { element, granularity: { kind: 'axis', axis: 0 }, symmetric: true };
    const p = chooseQParams(x, [4, 64], cfg);
    const grid = p.grid;
    const gridVals =
      grid.kind === 'int'
        ? Array.from({ length: grid.qmax - grid.qmin + 1 }, (_, k) => grid.qmin + k)
        : Array.from(grid.values);
    const runs = 400;
    const sum = new Float64Array(x.length);
    for (let seed = 0; seed < runs; seed++) {
      const y = fakeQuantWith(x, { ...p, config: { ...cfg, rounding: 'stochastic', seed } });
      for (let i = 0; i < x.length; i++) {
        const s = p.scale[p.layout.index[i]!]!;
        const v = x[i]! / s;
        const lo = Math.max(...gridVals.filter((g) => g <= v));
        const hi = Math.min(...gridVals.filter((g) => g >= v));
        const gy = y[i]! / s;
        assert.ok(Math.abs(gy - lo) < 1e-6 || Math.abs(gy - hi) < 1e-6, `${element.name} ${v} -> ${gy}`);
        sum[i]! += gy;
      }
    }
    for (let i = 0; i < x.length; i++) {
      const s = p.scale[p.layout.index[i]!]!;
      const v = x[i]! / s;
      const lo = Math.max(...gridVals.filter((g) => g <= v));
      const hi = Math.min(...gridVals.filter((g) => g >= v));
      // the mean of 400 draws is within 5 standard deviations of v (nearest rounding is off by up to gap/2)
      assert.ok(Math.abs(sum[i]! / runs - v) <= 0.125 * (hi - lo) + 1e-9, `${element.name} element ${i}`);
    }
    const a = fakeQuantWith(x, { ...p, config: { ...cfg, rounding: 'stochastic', seed: 5 } });
    const b = dequantize(quantize(x, { ...p, config: { ...cfg, rounding: 'stochastic', seed: 5 } }));
    assert.deepEqual(a, b);
  }
});

test('LLM-FP4 format search: E/M splits of 4 bits, picks the smallest error', async () => {
  const { minifloatCandidates, searchElementFormat } = await import('../../src/quant/format-search.ts');
  const cands = minifloatCandidates(4);
  assert.deepEqual(
    cands.map((c) => c.name),
    ['e1m2', 'e2m1', 'e3m0'],
  );
  assert.deepEqual(
    Array.from((elementGrid(cands[1]!) as TableGrid).values),
    Array.from((elementGrid(getFormat('fp4_e2m1fn')) as TableGrid).values),
  );
  const x = normals(5, 8 * 128);
  const base = {
    granularity: { kind: 'group', axis: 1, size: 32 },
    symmetric: true,
    scaleRule: { kind: 'float-max' },
  } as const;
  const r = searchElementFormat(x, [8, 128], base, cands);
  const min = Math.min(...r.errors.map((e) => e.error));
  assert.equal(r.errors.find((e) => e.name === r.element.name)!.error, min);
  for (const c of cands)
    assert.equal(
      r.errors.find((e) => e.name === c.name)!.error,
      sse(x, fakeQuant(x, [8, 128], { ...base, element: c })),
    );
});

test("mse search equals a plain reference search (GPTQ's grid, element by element, importance weights)", () => {
  // reference: every clipping ratio 1, 0.99, ..., 0.2 of the group's min-max range, each error summed in
  // full from fakeQuantValue; the kept range is the first with the least error (as the library promises)
  const rows = 6;
  const cols = 64;
  const gs = 32;
  const x = normals(23, rows * cols);
  x[3] = 7;
  x[100] = -5;
  const imp = Float32Array.from({ length: rows * cols }, (_, i) => 0.1 + ((i * 7919) % 13) / 5);
  const fr = Math.fround;
  for (const [bits, symmetric] of [
    [2, false],
    [3, false],
    [4, true],
    [4, false],
    [8, true],
  ] as const) {
    const cfg: QuantizerConfig = {
      element: intSpec(bits, symmetric),
      granularity: { kind: 'group', axis: 1, size: gs },
      symmetric,
      scaleRule: { kind: 'mse' },
      scaleFormat: 'fp16',
    };
    for (const weights of [undefined, imp]) {
      const p = chooseQParams(x, [rows, cols], cfg, weights ? { weights } : {});
      const grid = quantizerGrid(cfg);
      const f16 = (s: number) => storeScales('fp16', Float64Array.of(s)).scale[0]!;
      for (let r = 0; r < rows; r++)
        for (let g = 0; g < cols / gs; g++) {
          const at = (k: number) => r * cols + g * gs + k;
          let lo = 0;
          let hi = 0;
          for (let k = 0; k < gs; k++) {
            lo = Math.min(lo, x[at(k)]!);
            hi = Math.max(hi, x[at(k)]!);
          }
          let best = Infinity;
          let want = { scale: 0, zero: 0 };
          for (let i = 0; 1 - i / 100 >= 0.2 - 1e-12; i++) {
            const q = paramsFromRange(grid, symmetric, lo * (1 - i / 100), hi * (1 - i / 100), (s) =>
              fr(f16(s)),
            );
            let e = 0;
            for (let k = 0; k < gs; k++) {
              const v = x[at(k)]!;
              e +=
                (weights ? weights[at(k)]! : 1) *
                (v - fakeQuantValue(grid, q.scale, q.zero, q.offset, v)) ** 2;
            }
            if (e < best) {
              best = e;
              want = q;
            }
          }
          const j = r * (cols / gs) + g;
          assert.equal(p.scale[j], want.scale, `int${bits} sym=${symmetric} w=${!!weights} group ${j} scale`);
          assert.equal(p.zero[j], want.zero, `int${bits} sym=${symmetric} w=${!!weights} group ${j} zero`);
        }
    }
  }
});

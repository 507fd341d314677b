/**
 * Dot products under accumulation plans: the definitions (accumulate.ts header) replayed step by step with
 * the exact oracle, the fast kernel against the reference bit for bit, integer accumulators saturating /
 * wrapping, matvec / matmul against their dot products, and the DFP int16 FMA.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { chop, type FloatSpec, getFormat, parseFormat } from '../../src/formats/index.ts';
import { dotReference } from '../../src/numerics/accumulate.ts';
import { dotFast, fastPlan } from '../../src/numerics/kernels.ts';
import { dfpDequantize, dfpDot, dfpMatmul, dfpQuantize, withPrecision } from '../../src/numerics/index.ts';
import { addRat, mulRat, oracleRound, ratOfDouble } from '../formats/oracle.ts';

function randomVec(rng: Rng, n: number, spread: number): Float64Array {
  return Float64Array.from(
    { length: n },
    () => (rng.nextFloat() - 0.5) * 2 ** (rng.nextFloat() * spread - spread / 2),
  );
}

/** round_A(acc + x*y), exact product, by the oracle. */
function fmaOracle(spec: FloatSpec, acc: number, x: number, y: number): number {
  return oracleRound(spec, addRat(ratOfDouble(acc), mulRat(ratOfDouble(x), ratOfDouble(y))), {
    rounding: 'nearest-even',
  });
}
function addOracle(spec: FloatSpec, a: number, b: number): number {
  return oracleRound(spec, addRat(ratOfDouble(a), ratOfDouble(b)), { rounding: 'nearest-even' });
}

test('sequential, pairwise and blocked accumulation follow their definitions (oracle replay)', () => {
  const rng = new Rng(1);
  const fp8 = getFormat('fp8_e4m3fn') as FloatSpec;
  const acc = parseFormat('e8m13') as FloatSpec; // a ~14-bit accumulator (DeepSeek-V3 on H800)
  const fp32 = getFormat('fp32') as FloatSpec;
  const fp16 = getFormat('fp16') as FloatSpec;
  for (let trial = 0; trial < 20; trial++) {
    const n = 1 + Math.floor(rng.nextFloat() * 300);
    const x = Float64Array.from(randomVec(rng, n, 12), (v) => chop(fp8, v));
    const y = Float64Array.from(randomVec(rng, n, 12), (v) => chop(fp8, v));
    // sequential, exact products, e8m13 accumulator, output fp16
    const seq = withPrecision({ format: fp8, accumulator: { format: acc, output: 'fp16' } }).dot(x, y);
    let a = 0;
    for (let i = 0; i < n; i++) a = fmaOracle(acc, a, x[i]!, y[i]!);
    assert.ok(Object.is(seq, chop(fp16, a)), `sequential n=${n}`);
    // blocked: 32 products per block in e8m13, block sums promoted into fp32
    const blk = withPrecision({
      format: fp8,
      accumulator: { format: acc, blockSize: 32, outer: 'fp32' },
    }).dot(x, y);
    let total = 0;
    for (let b = 0; b < n; b += 32) {
      let part = 0;
      for (let i = b; i < Math.min(n, b + 32); i++) part = fmaOracle(acc, part, x[i]!, y[i]!);
      total = addOracle(fp32, total, part);
    }
    assert.ok(Object.is(blk, total), `blocked n=${n}: ${blk} vs ${total}`);
    // pairwise with products rounded to fp8 first, sums in fp16
    const pw = withPrecision({
      format: fp8,
      accumulator: { format: 'fp16', products: 'rounded', order: 'pairwise' },
    }).dot(x, y);
    const tree = (lo: number, hi: number): number => {
      if (hi - lo === 1) return chop(fp16, chop(fp8, x[lo]! * y[lo]!));
      const mid = lo + ((hi - lo) >> 1);
      return addOracle(fp16, tree(lo, mid), tree(mid, hi));
    };
    assert.ok(Object.is(pw, tree(0, n)), `pairwise n=${n}`);
  }
});

test('the fast kernel equals the reference bit for bit, on plans it takes', () => {
  const rng = new Rng(2);
  const plans = [
    { format: 'fp16', accumulator: { format: 'fp16' } },
    { format: 'fp16', fused: false },
    { format: 'bf16', accumulator: { format: 'fp32' } },
    { format: 'fp8_e4m3fn', accumulator: { format: 'e8m13', blockSize: 128, outer: 'fp32', output: 'bf16' } },
    { format: 'fp8_e5m2', accumulator: { format: 'fp16', products: 'rounded' as const } },
    { format: 'int8', accumulator: { format: 'int32' } },
    { format: 'int8', accumulator: { format: 'int16', overflow: 'wrap' as const } },
    { format: 'int8', accumulator: { format: 'int16', blockSize: 4, outer: 'int32' } },
  ];
  for (const p of plans) {
    const ctx = withPrecision(p as Parameters<typeof withPrecision>[0]);
    assert.ok(fastPlan(ctx.plan), `${JSON.stringify(p)} takes the fast kernel`);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + Math.floor(rng.nextFloat() * 400);
      const spread = p.format === 'int8' ? 0 : 24; // wide exponent spread: inexact sums, overflow, subnormals
      const x = ctx.roundArray(
        p.format === 'int8' ? randomVec(rng, n, 0).map((v) => v * 300) : randomVec(rng, n, spread),
      );
      const y = ctx.roundArray(
        p.format === 'int8' ? randomVec(rng, n, 0).map((v) => v * 300) : randomVec(rng, n, spread),
      );
      const r1 = new Rng(3);
      const r2 = new Rng(3);
      const fast = dotFast(ctx.plan, x, 0, y, 0, n, r1);
      const ref = dotReference(ctx.plan, x, 0, 1, y, 0, 1, n, r2);
      assert.ok(Object.is(fast, ref), `${JSON.stringify(p)} n=${n}: fast ${fast} reference ${ref}`);
    }
  }
});

test('int8 x int8 -> int32 is exact; narrower integer accumulators saturate or wrap', () => {
  const x = new Float64Array(8).fill(127);
  const y = new Float64Array(8).fill(127);
  assert.equal(withPrecision({ format: 'int8', accumulator: { format: 'int32' } }).dot(x, y), 8 * 127 * 127);
  assert.equal(withPrecision({ format: 'int8', accumulator: { format: 'int16' } }).dot(x, y), 32767);
  const wrapped = withPrecision({ format: 'int8', accumulator: { format: 'int16', overflow: 'wrap' } }).dot(
    x,
    y,
  );
  assert.equal(wrapped, ((8 * 127 * 127 + 32768) % 65536) - 32768);
  // operands are rounded (saturated) to int8 first, as the hardware loads them
  assert.equal(
    withPrecision({ format: 'int8', accumulator: { format: 'int32' } }).dot([300, -2.5], [1, 1]),
    127 - 2,
  );
});

test('matvec and matmul are dot products of rows and columns; fused axpy; norm', () => {
  const rng = new Rng(4);
  const [m, k, n] = [7, 33, 5];
  const A = randomVec(rng, m * k, 8);
  const B = randomVec(rng, k * n, 8);
  const opts = { format: 'bf16', accumulator: { format: 'fp32', output: 'bf16' } } as const;
  const C = withPrecision(opts).matmul(A, B, m, k, n);
  const ctx = withPrecision(opts);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      const row = A.subarray(i * k, (i + 1) * k);
      const col = Float64Array.from({ length: k }, (_, t) => B[t * n + j]!);
      assert.ok(Object.is(C[i * n + j], ctx.dot(row, col)));
    }
  const x = randomVec(rng, k, 8);
  const y = withPrecision(opts).matvec(A, x, m, k);
  for (let i = 0; i < m; i++) assert.ok(Object.is(y[i], ctx.dot(A.subarray(i * k, (i + 1) * k), x)));
  const fp16 = withPrecision({ format: 'fp16' });
  const ax = fp16.axpy(3, [1 + 2 ** -10], [2 ** -12]);
  assert.equal(ax[0], chop(getFormat('fp16'), chop(getFormat('fp16'), 3 * (1 + 2 ** -10)) + 2 ** -12));
  const fused = withPrecision({ format: 'fp16', fused: true }).axpy(3, [1 + 2 ** -10], [2 ** -12]);
  assert.equal(fused[0], chop(getFormat('fp16'), 3 * (1 + 2 ** -10) + 2 ** -12));
  assert.equal(withPrecision({ format: 'fp16' }).norm([3, 4]), 5);
  assert.equal(withPrecision({ format: 'fp16' }).norm([300, 400]), Infinity); // 300^2 overflows fp16
});

test('DFP-16: shared exponent, exact int16 FMA in int32 chunks, fp32 chunk sums, overflow counted', () => {
  const rng = new Rng(5);
  const x = randomVec(rng, 256, 6);
  const t = dfpQuantize(x);
  const amax = Math.max(...x.map(Math.abs));
  assert.ok(
    amax / 2 ** t.exponent <= 32767 && amax / 2 ** (t.exponent - 1) > 32767,
    'the largest value uses the range',
  );
  const back = dfpDequantize(t);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i]! - x[i]!) <= 2 ** (t.exponent - 1));
  // chunk 1: every product is exact in int32, each converted to fp32 (exact: |I_a I_b| < 2^30... rounded
  // to 24 bits) and summed in fp32; compare with the same computed by the oracle
  const y = dfpQuantize(randomVec(rng, 256, 6));
  const fp32 = getFormat('fp32') as FloatSpec;
  for (const chunk of [1, 2, 64]) {
    const r = dfpDot(t, y, { chunk });
    let total = 0;
    for (let c = 0; c < 256; c += chunk) {
      let acc = 0;
      for (let i = c; i < Math.min(256, c + chunk); i++) acc += t.mantissas[i]! * y.mantissas[i]!;
      const clamped = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, acc));
      total = addOracle(fp32, total, chop(fp32, chop(fp32, clamped) * 2 ** (t.exponent + y.exponent)));
    }
    assert.ok(Object.is(r.value, total), `chunk ${chunk}: ${r.value} vs ${total}`);
  }
  // all-max operands: 3 products of 32767^2 overflow int32 within one chunk
  const big = dfpQuantize(new Float64Array(6).fill(32767 / 32768)); // mantissas 32767: products ~2^30
  assert.equal(big.exponent, -15);
  assert.equal(dfpDot(big, big, { chunk: 2 }).overflows, 0);
  // one chunk of 6: the 3rd..6th partial sums pass 2^31 - 1 and saturate there (scale 2^-30)
  const sat = dfpDot(big, big, { chunk: 6 });
  assert.equal(sat.overflows, 4, 'saturations');
  assert.equal(sat.value, 2, 'int32 max -> fp32 2^31, times 2^-30');
  // wrapping instead: the true sum 6 * 32767^2 modulo 2^32 (two's complement)
  const wrapped = dfpDot(big, big, { chunk: 6, overflow: 'wrap' });
  const mod = 6 * 32767 ** 2 - 2 ** 32;
  assert.equal(wrapped.value, chop(getFormat('fp32'), mod) * 2 ** -30, 'wrap-around');
  const mm = dfpMatmul(dfpQuantize([1, 2, 3, 4]), dfpQuantize([1, 0, 0, 1]), 2, 2, 2);
  assert.deepEqual([...mm.values], [1, 2, 3, 4]);
});

/**
 * Attention in WebAssembly (native/kernels/attention.h) against its TypeScript reference (src/engine/ops.ts
 * `attention`: float64 sums), in SIMD128 and relaxed SIMD:
 *
 * - the softmax's exp is Math.fround(Math.exp(x)) bit for bit on a million float32 inputs spread over
 *   [-110, 0] and on the special values (0, -0, +-inf, NaN, subnormal and overflowing results);
 * - SwiGLU (which uses the same exp in float64) is ops.ts `swiglu` bit for bit on a million gates spread
 *   over every float32 magnitude of either sign, and the special values;
 * - prefill and decode on odd head dimensions (1, 7, 37), GQA ratios 1, 2, 3, 8, positions 0 and past the
 *   first 64-position block of the cache, are within the rounding bound stated below of the reference;
 * - 2 and 3 threads (heads split) give the single-threaded result bit for bit.
 *
 * Tolerance, per output value d of a row and head (u = 2^-24, n keys, h = head dimension): a score is a
 * float32 dot product (error <= gamma_h sum|q k| times the scale) rounded twice (2u|s|), call the largest
 * such error ds; softmax weights then move by at most w_j (e^(2 ds) - 1) relative, and the float32 sum of
 * n weighted values adds gamma_(n+1) sum w_j |v_j|. Bound: ((e^(2 ds) - 1) + gamma_(n+2)) sum_j w_j |v_jd|.
 * Wrong exp, wrong head mapping or a lost key moves outputs by far more (the bound is ~1e-5 relative).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hasWasmRelaxedSimd } from '../../src/core/wasm.ts';
import { attention, swiglu } from '../../src/engine/ops.ts';
import { KernelKvStore } from '../../src/kernels/attention.ts';
import { kernelExp, kernelSwiglu } from '../../src/kernels/elementwise.ts';
import { createKernels, type KernelContext } from '../../src/kernels/context.ts';
import type { KernelVariant } from '../../src/kernels/module.ts';
import { createKernelPool } from '../../src/kernels/pool.node.ts';

const CHILD = process.env.MIXQ_KERNEL_TEST_CHILD === '1';
const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);

/** Deterministic values in [-a, a). */
function values(n: number, seed: number, a = 2): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 2 * a;
  }
  return out;
}

interface Case {
  heads: number;
  kvHeads: number;
  hd: number;
  pos0: number;
  rows: number;
}
const CASES: Case[] = [
  { heads: 4, kvHeads: 4, hd: 64, pos0: 0, rows: 1 },
  { heads: 8, kvHeads: 2, hd: 37, pos0: 0, rows: 5 },
  { heads: 6, kvHeads: 2, hd: 7, pos0: 70, rows: 1 },
  { heads: 8, kvHeads: 1, hd: 16, pos0: 130, rows: 3 },
  { heads: 3, kvHeads: 1, hd: 1, pos0: 9, rows: 2 },
  { heads: 32, kvHeads: 4, hd: 64, pos0: 200, rows: 1 },
  { heads: 8, kvHeads: 2, hd: 20, pos0: 300, rows: 2 }, // enough keys for threads to split the heads
];

/** Fills a store with keys / values of positions 0 .. pos0 + rows - 1 for layer 1 and runs the kernel. */
function runCase(
  ctx: KernelContext,
  c: Case,
  seed: number,
): { out: Float32Array; store: KernelKvStore; q: Float32Array } {
  const n = c.pos0 + c.rows;
  const w = c.kvHeads * c.hd;
  const store = new KernelKvStore(ctx, 2, c.kvHeads, c.hd, 1024);
  // two steps, as an engine fills it: the past positions, then the new rows (growth keeps the past)
  store.reserve(Math.max(1, c.pos0), 0);
  const k = values(n * w, seed, 1.5);
  const v = values(n * w, seed + 1, 3);
  if (c.pos0) store.write(1, 0, k.subarray(0, c.pos0 * w), v.subarray(0, c.pos0 * w));
  store.reserve(n, c.pos0);
  store.write(1, c.pos0, k.subarray(c.pos0 * w), v.subarray(c.pos0 * w));
  const q = values(c.rows * c.heads * c.hd, seed + 2, 1.5);
  const out = new Float32Array(q.length);
  store.attend(1, q, c.rows, c.pos0, c.heads, out);
  return { out, store, q };
}

function checkAgainstReference(
  c: Case,
  store: KernelKvStore,
  q: Float32Array,
  out: Float32Array,
  label: string,
): number {
  const want = new Float32Array(q.length);
  const kv = store.views(1);
  attention(q, kv, c.rows, c.pos0, c.heads, c.kvHeads, c.hd, want, new Float64Array(c.pos0 + c.rows));
  const w = c.kvHeads * c.hd;
  const scale = Math.fround(1 / Math.sqrt(c.hd));
  let worst = 0;
  for (let r = 0; r < c.rows; r++) {
    const n = c.pos0 + r + 1;
    for (let h = 0; h < c.heads; h++) {
      const qo = (r * c.heads + h) * c.hd;
      const g = Math.floor(h / (c.heads / c.kvHeads)) * c.hd;
      // exact scores and weights (float64), and the score error bound
      const s = new Float64Array(n);
      let ds = 0;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let dot = 0;
        let abs = 0;
        for (let d = 0; d < c.hd; d++) {
          const p = q[qo + d]! * kv.k[j * w + g + d]!;
          dot += p;
          abs += Math.abs(p);
        }
        s[j] = dot * scale;
        ds = Math.max(ds, gamma(c.hd) * abs * scale + 2 * U * Math.abs(s[j]!));
        max = Math.max(max, s[j]!);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += s[j] = Math.exp(s[j]! - max);
      const rel = Math.expm1(2 * ds) + gamma(n + 2);
      for (let d = 0; d < c.hd; d++) {
        let mag = 0;
        for (let j = 0; j < n; j++) mag += (s[j]! / sum) * Math.abs(kv.v[j * w + g + d]!);
        const err = Math.abs(out[qo + d]! - want[qo + d]!);
        const bound = rel * mag + 1e-30;
        worst = Math.max(worst, err / bound);
        assert.ok(
          err <= bound,
          `${label}: row ${r} head ${h} dim ${d}: kernel ${out[qo + d]} vs reference ${want[qo + d]} (|diff| ${err} > bound ${bound})`,
        );
      }
    }
  }
  return worst;
}

function variantsToTest(): KernelVariant[] {
  return hasWasmRelaxedSimd() ? ['simd128', 'relaxed'] : ['simd128'];
}

if (!hasWasmRelaxedSimd() && !CHILD) {
  test('attention tests (child node with --experimental-wasm-relaxed-simd: SIMD128 and relaxed)', () => {
    const file = fileURLToPath(import.meta.url);
    const env: Record<string, string | undefined> = { ...process.env, MIXQ_KERNEL_TEST_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', '--import', 'tsx', '--test-reporter=spec', file],
      { env, encoding: 'utf8', timeout: 120_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, out.slice(-6000));
    assert.match(out, /relaxed/, 'the child ran the relaxed-SIMD variant');
  });
} else {
  for (const variant of variantsToTest()) {
    test(`attention exp (${variant}): Math.fround(Math.exp(x)) bit for bit`, async () => {
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const bits = new Uint32Array(1);
      const f = new Float32Array(bits.buffer);
      const xs: number[] = [
        0,
        -0,
        -Infinity,
        Infinity,
        NaN,
        88.72,
        88.73,
        89,
        -87.3,
        -103.27,
        -103.28,
        -104,
        -1e-30,
        -1e-45,
      ];
      // every 1117th float32 from -0 to -110 (about a million)
      bits[0] = 0xc2dc0000; // -110
      const end = bits[0];
      for (let b = 0x80000000; b <= end; b += 1117) {
        bits[0] = b;
        xs.push(f[0]!);
      }
      const x = Float32Array.from(xs);
      const got = kernelExp(k, x);
      let bad = 0;
      let first = '';
      for (let i = 0; i < x.length; i++) {
        const want = Math.fround(Math.exp(x[i]!));
        if (!Object.is(got[i], want)) {
          bad++;
          first ||= `exp(${x[i]}) = ${got[i]}, want ${want}`;
        }
      }
      assert.equal(bad, 0, `${bad} of ${x.length} differ; first ${first}`);
    });

    test(`swiglu (${variant}): ops.ts swiglu bit for bit`, async () => {
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const bits = new Uint32Array(1);
      const f = new Float32Array(bits.buffer);
      const gs: number[] = [
        0,
        -0,
        Infinity,
        -Infinity,
        NaN,
        88,
        -88,
        100,
        -100,
        104,
        -104,
        710,
        -710,
        1e30,
        -1e30,
      ];
      for (let b = 0; b < 0x7f800000; b += 4111) {
        bits[0] = b;
        gs.push(f[0]!, -f[0]!);
      }
      const g = Float32Array.from(gs);
      const up = Float32Array.from(gs, (_, i) => ((i * 2654435761) % 2001) / 500 - 2);
      const want = new Float32Array(g.length);
      swiglu(g, up, want);
      const got = new Float32Array(g.length);
      kernelSwiglu(k, g, up, got);
      let bad = 0;
      let first = '';
      for (let i = 0; i < g.length; i++)
        if (!Object.is(got[i], want[i])) {
          bad++;
          first ||= `swiglu(${g[i]}, ${up[i]}) = ${got[i]}, want ${want[i]}`;
        }
      assert.equal(bad, 0, `${bad} of ${g.length} differ; first ${first}`);
    });

    test(`attention (${variant}): prefill and decode within the rounding bound of the reference`, async () => {
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      CASES.forEach((c, i) => {
        const { out, store, q } = runCase(k, c, 11 + 7 * i);
        checkAgainstReference(c, store, q, out, `${variant} ${JSON.stringify(c)}`);
        store.release();
      });
      // bad input: a one-line error naming the field
      const s = new KernelKvStore(k, 1, 2, 8, 16);
      s.reserve(4, 0);
      assert.throws(() => s.attend(0, new Float32Array(24), 1, 0, 3, new Float32Array(24)), /heads/);
      assert.throws(() => s.attend(0, new Float32Array(32), 1, 16, 4, new Float32Array(32)), /positions/);
      assert.throws(() => s.reserve(17, 0), /at most 16/);
      s.release();
      assert.throws(() => s.views(0), /after release/);
    });
  }

  test('attention: 2 and 3 threads (heads split) give the 1-thread result bit for bit', async () => {
    const one = await createKernels();
    const pools = [await createKernelPool({ threads: 2 }), await createKernelPool({ threads: 3 })];
    try {
      for (const c of CASES) {
        const a = runCase(one, c, 5);
        for (const p of pools) {
          const b = runCase(p, c, 5);
          assert.ok(
            b.out.every((v, i) => Object.is(v, a.out[i])),
            `${JSON.stringify(c)} on ${p.threads} threads differs from 1 thread`,
          );
          b.store.release();
        }
        a.store.release();
      }
    } finally {
      for (const p of pools) await p.close();
    }
  });
}

/**
 * Quantization benchmarks: RTN throughput (library fakeQuant vs a hand-specialised naive loop for the same
 * quantizer, measured in the same run) and GPTQ wall time on 1024 x 1024 with 512 calibration rows
 * (stages: Hessian, GPTQ incl. Cholesky, and the ratio to RTN on the same matrix). The 4096 x 4096 layer
 * takes minutes in plain JS, so it runs only with MIXQ_BENCH_GPTQ_4096=1.
 * For the BLAS comparison see scripts/dev/gptq_torch_time.py (PyTorch, not part of CI).
 */
import { Rng } from '../src/core/rng.ts';
import { intSpec } from '../src/formats/index.ts';
import { gptq, gptqHessian } from '../src/quant/algorithms/gptq.ts';
import type { QuantizerConfig } from '../src/quant/qparams.ts';
import { fakeQuant } from '../src/quant/quantizer.ts';
import { printTable, timeBest } from './util.ts';

/** Naive baseline: asymmetric uint4, groups of 128 along rows, fp32 scales, written out by hand. */
function naiveRtn(x: Float32Array, rows: number, cols: number, gs: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++)
    for (let g0 = 0; g0 < cols; g0 += gs) {
      const base = r * cols + g0;
      let lo = 0;
      let hi = 0;
      for (let j = 0; j < gs; j++) {
        lo = Math.min(lo, x[base + j]!);
        hi = Math.max(hi, x[base + j]!);
      }
      if (lo === 0 && hi === 0) {
        lo = -1;
        hi = 1;
      }
      const s = Math.fround((hi - lo) / 15);
      const z = Math.round(-lo / s);
      for (let j = 0; j < gs; j++) {
        const q = Math.min(15, Math.max(0, Math.round(x[base + j]! / s) + z));
        out[base + j] = s * (q - z);
      }
    }
}

function randomLayer(N: number, n: number, seed: number) {
  const r = new Rng(seed);
  const W = Float32Array.from({ length: N * N }, () => 0.05 * r.nextNormal());
  const X = Float32Array.from({ length: n * N }, () => r.nextNormal());
  return { W, X };
}

export default async function (): Promise<void> {
  const N = 1024;
  const { W, X } = randomLayer(N, 512, 1);
  const q: QuantizerConfig = {
    element: intSpec(4, false),
    granularity: { kind: 'group', axis: 1, size: 128 },
    symmetric: false,
  };
  const out = new Float32Array(W.length);
  const tLib = timeBest(() => fakeQuant(W, [N, N], q));
  const tNaive = timeBest(() => naiveRtn(W, N, N, 128, out));
  const mw = (t: number) => ((N * N) / t / 1e3).toFixed(1);
  console.log('RTN uint4 asym g128, 1024 x 1024 (M weights/s):');
  printTable(
    ['impl', 'ms', 'M weights/s', 'vs naive'],
    [
      ['naive hand loop (baseline)', tNaive.toFixed(1), mw(tNaive), '1.00'],
      ['mixq fakeQuant', tLib.toFixed(1), mw(tLib), (tNaive / tLib).toFixed(2)],
    ],
  );

  const sizes = process.env.MIXQ_BENCH_GPTQ_4096 === '1' ? [1024, 4096] : [1024];
  const rows: string[][] = [];
  for (const size of sizes) {
    const L = size === N ? { W, X } : randomLayer(size, 512, 2);
    let t0 = performance.now();
    const H = gptqHessian(L.X, 512, size);
    const tH = performance.now() - t0;
    t0 = performance.now();
    gptq(L.W, size, size, H, {
      element: intSpec(4, false),
      symmetric: false,
      groupSize: 128,
      actOrder: true,
    });
    const tG = performance.now() - t0;
    t0 = performance.now();
    fakeQuant(L.W, [size, size], q);
    const tR = performance.now() - t0;
    rows.push([`${size} x ${size}`, tH.toFixed(0), tG.toFixed(0), tR.toFixed(0), (tG / tR).toFixed(0)]);
  }
  console.log('\nGPTQ uint4 asym g128 act-order, 512 calibration rows (single run each):');
  printTable(['layer', 'H = 2/n XtX ms', 'GPTQ ms', 'RTN ms (baseline)', 'GPTQ / RTN'], rows);
  if (sizes.length === 1) console.log('(4096 x 4096 skipped: set MIXQ_BENCH_GPTQ_4096=1; takes minutes)');
}

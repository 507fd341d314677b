/**
 * Quantization benchmarks.
 *
 * 1. RTN throughput: library fakeQuant vs a hand-specialised naive loop for the same quantizer.
 * 2. GPTQ uint4 asym g128 act-order with 512 calibration rows on 1024 x 1024 and 4096 x 4096, split into the
 *    Hessian (2/n X^T X) and GPTQ (factorization + blocks), on one thread (the inline engine) and on two (a
 *    worker pool), against the original GPTQ in PyTorch (scripts/dev/gptq_torch_time.py, the same torch
 *    operations as IST-DASLab/gptq; it reproduces the golden Q bit for bit) measured in the same run with the
 *    same thread count. Each side runs every size once to warm up (JIT, allocator, page faults) and is timed
 *    on the second run.
 * 3. One Llama-2-7B decoder layer (q, k, v, o 4096 x 4096; gate, up 11008 x 4096; down 4096 x 11008; one
 *    Hessian per distinct input) on one and on two threads against PyTorch on as many threads, and the
 *    32-layer extrapolation.
 *
 * The peer runs when /usr/bin/python3 has torch (Debian python3-torch). Which BLAS torch uses is up to the
 * dynamic linker: set MIXQ_PEER_OPENBLAS to a directory holding OpenBLAS' libblas.so.3 / liblapack.so.3 (e.g.
 * Debian's libopenblas0-pthread unpacked with dpkg -x: <dir>/usr/lib/x86_64-linux-gnu/openblas-pthread);
 * the table names the BLAS it found. Without the peer, GPTQ 1024 is compared with mixq's own float64
 * reference (gptqReference). Environment: MIXQ_BENCH_GPTQ_LAYER=0 skips the decoder layer, =1 or =2 runs
 * it on that many threads only (default both).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { Rng } from '../src/core/rng.ts';
import { intSpec } from '../src/formats/index.ts';
import {
  type GptqConfig,
  gptq,
  gptqHessian,
  gptqReference,
  prepareGptq,
} from '../src/quant/algorithms/gptq.ts';
import type { MatrixEngine } from '../src/quant/matrix/engine.ts';
import { inlineEngine } from '../src/quant/matrix/engine.ts';
import type { QuantizerConfig } from '../src/quant/qparams.ts';
import { fakeQuant } from '../src/quant/quantizer.ts';
import { createMatrixPool } from '../src/runtime/matrix-pool.node.ts';
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

const SAMPLES = 512;
const CFG: GptqConfig = { element: intSpec(4, false), symmetric: false, groupSize: 128, actOrder: true };
const loadavg = () => (existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').trim() : 'n/a');

function randomMatrix(rows: number, cols: number, std: number, r: Rng): Float32Array {
  return Float32Array.from({ length: rows * cols }, () => std * r.nextNormal());
}

/** CPU seconds of the process (all threads). */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

interface Timing {
  hessian: number;
  gptq: number;
  hessianCpu: number;
  gptqCpu: number;
}

/** Wall and CPU seconds of one Hessian + GPTQ on the engine (the second of two runs). */
function timeMixq(N: number, engine: MatrixEngine): Timing {
  const r = new Rng(N);
  const W = randomMatrix(N, N, 0.05, r);
  const X = randomMatrix(SAMPLES, N, 1, r);
  let out: Timing = { hessian: 0, gptq: 0, hessianCpu: 0, gptqCpu: 0 };
  for (let rep = 0; rep < 2; rep++) {
    const [t0, c0] = [performance.now(), cpuSeconds()];
    const H = gptqHessian(X, SAMPLES, N, engine);
    const [t1, c1] = [performance.now(), cpuSeconds()];
    gptq(W, N, N, H, { ...CFG, engine });
    const [t2, c2] = [performance.now(), cpuSeconds()];
    out = { hessian: (t1 - t0) / 1e3, gptq: (t2 - t1) / 1e3, hessianCpu: c1 - c0, gptqCpu: c2 - c1 };
  }
  return out;
}

/** One Llama-2-7B decoder layer on the engine: seconds for the Hessians and for GPTQ of the 7 matrices. */
function timeMixqLayer(engine: MatrixEngine): { hessian: number; gptq: number } {
  const r = new Rng(7);
  const d = 4096;
  const f = 11008;
  const inputs = { attn: d, o: d, mlp: d, down: f } as const;
  const mats = [
    ['q', 'attn', d],
    ['k', 'attn', d],
    ['v', 'attn', d],
    ['o', 'o', d],
    ['gate', 'mlp', f],
    ['up', 'mlp', f],
    ['down', 'down', d],
  ] as const;
  const X = Object.fromEntries(Object.entries(inputs).map(([k, c]) => [k, randomMatrix(SAMPLES, c, 1, r)]));
  const W = new Map(mats.map(([name, i, rows]) => [name, randomMatrix(rows, inputs[i], 0.02, r)]));
  const t0 = performance.now();
  const H = Object.fromEntries(
    Object.entries(inputs).map(([k, c]) => [k, gptqHessian(X[k]!, SAMPLES, c, engine)]),
  );
  const t1 = performance.now();
  for (const [inp, cols] of Object.entries(inputs)) {
    const users = mats.filter(([, i]) => i === inp);
    // inputs shared by several matrices are factored once
    const h = users.length > 1 ? prepareGptq(H[inp]!, cols, { actOrder: true, engine }) : H[inp]!;
    delete H[inp];
    for (const [name, , rows] of users) gptq(W.get(name)!, rows, cols, h, { ...CFG, engine });
  }
  const t2 = performance.now();
  return { hessian: (t1 - t0) / 1e3, gptq: (t2 - t1) / 1e3 };
}

interface PeerLine {
  kind: 'square' | 'layer';
  rows?: number;
  hessian_s: number;
  gptq_s: number;
  hessian_cpu_s?: number;
  gptq_cpu_s?: number;
  torch: string;
  blas: string;
  threads: number;
}

const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('../scripts/dev/gptq_torch_time.py', import.meta.url).pathname;

function peerAvailable(): boolean {
  if (!existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

function runPeer(args: string[], threads: number): PeerLine[] {
  const lib = process.env.MIXQ_PEER_OPENBLAS;
  const env = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    ...(lib ? { LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') } : {}),
  };
  const res = spawnSync(PYTHON, [SCRIPT, ...args, '--threads', String(threads)], { env, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`peer failed: ${res.stderr}`);
  return res.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as PeerLine);
}

const s = (x: number) => x.toFixed(x < 1 ? 3 : 2);
const ratio = (peer: number, mine: number) => `${(peer / mine).toFixed(2)}x`;

/** Thread counts of the decoder-layer rows: MIXQ_BENCH_GPTQ_LAYER = '0' (none), '1', '2' or '1,2' (default). */
function layerThreads(): number[] {
  const v = process.env.MIXQ_BENCH_GPTQ_LAYER ?? '1,2';
  if (v === '0') return [];
  return v
    .split(',')
    .map(Number)
    .filter((t) => t === 1 || t === 2);
}

/** One Llama-2-7B decoder layer on `threads` threads, mixq and the peer with the same thread count. */
function benchLayer(threads: number, engine: MatrixEngine, peer: boolean): void {
  console.log(
    `\nLlama-2-7B decoder layer (q k v o 4096x4096, gate up 11008x4096, down 4096x11008), GPTQ 4-bit g128, 512 rows, ${threads} thread${threads > 1 ? 's' : ''}; load before: ${loadavg()}`,
  );
  const pl = peer ? runPeer(['layer'], threads)[0] : undefined;
  const mine = timeMixqLayer(engine);
  const lrows: string[][] = [];
  for (const [step, a, b] of [
    ['Hessians (4 inputs)', pl?.hessian_s, mine.hessian],
    ['GPTQ (7 matrices)', pl?.gptq_s, mine.gptq],
    ['layer', pl ? pl.hessian_s + pl.gptq_s : undefined, mine.hessian + mine.gptq],
  ] as const)
    lrows.push([step, a === undefined ? '-' : s(a), s(b), a === undefined ? '-' : ratio(a, b)]);
  printTable(['step', 'peer s', 'mixq s', 'mixq speed vs peer'], lrows);
  const total = mine.hessian + mine.gptq;
  const peerTotal = pl ? pl.hessian_s + pl.gptq_s : undefined;
  console.log(
    `32 layers (a 7B model), ${threads} thread${threads > 1 ? 's' : ''}: mixq ${((32 * total) / 60).toFixed(1)} min` +
      (peerTotal ? `, peer ${((32 * peerTotal) / 60).toFixed(1)} min` : '') +
      ' (calibration forward passes not included); mixq factors each distinct H once and shares it, the peer factors per matrix as the original does',
  );
  console.log(`load after: ${loadavg()}`);
}

export default async function (): Promise<void> {
  const N = 1024;
  const r = new Rng(1);
  const W = randomMatrix(N, N, 0.05, r);
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

  const peer = peerAvailable();
  const pool = await createMatrixPool({ threads: 2 });
  try {
    console.log(`\nGPTQ uint4 asym g128 act-order, ${SAMPLES} calibration rows; load before: ${loadavg()}`);
    console.log(
      `machine: ${cpus()[0]?.model ?? '?'}, ${availableParallelism()} threads; mixq: WebAssembly SIMD128 kernels, 1 thread = inline engine, 2 = worker pool`,
    );
    const rows: string[][] = [];
    let peerName = 'peer not available (needs /usr/bin/python3 with torch)';
    for (const threads of [1, 2]) {
      const engine = threads === 1 ? inlineEngine() : pool;
      timeMixq(256, engine); // JIT and WebAssembly tier-up before anything is timed
      const lines = peer ? runPeer(['square', '1024', '4096'], threads) : [];
      if (lines[0])
        peerName = `PyTorch ${lines[0].torch} + ${lines[0].blas === 'openblas' ? 'OpenBLAS' : `${lines[0].blas} BLAS`}`;
      for (const size of [1024, 4096]) {
        const mine = timeMixq(size, engine);
        const p = lines.find((l) => l.rows === size);
        const pc = p?.hessian_cpu_s !== undefined ? [p.hessian_cpu_s, p.gptq_cpu_s!] : undefined;
        for (const [step, a, b, ac, bc] of [
          ['Hessian', p?.hessian_s, mine.hessian, pc?.[0], mine.hessianCpu],
          ['GPTQ', p?.gptq_s, mine.gptq, pc?.[1], mine.gptqCpu],
          [
            'total',
            p ? p.hessian_s + p.gptq_s : undefined,
            mine.hessian + mine.gptq,
            pc ? pc[0]! + pc[1]! : undefined,
            mine.hessianCpu + mine.gptqCpu,
          ],
        ] as const)
          rows.push([
            `${size}x${size}`,
            String(threads),
            step,
            a === undefined ? '-' : s(a),
            s(b),
            a === undefined ? '-' : ratio(a, b),
            ac === undefined ? '-' : ratio(ac, bc),
          ]);
      }
    }
    console.log(
      `peer: ${peerName}, the original GPTQ's torch operations (scripts/dev/gptq_torch_time.py), same run`,
    );
    printTable(
      ['layer', 'threads', 'step', 'peer s', 'mixq s', 'mixq speed vs peer', 'CPU-time ratio'],
      rows,
    );
    console.log(
      '(speed = peer wall s / mixq wall s; CPU-time ratio = peer / mixq CPU seconds of all threads, a cross-check on a busy machine)',
    );
    if (!peer) {
      const rr = new Rng(3);
      const Wr = randomMatrix(N, N, 0.05, rr);
      const H = gptqHessian(randomMatrix(SAMPLES, N, 1, rr), SAMPLES, N);
      const t0 = performance.now();
      gptqReference(Wr, N, N, H, CFG);
      const t1 = performance.now();
      gptq(Wr, N, N, H, CFG);
      const t2 = performance.now();
      console.log(
        `baseline without the peer: mixq's float64 reference GPTQ 1024: ${s((t1 - t0) / 1e3)} s, fast ${s((t2 - t1) / 1e3)} s (${ratio(t1 - t0, t2 - t1)})`,
      );
    }
    console.log(`load after: ${loadavg()}`);

    for (const threads of layerThreads()) benchLayer(threads, threads === 1 ? inlineEngine() : pool, peer);
  } finally {
    await pool.close();
  }
}

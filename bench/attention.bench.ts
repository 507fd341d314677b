/**
 * Attention of a decode token and of a prefill, 1B-llama shape (22 layers, 32 query heads, 4 key / value
 * heads, head dimension 64), at contexts 16, 128, 512 and 2048 (and SwiGLU of a token, 22 x 5632): mixq's WebAssembly kernel
 * (native/kernels/attention.h, KV cache in kernel memory) on 1 and 2 threads against its TypeScript
 * reference (src/engine/ops.ts `attention`, what the engine ran before), in the same run, interleaved.
 * Figures are milliseconds per token over all 22 layers (prefill: per prompt token) and the ratio to the
 * reference. Relaxed SIMD where the engine has it (Node 20: a child node with the flag).
 *
 *   npm run bench -- attention
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hasWasmRelaxedSimd } from '../src/core/wasm.ts';
import { attention, swiglu } from '../src/engine/ops.ts';
import { KernelKvStore } from '../src/kernels/attention.ts';
import type { KernelContext } from '../src/kernels/context.ts';
import { kernelSwiglu } from '../src/kernels/elementwise.ts';
import { createKernelPool } from '../src/kernels/pool.node.ts';
import { printTable, timeInterleaved } from './util.ts';

const LAYERS = 22;
const HEADS = 32;
const KV_HEADS = 4;
const HD = 64;
const CONTEXTS = [16, 128, 512, 2048];
const PREFILL = 128;

const loadavg = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
};

function filled(ctx: KernelContext, n: number): KernelKvStore {
  const s = new KernelKvStore(ctx, LAYERS, KV_HEADS, HD, n);
  s.reserve(n, 0);
  const w = KV_HEADS * HD;
  const k = new Float32Array(n * w);
  const v = new Float32Array(n * w);
  for (let i = 0; i < k.length; i++) {
    k[i] = Math.sin(i * 0.37);
    v[i] = Math.cos(i * 0.11);
  }
  for (let l = 0; l < LAYERS; l++) s.write(l, 0, k, v);
  return s;
}

async function main(): Promise<void> {
  console.log(`loadavg before: ${loadavg()}`);
  const pool = await createKernelPool({ threads: 2 });
  console.log(
    `attention: ${pool.variant}, ${LAYERS} layers x ${HEADS} heads (${KV_HEADS} KV) x ${HD}, float32 KV cache`,
  );
  const rows: string[][] = [];
  const qW = HEADS * HD;
  for (const n of CONTEXTS) {
    const s = filled(pool, n);
    const views = Array.from({ length: LAYERS }, (_, l) => s.views(l));
    const q = Float32Array.from({ length: qW }, (_, i) => Math.sin(i));
    const out = new Float32Array(qW);
    const scores = new Float64Array(n);
    const kernel = (threads: number) => () => {
      pool.useThreads(threads);
      for (let l = 0; l < LAYERS; l++) s.attend(l, q, 1, n - 1, HEADS, out);
    };
    const reference = () => {
      for (let l = 0; l < LAYERS; l++) attention(q, views[l]!, 1, n - 1, HEADS, KV_HEADS, HD, out, scores);
    };
    const [ref, k1, k2] = timeInterleaved([reference, kernel(1), kernel(2)], n >= 512 ? 1500 : 600);
    rows.push([
      `decode, context ${n}`,
      ref!.toFixed(3),
      `${k1!.toFixed(3)} (${(ref! / k1!).toFixed(1)}x)`,
      `${k2!.toFixed(3)} (${(ref! / k2!).toFixed(1)}x)`,
    ]);
    s.release();
  }
  {
    const s = filled(pool, PREFILL);
    const views = Array.from({ length: LAYERS }, (_, l) => s.views(l));
    const q = Float32Array.from({ length: PREFILL * qW }, (_, i) => Math.sin(i));
    const out = new Float32Array(q.length);
    const scores = new Float64Array(PREFILL);
    const kernel = (threads: number) => () => {
      pool.useThreads(threads);
      for (let l = 0; l < LAYERS; l++) s.attend(l, q, PREFILL, 0, HEADS, out);
    };
    const reference = () => {
      for (let l = 0; l < LAYERS; l++) attention(q, views[l]!, PREFILL, 0, HEADS, KV_HEADS, HD, out, scores);
    };
    const t = timeInterleaved([reference, kernel(1), kernel(2)], 1500).map((x) => x / PREFILL);
    rows.push([
      `prefill ${PREFILL} (per token)`,
      t[0]!.toFixed(3),
      `${t[1]!.toFixed(3)} (${(t[0]! / t[1]!).toFixed(1)}x)`,
      `${t[2]!.toFixed(3)} (${(t[0]! / t[2]!).toFixed(1)}x)`,
    ]);
    s.release();
  }
  {
    // SwiGLU of a decode token: 22 layers x 5632 (the FFN width), kernels on the calling thread
    const F = 5632;
    const g = Float32Array.from({ length: F }, (_, i) => 4 * Math.sin(i));
    const u = Float32Array.from({ length: F }, (_, i) => Math.cos(i));
    const out = new Float32Array(F);
    const t = timeInterleaved(
      [
        () => {
          for (let l = 0; l < LAYERS; l++) swiglu(g, u, out);
        },
        () => {
          for (let l = 0; l < LAYERS; l++) kernelSwiglu(pool, g, u, out);
        },
      ],
      600,
    );
    rows.push([
      `SwiGLU (${LAYERS} x ${F})`,
      t[0]!.toFixed(3),
      `${t[1]!.toFixed(3)} (${(t[0]! / t[1]!).toFixed(1)}x)`,
      '-',
    ]);
  }
  printTable(['ms per token, 22 layers', 'TypeScript reference', 'wasm 1 thread', 'wasm 2 threads'], rows);
  await pool.close();
  console.log(`\nloadavg after: ${loadavg()}`);
}

export default async function bench(): Promise<void> {
  if (!hasWasmRelaxedSimd() && process.env.MIXQ_BENCH_CHILD !== '1') {
    console.log(
      'Node 20: running the attention benchmark in a child node with --experimental-wasm-relaxed-simd',
    );
    const r = spawnSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', '--import', 'tsx', fileURLToPath(import.meta.url)],
      { stdio: 'inherit', env: { ...process.env, MIXQ_BENCH_CHILD: '1' } },
    );
    if (r.status !== 0) throw new Error(`attention benchmark child exited with ${r.status}`);
    return;
  }
  await main();
}

if (process.env.MIXQ_BENCH_CHILD === '1' && process.argv[1] === fileURLToPath(import.meta.url)) await main();

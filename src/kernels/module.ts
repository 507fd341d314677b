/**
 * The kernel modules the package ships (native/kernels/kernels.c, built by scripts/build-wasm.mjs): a
 * single-threaded build over an ordinary memory and a threaded build over a shared one, each as SIMD128 and
 * relaxed SIMD. Relaxed SIMD is picked by feature detection (core/wasm.ts): on by default in Node >= 22 and
 * current Chromium, behind --experimental-wasm-relaxed-simd in Node 20.
 *
 * Each variant's bytes are a module of their own (wasm/kernels.<variant>.generated.ts, ~0.7 MB of base64),
 * imported by the loader in wasm/kernels.generated.ts when a context is first created: a process or a
 * page (bundled with code splitting) fetches, parses and decodes only the variant it runs.
 */
import { MixqError } from '../core/errors.ts';
import { base64Bytes, hasWasmRelaxedSimd, hasWasmSimd } from '../core/wasm.ts';
import type { KernelMemory } from './memory.ts';
import * as ST from './wasm/kernels.generated.ts';

export type KernelVariant = 'simd128' | 'relaxed';

/** Identity of the shipped kernel build (sha256 of its C sources): measured speeds belong to one build. */
export const KERNELS_BUILD: string = ST.SOURCE_SHA256;

/** The exported kernel functions (every argument and result an i32 / f32 number). */
export interface KernelExports {
  readonly [name: string]: unknown;
  act_q8(x: number, kp: number, out: number): void;
  act_q8k(x: number, kp: number, out: number): void;
  act_q8_ggml(x: number, kp: number, out: number): void;
  ggml_interleave(type: number, data: number, rowBytes: number, tiles: number, tmp: number): void;
  read_bandwidth(p: number, bytes: number): number;
}

/** Which variant to run: `relaxed` true / false forces one ('auto': relaxed where the engine has it). */
export function chooseVariant(relaxed: boolean | 'auto' = 'auto'): KernelVariant {
  if (!hasWasmSimd())
    throw new MixqError('this JavaScript engine has no WebAssembly SIMD', {
      source: 'kernels',
      field: 'engine',
      expected: 'WebAssembly SIMD128 (Node >= 16.4, every current browser)',
    });
  if (relaxed === true && !hasWasmRelaxedSimd())
    throw new MixqError('relaxed SIMD asked for but not available', {
      source: 'kernels',
      field: 'relaxed',
      expected:
        "an engine with relaxed SIMD (Node >= 22, Chromium >= 114; Node 20: --experimental-wasm-relaxed-simd) or 'auto'",
    });
  return relaxed === false ? 'simd128' : hasWasmRelaxedSimd() ? 'relaxed' : 'simd128';
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

/** Loads the base64 of a kernel module (single-threaded build): imports only that variant's bytes. */
export function moduleBase64(variant: KernelVariant): Promise<string> {
  return ST.LOAD[variant]();
}

/**
 * Loads (`load`: the variant's base64, imported on first call) and compiles a module once per process,
 * asynchronously: browsers refuse large synchronous compiles. A failed load or compile is not cached, so a
 * later call retries (a chunk that failed to download, say).
 */
export function compileKernelModule(key: string, load: () => Promise<string>): Promise<WebAssembly.Module> {
  let p = compiled.get(key);
  if (!p) {
    p = load().then((b64) => WebAssembly.compile(base64Bytes(b64)));
    compiled.set(key, p);
    p.catch(() => compiled.delete(key));
  }
  return p;
}

/** `__heap_base` of a module: the first byte above its data and stack (the allocator's start). */
export function heapBase(module: WebAssembly.Module, shared: boolean): number {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared });
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  return Number((inst.exports.__heap_base as WebAssembly.Global).value);
}

/** Instantiates a module over a kernel memory. */
export function instantiateKernels(module: WebAssembly.Module, mem: KernelMemory): KernelExports {
  const inst = new WebAssembly.Instance(module, { env: { memory: mem.memory } });
  return inst.exports as unknown as KernelExports;
}

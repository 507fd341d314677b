/**
 * ggml block encoding of a whole tensor on several threads. The rows are split into contiguous parts;
 * one part is encoded on this thread and each other part whole on a worker thread, all by GGML_CODECS,
 * and the bytes are joined in order. The result is the bytes of one `GGML_CODECS[name].quantize(x,
 * nPerRow, imatrix)` call for any thread count: every row is encoded independently of the others (the
 * imatrix paths use per-row statistics only), and without an imatrix every block is (`quantize_<t>` is
 * stateless per block; only IQ4_NL's ref quantizer carries state, and `quantize` does not use it).
 *
 * Worker threads are started on first use, kept for the next call (starting one costs a few hundred
 * milliseconds from sources), never hold the process open, and end after IDLE_MS unused.
 */
import type { Worker } from 'node:worker_threads';
import { checkRowsInput } from '../blocks/ggml/common.ts';
import { GGML_CODECS, type GgmlTypeName } from '../blocks/ggml/index.ts';
import type { BlockTypeTraits } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import { defaultPoolSize } from './sensitivity-pool.node.ts';
import { startModuleWorker } from '../core/worker-thread.node.ts';

export interface BlockEncodeRequest {
  readonly id: number;
  readonly name: GgmlTypeName;
  readonly x: Float32Array;
  readonly nPerRow: number;
  readonly imatrix: Float32Array | null;
}
export type BlockEncodeReply = { id: number; bytes: Uint8Array } | { id: number; error: string };

/** Below this many values per extra thread, encoding on this thread alone is faster than a hand-off. */
const MIN_VALUES_PER_THREAD = 1 << 16;
const IDLE_MS = 30_000;

interface Thread {
  readonly worker: Worker;
  readonly waiting: Map<number, { resolve(b: Uint8Array): void; reject(e: Error): void }>;
  timer?: ReturnType<typeof setTimeout>;
  dead?: Error;
}

const idle: Thread[] = [];
let nextId = 0;

function spawn(): Thread {
  const worker = startModuleWorker('./block-encode-worker.node', import.meta.url);
  const t: Thread = { worker, waiting: new Map() };
  const died = (e: Error): void => {
    t.dead ??= e;
    clearTimeout(t.timer);
    const i = idle.indexOf(t);
    if (i >= 0) idle.splice(i, 1);
    for (const w of t.waiting.values()) w.reject(t.dead);
    t.waiting.clear();
  };
  worker.on('message', (m: BlockEncodeReply) => {
    const w = t.waiting.get(m.id);
    t.waiting.delete(m.id);
    if ('bytes' in m) w?.resolve(m.bytes);
    else w?.reject(new MixqError(m.error, { source: 'block encoding worker' }));
  });
  worker.on('error', died);
  worker.on('exit', (code) => died(new MixqError(`a block encoding worker exited with code ${code}`)));
  return t;
}

function take(): Thread {
  for (let t = idle.pop(); t; t = idle.pop()) {
    clearTimeout(t.timer);
    if (!t.dead) return t;
  }
  return spawn();
}

function park(t: Thread): void {
  if (t.dead) return;
  t.worker.unref();
  t.timer = setTimeout(() => {
    const i = idle.indexOf(t);
    if (i >= 0) idle.splice(i, 1);
    void t.worker.terminate();
  }, IDLE_MS);
  t.timer.unref();
  idle.push(t);
}

/** Ends the idle block encoding workers now (they also end by themselves, and never hold the process). */
export async function closeBlockEncodeWorkers(): Promise<void> {
  const ts = idle.splice(0);
  for (const t of ts) clearTimeout(t.timer);
  await Promise.all(ts.map((t) => t.worker.terminate()));
}

function onWorker(t: Thread, req: Omit<BlockEncodeRequest, 'id'>): Promise<Uint8Array> {
  const id = nextId++;
  t.worker.ref();
  return new Promise<Uint8Array>((resolve, reject) => {
    if (t.dead) {
      reject(t.dead);
      return;
    }
    t.waiting.set(id, { resolve, reject });
    // the part is a copy whose buffer moves to the worker; the caller's array is never touched
    t.worker.postMessage({ ...req, id } satisfies BlockEncodeRequest, [req.x.buffer as ArrayBuffer]);
  });
}

/**
 * `GGML_CODECS[name].quantize(x, nPerRow, imatrix)` with the rows split over `threads` threads (this
 * one included; default: the cores, up to 4). Same bytes for any thread count; same errors on bad input.
 */
export async function quantizeOnThreads(
  name: GgmlTypeName,
  x: Float32Array,
  nPerRow: number,
  imatrix: Float32Array | null,
  threads: number = Math.max(1, defaultPoolSize()),
): Promise<Uint8Array> {
  const codec = GGML_CODECS[name];
  const t = codec.info;
  checkRowsInput(t, x, nPerRow, imatrix);
  // the unit of a split: a row with an imatrix, a block without (then rows do not matter)
  const unit = imatrix ? nPerRow : t.blockSize;
  const units = x.length / unit;
  const parts = Math.max(
    1,
    Math.min(Math.floor(threads), units, Math.floor(x.length / MIN_VALUES_PER_THREAD)),
  );
  if (parts <= 1) return codec.quantize(x, nPerRow, imatrix);
  const bytesPer = (n: number): number => (n / t.blockSize) * t.bytesPerBlock;
  const bounds = Array.from({ length: parts + 1 }, (_, k) => Math.floor((k * units) / parts) * unit);
  const rowLen = (a: number, b: number): number => (imatrix ? nPerRow : b - a);
  const workers = Array.from({ length: parts - 1 }, take);
  try {
    const remote = workers.map((w, k) => {
      const a = bounds[k + 1]!;
      const b = bounds[k + 2]!;
      return onWorker(w, { name, x: x.slice(a, b), nPerRow: rowLen(a, b), imatrix });
    });
    // the first part on this thread while the workers run
    const first = codec.quantize(x.subarray(0, bounds[1]!), rowLen(0, bounds[1]!), imatrix);
    const out = new Uint8Array(bytesPer(x.length));
    out.set(first, 0);
    const rest = await Promise.all(remote);
    rest.forEach((bytes, k) => out.set(bytes, bytesPer(bounds[k + 1]!)));
    return out;
  } finally {
    for (const w of workers) park(w);
  }
}

/**
 * GGUF re-quantization's `encodeRows` on threads (RequantizeOptions): ggml block types through
 * quantizeOnThreads, the plain float types (F32, F16, BF16) on this thread. The bytes of `type.encode`.
 */
export function encodeRowsOnThreads(
  x: Float32Array,
  nPerRow: number,
  type: BlockTypeTraits,
  im: Float32Array | undefined,
): Promise<Uint8Array> {
  if (type.blockSize > 1 && type.name in GGML_CODECS) {
    // registry encode: the whole slice as one row without an imatrix (the same bytes as any row split)
    return quantizeOnThreads(type.name as GgmlTypeName, x, nPerRow, im ?? null);
  }
  return Promise.resolve(type.encode(x, im));
}

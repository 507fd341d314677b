/**
 * A kernel context: one WebAssembly memory holding prepared weights, the kernel module instantiated over
 * it, and the matrix x vector / matrix x matrix calls a runtime makes. Browser-safe and single-threaded;
 * pool.node.ts runs the same kernels on worker threads over a shared memory (rows split between threads,
 * the same result for any thread count).
 *
 * @example
 *   const k = await createKernels();
 *   const w = k.prepare({ kind: 'ggml', type: 'Q4_K', rows: 2048, cols: 2048, data: tensorBytes });
 *   const y = k.matvec(w, x);                   // decode: batch 1, int8 activations (w.modes[0])
 *   const Y = k.matmul(w, X, 32, { mode: 'f32' }); // prefill: 32 activation rows, float32 activations
 */
import { MixqError } from '../core/errors.ts';
import { q8Bytes, q8kBytes } from './activations.ts';
import { prepareDense, type DenseType } from './dense.ts';
import { prepareGgml } from './ggml.ts';
import { DESC_BYTES, type Desc, LAYOUT, type LayoutName, readDesc, writeDesc } from './layout.ts';
import { prepareLut } from './lut.ts';
import { KernelMemory } from './memory.ts';
import {
  chooseVariant,
  compileKernelModule,
  heapBase,
  instantiateKernels,
  type KernelExports,
  type KernelVariant,
  moduleBase64,
} from './module.ts';
import { referenceProduct, type ReferenceProduct } from './reference.ts';
import {
  type ActivationMode,
  KERNEL_FORMATS,
  type KernelFormatName,
  LAYOUTS,
  layoutName,
} from './registry.ts';
import { prepareSliced, resolveElement } from './sliced.ts';
import type { WeightSource } from './source.ts';
import { elementPlan } from './elements.ts';

/** A weight in kernel memory. */
export interface PreparedWeight {
  /** Its row of the format table (registry.ts KERNEL_FORMATS). */
  readonly format: KernelFormatName;
  readonly layout: LayoutName;
  readonly rows: number;
  readonly cols: number;
  /** Activation length the kernels read (cols rounded up to the layout's block). */
  readonly kp: number;
  /** Activation modes this weight's kernels take; the first is the default. */
  readonly modes: readonly ActivationMode[];
  /** Bytes it holds in kernel memory (0 for bytes prepared in place). */
  readonly bytes: number;
  /** Address of its descriptor. */
  readonly desc: number;
}

export interface PrepareOptions {
  /**
   * 'lut': int1..int4 weights in bit planes for the lookup-table kernels (activation mode 'lut8');
   * 'stored': ggml blocks exactly as the file stores them and mixq's sliced rows one after another (no 4-row
   * interleaved tiles), for products in the 'f32' mode (and ggml's 'q8' on K-quants), which on interleaved
   * tiles rebuild every block (~25x slower on K-quant tiles, a few percent on sliced ones);
   * default: the dot-product layout (ggml types interleaved where ggml.ts says so, mixq weights with an
   * int8 path in interleaved sliced tiles).
   */
  readonly layout?: 'dot' | 'lut' | 'stored';
}

export interface ProductOptions {
  /** Activation mode (default: the weight's first mode). */
  readonly mode?: ActivationMode;
  /** Where to write the result (default: a new array). */
  readonly out?: Float32Array;
}

/** Runs a kernel over rows [0, rows): the single-threaded executor, or a pool of threads. */
export interface RowExecutor {
  readonly threads: number;
  /**
   * Calls exports[fn](...args, r0, r1, scratch) for row ranges covering [0, rows), each range starting at
   * a multiple of `rowTile` (the rows a kernel computes together), each thread with its own scratch.
   */
  run(fn: string, args: readonly number[], rows: number, scratchBytes: number, rowTile: number): void;
}

interface Held {
  readonly allocations: number[];
  readonly values: Float32Array;
  readonly w: PreparedWeight;
}

const SRC = 'kernels';

/**
 * Scratch a kernel call may need per thread (decoded tiles of the matrix x matrix kernels, one accumulator
 * vector per activation row: see the C; the fixed 8 KiB also holds ggml-k.h kmm_tile's 3 KiB of sums;
 * sliced.h smm_tile's 2 KiB of accumulators and 64 rows' activation sums per 32, 8 kp bytes, fit in 16 kp).
 */
export function scratchBytes(d: Desc, batch = 1): number {
  return 16 * d.kp + 64 * d.ngroups + 16 * batch + 8192;
}

/** Rows the kernels compute together (16 for the lookup-table layout): threads split at multiples of it. */
export const ROW_TILE = 4;

export class KernelContext {
  readonly memory: KernelMemory;
  readonly exports: KernelExports;
  readonly variant: KernelVariant;
  protected executor: RowExecutor;
  private readonly held = new Map<number, Held>();
  // reusable buffers by name: the products' x (float32), q (int8 activations), y; others' (elementwise.ts)
  private readonly bufs = new Map<string, { p: number; n: number }>();

  constructor(memory: KernelMemory, exports: KernelExports, variant: KernelVariant, executor?: RowExecutor) {
    this.memory = memory;
    this.exports = exports;
    this.variant = variant;
    this.executor = executor ?? new LocalExecutor(this);
  }

  /** Threads the products run on. */
  get threads(): number {
    return this.executor.threads;
  }

  /** Puts a weight into kernel memory in its kernels' layout (see source.ts for the inputs). */
  prepare(src: WeightSource, opts: PrepareOptions = {}): PreparedWeight {
    let r: { desc: Desc; allocations: number[]; bytes: number; modes?: readonly ActivationMode[] };
    let format: KernelFormatName;
    let values: Float32Array = new Float32Array(0);
    if (src.kind === 'float32') {
      r = prepareDense(this.memory, src);
      format = 'f32';
    } else if (src.kind === 'ggml') {
      const t = src.type.toUpperCase();
      if (t === 'F32' || t === 'F16' || t === 'BF16') {
        r = prepareDense(this.memory, { ...src, type: t as DenseType });
        format = t === 'F32' ? 'f32' : t === 'F16' ? 'f16' : 'bf16';
      } else {
        r = prepareGgml(this.memory, src, this.exports, opts.layout !== 'stored');
        format = t as KernelFormatName;
      }
    } else {
      const spec = resolveElement(src.element);
      if ((spec.name === 'fp16' || spec.name === 'bf16') && src.scaleFormat === 'none') {
        // 16-bit weights without a scale: their codes are the little-endian 16-bit values
        const t = spec.name === 'fp16' ? 'F16' : 'BF16';
        r = prepareDense(this.memory, {
          kind: 'ggml',
          type: t,
          rows: src.rows,
          cols: src.cols,
          data: src.codes.subarray(0, 2 * src.rows * src.cols),
        });
        format = spec.name === 'fp16' ? 'f16' : 'bf16';
      } else if (opts.layout === 'lut') {
        r = prepareLut(this.memory, src);
        format = 'int-lut';
      } else {
        r = prepareSliced(this.memory, src, opts.layout !== 'stored');
        format = mixqFormatName(src, spec.kind, spec.name);
        values = elementPlan(spec).values;
      }
    }
    const desc = this.memory.alloc(DESC_BYTES);
    writeDesc(this.memory.memory.buffer, desc, r.desc);
    const layout = layoutName(r.desc.layout);
    const fmt = KERNEL_FORMATS[format];
    const modes = r.modes ? fmt.modes.filter((m) => r.modes!.includes(m)) : fmt.modes;
    const w: PreparedWeight = {
      format,
      layout,
      rows: r.desc.rows,
      cols: r.desc.cols,
      kp: r.desc.kp,
      modes,
      bytes: r.bytes,
      desc,
    };
    this.held.set(desc, { allocations: [...r.allocations, desc], values, w });
    return w;
  }

  /**
   * A second copy of a prepared weight in kernel memory (benchmarks rotate copies so that every product
   * reads its weights from memory, not from cache).
   */
  clone(w: PreparedWeight): PreparedWeight {
    const h = this.held.get(w.desc);
    if (!h) throw new MixqError('weight is not held by this context', { source: SRC, field: 'weight' });
    const d = this.descOf(w);
    const moved = new Map<number, number>();
    const allocations: number[] = [];
    for (const p of h.allocations) {
      if (p === w.desc) continue;
      const n = this.memory.sizeOf(p);
      const q = this.memory.alloc(n);
      this.memory.bytes().copyWithin(q, p, p + n);
      moved.set(p, q);
      allocations.push(q);
    }
    for (const f of ['data', 'scales', 'zeros', 'offsets', 'table', 'qtable'] as const)
      if (moved.has(d[f])) d[f] = moved.get(d[f])!;
    const desc = this.memory.alloc(DESC_BYTES);
    writeDesc(this.memory.memory.buffer, desc, d);
    const c: PreparedWeight = { ...w, desc };
    this.held.set(desc, { allocations: [...allocations, desc], values: h.values, w: c });
    return c;
  }

  /** Frees a prepared weight's memory. */
  release(w: PreparedWeight): void {
    const h = this.held.get(w.desc);
    if (!h) throw new MixqError('weight is not held by this context', { source: SRC, field: 'weight' });
    for (const p of h.allocations) this.memory.release(p);
    this.held.delete(w.desc);
  }

  /** The kernel function of a weight for an operation and activation mode (MixqError if it has none). */
  kernelName(w: PreparedWeight, op: 'matvec' | 'matmul', mode: ActivationMode): string {
    const fn = LAYOUTS[w.layout].kernels[op][mode];
    if (!fn || !w.modes.includes(mode))
      throw new MixqError(`${w.format} weights have no '${mode}' kernel`, {
        source: SRC,
        field: 'mode',
        expected: w.modes.join(' | '),
      });
    return fn;
  }

  /** y = W x (x: cols values). */
  matvec(w: PreparedWeight, x: Float32Array, opts: ProductOptions = {}): Float32Array {
    return this.matmul(w, x, 1, opts);
  }

  /** Y = X W^T: X is `batch` rows of `cols` values, Y `batch` rows of `rows` values. */
  matmul(w: PreparedWeight, x: Float32Array, batch: number, opts: ProductOptions = {}): Float32Array {
    const mode = opts.mode ?? w.modes[0]!;
    this.checkProduct(w, x, batch, opts.out);
    const d = this.descOf(w);
    const kp = w.kp;
    const xp = this.buffer('x', 4 * kp * batch);
    const f = this.memory.f32(xp, kp * batch);
    for (let j = 0; j < batch; j++) {
      f.set(x.subarray(j * w.cols, (j + 1) * w.cols), j * kp);
      f.fill(0, j * kp + w.cols, (j + 1) * kp);
    }
    const yp = this.buffer('y', 4 * w.rows * batch);
    const op = batch === 1 ? 'matvec' : 'matmul';
    const fn = this.kernelName(w, op, mode);
    let act = xp;
    let stride = kp; // float32 elements
    if (mode !== 'f32') {
      stride = mode === 'q8' ? q8Bytes(kp) : mode === 'q8k' ? q8kBytes(kp) : this.lutActBytes(d);
      act = this.buffer('q', stride * batch);
      for (let j = 0; j < batch; j++) this.quantize(mode, d, xp + 4 * j * kp, act + j * stride);
    }
    const tile = w.layout === 'lut' ? 16 : ROW_TILE;
    if (op === 'matvec') this.executor.run(fn, [w.desc, act, yp], w.rows, scratchBytes(d), tile);
    else
      this.executor.run(fn, [w.desc, act, stride, batch, yp, w.rows], w.rows, scratchBytes(d, batch), tile);
    const out = opts.out ?? new Float32Array(w.rows * batch);
    out.set(this.memory.f32(yp, w.rows * batch));
    return out;
  }

  /**
   * Runs a kernel export over the units [0, units) split between the context's threads at multiples of
   * `tile`: exports[fn](...args, u0, u1, scratch), each thread with `scratchBytes` of its own scratch
   * (non-product kernels such as attention, which split heads). In a pool, `fn` must be in its table.
   */
  runSplit(fn: string, args: readonly number[], units: number, scratchBytes: number, tile = 1): void {
    this.executor.run(fn, args, units, scratchBytes, tile);
  }

  /** The plain TypeScript reference of a product (float64 sums of exactly decoded weights). */
  reference(w: PreparedWeight, x: ArrayLike<number>, batch = 1): ReferenceProduct {
    const d = this.descOf(w);
    const h = this.held.get(w.desc)!;
    const bytes = this.memory.bytes();
    const xp = new Float64Array(w.kp * batch);
    for (let j = 0; j < batch; j++) for (let k = 0; k < w.cols; k++) xp[j * w.kp + k] = x[j * w.cols + k]!;
    return referenceProduct(
      (r, o) => LAYOUTS[w.layout].decode(bytes, d, h.values, r, o),
      w.rows,
      w.kp,
      xp,
      batch,
    );
  }

  /** Decoded values of row r (the reference decoder). */
  decodeRow(w: PreparedWeight, r: number): Float64Array {
    const h = this.held.get(w.desc)!;
    const out = new Float64Array(w.kp);
    LAYOUTS[w.layout].decode(this.memory.bytes(), this.descOf(w), h.values, r, out);
    return out;
  }

  /** The descriptor of a prepared weight, as the kernels read it. */
  descOf(w: PreparedWeight): Desc {
    return readDesc(this.memory.memory.buffer, w.desc);
  }

  /** Quantizes float32 activations (kp values at xp) for a mode into its buffer at out. */
  protected quantize(mode: ActivationMode, d: Desc, xp: number, out: number): void {
    if (mode === 'q8' && d.layout === LAYOUT.ggml) this.exports.act_q8_ggml(xp, d.kp, out);
    else if (mode === 'q8') this.exports.act_q8(xp, d.kp, out);
    else if (mode === 'q8k') this.exports.act_q8k(xp, d.kp, out);
    else (this.exports.act_lut as (x: number, kp: number, out: number) => void)(xp, d.kp, out);
  }

  protected lutActBytes(d: Desc): number {
    return (this.exports.lut_act_bytes as (kp: number) => number)(d.kp);
  }

  /**
   * A buffer of at least `bytes` in the context's memory, kept under `name` and reused across calls (it
   * grows, never shrinks; its contents are not kept between calls). 'x', 'q' and 'y' are the products'.
   */
  buffer(name: string, bytes: number): number {
    let b = this.bufs.get(name);
    if (!b || b.n < bytes) {
      if (b) this.memory.release(b.p);
      b = { p: this.memory.alloc(bytes), n: bytes };
      this.bufs.set(name, b);
    }
    return b.p;
  }

  private checkProduct(w: PreparedWeight, x: Float32Array, batch: number, out?: Float32Array): void {
    if (!this.held.has(w.desc))
      throw new MixqError('weight is not held by this context', { source: SRC, field: 'weight' });
    if (!Number.isInteger(batch) || batch < 1)
      throw new MixqError(`batch ${batch}`, { source: SRC, field: 'batch', expected: 'a positive integer' });
    if (x.length !== batch * w.cols)
      throw new MixqError(`${x.length} activations`, {
        source: SRC,
        field: 'x.length',
        expected: `${batch * w.cols} (batch ${batch} x ${w.cols})`,
      });
    if (out && out.length !== batch * w.rows)
      throw new MixqError(`output of ${out.length}`, {
        source: SRC,
        field: 'out.length',
        expected: String(batch * w.rows),
      });
  }
}

/** The format-table row of a mixq weight. */
function mixqFormatName(
  src: Extract<WeightSource, { kind: 'mixq' }>,
  kind: 'int' | 'float' | 'lut',
  name: string,
): KernelFormatName {
  if (kind === 'int') return 'int';
  if (kind === 'lut') return name === 'nf4' ? 'nf4' : 'codebook';
  const g = src.groups;
  const sf = src.scaleFormat;
  if (name === 'fp4_e2m1fn' && g === 16 && sf === 'fp8_e4m3fn') return 'nvfp4';
  if (g === 32 && sf === 'e8m0') {
    if (name === 'fp4_e2m1fn') return 'mxfp4';
    if (name === 'fp6_e3m2fn' || name === 'fp6_e2m3fn') return 'mxfp6';
    if (name === 'fp8_e4m3fn' || name === 'fp8_e5m2') return 'mxfp8';
  }
  return name in KERNEL_FORMATS ? (name as KernelFormatName) : 'minifloat';
}

/** Runs every kernel call on the calling thread, with one scratch buffer. */
class LocalExecutor implements RowExecutor {
  readonly threads = 1;
  private scratch = 0;
  private scratchSize = 0;
  constructor(private readonly ctx: KernelContext) {}
  run(fn: string, args: readonly number[], rows: number, scratchBytes: number): void {
    if (this.scratchSize < scratchBytes) {
      if (this.scratch) this.ctx.memory.release(this.scratch);
      this.scratch = this.ctx.memory.alloc(scratchBytes);
      this.scratchSize = scratchBytes;
    }
    const f = this.ctx.exports[fn] as (...a: number[]) => void;
    f(...args, 0, rows, this.scratch);
  }
}

export interface KernelOptions {
  /** Relaxed SIMD: 'auto' (default) uses it where the engine has it. */
  readonly relaxed?: boolean | 'auto';
  /** Cap on kernel memory (default 4 GiB, the wasm32 limit). */
  readonly maxMemoryBytes?: number;
}

/** A single-threaded kernel context (browser-safe). */
export async function createKernels(opts: KernelOptions = {}): Promise<KernelContext> {
  const variant = chooseVariant(opts.relaxed);
  const module = await compileKernelModule(`st-${variant}`, () => moduleBase64(variant));
  const memory = new KernelMemory({
    shared: false,
    base: heapBase(module, false),
    ...(opts.maxMemoryBytes !== undefined ? { maxBytes: opts.maxMemoryBytes } : {}),
  });
  return new KernelContext(memory, instantiateKernels(module, memory), variant);
}

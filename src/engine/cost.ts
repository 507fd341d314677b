/**
 * The measured cost table: seconds per product and per weight of every (format, shape, batch) on this
 * machine's kernels, from timed kernel calls on weights that stream from memory (copies rotated over
 * `rotateBytes`, as a model's weights do during a token). What a latency-aware allocator (HAWQ-V3 / OHQ
 * style) sums over a plan instead of bits: cost(plan) = sum over weights of secondsPerCall(format, shape).
 *
 * Weights are synthetic with valid codes (random codes among the format's finite ones, scales of 1): the
 * kernels' speed does not depend on the values. Browser-safe: runs on any KernelContext (a pool times
 * its threads).
 */
import { BLOCK_TYPES, type BlockTypeName } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { decode as decodeCode, formatBits } from '../formats/codec.ts';
import { packCodes } from '../formats/pack.ts';
import type { KernelContext, PreparedWeight, PrepareOptions } from '../kernels/context.ts';
import type { ActivationMode } from '../kernels/registry.ts';
import { resolveElement } from '../kernels/sliced.ts';
import type { MixqScaleFormat, WeightSource } from '../kernels/source.ts';

/** A format to time: a ggml type name ('Q4_K', 'F16', 'F32', ...) or a mixq element with its scales. */
export type CostFormat =
  | string
  | {
      /** Label in the table (default: element/groups/scale). */
      readonly name?: string;
      /** Element format name ('int4', 'fp4_e2m1fn', 'nf4', 'e3m2', ...). */
      readonly element: string;
      /** Weights per scale along K, or 'row'. */
      readonly groups: number | 'row';
      /** Default 'fp16'. */
      readonly scaleFormat?: Exclude<MixqScaleFormat, { kind: 'double' }>;
      /** Default true. */
      readonly symmetric?: boolean;
      /** 'lut': T-MAC bit planes (int1..int4). */
      readonly layout?: 'dot' | 'lut';
    };

export interface CostShape {
  /** Outputs. */
  readonly rows: number;
  /** Inputs (the reduction). */
  readonly cols: number;
  /** Activation rows per call (1 = decode; default 1). */
  readonly batch?: number;
}

export interface CostEntry {
  readonly format: string;
  readonly rows: number;
  readonly cols: number;
  readonly batch: number;
  readonly mode: ActivationMode;
  /** Bytes the weight holds in kernel memory. */
  readonly bytes: number;
  /** Best seconds per product. */
  readonly secondsPerCall: number;
  /** secondsPerCall / (rows x cols): the table's unit. */
  readonly secondsPerWeight: number;
  /** Weight bytes streamed per second. */
  readonly bytesPerSecond: number;
}

export interface CostOptions {
  /** Weight copies rotated until they hold at least this many bytes (default 64 MiB: beyond the caches). */
  readonly rotateBytes?: number;
  /** Time per entry (default 100 ms). */
  readonly minMs?: number;
  /** Activation mode: 'auto' (each weight's default, as the engine runs it), or one mode for all. */
  readonly mode?: 'auto' | ActivationMode;
}

/**
 * Times every format x shape on `kernels`.
 * @example measureCostTable(await createKernels(), [{ rows: 2048, cols: 2048 }], ['Q4_K', { element: 'int3', groups: 32 }])
 */
export function measureCostTable(
  kernels: KernelContext,
  shapes: readonly CostShape[],
  formats: readonly CostFormat[],
  opts: CostOptions = {},
): CostEntry[] {
  const rotate = opts.rotateBytes ?? 64 * 2 ** 20;
  const minMs = opts.minMs ?? 100;
  const rng = new Rng(1);
  const out: CostEntry[] = [];
  for (const f of formats)
    for (const s of shapes) {
      const batch = s.batch ?? 1;
      const first = kernels.prepare(costSource(f, s.rows, s.cols, rng), costLayout(f, opts.mode));
      const ws: PreparedWeight[] = [first];
      const per = Math.max(1, first.bytes || bytesOfSource(f, s.rows, s.cols));
      while (ws.length * per < rotate) ws.push(kernels.clone(first));
      const mode = opts.mode === undefined || opts.mode === 'auto' ? first.modes[0]! : opts.mode;
      const x = new Float32Array(s.cols * batch);
      for (let i = 0; i < x.length; i++) x[i] = rng.nextNormal();
      const y = new Float32Array(s.rows * batch);
      for (const w of ws) kernels.matmul(w, x, batch, { mode, out: y }); // warm-up
      let best = Infinity;
      const t0 = performance.now();
      do {
        const t = performance.now();
        for (const w of ws) kernels.matmul(w, x, batch, { mode, out: y });
        best = Math.min(best, (performance.now() - t) / ws.length);
      } while (performance.now() - t0 < minMs);
      for (const w of ws) kernels.release(w);
      const sec = best / 1000;
      out.push({
        format: costFormatName(f),
        rows: s.rows,
        cols: s.cols,
        batch,
        mode,
        bytes: per,
        secondsPerCall: sec,
        secondsPerWeight: sec / (s.rows * s.cols),
        bytesPerSecond: per / sec,
      });
    }
  return out;
}

/** The table's name of a format ('Q4_K', 'uint4/32/fp16/asym', ...). */
export function costFormatName(f: CostFormat): string {
  if (typeof f === 'string') return f.toUpperCase();
  return (
    f.name ??
    `${f.element}/${f.groups}/${f.scaleFormat ?? 'fp16'}${f.symmetric === false ? '/asym' : ''}${f.layout === 'lut' ? '/lut' : ''}`
  );
}

function costLayout(f: CostFormat, mode: CostOptions['mode']): PrepareOptions {
  if (typeof f !== 'string' && f.layout) return { layout: f.layout };
  // float32 activations: blocks / rows as stored, as the engine prepares them (load.ts)
  return mode === 'f32' ? { layout: 'stored' } : {};
}

/** Bytes of a ggml source (weights prepared in place report 0 kernel bytes). */
function bytesOfSource(f: CostFormat, rows: number, cols: number): number {
  if (typeof f !== 'string') return 0;
  const t = BLOCK_TYPES[f.toUpperCase() as BlockTypeName];
  return t ? (rows * cols * t.bytesPerBlock) / t.blockSize : 0;
}

const SCALE_ONE: Readonly<Record<string, readonly number[]>> = {
  fp32: [0, 0, 0x80, 0x3f],
  fp16: [0x00, 0x3c],
  bf16: [0x80, 0x3f],
  e8m0: [127],
  fp8_e4m3fn: [0x38],
  none: [],
};

/** A synthetic weight of the format: random valid codes, unit scales, mid-range zero points. */
export function costSource(f: CostFormat, rows: number, cols: number, rng: Rng): WeightSource {
  if (typeof f === 'string') {
    const t = BLOCK_TYPES[f.toUpperCase() as BlockTypeName];
    if (!t)
      throw new MixqError(`format '${f}'`, {
        source: 'cost table',
        field: 'format',
        expected: Object.keys(BLOCK_TYPES).join(', '),
      });
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < x.length; i++) x[i] = rng.nextNormal() * 0.02;
    return { kind: 'ggml', type: t.name, rows, cols, data: t.encode(x) };
  }
  const spec = resolveElement(f.element);
  const bits = formatBits(spec);
  const finite: number[] = [];
  for (let c = 0; c < 2 ** bits; c++) if (Number.isFinite(decodeCode(spec, c))) finite.push(c);
  const codes = bits > 8 ? new Uint16Array(rows * cols) : new Uint8Array(rows * cols);
  for (let i = 0; i < codes.length; i++) codes[i] = finite[rng.nextU32() % finite.length]!;
  const ng = f.groups === 'row' ? 1 : Math.ceil(cols / f.groups);
  const sf = f.scaleFormat ?? 'fp16';
  const one = SCALE_ONE[sf]!;
  const scales = new Uint8Array(rows * ng * one.length);
  for (let i = 0; i < scales.length; i++) scales[i] = one[i % one.length]!;
  const symmetric = f.symmetric ?? true;
  const asymInt = !symmetric && spec.kind === 'int';
  return {
    kind: 'mixq',
    rows,
    cols,
    element: spec,
    groups: f.groups,
    scaleFormat: sf,
    symmetric,
    codes: packCodes(codes, bits),
    ...(sf !== 'none' ? { scales } : {}),
    ...(sf === 'fp8_e4m3fn' ? { globalScale: 1 } : {}),
    ...(asymInt ? { zeros: packCodes(new Uint8Array(rows * ng).fill(2 ** (bits - 1)), bits) } : {}),
    ...(!symmetric && !asymInt ? { offsets: new Uint8Array(2 * rows * ng) } : {}),
  };
}

/**
 * The three quantizer functions (choose parameters: qparams.ts; quantize -> codes; dequantize) plus the
 * fake-quant path, the exact storage cost and the packed byte layout that the cost formula describes.
 *
 * Packed layout (each section starts on a byte boundary; bit streams are LSB-first):
 *   1. element codes, `bits` each, row-major element order (formats' packCodes: the ONNX sub-byte layout);
 *   2. per-group scale codes, scaleBitsPerGroup(scaleFormat) each;
 *   3. shared scale values: fp32 global (fp8_e4m3fn) or fp16 super-scales (double), little-endian;
 *   4. zero points: int grids (asymmetric) `bits` each as offset-binary codes; table grids (asymmetric) fp16.
 * storageCost() computes the same sizes from the configuration and shape alone; a test checks equality.
 */
import { f16BitsToF32, f32ToF16Bits } from '../core/bits.ts';
import { MixqError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import type { BlockScaling } from '../blocks/registry.ts';
import {
  encoderOf,
  nearestEvenInt,
  packCodes,
  packedBytes,
  roundToInteger,
  unpackCodes,
} from '../formats/index.ts';
import { codeToGrid, elementGrid, tableValue } from './element.ts';
import { groupCount, groupLayout } from './granularity.ts';
import {
  type ChooseOptions,
  chooseQParams,
  gridToValue,
  gridValue,
  type QParams,
  qparamsOf,
  type QuantizerConfig,
  quantizerGrid,
} from './qparams.ts';
import { loadScales, scaleBitsPerGroup, sharedScaleBits } from './scale-format.ts';

export interface QuantizedTensor {
  readonly params: QParams;
  /** Storage code of every element (int grids: offset binary g - qmin; table grids: the format's code). */
  readonly codes: Uint16Array;
}

/**
 * The element step of non-default rounding modes (formats' codecs, one 32-bit draw per element in order
 * for stochastic modes): x -> grid value (int grids, clamped; the zero point added after rounding) or
 * table code.
 */
function elementRounder(params: QParams): (x: number, scale: number, zero: number, offset: number) => number {
  const cfg = params.config;
  const { grid, block } = params;
  const rounding = cfg.rounding ?? 'nearest-even';
  const opts = { rounding, randomBits: cfg.randomBits ?? 0, seed: cfg.seed ?? 0 };
  if (grid.kind === 'int') {
    const rng =
      opts.rounding === 'stochastic' || opts.rounding === 'stochastic-equal' ? new Rng(opts.seed) : undefined;
    return (x, s, z) =>
      Math.min(
        grid.qmax,
        Math.max(
          grid.qmin,
          roundToInteger(Math.fround(x / s), rounding, rng ? rng.nextU32() : 0, opts.randomBits) + z,
        ),
      );
  }
  const enc = encoderOf(grid.spec, { ...opts, overflow: 'saturate' });
  return (x, s, _z, o) => enc(block ? block.quotient(x, s) : (x - o) / s);
}

/**
 * Quantizes x to codes with given parameters. Block formats (params.block) keep the format's own codes
 * (a -0 code where the format rounds to -0), as src/blocks encodes them.
 */
export function quantize(x: Float32Array, params: QParams): QuantizedTensor {
  const { grid, scale, zero, offset, block } = params;
  const idx = params.layout.index;
  const codes = new Uint16Array(x.length);
  const nearest = (params.config.rounding ?? 'nearest-even') === 'nearest-even';
  if (grid.kind === 'int') {
    const step = nearest ? undefined : elementRounder(params);
    for (let i = 0; i < x.length; i++) {
      const g = idx[i]!;
      const v = step ? step(x[i]!, scale[g]!, zero[g]!, 0) : gridValue(grid, scale[g]!, zero[g]!, 0, x[i]!);
      codes[i] = v - grid.codeBase;
    }
    return { params, codes };
  }
  if (block && nearest) {
    blockCodes(x, params, block, codes);
    return { params, codes };
  }
  const step = nearest ? undefined : elementRounder(params);
  for (let i = 0; i < x.length; i++) {
    const g = idx[i]!;
    const s = scale[g]!;
    const c = step ? step(x[i]!, s, 0, offset[g]!) : grid.nearest((x[i]! - offset[g]!) / s);
    codes[i] = block ? c : grid.canonical[c]!;
  }
  return { params, codes };
}

/**
 * A block format's element codes, nearest-even: every quotient as the format computes it (float32), then
 * the formats codec's nearest-even encoder (grid.nearest), as src/blocks encodes.
 */
function blockCodes(
  x: Float32Array,
  params: QParams,
  block: BlockScaling,
  codes: Uint8Array | Uint16Array,
): void {
  const { scale, grid } = params;
  if (grid.kind !== 'table') throw new MixqError('internal: a block format has a table grid');
  const idx = params.layout.index;
  const nearest = grid.nearest;
  for (let i = 0; i < x.length; i++) codes[i] = nearest(block.quotient(x[i]!, scale[idx[i]!]!));
}

/** Values of quantized codes. */
export function dequantize(q: QuantizedTensor): Float32Array {
  const { grid, scale, zero, offset } = q.params;
  const idx = q.params.layout.index;
  const out = new Float32Array(q.codes.length);
  for (let i = 0; i < out.length; i++) {
    const g = idx[i]!;
    out[i] = gridToValue(grid, scale[g]!, zero[g]!, offset[g]!, codeToGrid(grid, q.codes[i]!));
  }
  return out;
}

/** Quantize-dequantize with given parameters (the simulation path), into `out` if given. */
export function fakeQuantWith(
  x: Float32Array,
  params: QParams,
  out = new Float32Array(x.length),
): Float32Array {
  const { grid, scale, zero, offset, block } = params;
  const idx = params.layout.index;
  if ((params.config.rounding ?? 'nearest-even') !== 'nearest-even') {
    const step = elementRounder(params);
    for (let i = 0; i < x.length; i++) {
      const g = idx[i]!;
      const v = step(x[i]!, scale[g]!, zero[g]!, offset[g]!);
      out[i] = gridToValue(
        grid,
        scale[g]!,
        zero[g]!,
        offset[g]!,
        grid.kind === 'int' ? v : tableValue(grid, v),
      );
    }
    return out;
  }
  if (grid.kind === 'int') {
    // the same arithmetic as fakeQuantValue, inlined for the hot integer path
    const fr = Math.fround;
    const lo = grid.qmin;
    const hi = grid.qmax;
    const run = params.layout.run;
    if (run > 0) {
      // contiguous groups: parameters hoisted out of the inner loop, no index array
      for (let g = 0, i0 = 0; i0 < x.length; g++, i0 += run) {
        const s = scale[g]!;
        const z = zero[g]!;
        for (let i = i0; i < i0 + run; i++)
          out[i] = fr(s * (Math.min(hi, Math.max(lo, nearestEvenInt(fr(x[i]! / s)) + z)) - z));
      }
      return out;
    }
    for (let i = 0; i < x.length; i++) {
      const g = idx[i]!;
      const s = scale[g]!;
      const z = zero[g]!;
      out[i] = fr(s * (Math.min(hi, Math.max(lo, nearestEvenInt(fr(x[i]! / s)) + z)) - z));
    }
    return out;
  }
  // table grids: the formats codec's nearest-even code of each quotient, its grid value, the scale
  const nearest = grid.nearest;
  const cg = grid.codeGrid;
  const fr = Math.fround;
  if (block) {
    const quotient = block.quotient;
    for (let i = 0; i < x.length; i++) {
      const s = scale[idx[i]!]!;
      out[i] = fr(s * cg[nearest(quotient(x[i]!, s))]!);
    }
    return out;
  }
  for (let i = 0; i < x.length; i++) {
    const g = idx[i]!;
    const s = scale[g]!;
    const o = offset[g]!;
    out[i] = fr(fr(s * cg[nearest((x[i]! - o) / s)]!) + o);
  }
  return out;
}

/**
 * Chooses parameters and fake-quantizes in one call.
 * Example: `fakeQuant(w, [64, 128], { element: intSpec(8, true), granularity: { kind: 'axis', axis: 0 },
 * symmetric: true })`.
 */
export function fakeQuant(
  x: Float32Array,
  shape: readonly number[],
  cfg: QuantizerConfig,
  opts?: ChooseOptions,
): Float32Array {
  return fakeQuantWith(x, chooseQParams(x, shape, cfg, opts));
}

export interface StorageCost {
  /** Exact information bits: codes + scales + shared scales + zero points. */
  readonly bits: number;
  /** Bytes of the packed layout (each of the four sections rounded up to whole bytes). */
  readonly bytes: number;
  readonly bitsPerWeight: number;
  readonly sections: { codes: number; scales: number; shared: number; zeros: number };
}

function zeroBits(cfg: QuantizerConfig, elemBits: number, kind: 'int' | 'table'): number {
  if (cfg.symmetric) return 0;
  return kind === 'int' ? elemBits : 16;
}

/** Exact storage cost of a quantizer on a tensor shape, from the configuration alone. */
export function storageCost(cfg: QuantizerConfig, shape: readonly number[]): StorageCost {
  const grid = elementGrid(cfg.element);
  const n = shape.reduce((p, d) => p * d, 1);
  const nG = groupCount(shape, cfg.granularity);
  const sf = cfg.scaleFormat ?? 'fp32';
  const codes = n * grid.bits;
  const scales = nG * scaleBitsPerGroup(sf);
  const shared = sharedScaleBits(sf, nG);
  const zeros = nG * zeroBits(cfg, grid.bits, grid.kind);
  const bits = codes + scales + shared + zeros;
  const bytes = Math.ceil(codes / 8) + Math.ceil(scales / 8) + shared / 8 + Math.ceil(zeros / 8);
  return { bits, bytes, bitsPerWeight: n === 0 ? 0 : bits / n, sections: { codes, scales, shared, zeros } };
}

class BitWriter {
  private pos: number;
  constructor(
    readonly buf: Uint8Array,
    startByte: number,
  ) {
    this.pos = startByte * 8;
  }
  write(v: number, bits: number): void {
    for (let b = 0; b < bits; b++, this.pos++)
      if ((v >>> b) & 1) this.buf[this.pos >>> 3]! |= 1 << (this.pos & 7);
  }
  alignByte(): void {
    this.pos = (this.pos + 7) & ~7;
  }
  get bytePos(): number {
    return this.pos >>> 3;
  }
}

class BitReader {
  private pos: number;
  constructor(
    readonly buf: Uint8Array,
    startByte: number,
  ) {
    this.pos = startByte * 8;
  }
  read(bits: number): number {
    let v = 0;
    for (let b = 0; b < bits; b++, this.pos++) v |= ((this.buf[this.pos >>> 3]! >>> (this.pos & 7)) & 1) << b;
    return v >>> 0;
  }
  alignByte(): void {
    this.pos = (this.pos + 7) & ~7;
  }
}

/** Packs a quantized tensor into the byte layout described at the top of this file. */
export function packQuantized(q: QuantizedTensor): Uint8Array {
  const { params } = q;
  const cost = storageCost(params.config, params.shape);
  const buf = new Uint8Array(cost.bytes);
  const bits = params.grid.bits;
  const codeBytes = packedBytes(q.codes.length, bits);
  packCodes(q.codes, bits, buf.subarray(0, codeBytes));
  const w = new BitWriter(buf, codeBytes);
  const sf = params.config.scaleFormat ?? 'fp32';
  const sb = scaleBitsPerGroup(sf);
  for (const c of params.scaleCodes) w.write(c, sb);
  w.alignByte();
  for (const s of params.scaleShared) {
    if (sf === 'fp8_e4m3fn') w.write(new Uint32Array(Float32Array.of(s).buffer)[0]!, 32);
    else w.write(f32ToF16Bits(s), 16);
  }
  if (!params.config.symmetric) {
    const nG = params.layout.nGroups;
    for (let g = 0; g < nG; g++) {
      if (params.grid.kind === 'int') w.write(params.zero[g]! - params.grid.qmin, bits);
      else w.write(f32ToF16Bits(params.offset[g]!), 16);
    }
  }
  w.alignByte();
  if (w.bytePos !== buf.length) throw new MixqError('internal: packed size differs from the storage formula');
  return buf;
}

/** Inverse of packQuantized, given the same configuration and shape. */
export function unpackQuantized(
  bytes: Uint8Array,
  cfg: QuantizerConfig,
  shape: readonly number[],
): QuantizedTensor {
  const cost = storageCost(cfg, shape);
  if (bytes.length !== cost.bytes)
    throw new MixqError('packed buffer has the wrong size', {
      field: 'bytes.length',
      expected: String(cost.bytes),
    });
  const grid = quantizerGrid(cfg);
  const layout = groupLayout(shape, cfg.granularity);
  const nG = layout.nGroups;
  const n = layout.index.length;
  const codeBytes = packedBytes(n, grid.bits);
  const codes = Uint16Array.from(unpackCodes(bytes.subarray(0, codeBytes), grid.bits, n));
  const r = new BitReader(bytes, codeBytes);
  const sf = cfg.scaleFormat ?? 'fp32';
  const sb = scaleBitsPerGroup(sf);
  const scaleCodes = new Uint32Array(nG);
  for (let g = 0; g < nG; g++) scaleCodes[g] = r.read(sb);
  r.alignByte();
  const nShared = sharedScaleBits(sf, nG) / (sf === 'fp8_e4m3fn' ? 32 : 16);
  const shared = new Float32Array(nShared);
  for (let k = 0; k < nShared; k++) {
    if (sf === 'fp8_e4m3fn') shared[k] = new Float32Array(Uint32Array.of(r.read(32)).buffer)[0]!;
    else shared[k] = f16BitsToF32(r.read(16));
  }
  const scale = loadScales(sf, scaleCodes, shared);
  const zero = new Float32Array(nG);
  const offset = new Float32Array(nG);
  for (let g = 0; g < nG; g++) {
    if (cfg.symmetric) {
      if (grid.kind === 'int' && grid.qmin === 0) zero[g] = (grid.qmax + 1) / 2;
    } else if (grid.kind === 'int') zero[g] = r.read(grid.bits) + grid.qmin;
    else offset[g] = f16BitsToF32(r.read(16));
  }
  const params = qparamsOf(cfg, shape, { scale, codes: scaleCodes, shared }, zero, offset, layout, grid);
  return { params, codes };
}

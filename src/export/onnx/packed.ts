/**
 * Bit-plane packed weights: any element format of 1..8 bits (INT3/5/6/7, FP6, FP4, NF4, ...) with any
 * per-group scale format, stored at its own width and decoded by standard ONNX operators that onnxruntime
 * constant-folds when the session is created (every input is an initializer). The file is as small as the
 * format; at run time the consumer reads the decoded float32 weight, exactly as with DequantizeLinear
 * feeding a Conv.
 *
 * Layout (weight seen as the row matrix [rows = output channels, cols = reduction], groups of `groupSize`
 * consecutive columns, N = rows * cols):
 * - codes: `bits` planes of ceil(N / 8) bytes, uint8 [bits, ceil(N / 8), 1]; bit j of byte p of plane b is
 *   bit b of the code of element 8p + j (LSB first). 8-bit codes are stored as plain uint8 [rows, cols].
 * - integer grids: value = scale * (code - zc), zc = zero - codeBase (offset-binary codes). Symmetric: one
 *   constant zc; asymmetric: zc per group, stored as bit planes of the same width.
 * - table grids (minifloats, NF4): value = scale * T[code] (+ offset per group, float16, when asymmetric),
 *   T the format's value of each code (a shared float32 table of 2^bits entries).
 * - scales per group: float32 / float16 / bfloat16 tensors (Cast to float32), or 8-bit codes looked up in
 *   a shared table (E8M0: 2^(c - 127); FP8 E4M3: its value, times the fp32 tensor scale of NVFP4). Other
 *   scale formats (double-quantized) are stored as float32 values.
 *
 * Decoding graph (opset 18+, all CPU / WASM kernels of onnxruntime):
 *   planes -BitShift(RIGHT, [0..7])-> -BitwiseAnd(1)-> -Cast(int32)-> -Mul(2^b)-> -ReduceSum(axis 0)->
 *   -Reshape/Slice-> codes [rows, cols] -> Cast (int) or Gather(T) (table) -> (Sub zc) -> Mul scale
 *   (-> Add offset) -> Transpose or Reshape to the weight's dims, under the weight's own name.
 * Scales (and zero codes) of grouped weights are expanded to [rows, cols] by a Gather along axis 1 with the
 * column -> group index (shared int32 [cols]). The arithmetic is float32 in the same order as the
 * simulation (src/quant gridToValue), so the decoded weight equals the simulated one bit for bit.
 * With graph optimizations disabled (graphOptimizationLevel 'disabled') onnxruntime runs the decode at every
 * inference instead: same results, slower. Speed (bench/onnx.bench.ts, PP-OCRv4, 1 thread): packed int8
 * runs at fp32 speed where DequantizeLinear, which onnxruntime keeps in the graph, takes 1.7x.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../core/bits.ts';
import { MixqError } from '../../core/errors.ts';
import { getFormat } from '../../formats/index.ts';
import type { NodeProto, TensorProto } from '../../io/onnx/proto-types.ts';
import { elementGrid, type ElementGrid } from '../../quant/element.ts';
import { chooseQParams, type QParams, type QuantizerConfig, quantize } from '../../quant/index.ts';
import type { ScaleFormat } from '../../quant/scale-format.ts';
import { DT, floatBytes, int64Bytes, makeNode, makeTensor, scaleTensors } from './build.ts';

/** A weight quantized in row layout, ready to be stored bit-plane packed. */
export interface PackedQuant {
  readonly rows: number;
  readonly cols: number;
  readonly bits: number;
  /** Columns per group (cols = one group per row). */
  readonly groupSize: number;
  readonly nBlocks: number;
  readonly grid: ElementGrid;
  /** Symmetric: zero 0 / offset 0 everywhere, nothing stored for them. */
  readonly symmetric: boolean;
  /** Storage code of every element, [rows, cols] (offset binary for integer grids). */
  readonly codes: Uint16Array;
  /** Stored scale of every group, [rows, nBlocks]. */
  readonly scale: Float32Array;
  readonly scaleFormat: ScaleFormat;
  /** Scale codes / shared values as src/quant stores them (absent: derived from `scale` when exact). */
  readonly scaleCodes?: Uint32Array;
  readonly scaleShared?: Float32Array;
  /** Integer grids: zero point per group in grid units. */
  readonly zero: Float32Array;
  /** Table grids: additive offset per group. */
  readonly offset: Float32Array;
  /** The decoded weight [rows, cols]: float32(scale * (grid - zero)) or float32(float32(scale * T) + offset). */
  readonly dequant: Float32Array;
}

function fail(message: string, field: string, expected?: string): never {
  throw new MixqError(message, { source: 'packed ONNX weight', field, expected });
}

/** Group index of (r, c) in the row layout: r * nBlocks + floor(c / groupSize). */
function checkLayout(p: QParams, rows: number, cols: number, gs: number, nb: number): void {
  const idx = p.layout.index;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      if (idx[r * cols + c] !== r * nb + Math.floor(c / gs))
        fail(
          'internal: quantizer groups are not runs of columns',
          'granularity',
          'axis 0 or groups along axis 1',
        );
}

/** Columns per group of a row-layout quantizer. */
export function rowGroupSize(q: QuantizerConfig, cols: number): number {
  const g = q.granularity;
  if (g.kind === 'axis' && g.axis === 0) return cols;
  if (g.kind === 'group' && g.axis === 1) return Math.min(g.size, cols);
  return fail(
    `granularity ${JSON.stringify(g)} is not a row-layout granularity`,
    'quantizer.granularity',
    "{kind:'axis', axis:0} or {kind:'group', axis:1, size}",
  );
}

/** The values a grid gives each code (T), NaN-free: unused codes decode to 0. */
function codeTable(grid: ElementGrid): Float32Array {
  const t = new Float32Array(2 ** grid.bits);
  if (grid.kind === 'int') for (let c = 0; c < t.length; c++) t[c] = c + grid.codeBase;
  else
    for (let c = 0; c < t.length; c++) {
      const v = grid.codeValues[c];
      t[c] = v !== undefined && Number.isFinite(v) ? (v === 0 ? 0 : v) : 0;
    }
  return t;
}

/** The decode arithmetic of the graph, in JavaScript (float32 steps as onnxruntime's kernels). */
function decode(p: Omit<PackedQuant, 'dequant'>): Float32Array {
  const { grid, codes, scale, zero, offset, cols, groupSize: gs, nBlocks: nb } = p;
  const fr = Math.fround;
  const out = new Float32Array(codes.length);
  const T = codeTable(grid);
  const asymTable = grid.kind === 'table' && !p.symmetric;
  for (let i = 0; i < codes.length; i++) {
    const r = Math.floor(i / cols);
    const g = r * nb + Math.floor((i % cols) / gs);
    const s = scale[g]!;
    if (grid.kind === 'int') out[i] = fr((T[codes[i]!]! - zero[g]!) * s);
    else {
      const v = fr(T[codes[i]!]! * s);
      out[i] = asymTable ? fr(v + offset[g]!) : v;
    }
  }
  return out;
}

/** A packed weight from its parts, with the decoded weight the graph will compute. */
function withDequant(parts: Omit<PackedQuant, 'dequant'>): PackedQuant {
  return { ...parts, dequant: decode(parts) };
}

/**
 * Quantizes a row matrix with a src/quant quantizer (RTN with its own scale rule) for packed storage; its
 * `dequant` is the graph's arithmetic, which equals src/quant's fakeQuant (tests check it bit for bit).
 */
export function packedFromQuantizer(
  x: Float32Array,
  rows: number,
  cols: number,
  q: QuantizerConfig,
): PackedQuant {
  const gs = rowGroupSize(q, cols);
  const nb = Math.ceil(cols / gs);
  const params = chooseQParams(x, [rows, cols], q);
  checkLayout(params, rows, cols, gs, nb);
  const { codes } = quantize(x, params);
  return withDequant({
    rows,
    cols,
    bits: params.grid.bits,
    groupSize: gs,
    nBlocks: nb,
    grid: params.grid,
    symmetric: q.symmetric,
    codes,
    scale: params.scale,
    scaleFormat: q.scaleFormat ?? 'fp32',
    scaleCodes: params.scaleCodes,
    scaleShared: params.scaleShared,
    zero: params.zero,
    offset: params.offset,
  });
}

/**
 * Packed storage of given integer-grid codes (GPTQ's, or RTN's with a clipping search): grid value of every
 * element [rows, cols], stored scale and integer zero point per group [rows, nBlocks].
 */
export function packedFromGrid(
  qv: Int32Array,
  scale: Float32Array,
  zero: Int32Array,
  rows: number,
  cols: number,
  q: QuantizerConfig,
  field: string,
): PackedQuant {
  const gs = rowGroupSize(q, cols);
  const nb = Math.ceil(cols / gs);
  const g0 = elementGrid(q.element);
  if (g0.kind !== 'int') fail(`given codes need an integer grid, ${q.element.name} is not one`, field);
  const grid = g0;
  if (qv.length !== rows * cols) fail(`q has ${qv.length} values`, `${field}.q`, `${rows * cols}`);
  if (scale.length !== rows * nb || zero.length !== rows * nb)
    fail(`scale / zero have ${scale.length} / ${zero.length} values`, field, `${rows * nb} each`);
  const lo = grid.codeBase;
  const hi = grid.codeBase + 2 ** grid.bits - 1;
  const codes = new Uint16Array(qv.length);
  for (let i = 0; i < qv.length; i++) {
    const v = qv[i]!;
    if (v < lo || v > hi) fail(`grid value ${v} at ${i}`, `${field}.q`, `${lo}..${hi}`);
    codes[i] = v - lo;
  }
  for (let i = 0; i < zero.length; i++)
    if (zero[i]! < lo || zero[i]! > hi)
      fail(`zero point ${zero[i]} at group ${i}`, `${field}.zero`, `${lo}..${hi}`);
  return withDequant({
    rows,
    cols,
    bits: grid.bits,
    groupSize: gs,
    nBlocks: nb,
    grid,
    symmetric: q.symmetric,
    codes,
    scale,
    scaleFormat: q.scaleFormat ?? 'fp32',
    zero: Float32Array.from(zero),
    offset: new Float32Array(rows * nb),
  });
}

/** Bit planes of n-bit codes: [bits][ceil(n / 8)] bytes, bit b of code i at plane b, byte i >> 3, bit i & 7. */
export function packBitPlanes(codes: ArrayLike<number>, bits: number): Uint8Array {
  const n = codes.length;
  const P = Math.ceil(n / 8);
  const out = new Uint8Array(bits * P);
  for (let i = 0; i < n; i++) {
    const c = codes[i]!;
    if (!(c >= 0 && c < 2 ** bits)) fail(`code ${c} at ${i}`, 'codes', `0..${2 ** bits - 1}`);
    for (let b = 0; b < bits; b++) if ((c >>> b) & 1) out[b * P + (i >>> 3)]! |= 1 << (i & 7);
  }
  return out;
}

/** Inverse of packBitPlanes. */
export function unpackBitPlanes(planes: Uint8Array, bits: number, n: number): Uint16Array {
  const P = Math.ceil(n / 8);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let b = 0; b < bits; b++) c |= ((planes[b * P + (i >>> 3)]! >>> (i & 7)) & 1) << b;
    out[i] = c;
  }
  return out;
}

/** Bytes of n codes of `bits` stored as planes (8 bits: one byte each). */
export function planeBytes(n: number, bits: number): number {
  return bits === 8 ? n : bits * Math.ceil(n / 8);
}

/** How the scales of a packed weight are stored: a float tensor, or 8-bit codes into a shared table. */
type ScaleStore =
  | { kind: 'float32' }
  | { kind: 'float16' }
  | { kind: 'bfloat16' }
  | { kind: 'e8m0'; codes: Uint8Array }
  | { kind: 'e4m3'; codes: Uint8Array; global: number };

/** Whether every value survives storage as a 16-bit float (fp16 or bf16) unchanged. */
function exactIn(type: 'float16' | 'bfloat16', v: Float32Array): boolean {
  const [to, back] = type === 'float16' ? [f32ToF16Bits, f16BitsToF32] : [f32ToBf16Bits, bf16BitsToF32];
  return v.every((x) => Object.is(back(to(x)), x));
}

/** The compact scale storage that reproduces `scale` exactly, else float32. */
function scaleStore(p: PackedQuant): ScaleStore {
  const f = p.scaleFormat;
  const s = p.scale;
  if (f === 'fp16' && exactIn('float16', s)) return { kind: 'float16' };
  if (f === 'bf16' && exactIn('bfloat16', s)) return { kind: 'bfloat16' };
  if (f === 'e8m0') {
    const codes = Uint8Array.from(s, (v) => Math.log2(v) + 127);
    if (codes.every((c, i) => 2 ** (c - 127) === s[i]!)) return { kind: 'e8m0', codes };
  }
  if (f === 'fp8_e4m3fn' && p.scaleCodes && p.scaleShared && p.scaleShared.length === 1) {
    const global = p.scaleShared[0]!;
    const T = e4m3Values();
    const codes = Uint8Array.from(p.scaleCodes);
    if (codes.length === s.length && codes.every((c, i) => Math.fround(T[c]! * global) === s[i]!))
      return { kind: 'e4m3', codes, global };
  }
  return { kind: 'float32' };
}

let e4m3Table: Float32Array | undefined;
function e4m3Values(): Float32Array {
  e4m3Table ??= codeTable(elementGrid(getFormat('fp8_e4m3fn')));
  return e4m3Table;
}

function e8m0Values(): Float32Array {
  const t = new Float32Array(256);
  for (let c = 0; c < 255; c++) t[c] = 2 ** (c - 127);
  return t; // code 255 (NaN) is never stored; 0 keeps the table finite
}

/** Bytes a packed weight stores (codes, scales, zero points / offsets): onnxStorage formula. */
export function packedStorage(
  rows: number,
  cols: number,
  q: QuantizerConfig,
): { codeBytes: number; scaleBytes: number; zeroPointBytes: number } {
  const grid = elementGrid(q.element);
  const gs = rowGroupSize(q, cols);
  const groups = rows * Math.ceil(cols / gs);
  const f = q.scaleFormat ?? 'fp32';
  const sw = f === 'fp16' || f === 'bf16' ? 2 : f === 'e8m0' ? 1 : f === 'fp8_e4m3fn' ? 1 : 4;
  const scaleBytes = groups * sw + (f === 'fp8_e4m3fn' ? 4 : 0);
  const zeroPointBytes = q.symmetric ? 0 : grid.kind === 'int' ? planeBytes(groups, grid.bits) : 2 * groups;
  return { codeBytes: planeBytes(rows * cols, grid.bits), scaleBytes, zeroPointBytes };
}

/** Where decode nodes and initializers go, with a cache of shared constants (tables, indices). */
export interface PackedEmitter {
  readonly fresh: (base: string) => string;
  readonly inits: TensorProto[];
  readonly front: NodeProto[];
  readonly shared: Map<string, string>;
}

function constant(e: PackedEmitter, key: string, make: (name: string) => TensorProto): string {
  let name = e.shared.get(key);
  if (!name) {
    name = e.fresh(`mixq_${key}`);
    e.inits.push(make(name));
    e.shared.set(key, name);
  }
  return name;
}

const i64 = (e: PackedEmitter, values: readonly number[]): string =>
  constant(e, `i64_${values.join('_')}`, (n) => makeTensor(n, DT.INT64, [values.length], int64Bytes(values)));

function i32Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) v.setInt32(4 * i, values[i]!, true);
  return out;
}

function floatTable(e: PackedEmitter, key: string, values: Float32Array): string {
  return constant(e, key, (n) => makeTensor(n, DT.FLOAT, [values.length], floatBytes(values, 'float32')));
}

function scalar(e: PackedEmitter, v: number): string {
  return constant(e, `f32_${v}`, (n) =>
    makeTensor(n, DT.FLOAT, [], floatBytes(Float32Array.of(v), 'float32')),
  );
}

/** Appends one node to the decode graph; its output is `out` or a fresh `<base>_<suffix>`. */
function emitNode(
  e: PackedEmitter,
  base: string,
  op: string,
  inputs: string[],
  suffix: string,
  attrs?: Record<string, number | string | number[]>,
  out?: string,
): string {
  const o = out ?? e.fresh(`${base}_${suffix}`);
  e.front.push(
    makeNode(op, inputs, [o], { name: e.fresh(`${base}_${suffix}_${op}`), ...(attrs ? { attrs } : {}) }),
  );
  return o;
}

/**
 * Emits the decode of n codes of `bits` (bit planes, or plain uint8 for 8 bits) to an int32 tensor of
 * `shape`. Returns the output name and the stored bytes.
 */
function emitCodes(
  e: PackedEmitter,
  base: string,
  codes: ArrayLike<number>,
  bits: number,
  shape: readonly number[],
): { out: string; bytes: number } {
  const n = codes.length;
  const node = (op: string, inputs: string[], suffix: string, attrs?: Record<string, number | string>) =>
    emitNode(e, base, op, inputs, suffix, attrs);
  if (bits === 8) {
    const t = e.fresh(`${base}_u8`);
    e.inits.push(makeTensor(t, DT.UINT8, shape, Uint8Array.from(codes)));
    return { out: node('Cast', [t], 'i32', { to: DT.INT32 }), bytes: n };
  }
  const P = Math.ceil(n / 8);
  const planes = e.fresh(`${base}_planes${bits}`);
  const data = packBitPlanes(codes, bits);
  e.inits.push(makeTensor(planes, DT.UINT8, [bits, P, 1], data));
  const shifts = constant(e, 'u8_shifts', (nm) =>
    makeTensor(nm, DT.UINT8, [8], Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7)),
  );
  const one = constant(e, 'u8_one', (nm) => makeTensor(nm, DT.UINT8, [], Uint8Array.of(1)));
  const pow2 = constant(e, `i32_pow2_${bits}`, (nm) =>
    makeTensor(nm, DT.INT32, [bits, 1, 1], i32Bytes(Array.from({ length: bits }, (_, b) => 2 ** b))),
  );
  const shifted = node('BitShift', [planes, shifts], 'bits', { direction: 'RIGHT' });
  const masked = node('BitwiseAnd', [shifted, one], 'bit');
  const wide = node('Cast', [masked], 'bit_i32', { to: DT.INT32 });
  const weighted = node('Mul', [wide, pow2], 'weighted');
  const summed = node('ReduceSum', [weighted, i64(e, [0])], 'code8', { keepdims: 0 });
  let flat = node('Reshape', [summed, i64(e, [P * 8])], 'flat');
  if (P * 8 !== n) flat = node('Slice', [flat, i64(e, [0]), i64(e, [n]), i64(e, [0])], 'codes_flat');
  return { out: node('Reshape', [flat, i64(e, shape)], 'codes'), bytes: data.length };
}

/**
 * Emits the decoding graph of a packed weight; its output is named `output` and has `dims` (orient 'cols':
 * the tensor is the transpose of the row matrix, as MatMul B [K, N]). Returns the stored bytes.
 */
export function emitPackedDecode(
  e: PackedEmitter,
  p: PackedQuant,
  output: string,
  dims: readonly number[],
  orient: 'rows' | 'cols',
): { codeBytes: number; scaleBytes: number; zeroPointBytes: number } {
  const base = output;
  const { rows, cols, nBlocks: nb, grid } = p;
  const node = (
    op: string,
    inputs: string[],
    suffix: string,
    attrs?: Record<string, number | string | number[]>,
    out?: string,
  ) => emitNode(e, base, op, inputs, suffix, attrs, out);
  // per-group tensor [rows, nb] -> broadcastable against [rows, cols]
  const expand = (t: string, suffix: string): string => {
    if (nb === 1) return t; // stored [rows, 1]
    const gidx = constant(e, `gidx_${cols}_${p.groupSize}`, (nm) =>
      makeTensor(
        nm,
        DT.INT32,
        [cols],
        i32Bytes(Array.from({ length: cols }, (_, c) => Math.floor(c / p.groupSize))),
      ),
    );
    return node('Gather', [t, gidx], `${suffix}_cols`, { axis: 1 });
  };
  const gshape = [rows, nb];
  // element values
  const codes = emitCodes(e, base, p.codes, p.bits, [rows, cols]);
  let values: string;
  if (grid.kind === 'int') values = node('Cast', [codes.out], 'grid', { to: DT.FLOAT });
  else
    values = node('Gather', [floatTable(e, `T_${grid.spec.name}`, codeTable(grid)), codes.out], 'grid', {
      axis: 0,
    });
  // scales
  const st = scaleStore(p);
  let scale: string;
  let scaleBytes: number;
  if (st.kind === 'float32' || st.kind === 'float16' || st.kind === 'bfloat16') {
    scale = scaleTensors(e.fresh, e.fresh(`${base}_scale`), p.scale, gshape, st.kind, e.inits, e.front);
    scaleBytes = (st.kind === 'float32' ? 4 : 2) * p.scale.length;
  } else {
    const t = e.fresh(`${base}_scale_codes`);
    e.inits.push(makeTensor(t, DT.UINT8, gshape, st.codes));
    const idx = node('Cast', [t], 'scale_idx', { to: DT.INT32 });
    const table =
      st.kind === 'e8m0'
        ? floatTable(e, 'T_e8m0', e8m0Values())
        : floatTable(e, 'T_fp8_e4m3fn', e4m3Values());
    scale = node('Gather', [table, idx], 'scale_f32', { axis: 0 });
    scaleBytes = st.codes.length;
    if (st.kind === 'e4m3') {
      const g = e.fresh(`${base}_scale_global`);
      e.inits.push(makeTensor(g, DT.FLOAT, [], floatBytes(Float32Array.of(st.global), 'float32')));
      scale = node('Mul', [scale, g], 'scale_global');
      scaleBytes += 4;
    }
  }
  const S = expand(scale, 'scale');
  let zeroPointBytes = 0;
  let decoded: string;
  if (grid.kind === 'int') {
    // zc = zero - codeBase per group (an integer); value = (code - zc) * scale
    const zc = Float32Array.from(p.zero, (z) => z - grid.codeBase);
    let Z: string;
    if (p.symmetric) {
      if (p.zero.some((z) => z !== 0)) fail('a symmetric weight has a nonzero zero point', 'zero', '0');
      Z = scalar(e, -grid.codeBase);
    } else {
      const zcodes = emitCodes(e, `${base}_zero`, zc, p.bits, gshape);
      zeroPointBytes = zcodes.bytes;
      Z = expand(node('Cast', [zcodes.out], 'zero_f32', { to: DT.FLOAT }), 'zero');
    }
    decoded = node('Mul', [node('Sub', [values, Z], 'centered'), S], 'rows');
  } else {
    decoded = node('Mul', [values, S], 'rows');
    if (!p.symmetric) {
      const type = exactIn('float16', p.offset) ? 'float16' : 'float32';
      const off = scaleTensors(e.fresh, e.fresh(`${base}_offset`), p.offset, gshape, type, e.inits, e.front);
      zeroPointBytes = (type === 'float16' ? 2 : 4) * p.offset.length;
      decoded = node('Add', [decoded, expand(off, 'offset')], 'rows_offset');
    }
  }
  if (orient === 'cols') node('Transpose', [decoded], 'T', { perm: [1, 0] }, output);
  else node('Reshape', [decoded, i64(e, dims)], 'dims', undefined, output);
  return { codeBytes: codes.bytes, scaleBytes, zeroPointBytes };
}

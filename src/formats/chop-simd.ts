/**
 * WebAssembly SIMD128 kernel for round-to-nearest-even chop of float32 data, four lanes at a time.
 * It computes exactly what the TypeScript fast path in chop-fast.ts computes (that path, and the plain
 * reference, stay beside it; test/formats/chop-fast.test.ts checks all three against each other):
 *
 *   a = bits & 0x7fffffff
 *   normal window lo <= a < hi:  (bits + (2^(D-1) - 1) + ((bits >> D) & 1)) & ~(2^D - 1)  (sign included:
 *                                 no carry reaches bit 31 below hi)
 *   below lo (subnormal results), three ways fixed per kernel (SubnormalLane):
 *     'int'    the same integer formula, exact when the target's emin is float32's (bf16, tf32);
 *     'fpu'    (f32(a + C) - C) | sign, C = 2^(emin - M + 23): one IEEE float32 addition rounds a to
 *              the target's subnormal step, ties to even (fp16, fp8, ...);
 *     'refuse' an exception (subnormals off or flushed).
 *   anything else (a >= hi: overflow region, inf, NaN): the group's byte offset is appended to an
 *   exception list and the caller recomputes its SIMD_BLOCK lanes with the reference.
 *
 * Speed (issue 2): the common path is one pass of 9 SIMD instructions per 4 lanes (load, 5 for the
 * integer formula, store, and a range key `x << 1` folded into an unsigned max); the group of UNROLL
 * blocks keeps its inputs in registers, and one compare of the max at the end of the group finds lanes
 * needing more (a >= hi, or a < lo unless 'int'). Behind that rarely taken branch the inputs are stored
 * back and the group is redone by the full pass (FPU lane, exception bookkeeping). Constants (D, lo, hi,
 * C) are baked into each module, so the shift is an immediate, and the constant vectors reach the loop as
 * parameters of an inner function, so V8 keeps them in registers (it rematerializes constant splats
 * inside the loop otherwise). Measured kernel alone, in place on 64K L2-resident elements, standard normal
 * data, paired in one process (scratch/kab.ts): bf16 ~3.35 G/s, fp16 ~3.1 G/s, against 2.6 and 2.37 for
 * the earlier detection-pass-then-rounding-pass kernel. On this shared VM every compute loop also has
 * phases of roughly half speed (same code, same data, same process; not code placement, not anything on
 * the guest's other core: host-level contention), where these become ~1.7 and ~1.5 G/s.
 *
 * The module is a few hundred bytes, assembled below from annotated opcodes (no build step, no binary blob
 * to trust). It imports its memory, so one memory serves kernels of every constant set: a shared scratch
 * memory for `chop` on JavaScript arrays (chunks copied in, rounded in place, copied out), and one memory
 * per `chopBuffer` (data already in WebAssembly memory, rounded in place with no copy). Memory layout:
 * [0, DATA) the exception list (one i32 per exceptional group of the current call), data from DATA on.
 * WebAssembly SIMD is in Node >= 16.4 and all current browsers; without it chop falls back to the
 * TypeScript path.
 *
 * Opcodes: WebAssembly core spec 1.0 (binary format, section 5.4) and the SIMD proposal's opcode table
 * (v128.load 0xfd 0x00, i32x4.shr_u 0xfd 173, f32x4.add 0xfd 228, ...).
 */

/**
 * Elements per kernel call, and per chunk copied into the scratch memory by `chop` (256 KB: L2-resident).
 * Measured (bench/formats, 10 M values, copy + kernel + copy): 2K-64K element chunks alike within noise
 * (+-10% run to run); the kernel alone runs at the same ~2.4 G/s from 2K (L1) to 64K (L2) elements per
 * call, so the per-call overhead is negligible at these sizes.
 */
export const CHUNK = 1 << 16;
/**
 * 4-lane blocks per kernel loop iteration. Unrolling pays V8's loop-header check (stack guard) and the
 * unusual-lane branch once per group. 8 is the most that fits: the group's 8 inputs, 4-5 constants, the
 * max and 2 temporaries take 15-16 of the 16 xmm registers V8 uses (earlier two-pass kernel, measured in
 * place, bf16: 2 blocks ~1.5 G/s, 4 ~1.85, 8 ~2.35; 16 spilled).
 */
const UNROLL = 8;
/** Elements per kernel iteration; the driver passes chunk lengths that are multiples of it. */
export const SIMD_BLOCK = 4 * UNROLL;
/** Exception list offset (bytes): one i32 per exceptional group of one call (at most CHUNK elements). */
const EXC = 0;
/** First data byte in a kernel memory (after the exception list; a multiple of 64, cache-line aligned). */
export const DATA = (CHUNK / SIMD_BLOCK) * 4;
const PAGE = 65536;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function str(s: string): number[] {
  return [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
}

// Instruction helpers (opcode bytes).
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const i32const = (v: number) => [0x41, ...sleb(v | 0)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128Load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)]; // align 2^4
const v128Store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)];
const I32X4_SPLAT = simd(0x11);
const F32X4_SPLAT = simd(0x13);
const I32X4_GT_S = simd(0x3b);
const I32X4_GE_U = simd(0x40);
const V128_AND = simd(0x4e);
const V128_OR = simd(0x50);
const V128_XOR = simd(0x51);
const V128_BITSELECT = simd(0x52);
const V128_ANY_TRUE = simd(0x53);
const I32X4_BITMASK = simd(164);
const I32X4_SHL = simd(171);
const I32X4_SHR_U = simd(173);
const I32X4_ADD = simd(174);
const I32X4_MAX_U = simd(185);
const F32X4_ADD = simd(228);
const F32X4_SUB = simd(229);
const I32_ADD = [0x6a];
const I32_SHL = [0x74];
const I32_LT_U = [0x49];
const I32_STORE_EXC = [0x36, 2, ...uleb(EXC)]; // i32.store align 4, offset EXC
const END = [0x0b];

/**
 * How lanes below lo (the target's min normal, at least float32's) are handled:
 * - 'int': by the same integer formula. Exact when the target's emin is float32's (-126: bf16, tf32):
 *   float32 subnormals are then on the target's subnormal grid with the same D dropped bits, and a carry
 *   out of the mantissa lands on min normal. The window is [0, hi).
 * - 'fpu': f32(|x| + C) - C, | s (targets with a narrower exponent range: fp16, fp8, ...).
 * - 'refuse': exceptions (subnormals off or flushed).
 */
export type SubnormalLane = 'int' | 'fpu' | 'refuse';

/** Constants baked into one kernel module (the shift count must be an immediate for a single psrld). */
export interface RneParams {
  readonly lo: number;
  readonly hi: number;
  readonly D: number;
  readonly C: number;
  readonly sub: SubnormalLane;
}

// The kernel is two functions: the exported `rne(end, start)` splats the constant vectors and calls
// `kernel(end, start, one, bias, keep, offset, threshold)`, whose parameters the compiler cannot see
// through, so the constants stay in registers for the whole loop (V8's TurboFan rematerializes a constant
// splat at its uses inside the loop otherwise: 3 instructions per constant per iteration).
// (Should a later V8 inline the inner function, that overhead may return: ~12% slower, same results.)
// Kernel locals: parameters 0 end (bytes), 1 i (start byte, advanced by the loop), 2 one, 3 bias,
// 4 keep, 5 range offset, 6 range threshold; 7 count (i32); v128: 8 range accumulator of the group,
// 9 a, 10 exceptional lanes of the group, 11 x (full pass), 12 ... 12 + UNROLL - 1 the group's inputs.
//
// Common path, one pass: each block is loaded once, its range key 2a - 2lo (the shift drops the sign)
// folded into a running unsigned max, and its integer-formula result stored at once; the group's inputs
// stay in registers. At the end of the group one unsigned compare of the max tells whether any lane was
// unusual; then (rarely) the inputs are stored back and the group is redone by the exceptional/full pass
// from memory.
const [END_, I, ONE, BIAS, KEEP, OFF, THR] = [0, 1, 2, 3, 4, 5, 6] as const;
const [COUNT, ACC, A, EXCL, XF, X] = [7, 8, 9, 10, 11, 12] as const;
function rneBody(p: RneParams): number[] {
  const bias = (1 << (p.D - 1)) - 1;
  const keep = ~((1 << p.D) - 1);
  // "Unusual" lanes need more than the integer formula: a >= hi always, and a < lo unless the integer
  // formula covers it ('int'). Both at once is one unsigned range test (a - lo) >=u (hi - lo), done on
  // 2a = x << 1 (sign dropped, no mask): 2a - 2lo >=u 2(hi - lo) (2 hi < 2^32). With lo = 0 ('int') it
  // is 2a >=u 2 hi. The test is monotone, so the max over the group's keys decides for the group.
  const loU = p.sub === 'int' ? 0 : p.lo;
  const offset = (-2 * loU) | 0;
  const threshold = (2 * (p.hi - loU)) | 0;
  const splat = (v: number) => [...i32const(v), ...I32X4_SPLAT];
  const load = (k: number) => [...get(I), ...v128Load(16 * k)];
  const store = (k: number, value: number[]) => [...get(I), ...value, ...v128Store(16 * k)];
  // normal result ((x + bias + ((x >> D) & 1)) & keep) of x (code pushing it, then code pushing it again):
  // on x itself, sign included, since a < hi <= 0x7f7fffff means no carry can reach the sign bit
  const normal = (x: number[], again = x) => [
    ...[...x, ...get(BIAS), ...I32X4_ADD],
    ...[...again, ...i32const(p.D), ...I32X4_SHR_U, ...get(ONE), ...V128_AND, ...I32X4_ADD],
    ...[...get(KEEP), ...V128_AND],
  ];
  const blocks = [...Array(UNROLL).keys()];
  // common path, block k: load, fold the range key into ACC, store the integer-formula result
  const common = (k: number): number[] => [
    ...[...load(k), ...set(X + k)],
    ...[...get(X + k), ...i32const(1), ...I32X4_SHL],
    ...(loU === 0 ? [] : [...get(OFF), ...I32X4_ADD]),
    ...(k === 0 ? set(ACC) : [...get(ACC), ...I32X4_MAX_U, ...set(ACC)]),
    ...store(k, normal(get(X + k))),
  ];
  // rare path: the inputs back, then exceptions: a > hi - 1, plus a < lo when subnormals are refused
  // (constants splatted here: this path is rare)
  const restore = (k: number): number[] => store(k, get(X + k));
  const exceptional = (k: number): number[] => [
    ...[...load(k), ...splat(0x7fffffff), ...V128_AND, ...tee(A), ...splat(p.hi - 1), ...I32X4_GT_S],
    ...(p.sub === 'refuse' ? [...splat(p.lo), ...get(A), ...I32X4_GT_S, ...V128_OR] : []),
    ...(k === 0 ? set(EXCL) : [...get(EXCL), ...V128_OR, ...set(EXCL)]),
  ];
  // full pass, no exception in the group: subnormal results by the FPU lane
  // r = a < lo ? (f32(a) + C - C) | s : normal, with s = x ^ a
  const full = (k: number): number[] =>
    p.sub !== 'fpu'
      ? store(k, normal([...load(k), ...tee(XF)], get(XF)))
      : [
          ...[...load(k), ...tee(XF), ...splat(0x7fffffff), ...V128_AND, ...set(A)],
          ...store(k, [
            ...[...get(A), 0x43, ...f32Bytes(p.C), ...F32X4_SPLAT, ...F32X4_ADD],
            ...[0x43, ...f32Bytes(p.C), ...F32X4_SPLAT, ...F32X4_SUB],
            ...[...get(XF), ...get(A), ...V128_XOR, ...V128_OR],
            ...normal(get(XF)),
            ...[...splat(p.lo), ...get(A), ...I32X4_GT_S, ...V128_BITSELECT],
          ]),
        ];
  const code: number[][] = [
    // if (i < end) loop {
    [...get(I), ...get(END_), ...I32_LT_U, 0x04, 0x40, 0x03, 0x40],
    ...blocks.map(common),
    // if (any lane unusual) {
    [...get(ACC), ...get(THR), ...I32X4_GE_U, ...I32X4_BITMASK, 0x04, 0x40],
    ...blocks.map(restore),
    ...blocks.map(exceptional),
    //   if (any exception) exceptions[count++] = i (the group keeps its inputs for the caller's
    //   reference pass) else full pass
    [...get(EXCL), ...V128_ANY_TRUE, 0x04, 0x40],
    [...get(COUNT), ...i32const(2), ...I32_SHL, ...get(I), ...I32_STORE_EXC],
    [...get(COUNT), ...i32const(1), ...I32_ADD, ...set(COUNT)],
    [0x05], // else
    ...blocks.map(full),
    [...END],
    [...END],
    // i += 16 * UNROLL; continue while i < end }
    [...get(I), ...i32const(16 * UNROLL), ...I32_ADD, ...tee(I), ...get(END_), ...I32_LT_U, 0x0d, 0],
    [...END, ...END],
    [...get(COUNT), ...END],
  ];
  const locals = [2, 1, 0x7f, ...uleb(X + UNROLL - ACC), 0x7b]; // 1 i32, 4 + UNROLL v128
  const body = [...locals, ...code.flat()];
  // rne(end, start) = kernel(end, start, ...constant vectors)
  const constants = [1, bias, keep, offset, threshold].flatMap(splat);
  const wrapper = [0, ...get(0), ...get(1), ...constants, 0x10, 0, ...END];
  return [...uleb(body.length), ...body, ...uleb(wrapper.length), ...wrapper];
}

function f32Bytes(v: number): number[] {
  return [...new Uint8Array(Float32Array.of(v).buffer)];
}

function moduleBytes(p: RneParams): Uint8Array {
  // type 0: rne (i32 end, i32 start) -> i32; type 1: kernel (i32, i32, 5 x v128) -> i32
  const type = [2, 0x60, 2, 0x7f, 0x7f, 1, 0x7f, 0x60, 7, 0x7f, 0x7f, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b, 1, 0x7f];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, type),
    ...section(2, [1, ...str('env'), ...str('mem'), 0x02, 0x00, 1]), // import memory env.mem, min 1 page
    ...section(3, [2, 1, 0]), // function 0 kernel (type 1), function 1 rne (type 0)
    ...section(7, [1, ...str('rne'), 0x00, 1]),
    ...section(10, [2, ...rneBody(p)]),
  ];
  return Uint8Array.from(bytes);
}

/**
 * Rounds the bytes [start, end) of its memory in place (start >= DATA, end - start a multiple of
 * 4 * SIMD_BLOCK and at most 4 * CHUNK) and returns the number of exceptional groups: their byte offsets
 * are at i32[0 ...], and their SIMD_BLOCK lanes still hold the inputs (the caller rounds them).
 */
export type RneFn = (end: number, start: number) => number;

/** The part of the WebAssembly JS API used here (declared locally: the ES2022 lib has no WebAssembly). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number }) => WasmMemory;
}

const wasmApi = (): WasmApi | undefined => (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/**
 * A WebAssembly memory that kernels of any constant set run on: the exception list, then data from byte
 * DATA. `f32` and `i32` view the whole memory; growing replaces the buffer (views of the old one are
 * detached), and `refresh` re-reads it.
 */
export class KernelMemory {
  f32: Float32Array;
  i32: Int32Array;
  private buffer: ArrayBuffer;
  private readonly kernels = new Map<string, RneFn | null>();
  constructor(private readonly memory: WasmMemory) {
    this.buffer = memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    homes.set(this.buffer, this);
  }
  /** Data capacity in float32 elements. */
  get capacity(): number {
    return (this.memory.buffer.byteLength - DATA) >>> 2;
  }
  /** Grows the memory to hold at least `elements` float32 data values (detaching the old buffer). */
  reserve(elements: number): void {
    const need = Math.ceil((DATA + 4 * elements) / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) this.memory.grow(need);
    this.refresh();
  }
  refresh(): void {
    if (this.memory.buffer === this.buffer) return;
    this.buffer = this.memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    homes.set(this.buffer, this);
  }
  /** The kernel for these constants on this memory (instantiated once), or null without SIMD. */
  kernel(p: RneParams): RneFn | null {
    const key = `${p.sub} ${p.D} ${p.lo} ${p.hi} ${p.C}`;
    let k = this.kernels.get(key);
    if (k === undefined) {
      k = instantiate(p, key, this.memory);
      this.kernels.set(key, k);
    }
    return k;
  }
}

/** Kernel memories by their current buffer, so chop can tell data already in WebAssembly memory. */
const homes = new WeakMap<ArrayBufferLike, KernelMemory>();
const modules = new Map<string, object | null>();

function instantiate(p: RneParams, key: string, memory: WasmMemory): RneFn | null {
  try {
    const wasm = wasmApi();
    if (!wasm) return null;
    let mod = modules.get(key);
    if (mod === undefined) {
      const bytes = moduleBytes(p);
      mod = wasm.validate(bytes) ? new wasm.Module(bytes) : null;
      modules.set(key, mod);
    }
    if (mod === null) return null;
    return new wasm.Instance(mod, { env: { mem: memory } }).exports.rne as RneFn;
  } catch {
    return null;
  }
}

let available: boolean | undefined;
let scratch: KernelMemory | null | undefined;

/**
 * A new kernel memory with room for `elements` float32 data values, or null where WebAssembly SIMD is
 * unavailable (or the memory cannot be allocated).
 */
export function kernelMemory(elements: number): KernelMemory | null {
  if (!simdAvailable()) return null;
  return newMemory(elements);
}

function newMemory(elements: number): KernelMemory | null {
  try {
    const wasm = wasmApi();
    if (!wasm) return null;
    return new KernelMemory(
      new wasm.Memory({ initial: Math.max(1, Math.ceil((DATA + 4 * elements) / PAGE)) }),
    );
  } catch {
    return null;
  }
}

/** Whether WebAssembly SIMD works here (checked once by building a kernel). */
export function simdAvailable(): boolean {
  if (available === undefined) {
    const m = newMemory(CHUNK);
    available = m?.kernel({ lo: 0x00800000, hi: 0x7f7f0000, D: 16, C: 1, sub: 'int' }) != null;
    scratch = available ? m : null;
  }
  return available;
}

/** The shared scratch memory (CHUNK data elements) that `chop` copies JavaScript arrays through. */
export function scratchMemory(): KernelMemory | null {
  simdAvailable();
  return scratch ?? null;
}

/** The kernel memory whose current buffer is `buffer`, if any (data already in WebAssembly memory). */
export function memoryOf(buffer: ArrayBufferLike): KernelMemory | undefined {
  return homes.get(buffer);
}

/**
 * Rounds `length` float32 values (a multiple of SIMD_BLOCK) at byte `byteOffset` (>= DATA) of `mem` in
 * place with `rne`, CHUNK elements per call; exceptional groups are rounded by `slow` (the reference).
 */
export function rneInPlace(
  mem: KernelMemory,
  rne: RneFn,
  byteOffset: number,
  length: number,
  slow: (x: number, u32: number) => number,
): void {
  for (let c = 0; c < length; c += CHUNK) {
    const start = byteOffset + 4 * c;
    const count = rne(start + 4 * Math.min(CHUNK, length - c), start);
    if (count === 0) continue;
    const { f32, i32 } = mem;
    for (let k = 0; k < count; k++) {
      const e = i32[k]! >>> 2;
      for (let l = e; l < e + SIMD_BLOCK; l++) f32[l] = slow(f32[l]!, 0);
    }
  }
}

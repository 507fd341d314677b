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
 * Speed (issue 2): the common path is ~9 SIMD instructions per 4 lanes. Lanes needing more (a >= hi, or
 * a < lo unless 'int') are found by one range test per block in a detection pass over a group of UNROLL
 * blocks; the group is then rounded by the integer formula alone (common) or, behind one rarely taken
 * branch, by the full pass (FPU lane, exception bookkeeping). Constants (D, lo, hi, C) are baked into each
 * module, so the shift is an immediate and nothing is re-splatted in the common loop. Measured kernel
 * alone, in place on 64K L2-resident elements, standard normal data: bf16 ~2.6 G/s, fp16 ~2.35 G/s (it
 * was ~1.9 when the group's results were held across the branch: register spills).
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
 * unusual-lane branch once per group; measured kernel-only speed in place (bf16, 64K chunk): 2 blocks
 * ~1.5 G/s, 4 ~1.85, 8 ~2.35, 16 ~2.5 but fp16 drops to ~1.0 (register spills: V8 uses 16 xmm registers).
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
const V128_AND = simd(0x4e);
const V128_OR = simd(0x50);
const V128_XOR = simd(0x51);
const V128_BITSELECT = simd(0x52);
const V128_ANY_TRUE = simd(0x53);
const I32X4_SHR_U = simd(173);
const I32X4_ADD = simd(174);
const F32X4_ADD = simd(228);
const F32X4_SUB = simd(229);
const I32_ADD = [0x6a];
const I32_SHL = [0x74];
const I32_GE_U = [0x4f];
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

// Locals: 0 end (param, bytes), 1 i (param: start byte, advanced by the loop); i32: 2 count;
// v128: 3 absMask, 4 one, 5 bias, 6 keep, 7 range shift, 8 range threshold, 9 unusual lanes of the group,
// 10 x, 11 a, 12 exceptional lanes of the group.
//
// Each group of UNROLL blocks is read twice: a detection pass (range test only) and then either the
// common pass (integer formula, stored block by block) or, rarely, the full pass. Nothing but the
// constants of the pass in progress is live across blocks, so V8 keeps everything in xmm registers
// (holding UNROLL results across the branch spilled in the FPU variant); the second load hits L1.
function rneBody(p: RneParams): number[] {
  const bias = (1 << (p.D - 1)) - 1;
  const keep = ~((1 << p.D) - 1);
  // "Unusual" lanes need more than the integer formula: a >= hi always, and a < lo unless the integer
  // formula covers it ('int'). Both at once is one unsigned range test (a - lo) >=u (hi - lo); SSE has
  // no unsigned compare, so flip the sign bit: a + (2^31 - lo) >s (hi - lo - 2^31 - 1). With lo = 0
  // ('int') it is a >s hi - 1 (a >= 0), one instruction.
  const loU = p.sub === 'int' ? 0 : p.lo;
  const shift = (0x80000000 - loU) | 0;
  const threshold = loU === 0 ? (p.hi - 1) | 0 : (p.hi - loU - 0x80000000 - 1) | 0;
  const splat = (v: number) => [...i32const(v), ...I32X4_SPLAT];
  const load = (k: number) => [...get(1), ...v128Load(16 * k)];
  const store = (k: number, value: number[]) => [...get(1), ...value, ...v128Store(16 * k)];
  // normal result ((x + bias + ((x >> D) & 1)) & keep) of x (code pushing it, then code pushing it again):
  // on x itself, sign
  // included, since a < hi <= 0x7f7fffff means no carry can reach the sign bit
  const normal = (x: number[], again = x) => [
    ...[...x, ...get(5), ...I32X4_ADD],
    ...[...again, ...i32const(p.D), ...I32X4_SHR_U, ...get(4), ...V128_AND, ...I32X4_ADD],
    ...[...get(6), ...V128_AND],
  ];
  const blocks = [...Array(UNROLL).keys()];
  // detection: unusual lanes of the group, accumulated in local 9
  const detect = (k: number): number[] => [
    ...load(k),
    ...get(3),
    ...V128_AND,
    ...(loU === 0 ? [] : [...get(7), ...I32X4_ADD]),
    ...get(8),
    ...I32X4_GT_S,
    ...(k === 0 ? set(9) : [...get(9), ...V128_OR, ...set(9)]),
  ];
  // full pass, exceptions: a > hi - 1, plus a < lo when subnormals are refused (constants splatted here:
  // this path is rare, and keeping them in locals would cost registers on the common one)
  const exceptional = (k: number): number[] => [
    ...[...load(k), ...get(3), ...V128_AND, ...tee(11), ...splat(p.hi - 1), ...I32X4_GT_S],
    ...(p.sub === 'refuse' ? [...splat(p.lo), ...get(11), ...I32X4_GT_S, ...V128_OR] : []),
    ...(k === 0 ? set(12) : [...get(12), ...V128_OR, ...set(12)]),
  ];
  // full pass, no exception in the group: subnormal results by the FPU lane
  // r = a < lo ? (f32(a) + C - C) | s : normal, with s = x ^ a
  const full = (k: number): number[] =>
    p.sub !== 'fpu'
      ? store(k, normal([...load(k), ...tee(10)], get(10)))
      : [
          ...[...load(k), ...tee(10), ...get(3), ...V128_AND, ...set(11)],
          ...store(k, [
            ...[...get(11), 0x43, ...f32Bytes(p.C), ...F32X4_SPLAT, ...F32X4_ADD],
            ...[0x43, ...f32Bytes(p.C), ...F32X4_SPLAT, ...F32X4_SUB],
            ...[...get(10), ...get(11), ...V128_XOR, ...V128_OR],
            ...normal(get(10)),
            ...[...splat(p.lo), ...get(11), ...I32X4_GT_S, ...V128_BITSELECT],
          ]),
        ];
  const code: number[][] = [
    // constant vectors of the common path, splatted once outside the loop
    [...splat(0x7fffffff), ...set(3)],
    [...splat(1), ...set(4)],
    [...splat(bias), ...set(5)],
    [...splat(keep), ...set(6)],
    [...splat(shift), ...set(7)],
    [...splat(threshold), ...set(8)],
    // block { loop { if (i >= end) break;
    [0x02, 0x40, 0x03, 0x40],
    [...get(1), ...get(0), ...I32_GE_U, 0x0d, 1],
    ...blocks.map(detect),
    // if (any lane unusual) {
    [...get(9), ...V128_ANY_TRUE, 0x04, 0x40],
    ...blocks.map(exceptional),
    //   if (any exception) exceptions[count++] = i (the group is not stored: its lanes keep their
    //   inputs for the caller's reference pass) else full pass
    [...get(12), ...V128_ANY_TRUE, 0x04, 0x40],
    [...get(2), ...i32const(2), ...I32_SHL, ...get(1), ...I32_STORE_EXC],
    [...get(2), ...i32const(1), ...I32_ADD, ...set(2)],
    [0x05], // else
    ...blocks.map(full),
    [...END],
    // } else common pass
    [0x05],
    ...blocks.map((k) => store(k, normal([...load(k), ...tee(10)], get(10)))),
    [...END],
    // i += 16 * UNROLL; continue } }
    [...get(1), ...i32const(16 * UNROLL), ...I32_ADD, ...set(1), 0x0c, 0],
    [...END, ...END],
    [...get(2), ...END],
  ];
  const locals = [2, ...uleb(1), 0x7f, ...uleb(10), 0x7b]; // 1 i32, 10 v128
  const body = [...locals, ...code.flat()];
  return [...uleb(body.length), ...body];
}

function f32Bytes(v: number): number[] {
  return [...new Uint8Array(Float32Array.of(v).buffer)];
}

function moduleBytes(p: RneParams): Uint8Array {
  const type = [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]; // (i32 end, i32 start) -> i32
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, type),
    ...section(2, [1, ...str('env'), ...str('mem'), 0x02, 0x00, 1]), // import memory env.mem, min 1 page
    ...section(3, [1, 0]), // one function of type 0
    ...section(7, [1, ...str('rne'), 0x00, 0]),
    ...section(10, [1, ...rneBody(p)]),
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

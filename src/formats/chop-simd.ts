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
 * a < lo unless 'int') are found by one range test per block, and the FPU lane and exception bookkeeping
 * run behind one branch per group of UNROLL blocks, rarely taken on typical data. Constants (D, lo, hi,
 * C) are baked into each module, so the shift is an immediate and nothing is re-splatted in the loop.
 *
 * The module is a few hundred bytes, assembled below from annotated opcodes (no build step, no binary blob
 * to trust). Memory: [0, CHUNK_BYTES) data processed in place, then the exception list (one i32 per
 * exceptional group). WebAssembly SIMD is in Node >= 16.4 and all current browsers; without it chop falls
 * back to the TypeScript path.
 *
 * Opcodes: WebAssembly core spec 1.0 (binary format, section 5.4) and the SIMD proposal's opcode table
 * (v128.load 0xfd 0x00, i32x4.shr_u 0xfd 173, f32x4.add 0xfd 228, ...).
 */

/** Elements per chunk copied into the module's memory (256 KB: L2-resident; 16K-64K measured alike, 4K and 128K slower). */
export const CHUNK = 1 << 16;
/**
 * 4-lane blocks per kernel loop iteration. Unrolling pays V8's loop-header check (stack guard) and the
 * unusual-lane branch once per group; measured kernel-only speed in place (bf16, 64K chunk): 2 blocks
 * ~1.5 G/s, 4 ~1.85, 8 ~2.35, 16 ~2.5 but fp16 drops to ~1.0 (register spills: V8 uses 16 xmm registers).
 */
const UNROLL = 8;
/** Elements per kernel iteration; the driver passes chunk lengths that are multiples of it. */
export const SIMD_BLOCK = 4 * UNROLL;
const CHUNK_BYTES = CHUNK * 4;
/** Exception list offset (bytes), after the data. */
const EXC = CHUNK_BYTES;
const PAGES = Math.ceil((CHUNK_BYTES + CHUNK) / 65536); // data + one i32 per 4 elements

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

// Locals: 0 nBytes (param); i32: 1 i, 2 count; v128: 3 absMask, 4 one, 5 bias, 6 keep, 7 hi - 1, 8 lo,
// 9 C, 10 shift for the unusual test, 11 its threshold, 12 unusual lanes, 13 exceptional lanes, then
// per block k of the group: 14 + 3k x, 15 + 3k a, 16 + 3k result.
function rneBody(p: RneParams): number[] {
  const bias = (1 << (p.D - 1)) - 1;
  const keep = ~((1 << p.D) - 1);
  const x = (k: number) => 14 + 3 * k;
  const a = (k: number) => 15 + 3 * k;
  const r = (k: number) => 16 + 3 * k;
  // "Unusual" lanes need more than the integer formula: a >= hi always, and a < lo unless the integer
  // formula covers it ('int'). Both at once is one unsigned range test (a - lo) >=u (hi - lo); SSE has
  // no unsigned compare, so flip the sign bit: a + (2^31 - lo) >s (hi - lo - 2^31 - 1), two instructions.
  const loU = p.sub === 'int' ? 0 : p.lo;
  const shift = (0x80000000 - loU) | 0;
  const threshold = (p.hi - loU - 0x80000000 - 1) | 0;
  const block = (k: number): number[][] => [
    // x = load(i + 16k); a = x & abs
    [...get(1), ...v128Load(16 * k), ...tee(x(k)), ...get(3), ...V128_AND, ...tee(a(k))],
    // unusual lanes, accumulated over the group
    [...get(10), ...I32X4_ADD, ...get(11), ...I32X4_GT_S],
    k === 0 ? set(12) : [...get(12), ...V128_OR, ...set(12)],
    // normal result ((x + bias + ((x >> D) & 1)) & keep): on x itself, sign included, since
    // a < hi <= 0x7f7fffff means no carry can reach the sign bit
    [...get(x(k)), ...get(5), ...I32X4_ADD],
    [...get(x(k)), ...i32const(p.D), ...I32X4_SHR_U, ...get(4), ...V128_AND, ...I32X4_ADD],
    [...get(6), ...V128_AND, ...set(r(k))],
  ];
  // Rare path, for the blocks of a group with an unusual lane. Subnormal results (FPU lane):
  // r(k) = a < lo ? (f32(a) + C - C) | s : r(k), with s = x ^ a; exceptions: a > hi - 1, plus a < lo
  // when subnormals are refused.
  const rare = (k: number): number[][] => {
    // x is reloaded (the group is stored after this), so only the results stay live across the branch
    const out: number[][] = [
      [...get(1), ...v128Load(16 * k), ...tee(x(k)), ...get(3), ...V128_AND, ...set(a(k))],
    ];
    if (p.sub === 'fpu') {
      out.push([
        ...[...get(a(k)), ...get(9), ...F32X4_ADD, ...get(9), ...F32X4_SUB],
        ...[...get(x(k)), ...get(a(k)), ...V128_XOR, ...V128_OR],
        ...[...get(r(k)), ...get(8), ...get(a(k)), ...I32X4_GT_S, ...V128_BITSELECT, ...set(r(k))],
      ]);
    }
    out.push([...get(a(k)), ...get(7), ...I32X4_GT_S]);
    if (p.sub === 'refuse') out.push([...get(8), ...get(a(k)), ...I32X4_GT_S, ...V128_OR]);
    out.push(k === 0 ? set(13) : [...get(13), ...V128_OR, ...set(13)]);
    return out;
  };
  const blocks = [...Array(UNROLL).keys()];
  const code: number[][] = [
    // constant vectors, splatted once outside the loop
    [...i32const(0x7fffffff), ...I32X4_SPLAT, ...set(3)],
    [...i32const(1), ...I32X4_SPLAT, ...set(4)],
    [...i32const(bias), ...I32X4_SPLAT, ...set(5)],
    [...i32const(keep), ...I32X4_SPLAT, ...set(6)],
    [...i32const(p.hi - 1), ...I32X4_SPLAT, ...set(7)],
    [...i32const(p.lo), ...I32X4_SPLAT, ...set(8)],
    [0x43, ...f32Bytes(p.C), ...F32X4_SPLAT, ...set(9)],
    [...i32const(shift), ...I32X4_SPLAT, ...set(10)],
    [...i32const(threshold), ...I32X4_SPLAT, ...set(11)],
    // block { loop { if (i >= nBytes) break;
    [0x02, 0x40, 0x03, 0x40],
    [...get(1), ...get(0), ...I32_GE_U, 0x0d, 1],
    // UNROLL blocks per iteration: the loop overhead and the branch are paid once per group
    ...blocks.flatMap(block),
    // if (any lane of the group is unusual) { FPU lane; if (any exception) exceptions[count++] = i }
    [...get(12), ...V128_ANY_TRUE, 0x04, 0x40],
    ...blocks.flatMap(rare),
    [...get(13), ...V128_ANY_TRUE, 0x04, 0x40],
    [...get(2), ...i32const(2), ...I32_SHL, ...get(1), ...I32_STORE_EXC],
    [...get(2), ...i32const(1), ...I32_ADD, ...set(2)],
    [...END, ...END],
    // store the group, i += 16 * UNROLL; continue } }
    ...blocks.map((k) => [...get(1), ...get(r(k)), ...v128Store(16 * k)]),
    [...get(1), ...i32const(16 * UNROLL), ...I32_ADD, ...set(1), 0x0c, 0],
    [...END, ...END],
    [...get(2), ...END],
  ];
  const locals = [2, ...uleb(2), 0x7f, ...uleb(11 + 3 * UNROLL), 0x7b]; // 2 i32, v128s
  const body = [...locals, ...code.flat()];
  return [...uleb(body.length), ...body];
}

function f32Bytes(v: number): number[] {
  return [...new Uint8Array(Float32Array.of(v).buffer)];
}

function moduleBytes(p: RneParams): Uint8Array {
  const type = [1, 0x60, 1, 0x7f, 1, 0x7f]; // (i32) -> i32
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, type),
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0x00, ...uleb(PAGES)]), // one memory, min PAGES
    ...section(7, [2, ...str('mem'), 0x02, 0, ...str('rne'), 0x00, 0]),
    ...section(10, [1, ...rneBody(p)]),
  ];
  return Uint8Array.from(bytes);
}

export interface RneKernel {
  /** Module memory as a float32 view. */
  readonly f32: Float32Array;
  readonly i32: Int32Array;
  /** Exception list start, in int32 elements. */
  readonly excIndex: number;
  /**
   * Rounds nBytes (a multiple of 32) in place; returns the number of exceptional 32-byte pairs of blocks,
   * whose byte offsets are at i32[excIndex ...].
   */
  rne(nBytes: number): number;
}

/** The part of the WebAssembly JS API used here (declared locally: the ES2022 lib has no WebAssembly). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

let available: boolean | undefined;
const kernels = new Map<string, RneKernel | null>();

function instantiate(p: RneParams): RneKernel | null {
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    const bytes = moduleBytes(p);
    if (!wasm?.validate(bytes)) return null;
    const inst = new wasm.Instance(new wasm.Module(bytes), {});
    const mem = inst.exports.mem as { buffer: ArrayBuffer };
    const rne = inst.exports.rne as RneKernel['rne'];
    return { f32: new Float32Array(mem.buffer), i32: new Int32Array(mem.buffer), excIndex: EXC / 4, rne };
  } catch {
    return null;
  }
}

/** Whether WebAssembly SIMD works here (checked once by building a kernel). */
export function simdAvailable(): boolean {
  available ??= instantiate({ lo: 0x00800000, hi: 0x7f7f0000, D: 16, C: 1, sub: 'int' }) !== null;
  return available;
}

/**
 * The SIMD kernel for these constants (compiled once per distinct set, synchronously: the module is a
 * few hundred bytes), or null where WebAssembly SIMD is unavailable.
 */
export function simdKernel(p: RneParams): RneKernel | null {
  if (!simdAvailable()) return null;
  const key = `${p.sub} ${p.D} ${p.lo} ${p.hi} ${p.C}`;
  let k = kernels.get(key);
  if (k === undefined) {
    k = instantiate(p);
    kernels.set(key, k);
  }
  return k;
}

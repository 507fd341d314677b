/**
 * WebAssembly SIMD128 kernel for round-to-nearest-even chop of float32 data, four lanes at a time.
 * It computes exactly what the TypeScript fast path in chop-fast.ts computes (that path, and the plain
 * reference, stay beside it; test/formats/chop-fast.test.ts checks all three against each other):
 *
 *   a  = bits & 0x7fffffff,  s = bits & 0x80000000
 *   normal window lo <= a < hi:  ((a + (2^(D-1) - 1) + ((a >> D) & 1)) & ~(2^D - 1)) | s
 *   below lo (subnormal results): f32(|x| + C) - C, C = 2^(emin - M + 23): one IEEE float32 addition
 *                                 rounds |x| to the target's subnormal step (ties to even), | s
 *   anything else (a >= hi: overflow region, inf, NaN; or a < lo when subnormals are off): the 16-byte
 *   block's offset is appended to an exception list and the caller recomputes its lanes with the
 *   reference.
 *
 * The module is a few hundred bytes, assembled below from annotated opcodes (no build step, no binary blob
 * to trust). Memory: [0, CHUNK_BYTES) data processed in place, then the exception list (one i32 per
 * 16-byte block). WebAssembly SIMD is in Node >= 16.4 and all current browsers; without it chop falls
 * back to the TypeScript path.
 *
 * Opcodes: WebAssembly core spec 1.0 (binary format, section 5.4) and the SIMD proposal's opcode table
 * (v128.load 0xfd 0x00, i32x4.shr_u 0xfd 173, f32x4.add 0xfd 228, ...).
 */

/** Elements per chunk copied into the module's memory. */
export const CHUNK = 1 << 16;
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
const i32const = (v: number) => [0x41, ...sleb(v | 0)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const V128_LOAD = [...simd(0x00), 4, 0]; // align 2^4, offset 0
const V128_STORE = [...simd(0x0b), 4, 0];
const I32X4_SPLAT = simd(0x11);
const F32X4_SPLAT = simd(0x13);
const I32X4_LT_S = simd(0x39);
const I32X4_GE_S = simd(0x3f);
const V128_NOT = simd(0x4d);
const V128_AND = simd(0x4e);
const V128_OR = simd(0x50);
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

// Parameters of `rne`: 0 nBytes, 1 lo, 2 hi, 3 D, 4 bias, 5 keep, 6 C (f32), 7 subMask (-1 or 0).
// Locals: 8 i, 9 count; v128: 10 absMask, 11 signMask, 12 one, 13 lo, 14 hi, 15 bias, 16 keep, 17 C,
// 18 subMask, 19 x, 20 a, 21 s, 22 inWindow, 23 normal result, 24 subnormal result.
function rneBody(): number[] {
  const code: number[][] = [
    // constant vectors
    [...i32const(0x7fffffff), ...I32X4_SPLAT, ...set(10)],
    [...i32const(0x80000000), ...I32X4_SPLAT, ...set(11)],
    [...i32const(1), ...I32X4_SPLAT, ...set(12)],
    [...get(1), ...I32X4_SPLAT, ...set(13)],
    [...get(2), ...I32X4_SPLAT, ...set(14)],
    [...get(4), ...I32X4_SPLAT, ...set(15)],
    [...get(5), ...I32X4_SPLAT, ...set(16)],
    [...get(6), ...F32X4_SPLAT, ...set(17)],
    [...get(7), ...I32X4_SPLAT, ...set(18)],
    // block { loop { if (i >= nBytes) break;
    [0x02, 0x40, 0x03, 0x40],
    [...get(8), ...get(0), ...I32_GE_U, 0x0d, 1],
    // x = load(i); a = x & abs; s = x & sign
    [...get(8), ...V128_LOAD, ...set(19)],
    [...get(19), ...get(10), ...V128_AND, ...set(20)],
    [...get(19), ...get(11), ...V128_AND, ...set(21)],
    // normal = ((a + bias + ((a >> D) & 1)) & keep) | s
    [...get(20), ...get(15), ...I32X4_ADD],
    [...get(20), ...get(3), ...I32X4_SHR_U, ...get(12), ...V128_AND, ...I32X4_ADD],
    [...get(16), ...V128_AND, ...get(21), ...V128_OR, ...set(23)],
    // subnormal = (f32(a) + C - C) | s
    [...get(20), ...get(17), ...F32X4_ADD, ...get(17), ...F32X4_SUB, ...get(21), ...V128_OR, ...set(24)],
    // inWindow = (a >= lo) & (a < hi)
    [...get(20), ...get(13), ...I32X4_GE_S, ...get(20), ...get(14), ...I32X4_LT_S, ...V128_AND, ...set(22)],
    // store(i, inWindow ? normal : subnormal)
    [...get(8), ...get(23), ...get(24), ...get(22), ...V128_BITSELECT, ...V128_STORE],
    // if any lane is neither in the window nor an allowed subnormal: exceptions[count++] = i
    [...get(22), ...get(20), ...get(13), ...I32X4_LT_S, ...get(18), ...V128_AND, ...V128_OR, ...V128_NOT],
    [...V128_ANY_TRUE, 0x04, 0x40],
    [...get(9), ...i32const(2), ...I32_SHL, ...get(8), ...I32_STORE_EXC],
    [...get(9), ...i32const(1), ...I32_ADD, ...set(9)],
    END,
    // i += 16; continue } }
    [...get(8), ...i32const(16), ...I32_ADD, ...set(8), 0x0c, 0],
    [...END, ...END],
    [...get(9), ...END],
  ];
  const locals = [2, ...uleb(2), 0x7f, ...uleb(16), 0x7b]; // 2 i32, 16 v128
  const body = [...locals, ...code.flat()];
  return [...uleb(body.length), ...body];
}

function moduleBytes(): Uint8Array {
  const type = [1, 0x60, 8, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7d, 0x7f, 1, 0x7f];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, type),
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0x00, ...uleb(PAGES)]), // one memory, min PAGES
    ...section(7, [2, ...str('mem'), 0x02, 0, ...str('rne'), 0x00, 0]),
    ...section(10, [1, ...rneBody()]),
  ];
  return Uint8Array.from(bytes);
}

export interface RneKernel {
  /** Module memory as float32 / int32 views (recreated if memory ever grows; it does not). */
  readonly f32: Float32Array;
  readonly i32: Int32Array;
  /** Exception list start, in int32 elements. */
  readonly excIndex: number;
  /** Rounds nBytes (multiple of 16) in place; returns the number of exception blocks. */
  rne(
    nBytes: number,
    lo: number,
    hi: number,
    D: number,
    bias: number,
    keep: number,
    C: number,
    sub: number,
  ): number;
}

/** The part of the WebAssembly JS API used here (declared locally: the ES2022 lib has no WebAssembly). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

let kernel: RneKernel | null | undefined;

/** The SIMD kernel, or null where WebAssembly SIMD is unavailable (instantiated once, synchronously). */
export function simdKernel(): RneKernel | null {
  if (kernel !== undefined) return kernel;
  kernel = null;
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    const bytes = moduleBytes();
    if (!wasm?.validate(bytes)) return kernel;
    const inst = new wasm.Instance(new wasm.Module(bytes), {});
    const mem = inst.exports.mem as { buffer: ArrayBuffer };
    const rne = inst.exports.rne as RneKernel['rne'];
    kernel = { f32: new Float32Array(mem.buffer), i32: new Int32Array(mem.buffer), excIndex: EXC / 4, rne };
  } catch {
    kernel = null;
  }
  return kernel;
}

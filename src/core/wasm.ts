/**
 * Loading the WebAssembly kernels the package ships (scripts/build-wasm.mjs turns native/<area>/<name>.c
 * into src/<area>/wasm/<name>.generated.ts: the base64 bytes when the source has one variant; when it has
 * several, SOURCE_SHA256 and a loader per variant (`LOAD.relaxed()`) that imports that variant's
 * <name>.<variant>.generated.ts, so only the variant that runs is fetched and decoded). Browser-safe: base64
 * inside a JavaScript module needs no fetch of a .wasm URL, no file access and no bundler plugin.
 *
 * Feature detection validates two tiny hand-assembled modules (WebAssembly binary format 1.0, section 5;
 * SIMD opcodes 0xfd 12 = v128.const, 0xfd 256 = i8x16.relaxed_swizzle), so nothing is compiled for it.
 */

/** Bytes of a base64 string (atob is in every browser and in Node >= 16). */
export function base64Bytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
// one type () -> v128, one function of that type
const TYPE_FUNC = [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00];
const V128_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];

function moduleWithBody(body: readonly number[]): Uint8Array {
  const fn = [0x00, ...body, 0x0b]; // no locals, body, end
  const code = [0x01, fn.length, ...fn];
  return Uint8Array.from([...HEADER, ...TYPE_FUNC, 0x0a, code.length, ...code]);
}

let simd: boolean | undefined;
let relaxed: boolean | undefined;

/** Whether this engine has WebAssembly SIMD128 (Node >= 16.4, every current browser). */
export function hasWasmSimd(): boolean {
  if (simd === undefined) {
    simd = typeof WebAssembly === 'object' && WebAssembly.validate(moduleWithBody(V128_ZERO));
  }
  return simd;
}

/**
 * Whether this engine has relaxed SIMD (on by default in Node >= 22 and current Chromium; Node 20 needs
 * --experimental-wasm-relaxed-simd).
 */
export function hasWasmRelaxedSimd(): boolean {
  if (relaxed === undefined) {
    relaxed =
      hasWasmSimd() && WebAssembly.validate(moduleWithBody([...V128_ZERO, ...V128_ZERO, 0xfd, 0x80, 0x02]));
  }
  return relaxed;
}

/**
 * Compiles and instantiates a shipped module synchronously. Node and workers allow any size; a browser's
 * main thread may refuse large synchronous compiles, so browser callers of big modules should prefer
 * `instantiateWasm`.
 */
export function instantiateWasmSync(base64: string, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(base64Bytes(base64)), imports);
}

/** Compiles and instantiates a shipped module asynchronously (any size, any thread). */
export async function instantiateWasm(
  base64: string,
  imports: WebAssembly.Imports = {},
): Promise<WebAssembly.Instance> {
  const module = await WebAssembly.compile(base64Bytes(base64));
  return WebAssembly.instantiate(module, imports);
}

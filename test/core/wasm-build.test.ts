// The shipped WebAssembly modules (src/<area>/wasm/*.generated.ts) match their C sources in native/:
// every source hashes to the SOURCE_SHA256 each of its files records (so a C edit without a rebuild fails
// here, with no compiler needed), a source with several variants ships one module per variant that its
// loader (LOAD) imports, no generated file is left that no source writes, and where Debian's clang-16 is
// installed a rebuild gives the same files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hasWasmRelaxedSimd, hasWasmSimd, instantiateWasmSync } from '../../src/core/wasm.ts';

interface Source {
  area: string;
  name: string;
  path: string;
}
interface BuildScript {
  listSources(): Source[];
  sourceHash(path: string): string;
  outputPath(src: Source): string;
  variantPath(src: Source, variant: string): string;
  variantsOf(src: Source): string[];
  outputPaths(src: Source): string[];
  strayOutputs(): string[];
  buildOne(src: Source, tmp: string, compiler: string): [string, string][];
}
const CONST: Record<string, string> = { simd128: 'WASM_SIMD128', relaxed: 'WASM_RELAXED' };
type Loaders = Record<string, () => Promise<string>>;
const build = (await import(
  pathToFileURL(join(process.cwd(), 'scripts/build-wasm.mjs')).href
)) as BuildScript;

function clangVersion(): string | undefined {
  try {
    return execFileSync(process.env.CLANG ?? 'clang-16', ['--version'], { encoding: 'utf8' })
      .split('\n')[0]!
      .trim();
  } catch {
    return undefined;
  }
}

test('feature detection: SIMD128 is present in Node 20', () => {
  assert.equal(hasWasmSimd(), true);
  assert.equal(typeof hasWasmRelaxedSimd(), 'boolean');
});

test('no generated module is left that no source writes', () => {
  assert.deepEqual(build.strayOutputs(), []);
});

for (const src of build.listSources()) {
  test(`wasm ${src.area}/${src.name}: shipped modules match their source`, async () => {
    const hash = build.sourceHash(src.path);
    for (const out of build.outputPaths(src)) {
      assert.ok(existsSync(out), `${out} missing: run npm run build:wasm`);
      const mod = (await import(pathToFileURL(out).href)) as Record<string, unknown>;
      assert.equal(
        mod.SOURCE_SHA256,
        hash,
        `native/${src.area}/${src.name}.c changed: run npm run build:wasm`,
      );
    }
    const variants = build.variantsOf(src);
    const main = (await import(pathToFileURL(build.outputPath(src)).href)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(main.BYTES as object), variants);
    assert.deepEqual(Object.keys(main.FLAGS as object), variants);
    // one variant: its bytes are in the main module; several: each behind its loader, not in the main module
    const bytesOf: Record<string, string> = {};
    if (variants.length === 1) {
      assert.equal(main.LOAD, undefined);
      bytesOf[variants[0]!] = main[CONST[variants[0]!]!] as string;
    } else {
      for (const v of Object.values(CONST)) assert.equal(main[v], undefined, `${v} in the main module`);
      const load = main.LOAD as Loaders;
      assert.deepEqual(Object.keys(load), variants);
      for (const v of variants) {
        const fromFile = (await import(pathToFileURL(build.variantPath(src, v)).href)) as Record<
          string,
          unknown
        >;
        bytesOf[v] = await load[v]!();
        assert.equal(bytesOf[v], fromFile[CONST[v]!], `LOAD.${v} gives ${build.variantPath(src, v)}`);
      }
    }
    for (const v of variants) {
      const b64 = bytesOf[v]!;
      assert.equal(typeof b64, 'string');
      assert.equal(Buffer.from(b64, 'base64').length, (main.BYTES as Record<string, number>)[v]);
      // every variant instantiates where the engine supports it
      if (v === 'simd128' || (v === 'relaxed' && hasWasmRelaxedSimd()))
        assert.ok(instantiateWasmSync(b64, importsFor(b64)), `${v} instantiates`);
    }
  });

  const compiler = clangVersion();
  test(
    `wasm ${src.area}/${src.name}: rebuild is byte-identical`,
    { skip: compiler ? false : 'clang-16 not installed' },
    async () => {
      if (compiler === undefined) return;
      const mod = (await import(pathToFileURL(build.outputPath(src)).href)) as Record<string, string>;
      if (mod.COMPILER !== compiler) return; // another compiler version: bytes may differ legitimately
      const tmp = mkdtempSync(join(tmpdir(), 'mixq-wasm-test-'));
      try {
        const files = build.buildOne(src, tmp, compiler);
        assert.deepEqual(
          files.map(([p]) => p),
          build.outputPaths(src),
        );
        for (const [path, text] of files) assert.equal(text, readFileSync(path, 'utf8'), `${path} differs`);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  );
}

/** Imports a module declares: an imported memory gets a fresh one (shared if the module wants it). */
function importsFor(b64: string): WebAssembly.Imports {
  const module = new WebAssembly.Module(Buffer.from(b64, 'base64'));
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    if (imp.kind === 'memory') {
      try {
        imports[imp.module]![imp.name] = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
        new WebAssembly.Instance(module, imports);
      } catch {
        imports[imp.module]![imp.name] = new WebAssembly.Memory({ initial: 1 });
      }
    } else if (imp.kind === 'function') imports[imp.module]![imp.name] = () => 0;
  }
  return imports;
}

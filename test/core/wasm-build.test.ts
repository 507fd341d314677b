// The shipped WebAssembly modules (src/<area>/wasm/*.generated.ts) match their C sources in native/:
// every source hashes to the SOURCE_SHA256 its module records (so a C edit without a rebuild fails here,
// with no compiler needed), and where Debian's clang-16 is installed a rebuild gives the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hasWasmRelaxedSimd, hasWasmSimd, instantiateWasmSync } from '../../src/core/wasm.ts';

interface BuildScript {
  listSources(): { area: string; name: string; path: string }[];
  sourceHash(path: string): string;
  outputPath(src: { area: string; name: string }): string;
  buildOne(src: { area: string; name: string; path: string }, tmp: string, compiler: string): string;
}
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

for (const src of build.listSources()) {
  test(`wasm ${src.area}/${src.name}: shipped module matches its source`, async () => {
    const out = build.outputPath(src);
    assert.ok(existsSync(out), `${out} missing: run npm run build:wasm`);
    const mod = (await import(pathToFileURL(out).href)) as Record<string, string>;
    assert.equal(
      mod.SOURCE_SHA256,
      build.sourceHash(src.path),
      `native/${src.area}/${src.name}.c changed: run npm run build:wasm`,
    );
    // every variant instantiates where the engine supports it
    if (mod.WASM_SIMD128) assert.ok(instantiateWasmSync(mod.WASM_SIMD128, importsFor(mod.WASM_SIMD128)));
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
        assert.equal(build.buildOne(src, tmp, compiler), readFileSync(build.outputPath(src), 'utf8'));
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

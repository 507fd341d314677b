#!/usr/bin/env node
// Builds every WebAssembly kernel from its C source and writes it as a TypeScript module, so the package
// ships the kernels and users need no compiler (docs/architecture.md, "WebAssembly kernels").
//
//   native/<area>/<name>.c  ->  src/<area>/wasm/<name>.generated.ts
//
// Each C file declares its build in comment lines near its top:
//   // wasm-variants: simd128 relaxed     one module per variant (relaxed adds -mrelaxed-simd)
//   // wasm-flags: -matomics              extra compiler flags (optional)
//   // wasm-ld: --import-memory --shared-memory --max-memory=2147483648   extra linker flags (optional)
// Every exported (non-static) C function is exported by the module.
//
// The generated module exports SOURCE_SHA256 (of the C source and every local header it includes),
// COMPILER, FLAGS and one base64 string per variant (WASM_SIMD128, WASM_RELAXED). The build is
// reproducible: the same compiler gives the same bytes (no debug info, paths mapped, stripped);
// test/core/wasm-build.test.ts checks that the sources still hash to SOURCE_SHA256 (CI, no compiler
// needed) and, where clang-16 is installed, that a rebuild gives the shipped bytes.
//
// Usage: node scripts/build-wasm.mjs [--check] [name-filter...]
//   --check   rebuild into memory and compare with the shipped modules; exit 1 on any difference.
// Needs Debian's clang-16 and lld-16 (apt-get install clang-16 lld-16); CLANG / WASM_LD override the paths.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLANG = process.env.CLANG ?? 'clang-16';
const WASM_LD = process.env.WASM_LD ?? 'wasm-ld-16';

/** Absolute path of a command (clang's --ld-path wants one). */
function whichOr(cmd) {
  if (cmd.includes('/')) return cmd;
  try {
    return execFileSync('which', [cmd], { encoding: 'utf8' }).trim() || cmd;
  } catch {
    return cmd;
  }
}

/** Flags every module gets. -ffp-contract=off: no fused multiply-add, so float results match the
 * TypeScript references operation for operation (relaxed-SIMD madd is only used where written). */
const BASE_FLAGS = [
  '--target=wasm32',
  '-O3',
  '-nostdlib',
  '-ffreestanding',
  '-fno-builtin',
  '-ffp-contract=off',
  '-fno-exceptions',
  '-fvisibility=default',
  '-msimd128',
  '-mbulk-memory',
  '-mnontrapping-fptoint',
  '-msign-ext',
  '-g0',
  `-ffile-prefix-map=${root}=.`,
  `--ld-path=${whichOr(WASM_LD)}`,
];
const BASE_LD = ['--no-entry', '--export-dynamic', '--strip-all', '--gc-sections'];
const VARIANT_FLAGS = { simd128: [], relaxed: ['-mrelaxed-simd'] };

/** Every native/<area>/<name>.c, sorted. */
export function listSources() {
  const dir = join(root, 'native');
  const out = [];
  let areas = [];
  try {
    areas = readdirSync(dir).filter((a) => statSync(join(dir, a)).isDirectory());
  } catch {
    return out;
  }
  for (const area of areas.sort()) {
    for (const f of readdirSync(join(dir, area)).sort()) {
      if (f.endsWith('.c')) out.push({ area, name: basename(f, '.c'), path: join(dir, area, f) });
    }
  }
  return out;
}

function directive(src, key) {
  const m = src.match(new RegExp(`^//\\s*${key}:\\s*(.*)$`, 'm'));
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

/** sha256 over the source and its local headers (#include "x.h"), in include order. */
export function sourceHash(path) {
  const h = createHash('sha256');
  const seen = new Set();
  const add = (p) => {
    if (seen.has(p)) return;
    seen.add(p);
    const text = readFileSync(p, 'utf8');
    h.update(relative(root, p).split('\\').join('/'));
    h.update('\0');
    h.update(text);
    for (const m of text.matchAll(/^#include\s+"([^"]+)"/gm)) add(resolve(dirname(p), m[1]));
  };
  add(path);
  return h.digest('hex');
}

export function outputPath(src) {
  return join(root, 'src', src.area, 'wasm', `${src.name}.generated.ts`);
}

function compile(src, variant, tmp) {
  const text = readFileSync(src.path, 'utf8');
  const flags = [...BASE_FLAGS, ...VARIANT_FLAGS[variant], ...directive(text, 'wasm-flags')];
  const ld = [...BASE_LD, ...directive(text, 'wasm-ld')].map((f) => `-Wl,${f}`);
  const out = join(tmp, `${src.name}.${variant}.wasm`);
  try {
    execFileSync(CLANG, [...flags, ...ld, '-o', out, relative(root, src.path)], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    throw new Error(`${relative(root, src.path)} (${variant}): ${e.stderr?.toString() || e.message}`);
  }
  return { bytes: readFileSync(out), flags: [...flags.slice(0, -1), ...ld] };
}

function compilerVersion() {
  return execFileSync(CLANG, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();
}

const CONST = { simd128: 'WASM_SIMD128', relaxed: 'WASM_RELAXED' };

/** The generated TypeScript module for one source. */
export function render(src, hash, compiler, builds) {
  const lines = [
    `// Generated by scripts/build-wasm.mjs from native/${src.area}/${src.name}.c: do not edit.`,
    '// Rebuild with `npm run build:wasm` (Debian clang-16 + lld-16) after changing the C source.',
    `/** sha256 of the C source and its local headers this module was built from. */`,
    `export const SOURCE_SHA256 = '${hash}';`,
    `export const COMPILER = '${compiler}';`,
  ];
  for (const [variant, b] of builds) {
    lines.push(
      `/** ${variant}: ${b.bytes.length} bytes, flags ${b.flags.filter((f) => !f.startsWith('-ffile-prefix-map') && !f.startsWith('--ld-path')).join(' ')} */`,
    );
    lines.push(`export const ${CONST[variant]} =`);
    lines.push(`  '${b.bytes.toString('base64')}';`);
  }
  return lines.join('\n') + '\n';
}

export function buildOne(src, tmp, compiler) {
  const text = readFileSync(src.path, 'utf8');
  const variants = directive(text, 'wasm-variants');
  if (variants.length === 0) variants.push('simd128');
  for (const v of variants) {
    if (!(v in VARIANT_FLAGS))
      throw new Error(`${src.path}: unknown wasm-variant '${v}' (simd128 | relaxed)`);
  }
  const builds = variants.map((v) => [v, compile(src, v, tmp)]);
  return render(src, sourceHash(src.path), compiler, builds);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const filters = args.filter((a) => !a.startsWith('--'));
  const sources = listSources().filter(
    (s) => filters.length === 0 || filters.some((f) => s.name.includes(f)),
  );
  const compiler = compilerVersion();
  const tmp = mkdtempSync(join(tmpdir(), 'mixq-wasm-'));
  let bad = 0;
  try {
    for (const src of sources) {
      const text = buildOne(src, tmp, compiler);
      const out = outputPath(src);
      if (check) {
        let old = '';
        try {
          old = readFileSync(out, 'utf8');
        } catch {
          /* missing */
        }
        const same = old === text;
        if (!same) bad++;
        console.log(`${same ? 'same' : 'DIFFERS'}  ${relative(root, out)}`);
      } else {
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, text);
        console.log(`wrote ${relative(root, out)}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (bad) process.exit(1);
}

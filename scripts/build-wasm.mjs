#!/usr/bin/env node
// Builds every WebAssembly kernel from its C source and writes it as TypeScript modules, so the package
// ships the kernels and users need no compiler (docs/architecture.md, "WebAssembly kernels").
//
// Each C file declares its build in comment lines near its top:
//   // wasm-variants: simd128 relaxed     one build per variant (relaxed adds -mrelaxed-simd)
//   // wasm-flags: -matomics              extra compiler flags (optional)
//   // wasm-ld: --import-memory --shared-memory --max-memory=2147483648   extra linker flags (optional)
// Every exported (non-static) C function is exported by the module.
//
// Output rule: one module per variant's bytes, so an application fetches, parses and decodes only the
// variant it runs.
//   one variant (the default, simd128):
//     native/<area>/<name>.c  ->  src/<area>/wasm/<name>.generated.ts
//       SOURCE_SHA256, COMPILER, FLAGS and the bytes as base64 (WASM_SIMD128): import it statically.
//   two or more variants:
//     native/<area>/<name>.c  ->  src/<area>/wasm/<name>.generated.ts            (small, no bytes)
//                                 src/<area>/wasm/<name>.<variant>.generated.ts  (one per variant)
//       <name>.generated.ts exports SOURCE_SHA256, COMPILER, FLAGS (per variant), BYTES (per variant) and
//       LOAD: one loader per variant, `() => import('./<name>.<variant>.generated.ts')` returning the
//       base64 string; each <name>.<variant>.generated.ts exports SOURCE_SHA256 (the same) and its bytes
//       as WASM_SIMD128 / WASM_RELAXED. A bundler puts each variant in its own chunk (esbuild with
//       splitting, Rollup / Vite by default); tsc rewrites the literal '.ts' of the import like a static one.
// The build is reproducible: the same compiler gives the same bytes (no debug info, paths mapped,
// stripped); test/core/wasm-build.test.ts checks that the sources still hash to SOURCE_SHA256 in every
// file (CI, no compiler needed) and, where clang-16 is installed, that a rebuild gives the shipped files.
//
// Usage: node scripts/build-wasm.mjs [--check] [name-filter...]
//   --check   rebuild into memory and compare with the shipped modules; exit 1 on any difference, or on a
//             src/<area>/wasm/*.generated.ts that no source writes any more (a build deletes those).
// Needs Debian's clang-16 and lld-16 (apt-get install clang-16 lld-16); CLANG / WASM_LD override the paths.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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

/** The module a consumer imports statically (the bytes when one variant, the loaders when more). */
export function outputPath(src) {
  return join(root, 'src', src.area, 'wasm', `${src.name}.generated.ts`);
}

/** The module holding one variant's bytes when the source has several variants. */
export function variantPath(src, variant) {
  return join(root, 'src', src.area, 'wasm', `${src.name}.${variant}.generated.ts`);
}

/** The variants a source asks for (`// wasm-variants:`, default simd128). */
export function variantsOf(src) {
  const variants = directive(readFileSync(src.path, 'utf8'), 'wasm-variants');
  if (variants.length === 0) variants.push('simd128');
  for (const v of variants) {
    if (!(v in VARIANT_FLAGS))
      throw new Error(`${src.path}: unknown wasm-variant '${v}' (simd128 | relaxed)`);
  }
  return variants;
}

/** Every file the build writes for a source: the main module first, then one per variant if several. */
export function outputPaths(src) {
  const variants = variantsOf(src);
  return [outputPath(src), ...(variants.length > 1 ? variants.map((v) => variantPath(src, v)) : [])];
}

/** Generated modules under src/<area>/wasm/ that no source writes any more (a dropped variant or source). */
export function strayOutputs() {
  const keep = new Set(listSources().flatMap((s) => outputPaths(s)));
  const out = [];
  const srcDir = join(root, 'src');
  for (const area of readdirSync(srcDir).sort()) {
    const dir = join(srcDir, area, 'wasm');
    let names = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const f of names.sort()) {
      const p = join(dir, f);
      if (f.endsWith('.generated.ts') && !keep.has(p)) out.push(p);
    }
  }
  return out;
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
  // the flags a reader needs (no machine paths: the output must not depend on where the repo is)
  const shown = [...flags, ...ld].filter(
    (f) => !f.startsWith('-ffile-prefix-map') && !f.startsWith('--ld-path'),
  );
  return { bytes: readFileSync(out), flags: shown.join(' ') };
}

function compilerVersion() {
  return execFileSync(CLANG, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();
}

const CONST = { simd128: 'WASM_SIMD128', relaxed: 'WASM_RELAXED' };

function header(src, what) {
  return [
    `// Generated by scripts/build-wasm.mjs from native/${src.area}/${src.name}.c${what}: do not edit.`,
    '// Rebuild with `npm run build:wasm` (Debian clang-16 + lld-16) after changing the C source.',
    `/** sha256 of the C source and its local headers this module was built from. */`,
  ];
}

/** Lines of one object property, broken after the key as prettier does when it exceeds printWidth 110. */
function prop(key, value) {
  const one = `  ${key}: ${value},`;
  return one.length <= 110 ? [one] : [`  ${key}:`, `    ${value},`];
}

function record(builds, f) {
  return ['{', ...builds.flatMap(([v, b]) => prop(v, f(b))), '} as const;'];
}

function bytesLine(variant, b) {
  return [
    `/** ${variant}: ${b.bytes.length} bytes, flags ${b.flags} */`,
    `export const ${CONST[variant]}: string =`,
    `  '${b.bytes.toString('base64')}';`,
  ];
}

/**
 * The generated TypeScript for one source: [path, text] per file (outputPaths order). `builds` is
 * [variant, { bytes, flags }][] in the source's variant order.
 */
export function render(src, hash, compiler, builds) {
  const split = builds.length > 1;
  const main = [
    ...header(src, ''),
    `export const SOURCE_SHA256 = '${hash}';`,
    `export const COMPILER = '${compiler}';`,
    "/** Compiler and linker flags of each variant (besides the build's machine paths). */",
    `export const FLAGS = ${record(builds, (b) => `'${b.flags}'`).join('\n')}`,
    "/** Size of each variant's WebAssembly module in bytes (base64 is 4/3 of it). */",
    `export const BYTES = ${record(builds, (b) => String(b.bytes.length)).join('\n')}`,
  ];
  if (!split) return [[outputPath(src), [...main, ...bytesLine(...builds[0])].join('\n') + '\n']];
  main.push(
    '/**',
    ' * One loader per variant: the base64 bytes of its module, imported on first call, so a page or a',
    ' * process fetches, parses and decodes only the variant it runs (each is its own bundler chunk).',
    ' */',
    'export const LOAD = {',
    ...builds.flatMap(([v]) => {
      const one = `  ${v}: async (): Promise<string> => (await import('./${src.name}.${v}.generated.ts')).${CONST[v]},`;
      return one.length <= 110
        ? [one]
        : [
            `  ${v}: async (): Promise<string> =>`,
            `    (await import('./${src.name}.${v}.generated.ts')).${CONST[v]},`,
          ];
    }),
    '} as const;',
  );
  return [
    [outputPath(src), main.join('\n') + '\n'],
    ...builds.map(([v, b]) => [
      variantPath(src, v),
      [
        ...header(src, ` (variant ${v}, loaded by ${src.name}.generated.ts LOAD.${v})`),
        `export const SOURCE_SHA256 = '${hash}';`,
        ...bytesLine(v, b),
      ].join('\n') + '\n',
    ]),
  ];
}

/** Builds one source: [path, text] for every file it ships (see render). */
export function buildOne(src, tmp, compiler) {
  const builds = variantsOf(src).map((v) => [v, compile(src, v, tmp)]);
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
      for (const [out, text] of buildOne(src, tmp, compiler)) {
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
          writeFileSync(`${out}.tmp`, text); // whole or not at all: a module is never half written
          renameSync(`${out}.tmp`, out);
          console.log(`wrote ${relative(root, out)}`);
        }
      }
    }
    for (const stray of strayOutputs()) {
      if (check) {
        bad++;
        console.log(`STRAY  ${relative(root, stray)} (no source writes it: delete it)`);
      } else {
        rmSync(stray);
        console.log(`removed ${relative(root, stray)} (no source writes it)`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (bad) process.exit(1);
}

/**
 * mixq in a real browser, bundled the way a web developer would: esbuild, platform browser, ESM, no
 * special flags (no externals, no plugins). The library entry point must bundle on its own (one file, no
 * code splitting), and a page that imports it (test/browser/page.ts), bundled with code splitting (what
 * Vite / Rollup do by default), runs element formats, the WebAssembly SIMD chop, a Q4_K encode and the
 * kernels' differential test in Debian's headless Chromium driven by playwright-core; its Q4_K bytes and
 * its exact kernel products must equal Node's bit for bit. Each kernel variant's bytes land in a chunk of
 * their own, and a first kernel context fetches only the chunk of the variant it runs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { BLOCK_TYPES } from '../../src/blocks/registry.ts';
import { hasWasmRelaxedSimd } from '../../src/core/wasm.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { LOAD as KERNEL_VARIANTS } from '../../src/kernels/wasm/kernels.generated.ts';
import type { PageResult } from './page.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The bundle's files by URL path (the entry is /<entry name>.js). */
async function bundle(entry: string, splitting = false): Promise<Map<string, string>> {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    splitting,
    outdir: '/bundle',
    write: false,
    logLevel: 'silent',
  });
  assert.equal(r.errors.length, 0, r.errors.map((e) => e.text).join('\n'));
  return new Map(r.outputFiles.map((f) => [f.path.slice('/bundle'.length), f.text]));
}

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const v of b) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  return h;
}

test('esbuild bundles src/index.ts for the browser with no flags', async () => {
  const files = await bundle('src/index.ts');
  assert.deepEqual([...files.keys()], ['/index.js']);
  const js = files.get('/index.js')!;
  assert.ok(js.length > 100_000);
  assert.doesNotMatch(js, /from\s*["']node:/, 'no node: imports in the browser bundle');
});

test(
  'the bundled page runs formats, SIMD chop, Q4_K and the kernel differential test in headless Chromium',
  {
    skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (Debian package chromium)`,
    timeout: 180_000,
  },
  async () => {
    const files = await bundle('test/browser/page.ts', true);
    // each variant's bytes in exactly one chunk, not the page's
    const chunkOf: Record<string, string> = {};
    const b64s = { simd128: await KERNEL_VARIANTS.simd128(), relaxed: await KERNEL_VARIANTS.relaxed() };
    for (const v of ['simd128', 'relaxed'] as const) {
      const b64 = b64s[v];
      const other = b64s[v === 'simd128' ? 'relaxed' : 'simd128'];
      // a piece of this variant that the other one does not hold (the two share long runs of code)
      let at = b64.length >> 1;
      for (let tries = 0; tries < 256 && other.includes(b64.slice(at, at + 64)); tries++)
        at = (at + 4099) % (b64.length - 64);
      const piece = b64.slice(at, at + 64);
      assert.ok(!other.includes(piece), `no piece of the ${v} module found that the other variant lacks`);
      const holders = [...files].filter(([, text]) => text.includes(piece)).map(([p]) => p);
      assert.equal(holders.length, 1, `${v} bytes in ${holders.join(', ')}`);
      assert.notEqual(holders[0], '/page.js', `${v} bytes in the page's own chunk`);
      chunkOf[v] = holders[0]!;
    }
    const html =
      '<!doctype html><meta charset="utf-8"><title>mixq</title><script type="module" src="/page.js"></script>';
    const server = createServer((req, res) => {
      const js = files.get(req.url ?? '');
      if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      else if (js !== undefined) res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      else res.writeHead(404).end();
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const errors: string[] = [];
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      await page.waitForFunction(
        () => (globalThis as unknown as { __mixq?: unknown }).__mixq !== undefined,
        null,
        {
          timeout: 150_000,
        },
      );
      const r = (await page.evaluate(() => (globalThis as unknown as { __mixq: unknown }).__mixq)) as
        PageResult | { ok: false; error: string };
      assert.ok(r.ok, `page failed: ${'error' in r ? r.error : ''}\n${errors.join('\n')}`);
      const res = r as PageResult;
      assert.ok(res.simd);
      assert.ok(res.relaxed, 'current Chromium has relaxed SIMD on by default');
      assert.deepEqual(res.variants, ['simd128', 'relaxed']);
      // the first context (default options) fetched its variant's chunk and not the other's
      assert.equal(res.firstVariant, 'relaxed');
      assert.ok(res.fetchedAtFirst.includes('/page.js'), res.fetchedAtFirst.join(' '));
      assert.ok(res.fetchedAtFirst.includes(chunkOf.relaxed!), res.fetchedAtFirst.join(' '));
      assert.ok(!res.fetchedAtFirst.includes(chunkOf.simd128!), res.fetchedAtFirst.join(' '));
      // Q4_K: the same bytes as in Node
      const w = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
      assert.equal(res.q4kHash, fnv1a(BLOCK_TYPES.Q4_K.encode(w)));
      // exact kernel products: the same numbers as Node's kernels
      for (const v of hasWasmRelaxedSimd() ? res.variants : ['simd128']) {
        const k = await createKernels({ relaxed: v === 'relaxed' });
        const ew = k.prepare({
          kind: 'mixq',
          rows: 21,
          cols: 256,
          element: 'uint4',
          groups: 32,
          scaleFormat: 'fp16',
          symmetric: false,
          codes: Uint8Array.from({ length: 21 * 128 }, (_, i) => (i * 37) & 255),
          scales: Uint8Array.from({ length: 21 * 8 * 2 }, (_, i) => (i & 1 ? 0x2c : 0)),
          zeros: Uint8Array.from({ length: 21 * 4 }, (_, i) => (i * 11) & 255),
        });
        const ex = Float32Array.from({ length: 256 }, (_, i) => (i % 32 === 0 ? 127 : (i % 7) - 3) / 64);
        const want = [
          ...Array.from(k.matvec(ew, ex, { mode: 'q8' })),
          ...Array.from(k.matvec(ew, ex, { mode: 'f32' })),
        ];
        assert.deepEqual(res.exact[v], want, `${v}: browser and Node kernels differ`);
      }
      assert.ok(res.log.length > 20, res.log.join('\n'));
    } finally {
      await browser.close();
      server.close();
    }
  },
);

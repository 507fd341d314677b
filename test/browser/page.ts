/**
 * The page test/browser/browser.test.ts bundles with esbuild (platform browser, no special flags) and runs
 * in headless Chromium. It imports mixq from its public entry point (src/index.ts) as a web application
 * would, then runs: element formats (chop against the reference), the WebAssembly SIMD chop path, a ggml
 * Q4_K encode, a first kernel context on the variant feature detection picks (recording which scripts the
 * page had fetched by then: only that variant's chunk), and the kernels' differential test on both variants
 * (Chromium has relaxed SIMD on by default). It reports to window.__mixq for the test to read.
 */
import {
  BLOCK_TYPES,
  chop,
  chopReference,
  createKernels,
  dequantizeQ8,
  getFormat,
  hasWasmRelaxedSimd,
  hasWasmSimd,
  type KernelContext,
  type PreparedWeight,
  quantizeQ8KReference,
  quantizeQ8Reference,
  roundingBudget,
  Rng,
  type WeightSource,
} from '../../src/index.ts';

export interface PageResult {
  readonly ok: boolean;
  readonly log: string[];
  readonly simd: boolean;
  readonly relaxed: boolean;
  readonly variants: string[];
  /** The variant of a context created with the default options, first of all kernel contexts. */
  readonly firstVariant: string;
  /** Paths of the scripts the page had fetched when that context was ready. */
  readonly fetchedAtFirst: string[];
  /** FNV-1a of the Q4_K bytes (the Node side encodes the same data and compares). */
  readonly q4kHash: number;
  /** Exact-case products per variant (the Node side computes the same and compares bit for bit). */
  readonly exact: Record<string, number[]>;
}

/** Where the page reports (read by the test through page.evaluate). */
const report = globalThis as unknown as { __mixq?: PageResult | { ok: false; error: string } };

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const v of b) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  return h;
}

const log: string[] = [];
function check(cond: boolean, what: string): void {
  log.push(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) throw new Error(what);
}

function sources(rng: Rng): [string, WeightSource, { layout?: 'lut' }?][] {
  const rows = 37;
  const cols = 300;
  const w = Float32Array.from({ length: rows * cols }, () => rng.nextNormal() * 0.1);
  const rnd = (n: number) => Uint8Array.from({ length: n }, () => rng.nextU32() & 255);
  const f16 = (n: number) => {
    const b = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) b[2 * i + 1] = 0x2c; // 2^-4
    return b;
  };
  const ggml = (type: 'Q4_K' | 'Q8_0' | 'Q6_K'): WeightSource => {
    const c = 512;
    const x = Float32Array.from({ length: 13 * c }, () => rng.nextNormal() * 0.1);
    return { kind: 'ggml', type, rows: 13, cols: c, data: BLOCK_TYPES[type].encode(x) };
  };
  return [
    ['f32', { kind: 'float32', rows, cols, data: w }],
    [
      'int4-g32',
      {
        kind: 'mixq',
        rows,
        cols,
        element: 'uint4',
        groups: 32,
        scaleFormat: 'fp16',
        symmetric: true,
        codes: rnd((rows * cols) / 2),
        scales: f16(rows * 10),
      },
    ],
    [
      'int3-g32',
      {
        kind: 'mixq',
        rows,
        cols,
        element: 'uint3',
        groups: 32,
        scaleFormat: 'fp16',
        symmetric: true,
        codes: rnd(Math.ceil((rows * cols * 3) / 8)),
        scales: f16(rows * 10),
      },
    ],
    [
      'nvfp4',
      {
        kind: 'mixq',
        rows,
        cols,
        element: 'fp4_e2m1fn',
        groups: 16,
        scaleFormat: 'fp8_e4m3fn',
        symmetric: true,
        codes: rnd((rows * cols) / 2),
        scales: new Uint8Array(rows * 19).fill(0x28),
        globalScale: 0.5,
      },
    ],
    [
      'nf4-g64',
      {
        kind: 'mixq',
        rows,
        cols,
        element: 'nf4',
        groups: 64,
        scaleFormat: 'fp16',
        symmetric: true,
        codes: rnd((rows * cols) / 2),
        scales: f16(rows * 5),
      },
    ],
    [
      'int2-lut',
      {
        kind: 'mixq',
        rows,
        cols,
        element: 'uint2',
        groups: 32,
        scaleFormat: 'fp16',
        symmetric: true,
        codes: rnd((rows * cols) / 4),
        scales: f16(rows * 10),
      },
      { layout: 'lut' },
    ],
    ['Q4_K', ggml('Q4_K')],
    ['Q8_0', ggml('Q8_0')],
    ['Q6_K', ggml('Q6_K')],
  ];
}

function differential(k: KernelContext, name: string, w: PreparedWeight, rng: Rng): void {
  for (const mode of w.modes) {
    if (mode === 'lut8') continue; // its own reference lives in lut.ts; the Node tests cover it
    for (const batch of [1, 3]) {
      const x = Float32Array.from({ length: w.cols * batch }, () => rng.nextNormal());
      const y = k.matmul(w, x, batch, { mode });
      let xr: ArrayLike<number> = x;
      if (mode === 'q8' || mode === 'q8k') {
        // ggml weights' 'q8' activations keep their scales in fp16, as llama.cpp's
        const scale = w.layout === 'ggml' ? 'f16' : 'f32';
        const quantize = (v: Float32Array) =>
          mode === 'q8' ? quantizeQ8Reference(v, scale) : quantizeQ8KReference(v);
        const xh = new Float64Array(w.cols * batch);
        for (let j = 0; j < batch; j++) {
          const xp = new Float32Array(w.kp);
          xp.set(x.subarray(j * w.cols, (j + 1) * w.cols));
          xh.set(dequantizeQ8(quantize(xp)).subarray(0, w.cols), j * w.cols);
        }
        xr = xh;
      }
      const ref = k.reference(w, xr, batch);
      const budget = roundingBudget(mode, w.kp);
      let worst = 0;
      for (let i = 0; i < y.length; i++)
        worst = Math.max(worst, Math.abs(y[i]! - ref.y[i]!) / (budget * ref.mag[i]! || 1));
      check(worst <= 1, `${k.variant} ${name} ${mode} batch ${batch}: error ${worst.toFixed(3)} of budget`);
    }
  }
}

async function run(): Promise<PageResult> {
  // formats: the fast chop (TypeScript and WebAssembly SIMD) against the plain reference
  const rng = new Rng(1);
  const data = Float32Array.from({ length: 100_000 }, () => rng.nextNormal() * 100);
  for (const f of ['bf16', 'fp16', 'fp8_e4m3fn', 'fp6_e2m3fn', 'fp4_e2m1fn']) {
    const spec = getFormat(f);
    const fast = chop(spec, data);
    const ref = chopReference(spec, data);
    check(
      fast.every((v, i) => Object.is(v, ref[i])),
      `chop ${f} equals chopReference on 100000 values`,
    );
  }
  check(hasWasmSimd(), 'WebAssembly SIMD128 available');
  // Q4_K encode (ggml's quantizer)
  const w = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const q4k = BLOCK_TYPES.Q4_K.encode(w);
  check(q4k.length === (4096 / 256) * 144, 'Q4_K encode: 16 blocks of 144 bytes');
  // a kernel context as an application creates one: only the variant it runs is fetched
  const first = await createKernels();
  const fetchedAtFirst = performance
    .getEntriesByType('resource')
    .map((e) => new URL(e.name).pathname)
    .filter((p) => p.endsWith('.js'));
  // kernels, both variants
  const variants: ('simd128' | 'relaxed')[] = hasWasmRelaxedSimd() ? ['simd128', 'relaxed'] : ['simd128'];
  const exact: Record<string, number[]> = {};
  for (const v of variants) {
    const k = await createKernels({ relaxed: v === 'relaxed' });
    check(k.variant === v, `kernels variant ${v}`);
    const r2 = new Rng(2);
    for (const [name, src, opts] of sources(r2)) differential(k, name, k.prepare(src, opts), r2);
    // exact: dyadic weights and activations, compared with Node bit for bit
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
    exact[v] = [
      ...Array.from(k.matvec(ew, ex, { mode: 'q8' })),
      ...Array.from(k.matvec(ew, ex, { mode: 'f32' })),
    ];
  }
  return {
    ok: true,
    log,
    simd: hasWasmSimd(),
    relaxed: hasWasmRelaxedSimd(),
    variants,
    firstVariant: first.variant,
    fetchedAtFirst,
    q4kHash: fnv1a(q4k),
    exact,
  };
}

run().then(
  (r) => {
    report.__mixq = r;
  },
  (e: unknown) => {
    report.__mixq = { ok: false, error: `${e instanceof Error ? e.message : String(e)}\n${log.join('\n')}` };
  },
);

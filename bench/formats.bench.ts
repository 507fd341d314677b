/**
 * chop throughput: 10M float32 values (standard normal; |x| for unsigned formats), one thread, per format
 * and rounding mode. Baseline: chopReference, the straightforward decode(encode(x)) path, timed in the
 * same run on a 1M prefix (it is much slower). For nearest-even the TypeScript bit-arithmetic path is also
 * timed with the WebAssembly SIMD kernel switched off. Targets (issue 2): >= 500 M/s bf16 and fp16 nearest-even,
 * >= 200 M/s fp8_e4m3fn and fp4_e2m1fn.
 *
 * The first table puts nearest-even chop next to the copies it cannot avoid, timed in the same run:
 * `Float32Array.set` of all 10M (one memmove), the chunked copy chop does on a JavaScript array (into
 * WebAssembly memory and back out, CHUNK elements at a time, no rounding), and chopBuffer's in-place
 * rounding of data already in WebAssembly memory (no copy), alone and after a `view.set` fill.
 */
import { Rng } from '../src/core/rng.ts';
import { setSimdEnabled } from '../src/formats/chop-fast.ts';
import { CHUNK, DATA, kernelMemory } from '../src/formats/chop-simd.ts';
import {
  type CastOptions,
  chop,
  chopBuffer,
  chopReference,
  encode,
  encodeArray,
  getFormat,
  ROUNDINGS,
  type Rounding,
} from '../src/formats/index.ts';
import { printTable, timeBest } from './util.ts';

const N = 10_000_000;
const N_REF = 1_000_000;

const ALL_MODES: readonly (Rounding | 'stochastic r=8')[] = [...ROUNDINGS, 'stochastic r=8'];
const FORMATS_ALL_MODES = ['bf16', 'fp16', 'fp8_e4m3fn', 'fp4_e2m1fn'];
const FORMATS_SOME_MODES = ['tf32', 'fp8_e5m2', 'fp6_e3m2fn', 'fp6_e2m3fn', 'e8m0fnu', 'int8', 'nf4'];

export default async function bench(): Promise<void> {
  const rng = new Rng(1);
  const signed = new Float32Array(N);
  for (let i = 0; i < N; i++) signed[i] = rng.nextNormal();
  const unsigned = signed.map(Math.abs);
  const out = new Float32Array(N);
  copyBaseline(signed, out);
  const rows: string[][] = [];
  const cases: [string, (typeof ALL_MODES)[number]][] = [
    ...FORMATS_ALL_MODES.flatMap((f) => ALL_MODES.map((m) => [f, m] as [string, (typeof ALL_MODES)[number]])),
    ...FORMATS_SOME_MODES.flatMap((f) =>
      (['nearest-even', 'stochastic'] as const).map((m) => [f, m] as [string, (typeof ALL_MODES)[number]]),
    ),
  ];
  for (const [name, mode] of cases) {
    const spec = getFormat(name);
    const src = spec.kind === 'float' && !spec.signed ? unsigned : signed;
    const opts: CastOptions =
      mode === 'stochastic r=8'
        ? { rounding: 'stochastic', randomBits: 8, seed: 1 }
        : { rounding: mode, seed: 1 };
    const tFast = timeBest(() => chop(spec, src, opts, out), 200, 2);
    let ts = '';
    if (mode === 'nearest-even' && spec.kind === 'float') {
      setSimdEnabled(false);
      ts = (N / timeBest(() => chop(spec, src, opts, out), 200, 2) / 1e3).toFixed(1);
      setSimdEnabled(true);
    }
    const refSrc = src.subarray(0, N_REF);
    const refOut = out.subarray(0, N_REF);
    const tRef = timeBest(() => chopReference(spec, refSrc, opts, refOut), 100, 1);
    const fast = N / tFast / 1e3;
    const ref = N_REF / tRef / 1e3;
    rows.push([name, mode, fast.toFixed(1), ts, ref.toFixed(2), `${(fast / ref).toFixed(1)}x`]);
  }
  printTable(['format', 'rounding', 'chop M/s', 'TS-only M/s', 'reference M/s', 'chop/reference'], rows);

  // encodeArray (what block formats and quantizers call) against a per-element encode() loop
  console.log('');
  const codeRows: string[][] = [];
  for (const name of ['bf16', 'fp8_e4m3fn', 'fp4_e2m1fn', 'int8']) {
    const spec = getFormat(name);
    const codes = new Uint16Array(N);
    const tFast = timeBest(() => encodeArray(spec, signed, {}, codes), 200, 2);
    const refSrc = signed.subarray(0, N_REF);
    const tRef = timeBest(
      () => {
        for (let i = 0; i < N_REF; i++) codes[i] = encode(spec, refSrc[i]!);
      },
      100,
      1,
    );
    const fast = N / tFast / 1e3;
    const ref = N_REF / tRef / 1e3;
    codeRows.push([name, fast.toFixed(1), ref.toFixed(2), `${(fast / ref).toFixed(1)}x`]);
  }
  printTable(['encodeArray (nearest-even)', 'M/s', 'encode() loop M/s', 'ratio'], codeRows);
}

/** Nearest-even chop against the copy floor, all timed in this run (see the header). */
function copyBaseline(src: Float32Array, out: Float32Array): void {
  const mps = (t: number) => N / t / 1e3;
  const plain = mps(timeBest(() => out.set(src), 200, 3));
  const mem = kernelMemory(CHUNK);
  const w = mem ? mem.f32.subarray(DATA >>> 2, (DATA >>> 2) + CHUNK) : new Float32Array(CHUNK);
  const chunked = mps(
    timeBest(
      () => {
        for (let c = 0; c < N; c += CHUNK) {
          const len = Math.min(CHUNK, N - c);
          w.set(src.subarray(c, c + len));
          out.set(len === CHUNK ? w : w.subarray(0, len), c);
        }
      },
      200,
      3,
    ),
  );
  const rows: string[][] = [];
  const row = (what: string, v: number) =>
    rows.push([what, v.toFixed(1), (v / chunked).toFixed(2), (v / plain).toFixed(2)]);
  row('copy: Float32Array.set (memmove)', plain);
  row(`copy: chunked via WASM memory (${CHUNK})`, chunked);
  for (const name of ['bf16', 'fp16']) {
    const spec = getFormat(name);
    row(`${name} chop (JS array -> out)`, mps(timeBest(() => chop(spec, src, {}, out), 200, 3)));
    const buf = chopBuffer(spec, N);
    buf.view.set(src);
    row(`${name} chopBuffer.chopInPlace`, mps(timeBest(() => buf.chopInPlace(N), 200, 3)));
    const fill = () => {
      buf.view.set(src);
      buf.chopInPlace(N);
    };
    row(`${name} view.set + chopInPlace`, mps(timeBest(fill, 200, 3)));
  }
  printTable(['nearest-even vs copy floor (10M)', 'M/s', 'x chunked copy', 'x plain set'], rows);
  console.log('');
}

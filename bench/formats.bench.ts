/**
 * chop throughput: 10M float32 values (standard normal; |x| for unsigned formats), one thread, per format
 * and rounding mode. Baseline: chopReference, the straightforward decode(encode(x)) path, timed in the
 * same run on a 1M prefix (it is much slower). For nearest-even the TypeScript bit-arithmetic path is also
 * timed with the WebAssembly SIMD kernel switched off. Targets (issue 2): >= 500 M/s bf16 and fp16 nearest-even,
 * >= 200 M/s fp8_e4m3fn and fp4_e2m1fn.
 */
import { Rng } from '../src/core/rng.ts';
import { setSimdEnabled } from '../src/formats/chop-fast.ts';
import {
  type CastOptions,
  chop,
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

/**
 * chop throughput, one thread, against CPFloat (github north-numerical-computing/cpfloat, C) measured in
 * the same run on the same data. The peer is a small timing program around CPFloat's `cpfloatf` that the
 * lead builds outside the repository (never vendored); point MIXQ_PEER_CPFLOAT at it:
 *
 *   MIXQ_PEER_CPFLOAT=/path/to/cpfloat-peer npm run bench -- formats
 *
 * Its interface: `cpfloat-peer <file of float32> <precision> <emin> <emax> <subnormals 0|1> <inf 0|1>
 * <saturate 0|1> <cpfloat round mode> <min ms>` prints the best milliseconds of one out-of-place pass over
 * the file. Without it the baseline is mixq's plain reference (chopReference, on a 1M prefix).
 * MIXQ_BENCH_FORMATS=bf16,fp16 (comma-separated format names) runs only the rows of those formats, in every
 * table.
 *
 * Data (10M float32 each, seeded): `random`, random sign and magnitude log-uniform in [1e-3, 1e3] (six
 * decades, so part of it lies past fp8/fp4's max and below their min normal); `limits`, per format, half
 * the values near max finite (magnitude uniform in [max / 2, 2 max], capped at float32's max: a third of
 * them overflow) and half in the format's subnormal range (uniform in (0, min normal)), interleaved.
 *
 * Columns: `buffer`, chop between two views of one chopBuffer's WebAssembly memory (data already there:
 * no copies, out of place like CPFloat), timed like the peer (consecutive passes, best of; see the loop); `chop`, chop of a JavaScript Float32Array into another (copied
 * through WebAssembly memory in chunks); `copy`, that chunked copy alone with no rounding (chop's floor,
 * timed in this run); `into`, chop of the JavaScript array into a kernelFloat32Array (one copy in, rounded
 * in place, nothing copied out) and `memcpy`, one plain copy of the array (`into`'s floor); targets
 * (issue 20): buffer/peer >= 1 in every mode, chop/copy >= 0.8 in every deterministic mode, stochastic
 * chop/peer >= 1. CPFloat's modes: nearest-even 1, nearest-away -1,
 * toward-zero 4, up 2, down 3, stochastic 5, stochastic-equal 6 (it has no r-bit stochastic rounding:
 * that row is compared with its full stochastic mode).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/core/rng.ts';
import { KERNEL_MODES } from '../src/formats/chop-plan.ts';
import { CHUNK, DATA, kernelMemory } from '../src/formats/chop-wasm.ts';
import {
  type CastOptions,
  chop,
  chopBuffer,
  chopReference,
  encode,
  encodeArray,
  type FloatSpec,
  kernelFloat32Array,
  formatInfo,
  getFormat,
  type Rounding,
} from '../src/formats/index.ts';
import { printTable, timeBest, timeInterleaved } from './util.ts';

const N = 10_000_000;
const N_REF = 1_000_000;

type Mode = Rounding | 'stochastic r=8';
const MODES: readonly Mode[] = [...KERNEL_MODES, 'stochastic r=8'];
const CPFLOAT_ROUND: Partial<Record<Mode, number>> = {
  'nearest-even': 1,
  'nearest-away': -1,
  'toward-zero': 4,
  up: 2,
  down: 3,
  stochastic: 5,
  'stochastic-equal': 6,
  'stochastic r=8': 5,
};
const ONLY = process.env.MIXQ_BENCH_FORMATS?.split(',').map((f) => f.trim());
const selected = (name: string): boolean => !ONLY || ONLY.includes(name);
const PEER_FORMATS = ['bf16', 'fp16', 'fp8_e4m3fn', 'fp4_e2m1fn'].filter(selected);
const OTHER_FORMATS = [
  'tf32',
  'fp8_e5m2',
  'fp8_e4m3fnuz',
  'fp6_e3m2fn',
  'fp6_e2m3fn',
  'e8m0fnu',
  'int8',
  'nf4',
].filter(selected);

const optsOf = (mode: Mode): CastOptions =>
  mode === 'stochastic r=8'
    ? { rounding: 'stochastic', randomBits: 8, seed: 1 }
    : { rounding: mode, seed: 1 };
const mps = (ms: number, n = N): number => n / ms / 1e3;
const fix = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const loadavg = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
};

function randomData(seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(N);
  for (let i = 0; i < N; i++) x[i] = (rng.nextU32() & 1 ? -1 : 1) * 10 ** (6 * rng.nextFloat() - 3);
  return x;
}

function limitsData(spec: FloatSpec, seed: number): Float32Array {
  const info = formatInfo(spec);
  const rng = new Rng(seed);
  const top = Math.min(2 * info.maxFinite, 3.4028234663852886e38);
  const x = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const m =
      rng.nextU32() & 1
        ? info.maxFinite / 2 + rng.nextFloat() * (top - info.maxFinite / 2)
        : rng.nextFloat() * info.minNormal;
    x[i] = rng.nextU32() & 1 ? -m : m;
  }
  return x;
}

/** CPFloat's description of a format: precision (with the hidden bit), emin, emax, subnormals, inf, saturation. */
function cpfloatFormat(spec: FloatSpec): string[] {
  const info = formatInfo(spec);
  const emax = Math.floor(Math.log2(info.maxFinite));
  const saturate = spec.overflow === 'saturate' || (!spec.inf && spec.nan === 'none');
  return [spec.manBits + 1, 1 - spec.bias, emax, 1, spec.inf ? 1 : 0, saturate ? 1 : 0].map(String);
}

interface Peer {
  readonly path: string;
  readonly dir: string;
}

function peerFromEnv(): Peer | undefined {
  const path = process.env.MIXQ_PEER_CPFLOAT;
  if (!path) {
    console.log('CPFloat peer not available (set MIXQ_PEER_CPFLOAT): ratios are against chopReference');
    return undefined;
  }
  return { path, dir: mkdtempSync(join(tmpdir(), 'mixq-bench-chop-')) };
}

/** CPFloat M/s on `file`, or undefined when the peer fails (its message is printed). */
function peerRate(peer: Peer, file: string, spec: FloatSpec, mode: Mode): number | undefined {
  const round = CPFLOAT_ROUND[mode];
  if (round === undefined) return undefined; // no such mode in CPFloat
  try {
    // 60 ms of best-of per call, twice per row: about the 120 ms of samples each mixq column gets
    const args = [file, ...cpfloatFormat(spec), String(round), '60'];
    const ms = Number.parseFloat(execFileSync(peer.path, args, { encoding: 'utf8' }));
    return Number.isFinite(ms) && ms > 0 ? mps(ms) : undefined;
  } catch (e) {
    console.log(`CPFloat failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return undefined;
  }
}

/** chop's floor: the chunked copy into WebAssembly memory and back out that chop does, no rounding. */
function copyFloor(): (src: Float32Array, out: Float32Array) => void {
  const mem = kernelMemory(CHUNK);
  const w = mem ? mem.f32.subarray(DATA >>> 2, (DATA >>> 2) + CHUNK) : new Float32Array(CHUNK);
  return (src, out) => {
    for (let c = 0; c < src.length; c += CHUNK) {
      const len = Math.min(CHUNK, src.length - c);
      w.set(src.subarray(c, c + len));
      out.set(len === CHUNK ? w : w.subarray(0, len), c);
    }
  };
}

export default async function bench(): Promise<void> {
  console.log(`node ${process.version}, load before: ${loadavg()}`);
  const peer = peerFromEnv();
  const random = randomData(1);
  const out = new Float32Array(N);
  const intoView = kernelFloat32Array(N);
  const copy = copyFloor();
  // the kernel's optimised code (V8 tiers WebAssembly up in the background) before the first timing
  const warm = kernelFloat32Array(1 << 16);
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil)
    for (const mode of MODES) chop(getFormat('fp8_e4m3fn'), random.subarray(0, 1 << 16), optsOf(mode), warm);
  const rows: string[][] = [];
  const short: string[] = [];
  try {
    for (const name of PEER_FORMATS) {
      const spec = getFormat(name) as FloatSpec;
      const buf = chopBuffer(spec, 2 * N);
      const inWasm = buf.view.subarray(0, N);
      const outWasm = buf.view.subarray(N, 2 * N);
      for (const kind of ['random', 'limits'] as const) {
        const data = kind === 'random' ? random : limitsData(spec, 2);
        inWasm.set(data);
        let file = '';
        if (peer) {
          file = join(peer.dir, `${name}-${kind}.f32`);
          writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
        for (const mode of MODES) {
          const o = optsOf(mode);
          // `buffer` is timed as the peer times itself (consecutive passes over the same 10M values,
          // best of, 60 ms per sample) in ABBA order around the peer: peer, buffer, the copying columns,
          // buffer, peer. Interleaving it with the copying columns (as the first version of this bench
          // did) evicted its 80 MB from the last-level cache between passes while the peer's consecutive
          // passes kept theirs: that understated buffer/peer by 10-25% (bf16, 2026-12-07).
          const peerBefore = peer ? peerRate(peer, file, spec, mode) : undefined;
          const buffer1 = timeBest(() => chop(spec, inWasm, o, outWasm), 60, 3);
          const [tJs, tCopy, tInto, tMemcpy] = timeInterleaved(
            [
              () => chop(spec, data, o, out),
              () => copy(data, out),
              () => chop(spec, data, o, intoView),
              () => out.set(data),
            ],
            // ~75 ms of samples per column
            300,
            3,
          );
          const buffer2 = timeBest(() => chop(spec, inWasm, o, outWasm), 60, 3);
          const [buffer, js, floor, into, memcpy] = [
            Math.min(buffer1, buffer2),
            tJs,
            tCopy,
            tInto,
            tMemcpy,
          ].map((t) => mps(t!)) as [number, number, number, number, number];
          // the peer runs before and after mixq's timings; the faster of the two counts
          const peerAfter = peer ? peerRate(peer, file, spec, mode) : undefined;
          const base = peer
            ? Math.max(peerBefore ?? 0, peerAfter ?? 0) || undefined
            : mps(
                timeBest(
                  () => chopReference(spec, data.subarray(0, N_REF), o, out.subarray(0, N_REF)),
                  100,
                  1,
                ),
                N_REF,
              );
          const stochastic = mode.startsWith('stochastic');
          const vsBase = (v: number) => (base ? (v / base).toFixed(2) : '-');
          rows.push([
            name,
            kind,
            mode,
            fix(buffer),
            fix(js),
            fix(floor),
            base ? fix(base) : '-',
            vsBase(buffer),
            (js / floor).toFixed(2),
            stochastic ? vsBase(js) : '',
            fix(into),
            (into / memcpy).toFixed(2),
          ]);
          if (peer && base) {
            if (buffer < base)
              short.push(`${name} ${kind} ${mode}: buffer/peer ${(buffer / base).toFixed(2)}`);
            if (stochastic && js < base)
              short.push(`${name} ${kind} ${mode}: chop/peer ${(js / base).toFixed(2)}`);
          }
          if (!stochastic && js < 0.8 * floor)
            short.push(`${name} ${kind} ${mode}: chop/copy ${(js / floor).toFixed(2)}`);
        }
      }
    }
  } finally {
    if (peer) rmSync(peer.dir, { recursive: true, force: true });
  }
  const baseName = peer ? 'CPFloat' : 'reference';
  printTable(
    [
      'format',
      'data',
      'rounding',
      'buffer M/s',
      'chop M/s',
      'copy M/s',
      `${baseName} M/s`,
      `buffer/${peer ? 'peer' : 'ref'}`,
      'chop/copy',
      `stoch chop/${peer ? 'peer' : 'ref'}`,
      'into M/s',
      'into/memcpy',
    ],
    rows,
  );
  console.log(short.length ? `short of target:\n  ${short.join('\n  ')}` : 'every row meets its target');

  // other formats: fast chop against the reference, nearest-even and stochastic
  console.log('');
  const otherRows: string[][] = [];
  const unsigned = random.map(Math.abs);
  for (const name of OTHER_FORMATS) {
    const spec = getFormat(name);
    const src = spec.kind === 'float' && !spec.signed ? unsigned : random;
    for (const mode of ['nearest-even', 'stochastic'] as const) {
      const o = optsOf(mode);
      const fast = mps(timeBest(() => chop(spec, src, o, out), 100, 1));
      const ref = mps(
        timeBest(() => chopReference(spec, src.subarray(0, N_REF), o, out.subarray(0, N_REF)), 100, 1),
        N_REF,
      );
      otherRows.push([name, mode, fix(fast), fix(ref), `${(fast / ref).toFixed(1)}x`]);
    }
  }
  printTable(['format (random data)', 'rounding', 'chop M/s', 'reference M/s', 'chop/reference'], otherRows);

  // encodeArray (what block formats and quantizers call) against a per-element encode() loop
  console.log('');
  const codeRows: string[][] = [];
  for (const name of ['bf16', 'fp8_e4m3fn', 'fp4_e2m1fn', 'int8'].filter(selected)) {
    const spec = getFormat(name);
    const codes = new Uint16Array(N);
    const fast = mps(timeBest(() => encodeArray(spec, random, {}, codes), 100, 1));
    const refSrc = random.subarray(0, N_REF);
    const ref = mps(
      timeBest(() => {
        for (let i = 0; i < N_REF; i++) codes[i] = encode(spec, refSrc[i]!);
      }, 100),
      N_REF,
    );
    codeRows.push([name, fix(fast), fix(ref), `${(fast / ref).toFixed(1)}x`]);
  }
  printTable(['encodeArray (nearest-even)', 'M/s', 'encode() loop M/s', 'ratio'], codeRows);
  console.log(`load after: ${loadavg()}`);
}

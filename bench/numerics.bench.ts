/**
 * Numerics throughput (`npm run bench -- numerics`), one thread, ratios against baselines timed in the same run.
 *
 * 1. chop of float64 data (4M standard normal doubles) to a format, rounded once: the typed-array kernel
 *    (chop of a Float64Array) against the plain per-value reference (chop64Reference), and against
 *    CPFloat's cpfloat() on the same kind of data when a peer binary is given.
 * 2. A 256 x 256 x 256 matmul with fp16 operands and an fp16 accumulator (exact products, one rounding to
 *    fp16 per step, k in order): the fast kernel against the reference accumulation (accumulate.ts) and a
 *    plain float64 matmul (no rounding at all: the ceiling), and CPFloat rounding each row update.
 *    Throughput in M multiply-adds per second.
 *
 * CPFloat peer: set MIXQ_PEER_CPFLOAT to an executable that answers `chop <fp16|bf16|e4m3|fp32> <N> <ne|sr|od>`
 * and `matmul <n>` with one number (M values/s, M MAC/s). Built outside the repository from CPFloat's
 * sources (see the report); "peer not available" otherwise.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Rng } from '../src/core/rng.ts';
import { chop, chop64Reference, getFormat, parseFormat, type Rounding } from '../src/formats/index.ts';
import { dotReference } from '../src/numerics/accumulate.ts';
import { withPrecision } from '../src/numerics/index.ts';
import { printTable, timeBest } from './util.ts';

const N = 4_000_000;
const N_REF = 400_000;
const PEER = process.env.MIXQ_PEER_CPFLOAT;

function peer(args: string[]): string {
  if (!PEER) return 'peer not available';
  try {
    return execFileSync(PEER, args, { encoding: 'utf8', timeout: 120_000 }).trim();
  } catch {
    return 'peer failed';
  }
}

export default async function bench(): Promise<void> {
  console.log(`loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  const rng = new Rng(1);
  const src = Float64Array.from({ length: N }, () => rng.nextNormal());
  const out = new Float64Array(N);
  const cases: [string, Rounding, string][] = [
    ['fp16', 'nearest-even', 'fp16 ne'],
    ['bf16', 'nearest-even', 'bf16 ne'],
    ['fp8_e4m3fn', 'nearest-even', 'e4m3 ne'],
    ['fp32', 'nearest-even', 'fp32 ne'],
    ['e8m40', 'nearest-even', ''],
    ['fp16', 'stochastic', 'fp16 sr'],
    ['bf16', 'stochastic', 'bf16 sr'],
    ['fp16', 'nearest-odd', 'fp16 od'],
    ['fp16', 'up', ''],
  ];
  const rows: string[][] = [];
  for (const [name, rounding, peerArgs] of cases) {
    const spec = parseFormat(name);
    const opts = { rounding, seed: 1 };
    const fast = N / timeBest(() => chop(spec, src, opts, out), 300, 3) / 1e3;
    const refSrc = src.subarray(0, N_REF);
    const refOut = out.subarray(0, N_REF);
    const ref = N_REF / timeBest(() => chop64Reference(spec, refSrc, opts, refOut), 200, 2) / 1e3;
    const [pf, pm] = peerArgs.split(' ');
    const p = pf && pm ? peer(['chop', pf, String(N), pm]) : '-';
    rows.push([name, rounding, fast.toFixed(1), ref.toFixed(1), `${(fast / ref).toFixed(1)}x`, p]);
  }
  console.log('chop of float64 data (M values/s)');
  printTable(['format', 'rounding', 'chop', 'reference', 'chop/ref', 'CPFloat'], rows);

  // 256^3 matmul, fp16 operands, fp16 accumulator
  const n = 256;
  const fp16 = getFormat('fp16');
  const A = chop(
    fp16,
    Float64Array.from({ length: n * n }, () => rng.nextNormal()),
  );
  const B = chop(
    fp16,
    Float64Array.from({ length: n * n }, () => rng.nextNormal()),
  );
  const ctx = withPrecision({ format: 'fp16', accumulator: { format: 'fp16' } });
  const C = new Float64Array(n * n);
  const macs = n * n * n;
  const tFast = timeBest(() => ctx.matmul(A, B, n, n, n, C), 300, 2);
  const Bt = new Float64Array(n * n);
  for (let t = 0; t < n; t++) for (let j = 0; j < n; j++) Bt[j * n + t] = B[t * n + j]!;
  const Cref = new Float64Array(n * n);
  const r = new Rng(0);
  const tRef = timeBest(
    () => {
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) Cref[i * n + j] = dotReference(ctx.plan, A, i * n, 1, Bt, j * n, 1, n, r);
    },
    300,
    1,
  );
  for (let i = 0; i < n * n; i++)
    if (!Object.is(C[i], Cref[i])) throw new Error(`fast and reference differ at ${i}`);
  const tPlain = timeBest(() => {
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < n; t++) s += A[i * n + t]! * Bt[j * n + t]!;
        C[i * n + j] = s;
      }
  });
  const mm = (t: number) => (macs / t / 1e3).toFixed(1);
  console.log('\n256 x 256 x 256 matmul, fp16 operands, fp16 accumulator (M multiply-adds/s)');
  printTable(
    ['kernel', 'M MAC/s', 'vs reference'],
    [
      ['mixq fast kernel', mm(tFast), `${(tRef / tFast).toFixed(1)}x`],
      ['mixq reference (accumulate.ts)', mm(tRef), '1.0x'],
      ['plain float64, no rounding (ceiling)', mm(tPlain), `${(tRef / tPlain).toFixed(1)}x`],
      ['CPFloat, row updates rounded by cpfloat()', peer(['matmul', String(n)]), ''],
    ],
  );
  console.log(`loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
}

/**
 * Block format throughput, one thread.
 *
 * 1. ggml's block types (every type mixq writes), encode with and without an importance matrix and
 *    decode, on ROWS x 4096 N(0,1) float32 values (seeded; ROWS = 1024, or MIXQ_BENCH_GGML_ROWS) with a
 *    seeded positive imatrix, in M values/s. mixq is GGML_CODECS (the WebAssembly kernel where the engine
 *    has SIMD128). Baselines measured in the same run:
 *    - the peer, ggml-quants.c's own `quantize_<t>` / `dequantize_row_<t>` built outside the repository
 *      (gcc -O3, no -march: byte-identical to mixq), when MIXQ_PEER_GGML names its harness:
 *        $MIXQ_PEER_GGML bench <data.f32> <n_per_row> <imatrix.f32> <min_ms> <TYPE>
 *      prints `TYPE <encode M/s> <encode with imatrix M/s> <decode M/s>` (a warm-up, then the best of at
 *      least 3 runs and 300 ms, as timeBest here); otherwise "peer not available";
 *    - mixq's plain TypeScript reference (GGML_REFERENCE_CODECS), on the first REF_ROWS rows (its speed
 *      per value does not depend on the row count; the full matrix would take minutes).
 *    Target (issue 20): mixq >= 0.7x the peer in every encode row.
 * 2. Whole-tensor encoding on worker threads (runtime/block-encode.node.ts, the same bytes for any thread
 *    count) on the same matrix: 2 threads against 1 (GGML_CODECS on this thread), Q4_K and Q6_K.
 * 3. OCP MX and NVFP4 encode/decode of 2^20 values against a plain copy and a naive int8 block quantizer.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGML_CODECS, GGML_REFERENCE_CODECS, type GgmlTypeName } from '../src/blocks/ggml/index.ts';
import { mxDecode, mxEncode } from '../src/blocks/mx.ts';
import { nvfp4Decode, nvfp4Encode } from '../src/blocks/nvfp4.ts';
import { Rng } from '../src/core/rng.ts';
import { closeBlockEncodeWorkers, quantizeOnThreads } from '../src/runtime/block-encode.node.ts';
import { printTable, timeBest } from './util.ts';

const COLS = 4096;
const ROWS = Number(process.env.MIXQ_BENCH_GGML_ROWS ?? 1024);
const REF_ROWS = 32;
const TYPES: readonly GgmlTypeName[] = [
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q8_0',
  'Q2_K',
  'Q3_K',
  'Q4_K',
  'Q5_K',
  'Q6_K',
  'IQ4_NL',
  'MXFP4',
];

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
}

interface PeerRow {
  enc: number;
  encImatrix: number;
  dec: number;
}

/** Runs the peer harness on one type; undefined when it is not configured or fails. */
function peer(type: GgmlTypeName, dataFile: string, imFile: string): PeerRow | undefined {
  const exe = process.env.MIXQ_PEER_GGML;
  if (!exe) return undefined;
  const r = spawnSync(exe, ['bench', dataFile, String(COLS), imFile, '300', type], { encoding: 'utf8' });
  const m = r.status === 0 ? r.stdout.trim().split(/\s+/) : [];
  if (m[0] !== type) {
    console.log(`peer failed on ${type}: ${r.stderr || r.error?.message || r.stdout}`);
    return undefined;
  }
  return { enc: Number(m[1]), encImatrix: Number(m[2]), dec: Number(m[3]) };
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** The bench matrix (ROWS x COLS, N(0,1)) and its imatrix, from one seed. */
function benchData(): { x: Float32Array; imatrix: Float32Array } {
  const rng = new Rng(1);
  const x = new Float32Array(ROWS * COLS);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextNormal();
  // importance weights: mean squared activations of a seeded, unevenly scaled input
  const imatrix = Float32Array.from({ length: COLS }, () => {
    const s = Math.exp(rng.nextNormal());
    return s * s * (0.5 + rng.nextFloat());
  });
  return { x, imatrix };
}

async function ggmlTable(x: Float32Array, imatrix: Float32Array): Promise<void> {
  const n = x.length;
  const xRef = x.subarray(0, REF_ROWS * COLS);

  let dir: string | undefined;
  let dataFile = '';
  let imFile = '';
  if (process.env.MIXQ_PEER_GGML) {
    dir = mkdtempSync(join(tmpdir(), 'mixq-bench-ggml-'));
    dataFile = join(dir, 'x.f32');
    imFile = join(dir, 'imatrix.f32');
    writeFileSync(dataFile, new Uint8Array(x.buffer));
    writeFileSync(imFile, new Uint8Array(imatrix.buffer));
  }

  // warm every kernel path first (JIT tiers, memory growth), so the first type timed is not penalised
  for (const t of TYPES) {
    const c = GGML_CODECS[t];
    const w = x.subarray(0, 64 * COLS);
    c.dequantize(c.quantize(w, COLS, imatrix), w.length);
    c.quantize(w, COLS, null);
  }

  const mvs = (values: number, ms: number): number => values / ms / 1e3;
  const rows: string[][] = [];
  let short = 0;
  const havePeer = Boolean(process.env.MIXQ_PEER_GGML);
  const decoded = new Float32Array(x.length);
  try {
    for (const t of TYPES) {
      const fast = GGML_CODECS[t];
      const ref = GGML_REFERENCE_CODECS[t];
      const p = peer(t, dataFile, imFile);
      const bytes = fast.quantize(x, COLS, null);
      // encodes write into one reused buffer (quantizeInto), as the peer writes into its own
      const encoded = new Uint8Array(bytes.length);
      const refBytes = ref.quantize(xRef, COLS, null);
      const lines: [string, number, number | undefined, number][] = [
        [
          'encode',
          mvs(
            n,
            timeBest(() => fast.quantizeInto(x, COLS, null, encoded)),
          ),
          p?.enc,
          mvs(
            xRef.length,
            timeBest(() => ref.quantize(xRef, COLS, null)),
          ),
        ],
        [
          'encode + imatrix',
          mvs(
            n,
            timeBest(() => fast.quantizeInto(x, COLS, imatrix, encoded)),
          ),
          p?.encImatrix,
          mvs(
            xRef.length,
            timeBest(() => ref.quantize(xRef, COLS, imatrix)),
          ),
        ],
        [
          'decode',
          // into a reused array, as the peer decodes into its buffer (a fresh 16 MB array per call is
          // dominated by first-touch page faults on this VM: 45 ms of the ~48)
          mvs(
            n,
            timeBest(() => fast.dequantizeInto(bytes, decoded)),
          ),
          p?.dec,
          mvs(
            xRef.length,
            timeBest(() => ref.dequantize(refBytes, xRef.length)),
          ),
        ],
      ];
      for (const [op, m, pv, r] of lines) {
        const ratio = pv === undefined ? undefined : m / pv;
        if (ratio !== undefined && op !== 'decode' && ratio < 0.7) short++;
        rows.push([
          t,
          op,
          fmt(m),
          pv === undefined ? '-' : fmt(pv),
          ratio === undefined ? '-' : `${ratio.toFixed(2)}x${op !== 'decode' && ratio < 0.7 ? ' SHORT' : ''}`,
          fmt(r),
          `${(m / r).toFixed(1)}x`,
        ]);
      }
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `ggml block types: ${ROWS} x ${COLS} float32 N(0,1), imatrix ${COLS} seeded weights; M values/s, one thread`,
  );
  console.log(
    havePeer
      ? `peer: ggml-quants.c via MIXQ_PEER_GGML=${process.env.MIXQ_PEER_GGML}`
      : 'peer not available (set MIXQ_PEER_GGML): baseline is the TypeScript reference only',
  );
  printTable(
    ['type', 'op', 'mixq', 'peer', 'mixq / peer', `reference (${REF_ROWS} rows)`, 'mixq / ref'],
    rows,
  );
  if (havePeer) console.log(`encode rows below 0.7x the peer: ${short}`);
}

function naiveInt8(x: Float32Array, q: Int8Array, s: Float32Array): void {
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    s[b >> 5] = d;
    for (let i = b; i < b + 32; i++) q[i] = Math.round(x[i]! * id);
  }
}

function otherBlocksTable(): void {
  const N = 1 << 20;
  const rng = new Rng(1);
  const x = Float32Array.from({ length: N }, () => rng.nextNormal());
  const copy = new Float32Array(N);
  const mvs = (ms: number): number => N / ms / 1e3;
  const copyMs = timeBest(() => copy.set(x));
  const q = new Int8Array(N);
  const s = new Float32Array(N / 32);
  const naiveMs = timeBest(() => naiveInt8(x, q, s));
  const rows: string[][] = [];
  const add = (name: string, encMs: number, decMs: number): void => {
    rows.push([
      name,
      mvs(encMs).toFixed(1),
      mvs(decMs).toFixed(1),
      (mvs(encMs) / mvs(naiveMs)).toFixed(3),
      (mvs(decMs) / mvs(copyMs)).toFixed(4),
    ]);
  };
  const mx = mxEncode('mxfp4_e2m1', x);
  add(
    'OCP mxfp4_e2m1',
    timeBest(() => mxEncode('mxfp4_e2m1', x)),
    timeBest(() => mxDecode('mxfp4_e2m1', mx, N)),
  );
  const nv = nvfp4Encode(x).bytes;
  add(
    'NVFP4',
    timeBest(() => nvfp4Encode(x)),
    timeBest(() => nvfp4Decode(nv, N)),
  );
  console.log(
    `\n${N} float32 values; baselines: copy ${mvs(copyMs).toFixed(0)} M/s, naive int8 blocks ${mvs(naiveMs).toFixed(1)} M/s`,
  );
  printTable(['format', 'encode M/s', 'decode M/s', 'encode / naive int8', 'decode / copy'], rows);
}

async function threadsTable(x: Float32Array, imatrix: Float32Array): Promise<void> {
  const rows: string[][] = [];
  const timeAsync = async (f: () => Promise<unknown>): Promise<number> => {
    await f(); // warm-up (starts the workers)
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      await f();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  for (const [t, im] of [
    ['Q4_K', imatrix],
    ['Q4_K', null],
    ['Q6_K', null],
  ] as const) {
    const one = timeBest(() => GGML_CODECS[t].quantize(x, COLS, im), 0);
    const two = await timeAsync(() => quantizeOnThreads(t, x, COLS, im, 2));
    const mvs = (ms: number): string => fmt(x.length / ms / 1e3);
    rows.push([t, im ? 'yes' : 'no', mvs(one), mvs(two), `${(one / two).toFixed(2)}x`]);
  }
  await closeBlockEncodeWorkers();
  console.log(`\nwhole-tensor encoding on worker threads (${ROWS} x ${COLS}), M values/s`);
  printTable(['type', 'imatrix', '1 thread', '2 threads', '2 / 1'], rows);
}

export default async function bench(): Promise<void> {
  console.log(`load before: ${loadavg()}`);
  const { x, imatrix } = benchData();
  await ggmlTable(x, imatrix);
  await threadsTable(x, imatrix);
  otherBlocksTable();
  console.log(`load after: ${loadavg()}`);
}

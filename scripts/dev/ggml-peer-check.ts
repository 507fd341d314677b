/**
 * Dev-only cross-check of mixq's ggml encoders against ggml itself on large random data, beyond the golden
 * file: for every type, `quantize_<t>` with and without an importance matrix, GGML_CODECS (the fast path)
 * must give ggml's bytes exactly. Not part of CI.
 *
 * Needs the same peer harness as bench/blocks.bench.ts (ggml-quants.c built outside the repository with
 * gcc -O3, no -march), named by MIXQ_PEER_GGML; this script uses its `quantize` command:
 *   $MIXQ_PEER_GGML quantize <TYPE> <data.f32> <n_per_row> <imatrix.f32|-> <out.bin>
 *
 * Usage: MIXQ_PEER_GGML=/path/to/peer node --import tsx scripts/dev/ggml-peer-check.ts [rows] [seed]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGML_CODECS, type GgmlTypeName } from '../../src/blocks/ggml/index.ts';
import { Rng } from '../../src/core/rng.ts';

const peer = process.env.MIXQ_PEER_GGML;
if (!peer) {
  console.error('set MIXQ_PEER_GGML to the peer harness');
  process.exit(2);
}
const COLS = 4096;
const rows = Number(process.argv[2] ?? 256);
const rng = new Rng(Number(process.argv[3] ?? 3));
// rows of different character: plain normal, heavy-tailed (outliers), sparse, and rows scaled far from 1
const x = new Float32Array(rows * COLS);
for (let r = 0; r < rows; r++) {
  const kind = r % 4;
  const scale = kind === 3 ? 10 ** (rng.nextFloat() * 40 - 20) : 1;
  for (let i = r * COLS; i < (r + 1) * COLS; i++) {
    const z = rng.nextNormal();
    x[i] =
      kind === 1 && rng.nextFloat() < 0.01 ? z * 50 : kind === 2 && rng.nextFloat() < 0.7 ? 0 : z * scale;
  }
}
const imatrix = Float32Array.from({ length: COLS }, () => Math.exp(2 * rng.nextNormal()));

const dir = mkdtempSync(join(tmpdir(), 'mixq-ggml-check-'));
let bad = 0;
try {
  writeFileSync(join(dir, 'x.f32'), new Uint8Array(x.buffer));
  writeFileSync(join(dir, 'im.f32'), new Uint8Array(imatrix.buffer));
  for (const t of Object.keys(GGML_CODECS) as GgmlTypeName[]) {
    for (const im of [null, imatrix]) {
      const out = join(dir, 'out.bin');
      const r = spawnSync(peer, [
        'quantize',
        t,
        join(dir, 'x.f32'),
        String(COLS),
        im ? join(dir, 'im.f32') : '-',
        out,
      ]);
      if (r.status !== 0) throw new Error(`peer failed on ${t}: ${r.stderr}`);
      const want = new Uint8Array(readFileSync(out));
      const got = GGML_CODECS[t].quantize(x, COLS, im);
      let d = -1;
      if (got.length !== want.length) d = Math.min(got.length, want.length);
      else for (let i = 0; i < got.length && d < 0; i++) if (got[i] !== want[i]) d = i;
      if (d >= 0) bad++;
      console.log(
        `${t.padEnd(6)} imatrix=${im ? 'yes' : 'no '} ${d < 0 ? 'same bytes' : `DIFFERS at byte ${d}`} (${got.length} bytes)`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(bad ? 1 : 0);

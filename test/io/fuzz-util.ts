/**
 * Mutation fuzzing shared by the fuzz tests (test/io/fuzz-*.test.ts) and the long run (scripts/fuzz.ts).
 * A case = a seed file + one to three mutations (bit flips, byte sets, truncation, huge u64 lengths,
 * wrong offsets at known field positions, chunk splices, random garbage behind a valid magic). The
 * property: the parser either succeeds (and then every tensor's bytes are readable and of the stated
 * size) or throws MixqError; any other exception, a read beyond the file, or an allocation estimate
 * beyond the cap is a failure, reported with the case number so it can be replayed.
 */
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import { ByteReader } from '../../src/io/reader.ts';
import type { ByteSource } from '../../src/io/source.ts';

/**
 * Positions of every u32/u64 field a ByteReader-based parser reads while `run` parses a seed: the
 * lengths, counts, types, dims and offsets worth mutating. Patches ByteReader's prototype temporarily.
 */
export function recordHotspots(run: () => void): number[] {
  const proto = ByteReader.prototype as unknown as Record<
    'u32' | 'u64',
    (this: ByteReader, f: string) => unknown
  >;
  const saved = { u32: proto.u32, u64: proto.u64 };
  const at = new Set<number>();
  for (const k of ['u32', 'u64'] as const) {
    const orig = saved[k];
    proto[k] = function (this: ByteReader, f: string) {
      at.add(this.pos);
      return orig.call(this, f);
    };
  }
  try {
    run();
  } finally {
    proto.u32 = saved.u32;
    proto.u64 = saved.u64;
  }
  return [...at].sort((a, b) => a - b);
}

export interface Mutator {
  readonly rng: Rng;
  /** Positions of interesting u64/u32 fields (lengths, counts, offsets) in the seed. */
  readonly hotspots: readonly number[];
}

const int = (rng: Rng, n: number) => rng.nextU32() % Math.max(1, n);

const SPECIAL_U64 = [
  0n,
  1n,
  0x7fffffffn,
  0xffffffffn,
  1n << 32n,
  1n << 53n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
];
const SPECIAL_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x7b, 0x7d, 0x22, 0x5b, 0x30, 0x39, 0x2d];

/** Applies one random mutation. */
export function mutateOnce(seed: Uint8Array, m: Mutator): Uint8Array {
  const { rng } = m;
  const b = seed.slice();
  const dv = new DataView(b.buffer);
  switch (int(rng, 8)) {
    case 0: {
      // bit flips
      const k = 1 + int(rng, 8);
      for (let i = 0; i < k && b.length; i++) b[int(rng, b.length)]! ^= 1 << int(rng, 8);
      return b;
    }
    case 1: {
      // byte sets to boundary / structural values
      const k = 1 + int(rng, 4);
      for (let i = 0; i < k && b.length; i++)
        b[int(rng, b.length)] = SPECIAL_BYTES[int(rng, SPECIAL_BYTES.length)]!;
      return b;
    }
    case 2:
      // truncation
      return b.subarray(0, int(rng, b.length));
    case 3: {
      // huge / boundary u64 at a hotspot (length, count, dim, offset) or anywhere
      const at =
        m.hotspots.length && rng.nextFloat() < 0.8
          ? m.hotspots[int(rng, m.hotspots.length)]!
          : int(rng, b.length);
      if (at + 8 <= b.length) {
        const v =
          rng.nextFloat() < 0.5
            ? SPECIAL_U64[int(rng, SPECIAL_U64.length)]!
            : BigInt(int(rng, 2 * b.length + 64));
        dv.setBigUint64(at, v, true);
      }
      return b;
    }
    case 4: {
      // small u32 at a hotspot (types, n_dims, small counts)
      const at = m.hotspots.length ? m.hotspots[int(rng, m.hotspots.length)]! : int(rng, b.length);
      if (at + 4 <= b.length) dv.setUint32(at, int(rng, 64), true);
      return b;
    }
    case 5: {
      // splice: delete or duplicate a chunk
      const a = int(rng, b.length);
      const len = 1 + int(rng, Math.min(64, b.length - a));
      if (rng.nextFloat() < 0.5) return concat(b.subarray(0, a), b.subarray(a + len));
      return concat(b.subarray(0, a + len), b.subarray(a));
    }
    case 6: {
      // random garbage after the first 4..24 bytes (keeps the magic / length prefix)
      const keep = Math.min(b.length, 4 + int(rng, 21));
      const out = new Uint8Array(keep + int(rng, 256));
      out.set(b.subarray(0, keep));
      for (let i = keep; i < out.length; i++) out[i] = int(rng, 256);
      return out;
    }
    default: {
      // overwrite a run of bytes with random values
      const a = int(rng, b.length);
      const len = Math.min(b.length - a, 1 + int(rng, 16));
      for (let i = 0; i < len; i++) b[a + i] = int(rng, 256);
      return b;
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A ByteSource over bytes that records the largest single read (to check reads stay bounded). */
export function trackingSource(
  bytes: Uint8Array,
  name: string,
): ByteSource & { maxRead: number; totalRead: number; violation: string } {
  const s = {
    name,
    size: bytes.length,
    maxRead: 0,
    totalRead: 0,
    violation: '',
    read(offset: number, length: number): Promise<Uint8Array> {
      if (offset < 0 || length < 0 || offset + length > bytes.length) {
        // the parser promised never to read outside the file: a hard failure even if it is caught
        s.violation = `read past the end (${offset}+${length} > ${bytes.length})`;
        return Promise.reject(new Error(`FUZZ: read past the end (${offset}+${length} > ${bytes.length})`));
      }
      s.maxRead = Math.max(s.maxRead, length);
      s.totalRead += length;
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
  return s;
}

export interface FuzzStats {
  cases: number;
  parsed: number;
  rejected: number;
  maxCharged: number;
  maxRead: number;
  ms: number;
  /** Rejections by field pattern (first 40 chars of the field), for a feel of coverage. */
  fields: Map<string, number>;
}

/**
 * Runs `cases` mutated cases against `parse`, which must resolve to { charged, tensorsOk } or throw.
 * Throws an Error describing the first non-MixqError failure.
 */
export async function fuzz(
  seeds: readonly { bytes: Uint8Array; hotspots: readonly number[] }[],
  cases: number,
  seed: number,
  parse: (src: ReturnType<typeof trackingSource>) => Promise<{ charged: number }>,
  caps: { maxCharged: number; maxRead: number },
  /** Format-aware mutation, used for half of the mutations when given. */
  extraMutate?: (bytes: Uint8Array, rng: Rng) => Uint8Array,
): Promise<FuzzStats> {
  const rng = new Rng(seed);
  const stats: FuzzStats = {
    cases: 0,
    parsed: 0,
    rejected: 0,
    maxCharged: 0,
    maxRead: 0,
    ms: 0,
    fields: new Map(),
  };
  const t0 = performance.now();
  for (let c = 0; c < cases; c++) {
    const s = seeds[c % seeds.length]!;
    let bytes = s.bytes;
    const k = 1 + int(rng, 3);
    for (let i = 0; i < k; i++) {
      bytes =
        extraMutate && rng.nextFloat() < 0.5
          ? extraMutate(bytes, rng)
          : mutateOnce(bytes, { rng, hotspots: s.hotspots });
    }
    const src = trackingSource(bytes, `case-${c}`);
    try {
      const r = await parse(src);
      stats.parsed++;
      stats.maxCharged = Math.max(stats.maxCharged, r.charged);
    } catch (e) {
      if (!(e instanceof MixqError)) {
        throw new Error(`fuzz seed ${seed} case ${c}: non-MixqError ${String((e as Error)?.stack ?? e)}`);
      }
      if (e.source !== `case-${c}` || !e.field || !e.expected) {
        throw new Error(`fuzz seed ${seed} case ${c}: MixqError without file/field/expected: ${e.message}`);
      }
      stats.rejected++;
      const key = e.field
        .replace(/\[\d+\]/g, '[]')
        .replace(/'[^']*'/g, "''")
        .slice(0, 40);
      stats.fields.set(key, (stats.fields.get(key) ?? 0) + 1);
    }
    if (src.violation) throw new Error(`fuzz seed ${seed} case ${c}: ${src.violation}`);
    stats.maxRead = Math.max(stats.maxRead, src.maxRead);
    if (src.maxRead > caps.maxRead)
      throw new Error(`fuzz seed ${seed} case ${c}: read ${src.maxRead} bytes at once`);
    if (stats.maxCharged > caps.maxCharged)
      throw new Error(`fuzz seed ${seed} case ${c}: charged ${stats.maxCharged}`);
    stats.cases++;
  }
  stats.ms = performance.now() - t0;
  return stats;
}

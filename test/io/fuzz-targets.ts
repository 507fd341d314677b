/**
 * The two fuzz targets (GGUF, safetensors): seed files, format-aware mutations, and the property each
 * parse must satisfy. Used by test/io/fuzz.test.ts (normal run) and scripts/fuzz.ts (long run).
 */
import { readFileSync } from 'node:fs';
import type { Rng } from '../../src/core/rng.ts';
import {
  concatBytes,
  type GgufKV,
  ggufModelView,
  parseGguf,
  readGguf,
  readSafetensors,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDtype,
  safetensorsModelView,
  writeGguf,
  writeSafetensors,
} from '../../src/io/index.ts';
import type { IoLimits } from '../../src/io/limits.ts';
import { type FuzzStats, fuzz, recordHotspots } from './fuzz-util.ts';

/** Tight caps so the fuzz exercises them; the property checks the estimate never exceeds them. */
export const FUZZ_LIMITS: Partial<IoLimits> = {
  maxHeaderBytes: 1 << 16,
  maxStringBytes: 1 << 12,
  maxArrayLength: 1 << 12,
  maxTotalAllocation: 1 << 20,
  maxTensorCount: 1 << 10,
};

const fill = (n: number, k: number) => new Uint8Array(n).map((_, i) => (i * 31 + k) & 0xff);

export function ggufSeeds(): Uint8Array[] {
  const golden = new Uint8Array(readFileSync(new URL('../golden/tiny.gguf', import.meta.url)));
  const kv: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: 'llama' },
    { key: 'general.alignment', type: 'u32', value: 16 },
    { key: 'llama.block_count', type: 'u32', value: 2 },
    {
      key: 'tokenizer.ggml.tokens',
      type: 'arr',
      value: { itemType: 'str', items: ['<s>', '</s>', 'a', 'ab'] },
    },
    { key: 'tokenizer.ggml.scores', type: 'arr', value: { itemType: 'f32', items: [0, -1, -2.5, 3] } },
    {
      key: 'nested',
      type: 'arr',
      value: {
        itemType: 'arr',
        items: [
          { itemType: 'u64', items: [1n, 2n] },
          { itemType: 'bool', items: [true] },
        ],
      },
    },
    { key: 'x.i64', type: 'i64', value: -5n },
    { key: 'x.f64', type: 'f64', value: 0.1 },
  ];
  const written = concatBytes(
    writeGguf({
      kv,
      tensors: [
        { name: 'token_embd.weight', ne: [32, 3], type: 'q8_0', data: fill(3 * 34, 1) },
        { name: 'blk.0.attn_norm.weight', ne: [8], type: 'f32', data: fill(32, 2) },
        { name: 'blk.1.ffn_up.weight', ne: [256, 1, 1], type: 'q4_K', data: fill(144, 3) },
        { name: 'empty', ne: [0, 4], type: 'f16', data: new Uint8Array(0) },
      ],
    }),
  );
  const noTensors = concatBytes(writeGguf({ kv: kv.slice(0, 4), tensors: [] }));
  return [golden, written, noTensors];
}

export function safetensorsSeeds(): Uint8Array[] {
  const dtypes = Object.keys(SAFETENSORS_DTYPE_BYTES) as SafetensorsDtype[];
  const a = concatBytes(
    writeSafetensors({
      metadata: { format: 'pt' },
      tensors: dtypes.map((dtype, i) => ({
        name: `model.layers.${i}.w`,
        dtype,
        shape: [2, i % 4],
        data: fill(2 * (i % 4) * SAFETENSORS_DTYPE_BYTES[dtype], i),
      })),
    }),
  );
  const b = concatBytes(
    writeSafetensors({
      tensors: [
        { name: 'lm_head.weight', dtype: 'BF16', shape: [4, 8], data: fill(64, 9) },
        { name: 'scalar', dtype: 'F32', shape: [], data: fill(4, 1) },
      ],
    }),
  );
  return [a, b];
}

/** JSON-level mutation of a safetensors header: change a dtype, a shape entry, an offset, or drop a field. */
export function mutateSafetensorsJson(bytes: Uint8Array, rng: Rng): Uint8Array {
  if (bytes.length < 9) return bytes;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8) return bytes;
  let root: Record<string, Record<string, unknown>>;
  try {
    root = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    return bytes;
  }
  const names = Object.keys(root).filter((k) => k !== '__metadata__');
  if (!names.length || typeof root !== 'object' || root === null) return bytes;
  const e = root[names[rng.nextU32() % names.length]!];
  if (typeof e !== 'object' || e === null) return bytes;
  const pick = <T>(xs: readonly T[]): T => xs[rng.nextU32() % xs.length]!;
  const nums = [-1, 0, 1, 2, 7, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, 0.5, n];
  if (rng.nextU32() % 8 === 0) {
    root[names[0]!] = pick([null, 1, 'x', [], [1, 2]]) as unknown as Record<string, unknown>;
  } else
    switch (rng.nextU32() % 6) {
      case 0:
        e.dtype = pick(['F32', 'I4', 'f32', 'F8_E4M3', 7, null, 'BOOL']);
        break;
      case 1:
        e.shape = pick([[pick(nums)], [2, pick(nums)], 'x', [], Array(20).fill(1)]);
        break;
      case 2:
        e.data_offsets = pick([[pick(nums), pick(nums)], [0], 'x', [0, 1, 2]]);
        break;
      case 3:
        delete e[pick(['dtype', 'shape', 'data_offsets'])];
        break;
      case 4:
        root.__metadata__ = pick([
          { a: 'b' },
          { a: 1 } as unknown as Record<string, unknown>,
          { __proto__: 'x' },
        ]);
        break;
      default:
        root[`${names[0]}`] = { ...e, data_offsets: [0, pick(nums)] };
    }
  const header = new TextEncoder().encode(JSON.stringify(root));
  const out = new Uint8Array(8 + header.length + (bytes.length - 8 - n));
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(bytes.subarray(8 + n), 8 + header.length);
  return out;
}

export function fuzzGguf(cases: number, seed: number): Promise<FuzzStats> {
  const seeds = ggufSeeds().map((bytes) => ({
    bytes,
    hotspots: recordHotspots(() => parseGguf(bytes)),
  }));
  const maxLen = Math.max(...seeds.map((s) => s.bytes.length));
  return fuzz(
    seeds,
    cases,
    seed,
    async (src) => {
      // a small first read on some cases exercises the prefix-growing path (it re-parses, so not on all)
      const f = await readGguf(src, {
        limits: FUZZ_LIMITS,
        ...(src.size % 4 === 0 ? { initialReadBytes: 64 } : {}),
      });
      for (const t of f.tensors) {
        const b = await f.readTensorBytes(t);
        if (b.length !== t.nbytes) throw new Error(`tensor ${t.name}: ${b.length} != ${t.nbytes}`);
      }
      ggufModelView(f);
      return { charged: f.chargedBytes };
    },
    {
      maxCharged: FUZZ_LIMITS.maxTotalAllocation!,
      maxRead: Math.max(FUZZ_LIMITS.maxHeaderBytes!, 2 * maxLen + 600),
    },
  );
}

export function fuzzSafetensors(cases: number, seed: number): Promise<FuzzStats> {
  const seeds = safetensorsSeeds().map((bytes) => ({ bytes, hotspots: [0] }));
  const maxLen = Math.max(...seeds.map((s) => s.bytes.length));
  return fuzz(
    seeds,
    cases,
    seed,
    async (src) => {
      const f = await readSafetensors(src, { limits: FUZZ_LIMITS });
      let total = 0;
      for (const t of f.tensors) {
        const b = await f.readTensorBytes(t);
        if (b.length !== t.nbytes) throw new Error(`tensor ${t.name}: ${b.length} != ${t.nbytes}`);
        total += b.length;
      }
      if (total !== src.size - f.dataOffset) throw new Error('tensors do not tile the data section');
      safetensorsModelView(f);
      return { charged: f.headerLength };
    },
    {
      maxCharged: FUZZ_LIMITS.maxHeaderBytes!,
      maxRead: Math.max(FUZZ_LIMITS.maxHeaderBytes!, 2 * maxLen + 600),
    },
    mutateSafetensorsJson,
  );
}

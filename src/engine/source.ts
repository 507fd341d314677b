/**
 * Where a model's tensors come from, before any is read: a GGUF file (any ggml type mix) or a Hugging Face
 * folder whose safetensors hold float tensors and mixq's quantized weights (docs/safetensors-quantized.md:
 * `W.qweight`, `W.scales`, ... described by `__metadata__.quantization_config`). Both become one table of
 * tensors under llama.cpp's GGUF names (io/llm/names.ts), each with its storage and a reader, so the
 * loader (load.ts) has one path. Browser-safe; the Node edge (load.node.ts) adds `readInto`, which reads
 * file bytes straight into kernel memory.
 */
import { MixqError } from '../core/errors.ts';
import { type GgufFile, type GgufTensorInfo } from '../io/gguf/read.ts';
import { type LlmConfig, llmConfigFromGguf } from '../io/llm/config.ts';
import { type FolderSource, type HfTensor, openHfFolder } from '../io/llm/hf-folder.ts';
import { ggufNameFromHf } from '../io/llm/names.ts';
import { type LlmTokenizer, tokenizerFromGguf } from '../io/llm/tokenizer.ts';
import { readSafetensors, type SafetensorsFile, type SafetensorsTensorInfo } from '../io/safetensors/read.ts';
import { GGUF_KV_METADATA_KEY, ggufMetadata, parseGgufKvJson } from '../io/gguf/kv-json.ts';
import type { MixqSafetensorsEntry, MixqSafetensorsTensors } from '../kernels/source.ts';
import type { RopeMode } from './ops.ts';

/** Bytes of a tensor exactly as stored: GGUF tensor data, or a safetensors float tensor (same layout). */
export interface RawStorage {
  readonly kind: 'raw';
  /** ggml type name: F32, F16, BF16, Q8_0, Q4_K, ... (safetensors F32 / F16 / BF16 map to the same). */
  readonly type: string;
  readonly nbytes: number;
  read(): Promise<Uint8Array>;
  /** Reads the bytes into `dest` (dest.length === nbytes) without an intermediate buffer, when possible. */
  readonly readInto?: (dest: Uint8Array) => Promise<void>;
}

/** A mixq quantized weight: its quantization_config entry and its tensors. */
export interface MixqStorage {
  readonly kind: 'mixq';
  readonly entry: MixqSafetensorsEntry;
  /** Bytes of all its tensors (codes, scales, zero points, ...). */
  readonly nbytes: number;
  read(): Promise<MixqSafetensorsTensors>;
}

export interface StoredTensor {
  /** GGUF name ('blk.3.attn_q.weight'). */
  readonly name: string;
  /** Row-major shape: [rows (outputs), cols (inputs)] for matrices, [n] for vectors. */
  readonly shape: readonly number[];
  readonly storage: RawStorage | MixqStorage;
}

/** A model ready to load: configuration, tokenizer, tensors by GGUF name. */
export interface ModelSource {
  readonly source: string;
  readonly config: LlmConfig;
  readonly tokenizer: LlmTokenizer;
  /** RoPE pair order of the stored q/k rows (GGUF llama: 'norm'; Hugging Face and qwen2: 'neox'). */
  readonly ropeMode: RopeMode | undefined;
  readonly tensors: ReadonlyMap<string, StoredTensor>;
  /** Bytes of every tensor (what the model holds in memory once loaded). */
  readonly tensorBytes: number;
  /**
   * The activation mode the file was planned for (an engine file's `mixq.engine_activations` key, written by
   * `mixq quantize --emit runtime --activations lut8`): the engine's default when the caller names none.
   */
  readonly activations?: 'lut8';
}

/** Reads a GGUF tensor into a buffer the caller owns (the Node edge passes a file reader). */
export type ReadInto = (absOffset: number, dest: Uint8Array) => Promise<void>;

/**
 * The tensors of a GGUF file (header already read).
 * @example const src = ggufModelSource(await readGguf(await fileSource('model.gguf')));
 */
export function ggufModelSource(file: GgufFile, readInto?: ReadInto): ModelSource {
  const config = llmConfigFromGguf(file);
  const tensors = new Map<string, StoredTensor>();
  let bytes = 0;
  for (const t of file.tensors) {
    const info: GgufTensorInfo = t;
    tensors.set(t.name, {
      name: t.name,
      shape: t.ne.length >= 2 && t.ne.slice(2).every((d) => d === 1) ? [t.ne[1]!, t.ne[0]!] : t.shape,
      storage: {
        kind: 'raw',
        type: t.type.name.toUpperCase(),
        nbytes: t.nbytes,
        read: () => file.readTensorBytes(info),
        ...(readInto ? { readInto: (dest: Uint8Array) => readInto(info.absOffset, dest) } : {}),
      },
    });
    bytes += t.nbytes;
  }
  return {
    source: file.source,
    config,
    tokenizer: tokenizerFromGguf(file),
    ropeMode: config.ggufRopeMode,
    tensors,
    tensorBytes: bytes,
  };
}

const QUANT_ROLES = ['qweight', 'scales', 'global_scale', 'super_scales', 'zeros', 'offsets'] as const;
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The tensors of a Hugging Face folder (config.json, tokenizer.json, model.safetensors or shards): float
 * tensors (F32 / F16 / BF16) and mixq quantized weights. Names map to GGUF names (names.ts); q/k rows
 * stay in Hugging Face's order, so RoPE runs in 'neox' mode. GPT-2 folders (Conv1D weights stored
 * [in, out]) are refused: the kernels read [out, in] rows.
 * @example const src = await hfModelSource(await hfFolderSource('TinyLlama-mixq'));
 */
export async function hfModelSource(folder: FolderSource): Promise<ModelSource> {
  const hf = await openHfFolder(folder);
  const c = hf.config;
  if (c.family !== 'llama')
    throw new MixqError(`${c.architecture} folders are not supported by the engine`, {
      source: `${hf.source}/config.json`,
      field: 'model_type',
      expected: 'llama, mistral or qwen2 (GPT-2 runs from its GGUF)',
    });
  // quantization configs of every shard (openHfFolder does not keep the metadata)
  const entries = new Map<string, { entry: MixqSafetensorsEntry; shard: string }>();
  const byShard = new Map<string, Map<string, HfTensor>>();
  for (const t of hf.tensors) {
    let m = byShard.get(t.shard);
    if (!m) byShard.set(t.shard, (m = new Map()));
    m.set(t.name, t);
  }
  for (const shard of byShard.keys()) {
    const st = await readSafetensors(await folder.open(shard));
    for (const [name, entry] of quantizedEntries(st.metadata, `${hf.source}/${shard}`))
      entries.set(name, { entry, shard });
  }
  const tensors = new Map<string, StoredTensor>();
  const used = new Set<string>();
  let bytes = 0;
  const add = (hfName: string, shape: readonly number[], storage: StoredTensor['storage']) => {
    if (/\.rotary_emb\.inv_freq$/.test(hfName)) return;
    const m = ggufNameFromHf(c.architecture, hfName);
    if (!m)
      throw new MixqError(`tensor '${hfName}' has no GGUF name`, {
        source: hf.source,
        field: hfName,
        expected: `a ${c.architecture} parameter name`,
      });
    tensors.set(m.name, { name: m.name, shape, storage });
    bytes += storage.nbytes;
  };
  for (const [name, { entry, shard }] of entries) {
    const infos = byShard.get(shard)!;
    add(
      name,
      entry.shape,
      mixqStorage(name, entry, `${hf.source}/${shard}`, (n) => {
        const t = infos.get(n);
        if (!t) return undefined;
        used.add(n);
        return { nbytes: t.info.nbytes, read: () => hf.readTensor(t) };
      }),
    );
  }
  for (const t of hf.tensors) {
    if (used.has(t.name)) continue;
    add(
      t.name,
      t.info.shape,
      floatStorage(t.info, `${hf.source}/${t.shard}`, () => hf.readTensor(t)),
    );
  }
  return {
    source: hf.source,
    config: c,
    tokenizer: hf.tokenizer(),
    ropeMode: c.positions === 'rope' ? 'neox' : undefined,
    tensors,
    tensorBytes: bytes,
  };
}

/**
 * The tensors of a mixq engine file (docs/safetensors-quantized.md "Engine files"): quantized safetensors
 * whose tensors have llama.cpp's GGUF names and row-major [out, in] matrices, with the GGUF key-values
 * (architecture, hyper-parameters, tokenizer) in `__metadata__["mixq.gguf_kv"]`: what `mixq quantize
 * --emit runtime` writes, for any mix of mixq formats.
 * @example const src = engineFileSource(await readSafetensors(await fileSource('gpt-mixq.safetensors')));
 */
export function engineFileSource(st: SafetensorsFile, readInto?: ReadInto): ModelSource {
  const text = st.metadata?.[GGUF_KV_METADATA_KEY];
  if (text === undefined)
    throw new MixqError('not a mixq engine file', {
      source: st.source,
      field: `__metadata__.${GGUF_KV_METADATA_KEY}`,
      expected:
        'the GGUF key-values of the model (mixq quantize --emit runtime writes them); Hugging Face folders open as folders',
    });
  const kv = parseGgufKvJson(text, st.source, `__metadata__.${GGUF_KV_METADATA_KEY}`);
  const byName = new Map(st.tensors.map((t) => [t.name, t] as const));
  const used = new Set<string>();
  const tensors = new Map<string, StoredTensor>();
  let bytes = 0;
  const add = (name: string, shape: readonly number[], storage: StoredTensor['storage']) => {
    tensors.set(name, { name, shape, storage });
    bytes += storage.nbytes;
  };
  for (const [name, entry] of quantizedEntries(st.metadata, st.source))
    add(
      name,
      entry.shape,
      mixqStorage(name, entry, st.source, (n) => {
        const t = byName.get(n);
        if (!t) return undefined;
        used.add(n);
        return { nbytes: t.nbytes, read: () => st.readTensorBytes(t) };
      }),
    );
  for (const t of st.tensors)
    if (!used.has(t.name))
      add(
        t.name,
        t.shape,
        floatStorage(
          t,
          st.source,
          () => st.readTensorBytes(t),
          readInto && ((d) => readInto(t.absOffset, d)),
        ),
      );
  const meta = ggufMetadata(
    st.source,
    kv,
    [...tensors.values()].map((t) => ({ name: t.name, ne: [...t.shape].reverse() })),
  );
  const config = llmConfigFromGguf(meta);
  const planned = kv.find((e) => e.key === ENGINE_ACTIVATIONS_KEY)?.value;
  return {
    source: st.source,
    config,
    tokenizer: tokenizerFromGguf(meta),
    ropeMode: config.ggufRopeMode,
    tensors,
    tensorBytes: bytes,
    ...(planned === 'lut8' ? { activations: 'lut8' as const } : {}),
  };
}

/** The engine-file key naming the activation mode a plan was made for (ModelSource.activations). */
export const ENGINE_ACTIVATIONS_KEY = 'mixq.engine_activations';

/** A quantized weight's storage from its parts (`name.qweight`, `name.scales`, ...) found by `part`. */
function mixqStorage(
  name: string,
  entry: MixqSafetensorsEntry,
  where: string,
  part: (tensorName: string) => { nbytes: number; read: () => Promise<Uint8Array> } | undefined,
): MixqStorage {
  const parts = new Map<string, { nbytes: number; read: () => Promise<Uint8Array> }>();
  for (const role of QUANT_ROLES) {
    const t = part(`${name}.${role}`);
    if (t) parts.set(role, t);
  }
  if (!parts.has('qweight'))
    throw new MixqError(`no tensor '${name}.qweight'`, {
      source: where,
      field: name,
      expected: 'the packed codes of every weight in quantization_config',
    });
  let nbytes = 0;
  for (const p of parts.values()) nbytes += p.nbytes;
  return {
    kind: 'mixq',
    entry,
    nbytes,
    read: async () => {
      const out: Record<string, Uint8Array> = {};
      for (const [role, t] of parts) out[role] = await t.read();
      return out as unknown as MixqSafetensorsTensors;
    },
  };
}

/** A float safetensors tensor's storage (F32 / F16 / BF16: the same bytes as a GGUF tensor of that type). */
function floatStorage(
  info: SafetensorsTensorInfo,
  where: string,
  read: () => Promise<Uint8Array>,
  readInto?: (dest: Uint8Array) => Promise<void>,
): RawStorage {
  const dt = info.dtype;
  if (dt !== 'F32' && dt !== 'F16' && dt !== 'BF16')
    throw new MixqError(`dtype ${dt}`, {
      source: where,
      field: `${info.name}.dtype`,
      expected: 'F32, F16 or BF16 (or a mixq quantized weight)',
    });
  return { kind: 'raw', type: dt, nbytes: info.nbytes, read, ...(readInto ? { readInto } : {}) };
}

/**
 * The weights of a mixq quantization_config (`__metadata__.quantization_config`), checked for shape; an
 * empty map when the file has none.
 */
function quantizedEntries(
  metadata: Readonly<Record<string, string>> | undefined,
  where: string,
): Map<string, MixqSafetensorsEntry> {
  const out = new Map<string, MixqSafetensorsEntry>();
  const raw = metadata?.quantization_config;
  if (raw === undefined) return out;
  let root: unknown;
  try {
    root = JSON.parse(raw);
  } catch (e) {
    throw new MixqError(`not JSON (${(e as Error).message})`, {
      source: where,
      field: '__metadata__.quantization_config',
      expected: 'a JSON object',
    });
  }
  if (!isObj(root) || root.quant_method !== 'mixq' || !isObj(root.weights))
    throw new MixqError('not a mixq quantization config', {
      source: where,
      field: '__metadata__.quantization_config',
      expected: '{"quant_method": "mixq", "weights": {...}} (docs/safetensors-quantized.md)',
    });
  for (const [name, e] of Object.entries(root.weights)) out.set(name, checkEntry(e, name, where));
  return out;
}

/** The fields of a quantization_config entry the kernels read, checked for shape (the kernels check the rest). */
function checkEntry(e: unknown, name: string, where: string): MixqSafetensorsEntry {
  const f = `quantization_config.weights.${name}`;
  const fail = (what: string, expected: string) =>
    new MixqError(`${what}`, { source: where, field: `${f}.${what.split(' ')[0]}`, expected });
  if (!isObj(e))
    throw new MixqError('not an object', { source: where, field: f, expected: 'a weight entry' });
  if (typeof e.format !== 'string') throw fail(`format ${JSON.stringify(e.format)}`, 'a format name');
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && (d as number) > 0))
    throw fail(`shape ${JSON.stringify(e.shape)}`, 'positive integers');
  if (typeof e.symmetric !== 'boolean')
    throw fail(`symmetric ${JSON.stringify(e.symmetric)}`, 'true or false');
  if (!isObj(e.granularity) || typeof e.granularity.kind !== 'string')
    throw fail(`granularity ${JSON.stringify(e.granularity)}`, '{ "kind": ... }');
  return e as unknown as MixqSafetensorsEntry;
}

/**
 * Hugging Face model folders (config.json + model.safetensors or sharded model-0000k-of-0000n.safetensors
 * with model.safetensors.index.json + tokenizer.json [+ tokenizer_config.json]) read tensor by tensor, and
 * converted to a GGUF llama.cpp loads, streamed: the header first, then one tensor at a time, so memory is
 * bounded by the largest tensor. Browser-safe: a folder is a FolderSource (Node: hf-folder.node.ts; a
 * browser can wrap a FileList / directory handle).
 *
 * Conversion (llama family: llama, Mistral, Qwen2) follows llama.cpp's convert_hf_to_gguf (learned from
 * it, not copied): names by io/llm/names.ts; q/k rows of llama/Mistral permuted back to llama.cpp's RoPE
 * pair order (names.ts ropeRowPermutation; Qwen2 uses NEOX RoPE and keeps them); 1-D tensors (norms,
 * biases) as F32, matrices as stored (F32 / F16 / BF16) or as asked; a tied LM head is not written
 * (llama.cpp reuses token_embd); rotary inv_freq buffers are skipped; any other tensor is refused.
 */
import { MixqError } from '../../core/errors.ts';
import { ggufHeaderLayout, type GgufHeaderLayout } from '../gguf/write.ts';
import { floatBytesToF32, f32ToFloatBytes } from '../safetensors/dtypes.ts';
import { readSafetensors, type SafetensorsFile, type SafetensorsTensorInfo } from '../safetensors/read.ts';
import type { ByteSource } from '../source.ts';
import { type LlmConfig, llmConfigFromHf, llmConfigToGgufKv } from './config.ts';
import { ggufNameFromHf, type NameTransform, ropeRowPermutation } from './names.ts';
import { type LlmTokenizer, tokenizerFromJson } from './tokenizer.ts';
import { ggufVocabFromTokenizerJson } from './tokenizer-gguf.ts';

/** A folder of files. `open` rejects (any error) for a missing file. */
export interface FolderSource {
  readonly name: string;
  list(): Promise<readonly string[]>;
  open(file: string): Promise<ByteSource>;
}

export interface HfTensor {
  readonly name: string;
  readonly shard: string;
  readonly info: SafetensorsTensorInfo;
}

export interface HfFolder {
  readonly source: string;
  readonly config: LlmConfig;
  readonly configJson: Readonly<Record<string, unknown>>;
  readonly tokenizerJson: unknown;
  readonly tokenizerConfig: unknown;
  /** Every tensor of every shard, in shard then offset order. */
  readonly tensors: readonly HfTensor[];
  readTensor(t: HfTensor): Promise<Uint8Array>;
  tokenizer(): LlmTokenizer;
}

const INDEX = 'model.safetensors.index.json';
const utf8 = new TextDecoder('utf-8', { fatal: true });
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

async function readJson(
  folder: FolderSource,
  file: string,
  required: boolean,
  maxBytes = 64 << 20,
): Promise<unknown> {
  const path = `${folder.name}/${file}`;
  const files = await folder.list();
  if (!files.includes(file)) {
    if (!required) return undefined;
    throw new MixqError(`no ${file} in the folder`, {
      source: folder.name,
      field: file,
      expected: `a Hugging Face model folder with ${file}`,
    });
  }
  const src = await folder.open(file);
  if (src.size > maxBytes)
    throw new MixqError(`${src.size} bytes`, { source: path, expected: `at most ${maxBytes} bytes` });
  try {
    return JSON.parse(utf8.decode(await src.read(0, src.size)));
  } catch (e) {
    throw new MixqError(`not valid JSON: ${(e as Error).message}`, { source: path, expected: 'UTF-8 JSON' });
  }
}

/**
 * Opens a Hugging Face folder: parses config.json and tokenizer.json and every safetensors header
 * (tensor data is read on demand).
 * @example const hf = await openHfFolder(await hfFolderSource('TinyLlama')); hf.config.numKvHeads
 */
export async function openHfFolder(folder: FolderSource): Promise<HfFolder> {
  const configJson = await readJson(folder, 'config.json', true);
  const config = llmConfigFromHf(configJson, `${folder.name}/config.json`);
  const tokenizerJson = await readJson(folder, 'tokenizer.json', true);
  const tokenizerConfig = await readJson(folder, 'tokenizer_config.json', false);
  const files = await folder.list();
  let shards: string[];
  const weightMap = new Map<string, string>();
  if (files.includes(INDEX)) {
    const index = await readJson(folder, INDEX, true);
    const wm = isObj(index) ? index.weight_map : undefined;
    if (!isObj(wm))
      throw new MixqError('no weight_map', {
        source: `${folder.name}/${INDEX}`,
        field: 'weight_map',
        expected: 'tensor -> shard file',
      });
    for (const [t, f] of Object.entries(wm)) {
      if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || !files.includes(f))
        throw new MixqError(`shard ${JSON.stringify(f)} is not in the folder`, {
          source: `${folder.name}/${INDEX}`,
          field: `weight_map['${t}']`,
          expected: 'a .safetensors file in the folder',
        });
      weightMap.set(t, f);
    }
    shards = [...new Set(weightMap.values())].sort();
  } else if (files.includes('model.safetensors')) shards = ['model.safetensors'];
  else
    throw new MixqError('no weights in the folder', {
      source: folder.name,
      field: 'model.safetensors',
      expected: `model.safetensors or ${INDEX} with its shards`,
    });
  const tensors: HfTensor[] = [];
  const opened = new Map<string, SafetensorsFile>();
  const seen = new Set<string>();
  for (const shard of shards) {
    const src = await folder.open(shard);
    const st = await readSafetensors({
      ...src,
      name: `${folder.name}/${shard}`,
      read: (o, l) => src.read(o, l),
    });
    opened.set(shard, st);
    for (const info of st.tensors) {
      const where = `${folder.name}/${shard}`;
      if (seen.has(info.name))
        throw new MixqError(`tensor '${info.name}' is in two shards`, {
          source: where,
          field: info.name,
          expected: 'each tensor once',
        });
      if (weightMap.size > 0 && weightMap.get(info.name) !== shard)
        throw new MixqError(`tensor '${info.name}' is not where the index says`, {
          source: where,
          field: info.name,
          expected: `in ${weightMap.get(info.name) ?? 'no shard (absent from weight_map)'}`,
        });
      seen.add(info.name);
      tensors.push({ name: info.name, shard, info });
    }
  }
  for (const t of weightMap.keys())
    if (!seen.has(t))
      throw new MixqError(`tensor '${t}' is missing from its shard`, {
        source: `${folder.name}/${weightMap.get(t)}`,
        field: t,
        expected: `the tensors ${INDEX} lists`,
      });
  const cfgObj = isObj(tokenizerConfig) ? tokenizerConfig : {};
  let tok: LlmTokenizer | undefined;
  return {
    source: folder.name,
    config,
    configJson: configJson as Record<string, unknown>,
    tokenizerJson,
    tokenizerConfig,
    tensors,
    readTensor: (t) => opened.get(t.shard)!.readTensorBytes(t.info),
    tokenizer: () =>
      (tok ??= tokenizerFromJson(tokenizerJson, `${folder.name}/tokenizer.json`, {
        config: cfgObj,
        ...(config.bosTokenId !== undefined && cfgObj.bos_token === undefined
          ? { bos: config.bosTokenId }
          : {}),
        ...(config.eosTokenId !== undefined && cfgObj.eos_token === undefined
          ? { eos: config.eosTokenId }
          : {}),
      })),
  };
}

export interface HfToGgufOptions {
  /** Matrix type: 'source' (default: F32 / F16 / BF16 as stored), or 'F32' / 'F16' / 'BF16'. */
  readonly matrixType?: 'source' | 'F32' | 'F16' | 'BF16';
  /** general.name (default the folder name). */
  readonly name?: string;
}

interface PlannedTensor {
  readonly hf: HfTensor;
  readonly gguf: string;
  readonly ne: readonly number[];
  readonly type: 'F32' | 'F16' | 'BF16';
  readonly transform: NameTransform;
}

/** A planned conversion: the GGUF layout, and the chunks (header, then tensors) to write in order. */
export interface HfGgufConversion {
  readonly layout: GgufHeaderLayout;
  readonly tensors: readonly {
    readonly hf: string;
    readonly gguf: string;
    /** The safetensors dtype in the folder. */
    readonly from: string;
    readonly type: string;
    readonly ne: readonly number[];
  }[];
  /** Yields the file in order; each tensor is read, transformed and released before the next. */
  chunks(): AsyncGenerator<Uint8Array>;
}

function expectedShape(c: LlmConfig, gguf: string): readonly number[] | undefined {
  const H = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const m = /^(?:blk\.\d+\.)?(.+)$/.exec(gguf)![1]!;
  const table: Record<string, readonly number[]> = {
    'token_embd.weight': [c.vocabSize, H],
    'output.weight': [c.vocabSize, H],
    'output_norm.weight': [H],
    'attn_norm.weight': [H],
    'ffn_norm.weight': [H],
    'attn_q.weight': [q, H],
    'attn_k.weight': [kv, H],
    'attn_v.weight': [kv, H],
    'attn_output.weight': [H, q],
    'attn_q.bias': [q],
    'attn_k.bias': [kv],
    'attn_v.bias': [kv],
    'attn_output.bias': [H],
    'ffn_gate.weight': [c.intermediateSize, H],
    'ffn_up.weight': [c.intermediateSize, H],
    'ffn_down.weight': [H, c.intermediateSize],
    'ffn_gate.bias': [c.intermediateSize],
    'ffn_up.bias': [c.intermediateSize],
    'ffn_down.bias': [H],
  };
  return table[m];
}

/**
 * Plans the GGUF of a llama-family Hugging Face folder; nothing is read until `chunks()` runs.
 * @example const conv = hfToGguf(hf); for await (const c of conv.chunks()) out.write(c)
 */
export function hfToGguf(hf: HfFolder, opts: HfToGgufOptions = {}): HfGgufConversion {
  const c = hf.config;
  const cfgSource = `${hf.source}/config.json`;
  if (c.family !== 'llama')
    throw new MixqError(`conversion of ${c.architecture} folders is not supported`, {
      source: cfgSource,
      field: 'model_type',
      expected: 'llama, mistral or qwen2',
    });
  const planned: PlannedTensor[] = [];
  const present = new Set<string>();
  for (const t of hf.tensors) {
    if (/\.rotary_emb\.inv_freq$/.test(t.name)) continue;
    const m = ggufNameFromHf(c.architecture, t.name);
    const where = `${hf.source}/${t.shard}`;
    if (!m)
      throw new MixqError(`tensor '${t.name}' has no GGUF name`, {
        source: where,
        field: t.name,
        expected: `a ${c.architecture} parameter name (model.layers.N.self_attn.q_proj.weight, ...)`,
      });
    if (m.name === 'output.weight' && c.tieWordEmbeddings) continue; // llama.cpp reuses token_embd
    const layer = /^blk\.(\d+)\./.exec(m.name);
    if (layer && Number(layer[1]) >= c.numLayers)
      throw new MixqError(`layer ${layer[1]} beyond num_hidden_layers`, {
        source: where,
        field: t.name,
        expected: `layers 0..${c.numLayers - 1}`,
      });
    const want = expectedShape(c, m.name);
    const shape = t.info.shape;
    if (!want || want.length !== shape.length || want.some((d, i) => d !== shape[i]))
      throw new MixqError(`shape [${shape.join(', ')}]`, {
        source: where,
        field: t.name,
        expected: want ? `[${want.join(', ')}] (from config.json)` : 'a known tensor',
      });
    const dt = t.info.dtype;
    if (dt !== 'F32' && dt !== 'F16' && dt !== 'BF16')
      throw new MixqError(`dtype ${dt}`, {
        source: where,
        field: `${t.name}.dtype`,
        expected: 'F32, F16 or BF16',
      });
    const type =
      shape.length === 1 ? 'F32' : opts.matrixType && opts.matrixType !== 'source' ? opts.matrixType : dt;
    planned.push({ hf: t, gguf: m.name, ne: [...shape].reverse(), type, transform: m.transform });
    present.add(m.name);
  }
  // canonical order (whatever the shards' order): globals, then blocks by layer, each in a fixed order
  planned.sort((x, y) => orderKey(x.gguf) - orderKey(y.gguf));
  const required = [
    'token_embd.weight',
    'output_norm.weight',
    ...(c.tieWordEmbeddings ? [] : ['output.weight']),
  ];
  for (let l = 0; l < c.numLayers; l++)
    for (const s of [
      'attn_norm',
      'attn_q',
      'attn_k',
      'attn_v',
      'attn_output',
      'ffn_norm',
      'ffn_gate',
      'ffn_up',
      'ffn_down',
    ])
      required.push(`blk.${l}.${s}.weight`);
  if (c.qkvBias)
    for (let l = 0; l < c.numLayers; l++)
      for (const s of ['attn_q', 'attn_k', 'attn_v']) required.push(`blk.${l}.${s}.bias`);
  for (const r of required)
    if (!present.has(r))
      throw new MixqError(`missing tensor for ${r}`, {
        source: hf.source,
        field: r,
        expected: 'every weight config.json implies',
      });
  const tokKv = ggufVocabFromTokenizerJson(hf.tokenizerJson, `${hf.source}/tokenizer.json`, {
    vocabSize: c.vocabSize,
    ...(c.bosTokenId !== undefined ? { bos: c.bosTokenId } : {}),
    ...(c.eosTokenId !== undefined ? { eos: c.eosTokenId } : {}),
    ...addBosOf(hf.tokenizerConfig),
  });
  const kv = [
    ...llmConfigToGgufKv(c, opts.name ?? hf.source.split(/[\\/]/).pop() ?? 'model'),
    { key: 'general.file_type', type: 'u32' as const, value: fileTypeOf(planned) },
    ...tokKv,
  ];
  const layout = ggufHeaderLayout(
    kv,
    planned.map((p) => ({ name: p.gguf, ne: p.ne, type: p.type })),
  );
  return {
    layout,
    tensors: planned.map((p) => ({
      hf: p.hf.name,
      gguf: p.gguf,
      from: p.hf.info.dtype,
      type: p.type,
      ne: p.ne,
    })),
    async *chunks() {
      yield layout.header;
      for (const [i, p] of planned.entries()) {
        let bytes = await hf.readTensor(p.hf);
        if (p.type !== p.hf.info.dtype)
          bytes = f32ToFloatBytes(p.type, floatBytesToF32(p.hf.info.dtype, bytes));
        if (p.transform === 'permute-q' || p.transform === 'permute-k') {
          const heads = p.transform === 'permute-q' ? c.numHeads : c.numKvHeads;
          bytes = permuteRows(bytes, p.hf.info.shape[0]!, heads);
        }
        if (bytes.length !== layout.nbytes[i])
          throw new MixqError('size changed while converting', { source: hf.source, field: p.hf.name });
        yield bytes;
        if (layout.padding[i]! > 0) yield new Uint8Array(layout.padding[i]!);
      }
    },
  };
}

const ORDER = [
  'token_embd',
  'output_norm',
  'output',
  'attn_norm',
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_output',
  'ffn_norm',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
];
function orderKey(gguf: string): number {
  const m = /^(?:blk\.(\d+)\.)?([a-z_]+)\.(weight|bias)$/.exec(gguf)!;
  const layer = m[1] === undefined ? -1 : Number(m[1]);
  return (layer + 1) * 1000 + ORDER.indexOf(m[2]!) * 2 + (m[3] === 'bias' ? 1 : 0);
}

function addBosOf(cfg: unknown): { addBos?: boolean } {
  return isObj(cfg) && typeof cfg.add_bos_token === 'boolean' ? { addBos: cfg.add_bos_token } : {};
}

/** llama_ftype of the type holding most matrix elements: ALL_F32 0, MOSTLY_F16 1, MOSTLY_BF16 32. */
function fileTypeOf(planned: readonly PlannedTensor[]): number {
  const count = { F32: 0, F16: 0, BF16: 0 };
  for (const p of planned) if (p.ne.length > 1) count[p.type] += p.ne.reduce((a, b) => a * b, 1);
  const top = (Object.keys(count) as (keyof typeof count)[]).sort((a, b) => count[b] - count[a])[0]!;
  return { F32: 0, F16: 1, BF16: 32 }[top];
}

/** Rows of a [rows, ...] tensor in HF order -> llama.cpp's RoPE order (byte-level: any dtype). */
export function permuteRows(bytes: Uint8Array, rows: number, heads: number): Uint8Array {
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0)
    throw new MixqError(`${rows} rows over ${heads} heads`, {
      field: 'q/k rows',
      expected: 'an even number of rows per head',
    });
  const rowBytes = bytes.length / rows;
  const perm = ropeRowPermutation(rows, heads);
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++)
    out.set(bytes.subarray(perm[r]! * rowBytes, (perm[r]! + 1) * rowBytes), r * rowBytes);
  return out;
}

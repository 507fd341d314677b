/**
 * Node edge of the gpt2 GGUF export: reads a GPT folder (models/gpt: config.json, vocab.json,
 * model.safetensors), builds the GGUF with gpt2GgufFromWeights and optionally writes it atomically.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { fileSource, writeFileAtomic } from '../../io/files.node.ts';
import { floatBytesToF32, SAFETENSORS_FLOAT_DTYPES } from '../../io/safetensors/dtypes.ts';
import { readSafetensors } from '../../io/safetensors/read.ts';
import {
  type Gpt2Config,
  type Gpt2GgufInput,
  type Gpt2GgufResult,
  type Gpt2SourceTensor,
  type Gpt2TypeChooser,
  gpt2GgufFromWeights,
} from './gpt2.ts';
import { writeGguf } from '../../io/gguf/write.ts';

export interface ExportGptGgufOptions extends Pick<
  Gpt2GgufInput,
  'fallback' | 'imatrix' | 'headBias' | 'name' | 'fileType' | 'bosId' | 'eosId'
> {
  /** Output path; when set the file is written atomically (never over the folder's inputs). */
  readonly out?: string;
  /** LayerNorm epsilon; default 1e-5 (train_gpt.py uses torch's nn.LayerNorm default). */
  readonly layerNormEps?: number;
  /**
   * The model's float tensors by name when already read (e.g. from the ONNX model whose external data is
   * the folder's model.safetensors); default: read model.safetensors.
   */
  readonly tensors?: ReadonlyMap<string, Gpt2SourceTensor>;
}

export interface ExportGptGgufResult extends Gpt2GgufResult {
  /** The file, as writeGguf's chunks in order. */
  readonly chunks: Uint8Array[];
  /** Total bytes of the file. */
  readonly size: number;
}

function num(obj: Record<string, unknown>, key: string, source: string): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new MixqError(`bad value ${JSON.stringify(v)}`, {
      source,
      field: `architecture.${key}`,
      expected: 'a positive integer',
    });
  }
  return v;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new MixqError(`cannot read JSON: ${(e as Error).message}`, { source: path });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new MixqError('not a JSON object', { source: path, expected: 'an object' });
  }
  return v as Record<string, unknown>;
}

/** Every float tensor of a safetensors file, as f32. */
async function readFloatTensors(path: string): Promise<Map<string, Gpt2SourceTensor>> {
  const src = await fileSource(path);
  const weights = new Map<string, Gpt2SourceTensor>();
  try {
    const st = await readSafetensors(src);
    for (const t of st.tensors) {
      if (!SAFETENSORS_FLOAT_DTYPES.includes(t.dtype)) continue;
      weights.set(t.name, { data: floatBytesToF32(t.dtype, await st.readTensorBytes(t)), dims: t.shape });
    }
  } finally {
    await src.close();
  }
  return weights;
}

/** Reads config.json's `architecture` block as a Gpt2Config. */
export async function readGptConfig(dir: string, layerNormEps?: number): Promise<Gpt2Config> {
  const path = join(dir, 'config.json');
  const cfg = await readJson(path);
  const arch = cfg.architecture;
  if (typeof arch !== 'object' || arch === null) {
    throw new MixqError('missing architecture', {
      source: path,
      field: 'architecture',
      expected: 'an object',
    });
  }
  const a = arch as Record<string, unknown>;
  return {
    nLayer: num(a, 'n_layer', path),
    dModel: num(a, 'd_model', path),
    nHead: num(a, 'n_head', path),
    context: num(a, 'context', path),
    vocabSize: num(a, 'vocab_size', path),
    ...(layerNormEps === undefined ? {} : { layerNormEps }),
  };
}

/**
 * Exports the GPT in `dir` as a llama.cpp `gpt2` GGUF. `types` is one ggml type for every matrix
 * ('Q8_0') or a chooser per tensor; 1-D tensors stay F32.
 * @example await exportGptGguf('models/gpt', (n) => (n === 'output.weight' ? 'Q8_0' : 'Q4_0'), { out: 'gpt.gguf' })
 */
export async function exportGptGguf(
  dir: string,
  types: string | Gpt2TypeChooser = 'F32',
  opts: ExportGptGgufOptions = {},
): Promise<ExportGptGgufResult> {
  const config = await readGptConfig(dir, opts.layerNormEps);
  const vocabPath = join(dir, 'vocab.json');
  const vj = await readJson(vocabPath);
  const chars = vj.chars;
  if (!Array.isArray(chars) || !chars.every((c): c is string => typeof c === 'string')) {
    throw new MixqError('chars is not a list of strings', {
      source: vocabPath,
      field: 'chars',
      expected: 'chars[i] = text of token id i',
    });
  }
  const stPath = join(dir, 'model.safetensors');
  const weights = opts.tensors ?? (await readFloatTensors(stPath));
  const chooseType: Gpt2TypeChooser = typeof types === 'string' ? () => types : types;
  const { out, layerNormEps: _eps, tensors: _tensors, ...rest } = opts;
  void _eps; // read into config above
  void _tensors;
  const result = gpt2GgufFromWeights({
    ...rest,
    config,
    vocab: chars,
    chooseType,
    get(name) {
      const t = weights.get(name);
      if (!t) {
        throw new MixqError(`no float tensor '${name}'`, {
          source: stPath,
          field: `tensors.${name}`,
          expected: 'the GPT parameter names of scripts/dev/train_gpt.py',
        });
      }
      return t;
    },
  });
  const chunks = writeGguf(result);
  const size = chunks.reduce((a, c) => a + c.length, 0);
  if (out !== undefined) await writeFileAtomic(out, chunks, [stPath, vocabPath, join(dir, 'config.json')]);
  return { ...result, chunks, size };
}

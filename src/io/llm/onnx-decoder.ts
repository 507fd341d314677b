/**
 * transformers.js decoder folders: config.json + tokenizer.json [+ tokenizer_config.json] + an ONNX decoder
 * in onnx/ (model.onnx from current optimum exports; decoder_model_merged.onnx from older ones, with a
 * use_cache_branch input; decoder_with_past_model.onnx + decoder_model.onnx pairs are not read), and the
 * decoder's input/output contract with past_key_values. Browser-safe.
 *
 *   inputs   input_ids [batch, seq] int64; attention_mask [batch, past + seq] int64; position_ids (optional);
 *            past_key_values.{i}.key / .value [batch, kv_heads, past, head_dim]; use_cache_branch (merged)
 *   outputs  logits [batch, seq, vocab]; present.{i}.key / .value [batch, kv_heads, past + seq, head_dim]
 */
import { MixqError } from '../../core/errors.ts';
import { type LlmConfig, llmConfigFromHf } from './config.ts';
import type { FolderSource } from './hf-folder.ts';
import { type LlmTokenizer, tokenizerFromJson } from './tokenizer.ts';

/** Decoder file names transformers.js looks for, in the order mixq prefers them. */
export const ONNX_DECODER_FILES = [
  'onnx/model.onnx',
  'onnx/decoder_model_merged.onnx',
  'model.onnx',
  'decoder_model_merged.onnx',
] as const;

export interface OnnxDecoderIo {
  readonly inputIds: string;
  readonly attentionMask: string | undefined;
  readonly positionIds: string | undefined;
  /** Set to true to use the cache (merged decoders); absent in model.onnx exports. */
  readonly useCacheBranch: string | undefined;
  readonly logits: string;
  /** Per layer: past inputs and present outputs. */
  readonly layers: readonly {
    readonly pastKey: string;
    readonly pastValue: string;
    readonly presentKey: string;
    readonly presentValue: string;
  }[];
}

/**
 * The input/output contract of a decoder ONNX from its graph input and output names.
 * @example decoderIo(model.proto.graph.input.map((i) => i.name), model.proto.graph.output.map((o) => o.name), 'model.onnx')
 */
export function decoderIo(
  inputs: readonly string[],
  outputs: readonly string[],
  source: string,
): OnnxDecoderIo {
  const fail = (msg: string, field: string, expected: string) =>
    new MixqError(msg, { source, field, expected });
  const has = (names: readonly string[], n: string) => names.includes(n);
  if (!has(inputs, 'input_ids'))
    throw fail('no input_ids input', 'graph.input', 'input_ids (a transformers.js decoder)');
  if (!has(outputs, 'logits')) throw fail('no logits output', 'graph.output', 'logits');
  const layers: { pastKey: string; pastValue: string; presentKey: string; presentValue: string }[] = [];
  for (let i = 0; ; i++) {
    const pk = `past_key_values.${i}.key`;
    if (!has(inputs, pk)) break;
    const l = {
      pastKey: pk,
      pastValue: `past_key_values.${i}.value`,
      presentKey: `present.${i}.key`,
      presentValue: `present.${i}.value`,
    };
    if (!has(inputs, l.pastValue))
      throw fail(`no ${l.pastValue}`, 'graph.input', `${l.pastValue} beside ${pk}`);
    for (const o of [l.presentKey, l.presentValue])
      if (!has(outputs, o)) throw fail(`no ${o} output`, 'graph.output', `${o} for ${pk}`);
    layers.push(l);
  }
  if (layers.length === 0)
    throw fail(
      'no past_key_values inputs',
      'graph.input',
      'past_key_values.0.key ... (a decoder exported with past)',
    );
  return {
    inputIds: 'input_ids',
    attentionMask: has(inputs, 'attention_mask') ? 'attention_mask' : undefined,
    positionIds: has(inputs, 'position_ids') ? 'position_ids' : undefined,
    useCacheBranch: has(inputs, 'use_cache_branch') ? 'use_cache_branch' : undefined,
    logits: 'logits',
    layers,
  };
}

export interface TransformersJsFolder {
  readonly source: string;
  readonly config: LlmConfig;
  /** Path of the decoder inside the folder ('onnx/model.onnx', ...). */
  readonly onnxFile: string;
  tokenizer(): LlmTokenizer;
}

async function json(
  folder: FolderSource,
  file: string,
  files: readonly string[],
  required: boolean,
): Promise<unknown> {
  if (!files.includes(file)) {
    if (!required) return undefined;
    throw new MixqError(`no ${file} in the folder`, {
      source: folder.name,
      field: file,
      expected: 'a transformers.js folder (config.json, tokenizer.json, onnx/model.onnx)',
    });
  }
  const src = await folder.open(file);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await src.read(0, src.size)));
  } catch (e) {
    throw new MixqError(`not valid JSON: ${(e as Error).message}`, {
      source: `${folder.name}/${file}`,
      expected: 'UTF-8 JSON',
    });
  }
}

/**
 * Opens a transformers.js folder: config, tokenizer and which decoder file to run. `folder.list()` must list
 * files of subfolders with their relative path ('onnx/model.onnx').
 */
export async function openTransformersJsFolder(folder: FolderSource): Promise<TransformersJsFolder> {
  const files = await folder.list();
  const config = llmConfigFromHf(
    await json(folder, 'config.json', files, true),
    `${folder.name}/config.json`,
  );
  const tok = await json(folder, 'tokenizer.json', files, true);
  const tokCfg = await json(folder, 'tokenizer_config.json', files, false);
  const onnxFile = ONNX_DECODER_FILES.find((f) => files.includes(f));
  if (!onnxFile)
    throw new MixqError('no decoder ONNX in the folder', {
      source: folder.name,
      field: 'onnx/',
      expected: ONNX_DECODER_FILES.join(' or '),
    });
  let t: LlmTokenizer | undefined;
  return {
    source: folder.name,
    config,
    onnxFile,
    tokenizer: () =>
      (t ??= tokenizerFromJson(tok, `${folder.name}/tokenizer.json`, {
        config: tokCfg,
        ...(config.bosTokenId !== undefined ? { bos: config.bosTokenId } : {}),
        ...(config.eosTokenId !== undefined ? { eos: config.eosTokenId } : {}),
      })),
  };
}

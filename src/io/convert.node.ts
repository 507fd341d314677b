/**
 * Node edge of io/convert.ts: `mixq convert` from paths. A GGUF, safetensors or ONNX file, or a llama-family
 * Hugging Face folder (io/llm/hf-folder.node.ts), converted tensor by tensor into an atomic sink
 * (file-stream.node.ts writeFileAtomicSink): memory is bounded by one piece or run of rows (a Hugging Face
 * tensor: the largest tensor), never the model; on any failure no output file is left; never over an input.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { MixqError } from '../core/errors.ts';
import { type ConvertedTensor, type ConvertOptions, type ConvertTarget, convertModelTo } from './convert.ts';
import { writeFileAtomicSink } from './file-stream.node.ts';
import { fileSource } from './files.node.ts';
import { convertHfFolderToGguf } from './llm/hf-folder.node.ts';
import { readOnnxFile } from './onnx/file.node.ts';
import { detectFormat, openModel } from './open.ts';

export interface ConvertFileResult {
  readonly output: string;
  readonly format: ConvertTarget;
  /** Bytes of the written file. */
  readonly bytes: number;
  readonly tensors: readonly ConvertedTensor[];
  readonly notes: readonly string[];
}

/** The output format an output path asks for by its extension. */
export function convertTargetOf(path: string): ConvertTarget {
  const ext = extname(path).toLowerCase();
  if (ext === '.gguf') return 'gguf';
  if (ext === '.safetensors') return 'safetensors';
  throw new MixqError(
    ext === '.onnx'
      ? 'writing ONNX is not supported by convert yet'
      : `cannot tell the output format from '${ext || '(no extension)'}'`,
    { source: path, field: 'extension', expected: '.gguf or .safetensors' },
  );
}

const FLOAT_MATRIX = { F32: 'F32', F16: 'F16', BF16: 'BF16' } as const;

/** A Hugging Face folder -> GGUF (llama.cpp names and RoPE order, tokenizer, config as GGUF keys). */
async function convertFolder(
  input: string,
  output: string,
  opts: ConvertOptions,
): Promise<ConvertFileResult> {
  if (convertTargetOf(output) !== 'gguf')
    throw new MixqError('a Hugging Face folder converts to GGUF only', {
      source: output,
      field: 'extension',
      expected: '.gguf (the folder is already safetensors)',
    });
  const type = opts.type?.toUpperCase();
  const matrixType = type === undefined ? 'source' : FLOAT_MATRIX[type as keyof typeof FLOAT_MATRIX];
  if (matrixType === undefined)
    throw new MixqError(`--type ${opts.type} for a Hugging Face folder`, {
      source: 'argument --type',
      field: 'type',
      expected: 'f32, f16 or bf16 (then `mixq requantize` or `mixq quantize` the GGUF to block types)',
    });
  const r = await convertHfFolderToGguf(input, output, {
    matrixType,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
  });
  return {
    output,
    format: 'gguf',
    bytes: r.bytes,
    tensors: r.written.map((t) => ({
      name: t.gguf,
      shape: [...t.ne].reverse(),
      from: t.from.toLowerCase(),
      to: t.type.toLowerCase(),
      action: t.from === t.type ? 'copy' : 'convert',
    })),
    notes: [
      `Hugging Face names mapped to llama.cpp's (${r.tensors} tensors); tokenizer.json and config.json as GGUF keys`,
    ],
  };
}

/**
 * Converts the model at `input` (a .gguf, .safetensors or .onnx file, or a Hugging Face folder) into
 * `output`, whose extension (.gguf / .safetensors) names the format; see io/convert.ts for the rules.
 * @example await convertFile('model.gguf', 'model.safetensors')
 */
export async function convertFile(
  input: string,
  output: string,
  opts: ConvertOptions = {},
): Promise<ConvertFileResult> {
  const st = await stat(input).catch(() => undefined);
  if (!st)
    throw new MixqError('no such file or folder', {
      source: input,
      expected: 'a .gguf, .safetensors or .onnx file, or a Hugging Face folder',
    });
  const name = opts.name ?? basename(input).replace(/\.[^.]+$/, '');
  if (st.isDirectory()) return convertFolder(input, output, { ...opts, name });
  const to = convertTargetOf(output);
  const src = await fileSource(input);
  try {
    const convertOpts = { ...opts, name };
    const format = await detectFormat(src);
    const write = async (m: Parameters<typeof convertModelTo>[0]) =>
      (await writeFileAtomicSink(output, (w) => convertModelTo(m, to, w, convertOpts), [input])).value;
    let r: Awaited<ReturnType<typeof convertModelTo>>;
    if (format === 'onnx') {
      const onnx = await readOnnxFile(input);
      try {
        r = await write({ format: 'onnx', file: onnx });
      } finally {
        await onnx.close();
      }
    } else r = await write(await openModel(src));
    return { output, format: to, bytes: r.bytes, tensors: r.tensors, notes: r.notes };
  } finally {
    await src.close();
  }
}

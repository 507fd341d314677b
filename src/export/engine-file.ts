/**
 * mixq engine files: what mixq's own engine (src/engine) loads for ANY mixed plan, including the formats
 * neither llama.cpp nor onnxruntime execute (int3/5/6, FP6/FP4, MX, NVFP4, NF4). A quantized safetensors
 * file (docs/safetensors-quantized.md) in llama.cpp's naming and layout:
 *
 *   tensors        GGUF names ('blk.0.attn_qkv.weight', 'token_embd.weight', ...), matrices row-major
 *                  [out, in] (GGUF ne [in, out]); quantized weights as W.qweight / W.scales / ... with
 *                  their groups along `in` (granularity axis 1), every other tensor F32 / F16 / BF16
 *   __metadata__   quantization_config (as in any mixq quantized safetensors) and "mixq.gguf_kv": the
 *                  GGUF key-values of the model (architecture, hyper-parameters, tokenizer) as JSON
 *                  (io/gguf/kv-json.ts)
 *
 * So a GGUF's description plus mixq's weight storage: the engine reads the configuration and tokenizer
 * exactly as from a GGUF (io/llm) and every weight at its stored size. Browser-safe.
 */
import { MixqError } from '../core/errors.ts';
import type { GgufKV } from '../io/gguf/read.ts';
import { GGUF_KV_METADATA_KEY, ggufKvToJson } from '../io/gguf/kv-json.ts';
import type { SafetensorsDtype } from '../io/safetensors/dtypes.ts';
import type { QuantizerConfig } from '../quant/qparams.ts';
import { type QuantizedSafetensorsInput, writeQuantizedSafetensors } from './safetensors.ts';

/** One tensor of an engine file. */
export type EngineFileTensor =
  | {
      readonly kind: 'float';
      /** GGUF name. */
      readonly name: string;
      /** Row-major shape ([out, in] for matrices, [n] for vectors). */
      readonly shape: readonly number[];
      readonly dtype: Extract<SafetensorsDtype, 'F32' | 'F16' | 'BF16'>;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: 'quantize';
      readonly name: string;
      /** [out, in]. */
      readonly shape: readonly [number, number];
      /** Float values, row-major [out, in]. */
      readonly values: Float32Array;
      /** On the row frame: per row (axis 0), groups along `in` (axis 1) or per tensor. */
      readonly quantizer: QuantizerConfig;
      readonly algorithm?: string;
    };

/**
 * An engine file's chunks (header, then data), from the model's GGUF key-values and its tensors.
 * @example await writeFileAtomic('gpt-mixq.safetensors', writeEngineFile(kv, tensors));
 */
export function writeEngineFile(kv: readonly GgufKV[], tensors: readonly EngineFileTensor[]): Uint8Array[] {
  if (!kv.some((e) => e.key === 'general.architecture'))
    throw new MixqError('no general.architecture key', {
      source: 'engine file',
      field: 'kv',
      expected: "the model's GGUF key-values",
    });
  const inputs: QuantizedSafetensorsInput[] = tensors.map((t) => {
    if (t.kind === 'float') return { ...t, shape: [...t.shape] };
    const g = t.quantizer.granularity;
    if (!(g.kind === 'tensor' || (g.kind === 'axis' && g.axis === 0) || (g.kind === 'group' && g.axis === 1)))
      throw new MixqError(`granularity ${JSON.stringify(g)}`, {
        source: 'engine file',
        field: `${t.name}.quantizer.granularity`,
        expected: 'per row (axis 0), groups along the input (axis 1) or per tensor',
      });
    return {
      kind: 'quantize',
      name: t.name,
      values: t.values,
      shape: [...t.shape],
      quantizer: t.quantizer,
      ...(t.algorithm ? { algorithm: t.algorithm } : {}),
    };
  });
  return writeQuantizedSafetensors(inputs, { metadata: { [GGUF_KV_METADATA_KEY]: ggufKvToJson(kv) } });
}

/**
 * Caps for parsing untrusted model files. Every length, count and offset a parser reads is checked
 * against these (and against the bytes actually left in the file) BEFORE anything is allocated, so a
 * hostile or corrupt file costs at most a bounded amount of memory and time.
 *
 * Defaults are chosen so every real model we know of passes with a wide margin:
 * - safetensors' reference implementation (huggingface/safetensors) refuses headers over 100 MB; we use
 *   the same cap for GGUF headers (metadata + tensor infos). A 256k-token vocabulary with scores and
 *   merges is ~20 MB.
 * - ggml limits tensors to 4 dimensions (GGML_MAX_DIMS); safetensors has no limit, 8 is generous.
 */
export interface IoLimits {
  /** Bytes of header a parser may read: GGUF metadata + tensor infos, safetensors JSON header. */
  readonly maxHeaderBytes: number;
  /** Bytes in one string (GGUF key, string value, tensor name). */
  readonly maxStringBytes: number;
  /** Elements in one GGUF array. */
  readonly maxArrayLength: number;
  /** Nesting depth of GGUF arrays of arrays (1 = a plain array). Bounds the parser's recursion. */
  readonly maxArrayDepth: number;
  /** Metadata key/value pairs in one GGUF file. */
  readonly maxKvCount: number;
  /** Tensors in one file. */
  readonly maxTensorCount: number;
  /** Dimensions of one tensor (GGUF additionally enforces ggml's own limit of 4). */
  readonly maxDims: number;
  /**
   * Estimated bytes of JS objects a header parse may create (strings, arrays, tensor records). Each parsed
   * item is charged a conservative size; exceeding this is an error rather than an out-of-memory crash.
   */
  readonly maxTotalAllocation: number;
}

export const DEFAULT_LIMITS: IoLimits = Object.freeze({
  maxHeaderBytes: 100_000_000, // same as huggingface/safetensors' MAX_HEADER_SIZE
  maxStringBytes: 16 * 1024 * 1024, // a chat template is ~10 KB; 16 MiB leaves room for odd metadata
  maxArrayLength: 1 << 24, // 16.7M elements; real vocabularies are < 300k
  maxArrayDepth: 4,
  maxKvCount: 1 << 20,
  maxTensorCount: 1 << 20, // large MoE checkpoints have tens of thousands of tensors
  maxDims: 8,
  maxTotalAllocation: 1 << 30, // 1 GiB of estimated JS objects
});

/** ggml's GGML_MAX_DIMS: a GGUF tensor has 1..4 dims. */
export const GGML_MAX_DIMS = 4;

/** Merges user overrides with the defaults. */
export function resolveLimits(overrides?: Partial<IoLimits>): IoLimits {
  return overrides ? { ...DEFAULT_LIMITS, ...overrides } : DEFAULT_LIMITS;
}

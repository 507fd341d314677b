/**
 * The format-neutral model view the rest of mixq works on. Every file adapter (src/io/onnx, gguf,
 * safetensors) produces one; the planner and the report read only this.
 */

/** Element type of a stored tensor: a plain dtype, or a ggml block type name (e.g. 'q4_k'). */
export type StoredDType = string;

/** What a weight does in the model, which decides whether and how it may be quantized. */
export type TensorRole =
  | 'matmul-weight' // right operand of MatMul / a GGUF/safetensors linear weight
  | 'gemm-weight'
  | 'conv-weight'
  | 'embedding' // table read by Gather / token embedding
  | 'bias'
  | 'norm' // LayerNorm / RMSNorm / BatchNorm parameters
  | 'other';

export interface TensorConsumer {
  /** Operator type, e.g. 'MatMul', 'Conv', or for GGUF the inferred use. */
  readonly op: string;
  /** Node name (ONNX) or '' where the file has no graph. */
  readonly node: string;
  /** Input slot of the node that reads this tensor. */
  readonly inputIndex: number;
}

export interface TensorInfo {
  readonly name: string;
  /** Shape in the file's logical order (ONNX/safetensors: row-major dims; GGUF: reversed ggml ne). */
  readonly shape: readonly number[];
  readonly dtype: StoredDType;
  /** Bytes the tensor occupies in the file. */
  readonly byteLength: number;
  readonly role: TensorRole;
  readonly consumers: readonly TensorConsumer[];
  /** Layer (block) index where it can be inferred from names or graph position. */
  readonly layer?: number;
  /** True for weights mixq may quantize (large matmul/gemm/conv/embedding weights). */
  readonly quantizable: boolean;
  /**
   * Axis of `shape` that indexes output channels / rows, along which per-channel scales go, where the
   * consumer fixes it: MatMul B [K, N] -> 1; Gemm B -> 0 with transB=1, else 1; Conv W [M, C, ...] -> 0;
   * ConvTranspose W [C, M, ...] -> 1; Gather table [vocab, dim] -> 0. Undefined when unknown.
   */
  readonly outputAxis?: number;
}

export interface ModelView {
  readonly format: 'onnx' | 'gguf' | 'safetensors';
  readonly tensors: readonly TensorInfo[];
  /** File-level metadata as strings (ONNX metadata_props, GGUF KV, safetensors __metadata__). */
  readonly metadata: Readonly<Record<string, string>>;
}

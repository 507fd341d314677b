/**
 * GGUF export of a pre-LN GPT (mixq's bundled char model, scripts/dev/train_gpt.py) for llama.cpp's
 * `gpt2` architecture. Browser-safe: works on arrays; the Node edge that reads models/gpt is gpt2.node.ts.
 *
 * What llama.cpp's gpt2 loader wants (src/models/gpt2.cpp, llama-arch.cpp, llama-vocab.cpp at
 * ggml-org/llama.cpp 82234e0 / 00ad355; learned from the sources, not copied):
 *   hparams  gpt2.context_length, gpt2.embedding_length, gpt2.feed_forward_length, gpt2.block_count,
 *            gpt2.attention.head_count, gpt2.attention.layer_norm_epsilon (required: get_key without default)
 *   tensors  (ne order, innermost first)
 *            token_embd.weight [n_embd, n_vocab]      position_embd.weight [n_embd, n_ctx_train]
 *            blk.N.attn_norm.{weight,bias} [n_embd]   blk.N.attn_qkv.weight [n_embd, 3 n_embd] + bias [3 n_embd]
 *            blk.N.attn_output.weight [n_embd, n_embd] + bias   blk.N.ffn_norm.{weight,bias} [n_embd]
 *            blk.N.ffn_up.weight [n_embd, n_ff] + bias [n_ff]   blk.N.ffn_down.weight [n_ff, n_embd] + bias
 *            output_norm.{weight,bias} [n_embd]       output.weight [n_embd, n_vocab] (no output bias!)
 *   graph    x = tok_embd[ids] + pos_embd[pos]; per block: LayerNorm -> qkv = W x + b, split Q|K|V at
 *            0, n_embd, 2 n_embd, heads of n_embd/n_head contiguous, causal softmax(QK^T / sqrt(hd)) V ->
 *            attn_output -> residual; LayerNorm -> ffn_up -> GELU -> ffn_down -> residual; final LayerNorm
 *            -> output. ggml_mul_mat(W, x) with W of ne [in, out] computes y[out] = sum_in W[out][in] x[in],
 *            i.e. the torch Linear layout [out, in]; mixq's GPT stores linear weights [in, out] (x @ W), so
 *            matrices are transposed to [out, in] row-major before rows of length `in` are block-encoded.
 *   vocab    tokenizer.ggml.model 'gpt2' (BPE): tokens are GPT-2 byte-level strings; merges must be present
 *            (an empty list = character level); pre 'default' (else a "GENERATION QUALITY WILL BE DEGRADED"
 *            warning); token_type i32 (1 = normal). Default gpt2 special ids are 11/11, so bos/eos are
 *            written explicitly; add_bos defaults to false for pre 'default' and is written as false.
 *
 * Differences from the source model that the export has to resolve:
 *   - head bias: the model has `head_bias` but llama.cpp's gpt2 graph adds no output bias and refuses
 *     unused tensors. Since logits = (n * g + beta) W + b, adding delta to output_norm.bias with
 *     delta W = b gives the same logits. W (n_embd x n_vocab, n_vocab <= n_embd) has full column rank, so
 *     the minimum-norm delta = W (W^T W)^-1 b solves it exactly; it is computed against the weights as
 *     STORED (dequantized), so quantizing the head does not break the fold. Option headBias: 'error' refuses.
 *   - GELU: the source uses exact erf GELU; llama.cpp's LLM_FFN_GELU runs ggml_gelu (tanh approximation),
 *     a small numeric difference the file format cannot express.
 */
import { type BlockTypeTraits, getBlockType } from '../../blocks/registry.ts';
import { MixqError } from '../../core/errors.ts';
import { transpose } from '../../quant/layout.ts';
import type { GgufKV } from '../../io/gguf/read.ts';
import { encodeTensor, fallbackType, GGML_QNT_VERSION, LLAMA_FTYPE } from '../../io/gguf/requantize.ts';
import type { GgufTensorInput, GgufWriteInput } from '../../io/gguf/write.ts';

const SOURCE = 'gpt2 gguf export';

/** Shape numbers of the GPT (models/gpt/config.json `architecture`). */
export interface Gpt2Config {
  readonly nLayer: number;
  readonly dModel: number;
  readonly nHead: number;
  /** Trained context (positions in wpe). */
  readonly context: number;
  readonly vocabSize: number;
  /** MLP width; default 4 * dModel. */
  readonly nFf?: number;
  /** LayerNorm epsilon; default 1e-5 (torch nn.LayerNorm default, what train_gpt.py uses). */
  readonly layerNormEps?: number;
}

/** A source tensor: float32 values, row-major, with its PyTorch shape. */
export interface Gpt2SourceTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/**
 * Picks the ggml type ('Q8_0', 'q4_0', 'F16', ...) of one 2-D tensor from its GGUF name and ne
 * (ne[0] = row length). 1-D tensors (norms, biases) are always F32 and never asked.
 */
export type Gpt2TypeChooser = (ggufName: string, ne: readonly number[]) => string;

export interface Gpt2GgufInput {
  readonly config: Gpt2Config;
  /** vocab[i] is the text of token id i (here: one character each). */
  readonly vocab: readonly string[];
  /** Source tensors by PyTorch name (wte, wpe, blocks.N.attn_qkv, ..., head, head_bias). */
  get(name: string): Gpt2SourceTensor;
  /** Type per 2-D tensor; default: every matrix F32. */
  readonly chooseType?: Gpt2TypeChooser;
  /**
   * When the chosen type's block size does not divide the row length: false (default) refuses with a
   * MixqError; true applies llama.cpp's fallback (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
   * Q2_K/Q3_K -> IQ4_NL, else F16; requantize.ts fallbackType).
   */
  readonly fallback?: boolean;
  /** Importance matrix (ne[0] values) per GGUF tensor name, passed to the block encoder. */
  imatrix?(ggufName: string): Float32Array | undefined;
  /** 'fold' (default): fold head_bias into output_norm.bias; 'error': refuse a non-zero head bias. */
  readonly headBias?: 'fold' | 'error';
  /** general.name; default 'gpt'. */
  readonly name?: string;
  /** general.file_type (llama_ftype); default from the type holding most matrix weights. */
  readonly fileType?: number;
  /** BOS and EOS token ids; default the id of '\n' (one verse per line), else no keys written. */
  readonly bosId?: number;
  readonly eosId?: number;
}

/** What was written for one tensor. */
export interface Gpt2TensorReport {
  readonly name: string;
  /** Source tensor name. */
  readonly source: string;
  readonly ne: readonly number[];
  /** Registry name of the written type ('F32', 'Q8_0', ...). */
  readonly type: string;
  /** Set when fallback replaced the asked type. */
  readonly asked?: string;
}

export interface Gpt2GgufResult extends GgufWriteInput {
  readonly kv: GgufKV[];
  readonly tensors: GgufTensorInput[];
  readonly report: readonly Gpt2TensorReport[];
  /** Head-bias fold: max |delta| added to output_norm.bias and max |delta W - b| over the vocab. */
  readonly headBiasFold?: { readonly maxAbsDelta: number; readonly maxAbsResidual: number };
}

// ---------------------------------------------------------------- tokenizer

let byteTable: readonly string[] | undefined;

/**
 * GPT-2's bytes_to_unicode: printable bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves; the other 68
 * bytes, in increasing order, map to U+0100, U+0101, ... (space -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
 */
export function gpt2ByteToUnicode(): readonly string[] {
  if (byteTable) return byteTable;
  const keep = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : 256 + n++));
  byteTable = out;
  return out;
}

const utf8 = new TextEncoder();

/** A token's text in GPT-2 byte-level form (UTF-8 bytes, each mapped by gpt2ByteToUnicode). */
export function gpt2TokenText(text: string): string {
  const table = gpt2ByteToUnicode();
  let s = '';
  for (const b of utf8.encode(text)) s += table[b]!;
  return s;
}

// ---------------------------------------------------------------- tensors

function bad(field: string, message: string, expected: string): MixqError {
  return new MixqError(message, { source: SOURCE, field, expected });
}

function checkPositiveInt(v: number, field: string): void {
  if (!Number.isSafeInteger(v) || v <= 0) throw bad(field, `value ${v}`, 'a positive integer');
}

function f32Bytes(x: Float32Array): Uint8Array {
  return getBlockType('F32').encode(x);
}

/**
 * One GGUF tensor from a source tensor: `kind` 'vec' (1-D, F32), 'rows' (already [rows, ne0] row-major:
 * embeddings), 'linear' ([in, out] source, transposed to [out, in]).
 */
export interface Gpt2TensorPlanEntry {
  readonly gguf: string;
  readonly source: string;
  readonly kind: 'vec' | 'rows' | 'linear';
  /** Expected source (PyTorch) shape. */
  readonly dims: readonly number[];
}

/** The name map from mixq's GPT (train_gpt.py parameter names) to llama.cpp's gpt2 names. */
export function gpt2TensorPlan(config: Gpt2Config): readonly Gpt2TensorPlanEntry[] {
  const d = config.dModel;
  const ff = config.nFf ?? 4 * d;
  const plans: Gpt2TensorPlanEntry[] = [
    { gguf: 'token_embd.weight', source: 'wte', kind: 'rows', dims: [config.vocabSize, d] },
    { gguf: 'position_embd.weight', source: 'wpe', kind: 'rows', dims: [config.context, d] },
  ];
  for (let i = 0; i < config.nLayer; i++) {
    const s = `blocks.${i}.`;
    const g = `blk.${i}.`;
    plans.push(
      { gguf: `${g}attn_norm.weight`, source: `${s}ln1.weight`, kind: 'vec', dims: [d] },
      { gguf: `${g}attn_norm.bias`, source: `${s}ln1.bias`, kind: 'vec', dims: [d] },
      { gguf: `${g}attn_qkv.weight`, source: `${s}attn_qkv`, kind: 'linear', dims: [d, 3 * d] },
      { gguf: `${g}attn_qkv.bias`, source: `${s}attn_qkv_bias`, kind: 'vec', dims: [3 * d] },
      { gguf: `${g}attn_output.weight`, source: `${s}attn_proj`, kind: 'linear', dims: [d, d] },
      { gguf: `${g}attn_output.bias`, source: `${s}attn_proj_bias`, kind: 'vec', dims: [d] },
      { gguf: `${g}ffn_norm.weight`, source: `${s}ln2.weight`, kind: 'vec', dims: [d] },
      { gguf: `${g}ffn_norm.bias`, source: `${s}ln2.bias`, kind: 'vec', dims: [d] },
      { gguf: `${g}ffn_up.weight`, source: `${s}mlp_fc`, kind: 'linear', dims: [d, ff] },
      { gguf: `${g}ffn_up.bias`, source: `${s}mlp_fc_bias`, kind: 'vec', dims: [ff] },
      { gguf: `${g}ffn_down.weight`, source: `${s}mlp_proj`, kind: 'linear', dims: [ff, d] },
      { gguf: `${g}ffn_down.bias`, source: `${s}mlp_proj_bias`, kind: 'vec', dims: [d] },
    );
  }
  plans.push(
    { gguf: 'output_norm.weight', source: 'ln_f.weight', kind: 'vec', dims: [d] },
    { gguf: 'output_norm.bias', source: 'ln_f.bias', kind: 'vec', dims: [d] },
    { gguf: 'output.weight', source: 'head', kind: 'linear', dims: [d, config.vocabSize] },
  );
  return plans;
}

function fetch(input: Gpt2GgufInput, name: string, dims: readonly number[]): Float32Array {
  const t = input.get(name);
  const same = t.dims.length === dims.length && t.dims.every((v, i) => v === dims[i]);
  if (!same) throw bad(`tensors.${name}.shape`, `shape [${t.dims.join(', ')}]`, `[${dims.join(', ')}]`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw bad(`tensors.${name}.data`, `${t.data.length} values`, `${n} values`);
  return t.data;
}

function resolveType(
  input: Gpt2GgufInput,
  gguf: string,
  ne: readonly number[],
): {
  type: BlockTypeTraits;
  asked?: string;
} {
  const name = input.chooseType ? input.chooseType(gguf, ne) : 'F32';
  let asked: BlockTypeTraits;
  try {
    asked = getBlockType(name);
  } catch (e) {
    throw bad(`types.${gguf}`, `unknown type '${name}'`, e instanceof MixqError ? e.expected : 'a ggml type');
  }
  const ne0 = ne[0]!;
  if (ne0 % asked.blockSize === 0) return { type: asked };
  if (!input.fallback) {
    throw bad(
      `types.${gguf}`,
      `rows of ${ne0} values are not a multiple of the ${asked.name} block size ${asked.blockSize}`,
      `a type whose block divides ${ne0} (e.g. Q8_0, Q5_0, Q4_0: 32), or fallback: true`,
    );
  }
  return { type: fallbackType(asked, ne0), asked: asked.name };
}

/**
 * Minimum-norm delta (length rows = n_embd) with sum_i delta[i] * w[v][i] = b[v] for every v, where w is
 * the head as stored: [nVocab rows][nEmbd] row-major. Solves (w w^T) z = b by Gaussian elimination with
 * partial pivoting in float64, then delta = w^T z.
 */
function foldDelta(w: Float32Array, nVocab: number, nEmbd: number, b: Float32Array): Float64Array {
  const g = new Float64Array(nVocab * nVocab);
  for (let a = 0; a < nVocab; a++) {
    for (let c = a; c < nVocab; c++) {
      let s = 0;
      for (let i = 0; i < nEmbd; i++) s += w[a * nEmbd + i]! * w[c * nEmbd + i]!;
      g[a * nVocab + c] = s;
      g[c * nVocab + a] = s;
    }
  }
  const y = Float64Array.from(b);
  let diagMax = 0;
  for (let a = 0; a < nVocab; a++) diagMax = Math.max(diagMax, g[a * nVocab + a]!);
  for (let k = 0; k < nVocab; k++) {
    let p = k;
    for (let r = k + 1; r < nVocab; r++) {
      if (Math.abs(g[r * nVocab + k]!) > Math.abs(g[p * nVocab + k]!)) p = r;
    }
    if (!(Math.abs(g[p * nVocab + k]!) > 1e-12 * diagMax)) {
      throw bad(
        'head_bias',
        'the output weight is (numerically) rank-deficient, so the head bias cannot be folded',
        "an output weight of full rank, or headBias: 'error' with a zero head bias",
      );
    }
    if (p !== k) {
      for (let c = 0; c < nVocab; c++) {
        const t = g[k * nVocab + c]!;
        g[k * nVocab + c] = g[p * nVocab + c]!;
        g[p * nVocab + c] = t;
      }
      const t = y[k]!;
      y[k] = y[p]!;
      y[p] = t;
    }
    for (let r = k + 1; r < nVocab; r++) {
      const f = g[r * nVocab + k]! / g[k * nVocab + k]!;
      if (f === 0) continue;
      for (let c = k; c < nVocab; c++) g[r * nVocab + c]! -= f * g[k * nVocab + c]!;
      y[r]! -= f * y[k]!;
    }
  }
  const z = new Float64Array(nVocab);
  for (let k = nVocab - 1; k >= 0; k--) {
    let s = y[k]!;
    for (let c = k + 1; c < nVocab; c++) s -= g[k * nVocab + c]! * z[c]!;
    z[k] = s / g[k * nVocab + k]!;
  }
  const delta = new Float64Array(nEmbd);
  for (let v = 0; v < nVocab; v++) {
    const zv = z[v]!;
    for (let i = 0; i < nEmbd; i++) delta[i]! += w[v * nEmbd + i]! * zv;
  }
  return delta;
}

function u32(key: string, value: number): GgufKV {
  return { key, type: 'u32', value };
}

/** The config's checked values: feed-forward width and LayerNorm epsilon. */
function checkConfig(c: Gpt2Config): { nFf: number; eps: number } {
  checkPositiveInt(c.nLayer, 'config.nLayer');
  checkPositiveInt(c.dModel, 'config.dModel');
  checkPositiveInt(c.nHead, 'config.nHead');
  checkPositiveInt(c.context, 'config.context');
  checkPositiveInt(c.vocabSize, 'config.vocabSize');
  const nFf = c.nFf ?? 4 * c.dModel;
  checkPositiveInt(nFf, 'config.nFf');
  if (c.dModel % c.nHead !== 0) {
    throw bad(
      'config.nHead',
      `dModel ${c.dModel} is not divisible by nHead ${c.nHead}`,
      'a divisor of dModel',
    );
  }
  const eps = c.layerNormEps ?? 1e-5;
  if (!(eps > 0) || !Number.isFinite(eps))
    throw bad('config.layerNormEps', `value ${eps}`, 'a positive number');
  return { nFf, eps };
}

/** The vocabulary as GPT-2 byte-level token texts, and the bos / eos ids (default the newline's). */
function gpt2Tokens(input: Gpt2GgufInput): { tokens: string[]; bos?: number; eos?: number } {
  const c = input.config;
  if (input.vocab.length !== c.vocabSize) {
    throw bad('vocab', `${input.vocab.length} tokens`, `config.vocabSize = ${c.vocabSize}`);
  }
  const tokens = input.vocab.map((t, i) => {
    if (t.length === 0) throw bad(`vocab[${i}]`, 'empty token', 'a non-empty string');
    return gpt2TokenText(t);
  });
  const seen = new Map<string, number>();
  tokens.forEach((t, i) => {
    const j = seen.get(t);
    if (j !== undefined) throw bad(`vocab[${i}]`, `duplicate token (same as id ${j})`, 'distinct tokens');
    seen.set(t, i);
  });
  const newline = input.vocab.indexOf('\n');
  const bos = input.bosId ?? (newline >= 0 ? newline : undefined);
  const eos = input.eosId ?? (newline >= 0 ? newline : undefined);
  for (const [field, id] of [
    ['bosId', bos],
    ['eosId', eos],
  ] as const) {
    if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)) {
      throw bad(field, `token id ${id}`, `0..${c.vocabSize - 1}`);
    }
  }
  return { tokens, ...(bos !== undefined ? { bos } : {}), ...(eos !== undefined ? { eos } : {}) };
}

/** The GGUF tensors in llama.cpp order, each in its chosen type; with the output norm bias and the head. */
function gpt2Tensors(input: Gpt2GgufInput): {
  tensors: GgufTensorInput[];
  report: Gpt2TensorReport[];
  outputNormBias?: { index: number; values: Float32Array };
  head?: { values: Float32Array; type: BlockTypeTraits };
} {
  const tensors: GgufTensorInput[] = [];
  const report: Gpt2TensorReport[] = [];
  let outputNormBias: { index: number; values: Float32Array } | undefined;
  let head: { values: Float32Array; type: BlockTypeTraits } | undefined;
  for (const p of gpt2TensorPlan(input.config)) {
    const x = fetch(input, p.source, p.dims);
    if (p.kind === 'vec') {
      const ne = [p.dims[0]!];
      if (p.gguf === 'output_norm.bias') outputNormBias = { index: tensors.length, values: x };
      tensors.push({ name: p.gguf, ne, type: 'F32', data: f32Bytes(x) });
      report.push({ name: p.gguf, source: p.source, ne, type: 'F32' });
      continue;
    }
    // rows: source [rows, ne0] already; linear: source [in, out] -> [out, in]
    const [r0, r1] = [p.dims[0]!, p.dims[1]!];
    const rows = p.kind === 'rows' ? x : transpose(x, r0, r1);
    const ne = p.kind === 'rows' ? [r1, r0] : [r0, r1];
    const { type, asked } = resolveType(input, p.gguf, ne);
    const im = input.imatrix?.(p.gguf);
    if (im && im.length !== ne[0]) {
      throw bad(`imatrix.${p.gguf}`, `${im.length} values`, `${ne[0]} (ne[0])`);
    }
    const data = encodeTensor(rows, ne, type, type.blockSize > 1 ? im : undefined);
    if (p.gguf === 'output.weight') head = { values: type.decode(data, rows.length), type };
    tensors.push({ name: p.gguf, ne, type: type.name, data });
    report.push(
      asked
        ? { name: p.gguf, source: p.source, ne, type: type.name, asked }
        : { name: p.gguf, source: p.source, ne, type: type.name },
    );
  }
  return { tensors, report, ...(outputNormBias ? { outputNormBias } : {}), ...(head ? { head } : {}) };
}

/**
 * llama.cpp's gpt2 has no output bias: a non-zero head bias b is folded into output_norm.bias (the file
 * comment), against the head as stored; the tensor is replaced in `t`. Undefined when b is zero.
 */
function foldHeadBias(
  input: Gpt2GgufInput,
  t: ReturnType<typeof gpt2Tensors>,
): Gpt2GgufResult['headBiasFold'] {
  const c = input.config;
  const b = fetch(input, 'head_bias', [c.vocabSize]);
  if (!b.some((v) => v !== 0)) return undefined;
  if (input.headBias === 'error') {
    throw bad('head_bias', "non-zero head bias, and llama.cpp's gpt2 has no output bias", "headBias: 'fold'");
  }
  const { head, outputNormBias } = t;
  if (!head || !outputNormBias) throw bad('head', 'missing output tensors', 'head and ln_f.bias');
  if (c.vocabSize > c.dModel) {
    throw bad(
      'head_bias',
      `cannot fold a bias over ${c.vocabSize} tokens into ${c.dModel} features`,
      'vocabSize <= dModel',
    );
  }
  const delta = foldDelta(head.values, c.vocabSize, c.dModel, b);
  const beta = outputNormBias.values;
  const folded = new Float32Array(beta.length);
  let maxAbsDelta = 0;
  for (let i = 0; i < beta.length; i++) {
    folded[i] = beta[i]! + delta[i]!;
    maxAbsDelta = Math.max(maxAbsDelta, Math.abs(delta[i]!));
  }
  // residual with the float32 values actually stored
  let maxAbsResidual = 0;
  let maxB = 0;
  for (let v = 0; v < c.vocabSize; v++) {
    let s = 0;
    for (let i = 0; i < c.dModel; i++) s += (folded[i]! - beta[i]!) * head.values[v * c.dModel + i]!;
    maxAbsResidual = Math.max(maxAbsResidual, Math.abs(s - b[v]!));
    maxB = Math.max(maxB, Math.abs(b[v]!));
  }
  if (!(maxAbsResidual <= 1e-4 * Math.max(1, maxB))) {
    throw bad('head_bias', `folding leaves a logit error of ${maxAbsResidual}`, 'at most 1e-4');
  }
  const old = t.tensors[outputNormBias.index]!;
  t.tensors[outputNormBias.index] = { ...old, data: f32Bytes(folded) };
  return { maxAbsDelta, maxAbsResidual };
}

/** general.file_type: the type holding most matrix weights, as requantize does. */
function dominantFileType(report: readonly Gpt2TensorReport[]): number {
  const weight = new Map<string, number>();
  for (const r of report) {
    if (r.ne.length < 2) continue;
    weight.set(r.type, (weight.get(r.type) ?? 0) + r.ne.reduce((a, v) => a * v, 1));
  }
  let dominant = 'F32';
  let most = -1;
  for (const [t, n] of weight) {
    if (n > most) {
      dominant = t;
      most = n;
    }
  }
  return LLAMA_FTYPE[dominant] ?? 0;
}

/**
 * Builds the KV list and tensors of a llama.cpp `gpt2` GGUF from the GPT's PyTorch-named float32 weights.
 * Write it with `writeGguf(result)` (then writeFileAtomic in Node).
 * @example
 * const r = gpt2GgufFromWeights({ config, vocab, get, chooseType: (n) => n === 'output.weight' ? 'Q8_0' : 'Q4_0' });
 * const chunks = writeGguf(r);
 */
export function gpt2GgufFromWeights(input: Gpt2GgufInput): Gpt2GgufResult {
  const c = input.config;
  const { nFf, eps } = checkConfig(c);
  const { tokens, bos, eos } = gpt2Tokens(input);
  const t = gpt2Tensors(input);
  const headBiasFold = foldHeadBias(input, t);
  const { tensors, report } = t;
  const fileType = input.fileType ?? dominantFileType(report);
  const a = 'gpt2';
  const kv: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: a },
    { key: 'general.name', type: 'str', value: input.name ?? 'gpt' },
    u32('general.file_type', fileType),
    u32('general.quantization_version', GGML_QNT_VERSION),
    u32(`${a}.context_length`, c.context),
    u32(`${a}.embedding_length`, c.dModel),
    u32(`${a}.feed_forward_length`, nFf),
    u32(`${a}.block_count`, c.nLayer),
    u32(`${a}.attention.head_count`, c.nHead),
    { key: `${a}.attention.layer_norm_epsilon`, type: 'f32', value: eps },
    u32(`${a}.vocab_size`, c.vocabSize),
    { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: 'str', value: 'default' },
    { key: 'tokenizer.ggml.tokens', type: 'arr', value: { itemType: 'str', items: tokens } },
    { key: 'tokenizer.ggml.token_type', type: 'arr', value: { itemType: 'i32', items: tokens.map(() => 1) } },
    { key: 'tokenizer.ggml.merges', type: 'arr', value: { itemType: 'str', items: [] } },
  ];
  if (bos !== undefined) kv.push(u32('tokenizer.ggml.bos_token_id', bos));
  if (eos !== undefined) kv.push(u32('tokenizer.ggml.eos_token_id', eos));
  kv.push({ key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: false });
  kv.push({ key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false });
  return headBiasFold ? { kv, tensors, report, headBiasFold } : { kv, tensors, report };
}

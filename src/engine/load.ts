/**
 * Loading a ModelSource into kernel memory at its stored size.
 *
 * Raw tensors (GGUF data of any ggml type, safetensors F32 / F16 / BF16) are read into ONE allocation of
 * kernel memory laid out back to back and prepared in place: no repacking, no second copy, so the
 * weights take exactly their bytes in the file (with `readInto`, from the Node edge, they are read from
 * the file straight into that memory; otherwise one tensor at a time passes through a transient buffer).
 * q, k, v (and gate, up) of one type are placed next to each other and prepared as one fused matrix: one
 * product per group instead of three, with no copy. mixq quantized weights are repacked once into the
 * kernels' layout (kernels/sliced.ts: the stored size when K is a multiple of 128). Norms, biases and
 * GPT-2's position table are float32 arrays (a few KiB per layer).
 */
import { BLOCK_TYPES, type BlockTypeName } from '../blocks/registry.ts';
import { MixqError } from '../core/errors.ts';
import type { LlmConfig } from '../io/llm/config.ts';
import type { KernelContext, PrepareOptions, PreparedWeight } from '../kernels/context.ts';
import { mixqSafetensorsSource } from '../kernels/source.ts';
import { GGML_KERNEL_TYPES } from '../kernels/ggml.ts';
import { lutMisfit } from '../kernels/lut.ts';
import {
  EngineModel,
  type EngineOptions,
  type EngineActivations,
  type LayerWeights,
  type ModelWeights,
  type NormWeights,
  type Projection,
} from './model.ts';
import type { ModelSource, RawStorage, StoredTensor } from './source.ts';

export interface LoadOptions extends EngineOptions {
  /** Fuse q/k/v and gate/up of one type into one product (default true). */
  readonly fuse?: boolean;
  /** Called after each tensor with bytes loaded so far and in all. */
  readonly progress?: (done: number, total: number) => void;
}

/** What a load put where. */
export interface LoadReport {
  /** Bytes of tensor data in the source. */
  readonly tensorBytes: number;
  /** Bytes of kernel memory holding weights (raw bytes in place + repacked mixq weights + descriptors). */
  readonly weightBytes: number;
  /** Bytes of float32 norms, biases and position tables outside kernel memory. */
  readonly floatBytes: number;
  /** Products per token (after fusion). */
  readonly products: number;
}

const MATRIX_TYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', ...GGML_KERNEL_TYPES]);

/** Tensors that become one prepared weight (q/k/v or gate/up fused when their types agree). */
interface Group {
  readonly parts: StoredTensor[];
  readonly splits: number[];
  readonly biases: (StoredTensor | undefined)[];
  w?: PreparedWeight;
  bias?: Float32Array;
}

/**
 * The matrices' bytes into kernel memory: raw tensors (GGUF data, float safetensors) in ONE allocation,
 * read in place and prepared there; mixq quantized weights repacked into the kernels' layout. Sets each
 * group's prepared weight; returns the kernel bytes used and the tensor bytes read.
 */
async function loadMatrices(
  kernels: KernelContext,
  src: ModelSource,
  groups: readonly Group[],
  progress: ((done: number, total: number) => void) | undefined,
  blockLayout: PrepareOptions,
  activations: EngineActivations,
): Promise<{ weightBytes: number; done: number }> {
  const total = src.tensorBytes;
  // ---- raw tensors: one allocation, read in place
  const mem = kernels.memory;
  let rawTotal = 0;
  for (const g of groups) for (const p of g.parts) if (p.storage.kind === 'raw') rawTotal += p.storage.nbytes;
  const base = rawTotal > 0 ? mem.alloc(rawTotal) : 0;
  let weightBytes = rawTotal;
  let done = 0;
  let at = base;
  for (const g of groups) {
    if (g.parts[0]!.storage.kind !== 'raw') continue;
    const start = at;
    for (const p of g.parts) {
      const s = p.storage as RawStorage;
      if (s.readInto) await s.readInto(mem.u8(at, s.nbytes));
      else {
        const bytes = await s.read();
        if (bytes.length !== s.nbytes)
          throw new MixqError(`${bytes.length} bytes`, {
            source: src.source,
            field: p.name,
            expected: String(s.nbytes),
          });
        mem.u8(at, s.nbytes).set(bytes);
      }
      at += s.nbytes;
      done += s.nbytes;
      progress?.(done, total);
    }
    const rows = g.splits.reduce((a, b) => a + b, 0);
    const type = (g.parts[0]!.storage as RawStorage).type;
    g.w = prepare(kernels, src.source, g.parts[0]!.name, () =>
      kernels.prepare(
        {
          kind: 'ggml',
          type,
          rows,
          cols: g.parts[0]!.shape[1]!,
          data: mem.u8(start, at - start),
        },
        blockLayout,
      ),
    );
    weightBytes += g.w.bytes;
  }
  // ---- mixq quantized weights: repacked into the kernels' layout
  for (const g of groups) {
    const p = g.parts[0]!;
    if (p.storage.kind !== 'mixq') continue;
    const st = p.storage;
    const parts = await st.read();
    const ms = mixqSafetensorsSource(st.entry, parts);
    // 'lut8': the lookup-table layout for the weights it takes (its kernels' modes are lut8 and q8)
    const layout: PrepareOptions = activations === 'lut8' && !lutMisfit(ms) ? { layout: 'lut' } : blockLayout;
    g.w = prepare(kernels, src.source, p.name, () => kernels.prepare(ms, layout));
    weightBytes += g.w.bytes;
    done += st.nbytes;
    progress?.(done, total);
  }

  return { weightBytes, done };
}

/**
 * Loads a model's weights into a kernel context (createKernels, or createKernelPool from mixq/node).
 * @example const model = await loadEngineModel(await createKernels(), ggufModelSource(file));
 */
export async function loadEngineModel(
  kernels: KernelContext,
  src: ModelSource,
  opts: LoadOptions = {},
): Promise<EngineModel & { readonly load: LoadReport }> {
  // the caller's activation mode, else the one the file was planned for
  if (opts.activations === undefined && src.activations) opts = { ...opts, activations: src.activations };
  const c = src.config;
  const fuse = opts.fuse ?? true;
  const tensors = src.tensors;
  const need = (name: string, shape: readonly number[]): StoredTensor => {
    const t = tensors.get(name);
    if (!t)
      throw new MixqError('missing tensor', {
        source: src.source,
        field: name,
        expected: `a tensor of shape [${shape.join(', ')}]`,
      });
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new MixqError(`shape [${t.shape.join(', ')}]`, {
        source: src.source,
        field: name,
        expected: `[${shape.join(', ')}] (from the model's configuration)`,
      });
    return t;
  };
  const opt = (name: string, shape: readonly number[]) => (tensors.has(name) ? need(name, shape) : undefined);
  const H = c.hiddenSize;
  const F = c.intermediateSize;
  const qW = c.numHeads * c.headDim;
  const kvW = c.numKvHeads * c.headDim;

  // ---- plan: every matrix as a group of tensors that become one prepared weight
  const groups: Group[] = [];
  const group = (parts: StoredTensor[], biases: (StoredTensor | undefined)[]): Group[] => {
    const fusable =
      fuse &&
      parts.length > 1 &&
      parts.every(
        (p) =>
          p.storage.kind === 'raw' &&
          p.storage.type === (parts[0]!.storage as RawStorage).type &&
          p.shape[1] === parts[0]!.shape[1],
      );
    const out: Group[] = fusable
      ? [{ parts, splits: parts.map((p) => p.shape[0]!), biases }]
      : parts.map((p, i) => ({ parts: [p], splits: [p.shape[0]!], biases: [biases[i]] }));
    groups.push(...out);
    return out;
  };
  const matrix = (name: string, rows: number, cols: number) =>
    checkMatrix(src.source, need(name, [rows, cols]));
  const tokenEmbd = matrix('token_embd.weight', c.vocabSize, H);
  const outputT = tensors.has('output.weight') ? matrix('output.weight', c.vocabSize, H) : undefined;
  const [embGroup] = group([tokenEmbd], [undefined]);
  const [outGroup] = outputT ? group([outputT], [undefined]) : [embGroup];
  const planned: { qkv: Group[]; o: Group; ffnIn: Group[]; down: Group; b: string }[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const b = `blk.${l}.`;
    const bias = (n: string, len: number) => opt(`${b}${n}.bias`, [len]);
    let qkv: Group[];
    let ffnIn: Group[];
    if (c.family === 'gpt2') {
      qkv = group([matrix(`${b}attn_qkv.weight`, qW + 2 * kvW, H)], [bias('attn_qkv', qW + 2 * kvW)]);
      ffnIn = group([matrix(`${b}ffn_up.weight`, F, H)], [bias('ffn_up', F)]);
    } else {
      qkv = group(
        [
          matrix(`${b}attn_q.weight`, qW, H),
          matrix(`${b}attn_k.weight`, kvW, H),
          matrix(`${b}attn_v.weight`, kvW, H),
        ],
        [bias('attn_q', qW), bias('attn_k', kvW), bias('attn_v', kvW)],
      );
      ffnIn = group(
        [matrix(`${b}ffn_gate.weight`, F, H), matrix(`${b}ffn_up.weight`, F, H)],
        [bias('ffn_gate', F), bias('ffn_up', F)],
      );
    }
    const [o] = group([matrix(`${b}attn_output.weight`, H, qW)], [bias('attn_output', H)]);
    const [down] = group([matrix(`${b}ffn_down.weight`, H, F)], [bias('ffn_down', H)]);
    planned.push({ qkv, o: o!, ffnIn, down: down!, b });
  }

  const total = src.tensorBytes;
  // float32 activations run the 'f32' kernels, which read blocks as stored (interleaved K-quant tiles would
  // rebuild every block; mixq's interleaved tiles a piece of each)
  const blockLayout: PrepareOptions = opts.activations === 'f32' ? { layout: 'stored' } : {};
  const loaded = await loadMatrices(
    kernels,
    src,
    groups,
    opts.progress,
    blockLayout,
    opts.activations ?? 'auto',
  );
  let { weightBytes, done } = loaded;
  weightBytes += groups.length * 128; // descriptors

  // ---- vectors
  let floatBytes = 0;
  const vec = async (t: StoredTensor | undefined): Promise<Float32Array | undefined> => {
    if (!t) return undefined;
    const v = await readFloats(src.source, t);
    floatBytes += v.byteLength;
    done += t.storage.nbytes;
    opts.progress?.(done, total);
    return v;
  };
  const norm = async (name: string, withBias: boolean): Promise<NormWeights> => {
    const weight = (await vec(need(`${name}.weight`, [H])))!;
    const bias = withBias ? await vec(need(`${name}.bias`, [H])) : undefined;
    return bias ? { weight, bias } : { weight };
  };
  const lnBias = c.norm === 'layer';
  const projection = async (g: Group): Promise<Projection> => {
    const bs = await Promise.all(g.biases.map((b) => vec(b)));
    let bias: Float32Array | undefined;
    if (bs.some((b) => b)) {
      bias = new Float32Array(g.w!.rows);
      let off = 0;
      g.splits.forEach((s, i) => {
        if (bs[i]) bias!.set(bs[i]!, off);
        off += s;
      });
    }
    return { w: g.w!, splits: g.splits, ...(bias ? { bias } : {}) };
  };
  const layers: LayerWeights[] = [];
  for (const pl of planned) {
    const qkv: Projection[] = [];
    for (const g of pl.qkv) qkv.push(await projection(g));
    if (c.family === 'gpt2') qkv[0] = { ...qkv[0]!, splits: [qW, kvW, kvW] };
    const ffnIn: Projection[] = [];
    for (const g of pl.ffnIn) ffnIn.push(await projection(g));
    layers.push({
      attnNorm: await norm(`${pl.b}attn_norm`, lnBias),
      qkv,
      attnOut: await projection(pl.o),
      ffnNorm: await norm(`${pl.b}ffn_norm`, lnBias),
      ffnIn,
      ffnDown: await projection(pl.down),
    });
  }
  const posEmbd = c.positions === 'learned' ? await vec(checkPos(src, c)) : undefined;
  const weights: ModelWeights = {
    tokenEmbd: embGroup!.w!,
    ...(posEmbd ? { posEmbd } : {}),
    layers,
    outputNorm: await norm('output_norm', lnBias),
    output: outGroup!.w!,
  };
  const model = new EngineModel(c, src.tokenizer, kernels, weights, src.ropeMode, opts);
  const load: LoadReport = {
    tensorBytes: src.tensorBytes,
    weightBytes,
    floatBytes,
    products: planned.reduce((n, p) => n + p.qkv.length + p.ffnIn.length + 2, 1),
  };
  return Object.assign(model, { load });
}

function checkPos(src: ModelSource, c: LlmConfig): StoredTensor {
  const t = src.tensors.get('position_embd.weight');
  if (!t || t.shape.length !== 2 || t.shape[1] !== c.hiddenSize || t.shape[0]! < 1)
    throw new MixqError(t ? `shape [${t.shape.join(', ')}]` : 'missing tensor', {
      source: src.source,
      field: 'position_embd.weight',
      expected: `[positions, ${c.hiddenSize}]`,
    });
  return t;
}

function checkMatrix(source: string, t: StoredTensor): StoredTensor {
  if (t.storage.kind === 'raw' && !MATRIX_TYPES.has(t.storage.type))
    throw new MixqError(`type ${t.storage.type} has no kernel`, {
      source,
      field: t.name,
      expected: [...MATRIX_TYPES].join(', '),
    });
  return t;
}

function prepare(k: KernelContext, source: string, name: string, f: () => PreparedWeight): PreparedWeight {
  try {
    return f();
  } catch (e) {
    if (e instanceof MixqError) throw new MixqError(e.message, { source, field: name, expected: e.expected });
    throw e;
  }
}

/** A vector or small table as float32 (any raw type; a mixq weight is refused: vectors stay float). */
async function readFloats(source: string, t: StoredTensor): Promise<Float32Array> {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.storage.kind !== 'raw')
    throw new MixqError('a quantized vector', { source, field: t.name, expected: 'F32, F16 or BF16 values' });
  const type = BLOCK_TYPES[t.storage.type as BlockTypeName];
  if (!type)
    throw new MixqError(`type ${t.storage.type}`, {
      source,
      field: t.name,
      expected: Object.keys(BLOCK_TYPES).join(', '),
    });
  return type.decode(await t.storage.read(), n);
}

/**
 * The writers and read-back checks of the output targets (targets.ts): each builds its file from the
 * loaded model, the plan (schemes on the tensor axes) and the simulated weights, and its check compares
 * the file with the simulation that chose it.
 *
 *   onnx         quantizeOnnxWeights on a copy of the parsed model (corrected biases written first);
 *                checked by running it with onnxruntime on the task's evaluation data
 *   gguf         the bundled GPT as a llama.cpp gpt2 GGUF from the loaded model's tensors, the plan's block
 *                type per matrix; read back with mixq's GGUF reader, equal to the simulation bit for bit
 *   safetensors  quantized safetensors (docs/safetensors-quantized.md); read back, equal bit for bit
 *   runtime      the bundled GPT as a mixq engine file (export/engine-file.ts: llama.cpp's gpt2 names and
 *                layout, any mixq format); read back, equal bit for bit, and run by mixq's engine on the
 *                task's evaluation data with its decode speed measured
 */
import { basename } from 'node:path';
import { loadEngineModel } from '../../engine/load.ts';
import { type DecodeSpeed, measureDecode } from '../../engine/session.ts';
import { ENGINE_ACTIVATIONS_KEY, engineFileSource } from '../../engine/source.ts';
import { type EngineFileTensor, writeEngineFile } from '../../export/engine-file.ts';
import { readSafetensors } from '../../io/safetensors/read.ts';
import { createKernels } from '../../kernels/context.ts';
import { createKernelPool } from '../../kernels/pool.node.ts';
import { engineRunner } from '../../runtime/engine-lm.node.ts';
import { MixqError } from '../../core/errors.ts';
import { quantizePlanned } from '../../export/onnx/assign.ts';
import { type ExportedWeight, type PrequantizedBlocks } from '../../export/onnx/quantize.ts';
import {
  type QuantizedSafetensorsInput,
  readQuantizedSafetensors,
  writeQuantizedSafetensors,
} from '../../export/safetensors.ts';
import { exportGptGguf, readGptConfig } from '../../export/gguf/gpt2.node.ts';
import { type Gpt2SourceTensor, gpt2TensorPlan } from '../../export/gguf/gpt2.ts';
import { getBlockType } from '../../blocks/registry.ts';
import { writeOnnx } from '../../io/onnx/read.ts';
import { listWeights, loadWeightFloat32 } from '../../io/onnx/weights.ts';
import { readGguf } from '../../io/gguf/read.ts';
import { concatBytes } from '../../io/gguf/write.ts';
import { bytesSource } from '../../io/source.ts';
import type { Plan } from '../../plan/schema.ts';
import type { LayerStats } from '../../analysis/sensitivity/proxies.ts';
import { type RowLayout, toRows } from '../../quant/layout.ts';
import { quantizerOf, schemeOnRows } from '../../quant/scheme.ts';
import { formatMetric } from '../../report/summary.ts';
import { GPT_DIR } from '../../runtime/bundled.node.ts';
import { withEvalRunner } from '../../runtime/session-pool.node.ts';
import type { LoadedModel } from '../model.node.ts';
import type { QuantTask } from '../tasks.node.ts';

/** A planned weight as the writers take it. */
export interface PlannedWeight {
  readonly layout: RowLayout;
  /** First consumer, e.g. 'MatMul:1'. */
  readonly consumer: string;
  /** The simulated (dequantized) weight, in the tensor's own layout. */
  readonly sim?: Float32Array;
  /** Its codes, where the writer cannot recompute them (targets.ts needsCodes). */
  readonly codes?: PrequantizedBlocks;
  /** Calibration statistics (ggml's importance matrix). */
  readonly stats?: LayerStats;
}

export interface WriteInput {
  readonly model: LoadedModel;
  readonly task: QuantTask;
  readonly plan: Plan;
  /** Every planned weight, by name (a plan weight not here is not a quantizable weight of the model). */
  readonly weights: ReadonlyMap<string, PlannedWeight>;
  /** Corrected float biases, by bias name (targets that carry them). */
  readonly biases: ReadonlyMap<string, Float32Array>;
}

/** A written model. */
export interface OutputFile {
  readonly format: 'onnx' | 'gguf' | 'safetensors';
  readonly fileName: string;
  /** The file, in order. */
  readonly chunks: readonly Uint8Array[];
  readonly size: number;
  /** ONNX: the stored weights. */
  readonly weights?: readonly ExportedWeight[];
  readonly notes: readonly string[];
}

/** The result of a read-back check: the line the report prints, and the metric of a run, if any. */
export interface OutputCheck {
  readonly check: string;
  readonly metric?: number;
  /** mixq's engine: measured decode ms per token, and of it the weight products. */
  readonly msPerToken?: number;
  readonly productsMsPerToken?: number;
}

function planned(input: WriteInput, name: string, i: number): PlannedWeight {
  const w = input.weights.get(name);
  if (!w)
    throw new MixqError(`plan weight '${name}' is not a quantizable weight of the model`, {
      source: 'plan',
      field: `weights[${i}].name`,
    });
  return w;
}

function simOf(w: PlannedWeight, name: string): Float32Array {
  if (!w.sim) throw new MixqError(`no simulated values for '${name}'`, { source: 'write', field: name });
  return w.sim;
}

/** The ONNX writer: the plan's schemes as onnxruntime operators or packed weights (export/onnx/assign.ts). */
export async function writeOnnxOutput(input: WriteInput): Promise<OutputFile> {
  const { model, plan } = input;
  const weights = plan.weights.map((pw, i) => ({
    name: pw.name,
    scheme: pw.scheme,
    ...planned(input, pw.name, i),
  }));
  const q = await quantizePlanned(model.onnx.model, weights, {
    opset: model.onnx.opset,
    floats: input.biases,
  });
  const bytes = writeOnnx(q.model);
  return {
    format: 'onnx',
    fileName: `${basename(model.path).replace(/\.onnx$/, '')}_q4.onnx`,
    chunks: [bytes],
    size: bytes.length,
    weights: q.weights,
    notes: q.notes,
  };
}

/** Runs the written ONNX model on the task's evaluation data (the metric the simulation predicted). */
export async function runOnnxOutput(
  file: OutputFile,
  task: QuantTask,
  simulated?: number,
): Promise<OutputCheck> {
  const metric = await withEvalRunner(file.chunks[0]!, (r) => task.evaluate(r));
  const sim = simulated === undefined ? '' : ` (simulation ${formatMetric(simulated)})`;
  return { metric, check: `run by onnxruntime: ${task.metric.name} ${formatMetric(metric)}${sim}` };
}

/** Every float tensor of the loaded model by name (the GGUF conversion reads them all). */
async function floatTensors(model: LoadedModel): Promise<Map<string, Gpt2SourceTensor>> {
  const out = new Map<string, Gpt2SourceTensor>();
  for (const w of listWeights(model.onnx.model))
    if (w.path === 'graph' && !w.sparse && w.dataType === 1)
      out.set(w.name, { data: await loadWeightFloat32(model.onnx.model, w), dims: w.dims });
  return out;
}

/**
 * The bundled GPT as a llama.cpp gpt2 GGUF with the plan's block type per matrix (embeddings, norms and
 * biases F32), from the loaded model's tensors, encoded by ggml's quantizers with the calibration
 * importance matrix.
 */
export async function writeGgufOutput(input: WriteInput): Promise<OutputFile> {
  const entries = gpt2TensorPlan(await readGptConfig(GPT_DIR));
  const bySource = new Map(input.plan.weights.map((w) => [w.name, w] as const));
  const byGguf = new Map(entries.map((e) => [e.gguf, e] as const));
  const r = await exportGptGguf(
    GPT_DIR,
    (gguf) => {
      const e = byGguf.get(gguf);
      return (e && bySource.get(e.source)?.scheme.blockType) ?? 'F32';
    },
    {
      imatrix: (gguf) => {
        const e = byGguf.get(gguf);
        const st = e ? input.weights.get(e.source)?.stats : undefined;
        return st ? Float32Array.from(st.meanSquare) : undefined;
      },
      tensors: await floatTensors(input.model),
    },
  );
  return { format: 'gguf', fileName: 'model-mixq.gguf', chunks: r.chunks, size: r.size, notes: [] };
}

/** Reads the GGUF back: every planned tensor dequantizes to the simulated weight, bit for bit. */
export async function readBackGguf(file: OutputFile, input: WriteInput): Promise<OutputCheck> {
  const entries = gpt2TensorPlan(await readGptConfig(GPT_DIR));
  const g = await readGguf(bytesSource(concatBytes(file.chunks), file.fileName));
  const planned = new Set(input.plan.weights.map((w) => w.name));
  let checked = 0;
  for (const e of entries) {
    const w = input.weights.get(e.source);
    if (!w || !planned.has(e.source)) continue;
    const t = g.tensors.find((x) => x.name === e.gguf);
    if (!t) throw new MixqError(`GGUF output lacks ${e.gguf}`, { source: 'gguf export', field: e.gguf });
    const got = getBlockType(t.type.name).decode(await g.readTensorBytes(t), t.nElements);
    // ggml rows are output channels: the row frame of the simulated weight
    const sim = toRows(simOf(w, e.source), w.layout);
    for (let i = 0; i < sim.length; i++)
      if (!Object.is(got[i], sim[i]))
        throw new MixqError(
          `GGUF tensor ${e.gguf} differs from the simulation at [${Math.floor(i / w.layout.cols)}, ${i % w.layout.cols}]`,
          { source: 'gguf export', field: e.gguf },
        );
    checked++;
  }
  return {
    check: `read back by mixq's GGUF reader: ${checked} quantized tensors equal the simulated weights bit for bit (llama.cpp gpt2 layout)`,
  };
}

/**
 * Quantized safetensors: the plan's weights packed with their scales and zero points, every other float
 * weight of the model unchanged.
 */
export async function writeSafetensorsOutput(input: WriteInput): Promise<OutputFile> {
  const { model } = input;
  const byName = new Map(input.plan.weights.map((w) => [w.name, w] as const));
  const inputs: QuantizedSafetensorsInput[] = model.weights.map((w) => {
    const p = byName.get(w.name);
    const values = model.original(w.name);
    if (!p)
      return {
        kind: 'float',
        name: w.name,
        dtype: 'F32',
        shape: w.dims,
        data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      };
    return {
      kind: 'quantize',
      name: w.name,
      values,
      shape: w.dims,
      quantizer: quantizerOf(p.scheme),
      algorithm: p.scheme.algorithm,
      ...(p.scheme.outliers !== undefined ? { outliers: p.scheme.outliers } : {}),
    };
  });
  const chunks = writeQuantizedSafetensors(inputs);
  return {
    format: 'safetensors',
    fileName: 'model-mixq.safetensors',
    chunks,
    size: chunks.reduce((s, c) => s + c.length, 0),
    notes: [],
  };
}

/** Reads the safetensors back: every planned weight dequantizes to the simulated weight, bit for bit. */
export async function readBackSafetensors(file: OutputFile, input: WriteInput): Promise<OutputCheck> {
  const back = await readQuantizedSafetensors(concatBytes(file.chunks));
  for (const [i, p] of input.plan.weights.entries()) {
    const got = await back.dequantize(p.name);
    const sim = simOf(planned(input, p.name, i), p.name);
    for (let k = 0; k < sim.length; k++)
      if (!Object.is(got[k], sim[k]))
        throw new MixqError(`safetensors weight ${p.name} differs from the simulation at ${k}`, {
          source: 'safetensors export',
          field: p.name,
        });
  }
  return {
    check: `read back by mixq's quantized-safetensors reader: ${input.plan.weights.length} weights equal the simulated weights bit for bit; weights outside the model's graph-fed float weights are not included`,
  };
}

// ------------------------------------------------------------------------------------- mixq engine file

/**
 * The bundled GPT as a mixq engine file: the gpt2 GGUF description (names, layout, tokenizer, the head
 * bias folded into output_norm.bias against the head as stored), every planned matrix quantized on its
 * row frame with the plan's scheme, the rest F32.
 */
export async function writeRuntimeOutput(input: WriteInput): Promise<OutputFile> {
  const { model } = input;
  const byName = new Map(input.plan.weights.map((w, i) => [w.name, { pw: w, i }] as const));
  const floats = await floatTensors(model);
  // the head as stored, so that the head-bias fold is exact for the quantized head
  const head = byName.get('head');
  if (head) {
    const t = floats.get('head');
    if (t) floats.set('head', { ...t, data: simOf(planned(input, 'head', head.i), 'head') });
  }
  const g = await exportGptGguf(GPT_DIR, 'F32', { tensors: floats });
  const source = new Map(g.report.map((r) => [r.name, r.source] as const));
  const tensors: EngineFileTensor[] = g.tensors.map((t) => {
    const shape = [...t.ne].reverse();
    const src = source.get(t.name);
    const p = src === undefined ? undefined : byName.get(src);
    if (!p || src === undefined) return { kind: 'float', name: t.name, shape, dtype: 'F32', data: t.data };
    const w = planned(input, src, p.i);
    if (shape.length !== 2 || shape[0] !== w.layout.rows || shape[1] !== w.layout.cols)
      throw new MixqError(`GGUF tensor ${t.name} [${shape.join(', ')}] is not the row matrix of ${src}`, {
        source: 'runtime export',
        field: src,
        expected: `[${w.layout.rows}, ${w.layout.cols}]`,
      });
    return {
      kind: 'quantize',
      name: t.name,
      shape: [w.layout.rows, w.layout.cols],
      values: toRows(model.original(src), w.layout),
      quantizer: quantizerOf(schemeOnRows(p.pw.scheme, w.layout)),
      algorithm: p.pw.scheme.algorithm,
    };
  });
  // the GPT's MLP uses the exact erf GELU (llama.cpp's gpt2 runs the tanh form; the engine reads this key)
  const kv = [...g.kv, { key: 'mixq.activation', type: 'str' as const, value: 'gelu-erf' }];
  // a plan for the engine's lookup-table mode says so: `mixq run` then runs it in that mode by default
  if (input.plan.latency?.activations === 'lut8')
    kv.push({ key: ENGINE_ACTIVATIONS_KEY, type: 'str' as const, value: 'lut8' });
  const chunks = writeEngineFile(kv, tensors);
  return {
    format: 'safetensors',
    fileName: 'gpt-mixq-engine.safetensors',
    chunks,
    size: chunks.reduce((s, c) => s + c.length, 0),
    notes: [],
  };
}

/** GGUF name of every planned weight of the GPT. */
async function gptGgufNames(): Promise<Map<string, string>> {
  return new Map(gpt2TensorPlan(await readGptConfig(GPT_DIR)).map((e) => [e.source, e.gguf] as const));
}

/** Reads the engine file back: it opens as an engine model source, and every planned weight equals the simulation. */
export async function readBackRuntime(file: OutputFile, input: WriteInput): Promise<OutputCheck> {
  const bytes = concatBytes(file.chunks);
  engineFileSource(await readSafetensors(bytesSource(bytes, file.fileName)));
  const back = await readQuantizedSafetensors(bytes);
  const names = await gptGgufNames();
  for (const [i, p] of input.plan.weights.entries()) {
    const w = planned(input, p.name, i);
    const gguf = names.get(p.name) ?? p.name;
    const got = await back.dequantize(gguf);
    const sim = toRows(simOf(w, p.name), w.layout);
    for (let k = 0; k < sim.length; k++)
      if (!Object.is(got[k], sim[k]))
        throw new MixqError(`engine file weight ${gguf} differs from the simulation at ${k}`, {
          source: 'runtime export',
          field: p.name,
        });
  }
  return {
    check: `read back: ${input.plan.weights.length} weights equal the simulated weights bit for bit (llama.cpp gpt2 names, [out, in] rows)`,
  };
}

/**
 * Runs the engine file in mixq's engine (the plan's cost-table threads, else one): the task metric on its
 * evaluation data, and the decode speed (ms per token, and of it the weight products).
 */
export async function runRuntimeOutput(
  file: OutputFile,
  input: WriteInput,
  simulated?: number,
): Promise<OutputCheck> {
  const src = engineFileSource(await readSafetensors(bytesSource(concatBytes(file.chunks), file.fileName)));
  // the threads the plan's cost table was measured with
  const threads = input.plan.latency?.threads ?? 1;
  const pool = threads > 1 ? await createKernelPool({ threads }) : undefined;
  let metric: number;
  let speed: DecodeSpeed;
  try {
    const model = await loadEngineModel(pool ?? (await createKernels()), src, {
      activations: input.plan.latency?.activations ?? 'auto',
    });
    metric = await input.task.evaluate(engineRunner(model));
    speed = measureDecode(model, { prompt: 16, tokens: 64, repeats: 5 });
  } finally {
    await pool?.close();
  }
  const sim = simulated === undefined ? '' : ` (simulation ${formatMetric(simulated)})`;
  return {
    metric,
    msPerToken: speed.msPerToken,
    productsMsPerToken: speed.productsMsPerToken,
    check: `run by mixq's engine${input.plan.latency?.activations === 'lut8' ? ' (activations lut8)' : ''}: ${input.task.metric.name} ${formatMetric(metric)}${sim}; decode ${speed.msPerToken.toFixed(3)} ms/token on ${threads} thread${threads > 1 ? 's' : ''}, ${speed.productsMsPerToken.toFixed(3)} of it in weight products`,
  };
}

/**
 * The output targets of `mixq quantize` and `mixq apply`, one row each: what a run writes, which decides
 * the candidate schemes, what a scheme costs on a weight, the writer and the read-back check.
 *
 *   row           candidates (default)                 bytes of a scheme on a weight          writes / checks
 *   onnx          every simulated format + native int4  onnxruntime's stored bytes            .onnx / run by
 *                                                       (MatMulNBits, DequantizeLinear, packed)  onnxruntime
 *   onnx-native   what onnxruntime's quantized           the same                               the same
 *                 operators take (int2/4/8, FP8)
 *   gguf          ggml block types                     ggml's block bytes                     .gguf / read back
 *   safetensors   the RTN element formats              the packed layout (quant storageCost)  .safetensors /
 *                                                                                              read back
 *   runtime       the RTN element formats mixq's        the packed layout (what the engine     engine file /
 *                 engine runs (kernels' group sizes)   holds: its stored size)                read back, run
 *                                                                                              by the engine
 *   none          every RTN format, GPTQ at 2-4 bits   the packed layout                      nothing
 *
 * Rows the engine runs also say what it runs for a scheme (`costFormat`), which gives the planner its
 * latency (latency.node.ts); no stage branches on the target.
 */
import {
  clipSearchScheme,
  defaultCandidates,
  floatScheme,
  ggmlCandidates,
  intScheme,
  MXFP4_RTN,
  MXFP6_RTN,
  NVFP4_RTN,
  schemeCost,
  schemeId,
} from '../../analysis/sensitivity/candidates.ts';
import { MixqError } from '../../core/errors.ts';
import type { CostFormat } from '../../engine/cost.ts';
import { onnxAssignment, onnxStorage } from '../../export/onnx/assign.ts';
import type { RowLayout } from '../../quant/layout.ts';
import { hasScaleSearch, representable, type Scheme, schemeOnTensor } from '../../quant/scheme.ts';
import type { LoadedModel } from '../model.node.ts';
import type { QuantTask } from '../tasks.node.ts';
import {
  type OutputCheck,
  type OutputFile,
  readBackGguf,
  readBackRuntime,
  readBackSafetensors,
  runRuntimeOutput,
  runOnnxOutput,
  type WriteInput,
  writeGgufOutput,
  writeOnnxOutput,
  writeRuntimeOutput,
  writeSafetensorsOutput,
} from './writers.node.ts';

export type TargetName = 'onnx' | 'onnx-native' | 'gguf' | 'safetensors' | 'runtime' | 'none';

/** What a target needs to know about a weight to price a scheme on it. */
export interface TargetWeight {
  readonly layout: RowLayout;
  /** First consumer, e.g. 'MatMul:1'. */
  readonly consumer: string;
}

export interface OutputTarget {
  readonly name: TargetName;
  /** What the report says about the target's formats and sizes. */
  readonly note: string;
  /** Whether the written model carries corrected biases (the default of bias correction). */
  readonly biasCorrection: boolean;
  /** The default candidate schemes (row frame). */
  candidates(): Scheme[];
  /** Refuses a task or candidate set the target cannot take (MixqError naming the option). */
  accept(task: QuantTask, schemes: readonly Scheme[]): void;
  /**
   * Exact stored bytes of `s` (row frame) on `w` and the information bits a bits-per-weight budget counts,
   * or undefined when the target cannot store it there.
   */
  cost(s: Scheme, w: TargetWeight, model: LoadedModel): { bytes: number; bits: number } | undefined;
  /** Whether the writer needs a weight's codes with its simulation (the exporter cannot recompute them). */
  needsCodes(s: Scheme): boolean;
  /**
   * What mixq's engine runs for a scheme (row frame), for the measured cost table; only on targets the
   * engine runs (others have no latency model).
   */
  costFormat?(s: Scheme, cols: number): CostFormat | undefined;
  /** Builds the file; absent for 'none'. */
  readonly write?: (input: WriteInput) => Promise<OutputFile>;
  /**
   * Compares the written file with the simulation that chose it: `readBack` decodes it and compares bit
   * for bit (cheap, always done); `run` runs it on the task's evaluation data in the runtime it is for
   * (`simulated` is the simulation's metric; done when the caller asks for runs).
   */
  readonly verify?: {
    readonly readBack?: (file: OutputFile, input: WriteInput) => Promise<OutputCheck>;
    readonly run?: (file: OutputFile, input: WriteInput, simulated?: number) => Promise<OutputCheck>;
  };
}

/** A scheme with the clipping search ('-mse'). */
const mse = clipSearchScheme;

/** GPTQ candidates added to the simulated set (target none): int4 g128 / g32, int3 / int2 g32, and clipping. */
function simulatedExtras(): Scheme[] {
  return [
    intScheme(4, 128, 'gptq'),
    intScheme(4, 32, 'gptq'),
    intScheme(3, 32, 'gptq'),
    intScheme(2, 32, 'gptq'),
    // clipping search (RTN and GPTQ): PP-OCRv4, every weight at int4 g32 RTN: CER 1.57% -> 1.21%
    mse(intScheme(5, 32)),
    mse(intScheme(4, 'pc')),
    mse(intScheme(4, 32)),
    mse(intScheme(3, 32)),
    mse(intScheme(2, 32)),
    mse(intScheme(3, 32, 'gptq')),
    mse(intScheme(2, 32, 'gptq')),
  ];
}

/**
 * Schemes onnxruntime runs natively: int8 / FP8 E4M3 / int4 per channel, int4 g128 / g32, int2 g32 (RTN,
 * and GPTQ for the grouped int4 / int2), and the int4 / int2 ones with the clipping search.
 */
export function nativeCandidates(): Scheme[] {
  return [
    intScheme(8, 'pc'),
    floatScheme('fp8_e4m3fn', 'pc', 'fp32'),
    intScheme(4, 'pc'),
    intScheme(4, 128),
    intScheme(4, 128, 'gptq'),
    intScheme(4, 32),
    intScheme(4, 32, 'gptq'),
    intScheme(2, 32),
    intScheme(2, 32, 'gptq'),
    // the same with the clipping search (stored as codes)
    mse(intScheme(4, 'pc')),
    mse(intScheme(4, 128)),
    mse(intScheme(4, 32)),
    mse(intScheme(2, 32)),
    mse(intScheme(2, 32, 'gptq')),
  ];
}

/** The candidates of 'none': the default set and the GPTQ / clipping extras. */
function simulatedCandidates(): Scheme[] {
  return [...defaultCandidates(), ...simulatedExtras()];
}

/** Schemes of `a` then those of `b` not in `a`. */
function union(a: readonly Scheme[], b: readonly Scheme[]): Scheme[] {
  const seen = new Set(a.map(schemeId));
  return [...a, ...b.filter((s) => !seen.has(schemeId(s)))];
}

/** Exact storage of a row-frame scheme (the packed layout, ggml blocks, or dense part + side matrix). */
function elementCost(s: Scheme, w: TargetWeight): { bytes: number; bits: number } | undefined {
  return representable(s, w.layout) ? schemeCost(s, w.layout) : undefined;
}

/**
 * onnxruntime's stored bytes (MatMulNBits pads blocks and zero-point rows) where ONNX can store the scheme
 * at the opset the model's output can have; bits are 8 per stored byte.
 */
function onnxCost(native: boolean) {
  return (s: Scheme, w: TargetWeight, model: LoadedModel): { bytes: number; bits: number } | undefined => {
    if (!representable(s, w.layout)) return undefined;
    const a = onnxAssignment(schemeOnTensor(s, w.layout), w.layout, w.consumer, model.onnx.opset, native);
    if (!a) return undefined;
    const bytes = onnxStorage(a, w.layout);
    return { bytes, bits: 8 * bytes };
  };
}

/** GPTQ codes and searched ranges cannot be recomputed by the ONNX exporter's min-max quantizer. */
const onnxNeedsCodes = (s: Scheme): boolean => s.algorithm === 'gptq' || hasScaleSearch(s);
const noCodes = (): boolean => false;
const anyTask = (): void => {};

const ONNX: OutputTarget = {
  name: 'onnx',
  note: "onnxruntime's quantized operators (MatMulNBits, DequantizeLinear) or bit-plane packed weights, sizes are the file's bytes",
  biasCorrection: true,
  // every simulated format (packed where no native operator takes it) and the native int4 g128 ones
  candidates: () => union(simulatedCandidates(), nativeCandidates()),
  accept: anyTask,
  cost: onnxCost(false),
  needsCodes: onnxNeedsCodes,
  write: writeOnnxOutput,
  verify: { run: (file, input, simulated) => runOnnxOutput(file, input.task, simulated) },
};

export const TARGETS: Readonly<Record<TargetName, OutputTarget>> = {
  onnx: ONNX,
  'onnx-native': {
    ...ONNX,
    name: 'onnx-native',
    candidates: nativeCandidates,
    cost: onnxCost(true),
  },
  gguf: {
    name: 'gguf',
    note: "ggml block types (llama.cpp's quantizers with the calibration importance matrix)",
    biasCorrection: false,
    candidates: ggmlCandidates,
    accept(task, schemes) {
      if (task.name !== 'gpt')
        throw new MixqError(
          `GGUF output is built for the bundled GPT (llama.cpp gpt2); ${task.name} is not one`,
          { source: '--emit', expected: "onnx, safetensors or none (GGUF inputs: 'mixq requantize')" },
        );
      if (schemes.some((c) => c.blockType === undefined))
        throw new MixqError('GGUF output stores ggml block types only', {
          source: '--candidates',
          expected: 'ggml-* candidate ids with --emit gguf',
        });
    },
    cost: elementCost,
    needsCodes: noCodes,
    write: writeGgufOutput,
    verify: { readBack: readBackGguf },
  },
  safetensors: {
    name: 'safetensors',
    note: 'every RTN element format, stored packed with a mixq quantization_config',
    biasCorrection: false,
    candidates: defaultCandidates,
    accept(_task, schemes) {
      if (schemes.some((c) => c.algorithm !== 'rtn' || c.blockType !== undefined || c.outliers !== undefined))
        throw new MixqError('safetensors output stores RTN element formats only', {
          source: '--candidates',
          expected: 'RTN candidates (no gptq / awq / ggml ids) with --emit safetensors',
        });
    },
    cost: elementCost,
    needsCodes: noCodes,
    write: writeSafetensorsOutput,
    verify: { readBack: readBackSafetensors },
  },
  runtime: {
    name: 'runtime',
    note: "mixq's engine (mixq run): every RTN element format its kernels run, weights at their stored size in memory",
    biasCorrection: false,
    candidates: runtimeCandidates,
    accept(task, schemes) {
      if (task.name !== 'gpt')
        throw new MixqError(`mixq's engine runs decoder-only language models; ${task.name} is not one`, {
          source: '--emit',
          expected: "onnx, safetensors or none (the bundled gpt for --emit runtime; GGUF models: 'mixq run')",
        });
      if (schemes.some((c) => c.algorithm !== 'rtn' || c.blockType !== undefined || c.outliers !== undefined))
        throw new MixqError('engine files store RTN element formats', {
          source: '--candidates',
          expected: 'RTN candidates (no gptq / awq / ggml ids) with --emit runtime',
        });
    },
    cost: (s, w) => (engineCostFormat(s, w.layout.cols) ? elementCost(s, w) : undefined),
    needsCodes: noCodes,
    costFormat: engineCostFormat,
    write: writeRuntimeOutput,
    verify: { readBack: readBackRuntime, run: runRuntimeOutput },
  },
  none: {
    name: 'none',
    note: 'every RTN element format and GPTQ at 2-4 bits, simulated only',
    biasCorrection: true,
    candidates: simulatedCandidates,
    accept: anyTask,
    cost: elementCost,
    needsCodes: noCodes,
  },
};

/**
 * The candidates of the runtime target: the default element formats and the others the kernels run fast
 * (int4 in groups of 128, int6 / int5 in groups of 32, MXFP6, NVFP4-style fp4 with an fp16 scale per 32).
 */
function runtimeCandidates(): Scheme[] {
  return union(defaultCandidates(), [
    intScheme(4, 128),
    intScheme(6, 32),
    MXFP6_RTN,
    floatScheme('fp4_e2m1fn', 32, 'fp16'),
  ]);
}

/**
 * What mixq's engine runs for a row-frame scheme: its element, scales along K and scale storage; undefined
 * where the kernels cannot (ggml blocks are not stored in engine files; groups other than 16 or a multiple
 * of 32; per-block 2-D scales; double-quantized scales) on rows of `cols` weights.
 */
export function engineCostFormat(s: Scheme, cols: number): CostFormat | undefined {
  if (s.blockType !== undefined || s.outliers !== undefined) return undefined;
  const g = s.granularity;
  let groups: number | 'row';
  if (g.kind === 'axis' && g.axis === 0) groups = 'row';
  else if (g.kind === 'group' && g.axis === 1) {
    groups = g.size >= cols ? 'row' : g.size;
    if (groups !== 'row' && groups !== 16 && groups % 32 !== 0) return undefined;
  } else return undefined;
  const sf = s.scaleFormat;
  if (typeof sf === 'object') return undefined;
  return { element: s.format, groups, scaleFormat: sf, symmetric: s.symmetric };
}

/** The named schemes the uniform baselines use (labels as the report prints them). */
export const UNIFORM_BASELINES: readonly { readonly label: string; readonly scheme: Scheme }[] = [
  { label: 'INT8 per-channel', scheme: intScheme(8, 'pc') },
  { label: 'FP8 E4M3', scheme: floatScheme('fp8_e4m3fn', 'pc', 'fp32') },
  { label: 'INT4 RTN g128', scheme: intScheme(4, 128) },
  { label: 'INT4 GPTQ g128', scheme: intScheme(4, 128, 'gptq') },
  { label: 'INT4 RTN g32', scheme: intScheme(4, 32) },
  { label: 'INT4 GPTQ g32', scheme: intScheme(4, 32, 'gptq') },
  { label: 'NVFP4', scheme: NVFP4_RTN },
  { label: 'MXFP4', scheme: MXFP4_RTN },
];

/**
 * A default assignment: every quantizable weight of the main graph gets one scheme at one bit width,
 * everything else (norms, biases, 1-D tensors, scalars, and by default the layer that produces a graph
 * output, i.e. the logits) stays in float. Mixed precision = edit the returned record per weight.
 */
import { DATA_TYPE_CODES as C } from '../schema.ts';
import type { OnnxModel } from '../read.ts';
import { listWeights } from '../weights.ts';
import { intAttr } from './build.ts';
import type { WeightAssignment, WeightAssignments } from './quantize.ts';

export interface AutoAssignOptions {
  readonly bits: 2 | 4 | 8;
  /** Default 32. */
  readonly blockSize?: number;
  readonly symmetric?: boolean;
  readonly scaleType?: 'float32' | 'float16';
  /** MatMul weights: default 'matmulnbits'. */
  readonly matmul?: 'matmulnbits' | 'dequantizelinear' | 'keep';
  /** Gather tables (embeddings): default 'gatherblockquantized'. */
  readonly gather?: 'gatherblockquantized' | 'dequantizelinear' | 'keep';
  /** Gemm and Conv weights: default 'dequantizelinear' (Conv per output channel). */
  readonly gemm?: 'dequantizelinear' | 'keep';
  readonly conv?: 'dequantizelinear' | 'keep';
  /** Keep weights of nodes whose output is a graph output (the logits). Default true. */
  readonly keepOutputLayer?: boolean;
  /** Weights with fewer elements stay float (default 256). */
  readonly minElements?: number;
}

/**
 * Assignments for every quantizable weight: MatMul B [K, N], Gemm B, Conv W, Gather table [V, D].
 * Weights with mixed uses, or a configuration their operator cannot take (2-bit outside MatMulNBits,
 * odd row lengths for 4-bit GatherBlockQuantized), are left out, i.e. kept in float.
 */
export function autoAssignments(model: OnnxModel, opts: AutoAssignOptions): Record<string, WeightAssignment> {
  const graph = model.proto.graph;
  const out: Record<string, WeightAssignment> = {};
  if (!graph) return out;
  const outputs = new Set(graph.output.map((o) => o.name));
  const uses = new Map<string, { op: string; index: number; toOutput: boolean; axis: number }[]>();
  for (const n of graph.node)
    n.input.forEach((name, index) => {
      const list = uses.get(name) ?? [];
      list.push({
        op: n.op_type,
        index,
        toOutput: n.output.some((o) => outputs.has(o)),
        axis: intAttr(n, 'axis', 0),
      });
      uses.set(name, list);
    });
  const base = {
    bits: opts.bits,
    blockSize: opts.blockSize ?? 32,
    symmetric: opts.symmetric ?? true,
    scaleType: opts.scaleType ?? 'float32',
  } as const;
  for (const w of listWeights(model)) {
    if (w.path !== 'graph' || (w.kind !== 'initializer' && w.kind !== 'constant')) continue;
    if (w.dataType !== C.FLOAT || w.dims.length < 2 || w.elementCount < (opts.minElements ?? 256)) continue;
    const u = uses.get(w.name) ?? [];
    const kinds = new Set(u.map((x) => `${x.op}#${x.index}`));
    if (u.length === 0 || kinds.size !== 1) continue;
    if ((opts.keepOutputLayer ?? true) && u.some((x) => x.toOutput)) continue;
    const first = u[0]!;
    let scheme: WeightAssignment['scheme'] = 'keep';
    if (first.op === 'MatMul' && first.index === 1 && w.dims.length === 2)
      scheme = opts.matmul ?? 'matmulnbits';
    else if (first.op === 'Gemm' && first.index === 1) scheme = opts.gemm ?? 'dequantizelinear';
    else if (first.op === 'Conv' && first.index === 1) scheme = opts.conv ?? 'dequantizelinear';
    else if (
      first.op === 'Gather' &&
      first.index === 0 &&
      w.dims.length === 2 &&
      u.every((x) => x.axis === 0)
    )
      scheme = opts.gather ?? 'gatherblockquantized';
    if (scheme === 'keep') continue;
    if (opts.bits === 2 && scheme !== 'matmulnbits') continue;
    if (scheme === 'gatherblockquantized' && ((w.dims[1] ?? 0) * opts.bits) % 8 !== 0) continue;
    out[w.name] = { scheme, ...base };
  }
  return out;
}

export type { WeightAssignments };

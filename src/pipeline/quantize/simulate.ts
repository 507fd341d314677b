/**
 * A weight under a scheme, as every evaluation and every writer sees it: the simulated (dequantized)
 * values in the tensor's own layout, and the codes where a writer needs them (GPTQ's, or those of a
 * searched range, which an exporter's min-max quantizer would not reproduce).
 */
import type { LayerStats } from '../../analysis/sensitivity/proxies.ts';
import { fallbackScheme, gptqScheme, quantizeScheme } from '../../analysis/sensitivity/apply-scheme.ts';
import { prequantizedBlocks, rtnWithBlocks } from '../../export/onnx/assign.ts';
import type { PrequantizedBlocks } from '../../export/onnx/quantize.ts';
import { fromRows, type RowLayout, toRows } from '../../quant/layout.ts';
import type { MatrixEngine } from '../../quant/matrix/engine.ts';
import { quantizerOf, type Scheme } from '../../quant/scheme.ts';

export interface Simulated {
  /** The dequantized weight, tensor layout. */
  readonly Q: Float32Array;
  readonly codes?: PrequantizedBlocks;
}

/**
 * `W` (tensor layout) under the row-frame scheme `s`. A scheme that needs statistics the weight lacks
 * (GPTQ / AWQ without X^T X) falls back to RTN of the same quantizer. With `codes`, GPTQ's codes and those
 * of searched ranges are kept. GPTQ / AWQ run on `engine` (default one thread; a matrix pool gives the
 * same bytes on any number of threads).
 */
export function simulateWeight(
  W: Float32Array,
  L: RowLayout,
  s: Scheme,
  stats: LayerStats | undefined,
  codes: boolean,
  engine?: MatrixEngine,
): Simulated {
  const Wr = toRows(W, L);
  const cc = fallbackScheme(s, L, stats);
  if (cc.algorithm === 'gptq' && stats) {
    const g = gptqScheme(Wr, L, cc, stats, engine);
    return {
      Q: fromRows(g.Q, L),
      ...(codes && !g.perm ? { codes: prequantizedBlocks(g, quantizerOf(cc)) } : {}),
    };
  }
  if (
    codes &&
    cc.blockType === undefined &&
    cc.outliers === undefined &&
    cc.scaleRule &&
    cc.scaleRule.kind !== 'minmax'
  ) {
    const r = rtnWithBlocks(Wr, L, cc);
    return { Q: fromRows(r.Q, L), codes: r.blocks };
  }
  return { Q: fromRows(quantizeScheme(Wr, L, cc, stats, engine), L) };
}

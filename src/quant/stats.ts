/**
 * Calibration statistics of a linear layer's input, accumulated batch by batch so that activations never
 * have to be held at once: X^T X (for GPTQ's H = 2/n X^T X, AWQ/clip output errors), and per input
 * channel absmax (SmoothQuant, LLM.int8 thresholds), mean |x| (AWQ) and mean x^2 (the imatrix).
 */
import { MixqError } from '../core/errors.ts';
import { inlineEngine, type MatrixEngine } from './matrix/engine.ts';
import { gramF32 } from './matrix/gram.ts';

export interface CalibrationStats {
  readonly cols: number;
  /** Number of rows (tokens) seen. */
  n: number;
  /** Sum over tokens of x x^T, [cols, cols]. */
  readonly xtx: Float64Array;
  readonly absMax: Float64Array;
  readonly sumAbs: Float64Array;
  readonly sumSq: Float64Array;
}

/** Empty statistics for a layer with `cols` inputs. */
export function createCalibrationStats(cols: number): CalibrationStats {
  return {
    cols,
    n: 0,
    xtx: new Float64Array(cols * cols),
    absMax: new Float64Array(cols),
    sumAbs: new Float64Array(cols),
    sumSq: new Float64Array(cols),
  };
}

/**
 * Adds a batch X [n, cols] (row-major) to the statistics. X^T X is computed on the matrix engine (float32
 * products of up to 512 rows, summed in float64).
 */
export function addCalibrationBatch(
  st: CalibrationStats,
  X: Float32Array,
  n: number,
  engine: MatrixEngine = inlineEngine(),
): void {
  const c = st.cols;
  if (X.length !== n * c)
    throw new MixqError('batch has the wrong length', { field: 'X', expected: `${n}x${c}` });
  if (n === 0) return;
  gramF32(engine, X, n, c, 1, st.xtx);
  for (let t = 0; t < n; t++)
    for (let j = 0; j < c; j++) {
      const v = X[t * c + j]!;
      const a = Math.abs(v);
      if (a > st.absMax[j]!) st.absMax[j] = a;
      st.sumAbs[j]! += a;
      st.sumSq[j]! += v * v;
    }
  st.n += n;
}

/** Derived per-channel vectors (float32) and the GPTQ Hessian 2/n X^T X. */
export function summarizeStats(st: CalibrationStats): {
  absMax: Float32Array;
  meanAbs: Float32Array;
  meanSquare: Float32Array;
  hessian: Float64Array;
} {
  if (st.n === 0) throw new MixqError('no calibration data was added', { field: 'n', expected: '> 0' });
  const n = st.n;
  return {
    absMax: Float32Array.from(st.absMax),
    meanAbs: Float32Array.from(st.sumAbs, (v) => v / n),
    meanSquare: Float32Array.from(st.sumSq, (v) => v / n),
    hessian: Float64Array.from(st.xtx, (v) => (2 / n) * v),
  };
}

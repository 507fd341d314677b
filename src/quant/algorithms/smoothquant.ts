/**
 * SmoothQuant (Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large
 * Language Models", 2023): for weight+activation quantization, migrate activation outliers into the
 * weights with a per-input-channel factor
 *     s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha),     X' = X diag(s)^-1,  W' = W diag(s),
 * which leaves X W^T unchanged. 1/s is folded into the previous op (LayerNorm gain / previous linear).
 * `simulateLinearWA` runs the quantized linear layer (fake-quant activations and weights) for evaluation;
 * its product runs on the matrix engine in float64 (fake-quantized operands have few significant bits, so
 * the products are exact and the sums as close to exact as the reference loop's).
 */
import { MixqError } from '../../core/errors.ts';
import { inlineEngine, type MatrixEngine, scoped } from '../matrix/engine.ts';
import { gemm } from '../matrix/gemm.ts';
import { GEMM } from '../matrix/kernels.ts';
import type { QuantizerConfig } from '../qparams.ts';
import { fakeQuant } from '../quantizer.ts';

export interface SmoothQuantConfig {
  /** Migration strength in [0, 1]. Default 0.5. */
  readonly alpha?: number;
}

/** Per-input-channel smoothing factors s from activation absmax and the weight [rows, cols]. */
export function smoothQuantScales(
  actAbsMax: Float32Array,
  W: Float32Array,
  rows: number,
  cols: number,
  cfg: SmoothQuantConfig = {},
): Float32Array {
  const alpha = cfg.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1))
    throw new MixqError('alpha out of range', { field: 'alpha', expected: '0..1' });
  if (actAbsMax.length !== cols || W.length !== rows * cols)
    throw new MixqError('statistics do not match the weight', {
      field: 'actAbsMax',
      expected: `${cols} channels`,
    });
  const s = new Float32Array(cols);
  for (let j = 0; j < cols; j++) {
    let wmax = 0;
    for (let r = 0; r < rows; r++) wmax = Math.max(wmax, Math.abs(W[r * cols + j]!));
    const a = Math.max(actAbsMax[j]!, 1e-5);
    const w = Math.max(wmax, 1e-5);
    s[j] = Math.max(a ** alpha / w ** (1 - alpha), 1e-5);
  }
  return s;
}

/** W diag(s) (new array). */
export function scaleWeightColumns(
  W: Float32Array,
  rows: number,
  cols: number,
  s: Float32Array,
): Float32Array {
  const out = new Float32Array(W.length);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) out[r * cols + j] = W[r * cols + j]! * s[j]!;
  return out;
}

/** X diag(s)^-1 (new array), X [n, cols]. */
export function unscaleActivations(X: Float32Array, n: number, cols: number, s: Float32Array): Float32Array {
  const out = new Float32Array(X.length);
  for (let t = 0; t < n; t++) for (let j = 0; j < cols; j++) out[t * cols + j] = X[t * cols + j]! / s[j]!;
  return out;
}

export interface LinearWAConfig {
  /** Weight quantizer on [rows, cols] (e.g. int8 per output row). */
  readonly weight: QuantizerConfig;
  /** Activation quantizer on [n, cols] (e.g. int8 per tensor or per token = axis 0). */
  readonly activation: QuantizerConfig;
  /** Smoothing factors (from smoothQuantScales); none = plain W8A8. */
  readonly smoothing?: Float32Array;
  /** Where the product runs (default: the one-thread inline engine). */
  readonly engine?: MatrixEngine;
}

/** Y = fq(X') fq(W')^T [n, rows] for a linear layer with quantized weights and activations. */
export function simulateLinearWA(
  X: Float32Array,
  n: number,
  W: Float32Array,
  rows: number,
  cols: number,
  cfg: LinearWAConfig,
): Float32Array {
  const Xs = cfg.smoothing ? unscaleActivations(X, n, cols, cfg.smoothing) : X;
  const Ws = cfg.smoothing ? scaleWeightColumns(W, rows, cols, cfg.smoothing) : W;
  const Xq = fakeQuant(Xs, [n, cols], cfg.activation);
  const Wq = fakeQuant(Ws, [rows, cols], cfg.weight);
  const engine = cfg.engine ?? inlineEngine();
  return scoped(engine, () => {
    const arena = engine.arena;
    const A = arena.put(new Float64Array(Xq));
    const B = arena.put(new Float64Array(Wq));
    const C = arena.alloc(n * rows * 8);
    gemm(
      engine,
      { flags: GEMM.TB, M: n, N: rows, K: cols, A, lda: cols, B, ldb: cols, C, ldc: rows, f64: true },
      { axis: 'rows', chunk: 64 },
    );
    return new Float32Array(arena.f64(C, n * rows));
  });
}

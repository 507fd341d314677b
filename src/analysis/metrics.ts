/**
 * Error metrics between a reference and its quantized version: element-wise (MSE, SQNR, cosine, max abs),
 * layer-level (relative Frobenius error of the layer output X W^T) and output-level (KL divergence between
 * softmax distributions, top-1 agreement) for end-to-end comparisons. All sums in float64.
 */
import { MixqError } from '../core/errors.ts';

type Arr = Float32Array | Float64Array;

function sameLength(a: Arr, b: Arr): void {
  if (a.length !== b.length)
    throw new MixqError(`length mismatch ${a.length} vs ${b.length}`, {
      field: 'b',
      expected: String(a.length),
    });
}

/** Mean squared error. `mse([1,2],[1,3]) = 0.5`. */
export function mse(ref: Arr, test: Arr): number {
  sameLength(ref, test);
  let s = 0;
  for (let i = 0; i < ref.length; i++) s += (ref[i]! - test[i]!) ** 2;
  return ref.length === 0 ? 0 : s / ref.length;
}

/** Signal-to-quantization-noise ratio 10 log10(sum ref^2 / sum (ref - test)^2) in dB (Infinity if exact). */
export function sqnrDb(ref: Arr, test: Arr): number {
  sameLength(ref, test);
  let sig = 0;
  let noise = 0;
  for (let i = 0; i < ref.length; i++) {
    sig += ref[i]! ** 2;
    noise += (ref[i]! - test[i]!) ** 2;
  }
  if (noise === 0) return Infinity;
  return 10 * Math.log10(sig / noise);
}

/** Cosine similarity (1 for two zero vectors, 0 if only one is zero). */
export function cosineSimilarity(a: Arr, b: Arr): number {
  sameLength(a, b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  if (aa === 0 && bb === 0) return 1;
  if (aa === 0 || bb === 0) return 0;
  return ab / Math.sqrt(aa * bb);
}

/** max |ref - test|. */
export function maxAbsError(ref: Arr, test: Arr): number {
  sameLength(ref, test);
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]! - test[i]!));
  return m;
}

/** Y = X W^T for X [n, cols], W [rows, cols] (float64 result [n, rows]). */
export function linearOutput(X: Arr, n: number, W: Arr, rows: number, cols: number): Float64Array {
  if (X.length !== n * cols || W.length !== rows * cols)
    throw new MixqError('shapes do not match', {
      field: 'X/W',
      expected: `[${n},${cols}] and [${rows},${cols}]`,
    });
  const Y = new Float64Array(n * rows);
  for (let t = 0; t < n; t++)
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      const xb = t * cols;
      const wb = r * cols;
      for (let j = 0; j < cols; j++) acc += X[xb + j]! * W[wb + j]!;
      Y[t * rows + r] = acc;
    }
  return Y;
}

/** ||X W^T - X Q^T||_F^2 (the GPTQ layer error), computed as X (W - Q)^T in float64. */
export function outputErrorFro2(X: Arr, n: number, W: Arr, Q: Arr, rows: number, cols: number): number {
  sameLength(W, Q);
  const D = new Float64Array(W.length);
  for (let i = 0; i < D.length; i++) D[i] = W[i]! - Q[i]!;
  const E = linearOutput(X, n, D, rows, cols);
  let s = 0;
  for (const v of E) s += v * v;
  return s;
}

/** Relative Frobenius error of the layer output ||X W^T - X Q^T|| / ||X W^T||. */
export function relativeOutputError(X: Arr, n: number, W: Arr, Q: Arr, rows: number, cols: number): number {
  const Y = linearOutput(X, n, W, rows, cols);
  let ref = 0;
  for (const v of Y) ref += v * v;
  const err = outputErrorFro2(X, n, W, Q, rows, cols);
  return ref === 0 ? (err === 0 ? 0 : Infinity) : Math.sqrt(err / ref);
}

function logSoftmaxRow(x: Arr, off: number, len: number, out: Float64Array): void {
  let m = -Infinity;
  for (let j = 0; j < len; j++) m = Math.max(m, x[off + j]!);
  let s = 0;
  for (let j = 0; j < len; j++) s += Math.exp(x[off + j]! - m);
  const lse = m + Math.log(s);
  for (let j = 0; j < len; j++) out[j] = x[off + j]! - lse;
}

/**
 * Mean over rows of KL(softmax(p_row) || softmax(q_row)) in nats, for logits [rows, cols].
 * `p` is the reference (full-precision) model's logits.
 */
export function klDivergenceSoftmax(p: Arr, q: Arr, rows: number, cols: number): number {
  sameLength(p, q);
  if (p.length !== rows * cols)
    throw new MixqError('logits shape', { field: 'rows*cols', expected: String(p.length) });
  const lp = new Float64Array(cols);
  const lq = new Float64Array(cols);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    logSoftmaxRow(p, r * cols, cols, lp);
    logSoftmaxRow(q, r * cols, cols, lq);
    let kl = 0;
    for (let j = 0; j < cols; j++) kl += Math.exp(lp[j]!) * (lp[j]! - lq[j]!);
    total += Math.max(0, kl);
  }
  return rows === 0 ? 0 : total / rows;
}

/** Fraction of rows whose argmax agrees (first index wins ties). */
export function top1Agreement(p: Arr, q: Arr, rows: number, cols: number): number {
  sameLength(p, q);
  let agree = 0;
  for (let r = 0; r < rows; r++) {
    let ip = 0;
    let iq = 0;
    for (let j = 1; j < cols; j++) {
      if (p[r * cols + j]! > p[r * cols + ip]!) ip = j;
      if (q[r * cols + j]! > q[r * cols + iq]!) iq = j;
    }
    if (ip === iq) agree++;
  }
  return rows === 0 ? 1 : agree / rows;
}

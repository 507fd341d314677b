/**
 * The plain references every kernel is tested against: a weight's rows decoded to their exact values (each
 * layout has its own decoder beside its repacking code: dense.ts, sliced.ts, ggml.ts, lut.ts), then dot
 * products summed in float64, with the sum of |w x| each error budget is relative to (budget.ts).
 */

/** Writes the decoded values of row r (float32 values, padding included) into out[0 .. kp). */
export type RowDecoder = (r: number, out: Float64Array) => void;

export interface ReferenceProduct {
  /** y[j * rows + r] = sum_k w[r][k] x_j[k], float64. */
  readonly y: Float64Array;
  /** sum_k |w[r][k] x_j[k]|: the scale of rounding errors. */
  readonly mag: Float64Array;
}

/**
 * Y = X W^T for `batch` activation rows of kp values (X row-major [batch][kp], as float64 or float32).
 * `rows` output rows; the decoder gives each weight row once.
 */
export function referenceProduct(
  decode: RowDecoder,
  rows: number,
  kp: number,
  x: ArrayLike<number>,
  batch = 1,
): ReferenceProduct {
  const y = new Float64Array(batch * rows);
  const mag = new Float64Array(batch * rows);
  const w = new Float64Array(kp);
  for (let r = 0; r < rows; r++) {
    decode(r, w);
    for (let j = 0; j < batch; j++) {
      let s = 0;
      let m = 0;
      const o = j * kp;
      for (let k = 0; k < kp; k++) {
        const p = w[k]! * x[o + k]!;
        s += p;
        m += Math.abs(p);
      }
      y[j * rows + r] = s;
      mag[j * rows + r] = m;
    }
  }
  return { y, mag };
}

/** Sum of |w| over each 32-block of each row: the int8 path's activation error scale (budget.ts). */
export function rowBlockAbs(decode: RowDecoder, rows: number, kp: number): Float64Array {
  const out = new Float64Array(rows * (kp / 32));
  const w = new Float64Array(kp);
  for (let r = 0; r < rows; r++) {
    decode(r, w);
    for (let k = 0; k < kp; k++) out[r * (kp / 32) + (k >> 5)]! += Math.abs(w[k]!);
  }
  return out;
}

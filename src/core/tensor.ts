/** A dense row-major float32 tensor: the unit the quantizers and analysis work on. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Number of elements of a shape (1 for a scalar shape []). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Creates a tensor, checking that the data length matches the shape. */
export function tensor(shape: readonly number[], data?: Float32Array): Tensor {
  const n = numel(shape);
  const d = data ?? new Float32Array(n);
  if (d.length !== n) throw new RangeError(`tensor: data length ${d.length} does not match shape [${shape}]`);
  return { shape: [...shape], data: d };
}

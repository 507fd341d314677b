/**
 * Elementwise steps of a transformer in WebAssembly (native/kernels/attention.h, which holds the float64
 * exp they share with attention's softmax): SwiGLU, and the exp itself (for its test). Arrays are copied
 * into kernel memory through one buffer of the context (`buffer`) and the result copied out.
 */
import type { KernelContext } from './context.ts';

/**
 * SwiGLU in the kernels: out[i] = f32(f32(g / (1 + e^-g)) * up[i]), g = gate[i] — src/engine/ops.ts
 * `swiglu` bit for bit except where the kernel's exp and Math.exp round to different float32 quotients
 * (none in the test's million inputs). `out` may be `gate`.
 */
export function kernelSwiglu(
  ctx: KernelContext,
  gate: Float32Array,
  up: Float32Array,
  out: Float32Array,
): void {
  const n = out.length;
  const p = ctx.buffer('elementwise', 8 * n);
  const mem = ctx.memory;
  mem.f32(p, n).set(gate.subarray(0, n));
  mem.f32(p + 4 * n, n).set(up.subarray(0, n));
  (ctx.exports.swiglu_f32 as (g: number, u: number, o: number, n: number) => void)(p, p + 4 * n, p, n);
  out.set(mem.f32(p, n));
}

/** f32(exp(x)) of each value by the kernels' exp (the softmax's; its test ties it to Math.exp). */
export function kernelExp(ctx: KernelContext, x: Float32Array): Float32Array {
  const n = x.length;
  const p = ctx.buffer('elementwise', 8 * n);
  const mem = ctx.memory;
  mem.f32(p, n).set(x);
  (ctx.exports.exp_f32 as (x: number, n: number, out: number) => void)(p, n, p + 4 * n);
  return mem.f32(p + 4 * n, n).slice();
}

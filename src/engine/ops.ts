/**
 * The non-matrix operations of a decoder-only transformer, in TypeScript on float32 arrays: RMSNorm,
 * LayerNorm, rotary position embeddings (both of llama.cpp's pair orders), causal attention over a KV
 * cache, SiLU-gated and GELU activations. Matrix products are the kernels' (src/kernels); these are the
 * O(hidden) and O(context) steps between them, a few percent of a token's time (bench/engine.bench.ts
 * prints the split).
 *
 * Arithmetic follows ggml's CPU operators where the order of roundings is visible (read from
 * ggml/src/ggml-cpu/ops.cpp, not copied): norms sum squares in float64 and scale in float32, RoPE
 * multiplies its angle step cumulatively in float32 as ggml_rope_cache_init does, softmax sums in float64.
 * Values are float32 on every store (Float32Array); the temporaries in between are float64, so a result
 * can differ from ggml's in the last bit, never more than a float32 rounding per operation.
 */
const fround = Math.fround;

/** RMSNorm of `rows` rows of weight.length values: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array,
  eps: number,
  rows: number,
  out: Float32Array,
): void {
  const n = weight.length;
  const e = fround(eps);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let s = 0;
    for (let i = 0; i < n; i++) {
      const v = x[o + i]!;
      s += fround(v * v);
    }
    const scale = fround(1 / fround(Math.sqrt(fround(fround(s / n) + e))));
    for (let i = 0; i < n; i++) out[o + i] = fround(x[o + i]! * scale) * weight[i]!;
  }
}

/** LayerNorm of `rows` rows: (x - mean) / sqrt(var + eps) * weight + bias. */
export function layerNorm(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | undefined,
  eps: number,
  rows: number,
  out: Float32Array,
): void {
  const n = weight.length;
  const e = fround(eps);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let s = 0;
    for (let i = 0; i < n; i++) s += x[o + i]!;
    const mean = fround(s / n);
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = fround(x[o + i]! - mean);
      s2 += fround(v * v);
    }
    const scale = fround(1 / fround(Math.sqrt(fround(fround(s2 / n) + e))));
    for (let i = 0; i < n; i++) {
      const v = fround(fround(x[o + i]! - mean) * scale) * weight[i]!;
      out[o + i] = bias ? fround(v) + bias[i]! : v;
    }
  }
}

/**
 * How RoPE pairs a head's dimensions: 'norm' rotates (x0, x1), (x2, x3), ... (llama.cpp's llama graph on
 * GGUF q/k rows); 'neox' rotates (x_i, x_{i + d/2}) (transformers' rotate_half: Hugging Face llama
 * weights, and every qwen2).
 */
export type RopeMode = 'norm' | 'neox';

export interface RopeParams {
  readonly mode: RopeMode;
  /** Dimensions rotated per head (the rest pass through). */
  readonly dims: number;
  readonly theta: number;
  /** Positions are divided by this (linear scaling); 1 = none. */
  readonly linearFactor: number;
}

/**
 * cos and sin of every rotated pair at `positions` consecutive positions from `pos0`: out[p][i] for pair
 * i < dims / 2. The angle of pair i is pos * theta^(-2i / dims), built as ggml does: a float32 start at
 * the position, multiplied by a float32 step once per pair.
 */
export function ropeTables(
  p: RopeParams,
  pos0: number,
  positions: number,
): { cos: Float32Array; sin: Float32Array } {
  const half = p.dims / 2;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  const step = fround(Math.pow(p.theta, -2 / p.dims));
  const scale = fround(1 / p.linearFactor);
  for (let j = 0; j < positions; j++) {
    let t = fround(pos0 + j);
    for (let i = 0; i < half; i++) {
      const a = fround(scale * t);
      cos[j * half + i] = Math.cos(a);
      sin[j * half + i] = Math.sin(a);
      t = fround(t * step);
    }
  }
  return { cos, sin };
}

/**
 * Rotates `rows` rows of `heads` heads of `headDim` values in place; row j is at position pos0 + j (its
 * cos / sin in `tables` row j).
 */
export function applyRope(
  x: Float32Array,
  rows: number,
  heads: number,
  headDim: number,
  p: RopeParams,
  tables: { cos: Float32Array; sin: Float32Array },
): void {
  const half = p.dims / 2;
  const width = heads * headDim;
  for (let j = 0; j < rows; j++) {
    const t = j * half;
    for (let h = 0; h < heads; h++) {
      const o = j * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const a = p.mode === 'norm' ? o + 2 * i : o + i;
        const b = p.mode === 'norm' ? a + 1 : a + half;
        const c = tables.cos[t + i]!;
        const s = tables.sin[t + i]!;
        const x0 = x[a]!;
        const x1 = x[b]!;
        x[a] = fround(x0 * c) - fround(x1 * s);
        x[b] = fround(x0 * s) + fround(x1 * c);
      }
    }
  }
}

/** SwiGLU: out = silu(gate) * up, elementwise (silu(g) = g / (1 + e^-g)). */
export function swiglu(gate: Float32Array, up: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    const g = gate[i]!;
    out[i] = fround(g / (1 + Math.exp(-g))) * up[i]!;
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (GPT-2's gelu_new), in place. */
export function geluTanh(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    x[i] = 0.5 * v * (1 + Math.tanh(GELU_C * v * (1 + 0.044715 * v * v)));
  }
}

/**
 * erf(x) in float64 to ~1e-14: the Maclaurin series below |x| = 3 (terms peak near 1e3, so cancellation
 * costs at most 3 of 16 digits), 1 - erfc(x) from erfc's continued fraction (modified Lentz) above it.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  if (a < 3) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a^2) / sqrt(pi) * 1 / (a + (1/2) / (a + 1 / (a + (3/2) / (a + 2 / (a + ...)))))
  const tiny = 1e-300;
  let f = a;
  let C = a;
  let D = 0;
  for (let k = 1; k < 200; k++) {
    const an = k / 2;
    D = a + an * D;
    D = 1 / (Math.abs(D) < tiny ? tiny : D);
    C = a + an / C;
    if (Math.abs(C) < tiny) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return x > 0 ? 1 - erfc : erfc - 1;
}

/** GELU with the exact erf (PyTorch's nn.GELU(), mixq's bundled GPT), in place. */
export function geluErf(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    x[i] = 0.5 * v * (1 + erf(v * Math.SQRT1_2));
  }
}

/** Adds a bias to each of `rows` rows (in place). */
export function addBias(x: Float32Array, bias: Float32Array, rows: number): void {
  const n = bias.length;
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) x[r * n + i]! += bias[i]!;
}

/** Adds `y` to `x` elementwise (in place): residual connections. */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i]! += y[i]!;
}

/** A layer's keys and values: `capacity` positions of kvHeads x headDim float32 values each. */
export interface KvLayer {
  k: Float32Array;
  v: Float32Array;
}

/**
 * Causal multi-head attention of `rows` query rows at positions pos0 .. pos0 + rows - 1 over the cached
 * keys / values of positions 0 .. pos0 + rows - 1 (the new rows already appended). Query head h reads
 * key/value head floor(h / (heads / kvHeads)) (GQA, as ggml broadcasts and transformers' repeat_kv).
 * Scores are q.k / sqrt(headDim); softmax subtracts the row maximum and sums in float64.
 */
export function attention(
  q: Float32Array,
  kv: KvLayer,
  rows: number,
  pos0: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  out: Float32Array,
  scores: Float64Array,
): void {
  const rep = heads / kvHeads;
  const kvWidth = kvHeads * headDim;
  const qWidth = heads * headDim;
  const scale = fround(1 / Math.sqrt(headDim));
  const K = kv.k;
  const V = kv.v;
  const acc = new Float64Array(headDim);
  for (let r = 0; r < rows; r++) {
    const n = pos0 + r + 1; // keys visible to this row
    for (let h = 0; h < heads; h++) {
      const qo = r * qWidth + h * headDim;
      const go = Math.floor(h / rep) * headDim;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        const ko = j * kvWidth + go;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qo + d]! * K[ko + d]!;
        const v = fround(fround(s) * scale);
        scores[j] = v;
        if (v > max) max = v;
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const e = fround(Math.exp(scores[j]! - max));
        scores[j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      acc.fill(0);
      for (let j = 0; j < n; j++) {
        const w = fround(scores[j]! * inv);
        const vo = j * kvWidth + go;
        for (let d = 0; d < headDim; d++) acc[d]! += w * V[vo + d]!;
      }
      for (let d = 0; d < headDim; d++) out[qo + d] = acc[d]!;
    }
  }
}

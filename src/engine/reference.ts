/**
 * The plain reference of the engine's forward pass: float64 throughout, every position recomputed from
 * scratch (no KV cache), weights given as exact values, textbook formulas (RoPE angles pos * theta^(-2i/d)
 * computed directly, softmax and norms in float64). It shares no arithmetic with ops.ts or the kernels,
 * so tests can hold the engine to it (test/engine/): what the engine adds is float32 storage of
 * activations and the kernels' product roundings (or, in the int8 activation mode, their activation
 * quantization). Slow on purpose; for small models.
 */
import type { LlmConfig } from '../io/llm/config.ts';
import { erf, type RopeMode } from './ops.ts';

/** Exact weight values by GGUF name, row-major ([rows, cols] for matrices). */
export type ReferenceWeights = (ggufName: string) => ArrayLike<number>;

/**
 * Logits of every position of `tokens` (tokens.length x vocab, float64).
 * @example referenceForward(config, 'norm', (n) => decoded.get(n)!, [1, 403, 407])
 */
export function referenceForward(
  c: LlmConfig,
  ropeMode: RopeMode | undefined,
  weights: ReferenceWeights,
  tokens: ArrayLike<number>,
  /** Sees each product's input rows by weight name (tests compute importance matrices with it). */
  onLinear?: (name: string, x: readonly Float64Array[]) => void,
): Float64Array {
  const T = tokens.length;
  const H = c.hiddenSize;
  const hd = c.headDim;
  const nh = c.numHeads;
  const nkv = c.numKvHeads;
  const has = (n: string) => {
    try {
      weights(n);
      return true;
    } catch {
      return false;
    }
  };
  const vecOrZero = (n: string, len: number): ArrayLike<number> =>
    has(n) ? weights(n) : new Float64Array(len);
  // y[t][r] = sum_k W[r][k] x[t][k] (+ b[r])
  const linear = (
    x: Float64Array[],
    name: string,
    rows: number,
    bias: string | undefined,
  ): Float64Array[] => {
    onLinear?.(name, x);
    const W = weights(name);
    const cols = x[0]!.length;
    const b = bias !== undefined && has(bias) ? weights(bias) : undefined;
    return x.map((v) => {
      const y = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let k = 0; k < cols; k++) s += W[r * cols + k]! * v[k]!;
        y[r] = s + (b ? b[r]! : 0);
      }
      return y;
    });
  };
  const norm = (x: Float64Array[], prefix: string): Float64Array[] => {
    const w = weights(`${prefix}.weight`);
    const b = c.norm === 'layer' ? vecOrZero(`${prefix}.bias`, H) : undefined;
    return x.map((v) => {
      const y = new Float64Array(H);
      if (c.norm === 'rms') {
        let ss = 0;
        for (const a of v) ss += a * a;
        const s = 1 / Math.sqrt(ss / H + c.normEps);
        for (let i = 0; i < H; i++) y[i] = v[i]! * s * w[i]!;
      } else {
        let m = 0;
        for (const a of v) m += a;
        m /= H;
        let vv = 0;
        for (const a of v) vv += (a - m) * (a - m);
        const s = 1 / Math.sqrt(vv / H + c.normEps);
        for (let i = 0; i < H; i++) y[i] = (v[i]! - m) * s * w[i]! + b![i]!;
      }
      return y;
    });
  };
  const rope = (v: Float64Array, heads: number, pos: number) => {
    const d = c.ropeDim ?? hd;
    const p = pos / (c.ropeLinearFactor ?? 1);
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < d / 2; i++) {
        const a = p * Math.pow(c.ropeTheta ?? 10000, (-2 * i) / d);
        const [i0, i1] =
          ropeMode === 'neox' ? [h * hd + i, h * hd + i + d / 2] : [h * hd + 2 * i, h * hd + 2 * i + 1];
        const x0 = v[i0]!;
        const x1 = v[i1]!;
        v[i0] = x0 * Math.cos(a) - x1 * Math.sin(a);
        v[i1] = x0 * Math.sin(a) + x1 * Math.cos(a);
      }
  };

  const emb = weights('token_embd.weight');
  const pos = c.positions === 'learned' ? weights('position_embd.weight') : undefined;
  let x: Float64Array[] = Array.from(tokens, (id, t) => {
    const v = new Float64Array(H);
    for (let i = 0; i < H; i++) v[i] = emb[id * H + i]! + (pos ? pos[t * H + i]! : 0);
    return v;
  });
  const qW = nh * hd;
  const kvW = nkv * hd;
  for (let l = 0; l < c.numLayers; l++) {
    const b = `blk.${l}.`;
    const h = norm(x, `${b}attn_norm`);
    let q: Float64Array[];
    let k: Float64Array[];
    let v: Float64Array[];
    if (c.family === 'gpt2') {
      const qkv = linear(h, `${b}attn_qkv.weight`, qW + 2 * kvW, `${b}attn_qkv.bias`);
      q = qkv.map((r) => r.slice(0, qW));
      k = qkv.map((r) => r.slice(qW, qW + kvW));
      v = qkv.map((r) => r.slice(qW + kvW));
    } else {
      q = linear(h, `${b}attn_q.weight`, qW, `${b}attn_q.bias`);
      k = linear(h, `${b}attn_k.weight`, kvW, `${b}attn_k.bias`);
      v = linear(h, `${b}attn_v.weight`, kvW, `${b}attn_v.bias`);
      q.forEach((r, t) => rope(r, nh, t));
      k.forEach((r, t) => rope(r, nkv, t));
    }
    const att = causalAttention(q, k, v, nh, nkv, hd);
    const o = linear(att, `${b}attn_output.weight`, H, `${b}attn_output.bias`);
    x = x.map((r, t) => r.map((a, i) => a + o[t]![i]!));
    const h2 = norm(x, `${b}ffn_norm`);
    const F = c.intermediateSize;
    let a: Float64Array[];
    if (c.family === 'llama') {
      const g = linear(h2, `${b}ffn_gate.weight`, F, `${b}ffn_gate.bias`);
      const u = linear(h2, `${b}ffn_up.weight`, F, `${b}ffn_up.bias`);
      a = g.map((gr, t) => gr.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[t]![i]!));
    } else {
      const u = linear(h2, `${b}ffn_up.weight`, F, `${b}ffn_up.bias`);
      const C = Math.sqrt(2 / Math.PI);
      a =
        c.activation === 'gelu-erf'
          ? u.map((r) => r.map((z) => 0.5 * z * (1 + erf(z / Math.SQRT2))))
          : u.map((r) => r.map((z) => 0.5 * z * (1 + Math.tanh(C * (z + 0.044715 * z * z * z)))));
    }
    const d = linear(a, `${b}ffn_down.weight`, H, `${b}ffn_down.bias`);
    x = x.map((r, t) => r.map((av, i) => av + d[t]![i]!));
  }
  const hn = norm(x, 'output_norm');
  const head = has('output.weight') ? 'output.weight' : 'token_embd.weight';
  const logits = linear(hn, head, c.vocabSize, undefined);
  const out = new Float64Array(T * c.vocabSize);
  logits.forEach((r, t) => out.set(r, t * c.vocabSize));
  return out;
}

/** Causal multi-head attention in float64: head h reads key / value head floor(h / (nh / nkv)). */
function causalAttention(
  q: readonly Float64Array[],
  k: readonly Float64Array[],
  v: readonly Float64Array[],
  nh: number,
  nkv: number,
  hd: number,
): Float64Array[] {
  return q.map((qr, t) => {
    const out = new Float64Array(nh * hd);
    for (let hh = 0; hh < nh; hh++) {
      const g = Math.floor(hh / (nh / nkv));
      const s = new Float64Array(t + 1);
      for (let j = 0; j <= t; j++) {
        let d = 0;
        for (let i = 0; i < hd; i++) d += qr[hh * hd + i]! * k[j]![g * hd + i]!;
        s[j] = d / Math.sqrt(hd);
      }
      const m = Math.max(...s);
      let z = 0;
      for (let j = 0; j <= t; j++) z += Math.exp(s[j]! - m);
      for (let j = 0; j <= t; j++) {
        const p = Math.exp(s[j]! - m) / z;
        for (let i = 0; i < hd; i++) out[hh * hd + i]! += p * v[j]![g * hd + i]!;
      }
    }
    return out;
  });
}

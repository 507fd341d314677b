/**
 * Language-model evaluation over a long token sequence split into windows, as pure functions: the window
 * split (which targets each window scores), the per-position reductions (log-prob of the target, KL
 * divergence of next-token distributions, top-1 agreement) and the per-window sums that paired bootstrap
 * intervals resample (metrics.ts pairedChangeInterval). Runtime adapters (llama.node.ts) feed rows of
 * log-probabilities into an LmAccumulator one position at a time, so no whole-text logits are kept.
 *
 * KL(P_ref || Q) = sum_v p_v (log p_v - log q_v) per position, in nats, as `llama-perplexity
 * --kl-divergence` reports it (mean over scored positions); top-1 agreement = argmax P == argmax Q.
 * Accumulation is float64 in a fixed order, so the same inputs give bit-identical numbers.
 */
import { MixqError } from '../core/errors.ts';
import { argmax, type MetricItems } from './metrics.ts';

/** One window fed to a model from an empty state. */
export interface TokenWindow {
  /** Token ids fed to the model (a BOS first when the split added one). */
  readonly tokens: Int32Array;
  /**
   * First scored target: tokens[scoreFrom .. length) are scored, each predicted from the logits at the
   * position before it. >= 1.
   */
  readonly scoreFrom: number;
  /** Index in the input ids of tokens[bos ? 1 : 0] (for reports). */
  readonly textOffset: number;
}

export interface WindowSplitOptions {
  /** Tokens per window, including the BOS when one is given (at most the model's context). */
  readonly windowTokens: number;
  /** Token id put first in every window (llama.cpp's perplexity does this); none when undefined. */
  readonly bos?: number;
  /**
   * Text tokens each window advances (default: a full window, i.e. non-overlapping). With a smaller stride
   * windows overlap and each target is scored once, in the first window that holds it after the
   * previous windows' scored regions (sliding-window perplexity).
   */
  readonly stride?: number;
  /**
   * Targets with fewer than this many tokens of context in their window are not scored (default 1 =
   * every target). `llama-perplexity` scores only the second half of each window: windowTokens / 2.
   */
  readonly minContext?: number;
}

/**
 * Splits token ids into windows.
 * @example splitWindows(ids, { windowTokens: 256, bos: 1 }) // BOS + 255 text tokens per window
 */
export function splitWindows(ids: ArrayLike<number>, opts: WindowSplitOptions): TokenWindow[] {
  const bosCount = opts.bos === undefined ? 0 : 1;
  const textPerWindow = opts.windowTokens - bosCount;
  const field = (f: string, msg: string, expected: string) =>
    new MixqError(msg, { source: 'splitWindows', field: f, expected });
  if (!Number.isInteger(opts.windowTokens) || textPerWindow < 1 || opts.windowTokens < 2)
    throw field('windowTokens', `${opts.windowTokens}`, `an integer >= ${bosCount + (bosCount ? 1 : 2)}`);
  const stride = opts.stride ?? textPerWindow;
  if (!Number.isInteger(stride) || stride < 1 || stride > textPerWindow)
    throw field('stride', `${stride}`, `an integer in 1..${textPerWindow}`);
  const minContext = Math.max(1, opts.minContext ?? 1);
  if (!Number.isInteger(minContext) || minContext >= opts.windowTokens)
    throw field('minContext', `${opts.minContext}`, `an integer below windowTokens (${opts.windowTokens})`);
  const out: TokenWindow[] = [];
  let scoredEnd = 0; // text index up to which targets are already scored
  for (let s = 0; s < ids.length; s += stride) {
    const end = Math.min(ids.length, s + textPerWindow);
    const tokens = new Int32Array(bosCount + end - s);
    if (opts.bos !== undefined) tokens[0] = opts.bos;
    for (let i = s; i < end; i++) tokens[bosCount + i - s] = ids[i]!;
    const scoreFrom = Math.max(minContext, scoredEnd - s + bosCount);
    if (scoreFrom < tokens.length) {
      out.push({ tokens, scoreFrom, textOffset: s });
      scoredEnd = end;
    }
    if (end === ids.length) break;
  }
  return out;
}

/** Total scored targets of a split. */
export function scoredTargets(windows: readonly TokenWindow[]): number {
  let n = 0;
  for (const w of windows) n += w.tokens.length - w.scoreFrom;
  return n;
}

/**
 * Writes log-probabilities of a probability row into `out` (float64 log of float32 probabilities;
 * a probability that underflowed to 0 gets log(1e-45), just below float32's smallest subnormal).
 */
export function logProbsFromProbs(probs: ArrayLike<number>, out: Float32Array | Float64Array): void {
  for (let i = 0; i < out.length; i++) {
    const p = probs[i]!;
    out[i] = p > 0 ? Math.log(p) : LOG_UNDERFLOW;
  }
}
export const LOG_UNDERFLOW = Math.log(1e-45);

/** Writes log-softmax of a logit row into `out`. */
export function logProbsFromLogits(logits: ArrayLike<number>, out: Float32Array | Float64Array): void {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < out.length; i++) m = Math.max(m, logits[i]!);
  let s = 0;
  for (let i = 0; i < out.length; i++) s += Math.exp(logits[i]! - m);
  const lse = m + Math.log(s);
  for (let i = 0; i < out.length; i++) out[i] = logits[i]! - lse;
}

/** KL(P || Q) in nats from log-prob rows (`p` at pOff, `q` at qOff, n entries). */
export function klFromLogProbs(
  p: ArrayLike<number>,
  pOff: number,
  q: ArrayLike<number>,
  qOff: number,
  n: number,
): number {
  let kl = 0;
  for (let i = 0; i < n; i++) {
    const lp = p[pOff + i]!;
    if (lp <= LOG_UNDERFLOW) continue; // p = 0 contributes nothing
    kl += Math.exp(lp) * (lp - q[qOff + i]!);
  }
  return kl;
}

/** Per-window sums of a scored run: what paired bootstrap intervals resample. */
export interface LmWindowSums {
  /** Scored targets per window. */
  readonly tokens: Float64Array;
  /** Sum of -log p(target) per window (nats). */
  readonly nll: Float64Array;
  /** Sum of per-position KL from the reference (nats); zeros without a reference. */
  readonly kl: Float64Array;
  /** Positions whose argmax equals the reference's argmax; zeros without a reference. */
  readonly top1: Float64Array;
}

/** The result of scoring a model on windows, optionally against a reference model's distributions. */
export interface LmScore {
  readonly windows: number;
  /** Scored targets in all windows. */
  readonly tokens: number;
  /** Mean -log p(target), nats per token. */
  readonly natsPerToken: number;
  /** exp(natsPerToken). */
  readonly perplexity: number;
  /** log p(target) per scored target, window order then position order (float32). */
  readonly tokenLogProbs: Float32Array;
  /** Mean KL(reference || model) over scored positions, nats; undefined without a reference. */
  readonly klMean?: number;
  /** Largest per-position KL; undefined without a reference. */
  readonly klMax?: number;
  /** Share of positions whose top-1 token equals the reference's; undefined without a reference. */
  readonly top1Agreement?: number;
  readonly perWindow: LmWindowSums;
}

/** Running sums over windows; feed one position at a time. */
export class LmAccumulator {
  private readonly sums: LmWindowSums;
  private readonly logProbs: Float32Array;
  private at = 0;
  private window = -1;
  private klMax = 0;

  constructor(
    readonly windows: readonly TokenWindow[],
    readonly vocab: number,
    readonly withReference: boolean,
  ) {
    const n = windows.length;
    this.sums = {
      tokens: new Float64Array(n),
      nll: new Float64Array(n),
      kl: new Float64Array(n),
      top1: new Float64Array(n),
    };
    this.logProbs = new Float32Array(scoredTargets(windows));
  }

  /** Starts window k (windows must be fed in order). */
  beginWindow(k: number): void {
    if (k !== this.window + 1) throw new MixqError(`window ${k} fed out of order`, { field: 'window' });
    this.window = k;
  }

  /**
   * Adds one scored position of the current window: `logp` is the model's log-prob row (vocab entries at
   * `off`), `target` the true next token; `ref` / `refOff` the reference's log-prob row when comparing.
   */
  add(logp: ArrayLike<number>, off: number, target: number, ref?: ArrayLike<number>, refOff = 0): void {
    const k = this.window;
    const lp = logp[off + target]!;
    this.logProbs[this.at++] = lp;
    this.sums.tokens[k]! += 1;
    this.sums.nll[k]! -= lp;
    if (ref) {
      const kl = klFromLogProbs(ref, refOff, logp, off, this.vocab);
      this.sums.kl[k]! += kl;
      if (kl > this.klMax) this.klMax = kl;
      if (argmax(ref, refOff, this.vocab) === argmax(logp, off, this.vocab)) this.sums.top1[k]! += 1;
    }
  }

  finish(): LmScore {
    const { tokens, nll, kl, top1 } = this.sums;
    let n = 0;
    let s = 0;
    let skl = 0;
    let st = 0;
    for (let k = 0; k < tokens.length; k++) {
      n += tokens[k]!;
      s += nll[k]!;
      skl += kl[k]!;
      st += top1[k]!;
    }
    if (n !== this.logProbs.length)
      throw new MixqError(`scored ${n} of ${this.logProbs.length} targets`, { field: 'windows' });
    const natsPerToken = n > 0 ? s / n : Number.NaN;
    return {
      windows: tokens.length,
      tokens: n,
      natsPerToken,
      perplexity: Math.exp(natsPerToken),
      tokenLogProbs: this.logProbs,
      ...(this.withReference ? { klMean: skl / n, klMax: this.klMax, top1Agreement: st / n } : {}),
      perWindow: this.sums,
    };
  }
}

/**
 * A per-window metric as ratio items for metrics.ts pairedChangeInterval / bootstrapStdError:
 * 'nll' (nats per token), 'kl' (mean KL per position), 'top1' (agreement share).
 * @example pairedChangeInterval(lmItems(mixqPlan, 'kl'), lmItems(llamaMix, 'kl'))
 */
export function lmItems(score: LmScore, metric: 'nll' | 'kl' | 'top1'): MetricItems {
  return { num: score.perWindow[metric], den: score.perWindow.tokens, scale: 1 };
}

/**
 * The user's text split for a language-model job: calibration, validation and evaluation windows that
 * never overlap. Browser-safe (pure).
 *
 * One text (the --calibration file, or the bundled stories text): its tokens (the model's own
 * tokenizer, no BOS) are cut into consecutive windows of `windowTokens - 1` text tokens, each fed after a
 * BOS (llama-perplexity's layout; every position scored). The first `calibration` windows calibrate the
 * damage, the next `validation` windows choose between plans, the next `evaluation` windows measure the
 * result; the three ranges of token indices are disjoint and reported (`describeSplit`). With a separate
 * evaluation text (--eval), its first `evaluation` windows are the evaluation and the first text gives
 * calibration + validation only.
 */
import { MixqError } from '../../core/errors.ts';
import { type TokenWindow, splitWindows } from '../../runtime/lm-windows.ts';

export interface LmSplitCounts {
  /** Windows that calibrate the damage table against measured KL. */
  readonly calibration: number;
  /** Windows that choose between the plans tried at a budget. */
  readonly validation: number;
  /** Windows of the reported evaluation. */
  readonly evaluation: number;
}

/**
 * Defaults of `mixq quantize <gguf>`: 4 + 8 + 32 windows of 256 tokens (about 23k characters of English).
 * Every window costs one llama.cpp pass per model scored (the calibration windows one per tensor).
 */
export const LM_SPLIT_DEFAULTS: LmSplitCounts = { calibration: 4, validation: 8, evaluation: 32 };
export const LM_WINDOW_TOKENS = 256;

export interface LmTextPart {
  /** Where the tokens came from (file name or 'bundled stories text'). */
  readonly source: string;
  /** Token ids of the text (no BOS). */
  readonly ids: ArrayLike<number>;
}

export interface LmSplitPart {
  readonly source: string;
  /** Text token range [from, to) in `source`'s tokens. */
  readonly from: number;
  readonly to: number;
  readonly windows: readonly TokenWindow[];
}

export interface LmSplit {
  readonly windowTokens: number;
  readonly calibration: LmSplitPart;
  readonly validation: LmSplitPart;
  readonly evaluation: LmSplitPart;
}

function part(source: string, ids: ArrayLike<number>, from: number, n: number, w: number, bos?: number) {
  const per = bos === undefined ? w : w - 1;
  const slice = Array.prototype.slice.call(ids, from, from + n * per) as number[];
  const windows = splitWindows(slice, { windowTokens: w, ...(bos !== undefined ? { bos } : {}) }).map(
    (x) => ({ ...x, textOffset: x.textOffset + from }),
  );
  return { source, from, to: from + n * per, windows };
}

/** Text tokens needed for `counts` windows (calibration + validation [+ evaluation] from one text). */
export function tokensNeeded(
  counts: LmSplitCounts,
  windowTokens: number,
  bos: boolean,
  withEval: boolean,
): number {
  const per = bos ? windowTokens - 1 : windowTokens;
  return per * (counts.calibration + counts.validation + (withEval ? counts.evaluation : 0));
}

/**
 * Splits the text(s) into the three parts (see the file header). MixqError naming the text when it is
 * shorter than the windows need.
 */
export function splitLmText(
  text: LmTextPart,
  counts: LmSplitCounts,
  opts: { windowTokens?: number; bos?: number; evalText?: LmTextPart } = {},
): LmSplit {
  const w = opts.windowTokens ?? LM_WINDOW_TOKENS;
  for (const [k, v] of Object.entries(counts))
    if (!Number.isInteger(v) || v < 1)
      throw new MixqError(`${v} ${k} windows`, { source: 'windows', field: k, expected: 'an integer >= 1' });
  const bos = opts.bos;
  const per = bos === undefined ? w : w - 1;
  const check = (t: LmTextPart, need: number, what: string) => {
    if (t.ids.length < need)
      throw new MixqError(`the text has ${t.ids.length} tokens`, {
        source: t.source,
        field: 'text',
        expected: `at least ${need} tokens for ${what} (windows of ${w} tokens); give a longer text or fewer windows (--windows)`,
      });
  };
  const ev = opts.evalText;
  check(
    text,
    tokensNeeded(counts, w, bos !== undefined, ev === undefined),
    ev ? 'calibration + validation' : 'calibration + validation + evaluation',
  );
  if (ev) check(ev, per * counts.evaluation, 'evaluation');
  const cal = part(text.source, text.ids, 0, counts.calibration, w, bos);
  const val = part(text.source, text.ids, cal.to, counts.validation, w, bos);
  const evaluation = ev
    ? part(ev.source, ev.ids, 0, counts.evaluation, w, bos)
    : part(text.source, text.ids, val.to, counts.evaluation, w, bos);
  return { windowTokens: w, calibration: cal, validation: val, evaluation };
}

/** One line per part: 'calibration: tokens [0, 2040) of <source>, 8 windows of 256 (BOS + 255)'. */
export function describeSplit(s: LmSplit): string[] {
  return (['calibration', 'validation', 'evaluation'] as const).map((k) => {
    const p = s[k];
    return `${k}: tokens [${p.from}, ${p.to}) of ${p.source}, ${p.windows.length} windows of ${s.windowTokens} tokens`;
  });
}

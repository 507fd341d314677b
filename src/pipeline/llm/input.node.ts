/**
 * The inputs of a GGUF language-model job: the model ('stories' = the bundled stories260K, a .gguf path
 * or a Hugging Face folder, converted to GGUF) and its text (the --calibration file; the bundled TinyStories text for 'stories'), tokenized by
 * llama.cpp with the model's own vocabulary and split into windows (text-split.ts).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { convertHfFolderToGguf } from '../../io/llm/hf-folder.node.ts';
import { loadStoriesText, STORIES_NAME, storiesModelPath } from '../../runtime/bundled-stories.node.ts';
import {
  describeSplit,
  LM_SPLIT_DEFAULTS,
  LM_WINDOW_TOKENS,
  type LmSplit,
  type LmSplitCounts,
  type LmTextPart,
  splitLmText,
  tokensNeeded,
} from './text-split.ts';

/** Largest text file read (only its first windows are used). */
export const MAX_TEXT_BYTES = 256 * 1024 * 1024;

export interface LmInput {
  /** Display name ('stories260K', the file's stem). */
  readonly name: string;
  readonly path: string;
  /** The calibration text and where it came from. */
  readonly text: { readonly source: string; readonly content: string };
  readonly evalText?: { readonly source: string; readonly content: string };
  /** The Hugging Face folder the GGUF was converted from. */
  readonly convertedFrom?: string;
}

/** A text file of the user's (size-capped), with the flag it came from in errors. */
export function readText(path: string, flag: string): { source: string; content: string } {
  if (!existsSync(path) || !statSync(path).isFile())
    throw new MixqError('no such text file', { source: path, field: flag, expected: 'a UTF-8 text file' });
  const size = statSync(path).size;
  if (size > MAX_TEXT_BYTES)
    throw new MixqError(`text file of ${size} bytes`, {
      source: path,
      field: flag,
      expected: `at most ${MAX_TEXT_BYTES} bytes (only the first windows are used: cut the file)`,
    });
  return { source: path, content: readFileSync(path, 'utf8') };
}

/**
 * Resolves the model and its texts; one-line MixqErrors for a missing file or text. A Hugging Face folder
 * (config.json + *.safetensors + tokenizer.json, llama family) is converted to a GGUF in a temporary
 * folder first (io/llm convertHfFolderToGguf, weights as stored); `cleanup()` removes it.
 */
export async function resolveLmInput(opts: {
  model: string;
  calibration?: string;
  evalText?: string;
}): Promise<LmInput & { cleanup(): Promise<void> }> {
  const stories = opts.model === STORIES_NAME;
  let path = stories ? storiesModelPath() : opts.model;
  const isDir = !stories && existsSync(path) && statSync(path).isDirectory();
  if (!stories && !isDir && (!existsSync(path) || !statSync(path).isFile()))
    throw new MixqError('no such model file', {
      source: path,
      expected: "a .gguf file, a Hugging Face folder or 'stories'",
    });
  let text: { source: string; content: string };
  if (opts.calibration !== undefined) text = readText(opts.calibration, '--calibration');
  else if (stories) text = { source: 'the bundled TinyStories validation text', content: loadStoriesText() };
  else
    throw new MixqError('a language model needs text to calibrate and evaluate on', {
      source: path,
      field: '--calibration',
      expected:
        '--calibration <text file> (plain UTF-8 text like the model will see; --eval <file> optional)',
    });
  const name = stories ? 'stories260K' : basename(path.replace(/[/\\]+$/, '')).replace(/\.gguf$/i, '');
  const evalText = opts.evalText !== undefined ? readText(opts.evalText, '--eval') : undefined;
  let temp: string | undefined;
  if (isDir) {
    temp = await mkdtemp(join(tmpdir(), 'mixq-hf-'));
    try {
      path = (await convertHfFolderToGguf(opts.model, join(temp, `${name}.gguf`), { name })).out;
    } catch (e) {
      await rm(temp, { recursive: true, force: true });
      throw e;
    }
  }
  return {
    name,
    path,
    text,
    ...(evalText ? { evalText } : {}),
    ...(isDir ? { convertedFrom: opts.model } : {}),
    cleanup: async () => {
      if (temp) await rm(temp, { recursive: true, force: true });
    },
  };
}

/**
 * What splits a text into windows: llama.cpp's tokenizer of a GGUF (runtime/llama.node.ts) or a
 * tokenizer.json (io/llm/tokenizer.ts `lmTextTokenizer`); BOS first in every window when `addBos`.
 */
export interface LmTextTokenizer {
  tokenize(text: string): Int32Array;
  readonly addBos: boolean;
  readonly bos: number | undefined;
}

/**
 * Tokenizes as much of a text as `need` tokens take (a prefix of ~4 characters per token, grown when
 * short; the last 16 tokens of a cut prefix are dropped: the cut may have split a word).
 */
function tokenizePrefix(
  model: LmTextTokenizer,
  t: { source: string; content: string },
  need: number,
): LmTextPart {
  let chars = Math.min(t.content.length, need * 4 + 1024);
  for (;;) {
    const ids = model.tokenize(t.content.slice(0, chars));
    const whole = chars >= t.content.length;
    if (whole) return { source: t.source, ids };
    const keep = ids.subarray(0, Math.max(0, ids.length - 16));
    if (keep.length >= need) return { source: t.source, ids: keep };
    chars = Math.min(t.content.length, chars * 2);
  }
}

/** The windows of the job and their description. */
export function tokenizeSplit(
  model: LmTextTokenizer,
  input: Pick<LmInput, 'text' | 'evalText'>,
  windows: Partial<LmSplitCounts> = {},
  windowTokens: number = LM_WINDOW_TOKENS,
): { split: LmSplit; lines: string[] } {
  const counts = { ...LM_SPLIT_DEFAULTS, ...windows };
  // llama-perplexity puts a BOS first in every window when the vocabulary asks for one (add_bos); so does
  // transformers.js's tokenizer when tokenizer.json's post-processor / tokenizer_config's add_bos_token says so
  const bos = model.addBos ? model.bos : undefined;
  const withEval = input.evalText === undefined;
  const need = tokensNeeded(counts, windowTokens, bos !== undefined, withEval);
  const text = tokenizePrefix(model, input.text, need);
  const evalText = input.evalText
    ? tokenizePrefix(
        model,
        input.evalText,
        tokensNeeded(
          { calibration: 0, validation: 0, evaluation: counts.evaluation },
          windowTokens,
          bos !== undefined,
          true,
        ),
      )
    : undefined;
  const split = splitLmText(text, counts, {
    windowTokens,
    ...(bos !== undefined ? { bos } : {}),
    ...(evalText ? { evalText } : {}),
  });
  return { split, lines: describeSplit(split) };
}

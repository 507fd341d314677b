/**
 * Greedy CTC decoding for PaddleOCR recognisers (PP-OCRv4 rec).
 *
 * Source: PaddleOCR ppocr/postprocess/rec_postprocess.py (CTCLabelDecode): the class list is
 * ['blank', ...lines of the key file, ' '] when use_space_char is on (it is for ch_PP-OCRv4), so class 0 is
 * the CTC blank, class i (1 <= i <= keys) is key line i-1, and the last class is a space. With
 * ppocr_keys_v1.txt (6623 keys) that gives 6625 classes, matching the model's output [1, T, 6625].
 * Greedy decoding takes the argmax per time step, merges repeats, then drops blanks.
 */

import { MixqError } from '../core/errors.ts';
import { argmax } from './metrics.ts';

/** Class list from the text of a PaddleOCR key file: blank, one entry per line, then space. */
export function paddleCharset(keysText: string): string[] {
  const keys = keysText.split('\n');
  // The file may or may not end with a newline; a trailing empty entry is not a key.
  if (keys.length > 0 && keys[keys.length - 1] === '') keys.pop();
  return ['', ...keys.map((k) => k.replace(/\r$/, '')), ' '];
}

/** Decode `scores` [T, classes] (probabilities or logits: only the argmax matters). */
export function ctcGreedyDecode(
  scores: ArrayLike<number>,
  steps: number,
  charset: readonly string[],
): string {
  const classes = charset.length;
  if (scores.length !== steps * classes) {
    throw new MixqError('CTC scores do not match the charset', {
      field: 'output shape',
      expected: `[${steps}, ${classes}] (${steps * classes} values), got ${scores.length} values`,
    });
  }
  let out = '';
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    const c = argmax(scores, t * classes, classes);
    if (c !== prev && c !== 0) out += charset[c]!;
    prev = c;
  }
  return out;
}

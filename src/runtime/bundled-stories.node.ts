/**
 * The bundled stories260K language model (models/stories/, see its README for provenance): Karpathy's
 * tinyllamas checkpoint as llama.cpp's own GGUF, and the head of the TinyStories validation split
 * (gzipped) as text for calibration and evaluation. Kept apart from bundled.node.ts so the pipeline's
 * model resolution can add `stories` by importing these constants.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MixqError } from '../core/errors.ts';
import { PACKAGE_ROOT } from './bundled.node.ts';

export const STORIES_NAME = 'stories';
export const STORIES_DIR: string = join(PACKAGE_ROOT, 'models', 'stories');
export const STORIES_GGUF: string = join(STORIES_DIR, 'stories260K.gguf');
export const STORIES_TEXT_GZ: string = join(STORIES_DIR, 'tinystories_valid_part1.txt.gz');

/** Path of the bundled stories260K GGUF. */
export function storiesModelPath(): string {
  if (!existsSync(STORIES_GGUF))
    throw new MixqError('missing bundled model', {
      source: STORIES_GGUF,
      expected: 'models/stories/stories260K.gguf',
    });
  return STORIES_GGUF;
}

/** The bundled TinyStories validation text (595,925 characters, UTF-8). */
export function loadStoriesText(): string {
  if (!existsSync(STORIES_TEXT_GZ))
    throw new MixqError('missing bundled text', {
      source: STORIES_TEXT_GZ,
      expected: 'models/stories/tinystories_valid_part1.txt.gz',
    });
  return gunzipSync(readFileSync(STORIES_TEXT_GZ)).toString('utf8');
}

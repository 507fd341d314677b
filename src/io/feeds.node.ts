/**
 * A folder of the user's inputs for `--calibration <folder>`. Samples, in name order:
 *   <sample>.npy                 the input of a one-input model (a leading batch dim of 1 may be left out)
 *   <sample>.json                { "<input>": { "dims": [...], "data": [...] } | nested arrays, ... }
 *   <sample>/<input>.npy|.json   one file per input ('/' and ':' in input names become '_')
 *   <sample>.png|.jpg|.jpeg      an image for a one-input image model, preprocessed as preprocess.json in
 *                                the folder (or the caller) says — see io/image.ts ImagePreprocess
 * With subfolders calibration/, validation/ and evaluation/ the split is the user's; otherwise samples are
 * split by name order (io/feeds.ts splitSamples). Files starting with '.' and README* are ignored; any
 * other file is an error, so a typo never silently drops data.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { MixqError } from '../core/errors.ts';
import {
  type FeedInput,
  type FeedSample,
  type FeedTensor,
  jsonSample,
  type SplitFeeds,
  splitSamples,
  toFeedTensor,
} from './feeds.ts';
import { decodeImage, type ImagePreprocess, preprocessImage, validatePreprocess } from './image.ts';
import { readNpy } from './npy.ts';

export interface FeedFolderOptions {
  /** Preprocessing for image samples (default: the folder's preprocess.json). */
  readonly preprocess?: ImagePreprocess;
  /** Most samples read (default 100,000). */
  readonly maxSamples?: number;
  /** Most bytes of tensors kept in memory (default 2 GiB). */
  readonly maxTotalBytes?: number;
  /** Largest file read (default 1 GiB). */
  readonly maxFileBytes?: number;
}

const SPLIT_DIRS = ['calibration', 'validation', 'evaluation'] as const;
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** The folder's preprocessing for images, if it has a preprocess.json. */
export async function folderPreprocess(dir: string): Promise<ImagePreprocess | undefined> {
  const p = join(dir, 'preprocess.json');
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    return undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MixqError(`not valid JSON: ${(e as Error).message}`, { source: p, field: 'json' });
  }
  return validatePreprocess(v, p);
}

function fileName(input: string): string {
  return input.replace(/[/:\\]/g, '_');
}

async function readCapped(path: string, max: number): Promise<Uint8Array> {
  const s = await stat(path);
  if (s.size > max)
    throw new MixqError(`file of ${s.size} bytes is too large`, {
      source: path,
      field: 'size',
      expected: `<= ${max} bytes`,
    });
  return readFile(path);
}

interface Ctx {
  readonly inputs: readonly FeedInput[];
  readonly preprocess: ImagePreprocess | undefined;
  readonly maxFile: number;
  bytes: number;
  readonly maxTotal: number;
}

function charge(ctx: Ctx, s: FeedSample, source: string): FeedSample {
  for (const t of Object.values(s.tensors)) ctx.bytes += t.data.byteLength;
  if (ctx.bytes > ctx.maxTotal)
    throw new MixqError(`the samples hold more than ${ctx.maxTotal} bytes of tensors`, {
      source,
      field: 'samples',
      expected: 'fewer or smaller samples',
    });
  return s;
}

async function fileTensor(path: string, input: FeedInput, ctx: Ctx): Promise<FeedTensor> {
  const bytes = await readCapped(path, ctx.maxFile);
  if (extname(path) === '.npy') return toFeedTensor(readNpy(bytes, path), input, path);
  return jsonSample(
    JSON.stringify({ [input.name]: JSON.parse(new TextDecoder().decode(bytes)) }),
    [input],
    path,
    path,
  ).tensors[input.name]!;
}

function only(ctx: Ctx, path: string, what: string): FeedInput {
  if (ctx.inputs.length !== 1)
    throw new MixqError(`${what} can feed a model with one input, this one has ${ctx.inputs.length}`, {
      source: path,
      field: 'inputs',
      expected: `<sample>/ folders with ${ctx.inputs.map((i) => `${fileName(i.name)}.npy`).join(', ')}, or JSON feeds`,
    });
  return ctx.inputs[0]!;
}

async function readSample(dir: string, name: string, ctx: Ctx): Promise<FeedSample | undefined> {
  const path = join(dir, name);
  const ext = extname(name).toLowerCase();
  const id = name;
  const st = await stat(path);
  if (st.isDirectory()) {
    const tensors: Record<string, FeedTensor> = {};
    const files = new Set(await readdir(path));
    for (const input of ctx.inputs) {
      const f = [`${fileName(input.name)}.npy`, `${fileName(input.name)}.json`].find((x) => files.has(x));
      if (!f)
        throw new MixqError(`no file for input '${input.name}'`, {
          source: path,
          field: input.name,
          expected: `${fileName(input.name)}.npy or .json`,
        });
      tensors[input.name] = await fileTensor(join(path, f), input, ctx);
    }
    return charge(ctx, { id, tensors }, path);
  }
  if (ext === '.npy') {
    const input = only(ctx, path, 'an .npy file');
    return charge(ctx, { id, tensors: { [input.name]: await fileTensor(path, input, ctx) } }, path);
  }
  if (ext === '.json') {
    if (name === 'preprocess.json') return undefined;
    const text = new TextDecoder().decode(await readCapped(path, ctx.maxFile));
    return charge(ctx, jsonSample(text, ctx.inputs, path, id), path);
  }
  if (IMAGE_EXT.has(ext)) {
    const input = only(ctx, path, 'an image');
    if (!ctx.preprocess)
      throw new MixqError('images need a stated preprocessing', {
        source: path,
        field: 'preprocess',
        expected:
          'preprocess.json in the folder, e.g. {"resize": {"kind": "fixed", "height": 224, "width": 224}, "scale": 0.00392156862745098, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "channelOrder": "rgb", "layout": "nchw"}',
      });
    if (input.type !== 'float32')
      throw new MixqError(`input '${input.name}' is ${input.type}`, {
        source: path,
        field: input.name,
        expected: 'a float32 image input',
      });
    const t = preprocessImage(decodeImage(await readCapped(path, ctx.maxFile), path), ctx.preprocess);
    const tensor = toFeedTensor({ dtype: 'float32', shape: t.dims, data: t.data }, input, path);
    return charge(ctx, { id, tensors: { [input.name]: tensor } }, path);
  }
  throw new MixqError(`unexpected file '${name}'`, {
    source: path,
    field: 'extension',
    expected: '.npy, .json, .png, .jpg or a <sample>/ folder',
  });
}

async function readSamples(dir: string, ctx: Ctx, maxSamples: number): Promise<FeedSample[]> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.') && !/^readme/i.test(n)).sort();
  if (names.length > maxSamples + 1)
    throw new MixqError(`${names.length} entries`, {
      source: dir,
      field: 'samples',
      expected: `<= ${maxSamples}`,
    });
  const out: FeedSample[] = [];
  for (const n of names) {
    const s = await readSample(dir, n, ctx);
    if (s) out.push(s);
  }
  return out;
}

/**
 * Reads a calibration folder for a model with these inputs and splits it.
 * @example const split = await readFeedFolder('pages/', [{ name: 'x', type: 'float32', shape: [1, 3, -1, -1] }]);
 */
export async function readFeedFolder(
  dir: string,
  inputs: readonly FeedInput[],
  opts: FeedFolderOptions = {},
): Promise<SplitFeeds> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new MixqError('no such folder', {
      source: dir,
      field: '--calibration',
      expected: 'a folder of samples',
    });
  }
  if (!st.isDirectory())
    throw new MixqError('not a folder', {
      source: dir,
      field: '--calibration',
      expected: 'a folder of samples',
    });
  const ctx: Ctx = {
    inputs,
    preprocess: opts.preprocess ?? (await folderPreprocess(dir)),
    maxFile: opts.maxFileBytes ?? 2 ** 30,
    bytes: 0,
    maxTotal: opts.maxTotalBytes ?? 2 ** 31,
  };
  const maxSamples = opts.maxSamples ?? 100_000;
  const entries = new Set(await readdir(dir));
  const present = SPLIT_DIRS.filter((d) => entries.has(d));
  if (present.length > 0) {
    const missing = SPLIT_DIRS.filter((d) => !entries.has(d));
    if (missing.length)
      throw new MixqError(`has ${present.join(', ')}/ but not ${missing.join(', ')}/`, {
        source: dir,
        field: 'splits',
        expected: 'all of calibration/, validation/, evaluation/ (or none: then samples are split by name)',
      });
    const sets: FeedSample[][] = [];
    for (const d of SPLIT_DIRS) {
      const sub = join(dir, d);
      const subCtx: Ctx = { ...ctx, preprocess: (await folderPreprocess(sub)) ?? ctx.preprocess };
      const s = await readSamples(sub, subCtx, maxSamples);
      ctx.bytes = subCtx.bytes;
      if (s.length === 0)
        throw new MixqError('no samples', { source: sub, field: 'samples', expected: 'at least 1' });
      sets.push(s.map((x) => ({ ...x, id: `${d}/${x.id}` })));
    }
    return {
      calibration: sets[0]!,
      validation: sets[1]!,
      evaluation: sets[2]!,
      rule: `the folder's own calibration/ (${sets[0]!.length}), validation/ (${sets[1]!.length}) and evaluation/ (${sets[2]!.length})`,
    };
  }
  return splitSamples(await readSamples(dir, ctx, maxSamples), basename(dir) || dir);
}

/**
 * Images as model inputs: decode PNG (fast-png) and JPEG (jpeg-js), both pure JavaScript, then resize,
 * normalise and lay out as a float32 tensor with a stated preprocessing. Browser-safe.
 *
 * The preprocessing is data, so a report can print exactly what was done, e.g. PaddleOCR's detector:
 *   { resize: { kind: 'limit', maxSide: 960, multiple: 32 }, scale: 1/255,
 *     mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'bgr', layout: 'nchw' }
 * Resizing is bilinear with half-pixel centres (OpenCV's INTER_LINEAR, which the Python pipelines of
 * most vision models use), on 8-bit values rounded to nearest like OpenCV's uint8 output.
 */
import { convertIndexedToRgb, decode as decodePng, hasPngSignature } from 'fast-png';
import jpeg from 'jpeg-js';
import { MixqError } from '../core/errors.ts';

/** A decoded image: 8-bit RGB, row-major, 3 bytes per pixel. Alpha, if any, is dropped. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/** How an image becomes a model input. */
export interface ImagePreprocess {
  /**
   * 'fixed': to exactly height x width. 'limit': keep the aspect ratio, shrink so the longer side is at
   * most maxSide (never enlarge), then round each side to a multiple (at least one multiple) — the
   * detectors' rule. 'pad': to `height`, width by the aspect ratio capped at `width`, then padded on the
   * right with `padValue` (in normalised units) — the text recognisers' and classifiers' rule.
   * 'none': as decoded.
   */
  readonly resize:
    | { readonly kind: 'fixed'; readonly height: number; readonly width: number }
    | { readonly kind: 'limit'; readonly maxSide: number; readonly multiple: number }
    | { readonly kind: 'pad'; readonly height: number; readonly width: number; readonly padValue?: number }
    | { readonly kind: 'none' };
  /** Multiplies the 8-bit value first (1/255 for [0, 1]). */
  readonly scale: number;
  /** Subtracted after scaling, per channel in the model's channel order. */
  readonly mean: readonly [number, number, number];
  /** Divides after the mean, per channel in the model's channel order. */
  readonly std: readonly [number, number, number];
  /** Channel order the model expects ('bgr' for models trained on OpenCV-read images). */
  readonly channelOrder: 'rgb' | 'bgr';
  /** 'nchw' -> [1, 3, H, W]; 'nhwc' -> [1, H, W, 3]. */
  readonly layout: 'nchw' | 'nhwc';
}

/** Largest image accepted, in pixels (a 16k x 16k scan); decoders allocate 3-4 bytes per pixel. */
export const MAX_IMAGE_PIXELS = 1 << 28;

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Whether the bytes look like an image this module decodes. */
export function isImage(bytes: Uint8Array): boolean {
  return hasPngSignature(bytes) || isJpeg(bytes);
}

/**
 * Decodes a PNG or JPEG file to 8-bit RGB. `source` names it in errors.
 * @example decodeImage(fs.readFileSync('page.png'), 'page.png') // { width, height, rgb }
 */
export function decodeImage(bytes: Uint8Array, source: string): RgbImage {
  if (hasPngSignature(bytes)) return decodePngRgb(bytes, source);
  if (isJpeg(bytes)) return decodeJpegRgb(bytes, source);
  throw new MixqError('not a PNG or JPEG image', { source, field: 'signature', expected: 'PNG or JPEG' });
}

function decodePngRgb(bytes: Uint8Array, source: string): RgbImage {
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new MixqError(`PNG cannot be decoded: ${(e as Error).message}`, { source, field: 'data' });
  }
  const { width, height } = png;
  checkPixels(width, height, source);
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  if (png.palette) {
    const data = convertIndexedToRgb(png); // 3 or 4 bytes per pixel
    const c = data.length / n;
    for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) rgb[i * 3 + k] = data[i * c + k]!;
    return { width, height, rgb };
  }
  const c = png.channels;
  if (png.depth !== 8 && png.depth !== 16)
    throw new MixqError(`PNG bit depth ${png.depth} is not supported`, {
      source,
      field: 'bit depth',
      expected: '8 or 16 (or a palette image)',
    });
  const shift = png.depth === 16 ? 8 : 0;
  const d = png.data;
  if (d.length < n * c) throw new MixqError('PNG data is truncated', { source, field: 'data' });
  for (let i = 0; i < n; i++) {
    if (c <= 2) {
      const g = d[i * c]! >> shift;
      rgb[i * 3] = g;
      rgb[i * 3 + 1] = g;
      rgb[i * 3 + 2] = g;
    } else {
      for (let k = 0; k < 3; k++) rgb[i * 3 + k] = d[i * c + k]! >> shift;
    }
  }
  return { width, height, rgb };
}

function decodeJpegRgb(bytes: Uint8Array, source: string): RgbImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
    });
  } catch (e) {
    throw new MixqError(`JPEG cannot be decoded: ${(e as Error).message}`, { source, field: 'data' });
  }
  checkPixels(img.width, img.height, source);
  return { width: img.width, height: img.height, rgb: img.data };
}

function checkPixels(width: number, height: number, source: string): void {
  if (!(width > 0 && height > 0) || width * height > MAX_IMAGE_PIXELS)
    throw new MixqError(`image of ${width} x ${height} pixels`, {
      source,
      field: 'size',
      expected: `1..${MAX_IMAGE_PIXELS} pixels`,
    });
}

/** Output size of `resize` for an image of h x w (before padding). */
export function resizedSize(
  h: number,
  w: number,
  resize: ImagePreprocess['resize'],
): { height: number; width: number; contentWidth: number } {
  switch (resize.kind) {
    case 'none':
      return { height: h, width: w, contentWidth: w };
    case 'fixed':
      return { height: resize.height, width: resize.width, contentWidth: resize.width };
    case 'limit': {
      const r = Math.min(1, resize.maxSide / Math.max(h, w));
      const m = resize.multiple;
      const round = (x: number) => Math.max(m, Math.round((x * r) / m) * m);
      const height = round(h);
      const width = round(w);
      return { height, width, contentWidth: width };
    }
    case 'pad': {
      const contentWidth = Math.min(resize.width, Math.max(1, Math.ceil((resize.height * w) / h)));
      return { height: resize.height, width: resize.width, contentWidth };
    }
  }
}

/**
 * Bilinear resize of 8-bit RGB with half-pixel centres (src = (dst + 0.5) * scale - 0.5, clamped), the
 * result rounded to nearest.
 */
export function resizeBilinear(img: RgbImage, height: number, width: number): RgbImage {
  if (height === img.height && width === img.width) return img;
  const out = new Uint8Array(height * width * 3);
  const sy = img.height / height;
  const sx = img.width / width;
  const x0 = new Int32Array(width);
  const x1 = new Int32Array(width);
  const fx = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    const s = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
    x0[x] = Math.floor(s);
    x1[x] = Math.min(x0[x]! + 1, img.width - 1);
    fx[x] = s - x0[x]!;
  }
  const src = img.rgb;
  const W = img.width;
  for (let y = 0; y < height; y++) {
    const s = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(s);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const fy = s - y0;
    for (let x = 0; x < width; x++) {
      const a = (y0 * W + x0[x]!) * 3;
      const b = (y0 * W + x1[x]!) * 3;
      const c = (y1 * W + x0[x]!) * 3;
      const d = (y1 * W + x1[x]!) * 3;
      const wx = fx[x]!;
      for (let k = 0; k < 3; k++) {
        const top = src[a + k]! + (src[b + k]! - src[a + k]!) * wx;
        const bot = src[c + k]! + (src[d + k]! - src[c + k]!) * wx;
        out[(y * width + x) * 3 + k] = Math.round(top + (bot - top) * fy);
      }
    }
  }
  return { width, height, rgb: out };
}

/** A float32 input tensor. */
export interface ImageTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/**
 * Resize, normalise and lay out one image as the model's input.
 * @example preprocessImage(decodeImage(bytes, 'a.png'), PADDLE_DET)  // dims [1, 3, H, W]
 */
export function preprocessImage(img: RgbImage, p: ImagePreprocess): ImageTensor {
  const size = resizedSize(img.height, img.width, p.resize);
  const content = resizeBilinear(img, size.height, size.contentWidth);
  const { height: H, width: W } = size;
  const data = new Float32Array(3 * H * W);
  const pad = p.resize.kind === 'pad' ? (p.resize.padValue ?? 0) : 0;
  if (pad !== 0) data.fill(pad);
  const order = p.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const cw = size.contentWidth;
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const mul = p.scale / p.std[c]!;
    const add = -p.mean[c]! / p.std[c]!;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < cw; x++) {
        const v = content.rgb[(y * cw + x) * 3 + src]! * mul + add;
        if (p.layout === 'nchw') data[(c * H + y) * W + x] = v;
        else data[(y * W + x) * 3 + c] = v;
      }
    }
  }
  return { dims: p.layout === 'nchw' ? [1, 3, H, W] : [1, H, W, 3], data };
}

/** One line describing a preprocessing, for logs and reports. */
export function describePreprocess(p: ImagePreprocess): string {
  const r = p.resize;
  const size =
    r.kind === 'fixed'
      ? `resize to ${r.height}x${r.width}`
      : r.kind === 'limit'
        ? `longer side <= ${r.maxSide}, sides rounded to multiples of ${r.multiple}`
        : r.kind === 'pad'
          ? `height ${r.height}, width by aspect ratio padded to ${r.width}`
          : 'size as decoded';
  const f = (v: readonly number[]) => `[${v.map((x) => +x.toFixed(4)).join(', ')}]`;
  return `${size}; x*${+p.scale.toPrecision(4)}, mean ${f(p.mean)}, std ${f(p.std)}; ${p.channelOrder.toUpperCase()}; ${p.layout.toUpperCase()}`;
}

/** Checks a preprocessing object read from a file or flags; errors name the field. */
export function validatePreprocess(v: unknown, source: string): ImagePreprocess {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const num = (x: unknown, field: string, positive = false): number => {
    if (typeof x !== 'number' || !Number.isFinite(x) || (positive && x <= 0))
      throw new MixqError(`${field} is ${JSON.stringify(x)}`, {
        source,
        field,
        expected: positive ? 'a positive number' : 'a number',
      });
    return x;
  };
  const int = (x: unknown, field: string): number => {
    const n = num(x, field, true);
    if (!Number.isInteger(n) || n > 16384)
      throw new MixqError(`${field} is ${n}`, { source, field, expected: 'an integer in 1..16384' });
    return n;
  };
  const triple = (x: unknown, field: string, positive: boolean): [number, number, number] => {
    if (typeof x === 'number') x = [x, x, x];
    if (!Array.isArray(x) || x.length !== 3)
      throw new MixqError(`${field} is ${JSON.stringify(x)}`, { source, field, expected: 'three numbers' });
    return [
      num(x[0], `${field}[0]`, positive),
      num(x[1], `${field}[1]`, positive),
      num(x[2], `${field}[2]`, positive),
    ];
  };
  const r = (typeof o.resize === 'object' && o.resize !== null ? o.resize : { kind: 'none' }) as Record<
    string,
    unknown
  >;
  let resize: ImagePreprocess['resize'];
  if (r.kind === 'fixed')
    resize = { kind: 'fixed', height: int(r.height, 'resize.height'), width: int(r.width, 'resize.width') };
  else if (r.kind === 'limit')
    resize = {
      kind: 'limit',
      maxSide: int(r.maxSide, 'resize.maxSide'),
      multiple: int(r.multiple ?? 1, 'resize.multiple'),
    };
  else if (r.kind === 'pad')
    resize = {
      kind: 'pad',
      height: int(r.height, 'resize.height'),
      width: int(r.width, 'resize.width'),
      padValue: num(r.padValue ?? 0, 'resize.padValue'),
    };
  else if (r.kind === 'none') resize = { kind: 'none' };
  else
    throw new MixqError(`resize.kind is ${JSON.stringify(r.kind)}`, {
      source,
      field: 'resize.kind',
      expected: "'fixed', 'limit', 'pad' or 'none'",
    });
  const channelOrder = o.channelOrder ?? 'rgb';
  if (channelOrder !== 'rgb' && channelOrder !== 'bgr')
    throw new MixqError(`channelOrder is ${JSON.stringify(channelOrder)}`, {
      source,
      field: 'channelOrder',
      expected: "'rgb' or 'bgr'",
    });
  const layout = o.layout ?? 'nchw';
  if (layout !== 'nchw' && layout !== 'nhwc')
    throw new MixqError(`layout is ${JSON.stringify(layout)}`, {
      source,
      field: 'layout',
      expected: "'nchw' or 'nhwc'",
    });
  return {
    resize,
    scale: num(o.scale ?? 1 / 255, 'scale', true),
    mean: triple(o.mean ?? 0, 'mean', false),
    std: triple(o.std ?? 1, 'std', true),
    channelOrder,
    layout,
  };
}

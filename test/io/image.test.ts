// Image decoding and preprocessing against ImageMagick's decode and PyTorch's bilinear resize
// (test/golden/images, see its README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MixqError } from '../../src/core/errors.ts';
import {
  decodeImage,
  preprocessImage,
  resizeBilinear,
  resizedSize,
  validatePreprocess,
} from '../../src/io/image.ts';

const dir = 'test/golden/images';
const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as Record<string, number[]>;

for (const f of ['rgb8.png', 'gray8.png', 'rgba8.png', 'rgb16.png', 'palette.png']) {
  test(`image: ${f} decodes as ImageMagick decodes it`, () => {
    const img = decodeImage(readFileSync(`${dir}/${f}`), f);
    assert.deepEqual([img.width, img.height], [17, 13]);
    assert.deepEqual(Array.from(img.rgb), expected[f]);
  });
}

test('image: JPEG decodes within 2 levels of ImageMagick (IDCTs differ in their last bit)', () => {
  const img = decodeImage(readFileSync(`${dir}/rgb.jpg`), 'rgb.jpg');
  const want = expected['rgb.jpg']!;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(img.rgb[i]! - want[i]!));
  assert.ok(worst <= 2, `max difference ${worst}`);
});

for (const [h, w] of [
  [7, 9],
  [26, 40],
  [13, 5],
]) {
  test(`image: bilinear resize to ${h}x${w} equals PyTorch's (half-pixel centres) to 1 level`, () => {
    const src = { width: 17, height: 13, rgb: Uint8Array.from(expected.source!) };
    const r = resizeBilinear(src, h!, w!);
    const want = expected[`resize_${h}x${w}`]!;
    let off = 0;
    for (let i = 0; i < want.length; i++) off = Math.max(off, Math.abs(r.rgb[i]! - want[i]!));
    // exact .5 cases may round either way after float error
    assert.ok(off <= 1, `max difference ${off}`);
  });
}

test('image: preprocessing lays out, reorders and normalises as stated', () => {
  const img = { width: 2, height: 1, rgb: Uint8Array.of(10, 20, 30, 40, 50, 60) };
  const p = validatePreprocess(
    {
      resize: { kind: 'none' },
      scale: 1,
      mean: [1, 2, 3],
      std: [2, 2, 2],
      channelOrder: 'bgr',
      layout: 'nchw',
    },
    't',
  );
  const t = preprocessImage(img, p);
  assert.deepEqual(t.dims, [1, 3, 1, 2]);
  // channel 0 is B: (30 - 1) / 2, (60 - 1) / 2; channel 1 G; channel 2 R
  assert.deepEqual(Array.from(t.data), [14.5, 29.5, 9, 24, 3.5, 18.5]);
  const nhwc = preprocessImage(img, { ...p, channelOrder: 'rgb', layout: 'nhwc' });
  assert.deepEqual(nhwc.dims, [1, 1, 2, 3]);
  assert.deepEqual(Array.from(nhwc.data), [4.5, 9, 13.5, 19.5, 24, 28.5]);
});

test('image: resize rules (limit to multiples, pad by aspect ratio)', () => {
  assert.deepEqual(resizedSize(1000, 500, { kind: 'limit', maxSide: 960, multiple: 32 }), {
    height: 960,
    width: 480,
    contentWidth: 480,
  });
  assert.deepEqual(resizedSize(20, 30, { kind: 'limit', maxSide: 960, multiple: 32 }), {
    height: 32,
    width: 32,
    contentWidth: 32,
  });
  assert.deepEqual(resizedSize(24, 48, { kind: 'pad', height: 48, width: 192 }), {
    height: 48,
    width: 192,
    contentWidth: 96,
  });
  const padded = preprocessImage(
    { width: 2, height: 2, rgb: new Uint8Array(12).fill(255) },
    validatePreprocess({ resize: { kind: 'pad', height: 2, width: 4, padValue: -1 } }, 't'),
  );
  assert.deepEqual(Array.from(padded.data.subarray(0, 4)), [1, 1, -1, -1]);
});

test('image: bad files and bad preprocessing are one-line MixqErrors naming the field', () => {
  assert.throws(
    () => decodeImage(Uint8Array.of(1, 2, 3, 4), 'x.bin'),
    /x\.bin: signature: not a PNG or JPEG/,
  );
  const png = readFileSync(`${dir}/rgb8.png`);
  assert.throws(
    () => decodeImage(png.subarray(0, 60), 'cut.png'),
    (e) => e instanceof MixqError && /cut\.png/.test(e.message),
  );
  assert.throws(
    () => validatePreprocess({ layout: 'chw' }, 'p.json'),
    /p\.json: layout: .*expected 'nchw' or 'nhwc'/,
  );
  assert.throws(() => validatePreprocess({ std: [1, 0, 1] }, 'p.json'), /p\.json: std\[1\]/);
  assert.throws(
    () => validatePreprocess({ resize: { kind: 'fixed', height: 0, width: 3 } }, 'p'),
    /resize\.height/,
  );
});

// Calibration folders: every sample form, the split rules, and a one-line error for each kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFeedFolder } from '../../src/io/feeds.node.ts';
import { type FeedInput, splitSamples } from '../../src/io/feeds.ts';
import { writeNpy } from '../../src/io/npy.ts';

const image: FeedInput[] = [{ name: 'x', type: 'float32', shape: ['n', 3, 'h', 'w'] }];
const twoInputs: FeedInput[] = [
  { name: 'input_ids', type: 'int64', shape: [1, 'seq'] },
  { name: 'past/key', type: 'float32', shape: [1, 2] },
];

function folder(): string {
  return mkdtempSync(join(tmpdir(), 'mixq-feeds-'));
}
const npyF32 = (shape: number[]) =>
  writeNpy({
    dtype: 'float32',
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
  });

test('feeds: .npy samples (batch dim optional), split 2:1:1 in name order', async () => {
  const d = folder();
  try {
    for (let i = 0; i < 8; i++) writeFileSync(join(d, `s${i}.npy`), npyF32(i % 2 ? [1, 3, 4, 5] : [3, 4, 5]));
    writeFileSync(join(d, 'README.md'), 'ignored');
    const s = await readFeedFolder(d, image);
    assert.deepEqual(
      s.calibration.map((x) => x.id),
      ['s0.npy', 's1.npy', 's4.npy', 's5.npy'],
    );
    assert.deepEqual(
      s.validation.map((x) => x.id),
      ['s2.npy', 's6.npy'],
    );
    assert.deepEqual(
      s.evaluation.map((x) => x.id),
      ['s3.npy', 's7.npy'],
    );
    assert.deepEqual(s.calibration[0]!.tensors.x!.dims, [1, 3, 4, 5]);
    assert.match(s.rule, /8 samples in name order/);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('feeds: JSON feeds and per-sample folders for a two-input model; explicit split folders', async () => {
  const d = folder();
  try {
    for (const split of ['calibration', 'validation', 'evaluation']) mkdirSync(join(d, split));
    writeFileSync(
      join(d, 'calibration', 'a.json'),
      JSON.stringify({ input_ids: [[1, 2, 3]], 'past/key': { dims: [1, 2], data: [0.5, 1] } }),
    );
    mkdirSync(join(d, 'validation', 'b'));
    writeFileSync(join(d, 'validation', 'b', 'input_ids.json'), JSON.stringify([[7, 8]]));
    writeFileSync(join(d, 'validation', 'b', 'past_key.npy'), npyF32([1, 2]));
    writeFileSync(
      join(d, 'evaluation', 'c.json'),
      JSON.stringify({ input_ids: [[4]], 'past/key': [[1, 2]] }),
    );
    const s = await readFeedFolder(d, twoInputs);
    const a = s.calibration[0]!.tensors;
    assert.deepEqual(Array.from(a.input_ids!.data as BigInt64Array), [1n, 2n, 3n]);
    assert.equal(a.input_ids!.type, 'int64');
    assert.deepEqual(Array.from(s.validation[0]!.tensors['past/key']!.data as Float32Array), [0, 1]);
    assert.equal(s.evaluation[0]!.id, 'evaluation/c.json');
    assert.match(s.rule, /calibration\/ \(1\)/);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('feeds: images with the folder preprocess.json', async () => {
  const d = folder();
  try {
    for (let i = 0; i < 4; i++) copyFileSync('test/golden/images/rgb8.png', join(d, `p${i}.png`));
    writeFileSync(
      join(d, 'preprocess.json'),
      JSON.stringify({
        resize: { kind: 'limit', maxSide: 960, multiple: 32 },
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        channelOrder: 'bgr',
      }),
    );
    const s = await readFeedFolder(d, image);
    assert.deepEqual(s.calibration[0]!.tensors.x!.dims, [1, 3, 32, 32]);
  } finally {
    rmSync(d, { recursive: true });
  }
});

test('feeds: bad folders are one-line errors naming the file and field', async () => {
  const d = folder();
  const cases: [() => void, RegExp, FeedInput[]][] = [
    [() => writeFileSync(join(d, 'a.txt'), 'x'), /a\.txt: extension: unexpected file 'a\.txt'/, image],
    [
      () => copyFileSync('test/golden/images/rgb8.png', join(d, 'a.png')),
      /a\.png: preprocess: images need a stated preprocessing/,
      image,
    ],
    [
      () => writeFileSync(join(d, 'a.npy'), npyF32([3, 4])),
      /a\.npy: x: shape \[3, 4\] has rank 2 \(expected rank 4/,
      image,
    ],
    [
      () => writeFileSync(join(d, 'a.npy'), npyF32([1, 2, 4, 4])),
      /a\.npy: x: shape \[1, 2, 4, 4\] has 2 at axis 1/,
      image,
    ],
    [
      () => writeFileSync(join(d, 'a.json'), JSON.stringify({ input_ids: [[1.5]], 'past/key': [[1, 2]] })),
      /a\.json: input_ids: value 1\.5 at index 0 is not an integer/,
      twoInputs,
    ],
    [
      () => writeFileSync(join(d, 'a.json'), JSON.stringify({ ids: [[1]] })),
      /a\.json: ids: 'ids' is not an input of the model/,
      twoInputs,
    ],
    [() => writeFileSync(join(d, 'a.json'), '{"input_ids": '), /a\.json: json: not valid JSON/, twoInputs],
    [
      () => writeFileSync(join(d, 'a.npy'), npyF32([1, 2])),
      /a\.npy: inputs: an \.npy file can feed a model with one input/,
      twoInputs,
    ],
    [
      () =>
        writeFileSync(
          join(d, 'a.npy'),
          writeNpy({ dtype: 'int32', shape: [1, 2], data: Int32Array.of(1, 2) }),
        ),
      /ok/,
      [{ name: 'x', type: 'string', shape: [1, 2] }],
    ],
  ];
  try {
    for (const [make, re, inputs] of cases) {
      rmSync(d, { recursive: true });
      mkdirSync(d);
      make();
      for (let i = 0; i < 3; i++) writeFileSync(join(d, `z${i}.json`), '{}');
      await assert.rejects(readFeedFolder(d, inputs), (e: Error) => {
        assert.ok(!e.message.includes('\n'), e.message);
        if (re.source !== 'ok') assert.match(e.message, re);
        return true;
      });
    }
    await assert.rejects(readFeedFolder(join(d, 'nope'), image), /nope: --calibration: no such folder/);
    assert.throws(() => splitSamples([], 'd'), /0 samples cannot be split/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

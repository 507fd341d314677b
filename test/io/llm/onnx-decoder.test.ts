// transformers.js folders: the decoder's past_key_values contract read from a real torch export's input
// and output names (test/golden/stories-onnx-names.json), the decoder file found in onnx/, the tokenizer
// and config read beside it; bad folders and graphs fail with one line.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hfFolderSource } from '../../../src/io/llm/hf-folder.node.ts';
import { decoderIo, openTransformersJsFolder } from '../../../src/io/llm/onnx-decoder.ts';

const golden = JSON.parse(readFileSync('test/golden/stories-onnx-names.json', 'utf8')) as {
  inputs: string[];
  outputs: string[];
};

test('decoder I/O of a real export: 5 layers of past_key_values, position_ids, no use_cache_branch', () => {
  const io = decoderIo(golden.inputs, golden.outputs, 'model.onnx');
  assert.equal(io.layers.length, 5);
  assert.deepEqual(io.layers[4], {
    pastKey: 'past_key_values.4.key',
    pastValue: 'past_key_values.4.value',
    presentKey: 'present.4.key',
    presentValue: 'present.4.value',
  });
  assert.equal(io.positionIds, 'position_ids');
  assert.equal(io.attentionMask, 'attention_mask');
  assert.equal(io.useCacheBranch, undefined);
  const merged = decoderIo(
    [...golden.inputs, 'use_cache_branch'],
    golden.outputs,
    'decoder_model_merged.onnx',
  );
  assert.equal(merged.useCacheBranch, 'use_cache_branch');
  assert.throws(
    () => decoderIo(['input_ids', 'attention_mask'], ['logits'], 'm.onnx'),
    /m\.onnx: graph\.input: no past_key_values inputs/,
  );
  assert.throws(
    () =>
      decoderIo(
        golden.inputs,
        golden.outputs.filter((o) => o !== 'present.2.value'),
        'm.onnx',
      ),
    /m\.onnx: graph\.output: no present\.2\.value output/,
  );
  assert.throws(() => decoderIo(['ids'], ['logits'], 'm.onnx'), /no input_ids input/);
});

test('transformers.js folder: onnx/model.onnx found, config and tokenizer read; missing decoder refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-tjs-'));
  try {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      cpSync(join('test/fixtures/stories-hf', f), join(dir, f));
    const open = async () => {
      const src = await hfFolderSource(dir);
      try {
        return await openTransformersJsFolder(src);
      } finally {
        await src.close();
      }
    };
    await assert.rejects(
      open(),
      /: onnx\/: no decoder ONNX in the folder \(expected onnx\/model\.onnx or onnx\/decoder_model_merged\.onnx/,
    );
    mkdirSync(join(dir, 'onnx'));
    writeFileSync(join(dir, 'onnx', 'decoder_model_merged.onnx'), 'x');
    assert.equal((await open()).onnxFile, 'onnx/decoder_model_merged.onnx');
    writeFileSync(join(dir, 'onnx', 'model.onnx'), 'x');
    const f = await open();
    assert.equal(f.onnxFile, 'onnx/model.onnx');
    assert.equal(f.config.numKvHeads, 4);
    // llama.cpp's ids for this text (node-llama-cpp model.tokenize on stories260K.gguf)
    assert.deepEqual(Array.from(f.tokenizer().encode('Once upon a time')), [403, 407, 261, 378]);
    rmSync(join(dir, 'tokenizer.json'));
    await assert.rejects(open(), /tokenizer\.json: no tokenizer\.json in the folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * ONNX as a `convert` input: every weight (initializers, Constant nodes, subgraph weights, external data,
 * sparse weights densified) must arrive in the safetensors / GGUF output with its shape and exact bytes,
 * checked against the ONNX reader's own decoding of each fixture (whose values the official onnx package
 * recorded, see onnx.test.ts).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  convertModel,
  listWeights,
  loadWeightFloat32,
  parseGguf,
  parseSafetensors,
} from '../../src/io/index.ts';
import { readOnnxFile } from '../../src/io/onnx/file.node.ts';
import { MixqError } from '../../src/core/errors.ts';
import { getBlockType } from '../../src/blocks/index.ts';
import { FIXTURES, OCR_REC } from './onnx-util.ts';

const f32 = (b: Uint8Array) => new Float32Array(b.slice().buffer);

function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

for (const name of ['mlp', 'constants', 'ifsub', 'external', 'sparse']) {
  test(`ONNX ${name} -> safetensors and GGUF: every weight, same shape and values`, async () => {
    const onnx = await readOnnxFile(`${FIXTURES}/${name}.onnx`);
    try {
      const weights = listWeights(onnx).filter((w) => w.dtype === 'f32' || w.sparse);
      assert.ok(weights.length > 0);
      const st = await parseSafetensors(
        concatChunks((await convertModel({ format: 'onnx', file: onnx }, 'safetensors')).chunks),
      );
      const gg = parseGguf(concatChunks((await convertModel({ format: 'onnx', file: onnx }, 'gguf')).chunks));
      for (const w of weights) {
        const want = await loadWeightFloat32(onnx, w);
        const s = st.tensors.find((t) => t.name === w.name);
        assert.ok(s, `${w.name} in safetensors`);
        assert.deepEqual(s.shape, w.dims);
        assert.equal(s.dtype, 'F32');
        assert.deepEqual(f32(await st.readTensorBytes(s)), want, `${w.name} safetensors values`);
        const g = gg.tensors.find((t) => t.name === w.name);
        assert.ok(g, `${w.name} in GGUF`);
        assert.deepEqual(g.shape, w.dims.length ? w.dims : [1]);
        assert.deepEqual(f32(await gg.readTensorBytes(g)), want, `${w.name} GGUF values`);
      }
    } finally {
      await onnx.close();
    }
  });
}

test("ONNX -> GGUF with --type f16 encodes the graph's quantizable weights; ggml block types are refused", async () => {
  const onnx = await readOnnxFile(OCR_REC);
  try {
    const r = await convertModel({ format: 'onnx', file: onnx }, 'gguf', { type: 'f16' });
    const gg = parseGguf(concatChunks(r.chunks));
    const quantized = r.tensors.filter((t) => t.action === 'quantize');
    assert.equal(quantized.length, 41, 'the 41 quantizable Conv/MatMul weights of PP-OCRv4 rec');
    for (const t of quantized) {
      const w = listWeights(onnx).find((x) => x.name === t.name)!;
      const g = gg.tensors.find((x) => x.name === t.name)!;
      assert.equal(g.type.name.toLowerCase(), 'f16');
      assert.deepEqual(
        await gg.readTensorBytes(g),
        getBlockType('f16').encode(await loadWeightFloat32(onnx, w)),
      );
    }
    await assert.rejects(
      convertModel({ format: 'onnx', file: onnx }, 'gguf', { type: 'q4_k' }),
      (e: unknown) => e instanceof MixqError && /ONNX weights cannot be converted to Q4_K/.test(e.message),
    );
  } finally {
    await onnx.close();
  }
});

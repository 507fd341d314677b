/**
 * What the kernels hold in memory and where it comes from: a prepared weight takes the bytes its file
 * stores (codes, scales, zero codes) when K is a multiple of the layout's block and rows of the tile, so
 * repacking at load costs no memory at run time; and mixq's ONNX bit-plane packed weights (src/export/onnx
 * packed.ts) prepare to the same decoded values as the graph computes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f32ToF16Bits } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import { packBitPlanes, packedFromQuantizer } from '../../src/export/onnx/packed.ts';
import { getFormat } from '../../src/formats/index.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { BLOCK_TYPES } from '../../src/blocks/registry.ts';
import { hasQ8Code128, storedGgmlRow } from '../../src/kernels/ggml.ts';
import { DOT } from '../../src/kernels/layout.ts';
import { storedSlicedRow } from '../../src/kernels/sliced.ts';
import { exactActivations, ggmlCase, type MixqSpec, mixqCase } from './cases.ts';

const k = await createKernels();

test('prepared weights hold their stored bytes (aligned shapes)', async () => {
  const rows = 64;
  const cols = 512;
  const specs: [MixqSpec, number][] = [
    // [spec, bytes the file stores: codes + scales (+ zero codes)]
    [
      { format: 'uint4', groups: 32, scaleFormat: 'fp16', symmetric: false },
      (rows * cols) / 2 + ((rows * cols) / 32) * 2 + (rows * cols) / 64,
    ],
    [
      { format: 'uint3', groups: 128, scaleFormat: 'fp16', symmetric: true },
      (rows * cols * 3) / 8 + ((rows * cols) / 128) * 2,
    ],
    [
      { format: 'int6', groups: 'row', scaleFormat: 'fp32', symmetric: true },
      (rows * cols * 6) / 8 + rows * 4,
    ],
    [
      { format: 'fp4_e2m1fn', groups: 32, scaleFormat: 'e8m0', symmetric: true },
      (rows * cols) / 2 + (rows * cols) / 32,
    ],
    [
      { format: 'fp4_e2m1fn', groups: 16, scaleFormat: 'fp8_e4m3fn', symmetric: true },
      (rows * cols) / 2 + (rows * cols) / 16,
    ],
    [{ format: 'int8', groups: 'row', scaleFormat: 'fp32', symmetric: true }, rows * cols + rows * 4],
    [
      { format: 'uint2', groups: 32, scaleFormat: 'fp16', symmetric: true, lut: true },
      (rows * cols) / 4 + ((rows * cols) / 32) * 2,
    ],
  ];
  for (const [s, stored] of specs) {
    const c = await mixqCase(s, rows, cols);
    const w = k.prepare(c.source, c.options);
    // element tables of float formats (<= 64 bytes each) are the only extra
    const tables = s.format.startsWith('fp') ? 128 : 0;
    assert.ok(
      w.bytes >= stored && w.bytes <= stored + tables,
      `${c.name}: ${w.bytes} bytes held, ${stored} stored`,
    );
    k.release(w);
  }
  for (const t of ['Q4_K', 'Q8_0', 'Q6_K', 'Q2_K', 'Q3_K', 'Q5_K'] as const) {
    const data = BLOCK_TYPES[t].encode(new Float32Array(rows * cols).fill(0.5));
    const w = k.prepare({ kind: 'ggml', type: t, rows, cols, data });
    assert.equal(w.bytes, data.length, `${t}: GGUF bytes held as they are`);
    k.release(w);
  }
});

test("mixq's ONNX bit-plane packed weights prepare to the graph's decoded values", () => {
  const rng = new Rng(8);
  const rows = 19;
  const cols = 200;
  const W = Float32Array.from({ length: rows * cols }, () => rng.nextNormal());
  for (const [format, symmetric] of [
    ['uint3', false],
    ['fp6_e2m3fn', true],
    ['nf4', true],
  ] as const) {
    const q = packedFromQuantizer(W, rows, cols, {
      element: getFormat(format),
      granularity: { kind: 'group', axis: 1, size: 32 },
      symmetric,
      scaleFormat: 'fp16',
    });
    const scales = new Uint8Array(2 * q.scale.length);
    q.scale.forEach((v, i) => {
      const h = f32ToF16Bits(v);
      scales[2 * i] = h & 255;
      scales[2 * i + 1] = h >> 8;
    });
    // zero codes (asymmetric integers): W.zeros's packing, an LSB-first stream of `bits` per group
    const zc = Array.from(q.zero, (z) => z - (q.grid.kind === 'int' ? q.grid.codeBase : 0));
    const zeros = new Uint8Array(Math.ceil((zc.length * q.bits) / 8));
    zc.forEach((z, i) => {
      for (let b = 0; b < q.bits; b++)
        if ((z >> b) & 1) zeros[(i * q.bits + b) >> 3]! |= 1 << ((i * q.bits + b) & 7);
    });
    const w = k.prepare({
      kind: 'mixq',
      rows,
      cols,
      element: format,
      groups: 32,
      scaleFormat: 'fp16',
      symmetric,
      codes: packBitPlanes(q.codes, q.bits),
      codeLayout: 'planes',
      scales,
      ...(symmetric ? {} : { zeros }),
    });
    for (let r = 0; r < rows; r++) {
      const row = k.decodeRow(w, r);
      for (let c = 0; c < cols; c++) assert.equal(row[c], q.dequant[r * cols + c], `${format} (${r}, ${c})`);
    }
    k.release(w);
  }
});

test('Q8_0 weights with a code of -128 take the widening dot, a 0x80 scale byte does not', () => {
  const blocks = new Uint8Array(34 * 5);
  assert.equal(hasQ8Code128(blocks), false);
  blocks[34 * 2 + 1] = 0x80; // a scale's high byte: -0 (no code)
  blocks[34 * 3] = 0x80;
  assert.equal(hasQ8Code128(blocks), false);
  for (const at of [2, 33]) {
    const b = blocks.slice();
    b[34 * 4 + at] = 0x80;
    assert.equal(hasQ8Code128(b), true, `code byte ${at}`);
  }
  const w = k.prepare({ kind: 'ggml', type: 'Q8_0', rows: 5, cols: 32, data: blocks });
  assert.equal(k.descOf(w).dotClass, DOT.u6);
  blocks[34 * 4 + 7] = 0x80;
  const w2 = k.prepare({ kind: 'ggml', type: 'Q8_0', rows: 5, cols: 32, data: blocks });
  assert.equal(k.descOf(w2).dotClass, DOT.full8);
});

test('Q4_0 / IQ4_NL / Q8_0 and the K-quants are repacked into 4-row interleaved tiles of the same size; the reference undoes it', () => {
  for (const type of ['Q4_0', 'IQ4_NL', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const) {
    const c = ggmlCase(type, false, 9); // two full tiles and one row that stays as stored
    if (c.source.kind !== 'ggml') throw new Error('ggml case');
    const input = c.source.data;
    const copy = input.slice();
    const rowBytes = input.length / 9;
    for (const inPlace of [false, true]) {
      let data = input;
      if (inPlace) {
        // bytes already in kernel memory are repacked where they lie
        const p = k.memory.alloc(input.length);
        k.memory.bytes().set(input, p);
        data = k.memory.bytes().subarray(p, p + input.length);
      }
      const w = k.prepare({ ...c.source, data });
      const d = k.descOf(w);
      assert.equal(d.aux, 4, type);
      if (inPlace) assert.equal(d.data, data.byteOffset, `${type}: repacked in place`);
      const mem = k.memory.bytes();
      const held = mem.subarray(d.data, d.data + input.length);
      assert.notDeepEqual(
        held.subarray(0, 8 * rowBytes),
        input.subarray(0, 8 * rowBytes),
        `${type} repacked`,
      );
      assert.deepEqual(
        held.subarray(8 * rowBytes),
        input.subarray(8 * rowBytes),
        `${type}: last tile as stored`,
      );
      for (let r = 0; r < 9; r++)
        assert.deepEqual(
          storedGgmlRow(mem, d, r),
          input.subarray(r * rowBytes, (r + 1) * rowBytes),
          `${type} row ${r}`,
        );
      k.release(w);
    }
    assert.deepEqual(input, copy, `${type}: input untouched`);
  }
});

test("layout 'stored' keeps ggml blocks as the file stores them; products equal the interleaved tiles'", () => {
  for (const type of ['Q4_0', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const) {
    const c = ggmlCase(type, false, 9);
    if (c.source.kind !== 'ggml') throw new Error('ggml case');
    const input = c.source.data;
    const stored = k.prepare(c.source, { layout: 'stored' });
    const tiled = k.prepare(c.source);
    const d = k.descOf(stored);
    assert.equal(d.aux, 0, type);
    assert.deepEqual(k.memory.bytes().subarray(d.data, d.data + input.length), input, `${type}: as stored`);
    const x = new Float32Array(c.source.cols).map((_, i) => Math.sin(i + 1));
    // float32 activations: the same decoded blocks in the same order, bit for bit
    assert.deepEqual(k.matvec(stored, x, { mode: 'f32' }), k.matvec(tiled, x, { mode: 'f32' }), type);
    // int8 modes: the same exact integer sums, scaled in another float32 order
    for (const mode of stored.modes) {
      const a = k.matvec(stored, x, { mode });
      const b = k.matvec(tiled, x, { mode });
      for (let r = 0; r < a.length; r++)
        assert.ok(Math.abs(a[r]! - b[r]!) <= 1e-5 * (1 + Math.abs(b[r]!)), `${type} ${mode} row ${r}`);
    }
    k.release(stored);
    k.release(tiled);
  }
});

test('interleaved Q8_0 tiles with codes of -128 give exact sums', async () => {
  const rows = 8;
  const c = ggmlCase('Q8_0', true, rows); // scales 2^-8: with dyadic activations every sum is exact
  if (c.source.kind !== 'ggml') throw new Error('ggml case');
  const data = c.source.data.slice();
  for (let o = 0; o < data.length; o += 34) data[o + 2 + ((o / 34) % 32)] = 0x80;
  const W = BLOCK_TYPES.Q8_0.decode(data, rows * c.source.cols);
  const x = exactActivations(c.source.cols, 1, 5);
  for (const relaxed of [false, true]) {
    const kk = relaxed ? await createKernels({ relaxed: true }).catch(() => undefined) : k;
    if (!kk) continue; // no relaxed SIMD in this engine (differential.test.ts runs it in a child)
    const w = kk.prepare({ ...c.source, data });
    assert.equal(kk.descOf(w).dotClass, DOT.full8);
    const y = kk.matvec(w, x, { mode: 'q8' });
    for (let r = 0; r < rows; r++) {
      let want = 0;
      for (let i = 0; i < c.source.cols; i++) want += W[r * c.source.cols + i]! * x[i]!;
      assert.equal(y[r], want, `${kk.variant} row ${r}`);
    }
    kk.release(w);
  }
});

test("mixq weights with an int8 path are repacked into 4-row interleaved tiles of the same size; layout 'stored' keeps the rows; the reference undoes it; products are bit-identical", async () => {
  const specs: MixqSpec[] = [
    { format: 'uint4', groups: 32, scaleFormat: 'fp16', symmetric: false },
    { format: 'int3', groups: 16, scaleFormat: 'fp16', symmetric: true },
    { format: 'uint5', groups: 32, scaleFormat: 'fp16', symmetric: false },
    { format: 'int8', groups: 'row', scaleFormat: 'fp32', symmetric: true },
    { format: 'fp4_e2m1fn', groups: 16, scaleFormat: 'fp8_e4m3fn', symmetric: true }, // NVFP4
    { format: 'fp6_e2m3fn', groups: 32, scaleFormat: 'e8m0', symmetric: true },
  ];
  const rows = 9; // two full tiles and one row that stays as stored
  for (const spec of specs) {
    const c = await mixqCase(spec, rows, 300);
    const name = `${String(spec.format)} g${spec.groups}`;
    const tiled = k.prepare(c.source);
    const stored = k.prepare(c.source, { layout: 'stored' });
    const dt = k.descOf(tiled);
    const ds = k.descOf(stored);
    assert.equal(dt.interleave, 4, name);
    assert.equal(ds.interleave, 0, name);
    assert.equal(tiled.bytes, stored.bytes, `${name}: same size`);
    const mem = k.memory.bytes();
    const n = rows * dt.rowBytes;
    const a = mem.subarray(dt.data, dt.data + n);
    const b = mem.subarray(ds.data, ds.data + n);
    assert.notDeepEqual(a.subarray(0, 8 * dt.rowBytes), b.subarray(0, 8 * dt.rowBytes), `${name} repacked`);
    assert.deepEqual(
      a.subarray(8 * dt.rowBytes),
      b.subarray(8 * dt.rowBytes),
      `${name}: last tile as stored`,
    );
    for (let r = 0; r < rows; r++)
      assert.deepEqual(storedSlicedRow(mem, dt, r), storedSlicedRow(mem, ds, r), `${name} row ${r}`);
    // the integer sums are exact and scaled in the same float32 order: every product bit for bit
    const x = new Float32Array(5 * 300).map((_, i) => Math.sin(i + 1));
    for (const mode of tiled.modes)
      for (const batch of [1, 5])
        assert.deepEqual(
          k.matmul(tiled, x.subarray(0, batch * 300), batch, { mode }),
          k.matmul(stored, x.subarray(0, batch * 300), batch, { mode }),
          `${name} ${mode} batch ${batch}`,
        );
    k.release(tiled);
    k.release(stored);
  }
  // weights with no int8 path (float32 only) keep their rows as stored
  const fp8 = await mixqCase(
    { format: 'fp8_e4m3fn', groups: 'row', scaleFormat: 'fp32', symmetric: true },
    rows,
    300,
  );
  const w = k.prepare(fp8.source);
  assert.equal(k.descOf(w).interleave, 0);
  k.release(w);
});

/**
 * Block formats defined once: the scaled-group quantizer of src/quant, for the schemes called MXFP4 and
 * NVFP4 (and every MX element), gives exactly the codes of src/blocks' table rows (OCP MX under the spec's
 * floor rule; NVFP4 with ModelOpt's per-tensor scale), bit for bit: scale codes, element codes (signed
 * zeros included), the tensor scale; and the same dequantized values (quant's grids read a -0 code as 0).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MXFP4_RTN, NVFP4_RTN } from '../../src/analysis/sensitivity/candidates.ts';
import { quantizeScheme } from '../../src/analysis/sensitivity/apply-scheme.ts';
import { MX_FORMATS, mxEncode, mxFakeQuant, type MxFormatName } from '../../src/blocks/mx.ts';
import { nvfp4AutoTensorScale, nvfp4Encode, nvfp4FakeQuant } from '../../src/blocks/nvfp4.ts';
import { BLOCK_FORMATS, getBlockFormat } from '../../src/blocks/registry.ts';
import { Rng } from '../../src/core/rng.ts';
import { getFormat, unpackCodes } from '../../src/formats/index.ts';
import { rowLayout } from '../../src/quant/layout.ts';
import { type GptqConfig, gptq, gptqHessian, gptqReference } from '../../src/quant/algorithms/gptq.ts';
import { blockOf, chooseQParams, type QuantizerConfig } from '../../src/quant/qparams.ts';
import { createMatrixPool } from '../../src/runtime/matrix-pool.node.ts';
import { dequantize, quantize } from '../../src/quant/quantizer.ts';
import { quantizerOf } from '../../src/quant/scheme.ts';

/** Equal as numbers (a -0 of blocks' decoders is quant's 0). */
const same = (a: number | undefined, b: number | undefined, what: string) =>
  assert.ok(a === b, `${what}: ${a} vs ${b}`);

/** Rows of Gaussian weights with a few outliers, exact powers of two, an all-zero group and a tiny group. */
function weights(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: rows * cols }, () => 0.05 * rng.nextNormal());
  for (let k = 0; k < 8; k++) x[rng.nextU32() % x.length] = (rng.nextFloat() - 0.5) * 4;
  x.fill(0, 0, 32); // an all-zero group (MX) / two zero blocks (NVFP4)
  x[40] = 0.25; // an exact power of two at a block maximum
  for (let i = 64; i < 80; i++) x[i] = 1e-12 * (i - 70); // far below the tensor maximum (NVFP4 zero scale)
  return x;
}

test('MX: quant codes = blocks/mx.ts codes under the spec floor rule, for every MX float element', () => {
  const rows = 6;
  const cols = 96;
  for (const name of [
    'mxfp4_e2m1',
    'mxfp6_e3m2',
    'mxfp6_e2m3',
    'mxfp8_e4m3',
    'mxfp8_e5m2',
  ] as MxFormatName[]) {
    const fmt = MX_FORMATS[name];
    const x = weights(rows, cols, 3);
    const cfg: QuantizerConfig = {
      element: getFormat(fmt.element.name),
      granularity: { kind: 'group', axis: 1, size: 32 },
      symmetric: true,
      scaleFormat: 'e8m0',
    };
    const p = chooseQParams(x, [rows, cols], cfg);
    const q = quantize(x, p);
    const deq = dequantize(q);
    for (let r = 0; r < rows; r++) {
      const row = x.subarray(r * cols, (r + 1) * cols);
      const bytes = mxEncode(fmt, row);
      const want = mxFakeQuant(fmt, row);
      for (let b = 0; b < cols / 32; b++) {
        const o = b * fmt.bytesPerBlock;
        assert.equal(p.scaleCodes[r * 3 + b], bytes[o], `${name} scale code of row ${r} block ${b}`);
        const codes = unpackCodes(bytes.subarray(o + 1, o + fmt.bytesPerBlock), fmt.elementBits, 32);
        for (let i = 0; i < 32; i++)
          assert.equal(q.codes[r * cols + 32 * b + i], codes[i], `${name} element ${r},${32 * b + i}`);
      }
      for (let i = 0; i < cols; i++) same(deq[r * cols + i], want[i], `${name} value ${r},${i}`);
    }
  }
});

test('NVFP4: quant codes = blocks/nvfp4.ts codes with the per-tensor scale amax / (6 * 448)', () => {
  const rows = 5;
  const cols = 64;
  const x = weights(rows, cols, 7);
  const cfg = quantizerOf(NVFP4_RTN);
  const p = chooseQParams(x, [rows, cols], cfg);
  const g = nvfp4AutoTensorScale(x);
  assert.deepEqual(Array.from(p.scaleShared), [g]);
  const q = quantize(x, p);
  const deq = dequantize(q);
  let zeroBlocks = 0;
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const { bytes } = nvfp4Encode(row, { tensorScale: g });
    const want = nvfp4FakeQuant(row, { tensorScale: g });
    for (let b = 0; b < cols / 16; b++) {
      assert.equal(p.scaleCodes[r * 4 + b], bytes[9 * b], `scale code of row ${r} block ${b}`);
      if (bytes[9 * b] === 0) zeroBlocks++;
      for (let j = 0; j < 8; j++) {
        const byte = bytes[9 * b + 1 + j]!;
        const i = r * cols + 16 * b + 2 * j;
        assert.equal(q.codes[i], byte & 0xf, `element ${i}`);
        assert.equal(q.codes[i + 1], byte >> 4, `element ${i + 1}`);
      }
    }
    for (let i = 0; i < cols; i++) same(deq[r * cols + i], want[i], `value ${r},${i}`);
  }
  assert.ok(zeroBlocks > 0, 'a block whose scale rounds to 0 is covered');
});

test('the pipeline schemes MXFP4 and NVFP4 simulate the blocks table rows (row frame of a MatMul weight)', () => {
  const L = rowLayout([96, 8], 1); // MatMul B [K = 96, N = 8]: 8 rows of 96
  const W = weights(L.rows, L.cols, 11);
  const mx = quantizeScheme(W, L, MXFP4_RTN);
  const nv = quantizeScheme(W, L, NVFP4_RTN);
  const g = nvfp4AutoTensorScale(W);
  for (let r = 0; r < L.rows; r++) {
    const row = W.subarray(r * L.cols, (r + 1) * L.cols);
    const wantMx = mxFakeQuant('mxfp4_e2m1', row);
    const wantNv = nvfp4FakeQuant(row, { tensorScale: g });
    for (let i = 0; i < L.cols; i++) {
      same(mx[r * L.cols + i], wantMx[i], `mxfp4 ${r},${i}`);
      same(nv[r * L.cols + i], wantNv[i], `nvfp4 ${r},${i}`);
    }
  }
});

test('the block-format table: ggml types, every MX format under its four scale rules, NVFP4', () => {
  for (const t of ['Q4_K', 'Q8_0', 'MXFP4', 'F16']) assert.ok(BLOCK_FORMATS[t]?.ggmlTypeId !== undefined, t);
  const x = weights(1, 64, 5);
  for (const name of Object.keys(MX_FORMATS) as MxFormatName[])
    for (const rule of ['floor', 'ceil', 'even', 'rceil'] as const) {
      const row = getBlockFormat(rule === 'floor' ? name : `${name}-${rule}`);
      assert.equal(row.family, 'mx');
      assert.equal(row.scaling?.rule, rule);
      assert.deepEqual(
        row.decode(row.encode(x), x.length),
        mxFakeQuant(name, x, { scaleRule: rule }),
        `${row.name} round trip`,
      );
    }
  const nv = getBlockFormat('nvfp4');
  assert.equal(nv.bytesPerBlock, 9);
  assert.deepEqual(nv.decode(nv.encode(x), x.length), nvfp4FakeQuant(x));
});

/** GPTQ's configuration of a block scheme (its quantizer in groups along the row). */
function gptqConfigOf(cfg: QuantizerConfig): GptqConfig {
  const g = cfg.granularity;
  assert.ok(g.kind === 'group');
  return {
    element: cfg.element,
    symmetric: cfg.symmetric,
    groupSize: g.size,
    ...(cfg.scaleFormat ? { scaleFormat: cfg.scaleFormat } : {}),
  };
}

test('GPTQ of MXFP4 / NVFP4 takes the table scales: diagonal H = the RTN block quantizer bit for bit; pool = one thread', async () => {
  const rows = 12;
  const cols = 96;
  const W = weights(rows, cols, 13);
  const rng = new Rng(17);
  const diag = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) diag[i * cols + i] = 0.5 + rng.nextFloat();
  // a full H from correlated inputs, to exercise the error feedback and the groups chosen inside blocks
  const n = 200;
  const X = Float32Array.from({ length: n * cols }, () => rng.nextNormal());
  for (let s = 0; s < n; s++) for (let j = 1; j < cols; j++) X[s * cols + j]! += 0.5 * X[s * cols + j - 1]!;
  const H = gptqHessian(X, n, cols);
  const pool = await createMatrixPool({ threads: 2 });
  try {
    for (const scheme of [MXFP4_RTN, NVFP4_RTN]) {
      const cfg = quantizerOf(scheme);
      const gcfg = { ...gptqConfigOf(cfg), blockSize: 32 };
      const rtn = dequantize(quantize(W, chooseQParams(W, [rows, cols], cfg)));
      const name = scheme.format;
      for (const [what, r] of [
        ['fast', gptq(W, rows, cols, diag, gcfg)],
        ['reference', gptqReference(W, rows, cols, diag, gcfg)],
      ] as const)
        for (let i = 0; i < W.length; i++) same(r.Q[i], rtn[i], `${name} ${what} diagonal H ${i}`);
      // full H: one thread and two give the same bytes; every scale is one the table's rule can give
      const one = gptq(W, rows, cols, H, gcfg);
      const two = gptq(W, rows, cols, H, { ...gcfg, engine: pool });
      assert.deepEqual(two.Q, one.Q, `${name} pool Q`);
      assert.deepEqual(two.codes, one.codes, `${name} pool codes`);
      assert.deepEqual(two.scale, one.scale, `${name} pool scales`);
      const ref = gptqReference(W, rows, cols, H, gcfg);
      const block = blockOf(cfg)!;
      const t = block.tensorScale(W);
      // the rule maps a block whose largest |x| is 6 s (E2M1's max times s) to s itself
      for (const sc of one.scale)
        assert.equal(block.blockScale(sc * 6, t).scale, sc, `${name}: scale ${sc} is a table scale`);
      let differ = 0;
      for (let i = 0; i < W.length; i++) if (ref.Q[i] !== one.Q[i]) differ++;
      assert.ok(differ <= W.length / 50, `${name}: fast and reference GPTQ agree (${differ} values differ)`);
    }
  } finally {
    await pool.close();
  }
});

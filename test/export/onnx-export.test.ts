/**
 * Quantized ONNX export on a small MatMul-heavy model built in TypeScript (onnx-export-util.ts): every
 * scheme is loaded and run in onnxruntime-node and compared with the float graph whose weights are the
 * fake-quantized values; the stored bytes are checked against the operator specs' storage formula; the
 * byte layouts are decoded by hand here (not with the exporter's packer); the simulation is checked
 * against src/quant's own fakeQuant.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/bits.ts';
import { intSpec } from '../../src/formats/index.ts';
import {
  autoAssignments,
  fakeQuantizeOnnxWeights,
  type QuantizedOnnx,
  quantizeBlocks,
  quantizeOnnxWeights,
  type WeightAssignments,
} from '../../src/export/onnx/index.ts';
import {
  getTensorFloat32,
  listWeights,
  type OnnxModel,
  readOnnx,
  tensorBytes,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import { fakeQuant } from '../../src/quant/index.ts';
import fc from 'fast-check';
import {
  buildMixModel,
  expectedStorage,
  MIX_SHAPES,
  maxDiff,
  mixFeeds,
  runModel,
} from './onnx-export-util.ts';
import { fixture, ort } from '../io/onnx-util.ts';
import { schemeId } from '../../src/analysis/sensitivity/candidates.ts';
import { quantizeScheme } from '../../src/analysis/sensitivity/apply-scheme.ts';
import { onnxAssignment, onnxStorage, rtnWithBlocks } from '../../src/export/onnx/assign.ts';
import { TARGETS } from '../../src/pipeline/quantize/targets.ts';
import { rowLayout, toRows } from '../../src/quant/layout.ts';
import { hasScaleSearch, representable, type Scheme, schemeOnTensor } from '../../src/quant/scheme.ts';

/** Tolerance of |quantized run - simulated run|, relative to max |output|. */
const REL_TOL = 1e-4;

const mix = buildMixModel();
const feeds = mixFeeds();

/** [rows, cols] of each weight in the operators' row order (N x K, V x D, O x inner). */
const ROWS_COLS: Record<string, [number, number]> = {
  'fc1.weight': [72, 64],
  'fc2.weight': [48, 72],
  'gemm1.weight': [32, 48],
  'gemm2.weight': [16, 48],
  'conv.weight': [8, 27],
  'emb.weight': [40, 64],
};

function initBytes(model: OnnxModel, weight: string): { codes: number; scales: number; zeroPoints: number } {
  const r = { codes: 0, scales: 0, zeroPoints: 0 };
  for (const t of model.proto.graph?.initializer ?? []) {
    if (!t.name.startsWith(`${weight}_`)) continue;
    const n = tensorBytes(t).length;
    if (t.name.endsWith('_zp')) r.zeroPoints += n;
    else if (t.name.includes('_scale')) r.scales += n;
    else r.codes += n;
  }
  return r;
}

/** Exports, re-reads the written bytes, runs both models and checks outputs and storage. */
async function checkExport(
  assignments: WeightAssignments,
  label: string,
): Promise<{ q: QuantizedOnnx; diff: number; scale: number }> {
  const q = await quantizeOnnxWeights(mix, assignments);
  const qBytes = writeOnnx(q.model);
  const written = readOnnx(qBytes);
  const sim = await fakeQuantizeOnnxWeights(mix, assignments);
  const got = await runModel(qBytes, feeds);
  const want = await runModel(writeOnnx(sim), feeds);
  const { diff, scale, worst } = maxDiff(got, want);
  assert.ok(diff <= REL_TOL * scale, `${label}: max diff ${diff} on ${worst} (output scale ${scale})`);
  // the simulation is really quantized (not the float model by mistake)
  const float = await runModel(writeOnnx(mix), feeds);
  assert.ok(maxDiff(want, float).diff > 1e-4, `${label}: simulation equals the float model`);
  for (const w of q.weights) {
    const a = assignments[w.name]!;
    const [rows, cols] = ROWS_COLS[w.name]!;
    const perChannel = w.name === 'conv.weight' || a.granularity === 'channel';
    const exp = expectedStorage(
      w.op as 'MatMulNBits',
      rows,
      cols,
      a.bits ?? 4,
      perChannel ? cols : (a.blockSize ?? 32),
      a.symmetric ?? true,
      a.scaleType === 'float16' ? 2 : 4,
    );
    assert.deepEqual(initBytes(written, w.name), exp, `${label}: ${w.name} stored bytes`);
    assert.deepEqual(
      { codes: w.codeBytes, scales: w.scaleBytes, zeroPoints: w.zeroPointBytes },
      exp,
      `${label}: ${w.name} reported bytes`,
    );
    // the float weight is gone
    assert.ok(!listWeights(written).some((x) => x.name === w.name), `${label}: ${w.name} still stored`);
  }
  return { q, diff, scale };
}

const MATMUL_CASES: [string, WeightAssignments][] = [
  [
    'MatMulNBits 4-bit sym b32 + asym b16 (K=72 padded)',
    {
      'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 32 },
      'fc2.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 16, symmetric: false },
    },
  ],
  [
    'MatMulNBits 8-bit b64 + asym b32 fp16 scales',
    {
      'fc1.weight': { scheme: 'matmulnbits', bits: 8, blockSize: 64 },
      'fc2.weight': { scheme: 'matmulnbits', bits: 8, blockSize: 32, symmetric: false, scaleType: 'float16' },
    },
  ],
  [
    'MatMulNBits 2-bit (CPU provider) sym b16 + asym b32',
    {
      'fc1.weight': { scheme: 'matmulnbits', bits: 2, blockSize: 16 },
      'fc2.weight': { scheme: 'matmulnbits', bits: 2, blockSize: 32, symmetric: false },
    },
  ],
  [
    'MatMulNBits 4-bit b128 / b256 (one padded block)',
    {
      'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 128, symmetric: false },
      'fc2.weight': { scheme: 'matmulnbits', bits: 8, blockSize: 256 },
    },
  ],
  [
    'DequantizeLinear int4 b32 / uint4 b16 on MatMul (opset 17 -> 21)',
    {
      'fc1.weight': { scheme: 'dequantizelinear', bits: 4, blockSize: 32 },
      'fc2.weight': { scheme: 'dequantizelinear', bits: 4, blockSize: 16, symmetric: false },
    },
  ],
  [
    'DequantizeLinear on Gemm transB=1 int8 / transB=0 uint4, fp16 scales',
    {
      'gemm1.weight': { scheme: 'dequantizelinear', bits: 8, blockSize: 16 },
      'gemm2.weight': {
        scheme: 'dequantizelinear',
        bits: 4,
        blockSize: 32,
        symmetric: false,
        scaleType: 'float16',
      },
    },
  ],
  [
    'DequantizeLinear per output channel: Conv int4 asym, MatMul int8',
    {
      'conv.weight': { scheme: 'dequantizelinear', bits: 4, symmetric: false },
      'fc1.weight': { scheme: 'dequantizelinear', bits: 8, granularity: 'channel' },
    },
  ],
  [
    'GatherBlockQuantized 4-bit sym b16',
    { 'emb.weight': { scheme: 'gatherblockquantized', bits: 4, blockSize: 16 } },
  ],
  [
    'GatherBlockQuantized 8-bit asym b32 fp16 scales',
    {
      'emb.weight': {
        scheme: 'gatherblockquantized',
        bits: 8,
        blockSize: 32,
        symmetric: false,
        scaleType: 'float16',
      },
    },
  ],
  [
    'DequantizeLinear + Gather (the portable embedding path) uint4 b16',
    { 'emb.weight': { scheme: 'dequantizelinear', bits: 4, blockSize: 16, symmetric: false } },
  ],
];

for (const [label, a] of MATMUL_CASES) {
  test(`export runs in onnxruntime and matches the simulation: ${label}`, async () => {
    await checkExport(a, label);
  });
}

test('mixed precision in one graph: six weights, four operators, biases and opset changes checked', async () => {
  const a: WeightAssignments = {
    'emb.weight': { scheme: 'gatherblockquantized', bits: 4, blockSize: 32, symmetric: false },
    'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 32 },
    'fc2.weight': { scheme: 'matmulnbits', bits: 8, blockSize: 16, symmetric: false, scaleType: 'float16' },
    'gemm1.weight': { scheme: 'dequantizelinear', bits: 4, blockSize: 16 },
    'gemm2.weight': { scheme: 'dequantizelinear', bits: 8, blockSize: 16, symmetric: false },
    'conv.weight': { scheme: 'dequantizelinear', bits: 8 },
    'gemm1.bias': { scheme: 'keep' },
  };
  const { q } = await checkExport(a, 'mixed');
  const ops = q.model.proto.graph!.node.map((n) => `${n.domain}:${n.op_type}`);
  for (const op of ['com.microsoft:MatMulNBits', 'com.microsoft:GatherBlockQuantized', ':DequantizeLinear'])
    assert.ok(ops.includes(op), op);
  assert.ok(ops.includes(':ReduceMean'));
  const opsets = Object.fromEntries(q.model.proto.opset_import.map((o) => [o.domain, Number(o.version)]));
  assert.deepEqual(opsets, { '': 21, 'com.microsoft': 1 });
  assert.ok(Number(q.model.proto.ir_version) >= 10);
  // ReduceMean's axes moved from the attribute to an input (opset 18)
  const rm = q.model.proto.graph!.node.find((n) => n.op_type === 'ReduceMean')!;
  assert.equal(rm.input.length, 2);
  assert.ok(!rm.attribute.some((x) => x.name === 'axes'));
  // biases untouched, bit for bit
  for (const name of ['gemm1.bias', 'conv.bias']) {
    const before = listWeights(mix).find((w) => w.name === name)!;
    const after = listWeights(q.model).find((w) => w.name === name)!;
    assert.deepEqual(tensorBytes(after.tensor), tensorBytes(before.tensor), name);
  }
  // the one-pass simulation equals fakeQuantizeOnnxWeights byte for byte
  const both = await quantizeOnnxWeights(mix, a, { simulation: true });
  assert.deepEqual(writeOnnx(both.simulation!), writeOnnx(await fakeQuantizeOnnxWeights(mix, a)));
  assert.deepEqual(writeOnnx(both.model), writeOnnx(q.model));
  // the input model is not modified
  assert.deepEqual(writeOnnx(mix), writeOnnx(buildMixModel()));
});

test('default onnxruntime session options: the DequantizeLinear->MatMul fusion (int8 activations) stays within 1%', async () => {
  const a: WeightAssignments = {
    'fc2.weight': { scheme: 'dequantizelinear', bits: 8, blockSize: 32 },
    'gemm2.weight': { scheme: 'dequantizelinear', bits: 8, blockSize: 16 },
  };
  const q = await quantizeOnnxWeights(mix, a);
  const sim = await fakeQuantizeOnnxWeights(mix, a);
  const got = await runModel(writeOnnx(q.model), feeds, undefined);
  const want = await runModel(writeOnnx(sim), feeds, undefined);
  const { diff, scale } = maxDiff(got, want);
  assert.ok(diff <= 1e-2 * scale, `diff ${diff} scale ${scale}`);
});

test('the simulation equals src/quant fakeQuant of the transposed weight (MatMul blocks run along K)', async () => {
  const [K, N] = MIX_SHAPES.w1;
  const w = getTensorFloat32(listWeights(mix).find((x) => x.name === 'fc1.weight')!.tensor);
  const sim = await fakeQuantizeOnnxWeights(mix, {
    'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 16, symmetric: false },
  });
  const got = getTensorFloat32(listWeights(sim).find((x) => x.name === 'fc1.weight')!.tensor);
  const wt = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) wt[n * K + k] = w[k * N + n]!;
  const ref = fakeQuant(wt, [N, K], {
    element: intSpec(4, false),
    granularity: { kind: 'group', axis: 1, size: 16 },
    symmetric: false,
  });
  for (let k = 0; k < K; k++)
    for (let n = 0; n < N; n++) assert.equal(got[k * N + n], ref[n * K + k], `[${k}, ${n}]`);
});

// Independent oracle: the min-max block rule written out from its definition (not via src/quant).
/** Integer range of the codes; a symmetric signed grid drops -2^(bits-1) so it is an odd function. */
function codeRange(bits: number, signed: boolean, symmetric: boolean): { qmin: number; qmax: number } {
  if (!signed) return { qmin: 0, qmax: 2 ** bits - 1 };
  const qmax = 2 ** (bits - 1) - 1;
  return { qmin: symmetric ? -qmax : -qmax - 1, qmax };
}

/** Round half to even (numpy / torch.round), as src/quant/element.ts. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Scale and zero point of one block from its range (src/quant paramsFromRange for integer grids):
 * the range always contains 0; symmetric -> [-amax, amax] (unsigned: mid zero point (qmax + 1) / 2 and
 * scale 2 amax / qmax; signed: zero 0, scale amax / qmax); asymmetric -> scale (max - min) / (qmax - qmin),
 * zero qmin + round(-min / scale); an all-zero block uses [-1, 1]. Float32 step by step; the scale is
 * rounded to its storage type and never underflows to 0.
 */
function oracleBlockParams(
  xmin: number,
  xmax: number,
  cfg: { bits: number; signed: boolean; symmetric: boolean; scaleType: 'float32' | 'float16' },
): { scale: number; zero: number } {
  const fr = Math.fround;
  const { qmin, qmax } = codeRange(cfg.bits, cfg.signed, cfg.symmetric);
  const store = (s: number): number =>
    cfg.scaleType === 'float16'
      ? f16BitsToF32(f32ToF16Bits(Math.max(s, 2 ** -24)))
      : fr(Math.max(s, 2 ** -149));
  let lo = Math.min(xmin, 0);
  let hi = Math.max(xmax, 0);
  if (cfg.symmetric) {
    const amax = Math.max(-lo, hi);
    lo = -amax;
    hi = amax;
  }
  if (lo === 0 && hi === 0) {
    lo = -1;
    hi = 1;
  }
  if (cfg.symmetric) {
    if (qmin === 0) return { scale: store(fr(fr(hi - lo) / qmax)), zero: (qmax + 1) / 2 };
    return { scale: store(fr(hi / qmax)), zero: 0 };
  }
  const scale = store(fr(fr(hi - lo) / (qmax - qmin)));
  return { scale, zero: Math.min(qmax, qmin + roundHalfEven(fr(-lo / scale))) };
}

test('quantizeBlocks matches the written-out min-max block rule (scales, zero points, codes, values), property', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 70 }),
      fc.constantFrom(2, 4, 8),
      fc.constantFrom(16, 32, 64),
      fc.boolean(),
      fc.boolean(),
      fc.constantFrom('float32' as const, 'float16' as const),
      fc.integer({ min: 0, max: 1e6 }),
      (rows, cols, bits, blockSize, symmetric, signed, scaleType, seed) => {
        let st = seed;
        const rnd = () => {
          st = (st * 1103515245 + 12345) % 2 ** 31;
          return st / 2 ** 31;
        };
        // mixed magnitudes, exact zeros (all-zero blocks) and tiny values (scale underflow)
        const x = Float32Array.from({ length: rows * cols }, (_, i) => {
          const u = rnd();
          if (i % 37 === 5 || u < 0.1) return 0;
          return (rnd() - 0.5) * (u < 0.2 ? 1e-30 : u < 0.5 ? 100 : 1);
        });
        const bq = quantizeBlocks(x, rows, cols, { bits, blockSize, symmetric, signed, scaleType });
        const cfg = {
          element: intSpec(bits, signed),
          granularity: { kind: 'group' as const, axis: 1, size: Math.min(blockSize, cols) },
          symmetric,
          scaleFormat: scaleType === 'float16' ? ('fp16' as const) : ('fp32' as const),
        };
        const ref = fakeQuant(x, [rows, cols], cfg);
        const bs = Math.min(blockSize, cols);
        const nb = Math.ceil(cols / bs);
        const { qmin, qmax } = codeRange(bits, signed, symmetric);
        const fr = Math.fround;
        for (let r = 0; r < rows; r++) {
          for (let b = 0; b < nb; b++) {
            const c0 = r * cols + b * bs;
            const c1 = r * cols + Math.min(cols, (b + 1) * bs);
            let lo = 0;
            let hi = 0;
            for (let i = c0; i < c1; i++) {
              lo = Math.min(lo, x[i]!);
              hi = Math.max(hi, x[i]!);
            }
            const want = oracleBlockParams(lo, hi, { bits, signed, symmetric, scaleType });
            assert.equal(bq.scale[r * nb + b], want.scale, `scale [${r}, ${b}]`);
            assert.equal(bq.zero[r * nb + b], want.zero, `zero [${r}, ${b}]`);
            for (let i = c0; i < c1; i++) {
              const q = Math.min(qmax, Math.max(qmin, roundHalfEven(fr(x[i]! / want.scale)) + want.zero));
              assert.equal(bq.q[i], q, `code ${i}`);
              assert.ok(Object.is(bq.dequant[i], fr(want.scale * (q - want.zero))), `value ${i}`);
              assert.ok(Object.is(bq.dequant[i], ref[i]), `fakeQuant ${i}`);
            }
          }
        }
      },
    ),
    { numRuns: 300, seed: 7 },
  );
});

test('MatMulNBits B layout decoded by hand: column n, block b, low nibble first, padding = zero point', async () => {
  const [K, N] = MIX_SHAPES.w2; // K = 72: blocks of 32 -> 3 blocks, the last one half padding
  const q = await quantizeOnnxWeights(mix, {
    'fc2.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 32, symmetric: false },
  });
  const sim = await fakeQuantizeOnnxWeights(mix, {
    'fc2.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 32, symmetric: false },
  });
  const fake = getTensorFloat32(listWeights(sim).find((x) => x.name === 'fc2.weight')!.tensor);
  const ws = listWeights(q.model);
  const B = ws.find((x) => x.name === 'fc2.weight_Q4')!;
  const S = ws.find((x) => x.name === 'fc2.weight_scales')!;
  const Z = ws.find((x) => x.name === 'fc2.weight_zp')!;
  assert.deepEqual(B.dims, [N, 3, 16]);
  assert.deepEqual(S.dims, [N, 3]);
  assert.deepEqual(Z.dims, [N, 2]);
  const b = tensorBytes(B.tensor);
  const s = getTensorFloat32(S.tensor);
  const z = tensorBytes(Z.tensor);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < 96; k++) {
      const blk = k >> 5;
      const byte = b[(n * 3 + blk) * 16 + ((k & 31) >> 1)]!;
      const code = k & 1 ? byte >> 4 : byte & 15;
      const zb = z[n * 2 + (blk >> 1)]!;
      const zp = blk & 1 ? zb >> 4 : zb & 15;
      if (k >= K) {
        assert.equal(code, zp, `padding [${n}, ${k}]`);
        continue;
      }
      assert.equal(Math.fround(s[n * 3 + blk]! * (code - zp)), fake[k * N + n], `[${n}, ${k}]`);
    }
  // the unused high nibble of each zero-point row is 0
  for (let n = 0; n < N; n++) assert.equal(z[n * 2 + 1]! >> 4, 0);
});

test('DequantizeLinear int4 layout decoded by hand: two per byte, low nibble first, scale [K/bs, N]', async () => {
  const [K, N] = MIX_SHAPES.w1;
  const a: WeightAssignments = { 'fc1.weight': { scheme: 'dequantizelinear', bits: 4, blockSize: 16 } };
  const q = await quantizeOnnxWeights(mix, a);
  const fake = getTensorFloat32(
    listWeights(await fakeQuantizeOnnxWeights(mix, a)).find((x) => x.name === 'fc1.weight')!.tensor,
  );
  const ws = listWeights(q.model);
  const Q = ws.find((x) => x.name === 'fc1.weight_q4')!;
  const S = ws.find((x) => x.name === 'fc1.weight_scale')!;
  assert.equal(Q.dataType, 22); // INT4
  assert.deepEqual(Q.dims, [K, N]);
  assert.deepEqual(S.dims, [K / 16, N]);
  const b = tensorBytes(Q.tensor);
  const s = getTensorFloat32(S.tensor);
  for (let i = 0; i < K * N; i++) {
    const nib = i & 1 ? b[i >> 1]! >> 4 : b[i >> 1]! & 15;
    const v = nib >= 8 ? nib - 16 : nib;
    assert.ok(v >= -7, 'symmetric int4 never uses -8');
    const k = Math.floor(i / N);
    assert.equal(Math.fround(s[(k >> 4) * N + (i % N)]! * v), fake[i], `element ${i}`);
  }
  const dq = q.model.proto.graph!.node.find((n) => n.op_type === 'DequantizeLinear')!;
  assert.deepEqual(
    dq.attribute.map((x) => [x.name, Number(x.i)]),
    [
      ['axis', 0],
      ['block_size', 16],
    ],
  );
});

test('quantizeBlocks: symmetric unsigned grids use the 2^(bits-1) zero point MatMulNBits assumes', () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * (i + 1));
  for (const bits of [2, 4, 8]) {
    const bq = quantizeBlocks(x, 2, 32, {
      bits,
      blockSize: 16,
      symmetric: true,
      signed: false,
      scaleType: 'float32',
    });
    assert.ok(
      bq.zero.every((z) => z === 2 ** (bits - 1)),
      `bits ${bits}`,
    );
    assert.ok(bq.q.every((v) => v >= 0 && v < 2 ** bits));
  }
  const s = quantizeBlocks(x, 2, 32, {
    bits: 4,
    blockSize: 32,
    symmetric: true,
    signed: true,
    scaleType: 'float16',
  });
  assert.ok(s.zero.every((z) => z === 0));
  // float16 scales are exactly representable in float16
  for (const v of s.scale) assert.equal(f16BitsToF32(f32ToF16Bits(v)), v);
});

test('autoAssignments: MatMul -> MatMulNBits, Gather -> GatherBlockQuantized, Gemm/Conv -> DequantizeLinear, biases kept', () => {
  const a = autoAssignments(mix, { bits: 4, blockSize: 32, keepOutputLayer: false, minElements: 1 });
  assert.deepEqual(Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v.scheme])), {
    'emb.weight': 'gatherblockquantized',
    'fc1.weight': 'matmulnbits',
    'fc2.weight': 'matmulnbits',
    'gemm1.weight': 'dequantizelinear',
    'gemm2.weight': 'dequantizelinear',
    'conv.weight': 'dequantizelinear',
  });
  // by default the layers that produce graph outputs (the logits) stay float
  const b = autoAssignments(mix, { bits: 4, minElements: 1 });
  assert.deepEqual(Object.keys(b), ['emb.weight', 'fc1.weight']);
  // 2 bits: only MatMulNBits can take it
  assert.deepEqual(Object.keys(autoAssignments(mix, { bits: 2, keepOutputLayer: false, minElements: 1 })), [
    'fc1.weight',
    'fc2.weight',
  ]);
});

test('refuses clearly what the operators cannot take', async () => {
  const cases: [WeightAssignments, RegExp][] = [
    [{ 'gemm1.weight': { scheme: 'matmulnbits', bits: 4 } }, /MatMulNBits needs a MatMul B weight/],
    [{ 'emb.weight': { scheme: 'gatherblockquantized', bits: 2 } }, /2-bit GatherBlockQuantized/],
    [{ 'fc1.weight': { scheme: 'dequantizelinear', bits: 2 } }, /opset 25/],
    [{ 'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 48 } }, /power of two in 16\.\.256/],
    [{ 'fc1.weight': { scheme: 'matmulnbits', bits: 3 as 4 } }, /bits 3/],
    [{ 'nope.weight': { scheme: 'matmulnbits' } }, /no dense weight named "nope.weight"/],
    [{ 'gemm1.bias': { scheme: 'dequantizelinear' } }, /not a quantizable use/],
    [{ 'fc1.weight': { scheme: 'gatherblockquantized' } }, /needs a Gather table/],
  ];
  for (const [a, re] of cases) await assert.rejects(quantizeOnnxWeights(mix, a), re);
});

test('fixtures mlp.onnx / constants.onnx: K and rows shorter than one block, Constant-node weights', async () => {
  const mlp = readOnnx(fixture('mlp.onnx'), { source: 'mlp.onnx' });
  const mlpFeeds = {
    x: new ort.Tensor(
      'float32',
      new Float32Array(16).map((_, i) => Math.sin(i + 1)),
      [2, 8],
    ),
    ids: new ort.Tensor('int64', BigInt64Array.from([3n, 7n]), [2]),
  };
  const consts = readOnnx(fixture('constants.onnx'), { source: 'constants.onnx' });
  const cFeeds = {
    x: new ort.Tensor(
      'float32',
      new Float32Array(108).map((_, i) => Math.cos(i)),
      [1, 3, 6, 6],
    ),
  };
  const cases: [OnnxModel, Record<string, ort.Tensor>, WeightAssignments][] = [
    [
      mlp,
      mlpFeeds,
      {
        // K = 8 < block 16: one padded block; D = 8 < block 16 for the embedding
        'model.layers.0.fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 16, symmetric: false },
        'model.embed_tokens.weight': { scheme: 'gatherblockquantized', bits: 4, blockSize: 16 },
        'model.layers.1.fc2.weight': { scheme: 'dequantizelinear', bits: 8, blockSize: 16 },
      },
    ],
    [
      consts,
      cFeeds,
      {
        'conv2d_0.w_0': { scheme: 'dequantizelinear', bits: 4 },
        'linear_0.w_0': { scheme: 'matmulnbits', bits: 2, blockSize: 64, symmetric: false },
      },
    ],
  ];
  for (const [model, f, a] of cases) {
    const q = await quantizeOnnxWeights(model, a, { simulation: true });
    const got = await runModel(writeOnnx(q.model), f);
    const want = await runModel(writeOnnx(q.simulation!), f);
    const { diff, scale } = maxDiff(got, want);
    assert.ok(diff <= REL_TOL * scale, `${model.source}: diff ${diff} scale ${scale}`);
    assert.equal(q.weights.length, Object.keys(a).length);
    // Constant-node weights leave their Constant node behind them
    for (const n of q.model.proto.graph!.node)
      if (n.op_type === 'Constant')
        assert.ok(!Object.hasOwn(a, n.output[0]!), `${n.output[0]} still a Constant`);
  }
});

test('embedding tables: every ONNX candidate with a native operator on a Gather exports as planned (bytes = onnxStorage, values = the candidate)', async () => {
  const L = rowLayout([...MIX_SHAPES.emb], 0); // Gather table [V, D]: rows V, blocks along D
  const W = getTensorFloat32(listWeights(mix).find((w) => w.name === 'emb.weight')!.tensor);
  const seen = new Set<string>();
  // the target's candidates and a symmetric int4 in blocks (none by default: int4 candidates are asymmetric)
  const sym4: Scheme = {
    format: 'int4',
    granularity: { kind: 'group', axis: 1, size: 16 },
    algorithm: 'rtn',
    scaleFormat: 'fp16',
    symmetric: true,
  };
  for (const c of [...TARGETS.onnx.candidates(), sym4]) {
    if (!representable(c, L)) continue;
    const s = schemeOnTensor(c, L);
    const a = onnxAssignment(s, L, 'Gather:0', 21, true);
    if (!a || a.scheme === 'cast') continue; // 16-bit casts: any consumer, tested with the cast path
    seen.add(a.element ?? `${a.scheme}${a.granularity === 'channel' ? '-channel' : ''}`);
    const id = schemeId(c);
    const codes =
      c.algorithm === 'gptq' || hasScaleSearch(c) ? rtnWithBlocks(toRows(W, L), L, c).blocks : undefined;
    if (c.algorithm === 'gptq') continue; // no X^T X for a table: GPTQ does not apply (RTN covers it)
    const { q } = await checkExport({ 'emb.weight': codes ? { ...a, quantized: codes } : a }, id);
    const e = q.weights[0]!;
    assert.equal(onnxStorage(a, L), e.codeBytes + e.scaleBytes + e.zeroPointBytes, `${id}: onnxStorage`);
    // the file stores exactly what the candidate simulates
    const sim = await fakeQuantizeOnnxWeights(mix, { 'emb.weight': codes ? { ...a, quantized: codes } : a });
    const got = getTensorFloat32(listWeights(sim).find((w) => w.name === 'emb.weight')!.tensor);
    assert.deepEqual(got, quantizeScheme(toRows(W, L), L, c), `${id}: values`);
  }
  assert.deepEqual([...seen].sort(), [
    'dequantizelinear',
    'dequantizelinear-channel',
    'fp8_e4m3fn',
    'gatherblockquantized',
  ]);
});

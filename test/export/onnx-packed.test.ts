/**
 * Bit-plane packed weights (src/export/onnx/packed.ts): any 1..8-bit element format with its scale format,
 * decoded by standard operators that onnxruntime folds at load. Checked here against independent
 * references: the plane layout decoded by hand, src/quant's fakeQuant of the row matrix (the simulation),
 * an onnxruntime run of the float model holding those values (bit-identical outputs), the optimized graph
 * onnxruntime writes (no decode operator left: folded), and a storage formula written from the layout.
 * Also scheme 'cast' (FP16 / BF16 weights, scale format none), checked the same way.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import fc from 'fast-check';
import { getFormat } from '../../src/formats/index.ts';
import { quantizeOnnxWeights, type WeightAssignments } from '../../src/export/onnx/index.ts';
import { opsetVersion } from '../../src/export/onnx/build.ts';
import { packBitPlanes, packedStorage, unpackBitPlanes } from '../../src/export/onnx/packed.ts';
import { getTensorFloat32, listWeights, readOnnx, tensorBytes, writeOnnx } from '../../src/io/onnx/index.ts';
import { fakeQuant, type QuantizerConfig } from '../../src/quant/index.ts';
import { elementGrid } from '../../src/quant/element.ts';
import type { ScaleFormat } from '../../src/quant/scale-format.ts';
import { buildMixModel, maxDiff, mixFeeds, runModel } from './onnx-export-util.ts';
import { ort } from '../io/onnx-util.ts';

const mix = buildMixModel();
const feeds = mixFeeds();

/** [rows, cols] of each weight's row matrix and whether the tensor is its transpose. */
const ROWS: Record<string, { rows: number; cols: number; transposed: boolean }> = {
  'fc1.weight': { rows: 72, cols: 64, transposed: true },
  'fc2.weight': { rows: 48, cols: 72, transposed: true },
  'gemm1.weight': { rows: 32, cols: 48, transposed: false },
  'gemm2.weight': { rows: 16, cols: 48, transposed: true },
  'conv.weight': { rows: 8, cols: 27, transposed: false },
  'emb.weight': { rows: 40, cols: 64, transposed: false },
};

function q(
  format: string,
  g: number | 'pc',
  symmetric: boolean,
  scaleFormat: ScaleFormat,
  scaleRule?: QuantizerConfig['scaleRule'],
): QuantizerConfig {
  return {
    element: getFormat(format),
    granularity: g === 'pc' ? { kind: 'axis', axis: 0 } : { kind: 'group', axis: 1, size: g },
    symmetric,
    scaleFormat,
    ...(scaleRule ? { scaleRule } : {}),
  };
}

function transpose(x: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x[i * c + j]!;
  return out;
}

/** The simulation of a weight from src/quant alone: fakeQuant of the row matrix, back in tensor layout. */
function simulated(name: string, cfg: QuantizerConfig): Float32Array {
  const w = listWeights(mix).find((x) => x.name === name)!;
  const x = getTensorFloat32(w.tensor);
  const { rows, cols, transposed } = ROWS[name]!;
  const xr = transposed ? transpose(x, cols, rows) : x;
  const fq = fakeQuant(xr, [rows, cols], cfg);
  return transposed ? transpose(fq, rows, cols) : fq;
}

/** The float model whose weights hold `values` (by name). */
function withWeights(values: ReadonlyMap<string, Float32Array>): Uint8Array {
  const m = readOnnx(writeOnnx(mix), { source: 'mix.onnx' });
  for (const w of listWeights(m)) {
    const v = values.get(w.name);
    if (v) w.tensor.raw_data = new Uint8Array(v.buffer.slice(0));
  }
  return writeOnnx(m);
}

/** Operator types of the graph onnxruntime optimizes at load (default level: constant folding included). */
async function optimizedOps(bytes: Uint8Array): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), 'mixq-packed-'));
  try {
    const path = join(dir, 'opt.onnx');
    const s = await ort.InferenceSession.create(bytes, {
      optimizedModelFilePath: path,
      intraOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    await s.release();
    const opt = readOnnx(new Uint8Array(readFileSync(path)), { source: path });
    return new Set(opt.proto.graph!.node.map((x) => x.op_type));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bit planes: bit b of code i sits in plane b, byte i >> 3, bit i & 7 (decoded by hand), round trip', () => {
  const codes = [5, 0, 7, 2, 1, 6, 3, 4, 7];
  const planes = packBitPlanes(codes, 3);
  assert.equal(planes.length, 3 * 2);
  for (let i = 0; i < codes.length; i++)
    for (let b = 0; b < 3; b++) {
      const byte = planes[b * 2 + (i >> 3)]!;
      assert.equal((byte >> (i & 7)) & 1, (codes[i]! >> b) & 1, `code ${i} bit ${b}`);
    }
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 70 }),
      fc.integer(),
      (bits, n, seed) => {
        const codes = Array.from({ length: n }, (_, i) => Math.abs((seed * (i + 7) + i * i) % 2 ** bits));
        const p = packBitPlanes(codes, bits);
        assert.equal(p.length, bits * Math.ceil(n / 8));
        assert.deepEqual(Array.from(unpackBitPlanes(p, bits, n)), codes);
      },
    ),
  );
  assert.throws(() => packBitPlanes([8], 3), /code 8/);
});

/** Formats x scale formats exported on every weight kind of the mix model. */
const CASES: { id: string; cfg: QuantizerConfig; scaleBytes: number }[] = [
  { id: 'int3 g16 asymmetric, fp16 scales', cfg: q('uint3', 16, false, 'fp16'), scaleBytes: 2 },
  {
    id: 'int5 g32 asymmetric, clipping search',
    cfg: q('uint5', 32, false, 'fp16', { kind: 'mse' }),
    scaleBytes: 2,
  },
  { id: 'int6 per channel symmetric', cfg: q('int6', 'pc', true, 'fp32'), scaleBytes: 4 },
  { id: 'int7 g16 symmetric, bf16 scales', cfg: q('int7', 16, true, 'bf16'), scaleBytes: 2 },
  { id: 'uint2 per channel asymmetric', cfg: q('uint2', 'pc', false, 'fp32'), scaleBytes: 4 },
  { id: 'fp6 e3m2 per channel', cfg: q('fp6_e3m2fn', 'pc', true, 'fp32'), scaleBytes: 4 },
  { id: 'MXFP4 (fp4 g32, e8m0 scales)', cfg: q('fp4_e2m1fn', 32, true, 'e8m0'), scaleBytes: 1 },
  { id: 'MXFP6 e2m3 (g32, e8m0)', cfg: q('fp6_e2m3fn', 32, true, 'e8m0'), scaleBytes: 1 },
  {
    id: 'NVFP4 (fp4 g16, e4m3 scales, fp32 tensor scale)',
    cfg: q('fp4_e2m1fn', 16, true, 'fp8_e4m3fn'),
    scaleBytes: 1,
  },
  { id: 'NF4 g64, fp16 absmax', cfg: q('nf4', 64, true, 'fp16'), scaleBytes: 2 },
  { id: 'fp4 g32 asymmetric (fp16 offsets)', cfg: q('fp4_e2m1fn', 32, false, 'fp16'), scaleBytes: 2 },
  { id: 'int8 g32 asymmetric', cfg: q('uint8', 32, false, 'fp16'), scaleBytes: 2 },
];

for (const c of CASES)
  test(`packed ${c.id}: onnxruntime output bit-identical to the simulation, exact bytes, decode folded`, async () => {
    const names = Object.keys(ROWS);
    const a: WeightAssignments = Object.fromEntries(
      names.map((n) => [n, { scheme: 'packed', quantizer: c.cfg }]),
    );
    const out = await quantizeOnnxWeights(mix, a, { simulation: true });
    // the simulation is src/quant's fakeQuant of each row matrix
    const sims = new Map(names.map((n) => [n, simulated(n, c.cfg)]));
    for (const w of listWeights(out.simulation!))
      if (sims.has(w.name)) assert.deepEqual(getTensorFloat32(w.tensor), sims.get(w.name), w.name);
    // onnxruntime: the packed model computes exactly what the float model with the simulated weights does
    const bytes = writeOnnx(out.model);
    const got = await runModel(bytes, feeds);
    const want = await runModel(withWeights(sims), feeds);
    assert.equal(maxDiff(got, want).diff, 0);
    // stored bytes: planes of `bits` per element, one scale per group, zero codes / offsets when asymmetric
    const grid = elementGrid(c.cfg.element);
    const bits = grid.bits;
    for (const n of names) {
      const { rows, cols } = ROWS[n]!;
      const g =
        c.cfg.granularity.kind === 'axis'
          ? cols
          : Math.min((c.cfg.granularity as { size: number }).size, cols);
      const groups = rows * Math.ceil(cols / g);
      const e = out.weights.find((w) => w.name === n)!;
      const planes = bits === 8 ? rows * cols : bits * Math.ceil((rows * cols) / 8);
      assert.equal(e.codeBytes, planes, `${n} codes`);
      assert.equal(
        e.scaleBytes,
        groups * c.scaleBytes + (c.cfg.scaleFormat === 'fp8_e4m3fn' ? 4 : 0),
        `${n} scales`,
      );
      const zeros = c.cfg.symmetric
        ? 0
        : grid.kind === 'int'
          ? bits === 8
            ? groups
            : bits * Math.ceil(groups / 8)
          : 2 * groups;
      assert.equal(e.zeroPointBytes, zeros, `${n} zero points`);
      assert.deepEqual(packedStorage(rows, cols, c.cfg), {
        codeBytes: e.codeBytes,
        scaleBytes: e.scaleBytes,
        zeroPointBytes: e.zeroPointBytes,
      });
      // the initializers written for this weight hold exactly those bytes
      const own = out.model.proto.graph!.initializer.filter((t) => t.name.startsWith(`${n}_`));
      assert.equal(
        own.reduce((s, t) => s + tensorBytes(t).length, 0),
        e.codeBytes + e.scaleBytes + e.zeroPointBytes,
        `${n} initializers`,
      );
    }
    // onnxruntime folds the decode at load: its optimized graph has no BitShift / BitwiseAnd left
    const ops = await optimizedOps(bytes);
    for (const op of ['BitShift', 'BitwiseAnd', 'ReduceSum', 'Cast'])
      assert.ok(!ops.has(op), `${op} left in the optimized graph`);
  });

test('packed with given integer codes (GPTQ): decoded weight = float32(scale * (q - zero)), bit for bit', async () => {
  const cfg = q('uint3', 16, false, 'fp16');
  const rows = 72;
  const cols = 64;
  const nb = cols / 16;
  const qv = Int32Array.from({ length: rows * cols }, (_, i) => (i * 5 + (i >> 3)) % 8);
  const scale = Float32Array.from({ length: rows * nb }, (_, i) => 2 ** -(i % 7) * 0.75);
  const zero = Int32Array.from({ length: rows * nb }, (_, i) => i % 8);
  const out = await quantizeOnnxWeights(
    mix,
    { 'fc1.weight': { scheme: 'packed', quantizer: cfg, quantized: { q: qv, scale, zero } } },
    { simulation: true },
  );
  const want = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const g = r * nb + Math.floor(c / 16);
      want[c * rows + r] = Math.fround(scale[g]! * (qv[r * cols + c]! - zero[g]!));
    }
  const sim = listWeights(out.simulation!).find((w) => w.name === 'fc1.weight')!;
  assert.deepEqual(getTensorFloat32(sim.tensor), want);
  const got = await runModel(writeOnnx(out.model), feeds);
  const ref = await runModel(withWeights(new Map([['fc1.weight', want]])), feeds);
  assert.equal(maxDiff(got, ref).diff, 0);
  // codes outside the grid are refused with the field named
  await assert.rejects(
    quantizeOnnxWeights(mix, {
      'fc1.weight': { scheme: 'packed', quantizer: cfg, quantized: { q: qv.map(() => 8), scale, zero } },
    }),
    /grid value 8.*quantized\.q|quantized\.q/s,
  );
});

test('packed refuses what it cannot store, naming the field', async () => {
  await assert.rejects(quantizeOnnxWeights(mix, { 'fc1.weight': { scheme: 'packed' } }), /quantizer/);
  await assert.rejects(
    quantizeOnnxWeights(mix, {
      'fc1.weight': {
        scheme: 'packed',
        quantizer: { ...q('uint3', 16, false, 'fp16'), rounding: 'stochastic' },
      },
    }),
    /stochastic/,
  );
  await assert.rejects(
    quantizeOnnxWeights(mix, {
      'fc1.weight': {
        scheme: 'packed',
        quantizer: { ...q('uint3', 16, false, 'fp16'), granularity: { kind: 'axis', axis: 1 } },
      },
    }),
    /row-layout granularity/,
  );
});

for (const [format, castTo, dt] of [
  ['fp16', 'float16', 10],
  ['bf16', 'bfloat16', 16],
] as const)
  test(`cast ${castTo}: simulation = src/quant's ${format} cast, onnxruntime bit-identical, 2 bytes per weight, Cast folded`, async () => {
    const names = Object.keys(ROWS);
    const cfg = q(format, 'pc', true, 'none');
    // from an opset-11 copy: bfloat16 needs Cast-13, so the exporter raises the model
    const old = readOnnx(writeOnnx(mix), { source: 'mix11.onnx' });
    old.proto.opset_import = [{ domain: '', version: 11 }];
    const out = await quantizeOnnxWeights(
      old,
      Object.fromEntries(names.map((n) => [n, { scheme: 'cast', castTo }])),
      {
        simulation: true,
      },
    );
    const sims = new Map(names.map((n) => [n, simulated(n, cfg)]));
    for (const w of listWeights(out.simulation!))
      if (sims.has(w.name)) assert.deepEqual(getTensorFloat32(w.tensor), sims.get(w.name), w.name);
    const bytes = writeOnnx(out.model);
    assert.equal(maxDiff(await runModel(bytes, feeds), await runModel(withWeights(sims), feeds)).diff, 0);
    assert.equal(opsetVersion(out.model.proto, ''), format === 'bf16' ? 21 : 11);
    for (const n of names) {
      const { rows, cols } = ROWS[n]!;
      const e = out.weights.find((w) => w.name === n)!;
      assert.deepEqual(
        [e.scheme, e.op, e.bits, e.codeBytes, e.scaleBytes],
        ['cast', 'Cast', 16, 2 * rows * cols, 0],
      );
      const own = out.model.proto.graph!.initializer.filter((t) => t.name.startsWith(`${n}_`));
      assert.deepEqual(
        own.map((t) => [t.data_type, tensorBytes(t).length]),
        [[dt, 2 * rows * cols]],
        n,
      );
    }
    assert.ok(!(await optimizedOps(bytes)).has('Cast'), 'Cast left in the optimized graph');
    await assert.rejects(
      quantizeOnnxWeights(mix, { 'fc1.weight': { scheme: 'cast', castTo: 'float8' as 'float16' } }),
      /castTo/,
    );
  });

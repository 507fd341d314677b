/**
 * Quantized safetensors (src/export/safetensors.ts, docs/safetensors-quantized.md):
 * - golden bytes of a hand-computed uint4 example;
 * - write -> read -> dequantize equals fakeQuant bit for bit over int2/3/4/8 (sym/asym, per-channel, group,
 *   block, groups along axis 0), fp8_e4m3fn, fp4_e2m1fn with e8m0 group scales (MXFP4-like) and with
 *   fp8_e4m3fn scales (NVFP4-like), nf4 (sym/asym), double-quantized and bf16 scales;
 * - sizes: each weight's tensors = storageCost(cfg, shape).bytes, file = 8 + header + floats + those;
 * - the plain safetensors reader parses the file; the numpy loader printed in the doc (an independent
 *   implementation from the written spec) gives the same float32 bits; Python's `safetensors` if present;
 * - GPTQ codes stored through the 'codes' input dequantize to GPTQ's own Q;
 * - bad configs raise MixqError naming the field.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  type QuantizedSafetensorsInput,
  readQuantizedSafetensors,
  writeQuantizedSafetensors,
} from '../../src/export/safetensors.ts';
import { getFormat } from '../../src/formats/index.ts';
import { concatBytes, parseSafetensors, writeSafetensors } from '../../src/io/index.ts';
import { gptq, gptqHessian } from '../../src/quant/algorithms/gptq.ts';
import { groupLayout } from '../../src/quant/granularity.ts';
import { chooseQParams, qparamsFromScales, type QuantizerConfig } from '../../src/quant/qparams.ts';
import { fakeQuant, quantize, storageCost } from '../../src/quant/quantizer.ts';

const PY = '/usr/bin/python3';

function randn(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = r.nextNormal() * 0.05 + (i % 7 === 0 ? 0.02 : 0);
  return x;
}

const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

function assertBitsEqual(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const a = bitsOf(got);
  const b = bitsOf(want);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) assert.fail(`${what}: element ${i} is ${got[i]}, fakeQuant gives ${want[i]}`);
}

interface Case {
  readonly name: string;
  readonly shape: readonly number[];
  readonly cfg: QuantizerConfig;
}

const F = getFormat;
const grp = (size: number, axis = 1) => ({ kind: 'group', axis, size }) as const;
const perRow = { kind: 'axis', axis: 0 } as const;

const CASES: readonly Case[] = [
  {
    name: 'int2.sym.row',
    shape: [24, 64],
    cfg: { element: F('int2'), granularity: perRow, symmetric: true },
  },
  {
    name: 'int2.asym.g16',
    shape: [24, 64],
    cfg: { element: F('uint2'), granularity: grp(16), symmetric: false, scaleFormat: 'fp16' },
  },
  {
    name: 'int3.sym.g32',
    shape: [24, 64],
    cfg: { element: F('int3'), granularity: grp(32), symmetric: true, scaleFormat: 'fp16' },
  },
  // 7 x 30 x 3 bits: rows do not fill whole bytes -> flat qweight; ragged last group of 16
  {
    name: 'int3.asym.g16.ragged',
    shape: [7, 30],
    cfg: { element: F('uint3'), granularity: grp(16), symmetric: false, scaleFormat: 'fp16' },
  },
  {
    name: 'int4.sym.g32',
    shape: [24, 64],
    cfg: { element: F('int4'), granularity: grp(32), symmetric: true, scaleFormat: 'fp16' },
  },
  {
    name: 'uint4.asym.g32',
    shape: [24, 64],
    cfg: { element: F('uint4'), granularity: grp(32), symmetric: false, scaleFormat: 'fp16' },
  },
  {
    name: 'uint4.sym.row',
    shape: [24, 64],
    cfg: { element: F('uint4'), granularity: perRow, symmetric: true, scaleFormat: 'bf16' },
  },
  {
    name: 'int4.asym.axis0groups',
    shape: [40, 12],
    cfg: { element: F('int4'), granularity: grp(16, 0), symmetric: false, scaleFormat: 'fp16' },
  },
  {
    name: 'int4.asym.block',
    shape: [2, 20, 24],
    cfg: { element: F('uint4'), granularity: { kind: 'block', rows: 8, cols: 8 }, symmetric: false },
  },
  {
    name: 'int4.double',
    shape: [16, 64],
    cfg: {
      element: F('uint4'),
      granularity: grp(16),
      symmetric: false,
      scaleFormat: { kind: 'double', subBits: 6, superGroup: 8 },
    },
  },
  {
    name: 'int8.sym.row',
    shape: [24, 64],
    cfg: { element: F('int8'), granularity: perRow, symmetric: true },
  },
  {
    name: 'int8.asym.g32',
    shape: [24, 64],
    cfg: { element: F('uint8'), granularity: grp(32), symmetric: false, scaleFormat: 'fp16' },
  },
  {
    name: 'int8.tensor',
    shape: [5, 9],
    cfg: { element: F('int8'), granularity: { kind: 'tensor' }, symmetric: false },
  },
  {
    name: 'fp8.row',
    shape: [24, 64],
    cfg: { element: F('fp8_e4m3fn'), granularity: perRow, symmetric: true, scaleFormat: 'fp32' },
  },
  {
    name: 'fp8.g32.asym',
    shape: [24, 64],
    cfg: { element: F('fp8_e4m3fn'), granularity: grp(32), symmetric: false, scaleFormat: 'fp16' },
  },
  {
    name: 'mxfp4',
    shape: [24, 64],
    cfg: { element: F('fp4_e2m1fn'), granularity: grp(32), symmetric: true, scaleFormat: 'e8m0' },
  },
  {
    name: 'nvfp4',
    shape: [24, 64],
    cfg: { element: F('fp4_e2m1fn'), granularity: grp(16), symmetric: true, scaleFormat: 'fp8_e4m3fn' },
  },
  {
    name: 'nf4.g64',
    shape: [24, 64],
    cfg: { element: F('nf4'), granularity: grp(64), symmetric: true, scaleFormat: 'fp16' },
  },
  {
    name: 'nf4.asym.g32',
    shape: [24, 64],
    cfg: { element: F('nf4'), granularity: grp(32), symmetric: false, scaleFormat: 'fp16' },
  },
];

const weightsOf = (seed: number) =>
  CASES.map((c, i) =>
    randn(
      c.shape.reduce((p, d) => p * d, 1),
      seed + i,
    ),
  );

function f32Bytes(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}

const BIAS = Float32Array.from({ length: 24 }, (_, i) => i / 8 - 1);
const NORM_F16 = Uint8Array.from({ length: 10 }, (_, i) => (i * 37) & 0xff);

function buildFile(ws: readonly Float32Array[]): Uint8Array {
  const inputs: QuantizedSafetensorsInput[] = CASES.map((c, i) => ({
    kind: 'quantize',
    name: `model.${c.name}.weight`,
    values: ws[i]!,
    shape: c.shape,
    quantizer: c.cfg,
  }));
  inputs.push({ kind: 'float', name: 'model.bias', dtype: 'F32', shape: [24], data: f32Bytes(BIAS) });
  inputs.push({ kind: 'float', name: 'model.norm', dtype: 'F16', shape: [5], data: NORM_F16 });
  // a float tensor whose name starts with a quantized weight's name is still a float tensor
  inputs.push({
    kind: 'float',
    name: 'model.mxfp4.weight.bias',
    dtype: 'U8',
    shape: [2],
    data: Uint8Array.of(1, 2),
  });
  return concatBytes(writeQuantizedSafetensors(inputs, { metadata: { format: 'pt' } }));
}

test('golden bytes: uint4 asymmetric per-tensor, fp16 scale, W = [-1, 0, 1, 2]', async () => {
  // scale = fp16(3 / 15) = 0x3266 = 0.199951171875; zero = round(1 / scale) = 5;
  // codes = round(x / scale) + 5 = [0, 5, 10, 15] -> bytes 0x50, 0xfa (element 2j in the low nibble)
  const bytes = concatBytes(
    writeQuantizedSafetensors([
      {
        kind: 'quantize',
        name: 'w',
        values: Float32Array.of(-1, 0, 1, 2),
        shape: [1, 4],
        quantizer: {
          element: F('uint4'),
          granularity: { kind: 'tensor' },
          symmetric: false,
          scaleFormat: 'fp16',
        },
      },
    ]),
  );
  const f = await parseSafetensors(bytes);
  const t = (n: string) => f.tensors.find((x) => x.name === n)!;
  assert.deepEqual(
    f.tensors.map((x) => [x.name, x.dtype, x.shape]),
    [
      ['w.scales', 'F16', [1]],
      ['w.qweight', 'U8', [1, 2]],
      ['w.zeros', 'U8', [1]],
    ],
  );
  assert.deepEqual([...(await f.readTensorBytes(t('w.qweight')))], [0x50, 0xfa]);
  assert.deepEqual([...(await f.readTensorBytes(t('w.scales')))], [0x66, 0x32]);
  assert.deepEqual([...(await f.readTensorBytes(t('w.zeros')))], [0x05]);
  assert.deepEqual(JSON.parse(f.metadata!.quantization_config!), {
    quant_method: 'mixq',
    version: 1,
    weights: {
      w: {
        format: 'uint4',
        bits: 4,
        element: { kind: 'int', signed: false, narrow: false, code_base: 0 },
        granularity: { kind: 'tensor' },
        scale_format: 'fp16',
        symmetric: false,
        shape: [1, 4],
        algorithm: 'rtn',
      },
    },
  });
  const q = await readQuantizedSafetensors(bytes);
  const s = 0.199951171875;
  assert.deepEqual(
    [...(await q.dequantize('w'))],
    [-5, 0, 5, 10].map((k) => Math.fround(s * k)),
  );
});

test('write -> read -> dequantize equals fakeQuant bit for bit; sizes equal storageCost', async () => {
  const ws = weightsOf(100);
  const bytes = buildFile(ws);
  const plain = await parseSafetensors(bytes, 'plain');
  const q = await readQuantizedSafetensors(bytes, { name: 'mixq' });
  assert.equal(q.weights.length, CASES.length);
  let quantBytes = 0;
  for (const [i, c] of CASES.entries()) {
    const name = `model.${c.name}.weight`;
    const w = q.weights.find((x) => x.name === name)!;
    const want = fakeQuant(ws[i]!, c.shape, c.cfg);
    assertBitsEqual(await q.dequantize(name), want, c.name);
    // the codes too, not only the values
    const ref = quantize(ws[i]!, chooseQParams(ws[i]!, c.shape, c.cfg));
    assert.deepEqual((await q.load(name)).codes, ref.codes, `${c.name}: codes`);
    const cost = storageCost(c.cfg, c.shape);
    assert.equal(w.bytes, cost.bytes, `${c.name}: bytes vs storageCost`);
    quantBytes += cost.bytes;
    // the quantization is not trivially lossless (the comparison above could not pass by accident)
    assert.ok(
      want.some((v, k) => v !== ws[i]![k]),
      `${c.name}: lossy`,
    );
  }
  // tensor shapes as the doc's table says (group shape G; packed rows, or flat when rows are not whole bytes)
  const shapes = Object.fromEntries(plain.tensors.map((t) => [t.name, [t.dtype, t.shape]]));
  const want: Record<string, [string, number[]]> = {
    'model.int4.asym.axis0groups.weight.scales': ['F16', [12, 3]], // groups along axis 0: [in, ceil(out / s)]
    'model.int4.asym.axis0groups.weight.zeros': ['U8', [18]], // 36 codes x 4 bits; rows of 12 bits: flat
    'model.int4.asym.axis0groups.weight.qweight': ['U8', [40, 6]],
    'model.int3.asym.g16.ragged.weight.qweight': ['U8', [79]], // 7 * 30 * 3 bits = 630 -> 79 bytes
    'model.int3.asym.g16.ragged.weight.scales': ['F16', [7, 2]],
    'model.int3.asym.g16.ragged.weight.zeros': ['U8', [6]], // 14 codes x 3 bits = 42 -> 6 bytes
    'model.int4.asym.block.weight.scales': ['F32', [2, 3, 3]],
    'model.int4.asym.block.weight.zeros': ['U8', [9]], // 18 codes x 4 bits
    'model.int2.sym.row.weight.scales': ['F32', [24]],
    'model.int2.sym.row.weight.qweight': ['U8', [24, 16]],
    'model.int8.tensor.weight.scales': ['F32', [1]],
    'model.int8.tensor.weight.zeros': ['U8', [1]],
    'model.mxfp4.weight.scales': ['U8', [24, 2]],
    'model.nvfp4.weight.scales': ['F8_E4M3', [24, 4]],
    'model.nvfp4.weight.global_scale': ['F32', [1]],
    'model.int4.double.weight.scales': ['U8', [16, 3]], // 4 groups per row x 6 bits = 3 bytes per row
    'model.int4.double.weight.super_scales': ['F16', [8]],
    'model.nf4.asym.g32.weight.offsets': ['F16', [24, 2]],
  };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(shapes[k], v, k);
  const floatBytes = 24 * 4 + 10 + 2;
  assert.equal(bytes.length, 8 + plain.headerLength + floatBytes + quantBytes);
  assert.equal(plain.headerLength % 8, 0);
  // plain reader: all tensors present, float tensors unchanged
  assert.deepEqual(q.floatTensors.map((t) => t.name).sort(), [
    'model.bias',
    'model.mxfp4.weight.bias',
    'model.norm',
  ]);
  assert.deepEqual(await q.readFloat('model.bias'), BIAS);
  const norm = plain.tensors.find((t) => t.name === 'model.norm')!;
  assert.deepEqual(await plain.readTensorBytes(norm), NORM_F16);
  assert.equal(plain.metadata?.format, 'pt');
  // reading the same file through an opened SafetensorsFile works too
  const q2 = await readQuantizedSafetensors(plain);
  assertBitsEqual(await q2.dequantize('model.mxfp4.weight'), await q.dequantize('model.mxfp4.weight'), 'q2');
});

function docLoader(): string {
  const md = readFileSync(new URL('../../docs/safetensors-quantized.md', import.meta.url), 'utf8');
  const m = /```python\n([\s\S]*?)```/.exec(md);
  assert.ok(m, 'docs/safetensors-quantized.md has a python block');
  return m[1]!;
}

const hasPy = (mod: string) => spawnSync(PY, ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;

test('the numpy loader in docs/safetensors-quantized.md reproduces fakeQuant bit for bit', (t) => {
  if (!hasPy('numpy')) {
    t.skip('python3 with numpy not available');
    return;
  }
  const ws = weightsOf(200);
  const dir = mkdtempSync(join(tmpdir(), 'mixq-stq-'));
  try {
    const file = join(dir, 'm.safetensors');
    writeFileSync(file, buildFile(ws));
    const script = `${docLoader()}
import sys
w, others = load_mixq(sys.argv[1])
for k in sorted(w):
    a = np.ascontiguousarray(w[k], dtype=np.float32)
    assert a.dtype == np.float32, k
    print(k, "x".join(map(str, a.shape)), a.astype("<f4").tobytes().hex())
print("others", sorted(others))
`;
    writeFileSync(join(dir, 'load.py'), script);
    const r = spawnSync(PY, [join(dir, 'load.py'), file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const got = new Map<string, [string, string]>();
    for (const l of lines) {
      const [k, shape, hex] = l.split(' ');
      if (k !== 'others') got.set(k!, [shape!, hex!]);
    }
    assert.equal(lines.at(-1), "others ['model.bias', 'model.mxfp4.weight.bias', 'model.norm']");
    for (const [i, c] of CASES.entries()) {
      const g = got.get(`model.${c.name}.weight`);
      assert.ok(g, c.name);
      assert.equal(g[0], c.shape.join('x'), `${c.name}: shape`);
      const want = fakeQuant(ws[i]!, c.shape, c.cfg);
      const b = Uint8Array.from(Buffer.from(g[1], 'hex'));
      assertBitsEqual(new Float32Array(b.buffer), want, `python ${c.name}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Python's safetensors reads the file (skipped when not importable)", async (t) => {
  if (!hasPy('safetensors')) {
    t.skip('python safetensors not importable');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'mixq-stq-'));
  try {
    const file = join(dir, 'm.safetensors');
    const bytes = buildFile(weightsOf(300));
    writeFileSync(file, bytes);
    // shapes of every tensor through get_slice; bytes of those numpy has a dtype for (not BF16, F8_*)
    const script = `import sys, json
from safetensors import safe_open
out = {}
with safe_open(sys.argv[1], framework="numpy") as f:
    meta = f.metadata()
    for k in f.keys():
        s = f.get_slice(k)
        hx = None if s.get_dtype() in ("BF16", "F8_E4M3", "F8_E5M2") else f.get_tensor(k).tobytes().hex()
        out[k] = [list(s.get_shape()), hx]
print(json.dumps({"meta": meta, "tensors": out}))`;
    const r = spawnSync(PY, ['-c', script, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      meta: Record<string, string>;
      tensors: Record<string, [number[], string | null]>;
    };
    assert.ok(out.meta.quantization_config);
    const f = await parseSafetensors(bytes);
    assert.equal(Object.keys(out.tensors).length, f.tensors.length);
    for (const ti of f.tensors) {
      const [shape, hex] = out.tensors[ti.name]!;
      assert.deepEqual(shape, ti.shape, ti.name);
      if (hex !== null) assert.equal(hex, Buffer.from(await f.readTensorBytes(ti)).toString('hex'), ti.name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GPTQ codes stored via the codes input dequantize to GPTQ Q exactly', async () => {
  const rows = 16;
  const cols = 64;
  const W = randn(rows * cols, 7);
  const X = randn(96 * cols, 8);
  const H = gptqHessian(X, 96, cols);
  for (const [gs, sym] of [
    [32, false],
    [-1, true],
  ] as const) {
    const cfg: QuantizerConfig = {
      element: F(sym ? 'int4' : 'uint4'),
      granularity: gs === -1 ? perRow : grp(gs),
      symmetric: sym,
      scaleFormat: 'fp16',
    };
    const r = gptq(W, rows, cols, H, {
      element: cfg.element,
      symmetric: sym,
      groupSize: gs,
      scaleFormat: 'fp16',
    });
    const layout = groupLayout([rows, cols], cfg.granularity);
    const params = qparamsFromScales([rows, cols], cfg, layout, r.scale, r.zero, r.offset);
    const bytes = concatBytes(
      writeQuantizedSafetensors([{ kind: 'codes', name: 'l.w', codes: r.codes, params, algorithm: 'gptq' }]),
    );
    const q = await readQuantizedSafetensors(bytes);
    assert.equal(q.weights[0]!.entry.algorithm, 'gptq');
    assertBitsEqual(await q.dequantize('l.w'), r.Q, `gptq g${gs}`);
    assert.equal(q.weights[0]!.bytes, storageCost(cfg, [rows, cols]).bytes);
  }
});

// ------------------------------------------------------------------------------------------ bad input

interface LooseConfig {
  [k: string]: unknown;
  weights: {
    w: { [k: string]: unknown; element: Record<string, unknown>; granularity: Record<string, unknown> };
  };
}

async function withConfig(bytes: Uint8Array, edit: (c: LooseConfig) => void, drop?: string) {
  const f = await parseSafetensors(bytes);
  const cfg = JSON.parse(f.metadata!.quantization_config!) as LooseConfig;
  edit(cfg);
  const tensors = [];
  for (const t of f.tensors)
    if (t.name !== drop)
      tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await f.readTensorBytes(t) });
  return concatBytes(writeSafetensors({ tensors, metadata: { quantization_config: JSON.stringify(cfg) } }));
}

async function rejects(p: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MixqError, String(e));
    assert.equal(e.field, field, e.message);
    return true;
  });
}

test('bad quantization_config -> MixqError naming the field', async () => {
  const good = concatBytes(
    writeQuantizedSafetensors([
      {
        kind: 'quantize',
        name: 'w',
        values: randn(8 * 32, 1),
        shape: [8, 32],
        quantizer: { element: F('uint4'), granularity: grp(16), symmetric: false, scaleFormat: 'fp16' },
      },
    ]),
  );
  await readQuantizedSafetensors(good); // sanity: the unedited file reads
  const W = 'quantization_config.weights.w';
  const cases: [string, (c: LooseConfig) => void, string?][] = [
    ['quantization_config.quant_method', (c) => (c.quant_method = 'gptq')],
    ['quantization_config.version', (c) => (c.version = 2)],
    ['quantization_config.weights', (c) => ((c as Record<string, unknown>).weights = [])],
    [`${W}.format`, (c) => (c.weights.w.format = 'int99x')],
    [`${W}.bits`, (c) => (c.weights.w.bits = 3)],
    [`${W}.element`, (c) => (c.weights.w.element.code_base = -8)],
    [`${W}.granularity.size`, (c) => (c.weights.w.granularity.size = 0)],
    [`${W}.granularity.axis`, (c) => (c.weights.w.granularity.axis = 2)],
    [`${W}.granularity.kind`, (c) => (c.weights.w.granularity.kind = 'row')],
    [`${W}.scale_format`, (c) => (c.weights.w.scale_format = 'fp12')],
    [
      `${W}.scale_format.sub_bits`,
      (c) => (c.weights.w.scale_format = { kind: 'double', sub_bits: 1, super_group: 8 }),
    ],
    [`${W}.symmetric`, (c) => (c.weights.w.symmetric = 'no')],
    [`${W}.shape`, (c) => (c.weights.w.shape = [8, -32])],
    [`${W}.algorithm`, (c) => (c.weights.w.algorithm = 3)],
    ["tensors['w.qweight'].shape", (c) => (c.weights.w.shape = [4, 64])],
    ["tensors['w.scales'].dtype", (c) => (c.weights.w.scale_format = 'bf16')],
    ["tensors['w.zeros']", () => undefined, 'w.zeros'],
    [
      "tensors['w.offsets']",
      (c) => {
        c.weights.w.format = 'fp4_e2m1fn';
        // keys in another order than the writer's: the reader compares values, not text
        c.weights.w.element = {
          has_zero: true,
          kind: 'float',
          exp_bits: 2,
          man_bits: 1,
          bias: 1,
          signed: true,
          subnormals: true,
        };
      },
    ],
  ];
  for (const [field, edit, drop] of cases)
    await rejects(readQuantizedSafetensors(await withConfig(good, edit, drop)), field);

  // not JSON / missing
  const f = await parseSafetensors(good);
  const tensors = await Promise.all(
    f.tensors.map(async (t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      data: await f.readTensorBytes(t),
    })),
  );
  const meta = (m?: Record<string, string>) =>
    concatBytes(writeSafetensors({ tensors, ...(m ? { metadata: m } : {}) }));
  await rejects(readQuantizedSafetensors(meta()), '__metadata__.quantization_config');
  await rejects(
    readQuantizedSafetensors(meta({ quantization_config: '{oops' })),
    '__metadata__.quantization_config',
  );
  // a NaN scale code (e8m0 code 255) is caught when dequantizing
  const mx = concatBytes(
    writeQuantizedSafetensors([
      {
        kind: 'quantize',
        name: 'w',
        values: randn(64, 3),
        shape: [2, 32],
        quantizer: { element: F('fp4_e2m1fn'), granularity: grp(32), symmetric: true, scaleFormat: 'e8m0' },
      },
    ]),
  );
  const pos = mx.length - 2; // data: qweight (2 x 16 bytes) then scales (2 x U8): both U8, so by name
  const p = await parseSafetensors(mx);
  assert.equal(p.tensors.find((t) => t.name === 'w.scales')!.absOffset, pos);
  mx[pos] = 255;
  const q = await readQuantizedSafetensors(mx);
  await rejects(q.dequantize('w'), "tensors['w.scales']");
});

test('writer refuses inconsistent input, naming the field', () => {
  const cfg: QuantizerConfig = {
    element: F('uint4'),
    granularity: grp(16),
    symmetric: false,
    scaleFormat: 'fp16',
  };
  const w = randn(4 * 32, 5);
  const params = chooseQParams(w, [4, 32], cfg);
  const { codes } = quantize(w, params);
  const bad = (inputs: QuantizedSafetensorsInput[], field: string, opts = {}) =>
    assert.throws(
      () => writeQuantizedSafetensors(inputs, opts),
      (e: unknown) => e instanceof MixqError && e.field === field,
    );
  bad([{ kind: 'codes', name: 'w', codes: codes.slice(1), params }], 'codes.length');
  bad(
    [{ kind: 'codes', name: 'w', codes: Uint16Array.from(codes, (c, i) => (i === 3 ? 16 : c)), params }],
    'codes',
  );
  const scale = params.scale.slice();
  scale[0] = scale[0]! * 1.5;
  bad([{ kind: 'codes', name: 'w', codes, params: { ...params, scale } }], 'params.scale');
  bad(
    [
      { kind: 'codes', name: 'w', codes, params },
      { kind: 'float', name: 'w', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
    ],
    'inputs[1].name',
  );
  bad(
    [
      { kind: 'codes', name: 'w', codes, params },
      { kind: 'float', name: 'w.zeros', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
    ],
    'inputs[1].name',
  );
  bad([{ kind: 'codes', name: 'w', codes, params }], 'options.metadata.quantization_config', {
    metadata: { quantization_config: 'x' },
  });
  const custom = { ...F('fp4_e2m1fn'), name: 'fp4_e2m1fn', bias: 2 } as QuantizerConfig['element'];
  bad(
    [
      {
        kind: 'quantize',
        name: 'w',
        values: w,
        shape: [4, 32],
        quantizer: { ...cfg, element: custom, symmetric: true },
      },
    ],
    'inputs[0].element',
  );
});

/**
 * FP4 (E2M1) weight storage in ONNX (issue #6) is refused, because onnxruntime 1.30 cannot load it:
 * - the exporter refuses an FP4 assignment with a MixqError naming the weight, the format, the runtime
 *   limitation and the alternatives, and the pipeline maps no FP4 candidate (NVFP4, MXFP4, FP4 per
 *   channel) to an ONNX assignment;
 * - a canary builds the FP4 models by hand (not with the exporter): an NVFP4 weight from mixq's own
 *   nvfp4Encode as FLOAT4E2M1 codes (two per byte, element 2i in the low nibble, the ONNX packing) with
 *   its E4M3 block scales dequantized by a first DequantizeLinear, and a plain blocked FP4
 *   DequantizeLinear. mixq's ONNX reader and an independent E2M1 table in this file decode the codes
 *   to nvfp4Decode's values bit for bit. onnxruntime-node and -web must refuse both models while an
 *   INT4 control built the same way runs; the day one of them loads, the canary checks its output against
 *   nvfp4Decode and fails, asking to build the export path.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { rowLayout } from '../../src/quant/layout.ts';
import { fullCandidates, schemeId } from '../../src/analysis/sensitivity/candidates.ts';
import { nvfp4Decode, nvfp4Encode } from '../../src/blocks/nvfp4.ts';
import { Rng } from '../../src/core/rng.ts';
import { MixqError } from '../../src/core/errors.ts';
import { floatBytes } from '../../src/export/onnx/build.ts';
import {
  FP4_REFUSAL,
  fakeQuantizeOnnxWeights,
  makeNode,
  makeTensor,
  quantizeOnnxWeights,
  type WeightAssignment,
} from '../../src/export/onnx/index.ts';
import {
  DATA_TYPE_CODES as C,
  getTensorFloat32,
  onnxMessageType,
  readOnnx,
  writeOnnx,
} from '../../src/io/onnx/index.ts';
import type { NodeProto, TensorProto } from '../../src/io/onnx/proto-types.ts';
import { onnxAssignment } from '../../src/export/onnx/assign.ts';
import { nativeCandidates } from '../../src/pipeline/quantize/targets.ts';
import { quantizerOf, schemeOnTensor } from '../../src/quant/scheme.ts';
import { buildMixModel } from './onnx-export-util.ts';

/** E2M1 by code (OCP MX v1.0 table 5; ONNX docs/technical/float4.md): sign bit 3, no NaN / Inf. */
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/** E4M3FN by code, from the bit fields (bias 7, S.1111.111 = NaN). */
function e4m3(code: number): number {
  const e = (code >> 3) & 15;
  const m = code & 7;
  const sign = code & 0x80 ? -1 : 1;
  if (e === 15 && m === 7) return Number.NaN;
  return sign * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
}

/** An FP4 request as a JSON plan or a JS caller could write it (any string reaches the exporter). */
const fp4 = (element: string): WeightAssignment => ({
  scheme: 'dequantizelinear',
  bits: 4,
  blockSize: 16,
  element: element as WeightAssignment['element'],
});

function assertFp4Refusal(e: unknown, weight: string): true {
  assert.ok(e instanceof MixqError, String(e));
  assert.equal(e.field, `assignments[${JSON.stringify(weight)}].element`);
  assert.match(e.message, /FP4 E2M1/);
  assert.match(e.message, /onnxruntime 1\.30/);
  assert.match(e.message, /float4e2m1/);
  assert.equal(e.expected, FP4_REFUSAL.expected);
  assert.match(e.expected, /matmulnbits/);
  assert.match(e.expected, /safetensors/);
  return true;
}

test('the exporter refuses FP4 weights, naming the weight, the format, the runtime and the alternatives', async () => {
  const m = buildMixModel();
  for (const name of ['fp4_e2m1fn', 'nvfp4', 'mxfp4']) {
    // one FP4 weight among integer ones: the whole export is refused, nothing is written
    const a: Record<string, WeightAssignment> = {
      'fc1.weight': { scheme: 'matmulnbits', bits: 4, blockSize: 32 },
      'fc2.weight': fp4(name),
    };
    await assert.rejects(quantizeOnnxWeights(m, a), (e) => assertFp4Refusal(e, 'fc2.weight'));
    // the simulation is the export's, so it refuses the same assignment
    await assert.rejects(fakeQuantizeOnnxWeights(m, a), (e) => assertFp4Refusal(e, 'fc2.weight'));
  }
  // Gemm and per-channel requests too
  await assert.rejects(
    quantizeOnnxWeights(m, {
      'gemm1.weight': { scheme: 'dequantizelinear', bits: 4, granularity: 'channel', element: 'fp4_e2m1fn' },
    }),
    (e) => assertFp4Refusal(e, 'gemm1.weight'),
  );
  // an unknown element is refused as such, not silently stored as FP8
  await assert.rejects(
    quantizeOnnxWeights(m, {
      'fc1.weight': fp4('int3'),
    }),
    (e) =>
      e instanceof MixqError &&
      e.field === 'assignments["fc1.weight"].element' &&
      /'int3'/.test(e.message) &&
      /fp8_e4m3fn/.test(e.expected),
  );
  // FP8 per channel still exports (the check did not break the existing element path)
  const ok = await quantizeOnnxWeights(m, {
    'fc1.weight': { scheme: 'dequantizelinear', bits: 8, element: 'fp8_e4m3fn', granularity: 'channel' },
  });
  assert.equal(ok.weights[0]?.op, 'DequantizeLinear');
});

test('no FP4 candidate maps to a native ONNX operator; all are stored packed (opset 18+) instead', () => {
  const fp4Cands = fullCandidates().filter((c) => quantizerOf(c).element.name === 'fp4_e2m1fn');
  const ids = fp4Cands.map(schemeId);
  for (const id of ['nvfp4-rtn', 'mxfp4-rtn', 'fp4_e2m1fn-pc-rtn']) assert.ok(ids.includes(id), id);
  const shapes: [readonly number[], 0 | 1, string][] = [
    [[128, 64], 1, 'MatMul:1'],
    [[64, 128], 0, 'Gemm:1'],
    [[32, 64, 1, 1], 0, 'Conv:1'],
  ];
  for (const c of fp4Cands)
    for (const [dims, outAxis, consumer] of shapes) {
      const L = rowLayout(dims, outAxis);
      for (const opset of [13, 21, 23])
        assert.equal(
          onnxAssignment(schemeOnTensor(c, L), L, consumer, opset, true),
          undefined,
          `${schemeId(c)} ${consumer}`,
        );
      const packed = onnxAssignment(schemeOnTensor(c, L), L, consumer, 21);
      // RTN: packed; GPTQ / AWQ on the FP4 grid: not exported (GPTQ's codes are integer-grid only)
      assert.equal(
        packed?.scheme,
        c.algorithm === 'rtn' ? 'packed' : undefined,
        `${schemeId(c)} ${consumer}`,
      );
      assert.equal(
        onnxAssignment(schemeOnTensor(c, L), L, consumer, 13),
        undefined,
        `${schemeId(c)} opset 13`,
      );
    }
  assert.ok(!nativeCandidates().some((c) => ids.includes(schemeId(c))));
});

// ---- canary: what onnxruntime does with hand-built FP4 models --------------------------------------

const K = 64;
const N = 8;

function valueInfo(name: string, t: number, shape: readonly number[]): unknown {
  return {
    name,
    type: { tensor_type: { elem_type: t, shape: { dim: shape.map((d) => ({ dim_value: d })) } } },
  };
}

/** A model whose output W [K, N] is the dequantized weight, at the given opset / IR version. */
function dqModel(opset: number, ir: number, inits: TensorProto[], nodes: NodeProto[]): Uint8Array {
  const proto = onnxMessageType('ModelProto').fromObject({
    ir_version: ir,
    producer_name: 'mixq-test',
    opset_import: [{ domain: '', version: opset }],
    graph: { name: 'fp4', input: [valueInfo('x', C.FLOAT, [1])], output: [valueInfo('W', C.FLOAT, [K, N])] },
  });
  const m = readOnnx(new Uint8Array(onnxMessageType('ModelProto').encode(proto).finish()), { source: 'fp4' });
  m.proto.graph!.initializer = inits;
  m.proto.graph!.node = nodes; // x is unused: W depends on initializers only
  return writeOnnx(m);
}

interface Nvfp4Weight {
  /** Element codes of W [K, N] row-major, packed two per byte, element 2i in the low nibble. */
  packed: Uint8Array;
  /** E4M3 codes of the blocks, [K / 16, N]. */
  scaleCodes: Uint8Array;
  tensorScale: number;
  /** nvfp4Decode's values, W [K, N]. */
  reference: Float32Array;
}

/**
 * A seeded weight W [K, N] quantized by mixq's NVFP4 along K (the reduction axis) per output column:
 * column n is one nvfp4Encode run of K values; its blocks are rewritten into the ONNX layout.
 */
function nvfp4Weight(): Nvfp4Weight {
  const rng = new Rng(7);
  const w = Float32Array.from({ length: K * N }, (_, i) => rng.nextNormal() * (i % 13 === 0 ? 0.6 : 0.1));
  const nb = K / 16;
  const packed = new Uint8Array((K * N) / 2);
  const scaleCodes = new Uint8Array(nb * N);
  const reference = new Float32Array(K * N);
  const col = new Float32Array(K);
  // one tensor scale for the whole weight, as the NVFP4 recipe has it
  const tensorScale = nvfp4Encode(w, { tensorScale: 'auto' }).tensorScale;
  const codes = new Uint8Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) col[k] = w[k * N + n]!;
    const enc = nvfp4Encode(col, { tensorScale });
    const dec = nvfp4Decode(enc.bytes, K, tensorScale);
    for (let b = 0; b < nb; b++) {
      scaleCodes[b * N + n] = enc.bytes[9 * b]!;
      for (let j = 0; j < 8; j++) {
        const byte = enc.bytes[9 * b + 1 + j]!;
        codes[(16 * b + 2 * j) * N + n] = byte & 15;
        codes[(16 * b + 2 * j + 1) * N + n] = byte >> 4;
      }
    }
    for (let k = 0; k < K; k++) reference[k * N + n] = dec[k]!;
  }
  for (let i = 0; i < packed.length; i++) packed[i] = codes[2 * i]! | (codes[2 * i + 1]! << 4);
  return { packed, scaleCodes, tensorScale, reference };
}

const WQ = nvfp4Weight();

/** The NVFP4 chain: W = DequantizeLinear(Wq fp4, DequantizeLinear(s e4m3, tensorScale), axis 0, block 16). */
function nvfp4Chain(type: number = C.FLOAT4E2M1): Uint8Array {
  return dqModel(
    23,
    11,
    [
      makeTensor('Wq', type, [K, N], WQ.packed),
      makeTensor('s8', C.FLOAT8E4M3FN, [K / 16, N], WQ.scaleCodes),
      makeTensor('g', C.FLOAT, [], floatBytes(Float32Array.of(WQ.tensorScale), 'float32')),
    ],
    [
      makeNode('DequantizeLinear', ['s8', 'g'], ['s'], { name: 'dq_scale' }),
      makeNode('DequantizeLinear', ['Wq', 's'], ['W'], { name: 'dq_w', attrs: { axis: 0, block_size: 16 } }),
    ],
  );
}

test('the hand-built NVFP4 weight decodes to nvfp4Decode bit for bit (ONNX packing, mixq reader, E2M1 table)', () => {
  const m = readOnnx(nvfp4Chain(), { source: 'fp4' });
  const t = m.proto.graph!.initializer.find((x) => x.name === 'Wq')!;
  const viaReader = getTensorFloat32(t);
  const nb = K / 16;
  let nonzero = 0;
  for (let i = 0; i < K * N; i++) {
    // independent decode: low nibble first, E2M1 table, scale = fp32(e4m3 * tensorScale), as the chain does
    const code = (WQ.packed[i >> 1]! >> (4 * (i & 1))) & 15;
    const k = Math.floor(i / N);
    const n = i % N;
    assert.ok(Object.is(viaReader[i], E2M1[code]), `reader at ${i}`);
    const s = Math.fround(e4m3(WQ.scaleCodes[Math.floor(k / 16) * N + n]!) * WQ.tensorScale);
    const v = Math.fround(E2M1[code]! * s);
    assert.ok(
      Object.is(v, WQ.reference[i]) || v === WQ.reference[i],
      `value at ${i}: ${v} vs ${WQ.reference[i]}`,
    );
    if (v !== 0) nonzero++;
  }
  assert.ok(nonzero > (K * N) / 2, 'a real weight, not zeros');
  assert.ok(WQ.scaleCodes.length === nb * N && new Set(WQ.scaleCodes).size > 4, 'varied block scales');
});

type Ort = typeof ortNode;

async function tryRun(ort: Ort, bytes: Uint8Array): Promise<Float32Array | Error> {
  try {
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(0), [1]) });
      return Float32Array.from(out.W!.data as Float32Array);
    } finally {
      await s.release();
    }
  } catch (e) {
    return e as Error;
  }
}

for (const [label, ort] of [
  ['onnxruntime-node', ortNode as Ort],
  ['onnxruntime-web', ortWeb as unknown as Ort],
] as const)
  test(`canary: ${label} still cannot load FP4 DequantizeLinear (an INT4 control runs)`, async () => {
    if (label === 'onnxruntime-web') ortWeb.env.wasm.numThreads = 1;
    // control: the same chain with the codes read as INT4 runs, so the models are well formed
    const control = await tryRun(ort, nvfp4Chain(C.INT4));
    assert.ok(control instanceof Float32Array, `INT4 control: ${String(control)}`);
    const plain = dqModel(
      23,
      11,
      [
        makeTensor('Wq', C.FLOAT4E2M1, [K, N], WQ.packed),
        makeTensor(
          's',
          C.FLOAT,
          [K / 16, N],
          floatBytes(new Float32Array((K / 16) * N).fill(0.5), 'float32'),
        ),
      ],
      [
        makeNode('DequantizeLinear', ['Wq', 's'], ['W'], {
          name: 'dq_w',
          attrs: { axis: 0, block_size: 16 },
        }),
      ],
    );
    for (const [what, bytes] of [
      ['NVFP4 chain', nvfp4Chain()],
      ['blocked FP4, float scales', plain],
    ] as const) {
      const r = await tryRun(ort, bytes);
      if (r instanceof Error) {
        assert.match(r.message, /Could not find an implementation for DequantizeLinear\(23\)/, what);
        continue;
      }
      // the runtime loads FP4 now: check it decodes like mixq, then ask for the export path
      if (what === 'NVFP4 chain')
        for (let i = 0; i < r.length; i++)
          assert.ok(r[i] === WQ.reference[i] || Object.is(r[i], WQ.reference[i]), `${label} ${what} at ${i}`);
      assert.fail(
        `${label} now runs ${what} (FLOAT4E2M1 DequantizeLinear-23): build the FP4 export path in ` +
          'src/export/onnx/quantize.ts and lift FP4_REFUSAL (issue #6)',
      );
    }
  });

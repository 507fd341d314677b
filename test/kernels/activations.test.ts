/**
 * Activation quantization in WebAssembly against its TypeScript references, bit for bit: the int8 blocks
 * of the 'q8' mode (act_q8 vs quantizeQ8Reference, which llama.cpp's Q8_0 scheme defines), the Q8_K blocks
 * of the 'q8k' mode (act_q8k vs quantizeQ8KReference: ggml's quantize_row_q8_K_ref) and the int8
 * lookup tables of the 'lut8' mode (act_lut vs lutActivationsReference). Inputs include the values where
 * float32 rounding decides: exact ties of the int8 grid, the largest and smallest magnitudes, subnormals,
 * signed zeros, infinities and NaN (which must reach the output: a NaN activation never turns into a
 * finite product).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  q8Bytes,
  q8kBytes,
  quantizeQ8KReference,
  quantizeQ8Reference,
  readQ8,
} from '../../src/kernels/activations.ts';
import { createKernels } from '../../src/kernels/context.ts';
import { lutActivationsReference } from '../../src/kernels/lut.ts';

function inputs(): Float32Array[] {
  const rng = new Rng(9);
  const out: Float32Array[] = [];
  const normal = Float32Array.from({ length: 256 }, () => rng.nextNormal() * 3);
  out.push(normal);
  // ties: block amax 127 * 2^-3 so d = 2^-3 and x = (n + 1/2) * 2^-3 lands halfway between codes
  const ties = new Float32Array(64);
  for (let i = 0; i < 64; i++) ties[i] = i % 32 === 0 ? 127 / 8 : ((i % 50) - 25 + 0.5) / 8;
  out.push(ties);
  const specials = [
    0, -0, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 1.1754943508222875e-38, 5e-39, 1, -1,
    0.5, 127, -127.5,
  ];
  out.push(Float32Array.from({ length: 32 }, (_, i) => specials[i % specials.length]!));
  out.push(new Float32Array(32)); // all zero: d = 0
  const withInf = Float32Array.from({ length: 32 }, () => rng.nextNormal());
  withInf[5] = Infinity;
  out.push(withInf);
  const withNan = Float32Array.from({ length: 32 }, () => rng.nextNormal());
  withNan[17] = Number.NaN;
  out.push(withNan);
  out.push(Float32Array.from({ length: 96 }, () => rng.nextNormal() * 2 ** -130));
  return out;
}

/** Every input padded with zeros to a multiple of `n` values. */
function padded(n: number): Float32Array[] {
  return inputs().map((x) => {
    const out = new Float32Array(Math.ceil(x.length / n) * n);
    out.set(x);
    return out;
  });
}

async function checkQuantizer(mode: 'q8' | 'q8k' | 'q8-ggml'): Promise<void> {
  const k = await createKernels();
  const inp = mode === 'q8k' ? padded(256) : inputs();
  // q8-ggml: block scales at the edges of fp16 (overflow to inf, its largest value, its subnormals, the
  // subnormal / normal boundary)
  if (mode === 'q8-ggml')
    for (const amax of [127 * 65520, 127 * 65519, 127 * 1e-6, 127 * 3e-8, 127 * 2 ** -14 * (1 - 2 ** -13)])
      inp.push(Float32Array.from({ length: 32 }, (_, i) => (i === 7 ? -amax : (amax * (i - 16)) / 17)));
  // q8k: the first block's largest magnitude twice with opposite signs (the first one sets the sign)
  if (mode === 'q8k')
    inp.push(Float32Array.from({ length: 256 }, (_, i) => (i === 3 ? -5 : i === 9 ? 5 : i / 100)));
  for (const x of inp) {
    const kp = x.length;
    const bytes = mode === 'q8' ? q8Bytes(kp) : q8kBytes(kp);
    if (mode === 'q8k') assert.equal((k.exports.q8k_act_bytes as (n: number) => number)(kp), bytes);
    const xp = k.memory.alloc(4 * kp);
    const qp = k.memory.alloc(bytes);
    k.memory.f32(xp, kp).set(x);
    if (mode === 'q8') k.exports.act_q8(xp, kp, qp);
    else if (mode === 'q8-ggml') k.exports.act_q8_ggml(xp, kp, qp);
    else k.exports.act_q8k(xp, kp, qp);
    const got = readQ8(k.memory.memory.buffer, qp, kp);
    const want =
      mode === 'q8k' ? quantizeQ8KReference(x) : quantizeQ8Reference(x, mode === 'q8-ggml' ? 'f16' : 'f32');
    assert.deepEqual(Array.from(got.qs), Array.from(want.qs));
    assert.deepEqual(Array.from(got.s), Array.from(want.s));
    for (let b = 0; b < want.d.length; b++)
      assert.ok(Object.is(got.d[b], want.d[b]), `${mode} block ${b}: d ${got.d[b]} vs ${want.d[b]}`);
    // the widened copy the SIMD128 dot reads
    assert.deepEqual(Array.from(new Int16Array(k.memory.memory.buffer, qp + kp, kp)), Array.from(want.qs));
    // |q| and the sign mask the relaxed dot of signed weights reads
    const t = qp + 3 * kp + kp / 8 + kp / 4;
    assert.deepEqual(
      Array.from(new Int8Array(k.memory.memory.buffer, t, kp)),
      Array.from(want.qs, (q) => Math.abs(q)),
    );
    assert.deepEqual(
      Array.from(new Int8Array(k.memory.memory.buffer, t + kp, kp)),
      Array.from(want.qs, (q) => (q < 0 ? -1 : 0)),
    );
    if (mode === 'q8k') {
      // block sums per 16 and per 32 as int16 (the K-quant kernels' zero points and minima)
      const bs = new Int16Array(k.memory.memory.buffer, qp + q8Bytes(kp), kp / 16 + kp / 32);
      assert.deepEqual(Array.from(bs.subarray(0, kp / 16)), Array.from(want.s));
      const s32 = Array.from({ length: kp / 32 }, (_, b) => want.s[2 * b]! + want.s[2 * b + 1]!);
      assert.deepEqual(Array.from(bs.subarray(kp / 16)), s32);
    }
    k.memory.release(xp);
    k.memory.release(qp);
  }
}

test('act_q8 equals quantizeQ8Reference bit for bit', () => checkQuantizer('q8'));
test('act_q8k equals quantizeQ8KReference bit for bit', () => checkQuantizer('q8k'));
test('act_q8_ggml (scales in fp16, as llama.cpp) equals quantizeQ8Reference(x, "f16") bit for bit', async () => {
  await checkQuantizer('q8-ggml');
  // the scales are fp16 values; the codes are act_q8's
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3.3);
  const a = quantizeQ8Reference(x, 'f16');
  const b = quantizeQ8Reference(x);
  assert.deepEqual(Array.from(a.qs), Array.from(b.qs));
  for (let i = 0; i < a.d.length; i++) {
    assert.equal(a.d[i], f16BitsToF32(f32ToF16Bits(b.d[i]!)));
    assert.notEqual(a.d[i], b.d[i]);
  }
});

test('act_lut equals lutActivationsReference bit for bit', async () => {
  const k = await createKernels();
  const actBytes = k.exports.lut_act_bytes as (kp: number) => number;
  const actLut = k.exports.act_lut as (x: number, kp: number, out: number) => void;
  for (const x of inputs()) {
    const kp = x.length;
    const xp = k.memory.alloc(4 * kp);
    const tp = k.memory.alloc(actBytes(kp));
    k.memory.f32(xp, kp).set(x);
    actLut(xp, kp, tp);
    const want = lutActivationsReference(x);
    const nb = kp / 32;
    assert.deepEqual(
      Array.from(new Int8Array(k.memory.memory.buffer, tp, nb * 128)),
      Array.from(want.tables),
    );
    const dt = new Float32Array(k.memory.memory.buffer, tp + nb * 128, nb);
    for (let b = 0; b < nb; b++)
      assert.ok(Object.is(dt[b], want.dt[b]), `block ${b}: dt ${dt[b]} vs ${want.dt[b]}`);
    assert.deepEqual(
      Array.from(new Int32Array(k.memory.memory.buffer, tp + nb * 132, nb)),
      Array.from(want.s15),
    );
  }
});

test('a NaN activation gives NaN products on the int8 paths', async () => {
  const k = await createKernels();
  const rows = 8;
  const cols = 64;
  const codes = new Uint8Array((rows * cols) / 2).fill(0x37);
  const scales = new Uint8Array(new Float32Array(rows).fill(0.5).buffer);
  const w = k.prepare({
    kind: 'mixq',
    rows,
    cols,
    element: 'uint4',
    groups: 'row',
    scaleFormat: 'fp32',
    symmetric: true,
    codes,
    scales,
  });
  const x = new Float32Array(cols).fill(1);
  x[40] = Number.NaN;
  for (const mode of w.modes)
    assert.ok(
      k.matvec(w, x, { mode }).every((v) => Number.isNaN(v)),
      mode,
    );
  const lw = k.prepare(
    {
      kind: 'mixq',
      rows,
      cols,
      element: 'uint4',
      groups: 'row',
      scaleFormat: 'fp32',
      symmetric: true,
      codes,
      scales,
    },
    { layout: 'lut' },
  );
  assert.ok(k.matvec(lw, x, { mode: 'lut8' }).every((v) => Number.isNaN(v)));
});

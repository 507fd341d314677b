// GPTQ and RTN against the original GPTQ implementation (test/golden/gptq_reference.json, IST-DASLab/gptq
// 2d65066 on PyTorch CPU): RTN bit-exact; GPTQ codes, scales/zeros, Q bit-exact and layer error within 1e-3.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gptq, gptqHessian } from '../../src/quant/algorithms/gptq.ts';
import { rtn } from '../../src/quant/algorithms/rtn.ts';
import { intSpec } from '../../src/formats/index.ts';
import { gram, outputErrorFromGram } from '../../src/quant/linalg.ts';
import type { QuantizerConfig } from '../../src/quant/qparams.ts';
import { f32hex, hexCodes, loadGptqGolden } from './golden-util.ts';

const d = loadGptqGolden();
const W = f32hex(d.W_f32hex);
const X = f32hex(d.X_f32hex);
const G = gram(X, d.n, d.cols);
const H = gptqHessian(X, d.n, d.cols);

function bitsEqualCount(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let bad = 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) bad++;
  return bad;
}

test('H = 2/n X^T X matches the reference H (float32 vs float64 accumulation)', () => {
  const Href = f32hex(d.H_f32hex);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < Href.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(H[i]! - Href[i]!));
    maxRef = Math.max(maxRef, Math.abs(Href[i]!));
  }
  assert.ok(maxAbs / maxRef < 1e-6, `max rel diff ${maxAbs / maxRef}`);
});

for (const [key, ref] of Object.entries(d.rtn)) {
  test(`RTN ${key} is bit-exact (scales, zeros, codes, Q)`, () => {
    const quantizer: QuantizerConfig = {
      element: intSpec(ref.bits, false),
      granularity:
        ref.groupsize === -1 ? { kind: 'axis', axis: 0 } : { kind: 'group', axis: 1, size: ref.groupsize },
      symmetric: ref.sym,
    };
    const r = rtn(W, [d.rows, d.cols], { quantizer });
    assert.equal(bitsEqualCount(r.quantized.params.scale, f32hex(ref.scale_f32hex)), 0, 'scale');
    assert.equal(bitsEqualCount(r.quantized.params.zero, f32hex(ref.zero_f32hex)), 0, 'zero');
    assert.deepEqual(r.quantized.codes, hexCodes(ref.codes_hex));
    assert.equal(bitsEqualCount(r.Q, f32hex(ref.Q_f32hex)), 0, 'Q');
    const err = outputErrorFromGram(W, r.Q, d.rows, d.cols, G);
    assert.ok(Math.abs(err / ref.err_out_fro2 - 1) < 1e-9, `${err} vs ${ref.err_out_fro2}`);
  });
}

for (const c of d.cases) {
  test(`GPTQ ${c.id}: codes, scales, Q exact; error within 1e-3 and below RTN`, () => {
    const r = gptq(W, d.rows, d.cols, H, {
      element: intSpec(c.bits, false),
      symmetric: c.sym,
      groupSize: c.groupsize,
      actOrder: c.act_order,
      percdamp: c.percdamp,
      blockSize: c.blocksize,
      staticGroups: c.static_groups,
    });
    const codes = hexCodes(c.codes_hex);
    let mismatches = 0;
    for (let i = 0; i < codes.length; i++) if (codes[i] !== r.codes[i]) mismatches++;
    assert.equal(mismatches, 0, `code mismatches: ${mismatches} of ${codes.length}`);
    assert.equal(r.nGroups, c.n_groups);
    assert.deepEqual(Array.from(r.gIdx), c.g_idx);
    if (c.perm) assert.deepEqual(Array.from(r.perm ?? []), c.perm);
    assert.equal(bitsEqualCount(r.scale, f32hex(c.scale_f32hex)), 0, 'scale');
    assert.equal(bitsEqualCount(r.zero, f32hex(c.zero_f32hex)), 0, 'zero');
    assert.equal(bitsEqualCount(r.Q, f32hex(c.Q_f32hex)), 0, 'Q');
    const err = outputErrorFromGram(W, r.Q, d.rows, d.cols, G);
    assert.ok(Math.abs(err / c.err_out_fro2_gptq - 1) < 1e-3, `err ${err} vs ${c.err_out_fro2_gptq}`);
    assert.ok(err < c.err_out_fro2_rtn, `err ${err} not below RTN ${c.err_out_fro2_rtn}`);
  });
}

test('GPTQ from the stored float32 H gives the same codes', () => {
  const Href = Float64Array.from(f32hex(d.H_f32hex));
  const c = d.cases.find((x) => x.id === 'b3_g32_asym_act1')!;
  const r = gptq(W, d.rows, d.cols, Href, {
    element: intSpec(3, false),
    symmetric: false,
    groupSize: 32,
    actOrder: true,
  });
  assert.deepEqual(r.codes, hexCodes(c.codes_hex));
});

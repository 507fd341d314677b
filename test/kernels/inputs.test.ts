/**
 * Bad input to the kernels: one MixqError naming the source, the field and what was expected, never a
 * wrong product. Covers shapes and byte counts, element codes that are not finite values (NaN codes of
 * FP8), scale codes that are NaN (E8M0 255), float16 weights or scales that are infinite, group sizes the
 * kernels cannot scale, modes a format has no kernel for, and products of the wrong length.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { createKernels } from '../../src/kernels/context.ts';
import type { WeightSource } from '../../src/kernels/source.ts';

const k = await createKernels();

function refuses(src: WeightSource, field: RegExp, opts?: { layout?: 'lut' }): void {
  assert.throws(
    () => k.prepare(src, opts),
    (e: unknown) => e instanceof MixqError && field.test(e.field) && !e.message.includes('\n'),
  );
}

const f32 = (v: number) => new Uint8Array(Float32Array.of(v).buffer);

test('shapes and byte counts', () => {
  refuses({ kind: 'float32', rows: 2, cols: 3, data: new Float32Array(5) }, /data.length/);
  refuses({ kind: 'float32', rows: 0, cols: 3, data: new Float32Array(0) }, /rows/);
  refuses({ kind: 'ggml', type: 'Q4_K', rows: 1, cols: 100, data: new Uint8Array(144) }, /cols/);
  refuses({ kind: 'ggml', type: 'Q4_0', rows: 1, cols: 32, data: new Uint8Array(17) }, /data.length/);
  refuses({ kind: 'ggml', type: 'IQ2_XS', rows: 1, cols: 256, data: new Uint8Array(10) }, /type/);
  refuses(
    {
      kind: 'mixq',
      rows: 2,
      cols: 64,
      element: 'uint4',
      groups: 'row',
      scaleFormat: 'fp32',
      symmetric: true,
      codes: new Uint8Array(10),
      scales: new Uint8Array(8),
    },
    /codes.length/,
  );
  refuses(
    {
      kind: 'mixq',
      rows: 2,
      cols: 64,
      element: 'uint4',
      groups: 32,
      scaleFormat: 'fp16',
      symmetric: true,
      codes: new Uint8Array(64),
      scales: new Uint8Array(4),
    },
    /scales.length/,
  );
});

test('codes and scales that are not finite values', () => {
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 32,
      element: 'fp8_e4m3fn',
      groups: 'row',
      scaleFormat: 'fp32',
      symmetric: true,
      codes: new Uint8Array(32).fill(0x7f),
      scales: f32(1),
    },
    /codes/,
  );
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 32,
      element: 'fp4_e2m1fn',
      groups: 32,
      scaleFormat: 'e8m0',
      symmetric: true,
      codes: new Uint8Array(16),
      scales: Uint8Array.of(255),
    },
    /scales/,
  );
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 32,
      element: 'fp4_e2m1fn',
      groups: 16,
      scaleFormat: 'fp8_e4m3fn',
      symmetric: true,
      codes: new Uint8Array(16),
      scales: Uint8Array.of(0x7f, 0x10),
      globalScale: 1,
    },
    /scales/,
  );
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 32,
      element: 'fp4_e2m1fn',
      groups: 16,
      scaleFormat: 'fp8_e4m3fn',
      symmetric: true,
      codes: new Uint8Array(16),
      scales: Uint8Array.of(0x10, 0x10),
    },
    /globalScale/,
  );
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 32,
      element: 'uint4',
      groups: 32,
      scaleFormat: 'fp16',
      symmetric: true,
      codes: new Uint8Array(16),
      scales: Uint8Array.of(0, 0x7c),
    },
    /scales/,
  );
  refuses({ kind: 'ggml', type: 'F16', rows: 1, cols: 2, data: Uint8Array.of(0, 0x3c, 0, 0x7c) }, /data/);
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 32,
      element: 'uint4',
      groups: 32,
      scaleFormat: 'fp16',
      symmetric: false,
      codes: new Uint8Array(16),
      scales: Uint8Array.of(0, 0x3c),
    },
    /zeros/,
  );
});

test('group sizes and layouts the kernels cannot run', () => {
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 96,
      element: 'uint4',
      groups: 48,
      scaleFormat: 'fp32',
      symmetric: true,
      codes: new Uint8Array(48),
      scales: new Uint8Array(8),
    },
    /groups/,
  );
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 64,
      element: 'uint5',
      groups: 'row',
      scaleFormat: 'fp32',
      symmetric: true,
      codes: new Uint8Array(40),
      scales: f32(1),
    },
    /element/,
    { layout: 'lut' },
  );
  refuses(
    {
      kind: 'mixq',
      rows: 1,
      cols: 64,
      element: 'uint2',
      groups: 16,
      scaleFormat: 'fp16',
      symmetric: true,
      codes: new Uint8Array(16),
      scales: new Uint8Array(8),
    },
    /groups/,
    { layout: 'lut' },
  );
});

test('modes and product sizes', () => {
  const w = k.prepare({ kind: 'float32', rows: 2, cols: 3, data: new Float32Array(6) });
  assert.throws(
    () => k.matvec(w, new Float32Array(3), { mode: 'q8' }),
    (e: unknown) => e instanceof MixqError && e.field === 'mode',
  );
  assert.throws(
    () => k.matvec(w, new Float32Array(4)),
    (e: unknown) => e instanceof MixqError && e.field === 'x.length',
  );
  assert.throws(
    () => k.matmul(w, new Float32Array(6), 0),
    (e: unknown) => e instanceof MixqError && e.field === 'batch',
  );
  assert.throws(
    () => k.matvec(w, new Float32Array(3), { out: new Float32Array(3) }),
    (e: unknown) => e instanceof MixqError && e.field === 'out.length',
  );
  k.release(w);
  assert.throws(
    () => k.matvec(w, new Float32Array(3)),
    (e: unknown) => e instanceof MixqError && e.field === 'weight',
  );
});

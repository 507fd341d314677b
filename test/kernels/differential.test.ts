/**
 * Every kernel against its plain TypeScript reference, for every format mixq writes, on odd shapes (37
 * rows: not a multiple of the 4- or 16-row tiles; K = 300: not a multiple of 16, 32 or 128; ggml types on
 * whole blocks), batch 1 (matrix x vector) and 5 (matrix x matrix), every activation mode of each format, in
 * both WebAssembly variants (SIMD128 and relaxed SIMD):
 *
 * - the reference decoder gives mixq's own dequantized weight bit for bit (src/quant / src/blocks);
 * - a product is within the rounding budget of its reference (budget.ts): the float64 sum of exactly
 *   decoded weights times the activations the mode uses (float32 x, the int8 blocks, the int8 tables);
 * - the int8 modes are within their activation error bound of the exact float32 product;
 * - with dyadic weights and activations whose sums are exact in any order, every kernel returns the exact
 *   result: reference, SIMD128 and relaxed SIMD agree bit for bit.
 *
 * Node 20 runs relaxed SIMD only behind --experimental-wasm-relaxed-simd: there this file runs itself in a
 * child node with the flag (both variants are tested there).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BLOCK_TYPES } from '../../src/blocks/registry.ts';
import { f32ToF16Bits } from '../../src/core/bits.ts';
import { Rng } from '../../src/core/rng.ts';
import { hasWasmRelaxedSimd } from '../../src/core/wasm.ts';
import { dequantizeQ8, quantizeQ8KReference, quantizeQ8Reference } from '../../src/kernels/activations.ts';
import { q8ActivationBudget, roundingBudget } from '../../src/kernels/budget.ts';
import { createKernels, type KernelContext, type PreparedWeight } from '../../src/kernels/context.ts';
import { writeDesc } from '../../src/kernels/layout.ts';
import { lutActivationsReference, lutRowReference } from '../../src/kernels/lut.ts';
import type { KernelVariant } from '../../src/kernels/module.ts';
import { rowBlockAbs } from '../../src/kernels/reference.ts';
import type { ActivationMode } from '../../src/kernels/registry.ts';
import type { GgmlSource, MixqSource, WeightSource } from '../../src/kernels/source.ts';
import {
  activations,
  exactActivations,
  exactlySummable,
  GGML_TYPES,
  ggmlCase,
  ggmlMaxCodeCase,
  type KernelCase,
  MIXQ_SPECS,
  type MixqSpec,
  mixqCase,
  mixqExactCase,
} from './cases.ts';

const CHILD = process.env.MIXQ_KERNEL_TEST_CHILD === '1';

/** int8 activations of `batch` rows of `cols` values, as the kernels read them, and what they stand for. */
function q8Rows(
  x: Float32Array,
  cols: number,
  kp: number,
  batch: number,
  mode: 'q8' | 'q8k',
  scale: 'f32' | 'f16',
) {
  const xhat = new Float64Array(cols * batch);
  const d: Float32Array[] = [];
  for (let j = 0; j < batch; j++) {
    const xp = new Float32Array(kp);
    xp.set(x.subarray(j * cols, (j + 1) * cols));
    const q = mode === 'q8' ? quantizeQ8Reference(xp, scale) : quantizeQ8KReference(xp);
    d.push(q.d);
    xhat.set(dequantizeQ8(q).subarray(0, cols), j * cols);
  }
  return { xhat, d };
}

/**
 * Every row of the batch product y (`batch` activation rows of x through w) equals that row's matrix x
 * vector product, bit for bit (the batch kernels keep the matvec's float32 operations and their order).
 */
function assertRowsEqualMatvec(
  k: KernelContext,
  w: PreparedWeight,
  x: Float32Array,
  batch: number,
  mode: ActivationMode,
  y: Float32Array,
  label: string,
): void {
  for (let j = 0; j < batch; j++) {
    const y1 = k.matvec(w, x.subarray(j * w.cols, (j + 1) * w.cols), { mode });
    for (let r = 0; r < w.rows; r++)
      assert.ok(
        Object.is(y[j * w.rows + r], y1[r]),
        `${label} input ${j} row ${r}: ${y[j * w.rows + r]} vs matvec ${y1[r]}`,
      );
  }
}

function checkProducts(
  k: KernelContext,
  c: KernelCase,
  w: PreparedWeight,
  mode: ActivationMode,
  batch: number,
): void {
  const { rows, cols, kp } = w;
  const x = activations(cols * batch, 11 + batch);
  const y = k.matmul(w, x, batch, { mode });
  const exact = k.reference(w, x, batch);
  const where = (j: number, r: number) => `${c.name} ${mode} batch ${batch}, row ${r} of input ${j}`;
  const budget = roundingBudget(mode, kp);
  if (mode === 'f32') {
    for (let i = 0; i < y.length; i++)
      assert.ok(
        Math.abs(y[i]! - exact.y[i]!) <= budget * exact.mag[i]!,
        `${where(Math.floor(i / rows), i % rows)}: ${y[i]} vs ${exact.y[i]}`,
      );
    return;
  }
  if (mode === 'q8' || mode === 'q8k') {
    // ggml weights' 'q8' activations keep their scales in fp16, as llama.cpp's
    const scale = mode === 'q8' && w.layout === 'ggml' ? 'f16' : 'f32';
    const { xhat, d } = q8Rows(x, cols, kp, batch, mode, scale);
    const ref = k.reference(w, xhat, batch);
    const blockAbs = rowBlockAbs((r, o) => o.set(k.decodeRow(w, r)), rows, kp);
    for (let j = 0; j < batch; j++)
      for (let r = 0; r < rows; r++) {
        const i = j * rows + r;
        const tol = budget * ref.mag[i]!;
        assert.ok(
          Math.abs(y[i]! - ref.y[i]!) <= tol,
          `${where(j, r)}: ${y[i]} vs reference ${ref.y[i]} (budget ${tol})`,
        );
        const act = q8ActivationBudget(blockAbs.subarray(r * (kp / 32), (r + 1) * (kp / 32)), d[j]!, scale);
        assert.ok(
          Math.abs(y[i]! - exact.y[i]!) <= act + tol,
          `${where(j, r)}: ${y[i]} vs exact ${exact.y[i]} (bound ${act})`,
        );
      }
    return;
  }
  // lut8
  const bytes = k.memory.bytes();
  const desc = k.descOf(w);
  for (let j = 0; j < batch; j++) {
    const xp = new Float32Array(kp);
    xp.set(x.subarray(j * cols, (j + 1) * cols));
    const a = lutActivationsReference(xp);
    for (let r = 0; r < rows; r++) {
      const i = j * rows + r;
      const ref = lutRowReference(bytes, desc, a, r);
      const tol = budget * ref.mag;
      assert.ok(Math.abs(y[i]! - ref.y) <= tol, `${where(j, r)}: ${y[i]} vs reference ${ref.y}`);
      assert.ok(
        Math.abs(y[i]! - exact.y[i]!) <= ref.tableError + tol,
        `${where(j, r)}: ${y[i]} vs exact ${exact.y[i]} (bound ${ref.tableError})`,
      );
    }
  }
}

function checkExact(
  k: KernelContext,
  c: KernelCase,
  w: PreparedWeight,
  mode: ActivationMode,
  batch: number,
): void {
  const x = exactActivations(w.cols, batch, 5 + batch);
  const y = k.matmul(w, x, batch, { mode });
  const ref = k.reference(w, x, batch); // x is its own int8 image (block scales 2^-6)
  for (let r = 0; r < w.rows; r++) {
    const row = k.decodeRow(w, r);
    for (let j = 0; j < batch; j++) {
      assert.ok(
        exactlySummable(row.subarray(0, w.cols), x.subarray(j * w.cols, (j + 1) * w.cols)),
        `${c.name}: case is not exact`,
      );
      const i = j * w.rows + r;
      assert.equal(y[i], ref.y[i], `${c.name} ${mode} batch ${batch} row ${r}: ${y[i]} != exact ${ref.y[i]}`);
    }
  }
}

async function allCases(): Promise<{ cases: KernelCase[]; exact: KernelCase[] }> {
  const cases: KernelCase[] = [];
  for (const s of MIXQ_SPECS) cases.push(await mixqCase(s));
  for (const t of GGML_TYPES) cases.push(ggmlCase(t));
  cases.push({
    name: 'float32',
    source: { kind: 'float32', rows: 37, cols: 301, data: activations(37 * 301, 2) },
  });
  const exactSpecs = MIXQ_SPECS.filter(
    (s) =>
      (s.format.includes('int') || s.format === 'fp4_e2m1fn' || s.format === 'fp6_e2m3fn') &&
      s.scaleFormat !== 'none' &&
      typeof s.scaleFormat !== 'object' &&
      s.groups !== 'tensor',
  );
  const exact = [
    ...exactSpecs.map((s) => mixqExactCase(s)),
    ...GGML_TYPES.filter((t) => !t.startsWith('F') && t !== 'BF16').map((t) => ggmlCase(t, true)),
  ];
  return { cases, exact };
}

function variantsToTest(): KernelVariant[] {
  return hasWasmRelaxedSimd() ? ['simd128', 'relaxed'] : ['simd128'];
}

if (!hasWasmRelaxedSimd() && !CHILD) {
  test('kernel differential tests (child node with --experimental-wasm-relaxed-simd: SIMD128 and relaxed)', () => {
    const file = fileURLToPath(import.meta.url);
    const env: Record<string, string | undefined> = { ...process.env, MIXQ_KERNEL_TEST_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT; // a test file of its own, not a subtest of this one
    const r = spawnSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', '--import', 'tsx', '--test-reporter=spec', file],
      { env, encoding: 'utf8', timeout: 300_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, out.slice(-6000));
    assert.match(out, /relaxed/, 'the child ran the relaxed-SIMD variant');
  });
} else {
  const { cases, exact } = await allCases();
  for (const variant of variantsToTest()) {
    test(`kernels (${variant}): every format against its reference`, async (t) => {
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      assert.equal(k.variant, variant);
      for (const c of cases) {
        await t.test(c.name, () => {
          const w = k.prepare(c.source, c.options);
          if (c.dequant) {
            for (let r = 0; r < w.rows; r++) {
              const row = k.decodeRow(w, r);
              for (let col = 0; col < w.cols; col++)
                assert.ok(
                  Object.is(row[col], c.dequant[r * w.cols + col]) ||
                    row[col] === c.dequant[r * w.cols + col],
                  `${c.name} decoder row ${r} col ${col}: ${row[col]} vs ${c.dequant[r * w.cols + col]}`,
                );
            }
          }
          for (const mode of w.modes) for (const batch of [1, 5]) checkProducts(k, c, w, mode, batch);
          k.release(w);
        });
      }
    });
    test(`kernels (${variant}): int16 partial sums at their bound (codes all max, |q| = 127)`, async (t) => {
      // Small codes fold their partial sums in int16 before widening (sliced.h DK_U4: 1..4-bit integer
      // codes, 16 products of 15 * 127 = 30480 per lane; DK_U5: groups of 16 with codes <= 32, 5-bit
      // integers and NVFP4's table values 0..24; the LUT layout's int8 path). Every code at its largest
      // value and every activation at +-127 reach those bounds; a wrapped sum is off by 65536 units.
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const rows = 9;
      const cols = 300;
      const specs: { element: string; bits: number; groups: number | 'row'; lut?: boolean; nv?: boolean }[] =
        [
          { element: 'uint4', bits: 4, groups: 32 },
          { element: 'uint4', bits: 4, groups: 16 },
          { element: 'uint3', bits: 3, groups: 32 },
          { element: 'uint2', bits: 2, groups: 16 },
          { element: 'uint5', bits: 5, groups: 16 },
          { element: 'uint4', bits: 4, groups: 32, lut: true },
          { element: 'uint2', bits: 2, groups: 'row', lut: true },
          { element: 'fp4_e2m1fn', bits: 4, groups: 16, nv: true }, // NVFP4, every code +6
        ];
      for (const { element, bits, groups, lut, nv } of specs) {
        const name = `${element} g${groups}${lut ? ' lut' : ''}`;
        await t.test(name, () => {
          const ng = groups === 'row' ? rows : rows * Math.ceil(cols / groups);
          const codes = new Uint8Array(Math.ceil((rows * cols * bits) / 8)).fill(nv ? 0x77 : 255);
          const scales = nv
            ? new Uint8Array(ng).fill(0x38) // e4m3 1.0
            : groups === 'row'
              ? new Uint8Array(new Float32Array(ng).fill(0.5).buffer)
              : new Uint8Array(2 * ng).map((_, i) => (i & 1 ? 0x38 : 0)); // fp16 0.5
          const w = k.prepare(
            {
              kind: 'mixq',
              rows,
              cols,
              element,
              groups,
              scaleFormat: nv ? 'fp8_e4m3fn' : groups === 'row' ? 'fp32' : 'fp16',
              symmetric: true,
              codes,
              scales,
              ...(nv ? { globalScale: 1 } : {}),
            },
            lut ? { layout: 'lut' } : {},
          );
          const x = new Float32Array(2 * cols);
          x.fill(1, 0, cols);
          x.fill(-1, cols);
          // batch 2 (matrix x matrix) and batch 1 (matrix x vector: interleaved tiles, sliced.h sl_il_sum)
          const y = k.matmul(w, x, 2, { mode: 'q8' });
          const y1 = k.matvec(w, x.subarray(cols), { mode: 'q8' });
          const { xhat } = q8Rows(x, cols, w.kp, 2, 'q8', 'f32');
          const ref = k.reference(w, xhat, 2);
          const budget = roundingBudget('q8', w.kp);
          for (let i = 0; i < y.length; i++)
            assert.ok(Math.abs(y[i]! - ref.y[i]!) <= budget * ref.mag[i]!, `${name}: ${y[i]} vs ${ref.y[i]}`);
          for (let i = 0; i < rows; i++)
            assert.ok(
              Math.abs(y1[i]! - ref.y[rows + i]!) <= budget * ref.mag[rows + i]!,
              `${name} matvec: ${y1[i]} vs ${ref.y[rows + i]}`,
            );
          k.release(w);
        });
      }
    });
    test(`kernels (${variant}): ggml matrix x matrix, every batch row its matrix x vector bit for bit`, async (t) => {
      // ggml-k.h kmm_tile decodes each K-quant super-block of a 4-row tile once for the whole batch (a loop
      // over the activation rows, KMM_ROWS = 64 at a time; ggml.h GGML_IL_MM_FN four rows per step, then
      // two, and Q4_0 ZP_ROWS = 64 rows per pass): batch sizes around that blocking, 13 rows (a last tile
      // of one row, run as stored); the same integer sums
      // scaled in the same float32 order as the matrix x vector kernel, and within budget of the reference.
      // Codes all at their largest value against |q| = 127 reach the int16 partial sums' bounds (Q6_K:
      // 4 * 63 * 127 of 32767).
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      for (const type of ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_0', 'Q8_0', 'IQ4_NL'] as const) {
        const mode = type.endsWith('_K') ? 'q8k' : 'q8';
        await t.test(type, () => {
          for (const c of [ggmlCase(type, false, 13), ggmlMaxCodeCase(type, 9, 512)]) {
            const w = k.prepare(c.source);
            const max = c.name.endsWith('-max');
            for (const batch of max ? [2, 3, 5] : [2, 3, 8, 33, 67]) {
              const x = max
                ? Float32Array.from({ length: batch * w.cols }, (_, i) =>
                    Math.floor(i / w.cols) & 1 ? -1 : 1,
                  )
                : activations(w.cols * batch, 11 + batch);
              const y = k.matmul(w, x, batch, { mode });
              assertRowsEqualMatvec(k, w, x, batch, mode, y, `${c.name} batch ${batch}`);
              if (max) {
                const { xhat } = q8Rows(x, w.cols, w.kp, batch, mode, mode === 'q8' ? 'f16' : 'f32');
                const ref = k.reference(w, xhat, batch);
                const budget = roundingBudget(mode, w.kp);
                for (let i = 0; i < y.length; i++)
                  assert.ok(
                    Math.abs(y[i]! - ref.y[i]!) <= budget * ref.mag[i]!,
                    `${c.name}: ${y[i]} vs ${ref.y[i]}`,
                  );
              } else checkProducts(k, c, w, mode, batch);
            }
            k.release(w);
          }
        });
      }
    });
    test(`kernels (${variant}): float rows (F32 / F16 / BF16), every row of a matrix x vector its row alone bit for bit`, async (t) => {
      // dense.h mv_dense_impl computes MV_LANES rows per pass, taken from MV_LANES runs of the row range
      // (rows far apart): which rows share a pass, and at which place, must not change any row's float32
      // operations. Every row count up to three passes' rows and 37, K with a scalar tail (301) and without
      // (256); each row against the same row as a one-row matrix (its only pass: place 0, copies beside it).
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      for (const type of ['F32', 'F16', 'BF16'] as const) {
        await t.test(type, () => {
          for (const cols of [301, 256])
            for (const rows of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 37]) {
              const vals = activations(rows * cols, 40 + rows).map((v) => 0.1 * v);
              const src: GgmlSource = {
                kind: 'ggml',
                type,
                rows,
                cols,
                data: BLOCK_TYPES[type].encode(vals),
              };
              const w = k.prepare(src);
              const x = activations(cols, 3 + rows);
              const y = Float32Array.from(k.matvec(w, x, { mode: 'f32' }));
              const rb = src.data.length / rows;
              for (let r = 0; r < rows; r++) {
                const one = k.prepare({ ...src, rows: 1, data: src.data.slice(r * rb, (r + 1) * rb) });
                const y1 = k.matvec(one, x, { mode: 'f32' });
                assert.ok(
                  Object.is(y[r], y1[0]),
                  `${type} ${rows} x ${cols} row ${r}: ${y[r]} vs alone ${y1[0]}`,
                );
                k.release(one);
              }
              k.release(w);
            }
        });
      }
    });
    test(`kernels (${variant}): float rows matrix x matrix, every batch row its matrix x vector bit for bit`, async (t) => {
      // dense.h mm_f32_rows: tiles of 3 rows x 3 activation rows, K in blocks of 512 (accumulators kept in
      // scratch between blocks), 33 activation rows per pass; the matrix x vector kernel sums 16 values per
      // step and then the last K mod 16 in a scalar tail. Widths below, at and across a block (K mod 16 of
      // 0, 4, 5, 12), 13 rows (a last tile of one row), batch sizes around the step and the pass.
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      for (const type of ['F32', 'F16', 'BF16'] as const) {
        await t.test(type, () => {
          for (const cols of [5, 300, 301, 304, 1100]) {
            const rng = new Rng(cols);
            const W = Float32Array.from({ length: 13 * cols }, () => rng.nextNormal() * 0.1);
            const w = k.prepare({ kind: 'ggml', type, rows: 13, cols, data: BLOCK_TYPES[type].encode(W) });
            for (const batch of [2, 3, 4, 33, 34, 67]) {
              const x = activations(cols * batch, 5 + batch);
              const y = k.matmul(w, x, batch, { mode: 'f32' });
              assertRowsEqualMatvec(k, w, x, batch, 'f32', y, `${type} K ${cols} batch ${batch}`);
            }
            k.release(w);
          }
        });
      }
    });
    test(`kernels (${variant}): mixq matrix x matrix, every batch row its matrix x vector bit for bit`, async (t) => {
      // sliced.h smm_tile decodes each 32 weights x 4 rows of an interleaved tile once for the whole batch
      // (a loop over the activation rows, SMM_ROWS = 64 at a time) and scales each step per activation row
      // as the matrix x vector kernel does: batch sizes around that blocking, 13 rows (a last tile of one
      // row, run as stored), K = 300 (a partial last block). Kinds without a specialisation (int7, uint8
      // g32) keep the decode-to-scratch path, whose 32-weight steps differ in float32 rounding from the
      // generic matvec's 16-weight ones: they are held to the reference only.
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const specs: MixqSpec[] = [
        { format: 'uint4', groups: 32, scaleFormat: 'fp16', symmetric: false },
        { format: 'uint4', groups: 128, scaleFormat: 'fp16', symmetric: false },
        { format: 'uint4', groups: 16, scaleFormat: 'fp16', symmetric: false },
        { format: 'uint3', groups: 32, scaleFormat: 'fp16', symmetric: false },
        { format: 'uint2', groups: 32, scaleFormat: 'fp16', symmetric: false },
        { format: 'int2', groups: 16, scaleFormat: 'fp16', symmetric: true },
        { format: 'uint5', groups: 32, scaleFormat: 'fp16', symmetric: false },
        { format: 'int5', groups: 16, scaleFormat: 'fp16', symmetric: true },
        { format: 'int6', groups: 'row', scaleFormat: 'fp32', symmetric: true },
        { format: 'int8', groups: 'row', scaleFormat: 'fp32', symmetric: true },
        { format: 'int7', groups: 64, scaleFormat: 'bf16', symmetric: true },
        { format: 'uint8', groups: 32, scaleFormat: 'fp16', symmetric: false },
        { format: 'fp4_e2m1fn', groups: 32, scaleFormat: 'e8m0', symmetric: true }, // MXFP4
        { format: 'fp4_e2m1fn', groups: 16, scaleFormat: 'fp8_e4m3fn', symmetric: true }, // NVFP4
        { format: 'fp4_e2m1fn', groups: 32, scaleFormat: 'fp16', symmetric: false }, // offsets
        { format: 'fp6_e2m3fn', groups: 32, scaleFormat: 'e8m0', symmetric: true }, // MXFP6
      ];
      for (const s of specs) {
        const c = await mixqCase(s, 13, 300, 5);
        const generic = s.format === 'int7' || s.format === 'uint8';
        await t.test(c.name, () => {
          const w = k.prepare(c.source);
          for (const batch of [2, 3, 33, 67]) {
            const x = activations(w.cols * batch, 17 + batch);
            const y = k.matmul(w, x, batch, { mode: 'q8' });
            if (!generic) assertRowsEqualMatvec(k, w, x, batch, 'q8', y, `${c.name} batch ${batch}`);
            if (batch === 3 || generic) checkProducts(k, c, w, 'q8', batch);
          }
          k.release(w);
        });
      }
    });
    test(`kernels (${variant}): groups of 32 with fp16 scales on interleaved tiles equal the stored rows bit for bit`, async (t) => {
      // Symmetric integers with fp16 scales per 32 weights and K a multiple of 128 take sliced.h
      // sl_il_tile_q8_g32 on their interleaved tiles (the scales' bits moved into float32's fields and the
      // 2^112 folded into the precomputed activation scale, zero code x activation sum precomputed per
      // step): every product equals the stored rows' kernel (sl_scale_step, the scales as
      // f16x4_to_f32 converts them) bit for bit, for scales of either sign, zero, subnormal and the largest,
      // and for activations with a block scale >= 2^16 (the general loop: 2^112 would overflow). Matrix x
      // matrix (smm_tile) gives each batch row its matrix x vector.
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const rows = 13; // three interleaved tiles and one row as stored
      const cols = 512;
      const special = [0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x8400, 0x7bff, 0xfbff, 0x3c00, 0xbc00];
      for (const bits of [2, 3, 4, 5, 6, 8]) {
        await t.test(`uint${bits} g32`, () => {
          const rng = new Rng(bits);
          const ng = (rows * cols) / 32;
          const scales = new Uint16Array(ng).map((_, i) =>
            i % 3 === 0 ? special[(i / 3) % special.length]! : f32ToF16Bits((rng.nextFloat() - 0.5) * 0.02),
          );
          const src: WeightSource = {
            kind: 'mixq',
            rows,
            cols,
            element: `uint${bits}`,
            groups: 32,
            scaleFormat: 'fp16',
            symmetric: true,
            // 8 bits: no code 0, so the int8 path's signed dot (codes - 128 >= -127) takes them
            codes: new Uint8Array((rows * cols * bits) / 8).map(() =>
              Math.max(bits === 8 ? 1 : 0, Math.floor(rng.nextFloat() * 256)),
            ),
            scales: new Uint8Array(scales.buffer),
          };
          const tiled = k.prepare(src);
          const stored = k.prepare(src, { layout: 'stored' });
          assert.equal(k.descOf(tiled).interleave, 4);
          const x = Float32Array.from({ length: 3 * cols }, (_, i) => Math.sin(i + bits));
          for (let i = 64; i < 96; i++) x[2 * cols + i] = x[2 * cols + i]! * 1e7; // a block scale >= 2^16
          for (let j = 0; j < 3; j++) {
            const xj = x.subarray(j * cols, (j + 1) * cols);
            const a = k.matvec(tiled, xj, { mode: 'q8' });
            const b = k.matvec(stored, xj, { mode: 'q8' });
            for (let r = 0; r < rows; r++)
              assert.ok(Object.is(a[r], b[r]), `uint${bits} input ${j} row ${r}: ${a[r]} vs stored ${b[r]}`);
          }
          assertRowsEqualMatvec(
            k,
            tiled,
            x,
            3,
            'q8',
            k.matmul(tiled, x, 3, { mode: 'q8' }),
            `uint${bits} batch 3`,
          );
          // every activation block scale < 2^16: 2..4-bit codes take smm_g32 (sliced.h; batches up to
          // SMM_ROWS = 64, so 67 takes smm_tile), each batch row still its matrix x vector bit for bit
          for (const batch of [2, 33, 67]) {
            const xb = Float32Array.from({ length: batch * cols }, (_, i) => Math.cos(0.7 * i + bits));
            const yb = k.matmul(tiled, xb, batch, { mode: 'q8' });
            assertRowsEqualMatvec(k, tiled, xb, batch, 'q8', yb, `uint${bits} batch ${batch}`);
          }
          k.release(tiled);
          k.release(stored);
        });
      }
    });
    test(`kernels (${variant}): E8M0 / E4M3 groups and per-row scales on interleaved tiles equal the stored rows bit for bit`, async (t) => {
      // sliced.h sl_il_tile_q8_g32's other forms (sl_fast_kind): MXFP4 (E8M0 per 32, the scale as its bits
      // with qunit folded into the precomputed activation scale), NVFP4 (E4M3 per 16, the scale's bits times
      // sl_e4m3_factor), and one scale per row (FP4, int6, int8), the zero code / qoffset times the activation
      // sum precomputed per step: every product equals the stored rows' kernel (sl_scale_step) bit for bit,
      // for every E8M0 code class (0 = 2^-127, 1, 127, 254), E4M3 scales of either sign, zero and subnormal,
      // and activations with a block scale below float32's normal range times qunit (the general loop).
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const rows = 13; // three interleaved tiles and one row as stored
      const cols = 512;
      const e8 = [0, 1, 2, 126, 127, 128, 200, 254];
      const e4 = [0x00, 0x80, 0x01, 0x81, 0x07, 0x08, 0x38, 0xb8, 0x7e, 0xfe, 0x30];
      const rowScales = (rng: Rng) =>
        new Uint8Array(
          Float32Array.from({ length: rows }, (_, r) => (r % 5 === 2 ? -1 : 1) * (rng.nextFloat() + 0.01))
            .buffer,
        );
      const specs: [string, (rng: Rng) => WeightSource][] = [
        [
          'MXFP4',
          (rng) => ({
            kind: 'mixq',
            rows,
            cols,
            element: 'fp4_e2m1fn',
            groups: 32,
            scaleFormat: 'e8m0',
            symmetric: true,
            codes: new Uint8Array((rows * cols) / 2).map(() => Math.floor(rng.nextFloat() * 256)),
            // row 1 all 2^-127 and row 2 all 2^-127 .. 2^-125 (their products tiny: no larger group hides them)
            scales: new Uint8Array((rows * cols) / 32).map((_, i) =>
              i >> 4 === 1
                ? 0
                : i >> 4 === 2
                  ? i % 3
                  : i % 3 === 0
                    ? e8[(i / 3) % e8.length]!
                    : 110 + Math.floor(rng.nextFloat() * 30),
            ),
          }),
        ],
        [
          'NVFP4',
          (rng) => ({
            kind: 'mixq',
            rows,
            cols,
            element: 'fp4_e2m1fn',
            groups: 16,
            scaleFormat: 'fp8_e4m3fn',
            symmetric: true,
            codes: new Uint8Array((rows * cols) / 2).map(() => Math.floor(rng.nextFloat() * 256)),
            scales: new Uint8Array((rows * cols) / 16).map((_, i) =>
              i % 3 === 0 ? e4[(i / 3) % e4.length]! : Math.floor(rng.nextFloat() * 0x7e),
            ),
            globalScale: 0.0123,
          }),
        ],
        [
          'FP4 per row',
          (rng) => ({
            kind: 'mixq',
            rows,
            cols,
            element: 'fp4_e2m1fn',
            groups: 'row',
            scaleFormat: 'fp32',
            symmetric: true,
            codes: new Uint8Array((rows * cols) / 2).map(() => Math.floor(rng.nextFloat() * 256)),
            scales: rowScales(rng),
          }),
        ],
        ...[5, 6, 8].map((bits): [string, (rng: Rng) => WeightSource] => [
          `uint${bits} per row`,
          (rng) => ({
            kind: 'mixq',
            rows,
            cols,
            element: `uint${bits}`,
            groups: 'row',
            scaleFormat: 'fp32',
            symmetric: true,
            // 8 bits: no code 0, so the int8 path's signed dot (codes - 128 >= -127) takes them
            codes: new Uint8Array((rows * cols * bits) / 8).map(() =>
              Math.max(bits === 8 ? 1 : 0, Math.floor(rng.nextFloat() * 256)),
            ),
            scales: rowScales(rng),
          }),
        ]),
      ];
      for (const [name, make] of specs) {
        await t.test(name, () => {
          const src = make(new Rng(name.length));
          const tiled = k.prepare(src);
          const stored = k.prepare(src, { layout: 'stored' });
          assert.equal(k.descOf(tiled).interleave, 4);
          const x = Float32Array.from({ length: 3 * cols }, (_, i) => Math.sin(i + name.length));
          for (let i = 64; i < 96; i++) x[2 * cols + i] = x[2 * cols + i]! * 1e-37; // a block scale below 2^-125
          for (let j = 0; j < 3; j++) {
            const xj = x.subarray(j * cols, (j + 1) * cols);
            const a = k.matvec(tiled, xj, { mode: 'q8' });
            const b = k.matvec(stored, xj, { mode: 'q8' });
            for (let r = 0; r < rows; r++)
              assert.ok(Object.is(a[r], b[r]), `${name} input ${j} row ${r}: ${a[r]} vs stored ${b[r]}`);
          }
          assertRowsEqualMatvec(
            k,
            tiled,
            x,
            3,
            'q8',
            k.matmul(tiled, x, 3, { mode: 'q8' }),
            `${name} batch 3`,
          );
          k.release(tiled);
          k.release(stored);
        });
      }
    });
    test(`kernels (${variant}): lookup tables of large activations (table scales above 2^15)`, async (t) => {
      // lut.h lut_scales16 folds a block's table scale dt into the fp16 scales' conversion factor 2^112 when
      // dt <= 2^15 and multiplies by dt apart above that (activations of ~1e6 and more): blocks of both
      // kinds in one product, each row within budget of the reference, every batch row its matvec.
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const specs: MixqSpec[] = [
        { format: 'uint2', groups: 32, scaleFormat: 'fp16', symmetric: false, lut: true },
        { format: 'int3', groups: 64, scaleFormat: 'fp16', symmetric: true, lut: true },
        { format: 'uint4', groups: 'row', scaleFormat: 'fp32', symmetric: false, lut: true },
      ];
      for (const s of specs) {
        const c = await mixqCase(s, 37, 300, 3);
        await t.test(c.name, () => {
          const w = k.prepare(c.source, c.options);
          const batch = 3;
          // blocks 0, 2, 4, ... of 32 activations times 1e7 (dt ~ 1e7 * 4 / 127 > 2^15), the others as drawn
          const x = activations(w.cols * batch, 23).map((v, i) => (((i % w.cols) >> 5) & 1 ? v : v * 1e7));
          const y = k.matmul(w, x, batch, { mode: 'lut8' });
          const bytes = k.memory.bytes();
          const desc = k.descOf(w);
          const budget = roundingBudget('lut8', w.kp);
          for (let j = 0; j < batch; j++) {
            const xp = new Float32Array(w.kp);
            xp.set(x.subarray(j * w.cols, (j + 1) * w.cols));
            const a = lutActivationsReference(xp);
            assert.ok(
              a.dt.some((d) => d > 2 ** 15) && a.dt.some((d) => d <= 2 ** 15),
              'blocks on both sides of 2^15',
            );
            const y1 = k.matvec(w, x.subarray(j * w.cols, (j + 1) * w.cols), { mode: 'lut8' });
            for (let r = 0; r < w.rows; r++) {
              const i = j * w.rows + r;
              const ref = lutRowReference(bytes, desc, a, r);
              assert.ok(
                Math.abs(y[i]! - ref.y) <= budget * ref.mag,
                `${c.name} input ${j} row ${r}: ${y[i]} vs reference ${ref.y} (budget ${budget * ref.mag})`,
              );
              assert.ok(Object.is(y[i], y1[r]), `${c.name} input ${j} row ${r}: ${y[i]} vs matvec ${y1[r]}`);
            }
          }
          k.release(w);
        });
      }
    });
    test(`kernels (${variant}): lookup tables in groups of 32: lut_tile_g32 equals lut_tile bit for bit`, async (t) => {
      // lut.h takes lut_tile_g32 for fp16 scales in groups of 32 whose sign bits are all clear (the
      // descriptor's scaleNonneg, set by prepare) and lut_tile otherwise: each weight both ways (the flag
      // cleared in its descriptor), every output the same float. Activation blocks as drawn, times 1e7 (dt
      // above 2^15), times 1e-25 (dt below 2^-60) and zero take the fast path's conversion and its fallback.
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      const specs: MixqSpec[] = [
        { format: 'uint1', groups: 32, scaleFormat: 'fp16', symmetric: false, lut: true },
        { format: 'int2', groups: 32, scaleFormat: 'fp16', symmetric: true, lut: true },
        { format: 'uint2', groups: 32, scaleFormat: 'fp16', symmetric: false, lut: true },
        { format: 'int3', groups: 32, scaleFormat: 'fp16', symmetric: true, lut: true },
        { format: 'uint4', groups: 32, scaleFormat: 'fp16', symmetric: false, lut: true },
      ];
      for (const s of specs) {
        const c = await mixqCase(s, 37, 300, 7);
        await t.test(c.name, () => {
          const w = k.prepare(c.source, c.options);
          assert.equal(k.descOf(w).scaleNonneg, 1, 'the fast path applies');
          const batch = 3;
          const scale = [1, 1e7, 1, 1e-25, 1, 0];
          const x = activations(w.cols * batch, 29).map((v, i) => v * scale[((i % w.cols) >> 5) % 6]!);
          const fast = k.matmul(w, x, batch, { mode: 'lut8' });
          const fast1 = k.matvec(w, x.subarray(0, w.cols), { mode: 'lut8' });
          writeDesc(k.memory.memory.buffer, w.desc, { ...k.descOf(w), scaleNonneg: 0 });
          const slow = k.matmul(w, x, batch, { mode: 'lut8' });
          for (let i = 0; i < fast.length; i++)
            assert.ok(
              Object.is(fast[i], slow[i]),
              `${c.name} output ${i}: ${fast[i]} vs lut_tile ${slow[i]}`,
            );
          for (let r = 0; r < w.rows; r++)
            assert.ok(Object.is(fast1[r], slow[r]), `${c.name} matvec row ${r}`);
          k.release(w);
        });
      }
      // one negative scale (row 0, group 5): prepare clears the flag, and the products stay within budget
      const neg = await mixqCase(specs[2]!, 37, 300, 7);
      await t.test(`${neg.name}, a negative scale`, () => {
        const src = neg.source as MixqSource;
        const scales = Uint8Array.from(src.scales!);
        scales[2 * 5 + 1]! |= 0x80;
        const w = k.prepare({ ...src, scales }, neg.options);
        assert.equal(k.descOf(w).scaleNonneg, 0);
        const x = activations(w.cols, 31);
        const y = k.matvec(w, x, { mode: 'lut8' });
        const xp = new Float32Array(w.kp);
        xp.set(x);
        const a = lutActivationsReference(xp);
        const budget = roundingBudget('lut8', w.kp);
        for (let r = 0; r < w.rows; r++) {
          const ref = lutRowReference(k.memory.bytes(), k.descOf(w), a, r);
          assert.ok(Math.abs(y[r]! - ref.y) <= budget * ref.mag, `row ${r}: ${y[r]} vs reference ${ref.y}`);
        }
        k.release(w);
      });
    });
    test(`kernels (${variant}): exact sums are exact in every kernel`, async (t) => {
      const k = await createKernels({ relaxed: variant === 'relaxed' });
      for (const c of exact) {
        await t.test(c.name, () => {
          const w = k.prepare(c.source, c.options);
          for (const mode of w.modes.filter((m) => m !== 'lut8'))
            for (const batch of [1, 5]) checkExact(k, c, w, mode, batch);
          k.release(w);
        });
      }
    });
  }
}

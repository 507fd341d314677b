/**
 * GGUF inputs through the plan flow (src/plan/gguf.ts, src/pipeline/gguf.node.ts, `mixq plan/apply x.gguf`).
 * References are independent of the code under test: damages recomputed from the fixture's own f32 values
 * with one registry encode per tensor (per expert slice), allocations checked by brute force over every
 * type combination, written tensors compared with a whole-tensor registry encode, metadata with the
 * fixture's KV list, sizes and offsets with the read-back file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { getBlockType } from '../../src/blocks/registry.ts';
import { MixqError } from '../../src/core/errors.ts';
import {
  concatBytes,
  LLAMA_FTYPE,
  parseGguf,
  writeGguf,
  writeImatrixDat,
  type GgufTensorInput,
} from '../../src/io/index.ts';
import { exactBitsCapacity } from '../../src/analysis/allocate/problem.ts';
import { allocate } from '../../src/pipeline/quantize/allocate.ts';
import { applyPlanToGguf } from '../../src/pipeline/gguf/apply.node.ts';
import { planGguf } from '../../src/pipeline/gguf/plan.node.ts';
import { ggufAllocationProblem, ggufDamageTable } from '../../src/pipeline/gguf/damage.ts';
import {
  ggufDecodeRows,
  ggufImportance,
  ggufRowError,
  ggufSampleRows,
  roundTrip,
} from '../../src/pipeline/gguf/rows.ts';
import { rowBytes } from '../../src/blocks/registry.ts';
import type { GgufFile } from '../../src/io/gguf/read.ts';
import { parsePlan } from '../../src/plan/parse.ts';
import type { Plan } from '../../src/plan/schema.ts';
import { serialisePlan } from '../../src/plan/serialise.ts';
import { Rng } from '../../src/core/rng.ts';
import { buildLlamaTiny } from '../fixtures/gguf/llama-tiny.ts';
import { runMixq } from '../cli-util.ts';

const dir = mkdtempSync(join(tmpdir(), 'mixq-gguf-plan-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fx = buildLlamaTiny();
const IN = join(dir, 'tiny.gguf');
const IM = join(dir, 'imatrix.dat');
writeFileSync(IN, fx.bytes);
writeFileSync(IM, writeImatrixDat({ entries: fx.imatrix }));
const TYPES = ['Q8_0', 'Q4_K', 'Q4_0', 'F16'];

/** Mean of all importance values: the weight of a tensor without an entry. */
const imMean = (() => {
  let s = 0;
  let n = 0;
  for (const v of fx.imatrix.values()) {
    for (const x of v) s += x;
    n += v.length;
  }
  return s / n;
})();

/** Whole-tensor registry encode (one call per expert slice when the entry covers experts). */
function encode(values: Float32Array, ne: readonly number[], type: string, im?: Float32Array): Uint8Array {
  const t = getBlockType(type);
  if (!im || im.length === ne[0]) return t.encode(values, im);
  const per = values.length / ne[2]!;
  const parts: Uint8Array[] = [];
  for (let m = 0; m < ne[2]!; m++)
    parts.push(t.encode(values.subarray(m * per, (m + 1) * per), im.subarray(m * ne[0]!, (m + 1) * ne[0]!)));
  return concatBytes(parts);
}

/** Importance-weighted squared error, computed plainly over the whole tensor. */
function weightedError(
  x: Float32Array,
  q: Float32Array,
  ne0: number,
  ne1: number,
  im?: Float32Array,
  uniform = 1,
): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const j = i % ne0;
    const m = Math.floor(i / (ne0 * ne1));
    const w = im ? (im.length === ne0 ? im[j]! : im[m * ne0 + j]!) : uniform;
    s += w * (x[i]! - q[i]!) ** 2;
  }
  return s;
}

function close(a: number, b: number, rel = 1e-9): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-300);
}

const mixq = runMixq;

// The CLI's first round (spawned processes) starts with the file and overlaps the library tests.
const PLAN = join(dir, 'plan.json');
const OPLAN = join(dir, 'other-plan.json');
const cliPlan = Promise.all([
  mixq('plan', IN, '--bits', '6', '--imatrix', IM, '--candidates', 'q8_0,q4_0,f16', '--out', PLAN),
  mixq('plan', IN, '--sweep', '3,4'),
]);

test('damage table: exact bytes and importance-weighted errors equal a plain recomputation', async () => {
  const file = parseGguf(fx.bytes, 'tiny.gguf');
  const table = await ggufDamageTable(file, { imatrix: fx.imatrix, types: TYPES });
  assert.deepEqual(
    table.weights.map((w) => w.name),
    fx.tensors.filter((t) => t.ne.length > 1).map((t) => t.name),
  );
  for (const w of table.weights) {
    const t = fx.tensors.find((x) => x.name === w.name)!;
    const ne0 = t.ne[0]!;
    // a type is offered exactly when its block size divides ne[0]
    assert.deepEqual(
      w.candidates.map((c) => c.type),
      TYPES.filter((x) => ne0 % getBlockType(x).blockSize === 0),
      w.name,
    );
    const im = fx.imatrix.get(w.name);
    for (const c of w.candidates) {
      const enc = encode(t.values, t.ne, c.type, im);
      assert.equal(c.bytes, enc.length, `${w.name} ${c.type} bytes`);
      if (c.type === t.type.toUpperCase()) {
        assert.equal(c.damage, 0); // same type: copied unchanged
        continue;
      }
      const q = getBlockType(c.type).decode(enc, t.values.length);
      const ref = weightedError(t.values, q, ne0, t.ne[1]!, im, imMean);
      assert.ok(close(c.damage, ref), `${w.name} ${c.type}: ${c.damage} vs ${ref}`);
    }
  }
  // the fixed part of the file: every non-requantizable tensor padded to the alignment, plus the header
  assert.equal(table.alignment, 64);
  assert.ok(table.fixedFileBytes % 64 === 0);
});

test('row sampling is deterministic, covers the tensor evenly and scales to all rows', async () => {
  const file = parseGguf(fx.bytes, 'tiny.gguf');
  const full = await ggufDamageTable(file, { types: ['Q4_0', 'F16'] });
  const a = await ggufDamageTable(file, { types: ['Q4_0', 'F16'], maxSampleElements: 4096 });
  const b = await ggufDamageTable(file, { types: ['Q4_0', 'F16'], maxSampleElements: 4096 });
  assert.deepEqual(a, b);
  const up = a.weights.find((w) => w.name === 'blk.0.ffn_up.weight')!;
  assert.equal(up.sampledRows, 16);
  assert.equal(up.rows, 320);
  // scaled estimate within 30% of the full-tensor damage (i.i.d. rows)
  const f = full.weights.find((w) => w.name === up.name)!.candidates[0]!.damage;
  assert.ok(Math.abs(up.candidates[0]!.damage / f - 1) < 0.3, `${up.candidates[0]!.damage} vs ${f}`);
});

test('planning reads only the sampled rows (positioned reads) and measures what whole-tensor reads measured', async () => {
  const file = parseGguf(fx.bytes, 'tiny.gguf');
  const types = ['Q4_0', 'Q4_K', 'F16'];
  const maxSampleElements = 2048;
  let rangeBytes = 0;
  let wholeReads = 0;
  const counted: GgufFile = {
    ...file,
    readTensorBytes: (info) => {
      wholeReads++;
      return file.readTensorBytes(info);
    },
    readTensorRange: (info, offset, length) => {
      rangeBytes += length;
      return file.readTensorRange(info, offset, length);
    },
  };
  const imatrix = fx.imatrix;
  const table = await ggufDamageTable(counted, { types, maxSampleElements, imatrix });
  assert.equal(wholeReads, 0);
  let sampledBytes = 0;
  const importance = ggufImportance(imatrix, file.source);
  for (const w of table.weights) {
    const info = file.tensors.find((t) => t.name === w.name)!;
    const rows = ggufSampleRows(w.rows, info.ne[0]!, maxSampleElements);
    assert.equal(rows.length, w.sampledRows);
    sampledBytes += rows.length * rowBytes(getBlockType(info.type.name), info.ne[0]!);
    // the previous way: the whole tensor read, the sampled rows decoded from it
    const x = ggufDecodeRows(info, await file.readTensorBytes(info), rows, file.source);
    const imp = importance(info);
    const scale = rows.length === w.rows ? 1 : w.rows / rows.length;
    for (const c of w.candidates) {
      const t = getBlockType(c.type);
      const want =
        t.ggmlTypeId === info.typeId
          ? 0
          : scale * ggufRowError(info.ne, rows, x, roundTrip(x, info.ne, rows, t, imp), imp);
      assert.equal(c.damage, want, `${w.name} ${c.type}`);
    }
  }
  assert.ok(
    table.weights.some((w) => w.sampledRows < w.rows),
    'some tensors are sampled',
  );
  assert.equal(rangeBytes, sampledBytes);
});

/** A 3-weight GGUF (plus a norm) for the brute-force checks. */
function threeTensorFile(): Uint8Array {
  const rng = new Rng(7);
  const specs = [
    { name: 'blk.0.attn_q.weight', ne: [256, 8] },
    { name: 'blk.0.attn_norm.weight', ne: [256] },
    { name: 'blk.0.ffn_up.weight', ne: [256, 24] },
    { name: 'blk.0.ffn_down.weight', ne: [96, 16] },
  ];
  const tensors: GgufTensorInput[] = specs.map((s, k) => {
    const n = s.ne.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++)
      v[i] = (0.01 + 0.02 * k) * rng.nextNormal() * (rng.nextFloat() < 0.02 ? 6 : 1);
    return { name: s.name, ne: s.ne, type: 'f32', data: new Uint8Array(v.buffer) };
  });
  return concatBytes(
    writeGguf({
      kv: [
        { key: 'general.architecture', type: 'str', value: 'llama' },
        { key: 'general.alignment', type: 'u32', value: 32 },
      ],
      tensors,
    }),
  );
}

test('plan at a budget: within it and optimal over every type combination (brute force)', async () => {
  const bytes = threeTensorFile();
  const path = join(dir, 'three.gguf');
  writeFileSync(path, bytes);
  const types = ['Q8_0', 'Q6_K', 'Q5_0', 'Q4_K', 'Q4_0', 'F16'];
  const table = await ggufDamageTable(parseGguf(bytes, 'three.gguf'), { types });
  const ws = table.weights;
  assert.equal(ws.length, 3);
  const elements = ws.reduce((s, w) => s + w.elements, 0);
  const brute = (fits: (bits: number, fileBytes: number) => boolean) => {
    let best = Number.POSITIVE_INFINITY;
    for (const a of ws[0]!.candidates)
      for (const b of ws[1]!.candidates)
        for (const c of ws[2]!.candidates) {
          const picks = [a, b, c];
          const bits = picks.reduce((s, x) => s + 8 * x.bytes, 0);
          const file = table.fixedFileBytes + picks.reduce((s, x) => s + Math.ceil(x.bytes / 32) * 32, 0);
          const d = picks.reduce((s, x) => s + x.damage, 0);
          if (fits(bits, file) && d < best) best = d;
        }
    return best;
  };
  for (const bits of [4.6, 5.2, 6, 7.5, 12]) {
    const a = await allocate(ggufAllocationProblem(table, { kind: 'bitsPerWeight', bits }), 20);
    const cap = exactBitsCapacity(bits, elements);
    assert.ok(a.bits <= cap, `${bits}: ${a.bits / elements}`);
    const ref = brute((b) => b <= cap);
    assert.ok(
      a.damage <= ref * (1 + 1e-4) + 1e-300 && a.damage >= ref * (1 - 1e-12),
      `${bits}: ${a.damage} vs ${ref}`,
    );
  }
  // --size: whole-file bytes, checked end to end on the written file
  const minFile =
    table.fixedFileBytes +
    ws.reduce((s, w) => s + Math.min(...w.candidates.map((c) => Math.ceil(c.bytes / 32) * 32)), 0);
  const size = minFile + 2000;
  const r = await planGguf(path, { budget: { kind: 'bytes', bytes: size }, types });
  assert.ok(r.fileBytes <= size);
  const ref = brute((_, f) => f <= size);
  assert.ok(
    r.plan.totals.predictedDamage <= ref * (1 + 1e-4) && r.plan.totals.predictedDamage >= ref * (1 - 1e-12),
  );
  const out = join(dir, 'three-out.gguf');
  const ap = await applyPlanToGguf(path, r.plan, { out });
  assert.equal(readFileSync(out).length, r.fileBytes);
  assert.equal(ap.fileBytes, r.fileBytes);
  // below the smallest file: one clear error naming the smallest size
  await assert.rejects(
    planGguf(path, { budget: { kind: 'bytes', bytes: minFile - 1 }, types }),
    (e: unknown) => {
      assert.ok(e instanceof MixqError);
      assert.match(e.message, new RegExp(`at least ${minFile} bytes`));
      return true;
    },
  );
});

let planned: { plan: Plan; fileBytes: number } | undefined;
async function tinyPlan(): Promise<{ plan: Plan; fileBytes: number }> {
  planned ??= await planGguf(IN, { budget: { kind: 'bitsPerWeight', bits: 5.5 }, imatrix: IM, types: TYPES });
  return planned;
}

test('apply: types, bytes, metadata, alignment and untouched tensors of the written file', async () => {
  const { plan, fileBytes } = await tinyPlan();
  assert.ok(plan.totals.bitsPerWeight <= 5.5);
  assert.match(plan.objective.calibration!.data, /^imatrix imatrix\.dat sha256:[0-9a-f]{64}$/);
  // the plan round-trips through its file format
  assert.deepEqual(parsePlan(serialisePlan(plan), 'p.json'), plan);
  const out = join(dir, 'tiny-out.gguf');
  const r = await applyPlanToGguf(IN, plan, { imatrix: IM, out });
  const bytes = new Uint8Array(readFileSync(out));
  assert.equal(bytes.length, fileBytes);
  const g = parseGguf(bytes, out);
  const inFile = parseGguf(fx.bytes, IN);
  const types = new Map(plan.weights.map((w) => [w.name, w.scheme.blockType!] as const));
  const count = new Map<string, number>();
  for (const [i, t] of g.tensors.entries()) {
    const src = inFile.tensors[i]!;
    const f = fx.tensors.find((x) => x.name === t.name)!;
    assert.equal(t.name, src.name);
    assert.deepEqual(t.ne, src.ne);
    assert.equal(t.absOffset % 64, 0, `${t.name} offset`);
    const data = await g.readTensorBytes(t);
    const want = types.get(t.name);
    if (!want) {
      assert.equal(t.typeId, src.typeId);
      assert.deepEqual(data, await inFile.readTensorBytes(src), `${t.name} unchanged`);
      continue;
    }
    assert.equal(getBlockType(t.type.name).name, want, `${t.name} type`);
    count.set(want, (count.get(want) ?? 0) + t.nElements);
    const ref =
      want === f.type.toUpperCase()
        ? await inFile.readTensorBytes(src)
        : encode(f.values, f.ne, want, fx.imatrix.get(t.name));
    assert.deepEqual(data, ref, `${t.name} bytes`);
  }
  assert.equal(g.dataOffset % 64, 0);
  // metadata: every input key with its value, plus file_type (dominant planned type) and quantization_version
  for (const kv of fx.kv) {
    if (kv.key === 'general.file_type') continue;
    const got = g.kv.find((k) => k.key === kv.key);
    assert.deepEqual(got, kv, kv.key);
  }
  const dominant = [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  assert.deepEqual(
    g.kv.find((k) => k.key === 'general.file_type'),
    { key: 'general.file_type', type: 'u32', value: LLAMA_FTYPE[dominant] },
  );
  assert.deepEqual(
    g.kv.find((k) => k.key === 'general.quantization_version'),
    { key: 'general.quantization_version', type: 'u32', value: 2 },
  );
  // every row measured: the written error is the predicted one
  for (const w of r.weights) assert.ok(close(w.measuredDamage, w.predictedDamage, 1e-12), `${w.name}`);
});

test('apply refuses hand-edited and mismatched plans with errors naming the field', async () => {
  const { plan } = await tinyPlan();
  const edit = (i: number, f: (w: Plan['weights'][number]) => Plan['weights'][number]): Plan => ({
    ...plan,
    weights: plan.weights.map((w, k) => (k === i ? f(w) : w)),
  });
  const out = join(dir, 'never.gguf');
  const expectError = async (p: Plan, field: RegExp, opts: { imatrix?: string } = { imatrix: IM }) =>
    assert.rejects(applyPlanToGguf(IN, p, { ...opts, out, planSource: 'p.json' }), (e: unknown) => {
      assert.ok(e instanceof MixqError, String(e));
      assert.equal(e.source, 'p.json');
      assert.match(e.field, field);
      return true;
    });
  await expectError(
    edit(0, (w) => ({ ...w, name: 'blk.9.nope.weight' })),
    /^weights\[0\]\.name$/,
  );
  const odd = plan.weights.findIndex((w) => w.name === 'blk.0.odd.weight');
  await expectError(
    edit(odd, (w) => ({ ...w, scheme: { ...w.scheme, blockType: 'Q8_0' } })),
    /blockType$/,
  );
  await expectError({ ...plan, model: { ...plan.model, sha256: '0'.repeat(64) } }, /^model\.sha256$/);
  await expectError(plan, /^objective\.calibration$/, {}); // the plan's imatrix not given
  const other = join(dir, 'other.dat');
  writeFileSync(
    other,
    writeImatrixDat({ entries: new Map([['blk.0.attn_q.weight', new Float32Array(256).fill(1)]]) }),
  );
  await expectError(plan, /^objective\.calibration$/, { imatrix: other });
  assert.throws(() => readFileSync(out)); // nothing written
});

test('CLI: mixq plan x.gguf then mixq apply x.gguf plan.json; a plan for another file fails in one line', async () => {
  const [p, flag] = await cliPlan;
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^blk\.0\.odd\.weight +f32 +f16 +768 +damage /m);
  assert.match(p.stdout, /^blk\.0\.ffn_up\.weight +f32 +(q8_0 +\d+ +|q4_0 +\d+ +imatrix; )damage /m);
  assert.match(p.stdout, /^plan: 10 weights at [\d.]+ bits per weight \(budget --bits 6\)/m);
  const fileBytes = Number(/output file (\d+) bytes/.exec(p.stdout)?.[1]);
  const plan = parsePlan(readFileSync(PLAN, 'utf8'), PLAN);
  assert.ok(plan.totals.bitsPerWeight <= 6);
  // the same plan, as if made for another file
  const other = buildLlamaTiny(99).bytes;
  const sha = createHash('sha256').update(other).digest('hex');
  writeFileSync(
    OPLAN,
    serialisePlan({ ...plan, model: { file: 'other.gguf', sha256: sha, size: other.length } }),
  );
  const [a, bad] = await Promise.all([
    mixq('apply', IN, PLAN, '--imatrix', IM, '--out', dir, '--json'),
    mixq('apply', IN, OPLAN, '--imatrix', IM),
  ]);
  assert.equal(a.code, 0, a.stderr);
  const aj = JSON.parse(a.stdout);
  assert.equal(aj.out, join(dir, 'tiny-mixq.gguf'));
  assert.equal(aj.fileBytes, fileBytes);
  assert.equal(aj.predictedDamage, plan.totals.predictedDamage);
  const written = readFileSync(aj.out);
  assert.equal(written.length, fileBytes);
  const g = parseGguf(new Uint8Array(written), 'tiny-mixq.gguf');
  for (const w of plan.weights)
    assert.equal(getBlockType(g.tensors.find((t) => t.name === w.name)!.type.name).name, w.scheme.blockType);
  for (const r of [bad, flag]) {
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  assert.ok(
    bad.stderr.startsWith(
      `mixq apply: ${OPLAN}: model.sha256: the plan was made for another file (other.gguf)`,
    ),
    bad.stderr,
  );
  assert.match(flag.stderr, /--sweep does not apply to a GGUF input/);
});

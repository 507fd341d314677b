import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MixqError } from '../../src/core/errors.ts';
import { type Plan, parsePlan, planTotals, serialisePlan } from '../../src/plan/index.ts';

const weights: Plan['weights'] = [
  {
    name: 'blocks.0.attn_qkv',
    shape: [192, 576],
    scheme: {
      format: 'int4',
      granularity: { kind: 'group', axis: 0, size: 32 },
      algorithm: 'gptq',
      scaleFormat: 'fp16',
      symmetric: true,
    },
    bitsPerWeight: 4.5,
    bytes: 62208,
    predictedDamage: 0.00123,
    measuredDamage: 0.0015,
  },
  {
    name: 'blocks.0.mlp_proj',
    shape: [768, 192],
    scheme: {
      format: 'e2m1',
      granularity: { kind: 'group', axis: 0, size: 32 },
      algorithm: 'rtn',
      scaleFormat: 'e8m0',
      symmetric: true,
      outliers: { kind: 'salient', criterion: 'hessian', fraction: 0.005 },
    },
    bitsPerWeight: 4.25,
    bytes: 78336,
    predictedDamage: 1e-7,
  },
  {
    name: 'head',
    shape: [192, 80],
    scheme: {
      format: 'int8',
      granularity: { kind: 'axis', axis: 1 },
      algorithm: 'rtn',
      scaleFormat: { kind: 'double', subBits: 6, superGroup: 8 },
      symmetric: false,
      blockType: 'Q8_0',
    },
    bitsPerWeight: 8.5,
    bytes: 16320,
    predictedDamage: 0,
  },
];

const plan: Plan = {
  schemaVersion: 1,
  model: { file: 'model.onnx', sha256: 'ab'.repeat(32), size: 123456 },
  budget: { kind: 'bitsPerWeight', bits: 4.5 },
  objective: { damage: 'kl', metric: 'perplexity' },
  weights,
  totals: planTotals(weights),
  solver: { name: 'highs', status: 'optimal', gap: 0, timeMs: 12.5 },
};

describe('plan file', () => {
  it('round-trips: parse(serialise(p)) equals p, and serialising again gives identical text', () => {
    const text = serialisePlan(plan);
    const back = parsePlan(text, 'plan.json');
    assert.deepEqual(back, plan);
    assert.equal(serialisePlan(back), text);
    assert.ok(text.endsWith('}\n'));
    // a latency budget and the plan's predicted speed round-trip too
    const fast: Plan = {
      ...plan,
      budget: { kind: 'latency', msPerToken: 0.25 },
      latency: { predictedMsPerToken: 0.24, maxMsPerToken: 0.25, threads: 1 },
    };
    assert.deepEqual(parsePlan(serialisePlan(fast), 'fast.json'), fast);
  });

  it('is diff-friendly: stable key order, one field per line, short leaves inline', () => {
    // Same plan with keys in a different order serialises identically.
    const shuffled = JSON.parse(JSON.stringify(plan), (_k, v) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
    ) as Plan;
    const text = serialisePlan(plan);
    assert.equal(serialisePlan(shuffled), text);
    assert.match(text, /\n {6}"shape": \[192, 576\],\n/);
    assert.match(text, /"granularity": \{ "kind": "group", "axis": 0, "size": 32 \},\n/);
    assert.match(text, /"scaleFormat": \{ "kind": "double", "subBits": 6, "superGroup": 8 \},\n/);
    assert.match(text, /^\{\n {2}"schemaVersion": 1,\n {2}"model": \{/);
    // Changing one weight's format is a one-line diff.
    const edited = serialisePlan({
      ...plan,
      weights: [
        { ...weights[0]!, scheme: { ...weights[0]!.scheme, format: 'int3' } },
        weights[1]!,
        weights[2]!,
      ],
    });
    const a = text.split('\n');
    const b = edited.split('\n');
    assert.equal(a.length, b.length);
    assert.equal(a.filter((l, i) => l !== b[i]).length, 1);
  });

  it('totals are recomputed from the weights', () => {
    const t = planTotals(weights);
    assert.equal(t.bytes, 62208 + 78336 + 16320);
    assert.equal(t.elements, 192 * 576 + 768 * 192 + 192 * 80);
    assert.ok(Math.abs(t.bitsPerWeight - (4.5 * 110592 + 4.25 * 147456 + 8.5 * 15360) / t.elements) < 1e-12);
    assert.equal(t.measuredDamage, undefined, 'not every weight measured');
  });

  /** Parses the plan with one edit applied to its JSON value and returns the error message. */
  function errorOf(
    edit: (p: Record<string, unknown> & { weights: Record<string, unknown>[] }) => void,
  ): string {
    const v = JSON.parse(serialisePlan(plan));
    edit(v);
    try {
      parsePlan(JSON.stringify(v), 'my-plan.json');
    } catch (e) {
      assert.ok(e instanceof MixqError, String(e));
      assert.equal(e.source, 'my-plan.json');
      return e.message;
    }
    assert.fail('expected a MixqError');
  }

  it('bad plans give errors naming the file, the field path and the expected value', () => {
    const scheme = (i: number, p: { weights: Record<string, unknown>[] }) =>
      p.weights[i]!.scheme as Record<string, unknown>;
    const fmt = errorOf((p) => {
      scheme(1, p).format = 'int99';
    });
    assert.match(
      fmt,
      /^my-plan\.json: weights\[1\]\.scheme\.format: unknown format 'int99' \(expected a format name/,
    );
    assert.match(fmt, /fp8_e4m3fn/);
    assert.match(fmt, /nf4/);
    assert.match(
      errorOf((p) => {
        scheme(0, p).algorithm = 'magic';
      }),
      /weights\[0\]\.scheme\.algorithm: got "magic" \(expected one of rtn, gptq, awq, smoothquant, imatrix\)/,
    );
    assert.match(
      errorOf((p) => {
        (scheme(0, p).granularity as Record<string, unknown>).axis = 2;
      }),
      /weights\[0\]\.scheme\.granularity\.axis: axis 2 out of range for rank 2 \(expected -2\.\.1\)/,
    );
    assert.match(
      errorOf((p) => {
        scheme(0, p).granularty = scheme(0, p).granularity;
      }),
      /weights\[0\]\.scheme\.granularty: unknown key 'granularty'/,
    );
    assert.match(
      errorOf((p) => {
        scheme(0, p).scaleFormat = 'fp12';
      }),
      /weights\[0\]\.scheme\.scaleFormat: bad scale format "fp12" \(expected fp32, fp16, bf16, e8m0, fp8_e4m3fn/,
    );
    assert.match(
      errorOf((p) => {
        scheme(2, p).blockType = 'Q9_K';
      }),
      /weights\[2\]\.scheme\.blockType: unknown block type 'Q9_K'/,
    );
    assert.match(
      errorOf((p) => {
        p.weights[0]!.bytes = -1;
      }),
      /weights\[0\]\.bytes: got -1 \(expected an integer >= 0\)/,
    );
    assert.match(
      errorOf((p) => {
        p.weights[2]!.shape = [192, 0];
      }),
      /weights\[2\]\.shape\[1\]: got 0/,
    );
    assert.match(
      errorOf((p) => {
        p.weights[2]!.name = 'head';
        p.weights[1]!.name = 'head';
      }),
      /weights\[2\]\.name: duplicate weight 'head' \(also weights\[1\]\)/,
    );
    assert.match(
      errorOf((p) => {
        p.schemaVersion = 2;
      }),
      /schemaVersion: unsupported plan version 2 \(expected 1\)/,
    );
    assert.match(
      errorOf((p) => {
        delete (p.model as Record<string, unknown>).sha256;
        delete (p.model as Record<string, unknown>).size;
      }),
      /model: the model is not identified/,
    );
    assert.match(
      errorOf((p) => {
        delete p.weights[0]!.predictedDamage;
      }),
      /weights\[0\]\.predictedDamage: missing/,
    );
    assert.match(
      errorOf((p) => {
        scheme(1, p).outliers = { kind: 'salient', criterion: 'hessian' };
      }),
      /weights\[1\]\.scheme\.outliers: give exactly one of fraction and count/,
    );
    assert.match(
      errorOf((p) => {
        p.budget = { kind: 'bits', bits: 4 };
      }),
      /budget\.kind: got "bits" \(expected one of bitsPerWeight, bytes, maxLoss, latency\)/,
    );
    assert.throws(() => parsePlan('{"schemaVersion": 1,', 'x.json'), /^MixqError: x\.json: not valid JSON/);
  });

  it('format aliases are accepted and kept as written', () => {
    const text = serialisePlan(plan);
    assert.equal(parsePlan(text, 'p').weights[1]!.scheme.format, 'e2m1');
  });
});

describe('plan from an allocation', () => {
  it('records the chosen schemes, exact sizes and totals, and round-trips', async () => {
    const { solveMilp } = await import('../../src/analysis/allocate/index.ts');
    const { planFromAllocation } = await import('../../src/plan/index.ts');
    const shapes = new Map<string, readonly number[]>([
      ['a', [64, 32]],
      ['b', [32, 32]],
    ]);
    const cand = (n: number, dmg: number[]) => [
      { scheme: 'int4_g32', bytes: n / 2 + (n / 32) * 2, bits: 4 * n + (n / 32) * 16, damage: dmg[0]! },
      { scheme: 'int8_g32', bytes: n + (n / 32) * 2, bits: 8 * n + (n / 32) * 16, damage: dmg[1]! },
    ];
    const problem = {
      weights: [
        { name: 'a', elements: 2048, candidates: cand(2048, [5, 1]) },
        { name: 'b', elements: 1024, candidates: cand(1024, [9, 1]) },
      ],
      budget: { kind: 'bitsPerWeight' as const, bits: 6 },
    };
    const allocation = await solveMilp(problem, { relGap: 0 });
    const g32 = { kind: 'group', axis: 1, size: 32 } as const;
    const schemes = new Map([
      [
        'int4_g32',
        {
          format: 'int4',
          granularity: g32,
          algorithm: 'gptq',
          scaleFormat: 'fp16',
          symmetric: true,
        } as const,
      ],
      [
        'int8_g32',
        { format: 'int8', granularity: g32, algorithm: 'rtn', scaleFormat: 'fp16', symmetric: true } as const,
      ],
    ]);
    const p = planFromAllocation({
      model: { file: 'tiny.onnx', size: 1000 },
      objective: { damage: 'weight-mse' },
      problem,
      allocation,
      shapes,
      schemes,
    });
    // 6 bits per weight over 3072 weights: a at int4 (4.5) + b at int8 (8.5) = 5.83 fits; the reverse
    // (7.17) and int8 everywhere (8.5) do not.
    assert.deepEqual(
      p.weights.map((w) => w.scheme.format),
      ['int4', 'int8'],
    );
    assert.equal(p.weights[0]!.bitsPerWeight, 4.5);
    assert.equal(p.totals.bytes, 1024 + 128 + 1024 + 64);
    assert.equal(p.totals.bitsPerWeight, (2048 * 4.5 + 1024 * 8.5) / 3072);
    assert.equal(p.totals.predictedDamage, 6);
    assert.deepEqual(p.budget, { kind: 'bitsPerWeight', bits: 6 });
    assert.equal(p.solver.name, 'highs');
    assert.deepEqual(parsePlan(serialisePlan(p), 'p.json'), p);
  });
});

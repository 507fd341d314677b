/**
 * Reading a plan file: JSON text -> a validated Plan. Every field is checked; a problem is a MixqError
 * naming the file, the field path (e.g. 'weights[3].scheme.format') and what was expected. Unknown keys
 * are errors too, so a typo in a hand edit ('granularty') is caught rather than silently ignored.
 *
 * Totals are not required to match the weights (a hand edit may change a scheme and leave them stale);
 * planTotals() in schema.ts recomputes them.
 */
import { MixqError } from '../core/errors.ts';
import { getBlockType } from '../blocks/registry.ts';
import { FORMATS, getFormat } from '../formats/registry.ts';
import type { Granularity } from '../quant/granularity.ts';
import type { ScaleRule } from '../quant/qparams.ts';
import { checkScaleFormat, type ScaleFormat } from '../quant/scale-format.ts';
import {
  PLAN_ALGORITHMS,
  PLAN_SCHEMA_VERSION,
  type Plan,
  type PlanAlgorithm,
  type PlanBudget,
  type PlanLatency,
  type PlanModel,
  type PlanObjective,
  type PlanOutliers,
  type PlanScheme,
  type PlanSolver,
  type PlanTotals,
  type PlanWeight,
} from './schema.ts';

type Obj = Readonly<Record<string, unknown>>;

/** Field-path validation helpers bound to one source (the file name). */
class Reader {
  constructor(readonly source: string) {}

  fail(field: string, message: string, expected?: string): never {
    throw new MixqError(message, { source: this.source, field, ...(expected ? { expected } : {}) });
  }

  obj(v: unknown, field: string, required: readonly string[], optional: readonly string[] = []): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      this.fail(field, `got ${describe(v)}`, 'an object');
    const o = v as Obj;
    const known = new Set([...required, ...optional]);
    for (const k of Object.keys(o))
      if (!known.has(k)) this.fail(join(field, k), `unknown key '${k}'`, `one of ${[...known].join(', ')}`);
    for (const k of required) if (!(k in o)) this.fail(join(field, k), 'missing', describeKind(k));
    return o;
  }

  str(v: unknown, field: string): string {
    if (typeof v !== 'string' || v === '') this.fail(field, `got ${describe(v)}`, 'a non-empty string');
    return v;
  }

  num(v: unknown, field: string, min = Number.NEGATIVE_INFINITY): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
      this.fail(
        field,
        `got ${describe(v)}`,
        min === Number.NEGATIVE_INFINITY ? 'a finite number' : `a number >= ${min}`,
      );
    return v;
  }

  int(v: unknown, field: string, min: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      this.fail(field, `got ${describe(v)}`, `an integer >= ${min}`);
    return v;
  }

  bool(v: unknown, field: string): boolean {
    if (typeof v !== 'boolean') this.fail(field, `got ${describe(v)}`, 'true or false');
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, options: readonly T[]): T {
    if (typeof v !== 'string' || !options.includes(v as T))
      this.fail(field, `got ${describe(v)}`, `one of ${options.join(', ')}`);
    return v as T;
  }

  arr(v: unknown, field: string): readonly unknown[] {
    if (!Array.isArray(v)) this.fail(field, `got ${describe(v)}`, 'an array');
    return v;
  }
}

function join(field: string, key: string): string {
  return field ? `${field}.${key}` : key;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function describeKind(key: string): string {
  return `a value for '${key}'`;
}

function readModel(r: Reader, v: unknown): PlanModel {
  const o = r.obj(v, 'model', ['file'], ['sha256', 'size']);
  const file = r.str(o.file, 'model.file');
  let sha256: string | undefined;
  if (o.sha256 !== undefined) {
    sha256 = r.str(o.sha256, 'model.sha256');
    if (!/^[0-9a-f]{64}$/.test(sha256)) r.fail('model.sha256', 'not a SHA-256', '64 lower-case hex digits');
  }
  const size = o.size === undefined ? undefined : r.int(o.size, 'model.size', 0);
  if (sha256 === undefined && size === undefined)
    r.fail('model', 'the model is not identified', 'sha256 or size (or both)');
  return { file, ...(sha256 !== undefined ? { sha256 } : {}), ...(size !== undefined ? { size } : {}) };
}

function readBudget(r: Reader, v: unknown): PlanBudget {
  const kind = r.oneOf(
    r.obj(v, 'budget', ['kind'], ['bits', 'bytes', 'relative', 'msPerToken']).kind,
    'budget.kind',
    ['bitsPerWeight', 'bytes', 'maxLoss', 'latency'] as const,
  );
  if (kind === 'latency') {
    const o = r.obj(v, 'budget', ['kind', 'msPerToken']);
    return { kind, msPerToken: r.num(o.msPerToken, 'budget.msPerToken', 0) };
  }
  if (kind === 'bitsPerWeight') {
    const o = r.obj(v, 'budget', ['kind', 'bits']);
    return { kind, bits: r.num(o.bits, 'budget.bits', 0) };
  }
  if (kind === 'bytes') {
    const o = r.obj(v, 'budget', ['kind', 'bytes']);
    return { kind, bytes: r.int(o.bytes, 'budget.bytes', 0) };
  }
  const o = r.obj(v, 'budget', ['kind', 'relative']);
  return { kind, relative: r.num(o.relative, 'budget.relative', 0) };
}

function readObjective(r: Reader, v: unknown): PlanObjective {
  const o = r.obj(v, 'objective', ['damage'], ['metric', 'calibration', 'biasCorrection']);
  let calibration: PlanObjective['calibration'];
  if (o.calibration !== undefined) {
    const c = r.obj(o.calibration, 'objective.calibration', ['data'], ['size']);
    calibration = {
      data: r.str(c.data, 'objective.calibration.data'),
      ...(c.size !== undefined ? { size: r.int(c.size, 'objective.calibration.size', 1) } : {}),
    };
  }
  return {
    damage: r.str(o.damage, 'objective.damage'),
    ...(o.metric !== undefined ? { metric: r.str(o.metric, 'objective.metric') } : {}),
    ...(calibration ? { calibration } : {}),
    ...(o.biasCorrection !== undefined
      ? { biasCorrection: r.bool(o.biasCorrection, 'objective.biasCorrection') }
      : {}),
  };
}

function readGranularity(r: Reader, v: unknown, field: string, rank: number): Granularity {
  const kinds = ['tensor', 'axis', 'group', 'block'] as const;
  const kind = r.oneOf(
    r.obj(v, field, ['kind'], ['axis', 'size', 'rows', 'cols']).kind,
    `${field}.kind`,
    kinds,
  );
  const axis = (a: unknown): number => {
    const x = r.int(a, `${field}.axis`, -rank);
    if (x >= rank)
      r.fail(`${field}.axis`, `axis ${x} out of range for rank ${rank}`, `-${rank}..${rank - 1}`);
    return x;
  };
  if (kind === 'tensor') {
    r.obj(v, field, ['kind']);
    return { kind };
  }
  if (kind === 'axis') {
    const o = r.obj(v, field, ['kind', 'axis']);
    return { kind, axis: axis(o.axis) };
  }
  if (kind === 'group') {
    const o = r.obj(v, field, ['kind', 'axis', 'size']);
    return { kind, axis: axis(o.axis), size: r.int(o.size, `${field}.size`, 1) };
  }
  if (rank < 2)
    r.fail(`${field}.kind`, 'block granularity needs a weight of rank >= 2', 'tensor, axis or group');
  const o = r.obj(v, field, ['kind', 'rows', 'cols']);
  return { kind, rows: r.int(o.rows, `${field}.rows`, 1), cols: r.int(o.cols, `${field}.cols`, 1) };
}

function readScaleFormat(r: Reader, v: unknown, field: string): ScaleFormat {
  const expected =
    'fp32, fp16, bf16, e8m0, fp8_e4m3fn, none or {"kind": "double", "subBits": 2..16, "superGroup": n}';
  let f: ScaleFormat;
  if (typeof v === 'string') f = v as ScaleFormat;
  else {
    const o = r.obj(v, field, ['kind', 'subBits', 'superGroup']);
    f = {
      kind: r.oneOf(o.kind, `${field}.kind`, ['double'] as const),
      subBits: r.int(o.subBits, `${field}.subBits`, 2),
      superGroup: r.int(o.superGroup, `${field}.superGroup`, 1),
    };
  }
  try {
    checkScaleFormat(f);
  } catch {
    r.fail(field, `bad scale format ${describe(v)}`, expected);
  }
  return f;
}

function readOutliers(r: Reader, v: unknown, field: string): PlanOutliers {
  const kind = r.oneOf(
    r.obj(v, field, ['kind'], ['threshold', 'criterion', 'fraction', 'count']).kind,
    `${field}.kind`,
    ['int8-decomposition', 'salient'] as const,
  );
  if (kind === 'int8-decomposition') {
    const o = r.obj(v, field, ['kind'], ['threshold']);
    return {
      kind,
      ...(o.threshold !== undefined ? { threshold: r.num(o.threshold, `${field}.threshold`, 0) } : {}),
    };
  }
  const o = r.obj(v, field, ['kind', 'criterion'], ['fraction', 'count']);
  const criterion = r.oneOf(o.criterion, `${field}.criterion`, ['activation', 'hessian'] as const);
  if ((o.fraction === undefined) === (o.count === undefined))
    r.fail(field, 'give exactly one of fraction and count', 'fraction in [0, 1] or count >= 0');
  if (o.fraction !== undefined) {
    const fraction = r.num(o.fraction, `${field}.fraction`, 0);
    if (fraction > 1) r.fail(`${field}.fraction`, `got ${fraction}`, 'a number in [0, 1]');
    return { kind, criterion, fraction };
  }
  return { kind, criterion, count: r.int(o.count, `${field}.count`, 0) };
}

function readScaleRule(r: Reader, v: unknown, field: string): ScaleRule {
  const kind = r.oneOf(r.obj(v, field, ['kind'], ['grid', 'minRatio', 'norm']).kind, `${field}.kind`, [
    'minmax',
    'mse',
  ] as const);
  if (kind === 'minmax') {
    r.obj(v, field, ['kind']);
    return { kind };
  }
  const o = r.obj(v, field, ['kind'], ['grid', 'minRatio', 'norm']);
  const minRatio = o.minRatio === undefined ? undefined : r.num(o.minRatio, `${field}.minRatio`, 0);
  if (minRatio !== undefined && minRatio > 1)
    r.fail(`${field}.minRatio`, `got ${minRatio}`, 'a clipping ratio in [0, 1]');
  return {
    kind,
    ...(o.grid !== undefined ? { grid: r.int(o.grid, `${field}.grid`, 1) } : {}),
    ...(minRatio !== undefined ? { minRatio } : {}),
    ...(o.norm !== undefined ? { norm: r.num(o.norm, `${field}.norm`, 0) } : {}),
  };
}

function readScheme(r: Reader, v: unknown, field: string, rank: number): PlanScheme {
  const o = r.obj(
    v,
    field,
    ['format', 'granularity', 'algorithm', 'scaleFormat', 'symmetric'],
    ['blockType', 'outliers', 'scaleRule'],
  );
  const format = r.str(o.format, `${field}.format`);
  try {
    getFormat(format);
  } catch {
    r.fail(
      `${field}.format`,
      `unknown format '${format}'`,
      `a format name or alias: ${FORMATS.map((f) => f.name).join(', ')}`,
    );
  }
  let blockType: string | undefined;
  if (o.blockType !== undefined) {
    blockType = r.str(o.blockType, `${field}.blockType`);
    try {
      getBlockType(blockType);
    } catch (e) {
      r.fail(
        `${field}.blockType`,
        `unknown block type '${blockType}'`,
        e instanceof MixqError ? e.expected : undefined,
      );
    }
  }
  return {
    format,
    granularity: readGranularity(r, o.granularity, `${field}.granularity`, rank),
    algorithm: r.oneOf<PlanAlgorithm>(o.algorithm, `${field}.algorithm`, PLAN_ALGORITHMS),
    scaleFormat: readScaleFormat(r, o.scaleFormat, `${field}.scaleFormat`),
    symmetric: r.bool(o.symmetric, `${field}.symmetric`),
    ...(o.scaleRule !== undefined ? { scaleRule: readScaleRule(r, o.scaleRule, `${field}.scaleRule`) } : {}),
    ...(blockType !== undefined ? { blockType } : {}),
    ...(o.outliers !== undefined ? { outliers: readOutliers(r, o.outliers, `${field}.outliers`) } : {}),
  };
}

function readWeight(r: Reader, v: unknown, i: number): PlanWeight {
  const at = `weights[${i}]`;
  const o = r.obj(
    v,
    at,
    ['name', 'shape', 'scheme', 'bitsPerWeight', 'bytes', 'predictedDamage'],
    ['measuredDamage'],
  );
  const shape = r.arr(o.shape, `${at}.shape`).map((d, k) => r.int(d, `${at}.shape[${k}]`, 1));
  if (shape.length === 0) r.fail(`${at}.shape`, 'empty shape', 'at least one dimension');
  return {
    name: r.str(o.name, `${at}.name`),
    shape,
    scheme: readScheme(r, o.scheme, `${at}.scheme`, shape.length),
    bitsPerWeight: r.num(o.bitsPerWeight, `${at}.bitsPerWeight`, 0),
    bytes: r.int(o.bytes, `${at}.bytes`, 0),
    predictedDamage: r.num(o.predictedDamage, `${at}.predictedDamage`),
    ...(o.measuredDamage !== undefined
      ? { measuredDamage: r.num(o.measuredDamage, `${at}.measuredDamage`) }
      : {}),
  };
}

function readTotals(r: Reader, v: unknown): PlanTotals {
  const o = r.obj(v, 'totals', ['elements', 'bytes', 'bitsPerWeight', 'predictedDamage'], ['measuredDamage']);
  return {
    elements: r.int(o.elements, 'totals.elements', 0),
    bytes: r.int(o.bytes, 'totals.bytes', 0),
    bitsPerWeight: r.num(o.bitsPerWeight, 'totals.bitsPerWeight', 0),
    predictedDamage: r.num(o.predictedDamage, 'totals.predictedDamage'),
    ...(o.measuredDamage !== undefined
      ? { measuredDamage: r.num(o.measuredDamage, 'totals.measuredDamage') }
      : {}),
  };
}

function readLatency(r: Reader, v: unknown): PlanLatency {
  const o = r.obj(v, 'latency', ['predictedMsPerToken', 'threads'], ['maxMsPerToken', 'activations']);
  return {
    predictedMsPerToken: r.num(o.predictedMsPerToken, 'latency.predictedMsPerToken', 0),
    ...(o.maxMsPerToken !== undefined
      ? { maxMsPerToken: r.num(o.maxMsPerToken, 'latency.maxMsPerToken', 0) }
      : {}),
    threads: r.int(o.threads, 'latency.threads', 1),
    ...(o.activations !== undefined
      ? { activations: r.oneOf(o.activations, 'latency.activations', ['lut8'] as const) }
      : {}),
  };
}

function readSolver(r: Reader, v: unknown): PlanSolver {
  const o = r.obj(v, 'solver', ['name', 'status'], ['gap', 'timeMs']);
  return {
    name: r.str(o.name, 'solver.name'),
    status: r.str(o.status, 'solver.status'),
    ...(o.gap !== undefined ? { gap: r.num(o.gap, 'solver.gap', 0) } : {}),
    ...(o.timeMs !== undefined ? { timeMs: r.num(o.timeMs, 'solver.timeMs', 0) } : {}),
  };
}

/**
 * Parses and validates a plan file. `source` names the file in error messages.
 * @example const plan = parsePlan(readFileSync('plan.json', 'utf8'), 'plan.json');
 */
export function parsePlan(text: string, source: string): Plan {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MixqError(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`, { source });
  }
  return validatePlan(json, source);
}

/**
 * Validates a plan held as a value (e.g. built in code) and returns it with keys in the canonical order.
 * @example serialisePlan(validatePlan(candidate, 'built plan'))
 */
export function validatePlan(json: unknown, source: string): Plan {
  const r = new Reader(source);
  const o = r.obj(
    json,
    '',
    ['schemaVersion', 'model', 'budget', 'objective', 'weights', 'totals', 'solver'],
    ['latency'],
  );
  if (o.schemaVersion !== PLAN_SCHEMA_VERSION)
    r.fail(
      'schemaVersion',
      `unsupported plan version ${describe(o.schemaVersion)}`,
      String(PLAN_SCHEMA_VERSION),
    );
  const weights = r.arr(o.weights, 'weights').map((w, i) => readWeight(r, w, i));
  const seen = new Map<string, number>();
  weights.forEach((w, i) => {
    const prev = seen.get(w.name);
    if (prev !== undefined)
      r.fail(`weights[${i}].name`, `duplicate weight '${w.name}' (also weights[${prev}])`);
    seen.set(w.name, i);
  });
  return {
    schemaVersion: PLAN_SCHEMA_VERSION,
    model: readModel(r, o.model),
    budget: readBudget(r, o.budget),
    objective: readObjective(r, o.objective),
    weights,
    totals: readTotals(r, o.totals),
    solver: readSolver(r, o.solver),
    ...(o.latency !== undefined ? { latency: readLatency(r, o.latency) } : {}),
  };
}

/**
 * The report as JSON (`mixq quantize --json`, report.json): stable output — object keys sorted at every
 * level, arrays kept in order, 2-space indent, trailing newline — so two runs with the same numbers give
 * byte-identical files that diff cleanly. Non-finite numbers (which JSON cannot hold) are refused rather
 * than silently written as null. `parseReportJson` reads it back with a shape check.
 */
import { MixqError } from '../core/errors.ts';
import { REPORT_SCHEMA_VERSION, type ReportData } from './types.ts';

function sortKeys(v: unknown, path: string): unknown {
  if (typeof v === 'number') {
    if (!Number.isFinite(v))
      throw new MixqError(`non-finite number ${v}`, {
        source: 'report',
        field: path,
        expected: 'a finite number',
      });
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => sortKeys(x, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x, path ? `${path}.${k}` : k);
    }
    return out;
  }
  return v;
}

/** Stable JSON text of the report. */
export function reportJson(data: ReportData): string {
  return `${JSON.stringify(sortKeys(data, ''), null, 2)}\n`;
}

function need(ok: boolean, field: string, expected: string): void {
  if (!ok) throw new MixqError('bad report JSON', { source: 'report', field, expected });
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parse report JSON; checks the schema version and the shape of the fields the renderers read. */
export function parseReportJson(text: string): ReportData {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MixqError(`not JSON: ${(e as Error).message}`, { source: 'report' });
  }
  need(isObj(v), '', 'an object');
  const o = v as Record<string, unknown>;
  need(o.schemaVersion === REPORT_SCHEMA_VERSION, 'schemaVersion', String(REPORT_SCHEMA_VERSION));
  const model = o.model;
  need(
    isObj(model) && typeof model.name === 'string' && typeof model.format === 'string',
    'model',
    '{name, format}',
  );
  const metric = o.metric;
  need(
    isObj(metric) &&
      typeof metric.name === 'string' &&
      isNum(metric.fp32) &&
      (metric.direction === 'lower' || metric.direction === 'higher'),
    'metric',
    "{name, fp32, direction: 'lower' | 'higher'}",
  );
  need(Array.isArray(o.budgets), 'budgets', 'an array');
  need(
    isObj(o.plan) && isNum(o.plan.bytes) && isNum(o.plan.bitsPerWeight),
    'plan',
    '{bytes, bitsPerWeight, ...}',
  );
  const selection = (sel: unknown, field: string) =>
    need(
      sel === undefined ||
        (isObj(sel) &&
          typeof sel.chosen === 'string' &&
          typeof sel.metric === 'string' &&
          (sel.unit === undefined || typeof sel.unit === 'string') &&
          (sel.fp32 === undefined || isNum(sel.fp32)) &&
          Array.isArray(sel.tried) &&
          (sel.tried as unknown[]).every(
            (t) =>
              isObj(t) &&
              typeof t.label === 'string' &&
              isNum(t.bitsPerWeight) &&
              isNum(t.bytes) &&
              isNum(t.validation),
          )),
      field,
      '{chosen, metric, tried: [{label, bitsPerWeight, bytes, validation}]}',
    );
  selection((o.plan as { selection?: unknown }).selection, 'plan.selection');
  need(Array.isArray(o.series), 'series', 'an array');
  (o.series as unknown[]).forEach((s, i) => {
    need(
      isObj(s) && typeof s.name === 'string' && Array.isArray(s.points),
      `series[${i}]`,
      '{name, kind, points}',
    );
    need(
      ['mixq', 'uniform', 'rule'].includes(String((s as { kind: unknown }).kind)),
      `series[${i}].kind`,
      'mixq|uniform|rule',
    );
    (s as { points: unknown[] }).points.forEach((p, j) => {
      need(
        isObj(p) && isNum(p.bitsPerWeight) && isNum(p.bytes) && isNum(p.metric),
        `series[${i}].points[${j}]`,
        '{bitsPerWeight, bytes, metric}',
      );
      const ci = (p as { metricChangeCi?: unknown }).metricChangeCi;
      need(
        ci === undefined ||
          (Array.isArray(ci) && ci.length === 2 && isNum(ci[0]) && isNum(ci[1]) && ci[0] <= ci[1]),
        `series[${i}].points[${j}].metricChangeCi`,
        '[low, high] with low <= high',
      );
      selection((p as { selection?: unknown }).selection, `series[${i}].points[${j}].selection`);
    });
  });
  need(Array.isArray(o.layers), 'layers', 'an array');
  (o.layers as unknown[]).forEach((l, i) => {
    need(
      isObj(l) && typeof l.name === 'string' && isNum(l.bitsPerWeight) && typeof l.scheme === 'string',
      `layers[${i}]`,
      '{name, bitsPerWeight, scheme}',
    );
  });
  const sens = o.sensitivity;
  need(
    isObj(sens) && Array.isArray(sens.candidates) && Array.isArray(sens.weights),
    'sensitivity',
    '{measure, candidates, weights}',
  );
  need(Array.isArray(o.correlations), 'correlations', 'an array');
  need(Array.isArray(o.timings), 'timings', 'an array');
  return v as ReportData;
}

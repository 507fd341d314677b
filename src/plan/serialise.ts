/**
 * Writing a plan file: stable, pretty, diff-friendly JSON. Keys come in the schema's order (the plan is
 * validated and rebuilt first, so a plan that serialises is a plan that parses), two-space indent, one
 * field per line, and short leaf values on one line (shapes, granularities, double scale formats), so that
 * changing one weight's scheme is a one- or two-line diff. Numbers use JavaScript's shortest round-trip
 * form, so parse(serialise(p)) gives back exactly p. Ends with a newline.
 */
import { validatePlan } from './parse.ts';
import type { Plan } from './schema.ts';

/** Longest single-line rendering of an object or array whose members are all primitives. */
const INLINE_MAX = 100;

function isPrimitive(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

function render(v: unknown, indent: string): string {
  if (isPrimitive(v)) return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (v.every(isPrimitive)) {
      const line = `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
      if (line.length <= INLINE_MAX) return line;
    }
    return `[\n${v.map((x) => inner + render(x, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return '{}';
  if (entries.every(([, x]) => isPrimitive(x))) {
    const line = `{ ${entries.map(([k, x]) => `${JSON.stringify(k)}: ${JSON.stringify(x)}`).join(', ')} }`;
    // Leaf objects inline only when small (granularity, scale format, outliers), not whole records.
    if (line.length <= INLINE_MAX && entries.length <= 4) return line;
  }
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${render(x, inner)}`).join(',\n')}\n${indent}}`;
}

/**
 * The plan as file text. Throws MixqError (source 'plan') if the plan is not valid.
 * @example writeFileSync('plan.json', serialisePlan(plan));
 */
export function serialisePlan(plan: Plan): string {
  return `${render(validatePlan(plan, 'plan'), '')}\n`;
}

/**
 * The GGUF branches of `mixq plan` and `mixq apply` (src/pipeline/gguf.node.ts):
 *   mixq plan model.gguf --bits 4.5 [--size S] [--imatrix f] [--candidates q4_k,q6_k,...] [--out plan.json] [--json]
 *   mixq apply model.gguf plan.json [--imatrix f] [--out dir-or-file] [--force] [--json]
 * Flags of the ONNX task flow (--emit, --damage, --sweep, --calibration, --eval-size, --max-loss, --eval)
 * are refused with a one-line error. Both print requantize's per-tensor table.
 */
import { open, readFile } from 'node:fs/promises';
import { MixqError } from '../core/errors.ts';
import { getBlockType } from '../blocks/registry.ts';
import { writeFileAtomic } from '../io/files.node.ts';
import { parsePlan } from '../plan/parse.ts';
import { ggmlSpelling } from '../pipeline/gguf/planned.ts';
import { serialisePlan } from '../plan/serialise.ts';
import type { Plan } from '../plan/schema.ts';
import { applyPlanToGguf, type ApplyGgufResult } from '../pipeline/gguf/apply.node.ts';
import { planGguf, type PlanGgufResult } from '../pipeline/gguf/plan.node.ts';
import { failCli, usageExitCode } from './errors.ts';
import { formatBytes } from '../report/summary.ts';
import { type RequantTableRow, requantTableLines } from './requant-table.ts';
import { parseBudget, progressBar } from './quantize-args.ts';
import { jsonText } from './json.ts';

/** A GGUF input: a '.gguf' name, or a file starting with the 'GGUF' magic. */
export async function isGgufInput(path: unknown): Promise<boolean> {
  if (typeof path !== 'string' || path === '') return false;
  if (/\.gguf$/i.test(path)) return true;
  try {
    const fh = await open(path, 'r');
    try {
      const b = new Uint8Array(4);
      const { bytesRead } = await fh.read(b, 0, 4, 0);
      return bytesRead === 4 && String.fromCharCode(...b) === 'GGUF';
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

function refuse(cmd: string, args: Record<string, unknown>, flags: readonly string[], allowed: string): void {
  for (const f of flags) {
    const v = args[f];
    if (v === undefined || v === false || v === '') continue;
    failCli(
      cmd,
      new MixqError(`--${f} does not apply to a GGUF input`, {
        source: `argument --${f}`,
        expected: allowed,
      }),
      2,
    );
  }
}

/** `mixq plan model.gguf ...`. */
export async function runGgufPlan(args: Record<string, unknown>): Promise<void> {
  const model = String(args.model);
  const allowed = 'for a GGUF input: --bits or --size, --imatrix, --candidates, --out, --json';
  // a GGUF input is planned for GGUF output only; '--emit gguf' says so and is accepted
  const flags = ['damage', 'sweep', 'calibration', 'eval-size', 'max-loss', 'native'];
  refuse('plan', args, String(args.emit ?? 'gguf') === 'gguf' ? flags : ['emit', ...flags], allowed);
  const json = Boolean(args.json);
  let budget: ReturnType<typeof parseBudget>;
  try {
    budget = parseBudget(args);
  } catch (e) {
    failCli('plan', e, 2);
  }
  const imatrix = args.imatrix ? String(args.imatrix) : undefined;
  const types = args.candidates
    ? String(args.candidates)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
  const out = args.out ? String(args.out) : 'plan.json';
  const bar = progressBar(!json);
  let r: PlanGgufResult;
  try {
    r = await planGguf(model, {
      budget,
      ...(imatrix ? { imatrix } : {}),
      ...(types ? { types } : {}),
      onProgress: bar.update,
    });
    bar.stop();
    await writeFileAtomic(out, serialisePlan(r.plan), [model, ...(imatrix ? [imatrix] : [])]);
  } catch (e) {
    bar.stop();
    failCli('plan', e, usageExitCode(e));
  }
  const p = r.plan;
  if (json) {
    process.stdout.write(
      `${jsonText({
        plan: out,
        model: p.model,
        budget: p.budget,
        totals: p.totals,
        fileBytes: r.fileBytes,
        solver: p.solver,
        weights: p.weights.map((w) => ({
          name: w.name,
          type: w.scheme.blockType,
          bytes: w.bytes,
          predictedDamage: w.predictedDamage,
        })),
        notes: r.notes,
      })}\n`,
    );
    return;
  }
  const lines = requantTableLines(...planTable(r.tensors, p), undefined, r.notes);
  lines.push(
    `plan: ${p.weights.length} weights at ${p.totals.bitsPerWeight.toFixed(3)} bits per weight (${budgetLabel(p)}), ` +
      `predicted damage ${p.totals.predictedDamage.toPrecision(4)}; output file ${r.fileBytes} bytes (${formatBytes(r.fileBytes, true)}); ` +
      `solver ${p.solver.name} ${p.solver.status}`,
    `wrote ${out}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

function budgetLabel(p: Plan): string {
  const b = p.budget;
  if (b.kind === 'bitsPerWeight') return `budget --bits ${b.bits}`;
  if (b.kind === 'bytes') return `budget --size ${b.bytes} bytes, whole file`;
  return 'budget --max-loss';
}

/** The table apply will print, predicted from the plan (types, bytes) and the input's tensors. */
function planTable(
  tensors: PlanGgufResult['tensors'],
  plan: Plan,
): [RequantTableRow[], Parameters<typeof requantTableLines>[1]] {
  const byName = new Map(plan.weights.map((w) => [w.name, w] as const));
  let bytesIn = 0;
  let bytesOut = 0;
  let elements = 0;
  const rows = tensors.map((t): RequantTableRow => {
    bytesIn += t.nbytes;
    elements += t.nElements;
    const w = byName.get(t.name);
    if (!w) {
      bytesOut += t.nbytes;
      return {
        name: t.name,
        from: t.type.name,
        to: t.type.name,
        bytesOut: t.nbytes,
        imatrix: false,
        note: 'not quantized',
      };
    }
    bytesOut += w.bytes;
    const to = ggmlSpelling(getBlockType(w.scheme.blockType ?? 'F32'));
    return {
      name: t.name,
      from: t.type.name,
      to,
      bytesOut: w.bytes,
      imatrix: w.scheme.algorithm === 'imatrix',
      note: `${to === t.type.name ? 'already this type; ' : ''}damage ${w.predictedDamage.toPrecision(3)}`,
    };
  });
  return [
    rows,
    {
      bytesIn,
      bytesOut,
      elements,
      bitsPerWeightIn: elements ? (8 * bytesIn) / elements : 0,
      bitsPerWeightOut: elements ? (8 * bytesOut) / elements : 0,
    },
  ];
}

/** `mixq apply model.gguf plan.json ...`. */
export async function runGgufApply(args: Record<string, unknown>): Promise<void> {
  refuse('apply', args, ['eval', 'calibration'], 'for a GGUF input: --imatrix, --out, --force, --json');
  const model = String(args.model);
  const planPath = String(args.plan);
  const json = Boolean(args.json);
  const imatrix = args.imatrix ? String(args.imatrix) : undefined;
  const bar = progressBar(!json);
  let r: ApplyGgufResult;
  try {
    const text = await readFile(planPath, 'utf8').catch((e: Error) => {
      throw new Error(`cannot read ${planPath}: ${e.message}`);
    });
    const plan = parsePlan(text, planPath);
    r = await applyPlanToGguf(model, plan, {
      planSource: planPath,
      force: Boolean(args.force),
      ...(imatrix ? { imatrix } : {}),
      ...(args.out ? { out: String(args.out) } : {}),
      onProgress: bar.update,
    });
    bar.stop();
  } catch (e) {
    bar.stop();
    failCli('apply', e, usageExitCode(e));
  }
  if (json) {
    process.stdout.write(
      `${jsonText({
        input: model,
        out: r.out,
        fileBytes: r.fileBytes,
        fileType: r.result.fileType,
        totals: r.result.totals,
        bitsPerWeight: r.bitsPerWeight,
        predictedDamage: r.predictedDamage,
        measuredDamage: r.measuredDamage,
        tensors: r.result.tensors,
        weights: r.weights,
        notes: r.notes,
        check: r.check,
      })}\n`,
    );
    return;
  }
  const lines = requantTableLines(r.result.tensors, r.result.totals, r.result.fileType, r.notes);
  lines.push(
    `planned weights: ${r.weights.length} at ${r.bitsPerWeight.toFixed(3)} bits per weight; damage predicted ` +
      `${r.predictedDamage.toPrecision(4)}, measured ${r.measuredDamage.toPrecision(4)} (all rows)`,
    r.check,
    `wrote ${r.out} (${r.fileBytes} bytes)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

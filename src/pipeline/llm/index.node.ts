/**
 * `mixq quantize <model.gguf | stories>`: a GGUF language model (llama or gpt2 architecture) quantized to
 * a type per tensor, every plan measured in llama.cpp (node-llama-cpp) on the user's text.
 *
 * Stages (each in its own file):
 *  1. text-split.ts    the text's tokens (llama.cpp's tokenizer of the model) -> calibration / validation /
 *                      evaluation windows that never overlap (printed);
 *     imatrix.node.ts  the importance matrix: computed by mixq's engine on the calibration windows (as
 *                      llama-imatrix) and saved, or the user's --imatrix file, or none (--no-imatrix);
 *  2. gguf/damage.ts   the squared-error damage / size table of every (tensor, candidate type), weighted
 *                      by the importance matrix; every file below is encoded with it;
 *     calibrate.node   ... calibrated to KL measured in llama.cpp, one probe per tensor (calibration windows);
 *  3. gguf/plan.node   the MILP's plan at the budget; plans.ts the uniform plans within 10% below it; each
 *                      written as GGUF and scored on the validation windows (measure.node.ts), best KL kept;
 *  4. plans.ts         baselines: llama.cpp's named mixes as llama-quantize builds them, uniform types
 *                      (each without and, with an importance matrix, with it), and mixq's plan at each of
 *                      their file sizes;
 *  5. gguf/apply.node  the chosen plan written (atomically, read back) into the output folder;
 *  6. evaluate.ts      the written file and every baseline scored on the evaluation windows: KL, top-1,
 *                      perplexity with paired-bootstrap intervals (report.ts -> ReportData).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { fileIdentity } from '../../io/files.node.ts';
import type { GgufFile } from '../../io/gguf/read.ts';
import { type LlmConfig, llmConfigFromGguf } from '../../io/llm/config.ts';
import type { Plan, PlanBudget } from '../../plan/schema.ts';
import type { ReportData } from '../../report/types.ts';
import { buildLmReport } from './report.ts';
import { type LmScore } from '../../runtime/lm-windows.ts';
import { type GgufDamageTable, ggufAllocationProblem, ggufDamageTable } from '../gguf/damage.ts';
import { applyPlanToGguf } from '../gguf/apply.node.ts';
import { ggufPlanFromTable, ggufPlanOfTypes, openGguf, sampledNote } from '../gguf/plan.node.ts';
import { calibrateDamage, type KlCalibration, measureDamageKl } from './calibrate.node.ts';
import { compareRows, evalRow, type LmComparison, type LmEvalRow } from './evaluate.ts';
import { GgufLmBench, typesKey } from './measure.node.ts';
import {
  defaultLmBudget,
  llamaMixPlans,
  type LmTypePlan,
  typePlan,
  uniformPlans,
  withinBudget,
} from './plans.ts';
import { computeLmImatrix, type LmImatrix, loadLmImatrix } from './imatrix.node.ts';
import { type LmInput, resolveLmInput, tokenizeSplit } from './input.node.ts';
import { LM_WINDOW_TOKENS, type LmSplit, type LmSplitCounts } from './text-split.ts';

export interface QuantizeGgufLmOptions {
  /** A .gguf path or 'stories' (the bundled stories260K). */
  readonly model: string;
  /** Size budget; default (plans.ts defaultLmBudget): llama.cpp's Q4_K_M size, else the smallest file. */
  readonly budget?: PlanBudget;
  /** Text file for calibration + validation (+ evaluation without `evalText`); default for 'stories'. */
  readonly calibration?: string;
  /** Separate evaluation text file. */
  readonly evalText?: string;
  readonly windows?: Partial<LmSplitCounts>;
  /**
   * Evaluate llama.cpp's mixes, uniform types and mixq at their sizes (default true); a list keeps only
   * the baselines of those labels ('Q4_K_M', 'uniform Q4_0').
   */
  readonly baselines?: boolean | readonly string[];
  /** Choose among the solver's plan and the uniform plans on validation (default true). */
  readonly select?: boolean;
  /**
   * 'calibrated' (default): squared error scaled per tensor by one KL probe; 'kl': every (tensor, type)
   * pair measured in llama.cpp on the calibration windows.
   */
  readonly damage?: 'calibrated' | 'kl';
  /**
   * Importance matrix: undefined (default) computes it with mixq's engine on the calibration windows (as
   * llama-imatrix; saved to `imatrixOut` or '<out>/<model>-imatrix.gguf'), a path reads the user's file
   * (legacy .dat, GGUF imatrix, mixq JSON), false uses none. With one, the damage is weighted by it, every
   * candidate is encoded with it and llama.cpp's mixes are measured both without and with it.
   */
  readonly imatrix?: string | false;
  /** Where to save the importance matrix ('.dat' legacy, '.json' mixq JSON, else GGUF). */
  readonly imatrixOut?: string;
  /** Candidate ggml types (default GGUF_PLAN_TYPES). */
  readonly types?: readonly string[];
  /** Output folder (made when the plan is written): the GGUF file is written there (atomically). */
  readonly out: string;
  readonly onProgress?: (step: string, done: number, total: number) => void;
  readonly log?: (line: string) => void;
  /** The command line, for the report's provenance. */
  readonly command?: string;
}

export interface LmSelection {
  readonly chosen: string;
  readonly tried: readonly { readonly plan: LmTypePlan; readonly validationKl: number }[];
}

export interface QuantizeGgufLmResult {
  readonly name: string;
  readonly modelPath: string;
  readonly config: LlmConfig;
  readonly split: LmSplit;
  readonly splitLines: readonly string[];
  readonly table: GgufDamageTable;
  readonly calibration: KlCalibration;
  readonly plan: Plan;
  readonly selection: LmSelection;
  /** The importance matrix the plan names (`mixq apply --imatrix <path>`), when one was used. */
  readonly imatrix?: { readonly path: string; readonly origin: 'computed' | 'file' };
  /** The written GGUF file and its read-back check. */
  readonly output: { readonly path: string; readonly bytes: number; readonly check: string };
  readonly input: LmEvalRow;
  /** mixq's chosen plan, scored from the written file. */
  readonly mixq: LmEvalRow;
  readonly baselines: readonly LmEvalRow[];
  /** mixq's plans at each baseline's size. */
  readonly equalSize: readonly LmEvalRow[];
  readonly comparisons: readonly LmComparison[];
  readonly notes: readonly string[];
  readonly timings: readonly { readonly step: string; readonly ms: number }[];
  readonly report: ReportData;
}

type Progress = NonNullable<QuantizeGgufLmOptions['onProgress']>;

/**
 * Step 1b: the importance matrix (the user's, or computed by mixq's engine on the calibration windows and
 * saved), the damage table weighted by it, and the budget (the default when none was given); an infeasible
 * budget fails here, before any file is written.
 */
async function importanceAndDamage(
  f: GgufFile,
  config: LlmConfig,
  opts: QuantizeGgufLmOptions,
  input: LmInput,
  given: LmImatrix | undefined,
  cal: { windows: LmSplit['calibration']['windows']; label: string },
  io: { notes: string[]; lap: (step: string) => void; progress: Progress; log: (line: string) => void },
) {
  const { notes, lap, progress, log } = io;
  const im =
    given ??
    (opts.imatrix === false
      ? undefined
      : await computeLmImatrix({
          modelPath: input.path,
          out: opts.imatrixOut ?? join(opts.out, `${input.name}-imatrix.gguf`),
          windows: cal.windows,
          windowsLabel: cal.label,
          onProgress: (d, t) => progress('imatrix', d, t),
        }));
  if (im) {
    log(im.line);
    notes.push(im.line);
    lap('imatrix');
  }
  const table = await ggufDamageTable(f, {
    ...(opts.types ? { types: opts.types } : {}),
    ...(im ? { imatrix: im.data } : {}),
    onProgress: (d, t) => progress('damage', d, t),
  });
  let budget = opts.budget;
  if (!budget) {
    const d = defaultLmBudget(table, config);
    budget = d.budget;
    log(`budget: ${d.reason}`);
    notes.push(`budget: ${d.reason}`);
  }
  ggufAllocationProblem(table, budget); // an infeasible budget fails here, before any file is written
  lap('damage table');
  const imFile = im
    ? await (async () => {
        await mkdir(opts.out, { recursive: true });
        return im.save([
          input.path,
          ...(opts.calibration ? [opts.calibration] : []),
          ...(opts.evalText ? [opts.evalText] : []),
        ]);
      })()
    : undefined;
  return { im, table, budget, imFile };
}

/** Step 3: the solver's plan and the uniform plans within 10% below the budget, scored on validation. */
async function selectAtBudget(
  bench: GgufLmBench,
  table: GgufDamageTable,
  uniforms: readonly LmTypePlan[],
  budget: PlanBudget,
  split: LmSplit,
  planOpts: Parameters<typeof ggufPlanFromTable>[2],
  select: boolean,
  progress: Progress,
): Promise<{ plan: Plan; chosen: LmTypePlan; selection: LmSelection }> {
  const solved = await ggufPlanFromTable(table, budget, planOpts);
  const solverTypes = new Map(solved.plan.weights.map((w) => [w.name, w.scheme.blockType!] as const));
  const solver = typePlan(table, 'mixq solver', 'mixq', solverTypes);
  const key = typesKey(solverTypes);
  const others = select ? withinBudget(uniforms, budget).filter((u) => typesKey(u.types) !== key) : [];
  const tried: { plan: LmTypePlan; validationKl: number }[] = [];
  for (const [i, p] of [solver, ...others].entries()) {
    const s = await bench.score(p.types, split.validation.windows);
    tried.push({ plan: p, validationKl: s.klMean! });
    progress('validation', i + 1, others.length + 1);
  }
  const best = tried.reduce((a, b) => (b.validationKl < a.validationKl ? b : a));
  const plan =
    best.plan === solver
      ? solved.plan
      : ggufPlanOfTypes(table, best.plan.types, budget, planOpts, { name: 'uniform', status: 'validation' })
          .plan;
  return { plan, chosen: best.plan, selection: { chosen: best.plan.label, tried } };
}

export function budgetLabel(b: PlanBudget): string {
  return b.kind === 'bytes' ? `--size ${b.bytes}` : b.kind === 'bitsPerWeight' ? `--bits ${b.bits}` : b.kind;
}

export async function quantizeGgufLm(opts: QuantizeGgufLmOptions): Promise<QuantizeGgufLmResult> {
  const progress: Progress = opts.onProgress ?? (() => {});
  const log = opts.log ?? (() => {});
  const timings: { step: string; ms: number }[] = [];
  let t0 = performance.now();
  const lap = (step: string) => {
    const t = performance.now();
    timings.push({ step, ms: t - t0 });
    t0 = t;
  };
  // a user's importance matrix is read first: a bad file stops the job before anything runs
  const given =
    typeof opts.imatrix === 'string' ? await loadLmImatrix(opts.imatrix, opts.imatrixOut) : undefined;
  const input = await resolveLmInput(opts);
  const notes: string[] = [];
  if (input.convertedFrom)
    notes.push(
      `${input.convertedFrom} was converted to a GGUF (weights as stored) and quantized from it; plan.json names that GGUF`,
    );
  try {
    return await runOnGguf(opts, input, given, notes, lap, progress, log, timings);
  } finally {
    await input.cleanup();
  }
}

async function runOnGguf(
  opts: QuantizeGgufLmOptions,
  input: LmInput,
  given: LmImatrix | undefined,
  notes: string[],
  lap: (step: string) => void,
  progress: Progress,
  log: (line: string) => void,
  timings: { step: string; ms: number }[],
): Promise<QuantizeGgufLmResult> {
  return openGguf(input.path, async (f) => {
    const config = llmConfigFromGguf(f);
    const bench = await GgufLmBench.open(input.path, f);
    try {
      // windows of 256 tokens, or the model's context when shorter
      const split = tokenizeSplit(
        bench.input,
        input,
        opts.windows,
        Math.min(LM_WINDOW_TOKENS, config.contextLength),
      );
      for (const l of split.lines) log(l);
      lap('tokenize');
      const calW = split.split.calibration.windows;
      const calRange = `${split.split.calibration.source} tokens [${split.split.calibration.from}, ${split.split.calibration.to})`;
      const { im, table, budget, imFile } = await importanceAndDamage(
        f,
        config,
        opts,
        input,
        given,
        { windows: calW, label: calRange },
        { notes, lap, progress, log },
      );
      bench.imatrix = im?.data;
      const kl = opts.damage === 'kl';
      const cal = await (kl ? measureDamageKl : calibrateDamage)(bench, table, calW, (d, t) =>
        progress(kl ? 'KL per (tensor, type)' : 'calibrate', d, t),
      );
      lap('KL calibration');
      const id = await fileIdentity(input.path);
      const weighting = imFile ? ', weighted per input column by the importance matrix' : '';
      const planOpts = {
        model: id,
        damage: kl
          ? `KL(input || model) per token of each (tensor, type) measured alone in llama.cpp on ${calW.length} calibration windows${imFile ? ' (encoded with the importance matrix)' : ''}`
          : `KL(input || model) per token predicted from the ggml squared error of each tensor${weighting}, scaled per tensor by one probe measured in llama.cpp on ${calW.length} calibration windows (${calRange})${sampledNote(table)}`,
        calibration: imFile ? `imatrix ${imFile.file} sha256:${imFile.sha256}` : calRange,
      };
      const uniforms = uniformPlans(cal.table);
      const sel = await selectAtBudget(
        bench,
        cal.table,
        uniforms,
        budget,
        split.split,
        planOpts,
        opts.select !== false,
        progress,
      );
      lap('selection');
      const outPath = join(opts.out, `${input.name}-mixq.gguf`);
      await mkdir(opts.out, { recursive: true });
      const applied = await applyPlanToGguf(input.path, sel.plan, {
        out: outPath,
        ...(imFile ? { imatrix: imFile.path } : {}),
      });
      lap('write');
      const evalW = split.split.evaluation.windows;
      const inputScore = await bench.inputScore(evalW);
      const inputBytes = table.weights.reduce(
        (a, w) => a + f.tensors.find((t) => t.name === w.name)!.nbytes,
        0,
      );
      const elements = table.weights.reduce((a, w) => a + w.elements, 0);
      const inputRow = evalRow(
        {
          label: 'input',
          kind: 'uniform',
          fileBytes: id.size,
          bitsPerWeight: (8 * inputBytes) / elements,
          weightBytes: inputBytes,
        },
        inputScore,
        inputScore,
      );
      const mixqScore = await bench.scoreFile(applied.out, evalW);
      const mixqRow = evalRow({ ...sel.chosen, label: 'mixq', kind: 'mixq' }, inputScore, mixqScore);
      const base = await evaluateBaselines(bench, cal.table, config, uniforms, inputScore, {
        keep: opts.baselines ?? true,
        evalWindows: evalW,
        planOpts,
        notes,
        progress,
      });
      lap('evaluation');
      const allNotes = [...notes, ...groupNotes(table.notes)];
      const mixqOut = { ...mixqRow, predictedDamage: sel.plan.totals.predictedDamage };
      const report = buildLmReport({
        name: input.name,
        plan: sel.plan,
        budget: budgetLabel(budget),
        table: cal.table,
        measure: kl
          ? 'KL measured in llama.cpp, each (tensor, type) alone'
          : 'predicted KL (squared error scaled per tensor by a KL probe in llama.cpp)',
        selection: sel.selection,
        validation: split.lines[1]!,
        mixq: mixqOut,
        input: inputRow,
        ...base,
        notes: [...split.lines, ...allNotes],
        timings,
        ...(opts.command ? { command: opts.command } : {}),
      });
      return {
        name: input.name,
        modelPath: input.path,
        config,
        split: split.split,
        splitLines: split.lines,
        table,
        calibration: cal,
        plan: sel.plan,
        selection: sel.selection,
        ...(im && imFile ? { imatrix: { path: imFile.path, origin: im.origin } } : {}),
        output: { path: applied.out, bytes: applied.fileBytes, check: applied.check },
        input: { ...inputRow, kind: 'input' },
        mixq: mixqOut,
        ...base,
        notes: allNotes,
        timings,
        report,
      };
    } finally {
      await bench.close();
    }
  });
}

/** Step 4 + 6 for the baselines: each baseline and mixq's plan at its file size, on evaluation. */
async function evaluateBaselines(
  bench: GgufLmBench,
  table: GgufDamageTable,
  config: LlmConfig,
  uniforms: readonly LmTypePlan[],
  inputScore: LmScore,
  o: {
    keep: boolean | readonly string[];
    evalWindows: Parameters<GgufLmBench['score']>[1];
    planOpts: Parameters<typeof ggufPlanFromTable>[2];
    notes: string[];
    progress: Progress;
  },
): Promise<{ baselines: LmEvalRow[]; equalSize: LmEvalRow[]; comparisons: LmComparison[] }> {
  const out = {
    baselines: [] as LmEvalRow[],
    equalSize: [] as LmEvalRow[],
    comparisons: [] as LmComparison[],
  };
  if (o.keep === false) return out;
  const mixes = llamaMixPlans(table, config);
  o.notes.push(...mixes.notes);
  const keep = o.keep;
  // each baseline as llama-quantize builds it, then (with an importance matrix) the same types encoded
  // with it, as llama-quantize --imatrix does; a map no tensor of which uses the imatrix is listed once
  const all: { plan: LmTypePlan; imatrix: boolean }[] = [];
  for (const p of [...mixes.plans, ...uniforms]) {
    const withIm = bench.imatrix !== undefined && usesImatrix(table, p.types);
    const label = withIm ? `${p.label} + imatrix` : p.label;
    if (keep === true || keep.includes(p.label)) all.push({ plan: p, imatrix: false });
    if (withIm && (keep === true || keep.includes(p.label) || keep.includes(label)))
      all.push({ plan: { ...p, label, imatrix: true }, imatrix: true });
  }
  // mixq's plan at each size, solved once per size
  const atSize = new Map<number, { mp: LmTypePlan; ms: LmScore; mrow: LmEvalRow } | undefined>();
  for (const [i, { plan: b, imatrix }] of all.entries()) {
    const s = await bench.score(b.types, o.evalWindows, { imatrix });
    const row = evalRow(b, inputScore, s);
    out.baselines.push(row);
    if (!atSize.has(b.fileBytes)) {
      let plan: Plan | undefined;
      try {
        plan = (await ggufPlanFromTable(table, { kind: 'bytes', bytes: b.fileBytes }, o.planOpts)).plan;
      } catch (e) {
        if (!(e instanceof MixqError)) throw e;
        o.notes.push(`no mixq plan at the size of ${b.label}: ${e.message}`);
      }
      if (plan) {
        const types = new Map(plan.weights.map((w) => [w.name, w.scheme.blockType!] as const));
        const mp = typePlan(table, `mixq = ${b.label}`, 'mixq', types);
        const ms = await bench.score(types, o.evalWindows);
        atSize.set(b.fileBytes, { mp, ms, mrow: evalRow(mp, inputScore, ms) });
      } else atSize.set(b.fileBytes, undefined);
    }
    const m = atSize.get(b.fileBytes);
    if (m) {
      const mrow = { ...m.mrow, label: `mixq = ${b.label}` };
      out.equalSize.push(mrow);
      // the same plan only when mixq chose the same types encoded the same way
      const same =
        typesKey(m.mp.types) === typesKey(b.types) &&
        (imatrix === (bench.imatrix !== undefined) || !usesImatrix(table, b.types));
      out.comparisons.push(compareRows(row, s, mrow, m.ms, same));
    }
    o.progress('baselines', i + 1, all.length);
  }
  return out;
}

/** Whether writing these types encodes some tensor with the importance matrix (the table's flag). */
function usesImatrix(table: GgufDamageTable, types: ReadonlyMap<string, string>): boolean {
  return table.weights.some((w) => w.candidates.find((c) => c.type === types.get(w.name))?.imatrix === true);
}

/** 'name: ne[0] = 64 rules out X' notes grouped: one line per distinct remark, with a count. */
function groupNotes(notes: readonly string[]): string[] {
  const groups = new Map<string, string[]>();
  for (const n of notes) {
    const m = /^([^:]+): (.*)$/.exec(n);
    const [name, rest] = m ? [m[1]!, m[2]!] : ['', n];
    groups.set(rest, [...(groups.get(rest) ?? []), name]);
  }
  return [...groups].map(([rest, names]) =>
    names.length > 1 ? `${names.length} tensors (e.g. ${names[0]}): ${rest}` : `${names[0]}: ${rest}`,
  );
}

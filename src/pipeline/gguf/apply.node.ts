/**
 * `mixq apply model.gguf plan.json`: the plan checked against the file (planned.ts), one ggml type per
 * tensor, requantizeGgufTo streamed to the file (atomically), read back and every planned tensor's damage measured again
 * (see plan.node.ts for the plan's identity checks).
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { MixqError } from '../../core/errors.ts';
import { writeFileAtomicSink } from '../../io/file-stream.node.ts';
import { fileIdentity, fileSource } from '../../io/files.node.ts';
import { type ImatrixData } from '../../io/gguf/imatrix.ts';
import { type GgufFile, readGguf } from '../../io/gguf/read.ts';
import { type RequantizeReport, type RequantRule, requantizeGgufTo } from '../../io/gguf/requantize.ts';

import { ggufPlannedTensors } from './planned.ts';
import { ggufImportance, ggufReadRows, ggufRowError } from './rows.ts';

import { type Plan } from '../../plan/schema.ts';
import { encodeRowsOnThreads } from '../../runtime/block-encode.node.ts';
import { IMATRIX_RE, loadImatrix } from './plan.node.ts';
export interface ApplyGgufOptions {
  /** Importance-matrix file; must be the one the plan names (unless `force`). */
  readonly imatrix?: string;
  /** Apply a plan made for another file or importance matrix. */
  readonly force?: boolean;
  /** The plan file's name, for error messages and write protection. */
  readonly planSource?: string;
  /** Output file or existing folder (default '<input stem>-mixq.gguf' in the current folder). */
  readonly out?: string;
  readonly onProgress?: (step: string, done: number, total: number) => void;
}

export interface ApplyGgufWeight {
  readonly name: string;
  readonly type: string;
  readonly bytes: number;
  readonly predictedDamage: number;
  /** Importance-weighted squared error of the written tensor over all its rows (same weights as the plan). */
  readonly measuredDamage: number;
}

export interface ApplyGgufResult {
  readonly out: string;
  /** requantizeGgufTo's report (the output was streamed to the file tensor by tensor). */
  readonly result: RequantizeReport;
  readonly fileBytes: number;
  readonly weights: readonly ApplyGgufWeight[];
  /** Bits per weight over the planned weights (8 * bytes / elements). */
  readonly bitsPerWeight: number;
  readonly predictedDamage: number;
  readonly measuredDamage: number;
  readonly notes: readonly string[];
  /** What the read-back checked. */
  readonly check: string;
}

/** Where `apply` writes: `out` as a file, inside `out` when it is a folder, else next to the cwd. */
export async function ggufOutputPath(input: string, out?: string): Promise<string> {
  const name = `${basename(input).replace(/\.gguf$/i, '')}-mixq.gguf`;
  if (out === undefined || out === '') return name;
  if (/[/\\]$/.test(out)) return join(out, name);
  const st = await stat(out).catch(() => undefined);
  return st?.isDirectory() ? join(out, name) : out;
}

function checkIdentity(
  plan: Plan,
  id: { file: string; size: number; sha256: string },
  path: string,
  source: string,
): void {
  if (plan.model.sha256 !== undefined && plan.model.sha256 !== id.sha256)
    throw new MixqError(`the plan was made for another file (${plan.model.file})`, {
      source,
      field: 'model.sha256',
      expected: `${id.sha256} (the sha256 of ${path}); pass --force to apply anyway`,
    });
  if (plan.model.sha256 === undefined && plan.model.size !== undefined && plan.model.size !== id.size)
    throw new MixqError(`the plan was made for a file of ${plan.model.size} bytes`, {
      source,
      field: 'model.size',
      expected: `${id.size} (the size of ${path}); pass --force to apply anyway`,
    });
}

/** The importance matrix the plan names, from objective.calibration.data. */
function planImatrix(plan: Plan): { file: string; sha256: string } | undefined {
  const m = IMATRIX_RE.exec(plan.objective.calibration?.data ?? '');
  return m ? { file: m[1]!, sha256: m[2]! } : undefined;
}

/**
 * `mixq apply model.gguf plan.json`: re-quantizes the file to the plan's types, writes it atomically
 * (never over the input, the plan or the importance matrix), reads it back and checks every tensor's
 * type, size and alignment, the metadata and the unplanned tensors' bytes, and measures each planned
 * tensor's damage over all rows.
 */
export async function applyPlanToGguf(
  path: string,
  plan: Plan,
  opts: ApplyGgufOptions = {},
): Promise<ApplyGgufResult> {
  const source = opts.planSource ?? 'plan';
  const progress = opts.onProgress ?? (() => {});
  const notes: string[] = [];
  if (!opts.force) checkIdentity(plan, await fileIdentity(path), path, source);
  const want = planImatrix(plan);
  const im = opts.imatrix !== undefined ? await loadImatrix(opts.imatrix) : undefined;
  if (want && !im) {
    if (!opts.force)
      throw new MixqError(`the plan was made with the importance matrix ${want.file}`, {
        source,
        field: 'objective.calibration',
        expected: `--imatrix ${want.file} (sha256 ${want.sha256}); pass --force to apply without it`,
      });
    notes.push(`applied without the plan's importance matrix ${want.file} (--force)`);
  } else if (want && im && im.sha256 !== want.sha256) {
    if (!opts.force)
      throw new MixqError(`${opts.imatrix} is not the importance matrix the plan was made with`, {
        source,
        field: 'objective.calibration',
        expected: `${want.file} with sha256 ${want.sha256} (got ${im.sha256}); pass --force to apply anyway`,
      });
    notes.push(`applied with ${opts.imatrix}, not the plan's importance matrix ${want.file} (--force)`);
  } else if (!want && im) {
    if (!opts.force)
      throw new MixqError('the plan was made without an importance matrix', {
        source,
        field: 'objective.calibration',
        expected: 'no --imatrix (or a plan made with it: mixq plan --imatrix); pass --force to use it anyway',
      });
    notes.push(`applied with ${opts.imatrix}, which the plan's damage did not use (--force)`);
  }
  const out = await ggufOutputPath(path, opts.out);
  const protect = [
    path,
    ...(opts.planSource ? [opts.planSource] : []),
    ...(opts.imatrix ? [opts.imatrix] : []),
  ];

  const src = await fileSource(path);
  try {
    const file = await readGguf(src);
    const planned = ggufPlannedTensors(plan, file, source);
    notes.push(...planned.notes);
    const rules: RequantRule[] = planned.tensors.map((t) => ({
      pattern: new RegExp(`^${t.info.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
      type: t.type.name,
    }));
    // streamed: one tensor in memory at a time, the output renamed into place only when complete
    const { value: result } = await writeFileAtomicSink(
      out,
      (write) =>
        requantizeGgufTo(file, rules, write, {
          encodeRows: encodeRowsOnThreads,
          ...(im ? { imatrix: im.data } : {}),
          progress: (d, t) => progress('requantize', d, t),
        }),
      protect,
    );
    notes.push(...result.notes);

    // ---- read back from disk
    const back = await fileSource(out);
    try {
      const w = await readGguf(back);
      const check = await checkOutput(file, w, plan, planned.tensors, im?.data, out, progress);
      const fileBytes = back.size;
      const elements = planned.tensors.reduce((s, t) => s + t.info.nElements, 0);
      const bytes = planned.tensors.reduce((s, t) => s + t.bytes, 0);
      return {
        out,
        result,
        fileBytes,
        weights: check.weights,
        bitsPerWeight: elements > 0 ? (8 * bytes) / elements : 0,
        predictedDamage: check.weights.reduce((s, x) => s + x.predictedDamage, 0),
        measuredDamage: check.weights.reduce((s, x) => s + x.measuredDamage, 0),
        notes,
        check: `read back ${out}: ${w.tensors.length} tensors with the planned types and sizes at ${w.alignment}-byte aligned offsets, ${w.kv.length} metadata keys (general.file_type ${result.fileType}, general.quantization_version set), unplanned tensors byte-identical`,
      };
    } finally {
      await back.close();
    }
  } finally {
    await src.close();
  }
}

/** Rows decoded per step when measuring a whole tensor. */
const MEASURE_ELEMENTS = 1 << 20;
/** Bytes per piece when an unplanned tensor is compared with its input. */
const COMPARE_BYTES = 16 << 20;

function outputError(field: string, message: string, expected?: string): MixqError {
  return new MixqError(message, {
    source: 'gguf apply (read-back)',
    field,
    ...(expected ? { expected } : {}),
  });
}

/** Read-back check of the written file against the input and the plan; measures each planned tensor. */
async function checkOutput(
  input: GgufFile,
  output: GgufFile,
  plan: Plan,
  planned: ReturnType<typeof ggufPlannedTensors>['tensors'],
  imatrix: ImatrixData | undefined,
  out: string,
  progress: (step: string, done: number, total: number) => void,
): Promise<{ weights: ApplyGgufWeight[] }> {
  if (output.tensors.length !== input.tensors.length)
    throw outputError('tensors', `${out} has ${output.tensors.length} tensors`, String(input.tensors.length));
  if (output.dataOffset % output.alignment !== 0)
    throw outputError(
      'dataOffset',
      `data section at ${output.dataOffset}`,
      `a multiple of ${output.alignment}`,
    );
  const inKv = new Map(input.kv.map((k) => [k.key, k] as const));
  for (const k of output.kv) {
    const was = inKv.get(k.key);
    if (k.key === 'general.file_type' || k.key === 'general.quantization_version') {
      if (k.type !== 'u32') throw outputError(k.key, `type ${k.type}`, 'u32');
      continue;
    }
    if (!was || was.type !== k.type || JSON.stringify(was.value, big) !== JSON.stringify(k.value, big))
      throw outputError(`kv.${k.key}`, 'metadata changed', 'every input key kept as it was');
  }
  for (const k of input.kv)
    if (!output.kv.some((x) => x.key === k.key)) throw outputError(`kv.${k.key}`, 'metadata key lost');
  const byName = new Map(planned.map((p) => [p.info.name, p] as const));
  const importance = ggufImportance(imatrix, input.source);
  const weights: ApplyGgufWeight[] = [];
  for (const [i, t] of output.tensors.entries()) {
    const s = input.tensors[i]!;
    if (t.name !== s.name || t.ne.join() !== s.ne.join())
      throw outputError(
        `tensors[${i}]`,
        `tensor '${t.name}' [${t.ne.join(', ')}]`,
        `'${s.name}' [${s.ne.join(', ')}]`,
      );
    if (t.absOffset % output.alignment !== 0)
      throw outputError(
        `tensors.${t.name}.offset`,
        `offset ${t.absOffset}`,
        `a multiple of ${output.alignment}`,
      );
    const p = byName.get(t.name);
    if (!p) {
      if (t.typeId !== s.typeId)
        throw outputError(`tensors.${t.name}.type`, `type ${t.type.name}`, s.type.name);
      // compared in pieces (positioned reads): memory stays flat whatever the tensor's size
      for (let o = 0; o < s.nbytes; o += COMPARE_BYTES) {
        const n = Math.min(COMPARE_BYTES, s.nbytes - o);
        const [a, b] = await Promise.all([input.readTensorRange(s, o, n), output.readTensorRange(t, o, n)]);
        if (a.some((x, j) => x !== b[j]))
          throw outputError(`tensors.${t.name}`, 'an unplanned tensor changed', 'its input bytes');
      }
      continue;
    }
    if (t.typeId !== p.type.ggmlTypeId)
      throw outputError(`tensors.${t.name}.type`, `type ${t.type.name}`, p.type.name);
    if (t.nbytes !== p.bytes)
      throw outputError(`tensors.${t.name}.nbytes`, `${t.nbytes} bytes`, String(p.bytes));
    // damage over all rows, in runs of rows, weighted as the plan's table weighs it
    const imp = importance(s);
    const ne0 = s.ne[0]!;
    const nRows = s.nElements / ne0;
    const step = Math.max(1, Math.floor(MEASURE_ELEMENTS / ne0));
    let damage = 0;
    for (let r = 0; r < nRows; r += step) {
      const rows = Int32Array.from({ length: Math.min(step, nRows - r) }, (_, k) => r + k);
      const [x, q] = await Promise.all([ggufReadRows(input, s, rows), ggufReadRows(output, t, rows)]);
      damage += ggufRowError(s.ne, rows, x, q, imp);
    }
    weights.push({
      name: t.name,
      type: p.type.name,
      bytes: t.nbytes,
      predictedDamage: plan.weights[p.index]!.predictedDamage,
      measuredDamage: damage,
    });
    progress('check', weights.length, planned.length);
  }
  return { weights };
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

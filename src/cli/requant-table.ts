/**
 * The per-tensor table `mixq requantize` prints, shared with the GGUF paths of `mixq plan` and
 * `mixq apply`: name, old type, new type, bytes, note; then the totals (size and bits per weight over
 * all tensors, as llama.cpp counts them), file_type and notes.
 */
import type { RequantizeResult, RequantTensorReport } from '../io/gguf/requantize.ts';
import { formatBytes } from '../report/summary.ts';

/** '1.50 MiB', '12.0 KiB', '512 B'. */
const fmtBytes = (n: number): string => formatBytes(n, true);

/** One table row: what a RequantTensorReport says about a tensor. */
export type RequantTableRow = Pick<
  RequantTensorReport,
  'name' | 'from' | 'to' | 'bytesOut' | 'imatrix' | 'note'
>;

/** The table, the totals line (with file_type when known) and one line per note. */
export function requantTableLines(
  tensors: readonly RequantTableRow[],
  totals: RequantizeResult['totals'],
  fileType?: number,
  notes: readonly string[] = [],
): string[] {
  const w = Math.max(4, ...tensors.map((t) => t.name.length));
  const lines = [
    `${'name'.padEnd(w)}  ${'old'.padEnd(7)}  ${'new'.padEnd(7)}  ${'bytes'.padStart(12)}  note`,
  ];
  for (const t of tensors) {
    const note = [t.imatrix ? 'imatrix' : '', t.note ?? ''].filter(Boolean).join('; ');
    lines.push(
      `${t.name.padEnd(w)}  ${t.from.padEnd(7)}  ${t.to.padEnd(7)}  ${String(t.bytesOut).padStart(12)}  ${note}`,
    );
  }
  lines.push(
    `total: ${fmtBytes(totals.bytesIn)} -> ${fmtBytes(totals.bytesOut)}, ${totals.bitsPerWeightIn.toFixed(3)} -> ` +
      `${totals.bitsPerWeightOut.toFixed(3)} bits per weight (${totals.elements} weights)` +
      (fileType !== undefined ? `; file_type ${fileType}` : ''),
  );
  for (const n of notes) lines.push(`note: ${n}`);
  return lines;
}

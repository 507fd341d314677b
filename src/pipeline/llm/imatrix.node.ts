/**
 * The importance matrix of a GGUF language-model job (`mixq quantize <model> [--imatrix f]
 * [--imatrix-out f] [--no-imatrix]`):
 *  - default: computed by mixq's engine (float32 activations) on the calibration windows, as llama-imatrix
 *    computes it (engine/imatrix.ts), and saved — `--imatrix-out <file>` or '<out>/<model>-imatrix.gguf';
 *    '.dat' writes llama.cpp's legacy layout, '.json' mixq's JSON, anything else the GGUF imatrix layout
 *    with token counts. The job then uses the file's values as read back (so `mixq apply model.gguf
 *    plan.json --imatrix <that file>` writes the same bytes);
 *  - `--imatrix <file>`: the user's own file (legacy .dat, GGUF imatrix, mixq JSON), as llama-quantize
 *    reads it; `--imatrix-out` then saves a copy in the layout its name asks for;
 *  - `--no-imatrix`: none (llama-quantize without --imatrix).
 * The imatrix weights the damage table, every candidate and plan is encoded with it (the ggml quantizers
 * that take one), and llama.cpp's mixes are measured both without and with it.
 */
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { MixqError } from '../../core/errors.ts';
import { collectImatrix, imatrixFromSums } from '../../engine/imatrix.ts';
import { openEngineModel } from '../../engine/load.node.ts';
import { fileIdentity, writeFileAtomic } from '../../io/files.node.ts';
import {
  type ImatrixData,
  imatrixFormatOf,
  readImatrixBytes,
  serialiseImatrix,
} from '../../io/gguf/imatrix.ts';
import type { TokenWindow } from '../../runtime/lm-windows.ts';
import { loadImatrix } from '../gguf/plan.node.ts';

/** An importance matrix ready for the job; `save` writes its file (after the budget is known to fit). */
export interface LmImatrix {
  readonly data: ImatrixData;
  readonly origin: 'computed' | 'file';
  /** What it was computed on, or the file it came from (printed and in the report's notes). */
  readonly line: string;
  /**
   * Writes the file(s) and returns the one the plan names (name and sha256, for `mixq apply --imatrix`):
   * the computed matrix's file, or the user's own file. Never writes over a `protect` path.
   */
  save(
    protect: readonly string[],
  ): Promise<{ readonly path: string; readonly file: string; readonly sha256: string }>;
}

/** The user's file (`--imatrix`), read before anything else runs; `out` saves a copy in its layout. */
export async function loadLmImatrix(given: string, out?: string): Promise<LmImatrix> {
  const im = await loadImatrix(given);
  if (out !== undefined && resolve(out) === resolve(given))
    throw new MixqError('--imatrix-out names the --imatrix file', {
      source: 'argument --imatrix-out',
      expected: 'another file (the input is never overwritten)',
    });
  return {
    data: im.data,
    origin: 'file',
    line: `importance matrix: ${given} (${im.data.format}, ${im.data.entries.size} entries)`,
    async save(protect) {
      if (out !== undefined)
        await writeFileAtomic(out, serialiseImatrix(im.data, imatrixFormatOf(out)), [given, ...protect]);
      return { path: given, file: im.file, sha256: im.sha256 };
    },
  };
}

export interface ComputeLmImatrixOptions {
  /** The GGUF the engine runs (the input, or the GGUF a Hugging Face folder was converted to). */
  readonly modelPath: string;
  /** Where to save it ('.dat' legacy, '.json' mixq JSON, else GGUF). */
  readonly out: string;
  readonly windows: readonly TokenWindow[];
  /** What the windows are (datasets entry and the printed line): 'text.txt tokens [0, 1020)'. */
  readonly windowsLabel: string;
  readonly onProgress?: (done: number, total: number) => void;
}

/** mixq's importance matrix on the calibration windows (see the file header); saved by `save`. */
export async function computeLmImatrix(o: ComputeLmImatrixOptions): Promise<LmImatrix> {
  const model = await openEngineModel(o.modelPath, {
    activations: 'f32',
    threads: Math.max(1, Math.min(4, availableParallelism())),
  });
  let computed;
  try {
    computed = imatrixFromSums(
      collectImatrix(
        model,
        o.windows.map((w) => w.tokens),
        { datasets: [o.windowsLabel], ...(o.onProgress ? { onProgress: o.onProgress } : {}) },
      ),
    );
  } finally {
    await model.close();
  }
  const bytes = serialiseImatrix(computed, imatrixFormatOf(o.out));
  // the job uses the values as the file holds them, so the file reproduces every written tensor
  const data = await readImatrixBytes(bytes, basename(o.out));
  const tokens = computed.counts.values().next().value ?? 0;
  return {
    data,
    origin: 'computed',
    line: `importance matrix: computed by mixq's engine on the calibration windows (${o.windowsLabel}: ${o.windows.length} windows, ${tokens} tokens, ${data.entries.size} weights, as llama-imatrix), saved to ${o.out}`,
    async save(protect) {
      await writeFileAtomic(o.out, bytes, protect);
      const id = await fileIdentity(o.out);
      return { path: o.out, file: id.file, sha256: id.sha256 };
    },
  };
}

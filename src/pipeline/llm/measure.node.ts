/**
 * Plans measured where they run: a GGUF language model re-quantized to a type per tensor
 * (io/gguf requantizeGgufTo, the bytes `mixq apply` writes, streamed to the file), written to a temporary folder, loaded in
 * llama.cpp (runtime/llama.node.ts) and scored against the input model's next-token distributions on a
 * set of windows: mean KL (as `llama-perplexity --kl-divergence`), top-1 agreement, nats per token.
 *
 * The input model's distributions are recorded once per window set (LlamaReference). Files are written
 * once per distinct type map (and use of the importance matrix: with `bench.imatrix` set, candidates are
 * encoded with it unless a call says `imatrix: false`, as llama-quantize with and without --imatrix) and
 * kept until `close()`; a type map is scored once per window set (cached).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImatrixData } from '../../io/gguf/imatrix.ts';
import type { GgufFile } from '../../io/gguf/read.ts';
import { writeFileAtomicSink } from '../../io/file-stream.node.ts';
import { type RequantRule, requantizeGgufTo } from '../../io/gguf/requantize.ts';
import { encodeRowsOnThreads } from '../../runtime/block-encode.node.ts';
import { type LlamaCppModel, type LlamaReference, openLlamaModel } from '../../runtime/llama.node.ts';
import type { LmScore, TokenWindow } from '../../runtime/lm-windows.ts';

/** `imatrix: false` encodes without the bench's importance matrix (the "without imatrix" baselines). */
export interface ScoreOptions {
  readonly imatrix?: boolean;
}

/** Tensor name -> ggml type (registry names: 'Q4_K', 'F16'). */
export type GgufTypes = ReadonlyMap<string, string>;

function exact(name: string): RegExp {
  return new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** A stable key of a type map (same map, same file). */
export function typesKey(types: GgufTypes): string {
  return [...types.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, t]) => `${n}=${t}`)
    .join(';');
}

/**
 * Writes `file` re-quantized to `types` (tensor name -> ggml type, others unchanged) to `path`, as
 * llama-quantize does, with the importance matrix when given (every type whose ggml quantizer takes one
 * encodes with the tensor's entry). Streamed tensor by tensor (memory bounded by the largest tensor, not
 * the model), atomically; rows encoded on worker threads with the same bytes as one thread.
 */
export async function writeTypesGguf(
  file: GgufFile,
  types: GgufTypes,
  path: string,
  imatrix?: ImatrixData,
): Promise<void> {
  const rules: RequantRule[] = [...types].map(([n, t]) => ({ pattern: exact(n), type: t }));
  await writeFileAtomicSink(path, (write) =>
    requantizeGgufTo(file, rules, write, {
      encodeRows: encodeRowsOnThreads,
      ...(imatrix ? { imatrix } : {}),
    }),
  );
}

/** The input model in llama.cpp and its re-quantized variants, scored against it. */
export class GgufLmBench {
  private readonly files = new Map<string, string>();
  private readonly refs = new Map<readonly TokenWindow[], LlamaReference>();
  private readonly scores = new Map<readonly TokenWindow[], Map<string, LmScore>>();
  private counter = 0;

  /** The importance matrix candidates are encoded with (as llama-quantize --imatrix), when set. */
  imatrix: ImatrixData | undefined = undefined;

  private constructor(
    readonly path: string,
    readonly file: GgufFile,
    readonly input: LlamaCppModel,
    private readonly dir: string,
  ) {}

  /** Opens the input GGUF (already read as `file`) in llama.cpp. */
  static async open(path: string, file: GgufFile): Promise<GgufLmBench> {
    const input = await openLlamaModel(path);
    const dir = await mkdtemp(join(tmpdir(), 'mixq-lm-'));
    return new GgufLmBench(path, file, input, dir);
  }

  /** Whether a type map is encoded with the importance matrix: `opts.imatrix`, default when one is set. */
  private withImatrix(opts: ScoreOptions): boolean {
    return this.imatrix !== undefined && opts.imatrix !== false;
  }

  /** The input model's distributions on `windows` (recorded on first use). */
  async reference(windows: readonly TokenWindow[]): Promise<LlamaReference> {
    let r = this.refs.get(windows);
    if (!r) {
      r = await this.input.recordReference(windows, { tempDir: this.dir });
      this.refs.set(windows, r);
    }
    return r;
  }

  /**
   * Writes the GGUF with these types (once per distinct map and imatrix use) and returns its path. With
   * the importance matrix, every tensor whose ggml quantizer takes one is encoded with its entry.
   */
  async write(types: GgufTypes, opts: ScoreOptions = {}): Promise<string> {
    const im = this.withImatrix(opts) ? this.imatrix : undefined;
    const key = `${typesKey(types)}${im ? '|imatrix' : ''}`;
    let p = this.files.get(key);
    if (!p) {
      p = join(this.dir, `candidate-${this.counter++}.gguf`);
      await writeTypesGguf(this.file, types, p, im);
      this.files.set(key, p);
    }
    return p;
  }

  /** Scores the model with these types on `windows` against the input's distributions there. */
  async score(types: GgufTypes, windows: readonly TokenWindow[], opts: ScoreOptions = {}): Promise<LmScore> {
    let cache = this.scores.get(windows);
    if (!cache) this.scores.set(windows, (cache = new Map()));
    const key = `${typesKey(types)}${this.withImatrix(opts) ? '|imatrix' : ''}`;
    let s = cache.get(key);
    if (!s) {
      const reference = await this.reference(windows);
      s = await this.scoreFile(await this.write(types, opts), windows, reference);
      cache.set(key, s);
    }
    return s;
  }

  /** Scores any GGUF file on `windows` against the input's distributions (same windows). */
  async scoreFile(
    path: string,
    windows: readonly TokenWindow[],
    reference?: LlamaReference,
  ): Promise<LmScore> {
    const ref = reference ?? (await this.reference(windows));
    const m = await openLlamaModel(path);
    try {
      return await m.score(windows, { reference: ref });
    } finally {
      await m.close();
    }
  }

  /** The input model's own score on `windows` (nats per token; KL 0). */
  async inputScore(windows: readonly TokenWindow[]): Promise<LmScore> {
    return this.input.score(windows, { reference: await this.reference(windows) });
  }

  async close(): Promise<void> {
    for (const r of this.refs.values()) await r.close();
    await this.input.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

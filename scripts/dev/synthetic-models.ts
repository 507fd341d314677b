/**
 * Dev-only: the synthetic 1B-shaped llama (TinyLlama's shapes: 22 layers, hidden 2048, FFN 5632, 32 / 4
 * heads, vocabulary 32000; random F16 weights from scripts/dev/synthetic-gguf.ts) and its re-quantized
 * copies, made on first use with mixq's own GGUF requantizer (`mixq requantize`) and reused. Shared by
 * bench/engine.bench.ts and scripts/dev/engine-logits.ts. NEVER commit the files (2.2 GB for F16).
 *
 * Folder: $MIXQ_DEV_MODELS, default ~/.cache/mixq/dev-models (a cache, not the repository).
 *
 *   F16                the file synthetic-gguf.ts writes (~40 s)
 *   Q8_0 ... IQ4_NL    every matrix in one type (`mixq requantize --type`, llama.cpp's rules for the
 *                      output and embedding tensors); ~80 s each
 *   Q4_K_M             llama.cpp's Q4_K_M rule (analysis/allocate/rule-mix.ts) as per-tensor rules
 *   mixed              a mixed-type plan as mixq's allocator writes one (Q3_K..Q6_K per tensor, more bits
 *                      at the ends and on attn_v; ~4.2 bits per weight)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Q4_K_M_SCHEMES, ruleMix } from '../../src/analysis/allocate/rule-mix.ts';
import { fileSource } from '../../src/io/files.node.ts';
import { readGguf } from '../../src/io/gguf/read.ts';
import { isRequantizable } from '../../src/io/gguf/requantize.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const SYN1B = { layers: 22, hidden: 2048, ffn: 5632, kvWidth: 256, vocab: 32000 } as const;

/** Where the dev models live. */
export function devModelsDir(): string {
  const dir =
    process.env.MIXQ_DEV_MODELS ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mixq', 'dev-models');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function run(args: string[], what: string): void {
  console.log(`  making ${what} ...`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status})`);
  console.log(`  made ${what} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/** The mixed plan: per-tensor types as an allocator gives them (more bits at the ends and on attn_v). */
function mixedRules(layers: number): string[] {
  const r = ['output.weight=q6_k', 'token_embd.weight=q4_k'];
  for (let l = 0; l < layers; l++) {
    const edge = l < 2 || l >= layers - 2;
    r.push(
      `blk.${l}.attn_v.weight=q6_k`,
      `blk.${l}.attn_q.weight=${edge ? 'q5_k' : 'q4_k'}`,
      `blk.${l}.attn_k.weight=${edge ? 'q5_k' : 'q4_k'}`,
      `blk.${l}.attn_output.weight=q4_k`,
      `blk.${l}.ffn_gate.weight=${edge ? 'q4_k' : 'q3_k'}`,
      `blk.${l}.ffn_up.weight=${edge ? 'q4_k' : 'q3_k'}`,
      `blk.${l}.ffn_down.weight=${edge ? 'q6_k' : 'q4_k'}`,
    );
  }
  return r;
}

async function q4kmRules(f16: string): Promise<string[]> {
  const src = await fileSource(f16);
  try {
    const g = await readGguf(src);
    const weights = g.tensors.filter(isRequantizable).map((t) => {
      const l = /^blk\.(\d+)\./.exec(t.name);
      return { name: t.name, ...(l ? { layer: Number(l[1]) } : {}) };
    });
    return [...ruleMix(weights, Q4_K_M_SCHEMES)].map(([n, s]) => `${n}=${s.toLowerCase()}`);
  } finally {
    await src.close();
  }
}

/**
 * The path of the 1B-shaped model in `label` ('F16', a ggml type, 'Q4_K_M' or 'mixed'), made if missing.
 * `layers` < 22 makes a shallower model of the same widths (files syn1b-<n>l-*.gguf).
 * @example const file = await syn1b('Q4_0');
 */
export async function syn1b(label: string, layers: number = SYN1B.layers): Promise<string> {
  const dir = devModelsDir();
  const stem = layers === SYN1B.layers ? 'syn1b' : `syn1b-${layers}l`;
  const f16 = join(dir, `${stem}-f16.gguf`);
  if (!existsSync(f16))
    run(
      [join(ROOT, 'scripts/dev/synthetic-gguf.ts'), 'tinyllama', f16, '--layers', String(layers)],
      `the F16 1B-shaped llama (${layers} layers) in ${dir}`,
    );
  if (label === 'F16') return f16;
  const file = join(dir, `${stem}-${label.toLowerCase()}.gguf`);
  if (existsSync(file)) return file;
  const rules =
    label === 'mixed' ? mixedRules(layers) : label === 'Q4_K_M' ? await q4kmRules(f16) : undefined;
  const how = rules ? rules.flatMap((r) => ['--rule', r]) : ['--type', label.toLowerCase()];
  run([join(ROOT, 'src/cli/main.ts'), 'requantize', f16, file, ...how, '--json'], `${label} (${file})`);
  return file;
}

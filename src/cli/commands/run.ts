/**
 * `mixq run <model.gguf | folder> --prompt "…" [--max-tokens N] [--threads T] [--temperature t] [--top-k k]
 * [--top-p p] [--seed s] [--context N] [--activations auto|f32|lut8] [--no-echo] [--json]`: generates text with
 * mixq's own engine (src/engine: weights at their stored size, WebAssembly SIMD kernels, worker threads),
 * streaming it to stdout. Greedy unless --temperature > 0. A loading bar and a speed line go to stderr on
 * a terminal only; --json prints one JSON object (text, token ids, timings, memory) and nothing else.
 */
import v8 from 'node:v8';
import cliProgress from 'cli-progress';
import { defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import { failCli } from '../errors.ts';

function num(v: unknown, name: string, check: (n: number) => boolean, expected: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!check(n))
    failCli('run', new MixqError(`bad value '${String(v)}'`, { source: `argument --${name}`, expected }), 2);
  return n;
}
const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;

const run = defineCommand({
  meta: {
    name: 'run',
    description: "Generate text with mixq's own engine (GGUF or mixq quantized safetensors)",
  },
  args: {
    model: {
      type: 'positional',
      description:
        'a .gguf file, a mixq engine file (mixq quantize --emit runtime), or a folder (config.json, tokenizer.json, safetensors)',
      required: true,
    },
    prompt: { type: 'string', description: 'text to continue', required: true },
    'max-tokens': { type: 'string', description: 'tokens to generate at most (default 128)' },
    threads: { type: 'string', description: 'threads for the matrix products (default 1)' },
    temperature: { type: 'string', description: 'sampling temperature (default 0: greedy)' },
    'top-k': {
      type: 'string',
      description: 'keep the k most likely tokens when sampling (default 40; 0 = all)',
    },
    'top-p': {
      type: 'string',
      description: 'nucleus: keep tokens up to this probability mass (default 0.95)',
    },
    seed: { type: 'string', description: 'seed of the sampler (default 0)' },
    context: { type: 'string', description: 'KV cache positions (default: prompt + max tokens)' },
    activations: {
      type: 'string',
      description:
        "'auto' (int8 activations on quantized weights, as llama.cpp), 'f32', or 'lut8' (mixq's int1..int4 weights on T-MAC lookup tables); default: the mode an engine file was planned for, else 'auto'",
    },
    echo: { type: 'boolean', description: 'print the prompt before the generated text', default: true },
    json: {
      type: 'boolean',
      description: 'print one JSON object at the end instead of streaming',
      default: false,
    },
  },
  async run({ args }) {
    const maxTokens = num(args['max-tokens'], 'max-tokens', int(0), 'an integer >= 0') ?? 128;
    const threads = num(args.threads, 'threads', (n) => int(1)(n) && n <= 256, '1..256') ?? 1;
    const temperature =
      num(args.temperature, 'temperature', (n) => n >= 0 && Number.isFinite(n), '>= 0') ?? 0;
    const topK = num(args['top-k'], 'top-k', int(0), 'an integer >= 0');
    const topP = num(args['top-p'], 'top-p', (n) => n > 0 && n <= 1, 'in (0, 1]');
    const seed =
      num(args.seed, 'seed', (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, '0 .. 2^32 - 1') ?? 0;
    const contextSize = num(args.context, 'context', int(1), 'a positive integer');
    // default: the mode an engine file was planned for, else 'auto'
    const act = args.activations;
    if (act !== undefined && act !== 'auto' && act !== 'f32' && act !== 'lut8')
      failCli(
        'run',
        new MixqError(`bad value '${act}'`, {
          source: 'argument --activations',
          expected: "'auto', 'f32' or 'lut8'",
        }),
        2,
      );
    const json = Boolean(args.json);
    const tty = !json && process.stderr.isTTY;
    // Node 20 has relaxed SIMD behind a flag (on by default from Node 22): the kernels' int8 dot products
    // run about twice as fast with it. Set before any WebAssembly module is compiled.
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    const { openEngineModel } = await import('../../engine/load.node.ts');
    const { generateTokens, promptIds } = await import('../../engine/session.ts');
    const t0 = performance.now();
    const bar = tty
      ? new cliProgress.SingleBar(
          { format: 'loading [{bar}] {percentage}%', hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    bar?.start(100, 0);
    let model: Awaited<ReturnType<typeof openEngineModel>>;
    try {
      model = await openEngineModel(String(args.model), {
        threads,
        ...(act !== undefined ? { activations: act } : {}),
        progress: (done, total) => bar?.update(total > 0 ? Math.round((100 * done) / total) : 100),
      });
    } catch (e) {
      bar?.stop();
      failCli('run', e, e instanceof MixqError ? 2 : 1);
    }
    bar?.stop();
    const loadSeconds = (performance.now() - t0) / 1000;
    try {
      const prompt = String(args.prompt);
      const ids = promptIds(model, prompt);
      const out: number[] = [];
      let text = '';
      if (!json && args.echo) process.stdout.write(prompt);
      const t1 = performance.now();
      let tFirst = 0;
      for await (const tk of generateTokens(model, ids, {
        maxTokens,
        temperature,
        seed,
        ...(topK !== undefined ? { topK } : {}),
        ...(topP !== undefined ? { topP } : {}),
        ...(contextSize !== undefined ? { contextSize } : {}),
      })) {
        if (out.length === 0) tFirst = performance.now();
        out.push(tk.id);
        text += tk.text;
        if (!json) process.stdout.write(tk.text);
      }
      const t2 = performance.now();
      const prefillMs = (tFirst || t2) - t1;
      const decodeMs = out.length > 1 ? (t2 - tFirst) / (out.length - 1) : 0;
      const rss = process.memoryUsage().rss;
      const stats = {
        model: String(args.model),
        threads,
        kernels: model.kernels.variant,
        loadSeconds,
        weightBytes: model.load.weightBytes,
        tensorBytes: model.load.tensorBytes,
        rssBytes: rss,
        promptTokens: ids.length,
        generatedTokens: out.length,
        prefillMsPerToken: prefillMs / ids.length,
        decodeMsPerToken: decodeMs,
        decodeTokensPerSecond: decodeMs > 0 ? 1000 / decodeMs : 0,
      };
      if (json) process.stdout.write(`${JSON.stringify({ ...stats, prompt, text, tokens: out }, null, 2)}\n`);
      else {
        process.stdout.write('\n');
        if (tty)
          process.stderr.write(
            `${ids.length} prompt tokens ${stats.prefillMsPerToken.toFixed(1)} ms/token, ${out.length} generated ` +
              `${decodeMs.toFixed(1)} ms/token (${stats.decodeTokensPerSecond.toFixed(2)} tokens/s), ${threads} ` +
              `thread(s), ${model.kernels.variant}; load ${loadSeconds.toFixed(1)} s, weights ` +
              `${(model.load.weightBytes / 2 ** 20).toFixed(1)} MiB, RSS ${(rss / 2 ** 20).toFixed(0)} MiB\n`,
          );
      }
    } catch (e) {
      failCli('run', e, e instanceof MixqError ? 2 : 1);
    } finally {
      await model.close();
    }
  },
});

export default run;

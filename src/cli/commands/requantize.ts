/**
 * `mixq requantize <in.gguf> <out.gguf> --type q4_k [--rule 'pattern=type' ...] [--imatrix file] [--json]`:
 * re-quantizes a GGUF file tensor by tensor (rules in src/io/gguf/requantize.ts), optionally with an
 * importance matrix (imatrix.dat, GGUF imatrix or mixq JSON; src/io/gguf/imatrix.ts). Prints a table of
 * tensors (name, old type, new type, bytes) and totals (size, bits per weight); a progress bar on a TTY.
 * The output is written atomically and never over the input.
 */
import cliProgress from 'cli-progress';
import { defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import { fileSource, writeFileAtomic } from '../../io/files.node.ts';
import { type ImatrixData, type RequantRule, readGguf, readImatrix, requantizeGguf } from '../../io/index.ts';
import { encodeRowsOnThreads } from '../../runtime/block-encode.node.ts';
import { failCli } from '../errors.ts';
import { requantTableLines } from '../requant-table.ts';
import { jsonText } from '../json.ts';

/** All `--rule` values in order (citty keeps only one value of a repeated flag). */
function ruleArgs(rawArgs: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === '--rule') {
      const v = rawArgs[i + 1];
      if (v === undefined)
        failCli(
          'requantize',
          new MixqError('missing value', { source: 'argument --rule', expected: 'pattern=type' }),
          2,
        );
      out.push(v);
      i++;
    } else if (a.startsWith('--rule=')) out.push(a.slice('--rule='.length));
  }
  return out;
}

function parseRule(s: string): RequantRule {
  const eq = s.lastIndexOf('=');
  if (eq <= 0 || eq === s.length - 1) {
    failCli(
      'requantize',
      new MixqError(`bad rule '${s}'`, {
        source: 'argument --rule',
        expected: "'pattern=type', e.g. 'blk.*.ffn_down.weight=q6_k'",
      }),
      2,
    );
  }
  return { pattern: s.slice(0, eq), type: s.slice(eq + 1) };
}

const requantize = defineCommand({
  meta: {
    name: 'requantize',
    description: 'Re-quantize a GGUF file with per-tensor rules and an optional importance matrix',
  },
  args: {
    input: { type: 'positional', description: 'input .gguf', required: true },
    output: { type: 'positional', description: 'output .gguf', required: true },
    type: { type: 'string', description: 'default type for quantizable weights (q4_k, q8_0, q6_k, ...)' },
    rule: {
      type: 'string',
      description: "per-tensor rule 'pattern=type' (glob, or /regex/); repeatable; first match wins",
    },
    imatrix: { type: 'string', description: 'importance matrix: imatrix.dat, imatrix .gguf, or mixq JSON' },
    json: { type: 'boolean', description: 'print a machine-readable report only', default: false },
  },
  async run({ args, rawArgs }) {
    const input = String(args.input);
    const output = String(args.output);
    const rules = ruleArgs(rawArgs).map(parseRule);
    if (!args.type && rules.length === 0) {
      failCli(
        'requantize',
        new MixqError('nothing to do', { source: 'arguments', expected: '--type and/or --rule' }),
        2,
      );
    }
    const json = Boolean(args.json);
    try {
      let imatrix: ImatrixData | undefined;
      if (args.imatrix) {
        const isrc = await fileSource(String(args.imatrix));
        try {
          imatrix = await readImatrix(isrc);
        } finally {
          await isrc.close();
        }
      }
      const src = await fileSource(input);
      const bar =
        !json && process.stderr.isTTY
          ? new cliProgress.SingleBar(
              {
                format: 'requantize [{bar}] {percentage}% {tensor}',
                hideCursor: true,
                clearOnComplete: true,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
      let result: Awaited<ReturnType<typeof requantizeGguf>>;
      try {
        const file = await readGguf(src);
        bar?.start(100, 0, { tensor: '' });
        result = await requantizeGguf(file, rules, {
          ...(args.type ? { defaultType: String(args.type) } : {}),
          ...(imatrix ? { imatrix } : {}),
          encodeRows: encodeRowsOnThreads,
          progress: (done, total, tensor) =>
            bar?.update(total > 0 ? Math.round((100 * done) / total) : 100, { tensor }),
        });
      } finally {
        bar?.stop();
        await src.close();
      }
      await writeFileAtomic(output, result.chunks, [input, ...(args.imatrix ? [String(args.imatrix)] : [])]);
      if (json) {
        process.stdout.write(
          `${jsonText({
            input,
            output,
            fileType: result.fileType,
            totals: result.totals,
            tensors: result.tensors,
            notes: result.notes,
            ...(imatrix ? { imatrix: { format: imatrix.format, entries: imatrix.entries.size } } : {}),
          })}\n`,
        );
        return;
      }
      const lines = requantTableLines(result.tensors, result.totals, result.fileType, result.notes);
      lines.push(`wrote ${output}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    } catch (e) {
      failCli('requantize', e, 1);
    }
  },
});

export default requantize;

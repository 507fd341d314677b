/**
 * `mixq convert <in> <out> [--type q8_0|q4_k|f16|...]`: GGUF <-> safetensors (and re-typing within a
 * format). The output format comes from the output extension; the rules are in src/io/convert.ts.
 * Output is written atomically and never over the input.
 */
import { basename, extname } from 'node:path';
import { defineCommand } from 'citty';
import { MixqError } from '../../core/errors.ts';
import { fileSource, writeFileAtomic } from '../../io/files.node.ts';
import { type ConvertTarget, convertModel, detectFormat, openModel } from '../../io/index.ts';
import { readOnnxFile } from '../../io/onnx/file.node.ts';
import { failCli } from '../errors.ts';
import { jsonText } from '../json.ts';

function targetOf(path: string): ConvertTarget {
  const ext = extname(path).toLowerCase();
  if (ext === '.gguf') return 'gguf';
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.onnx')
    failCli('convert', new MixqError('writing ONNX is not supported by convert yet', { source: path }), 2);
  return failCli(
    'convert',
    new MixqError(`cannot tell the output format from '${ext || '(no extension)'}'`, {
      source: 'argument <out>',
      expected: '.gguf or .safetensors',
    }),
    2,
  );
}

const convert = defineCommand({
  meta: {
    name: 'convert',
    description: 'Convert between GGUF and safetensors (and ONNX weights to either), optionally quantizing',
  },
  args: {
    input: { type: 'positional', description: 'input model (.gguf, .safetensors, .onnx)', required: true },
    output: { type: 'positional', description: 'output file (.gguf or .safetensors)', required: true },
    type: {
      type: 'string',
      description:
        'type for quantizable weights: q8_0, q4_k, q6_k, f16, bf16, f32, ... (safetensors: f32|f16|bf16)',
    },
    json: { type: 'boolean', description: 'print a machine-readable report only', default: false },
  },
  async run({ args }) {
    const input = String(args.input);
    const output = String(args.output);
    const to = targetOf(output);
    try {
      const src = await fileSource(input);
      let result: Awaited<ReturnType<typeof convertModel>>;
      try {
        const convertOpts = {
          ...(args.type ? { type: String(args.type) } : {}),
          name: basename(input).replace(/\.[^.]+$/, ''),
        };
        if ((await detectFormat(src)) === 'onnx') {
          const onnx = await readOnnxFile(input);
          try {
            result = await convertModel({ format: 'onnx', file: onnx }, to, convertOpts);
          } finally {
            await onnx.close();
          }
        } else {
          result = await convertModel(await openModel(src), to, convertOpts);
        }
      } finally {
        await src.close();
      }
      await writeFileAtomic(output, result.chunks, [input]);
      const bytes = result.chunks.reduce((a, c) => a + c.length, 0);
      if (args.json) {
        process.stdout.write(
          `${jsonText({ input, output, format: to, bytes, notes: result.notes, tensors: result.tensors })}\n`,
        );
        return;
      }
      const counts = new Map<string, number>();
      for (const t of result.tensors) counts.set(t.action, (counts.get(t.action) ?? 0) + 1);
      process.stdout.write(
        `wrote ${output} (${to}, ${bytes} bytes): ${result.tensors.length} tensors (` +
          `${[...counts].map(([a, n]) => `${n} ${a}`).join(', ')})\n`,
      );
      for (const n of result.notes) process.stdout.write(`note: ${n}\n`);
    } catch (e) {
      failCli('convert', e, 1);
    }
  },
});

export default convert;

/**
 * `mixq convert <in> <out> [--type q8_0|q4_k|f16|...]`: GGUF <-> safetensors (and re-typing within a
 * format), ONNX weights to either, a llama-family Hugging Face folder to GGUF. The output format comes from
 * the output extension; the rules are in src/io/convert.ts. Streamed tensor by tensor (io/convert.node.ts),
 * written atomically and never over the input.
 */
import { defineCommand } from 'citty';
import { convertFile, convertTargetOf } from '../../io/convert.node.ts';
import { failCli } from '../errors.ts';
import { jsonText } from '../json.ts';

const convert = defineCommand({
  meta: {
    name: 'convert',
    description: 'Convert between GGUF and safetensors (and ONNX weights to either), optionally quantizing',
  },
  args: {
    input: {
      type: 'positional',
      description:
        "input model (.gguf, .safetensors, .onnx, a Hugging Face folder -> .gguf, or 'gpt': the bundled GPT as a gpt2 GGUF)",
      required: true,
    },
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
    let to: ReturnType<typeof convertTargetOf>;
    try {
      to = convertTargetOf(output);
    } catch (e) {
      return failCli('convert', e, 2);
    }
    if (input === 'gpt' && to === 'gguf') {
      await convertGptToGguf(output, args.type ? String(args.type) : 'F32', Boolean(args.json));
      return;
    }
    try {
      const r = await convertFile(input, output, args.type ? { type: String(args.type) } : {});
      if (args.json) {
        process.stdout.write(
          `${jsonText({ input, output, format: r.format, bytes: r.bytes, notes: r.notes, tensors: r.tensors })}\n`,
        );
        return;
      }
      const counts = new Map<string, number>();
      for (const t of r.tensors) counts.set(t.action, (counts.get(t.action) ?? 0) + 1);
      process.stdout.write(
        `wrote ${output} (${r.format}, ${r.bytes} bytes): ${r.tensors.length} tensors (` +
          `${[...counts].map(([a, n]) => `${n} ${a}`).join(', ')})\n`,
      );
      for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
    } catch (e) {
      failCli('convert', e, 1);
    }
  },
});

/**
 * `mixq convert gpt out.gguf [--type f32|f16|q8_0|...]`: the bundled GPT as a gpt2 GGUF llama.cpp loads
 * (src/export/gguf/gpt2.ts), every weight in one type (F32 by default), e.g. as the input of
 * `mixq quantize out.gguf --calibration models/gpt/heldout.txt`.
 */
async function convertGptToGguf(output: string, type: string, json: boolean): Promise<void> {
  try {
    const { exportGptGguf } = await import('../../export/gguf/gpt2.node.ts');
    const { GPT_DIR } = await import('../../runtime/bundled.node.ts');
    const r = await exportGptGguf(GPT_DIR, type.toUpperCase(), { out: output });
    if (json) process.stdout.write(`${jsonText({ input: 'gpt', output, format: 'gguf', bytes: r.size })}\n`);
    else process.stdout.write(`wrote ${output} (gguf, gpt2 architecture, ${r.size} bytes)\n`);
  } catch (e) {
    failCli('convert', e, 1);
  }
}

export default convert;

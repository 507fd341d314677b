/**
 * `mixq inspect <file> [--json]` (GGUF, safetensors, ONNX): format, tensors (name, shape, dtype, bytes,
 * role), parameter count, bytes by dtype, average bits per weight, quantizable weights. For GGUF and
 * safetensors only the header is read.
 */
import { defineCommand } from 'citty';
import { fileSource } from '../../io/files.node.ts';
import { openModelView, summarizeModel } from '../../io/index.ts';
import { failCli } from '../errors.ts';

import { formatBytes } from '../../report/summary.ts';
import { jsonText } from '../json.ts';

const inspect = defineCommand({
  meta: {
    name: 'inspect',
    description: 'Show the tensors, sizes and quantizable weights of a GGUF, safetensors or ONNX file',
  },
  args: {
    file: { type: 'positional', description: 'model file (.gguf, .safetensors, .onnx)', required: true },
    json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
  },
  async run({ args }) {
    const path = String(args.file);
    let view: Awaited<ReturnType<typeof openModelView>>;
    try {
      const src = await fileSource(path);
      try {
        view = await openModelView(src);
      } finally {
        await src.close();
      }
    } catch (e) {
      failCli('inspect', e, 1);
    }
    const s = summarizeModel(view);
    if (args.json) {
      const out = {
        file: path,
        ...s,
        metadata: view.metadata,
        tensors: view.tensors.map((t) => ({
          name: t.name,
          shape: t.shape,
          dtype: t.dtype,
          bytes: t.byteLength,
          role: t.role,
          ...(t.layer === undefined ? {} : { layer: t.layer }),
          quantizable: t.quantizable,
        })),
      };
      process.stdout.write(`${jsonText(out)}\n`);
      return;
    }
    const rows = view.tensors.map((t) => [
      t.name,
      `[${t.shape.join(', ')}]`,
      t.dtype,
      String(t.byteLength),
      t.role,
      t.quantizable ? 'yes' : '',
    ]);
    const header = ['name', 'shape', 'dtype', 'bytes', 'role', 'quantizable'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: readonly string[]) =>
      r
        .map((c, i) => (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    const out: string[] = [
      `file: ${path}`,
      `format: ${s.format}`,
      `tensors: ${s.tensorCount}   parameters: ${s.parameterCount}   size: ${formatBytes(s.totalBytes, true)}`,
      `average bits per weight: ${s.averageBitsPerWeight.toFixed(3)}`,
      `bytes by dtype: ${Object.entries(s.bytesByDtype)
        .map(([d, b]) => `${d} ${formatBytes(b, true)}`)
        .join(', ')}`,
      `quantizable weights: ${s.quantizable.tensors} tensors, ${s.quantizable.parameters} parameters ` +
        `(${s.parameterCount ? ((100 * s.quantizable.parameters) / s.parameterCount).toFixed(1) : '0'}%), ` +
        `${s.quantizable.averageBitsPerWeight.toFixed(3)} bits per weight`,
      '',
      line(header),
      line(widths.map((w) => '-'.repeat(w))),
      ...rows.map(line),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  },
});

export default inspect;

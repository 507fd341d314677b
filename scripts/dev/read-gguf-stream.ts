/**
 * Dev-only measurement: parse a (large) GGUF with mixq's reader (src/io/gguf/read.ts), then stream every
 * tensor once (readTensorBytes, one tensor in memory at a time), and hash the file with the streaming
 * sha256 (io/file-stream.node.ts). Run under `/usr/bin/time -v` for the peak RSS.
 *
 *   /usr/bin/time -v node --import tsx scripts/dev/read-gguf-stream.ts big.gguf [--no-hash]
 */
import { readGguf } from '../../src/io/gguf/read.ts';
import { fileSource } from '../../src/io/files.node.ts';
import { sha256File } from '../../src/io/file-stream.node.ts';
import { llmConfigFromGguf } from '../../src/io/llm/config.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: read-gguf-stream.ts <file.gguf> [--no-hash]');
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
let t = performance.now();
const src = await fileSource(path);
const f = await readGguf(src);
const cfg = llmConfigFromGguf(f);
console.log(
  `header: ${f.tensors.length} tensors, ${f.kv.length} keys, data at ${f.dataOffset} in ${(performance.now() - t).toFixed(0)} ms; ` +
    `${cfg.architecture} ${cfg.numLayers} layers ${cfg.hiddenSize}/${cfg.intermediateSize} vocab ${cfg.vocabSize}; rss ${mb(process.memoryUsage().rss)}`,
);
t = performance.now();
let bytes = 0;
let check = 0;
let largest = 0;
let peak = 0;
for (const info of f.tensors) {
  const b = await f.readTensorBytes(info);
  bytes += b.length;
  largest = Math.max(largest, b.length);
  check = (check + b[b.length - 1]!) | 0;
  peak = Math.max(peak, process.memoryUsage().rss);
}
await src.close();
const s = (performance.now() - t) / 1000;
console.log(
  `tensors: ${(bytes / 1e9).toFixed(2)} GB streamed in ${s.toFixed(1)} s (${(bytes / 1e9 / s).toFixed(2)} GB/s), largest ${mb(largest)}, ` +
    `rss peak seen ${mb(peak)}, check ${check}`,
);
if (!process.argv.includes('--no-hash')) {
  t = performance.now();
  const h = await sha256File(path);
  console.log(`sha256 ${h.sha256} of ${h.size} bytes in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

/**
 * Dev-only: scores decoder ONNX files of a transformers.js folder's model on the language-model task's
 * evaluation windows (pipeline/lm-task.node.ts, the windows `mixq quantize <folder> --calibration <text>`
 * reports on): KL to the folder's float32 decoder, top-1 agreement, perplexity; with two files, the 95%
 * paired-bootstrap interval of KL(second) - KL(first).
 *
 *   node --import tsx scripts/dev/score-lm-files.ts <folder> <text> <a.onnx> [b.onnx]
 */
import { readFileSync } from 'node:fs';
import { resolveTask } from '../../src/pipeline/tasks.node.ts';
import { lmItems, type LmScore } from '../../src/runtime/lm-windows.ts';
import { pairedChangeInterval } from '../../src/runtime/metrics.ts';
import { withEvalRunner } from '../../src/runtime/session-pool.node.ts';

const [folder, text, ...files] = process.argv.slice(2);
if (!folder || !text || files.length === 0) {
  console.error('usage: score-lm-files.ts <folder> <text> <a.onnx> [b.onnx]');
  process.exit(2);
}
const task = resolveTask(folder, { calibrationData: text });
await task.prepare?.();
const scores: LmScore[] = [];
for (const f of files) {
  const s = (await withEvalRunner(readFileSync(f), (r) => task.score(r))).lm!;
  console.log(
    `${f}: KL ${s.klMean!.toPrecision(4)}, top-1 ${s.top1Agreement!.toPrecision(4)}, perplexity ${s.perplexity.toPrecision(4)} (${s.windows} windows, ${s.tokens} tokens)`,
  );
  scores.push(s);
}
if (scores.length === 2) {
  const ci = pairedChangeInterval(lmItems(scores[0]!, 'kl'), lmItems(scores[1]!, 'kl'));
  console.log(`KL(second) - KL(first), 95% paired: [${ci[0].toPrecision(4)}, ${ci[1].toPrecision(4)}]`);
}
await task.dispose?.();

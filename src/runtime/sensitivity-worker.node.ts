/** Worker thread of the sensitivity score pool (sensitivity-pool.node.ts): scores one job per message. */
import { parentPort } from 'node:worker_threads';
import { scoreCandidate, type ScoreJob } from '../analysis/sensitivity/score.ts';

const port = parentPort;
if (!port) throw new Error('sensitivity-worker.node.ts runs as a worker thread');
port.on('message', (m: { id: number; job: ScoreJob }) => {
  try {
    const result = scoreCandidate(m.job);
    port.postMessage({ id: m.id, result }, result?.Q ? [result.Q.buffer as ArrayBuffer] : []);
  } catch (e) {
    port.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});

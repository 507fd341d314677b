/**
 * Worker thread of the evaluation session pool (session-pool.node.ts): holds at most one deterministic
 * session (ort.node.ts) at a time. `open` loads a model, `run` runs it, `release` releases it; the worker
 * then waits for the next `open`. Messages are handled one at a time, in arrival order. onnxruntime-node's
 * `session.run` blocks the thread it is called on, so sessions in separate workers are what lets two runs
 * overlap.
 */
import { parentPort } from 'node:worker_threads';
import { fromWire, openSession, type OrtSession, toWire } from './ort.node.ts';
import type { WorkerReply, WorkerRequest } from './session-pool.node.ts';

const port = parentPort;
if (!port) throw new Error('session-worker.node.ts runs as a worker thread');
const post = port.postMessage.bind(port);

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

let session: OrtSession | undefined;

async function handle(m: WorkerRequest): Promise<void> {
  if (m.kind === 'open') {
    try {
      await session?.release();
      session = undefined;
      session = await openSession(m.model);
      post({
        kind: 'ready',
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        inputMetadata: session.inputMetadata,
      } satisfies WorkerReply);
    } catch (e) {
      post({ kind: 'failed', error: message(e) } satisfies WorkerReply);
    }
    return;
  }
  if (m.kind === 'release') {
    try {
      await session?.release();
    } finally {
      session = undefined;
      post({ kind: 'released' } satisfies WorkerReply);
    }
    return;
  }
  try {
    if (!session) throw new Error('no session is open');
    const outputs = toWire(await session.run(fromWire(m.feeds), m.outputs));
    const buffers = new Set<ArrayBuffer>();
    for (const { data: d } of Object.values(outputs))
      if (ArrayBuffer.isView(d) && d.buffer instanceof ArrayBuffer && d.byteLength === d.buffer.byteLength)
        buffers.add(d.buffer);
    const reply: WorkerReply = { kind: 'result', id: m.id, outputs };
    try {
      post(reply, [...buffers]);
    } catch {
      post(reply); // a buffer onnxruntime does not let go of is copied instead
    }
  } catch (e) {
    post({ kind: 'result', id: m.id, error: message(e) } satisfies WorkerReply);
  }
}

// one message at a time: a run is finished (and its result posted) before the next run, open or release
let chain = Promise.resolve();
port.on('message', (m: WorkerRequest) => {
  chain = chain.then(() => handle(m));
});

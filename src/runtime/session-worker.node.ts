/**
 * Worker thread of the evaluation session pool (session-pool.node.ts): opens ONE deterministic session
 * (ort.node.ts) on the model in `workerData`, answers `run` messages in arrival order, and releases the
 * session on `release`. onnxruntime-node's `session.run` blocks the thread it is called on, so sessions in
 * separate workers are what lets two runs overlap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSession, ort, type OrtSession } from './ort.node.ts';
import type { WireTensor, WorkerReply, WorkerRequest } from './session-pool.node.ts';

const port = parentPort;
if (!port) throw new Error('session-worker.node.ts runs as a worker thread');
const model = (workerData as { model: string | Uint8Array }).model;

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

let session: OrtSession | undefined;
try {
  session = await openSession(model);
  port.postMessage({
    kind: 'ready',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: session.inputMetadata,
  } satisfies WorkerReply);
} catch (e) {
  port.postMessage({ kind: 'failed', error: message(e) } satisfies WorkerReply);
}

// one message at a time: a run is finished (and its result posted) before the next run or the release
let chain = Promise.resolve();
port.on('message', (m: WorkerRequest) => {
  chain = chain.then(() => handle(m));
});

async function handle(m: WorkerRequest): Promise<void> {
  if (m.kind === 'release') {
    await session?.release();
    session = undefined;
    port!.postMessage({ kind: 'released' } satisfies WorkerReply);
    return;
  }
  try {
    if (!session) throw new Error('the session failed to open or was released');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(m.feeds))
      feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    const res = await session.run(feeds, m.outputs);
    const outputs: Record<string, WireTensor> = {};
    const buffers = new Set<ArrayBuffer>();
    for (const [name, t] of Object.entries(res)) {
      outputs[name] = { type: t.type, data: t.data as WireTensor['data'], dims: [...t.dims] };
      const d = t.data as unknown;
      if (ArrayBuffer.isView(d) && d.buffer instanceof ArrayBuffer && d.byteLength === d.buffer.byteLength)
        buffers.add(d.buffer);
    }
    const reply: WorkerReply = { kind: 'result', id: m.id, outputs };
    try {
      port!.postMessage(reply, [...buffers]);
    } catch {
      port!.postMessage(reply); // a buffer onnxruntime does not let go of is copied instead
    }
  } catch (e) {
    port!.postMessage({ kind: 'result', id: m.id, error: message(e) } satisfies WorkerReply);
  }
}

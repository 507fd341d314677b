/**
 * Worker thread of block-encode.node.ts: encodes one part of a tensor with GGML_CODECS and sends the
 * bytes back (their buffer moved, not copied). Messages are handled one at a time, in arrival order.
 */
import { parentPort } from 'node:worker_threads';
import { GGML_CODECS } from '../blocks/ggml/index.ts';
import type { BlockEncodeReply, BlockEncodeRequest } from './block-encode.node.ts';

const port = parentPort;
if (!port) throw new Error('block-encode-worker.node.ts runs as a worker thread');

port.on('message', (m: BlockEncodeRequest) => {
  let reply: BlockEncodeReply;
  try {
    reply = { id: m.id, bytes: GGML_CODECS[m.name].quantize(m.x, m.nPerRow, m.imatrix) };
  } catch (e) {
    reply = { id: m.id, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, 'bytes' in reply ? [reply.bytes.buffer as ArrayBuffer] : []);
});
